"""Reads, with query counts the tests pin: courses and doses (courses), the ward board and the nurse's pages (board),
and the course review (review). The exports read through export/records.py, beside the documents they build.

The course and dose reads every page uses are named here; the page-specific reads are imported from their module.
"""

from scheduling.selectors.courses import (
    CourseSummary,
    CycleBounds,
    administration_for,
    course_doses,
    course_for,
    course_retreatment_check,
    course_summary,
    dose_for,
    dose_overrides,
    doses_with_details,
    latest_evaluation_of,
    preparation_for,
    preparation_of,
    standing_administration,
    standing_hold,
    visible_courses,
    visible_dose_id,
)

__all__ = [
    "CourseSummary",
    "CycleBounds",
    "administration_for",
    "course_doses",
    "course_for",
    "course_retreatment_check",
    "course_summary",
    "dose_for",
    "dose_overrides",
    "doses_with_details",
    "latest_evaluation_of",
    "preparation_for",
    "preparation_of",
    "standing_administration",
    "standing_hold",
    "visible_courses",
    "visible_dose_id",
]
