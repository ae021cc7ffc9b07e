"""Fixtures of the course-review tests; the builders (bench uses them) are in tests/scheduling/review/builders.py."""

import pytest

from tests.scheduling.review.builders import Staff


@pytest.fixture
def staff(oncologist, nurse_a, nurse_a2):
    return Staff(oncologist, nurse_a, nurse_a2)
