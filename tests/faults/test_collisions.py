"""Lock-order collisions on PostgreSQL, with threads (each its own connection): eligibility sign-off while vitals
are charted for the same patient, and patient creates while courses are being created. Each counts the errors
(deadlocks reaching the caller, i.e. a nurse's 500) and asserts 0."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from il2ward.models import Patient
from il2ward.services import patient_create
from monitoring import services as obs
from scheduling.models import Course
from scheduling.services import course_attest_eligibility, course_create
from tests.conftest import PASSWORD
from tests.notifications.conftest import NORMAL_VITALS
from tests.scheduling.doses.conftest import ELIGIBILITY, frozen, ready  # noqa: F401 - fixtures of the override test
from tests.workers import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROUNDS = 8


def run_together(*calls) -> list[Exception]:
    """Start the calls at once (a barrier) in threads; return what they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[Exception] = []

    def run(call):
        try:
            barrier.wait(timeout=30)
            call()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_eligibility_sign_off_while_vitals_are_charted_never_fails(transactional_db, ward_a, nurse_a, oncologist):
    require_postgres()
    errors = []
    for i in range(ROUNDS):
        now = timezone.now()
        patient = patient_create(
            mrn=f"COL-{i}", name=f"Collide {i}", birth_date=now.date() - timedelta(days=20000), ward=ward_a,
            by=oncologist, now=now,
        )  # fmt: skip
        obs.labs_record(patient=patient, recorded_at=now, creatinine_mg_dl=Decimal("1.0"), by=nurse_a, now=now)
        course = course_create(
            patient=patient, first_dose_at=now + timedelta(hours=4), dosing_weight_kg=Decimal(80), by=oncologist,
            now=now,
        )  # fmt: skip
        errors += run_together(
            lambda course=course: course_attest_eligibility(
                course_id=course.pk, items=dict(ELIGIBILITY), password=PASSWORD, by=oncologist, now=timezone.now()
            ),
            lambda patient=patient: obs.vitals_record(
                patient=patient, recorded_at=timezone.now(), by=nurse_a, now=timezone.now(), **NORMAL_VITALS
            ),
            lambda patient=patient: obs.vitals_record(
                patient=patient, recorded_at=timezone.now(), by=nurse_a, now=timezone.now(), **NORMAL_VITALS
            ),
        )
    print(f"sign-off vs vitals: {ROUNDS} rounds, {len(errors)} errors")
    assert errors == [], errors
    assert Course.objects.filter(eligibility_signature__isnull=False).count() == ROUNDS


def test_patient_creates_during_course_creation_never_fail(transactional_db, ward_a, oncologist):
    require_postgres()
    per_thread = 12
    errors = []
    now = timezone.now()

    def create_with_courses(thread: int):
        def run():
            for i in range(per_thread):
                at = timezone.now()
                patient = patient_create(
                    mrn=f"PC-{thread}-{i}", name=f"P {thread} {i}", birth_date=now.date() - timedelta(days=20000),
                    ward=ward_a, by=oncologist, now=at,
                )  # fmt: skip
                if thread % 2 == 0:
                    course_create(
                        patient=patient, first_dose_at=at + timedelta(hours=4), dosing_weight_kg=Decimal(80),
                        by=oncologist, now=at,
                    )  # fmt: skip

        return run

    errors = run_together(*(create_with_courses(t) for t in range(4)))
    print(f"patient creates during course creation: {4 * per_thread} creates, {len(errors)} errors")
    assert errors == [], errors
    assert Patient.objects.filter(mrn__startswith="PC-").count() == 4 * per_thread
    assert Course.objects.filter(patient__mrn__startswith="PC-").count() == 2 * per_thread


def test_eight_concurrent_overrides_make_one(transactional_db, frozen, ready, patient_a, nurse_a, oncologist):  # noqa: F811
    """Eight oncologist sessions override the same held slot at once, through the API: one 201, seven 409
    already_overridden, one e-signed override stored."""
    from rest_framework.test import APIClient

    from il2ward.models import ApiToken
    from scheduling.models import Override
    from tests.scheduling.doses.conftest import chart, first_dose

    require_postgres()
    dose = first_dose(ready())
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})  # a hold finding: CV-SBP
    token = ApiToken.objects.create(user=oncologist)[1]
    answers: list[tuple[int, str]] = []

    def override():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post(
            f"/api/v1/doses/{dose.pk}/override/", {"reason": "SBP 85 is her baseline", "password": PASSWORD},
            format="json",
        )  # fmt: skip
        answers.append((response.status_code, response.json().get("code", "")))

    errors = run_together(*([override] * 8))
    print(f"8 concurrent overrides: {sorted(answers)}, {len(errors)} errors")
    assert errors == []
    assert sorted(answers) == [(201, "")] + [(409, "already_overridden")] * 7, answers
    assert Override.objects.filter(dose=dose).count() == 1


def test_assigning_the_nurse_while_vitals_are_charted_never_fails(transactional_db, ward_a, nurse_a, nurse_a2,
                                                                  oncologist):  # fmt: skip
    """The patient row is a parent of every vitals set: the assignment locks it FOR NO KEY UPDATE, so the vitals'
    commits (KEY SHARE on it) never wait for it while it waits for the audit chain."""
    from il2ward.recipients import patient_assign_nurse

    require_postgres()
    errors = []
    for i in range(ROUNDS):
        now = timezone.now()
        patient = patient_create(
            mrn=f"AS-{i}", name=f"Assign {i}", birth_date=now.date() - timedelta(days=20000), ward=ward_a,
            by=oncologist, now=now,
        )  # fmt: skip
        errors += run_together(
            lambda patient=patient, i=i: patient_assign_nurse(
                patient_id=patient.pk, nurse=(nurse_a, nurse_a2)[i % 2], by=oncologist, now=timezone.now()
            ),
            lambda patient=patient: obs.vitals_record(
                patient=patient, recorded_at=timezone.now(), by=nurse_a, now=timezone.now(), **NORMAL_VITALS
            ),
            lambda patient=patient: obs.vitals_record(
                patient=patient, recorded_at=timezone.now(), by=nurse_a2, now=timezone.now(), **NORMAL_VITALS
            ),
        )
    print(f"nurse assignment vs vitals: {ROUNDS} rounds, {len(errors)} errors")
    assert errors == [], errors
    assert Patient.objects.filter(mrn__startswith="AS-", assigned_nurse__isnull=False).count() == ROUNDS
