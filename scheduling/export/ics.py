"""A course's dose slots as an RFC 5545 calendar: one VEVENT per slot.

Pure (no Django, no clock). The feed may be read and stored by calendar servers, so it carries no patient name:
the summary names the patient's initials at most, the cycle, the dose number and the slot's status.
A slot keeps its UID (``dose-<id>@il2ward``) for life so a client updates the event rather than adding a second one;
SEQUENCE and LAST-MODIFIED move forward whenever the slot's status changes. Since the file has no METHOD, DTSTAMP is
the same as LAST-MODIFIED (RFC 5545 §3.8.7.2), so an unchanged course gives byte-identical output.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

PRODID = "-//IL2Ward//Dose calendar//EN"
UID_DOMAIN = "il2ward"
INFUSION = timedelta(minutes=15)  # SCH-PREP: infuse over 15 min
REFRESH = timedelta(minutes=15)  # asked of subscribing clients (RFC 7986 REFRESH-INTERVAL)
STATUS_WORDS = {"scheduled": "due", "given": "given", "held": "held", "missed": "missed", "cancelled": "cancelled"}


@dataclass(frozen=True)
class Slot:
    dose_id: int
    cycle: int
    number: int
    due_at: datetime  # aware
    status: str  # scheduling.models.Dose.Status value
    changed_at: datetime | None  # last status change (None: never changed since the calendar was written)


def sequence(slot: Slot, *, written_at: datetime) -> int:
    """RFC 5545 SEQUENCE: whole seconds from the course's creation to the slot's last status change (0 before any).

    It only grows, because a slot's status only changes at a later `now`; and it needs no stored counter.
    """
    if slot.changed_at is None:
        return 0
    return max(1, int((slot.changed_at - written_at).total_seconds()))


def build_calendar(
    slots: list[Slot],
    *,
    course_id: int,
    patient_initials: str,
    written_at: datetime,
    url_for: Callable[[Slot], str] | None = None,
) -> bytes:
    """The calendar of one course. `written_at` (the course's creation) is the LAST-MODIFIED of untouched slots."""
    who = f" {patient_initials}" if patient_initials else ""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("name", f"IL-2{who} · course {course_id}")
    cal.add("x-wr-calname", f"IL-2{who} · course {course_id}")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")
    per_cycle: dict[int, int] = {}
    for slot in slots:
        per_cycle[slot.cycle] = per_cycle.get(slot.cycle, 0) + 1
    for slot in slots:
        modified = (slot.changed_at or written_at).astimezone(UTC)
        status = STATUS_WORDS.get(slot.status, slot.status)
        event = Event()
        event.add("uid", f"dose-{slot.dose_id}@{UID_DOMAIN}")
        event.add("dtstamp", modified)
        event.add("last-modified", modified)
        event.add("sequence", sequence(slot, written_at=written_at))
        event.add("dtstart", slot.due_at.astimezone(UTC))
        event.add("duration", INFUSION)
        event.add("summary", f"IL-2{who} · cycle {slot.cycle} dose {slot.number} · {status}")
        event.add(
            "description",
            f"Aldesleukin, course {course_id}: cycle {slot.cycle}, dose {slot.number} of {per_cycle[slot.cycle]} "
            f"— {status}.",
        )
        # A cancelled slot (course stopped) is struck off; held and missed slots stay visible with their status.
        event.add("status", "CANCELLED" if slot.status == "cancelled" else "CONFIRMED")
        event.add("transp", "TRANSPARENT")  # a reminder, not time the reader is busy
        if url_for is not None:
            event.add("url", url_for(slot))
        cal.add_component(event)
    return cal.to_ical()
