"""May this dose be charted as given now? Pure: every fact comes in as an argument (API.md 409 codes).

The order is the order a nurse should fix things in: a dose already charted or a course not running cannot be
helped; eligibility and the window come next; then what the pre-dose evaluation says; then the preparation and the
second nurse's blind double check.
"""

from datetime import datetime, timedelta

from scheduling.domain.dosing import reconstitution_expired
from scheduling.domain.window import chartable

OPEN_COURSE_STATUSES = frozenset({"planned", "active", "rest"})
CHARTED_STATUSES = frozenset({"given", "held", "missed"})

# Every code administer_refusal can return, in the order it checks them.
REFUSAL_ORDER = (
    "already_charted",
    "course_not_active",
    "eligibility_not_attested",
    "outside_window",
    "course_discontinued",
    "stop_criteria_met",
    "hold_criteria_met",
    "assessment_incomplete",
    "preparation_expired",
    "double_check_mismatch",
)


def open_dose_refusal(*, dose_status: str, course_status: str) -> str | None:
    """Can anything still be charted on this slot (given, held, overridden)? The 409 code when not."""
    if dose_status in CHARTED_STATUSES:
        return "already_charted"
    if dose_status == "cancelled" or course_status not in OPEN_COURSE_STATUSES:
        return "course_not_active"
    return None


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
    missing: tuple[str, ...] | list[str] = (),
    course_discontinued: bool = False,
    stop_recommended: bool = False,
    reconstituted_at: datetime | None,
    max_hours_after_reconstitution: int,
    dose_iu: int | None = None,
    verified_dose_iu: int | None = None,
) -> str | None:
    """The 409 code that refuses this administration, or None when it may be charted.

    `decision` is the pre-dose evaluation's as of the infusion's start (HOLD-RULES §3a INV-START); anything but
    give, or a hold an override still covers, refuses, so a missing evaluation can never let a dose through.
    `missing` is that evaluation's missing or stale data: an override never lifts it (INV-OVR). `course_discontinued`:
    a discontinue finding on this course (INV-DISC). `stop_recommended`: an evaluation of this slot recommended
    stop (INV-STOP: that slot is never given, whatever the oncologist decides for the cycle). The double check is
    compared only when both doses are given.
    """
    refusal = open_dose_refusal(dose_status=dose_status, course_status=course_status)
    if refusal:
        return refusal
    if not eligibility_attested:
        return "eligibility_not_attested"  # HOLD-RULES §2: no dose before attestation
    if not chartable(due_at, at=started_at, window_minutes=window_minutes):
        return "outside_window"  # SCH-WINDOW
    if course_discontinued or decision == "discontinue":
        return "course_discontinued"  # INV-DISC: nothing lifts it
    if decision == "stop" or stop_recommended:
        return "stop_criteria_met"  # INV-STOP: never overridable for the slot
    if decision == "hold" and not hold_overridden:
        return "hold_criteria_met"
    if decision not in ("give", "hold") or missing:
        return "assessment_incomplete"  # incomplete, stale, or no evaluation at all: fail safe
    if reconstituted_at is not None and reconstitution_expired(
        reconstituted_at, at=started_at, max_hours=max_hours_after_reconstitution
    ):
        return "preparation_expired"  # SCH-PREP: give within 48 h of reconstitution
    if dose_iu is not None and verified_dose_iu is not None and verified_dose_iu != dose_iu:
        return "double_check_mismatch"  # the second nurse's independent dose differs (blind double check)
    return None


def in_future(value: datetime, *, now: datetime, tolerance_minutes: int = 5) -> bool:
    """A charted time more than a few minutes ahead of the server clock is a typing error, not a plan."""
    return value > now + timedelta(minutes=tolerance_minutes)
