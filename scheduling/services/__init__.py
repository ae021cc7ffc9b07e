"""Writes: one function per state change, each audited, side effects after commit.

Each function lives in one module (courses, doses, assessments, decisions, evaluation, reminders); the ones callers
outside this package use are named here, so a view or task imports ``scheduling.services`` and not a module path.
"""

from scheduling.services.courses import (
    course_attest_eligibility,
    course_create,
    course_materialise_calendar,
    course_stop,
    courses_advance_status,
    courses_pickup_unscheduled,
)
from scheduling.services.doses import (
    REFUSAL_DETAILS,
    administration_enter_in_error,
    dose_administer,
    dose_evaluate,
    dose_hold,
    dose_override,
    doses_close_expired,
    doses_evaluate_entering_window,
    hold_enter_in_error,
    patient_evaluate_next_dose,
)
from scheduling.services.double_checks import (
    double_check_accept,
    double_check_cancel,
    double_check_refuse,
    double_check_request,
    double_checks_expire,
)

__all__ = [
    "REFUSAL_DETAILS",
    "administration_enter_in_error",
    "course_attest_eligibility",
    "course_create",
    "course_materialise_calendar",
    "course_stop",
    "courses_advance_status",
    "courses_pickup_unscheduled",
    "dose_administer",
    "double_check_accept",
    "double_check_cancel",
    "double_check_refuse",
    "double_check_request",
    "double_checks_expire",
    "dose_evaluate",
    "dose_hold",
    "dose_override",
    "doses_close_expired",
    "doses_evaluate_entering_window",
    "hold_enter_in_error",
    "patient_evaluate_next_dose",
]
