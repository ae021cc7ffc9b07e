"""The course calendar (HOLD-RULES.md §1: SCH-SLOTS, SCH-CYCLE2, SCH-NOMAKEUP). Pure: zone and times come in.

Two kinds of time arithmetic, on purpose:
- within a cycle, slots are 8 h of *elapsed* time apart (UTC arithmetic), so across a DST change the ward-local
  clock time of later slots moves by the shift (SCH-SLOTS);
- cycle 2 starts on ward-local *day 15* at the ward-local wall-clock time of cycle 1 slot 1 (SCH-CYCLE2), and the
  earliest cycle-2 start an oncologist may choose is also counted in ward-local days.

Every datetime returned is aware UTC (tzinfo is datetime.UTC, i.e. datetime.timezone.utc).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from common.timefmt import iso_z
from scheduling.domain.aware import UTC, as_utc

__all__ = [
    "CYCLE_SPAN",
    "INTERVAL_HOURS",
    "SLOTS_PER_CYCLE",
    "UTC",
    "Slot",
    "course_slots",
    "cycle2_default_start",
    "cycle2_start_allowed",
    "cycle_slots",
    "earliest_cycle2_start",
    "given_cap_reached",
    "slots_to_json",
    "to_local_aware",
]


SLOTS_PER_CYCLE = 14  # SCH-SLOTS
INTERVAL_HOURS = 8
CYCLE_SPAN = timedelta(hours=INTERVAL_HOURS * (SLOTS_PER_CYCLE - 1))  # first to last slot of a cycle, elapsed


@dataclass(frozen=True)
class Slot:
    """One scheduled dose: cycle 1 or 2, number 1..14, due time (aware UTC)."""

    cycle: int
    number: int
    due_at: datetime


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def to_local_aware(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive ward-local wall-clock time made aware in `zone` (SCH-CYCLE2).

    A nonexistent time (DST gap) moves forward by the length of the gap (02:30 on a spring-forward night → 03:30;
    on Lord Howe, 02:15 → 02:45). An ambiguous time (DST overlap) takes its first occurrence (fold=0).
    """
    if wall.tzinfo is not None:
        raise ValueError(f"wall must be a naive wall-clock time, got {wall!r}")
    # With fold=0, zoneinfo reads a gap time with the offset from *before* the transition (PEP 495); the round trip
    # through UTC then lands exactly one gap later. For an overlap, fold=0 is the first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)


def cycle_slots(
    first_at: datetime, *, cycle: int, per_cycle: int = SLOTS_PER_CYCLE, interval_hours: int = INTERVAL_HOURS
) -> list[Slot]:
    """The slots of one cycle: slot k is due at first_at + (k−1) × interval_hours of elapsed time (SCH-SLOTS)."""
    start = as_utc(first_at, "first_at")
    for name, value in (("cycle", cycle), ("per_cycle", per_cycle), ("interval_hours", interval_hours)):
        _positive(name, value)
    step = timedelta(hours=interval_hours)
    return [Slot(cycle, number, start + (number - 1) * step) for number in range(1, per_cycle + 1)]


def cycle2_default_start(first_dose_at: datetime, *, zone: ZoneInfo, day: int = 15) -> datetime:
    """Cycle 2 slot 1 (SCH-CYCLE2): local date of cycle 1 slot 1 + (day − 1) days, at slot 1's local wall time.

    The wall time is localised with `to_local_aware` (gap → forward by the gap; overlap → first occurrence).
    """
    _positive("day", day)
    local = as_utc(first_dose_at, "first_dose_at").astimezone(zone)
    wall = datetime.combine(local.date() + timedelta(days=day - 1), local.time())  # naive: time() drops tzinfo
    return to_local_aware(wall, zone).astimezone(UTC)


def earliest_cycle2_start(cycle1_last_due: datetime, *, zone: ZoneInfo, min_rest_days: int = 9) -> datetime:
    """The earliest allowed cycle 2 slot 1 (SCH-CYCLE2: never earlier than 9 full rest days after cycle 1's last slot).

    Definition: 9 full ward-local days after cycle 1's last *scheduled* slot (slots are anchored, SCH-NOMAKEUP),
    i.e. the same ward-local wall-clock time min_rest_days calendar days later, localised like day 15.

    Why not "9 whole calendar dates between the two slots": a first dose at or after 16:00 local puts cycle 1
    slot 14 (104 h later) at or after 00:00 on local day 6, and that reading would then refuse the default day-15
    start. With this definition the default is always allowed: day 15 lies 14 local days − 104 h = 9 days 16 h
    after the last slot, give or take a DST shift. It also matches the label's wording ("following 9 days of rest").
    """
    _positive("min_rest_days", min_rest_days)
    last_wall = as_utc(cycle1_last_due, "cycle1_last_due").astimezone(zone).replace(tzinfo=None)
    return to_local_aware(last_wall + timedelta(days=min_rest_days), zone).astimezone(UTC)


def cycle2_start_allowed(
    proposed: datetime, *, cycle1_last_due: datetime, zone: ZoneInfo, min_rest_days: int = 9
) -> bool:
    """True when `proposed` is not earlier than `earliest_cycle2_start` (SCH-CYCLE2). Later is always allowed."""
    earliest = earliest_cycle2_start(cycle1_last_due, zone=zone, min_rest_days=min_rest_days)
    return as_utc(proposed, "proposed") >= earliest


def course_slots(
    first_dose_at: datetime,
    *,
    zone: ZoneInfo,
    cycles: int = 2,
    per_cycle: int = SLOTS_PER_CYCLE,
    interval_hours: int = INTERVAL_HOURS,
    cycle2_first_at: datetime | None = None,
    min_rest_days: int = 9,
) -> list[Slot]:
    """All slots of a course, in order: 2 × 14 = 28 by default (SCH-SLOTS, SCH-CYCLE2).

    Cycle 2 starts at `cycle2_first_at` if given (an oncologist's later start), else on day 15. A cycle 2 that
    would start before `earliest_cycle2_start` raises ValueError, as do naive datetimes.
    """
    if cycles not in (1, 2):
        raise ValueError(f"a course has 1 or 2 cycles (SCH-CYCLE2), got {cycles!r}")
    first = as_utc(first_dose_at, "first_dose_at")
    slots = cycle_slots(first, cycle=1, per_cycle=per_cycle, interval_hours=interval_hours)
    if cycles == 1:
        if cycle2_first_at is not None:
            raise ValueError("cycle2_first_at given for a one-cycle course")
        return slots
    if cycle2_first_at is None:
        start2 = cycle2_default_start(first, zone=zone)
    else:
        start2 = as_utc(cycle2_first_at, "cycle2_first_at")
    if not cycle2_start_allowed(start2, cycle1_last_due=slots[-1].due_at, zone=zone, min_rest_days=min_rest_days):
        raise ValueError(f"cycle 2 may not start before {min_rest_days} full rest days after cycle 1 (SCH-CYCLE2)")
    return slots + cycle_slots(start2, cycle=2, per_cycle=per_cycle, interval_hours=interval_hours)


def slots_to_json(slots: list[Slot], zone: ZoneInfo) -> list[dict]:
    """The public JSON of `manage.py dose_calendar --json`.

    `{"cycle": 1, "number": 1, "due_at": "2027-03-12T22:00:00Z", "due_local": "2027-03-12T16:00:00-06:00"}`;
    times to the second (sub-second parts are dropped), due_at in UTC with "Z", due_local with its UTC offset.
    """
    return [
        {
            "cycle": slot.cycle,
            "number": slot.number,
            "due_at": iso_z(as_utc(slot.due_at).replace(microsecond=0)),
            "due_local": as_utc(slot.due_at).astimezone(zone).isoformat(timespec="seconds"),
        }
        for slot in slots
    ]


def given_cap_reached(
    given_in_cycle: int, given_in_course: int, *, per_cycle_cap: int = 14, per_course_cap: int = 28
) -> bool:
    """True when no further dose may be given: 14 given in the cycle or 28 in the course (SCH-NOMAKEUP).

    Held or missed slots are never made up and never move other slots: the calendar above is anchored, so this
    cap is the only count the calendar needs.
    """
    for name, value in (("given_in_cycle", given_in_cycle), ("given_in_course", given_in_course)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return given_in_cycle >= per_cycle_cap or given_in_course >= per_course_cap
