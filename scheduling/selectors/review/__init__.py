"""Reads for the oncologist's course review: the course list, the course page and the printed summary.

Query counts are flat: the list is one query whatever the number of courses, and the course page reads each table
once whatever the number of doses and observations (tests/scheduling/review/test_review_queries.py pins both).
"""

from scheduling.selectors.review.cells import Cell, Counts
from scheduling.selectors.review.course_list import CourseRow, course_list_rows
from scheduling.selectors.review.page import CourseReview, Retreatment, course_for, course_review
from scheduling.selectors.review.position import LEVEL_ORDER, Need, course_position
from scheduling.selectors.review.signatures import SignatureRow
from scheduling.selectors.review.trends import TrendData, trend_data

__all__ = [
    "LEVEL_ORDER",
    "Cell",
    "CourseReview",
    "CourseRow",
    "Counts",
    "Need",
    "Retreatment",
    "SignatureRow",
    "TrendData",
    "course_for",
    "course_list_rows",
    "course_position",
    "course_review",
    "trend_data",
]
