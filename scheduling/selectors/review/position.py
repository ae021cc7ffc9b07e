"""Where a course stands (pure) and what waits for the oncologist: shared by the course list and the course page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from scheduling.models import Course


def course_position(status: str, cycles: dict[int, tuple[datetime, datetime]], *, zone: ZoneInfo, now: datetime) -> str:
    """ "Cycle 1 · day 3", "Rest day 4 · course day 9 · cycle 2 from Fri 26 Mar", "Planned · first dose …" (pure).

    Days are ward-local calendar days: a cycle's day from its first slot, a rest day from the previous cycle's last
    slot, the course day from the course's first dose (day 15 is cycle 2's default start).
    """
    if status == Course.Status.SCHEDULING:
        return "Calendar being written"
    if status in (Course.Status.COMPLETED, Course.Status.STOPPED) or not cycles:
        return Course.Status(status).label
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    start_day = cycles[min(cycles)][0].astimezone(zone).date()
    course_day = (now.astimezone(zone).date() - start_day).days + 1
    for cycle in sorted(cycles):
        first, last = cycles[cycle]
        if now < first - window:
            if cycle == min(cycles):
                return f"Planned · first dose {first.astimezone(zone):%a %d %b %H:%M}"
            rest = (now.astimezone(zone).date() - cycles[cycle - 1][1].astimezone(zone).date()).days
            return f"Rest day {rest} · course day {course_day} · cycle {cycle} from {first.astimezone(zone):%a %d %b}"
        if now <= last + window:
            cycle_day = (now.astimezone(zone).date() - first.astimezone(zone).date()).days + 1
            return f"Cycle {cycle} · day {cycle_day}"
    return f"After the last dose · day {course_day}"


@dataclass(frozen=True)
class Need:
    """Something waiting for the oncologist, most urgent first: level danger, warning or info."""

    level: str
    text: str
    anchor: str = ""


LEVEL_ORDER = {"danger": 0, "warning": 1, "info": 2}
