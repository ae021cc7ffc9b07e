"""Fixtures for the nurse's pages: a frozen clock, and a dose that can be charted now."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.charting import EXPLICIT_VITALS, NORMAL_NEURO, normal_exam
from tests.conftest import NOW, PASSWORD


@pytest.fixture
def clock():
    """The pages read timezone.now(): freeze it at NOW."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


def ready_course(patient, *, oncologist, nurse, make_course, first_dose_at, now):
    """A course whose eligibility is attested, with baseline labs and weight recorded (what charting needs)."""
    from monitoring import services as obs
    from scheduling.domain.eligibility import ELIGIBILITY_ITEMS
    from scheduling.services import course_attest_eligibility

    setup = now - timedelta(hours=2)
    obs.labs_record(
        patient=patient,
        recorded_at=setup,
        creatinine_mg_dl=Decimal("1.0"),
        platelets_k_ul=Decimal(200),
        bilirubin_mg_dl=Decimal("0.8"),
        bicarbonate_mmol_l=Decimal(24),
        by=nurse,
        now=setup,
    )
    obs.weight_record(patient=patient, recorded_at=setup, weight_kg=Decimal("80.0"), by=nurse, now=setup)
    course = make_course(patient, first_dose_at=first_dose_at, now=setup)
    course_attest_eligibility(
        course_id=course.pk, items=dict.fromkeys(ELIGIBILITY_ITEMS, True), password=PASSWORD, by=oncologist, now=setup
    )
    course.refresh_from_db()
    return course


def record_assessment(patient, *, nurse, now, sbp=118, minutes_ago=5):
    """Fresh vitals, neuro and bedside exam, all answers explicit (the first slot of a cycle needs no urine)."""
    from monitoring import services as obs

    obs.vitals_record(
        patient=patient,
        recorded_at=now - timedelta(minutes=minutes_ago),
        sbp=sbp,
        dbp=62,
        heart_rate=92,
        resp_rate=18,
        spo2=97,
        temp_c=Decimal("37.2"),
        **EXPLICIT_VITALS,
        by=nurse,
        now=now,
    )
    obs.neuro_record(
        patient=patient, recorded_at=now - timedelta(minutes=minutes_ago), **NORMAL_NEURO, by=nurse, now=now
    )
    normal_exam(patient, nurse, at=now - timedelta(minutes=minutes_ago), now=now)


@pytest.fixture
def dose_now(clock, patient_a, oncologist, nurse_a, nurse_a2, make_course):
    """Dose 1 of patient A's course, due 20 min from NOW, eligibility attested, labs and weight fresh."""
    course = ready_course(
        patient_a,
        oncologist=oncologist,
        nurse=nurse_a,
        make_course=make_course,
        first_dose_at=NOW + timedelta(minutes=20),
        now=NOW,
    )
    return course.doses.get(cycle=1, number=1)
