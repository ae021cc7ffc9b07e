"""Fixtures of the course-review tests; the builders are in tests/review/builders.py (bench uses them too)."""

import pytest

from tests.review.builders import Staff


@pytest.fixture
def staff(oncologist, nurse_a, nurse_a2):
    return Staff(oncologist, nurse_a, nurse_a2)
