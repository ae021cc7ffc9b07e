"""Where a course stands in its calendar (pure): planned, active, rest or completed."""

from datetime import datetime, timedelta


def course_phase(cycles: dict[int, tuple[datetime, datetime]], *, now: datetime, window: timedelta) -> str:
    """`cycles` maps cycle number → (first due, last due).

    Active from the opening of a cycle's first window (due − W) until its last window closes (due + W); between
    cycles "rest"; after the last cycle "completed"; before the first "planned".
    """
    phase = "planned"
    for cycle in sorted(cycles):
        first, last = cycles[cycle]
        if now < first - window:
            return phase
        if now <= last + window:
            return "active"
        phase = "rest"
    return "completed" if cycles else "planned"
