"""May this dose be charted as given now? Pure: every fact comes in as an argument (API.md 409 codes).

The order is the order a nurse should fix things in: a dose already charted or a course not running cannot be
helped; eligibility and the window come next; then what the pre-dose evaluation says; then the preparation.
"""

from datetime import datetime, timedelta

from scheduling.domain.dosing import reconstitution_expired
from scheduling.domain.window import chartable

OPEN_COURSE_STATUSES = frozenset({"planned", "active", "rest"})
CHARTED_STATUSES = frozenset({"given", "held", "missed"})


def administer_refusal(
    *,
    dose_status: str,
    course_status: str,
    eligibility_attested: bool,
    due_at: datetime,
    started_at: datetime,
    window_minutes: int,
    decision: str,
    hold_overridden: bool,
    reconstituted_at: datetime | None,
    max_hours_after_reconstitution: int,
) -> str | None:
    """The 409 code that refuses this administration, or None when it may be charted."""
    if dose_status in CHARTED_STATUSES:
        return "already_charted"
    if dose_status == "cancelled" or course_status not in OPEN_COURSE_STATUSES:
        return "course_not_active"
    if not eligibility_attested:
        return "eligibility_not_attested"  # HOLD-RULES §2: no dose before attestation
    if not chartable(due_at, at=started_at, window_minutes=window_minutes):
        return "outside_window"  # SCH-WINDOW
    if decision == "stop":
        return "stop_criteria_met"  # never overridable for the slot
    if decision == "hold" and not hold_overridden:
        return "hold_criteria_met"
    if decision == "incomplete":
        return "assessment_incomplete"
    if reconstituted_at is not None and reconstitution_expired(
        reconstituted_at, at=started_at, max_hours=max_hours_after_reconstitution
    ):
        return "preparation_expired"  # SCH-PREP: give within 48 h of reconstitution
    return None


def in_future(value: datetime, *, now: datetime, tolerance_minutes: int = 5) -> bool:
    """A charted time more than a few minutes ahead of the server clock is a typing error, not a plan."""
    return value > now + timedelta(minutes=tolerance_minutes)
