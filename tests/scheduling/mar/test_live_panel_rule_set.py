"""The patient page's capillary-leak panel reads the same rule-set version as the dose evaluations: the course's own."""

from datetime import timedelta
from decimal import Decimal

import pytest

from monitoring.services import rule_set_override, vitals_record
from scheduling.selectors.board import live_panel
from tests.charting import EXPLICIT_VITALS
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def _sbp_level(patient, course):
    panel = live_panel(patient, course, course.doses.get(cycle=1, number=1), now=NOW)
    return next(item.level for item in panel if "CV-SBP" in item.rules)


def test_a_site_threshold_change_does_not_reach_a_running_course_panel(make_course, patient_a, nurse_a, oncologist):
    course = make_course(patient_a, first_dose_at=NOW + timedelta(minutes=30), now=NOW - timedelta(hours=6))
    vitals_record(
        patient=patient_a,
        recorded_at=NOW - timedelta(minutes=5),
        sbp=92,
        dbp=60,
        heart_rate=90,
        resp_rate=16,
        spo2=97,
        temp_c=Decimal("37.0"),
        **EXPLICIT_VITALS,
        by=nurse_a,
        now=NOW,
    )
    assert _sbp_level(patient_a, course) is None  # 92 ≥ 90: no CV-SBP finding
    rule_set_override(name=course.rule_set.name, overrides={"CV-SBP.hold_below": 95}, by=oncologist, now=NOW)
    # The course stays on the version it started with, as its dose evaluations do.
    assert _sbp_level(patient_a, course) is None
