"""Two nurses charting one dose at once, through the real views on PostgreSQL: 40 doses × 8 concurrent requests.

Exactly one administration per dose; every other request is a 409 already_charted (API) or a clear refusal (page);
never a 5xx. The dose row lock in scheduling.services.dose_administer is what serialises them.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduling.models import Administration, Dose
from tests.conftest import PASSWORD
from tests.scheduling.mar.conftest import ready_course, record_assessment
from tests.workers import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DOSES = 40
CONCURRENT = 8


@pytest.fixture
def forty_doses(transactional_db, ward_a, oncologist, nurse_a, nurse_a2, charge_nurse, make_course):
    """40 patients on ward A, each with dose 1 due 20 minutes from now (real time: the views read the clock)."""
    require_postgres()
    from il2ward.services import patient_create

    now = timezone.now()
    doses = []
    for i in range(DOSES):
        patient = patient_create(
            mrn=f"C-{i:03d}",
            name=f"Race {i:03d}",
            birth_date=now.date().replace(year=1970),
            ward=ward_a,
            by=oncologist,
            now=now,
        )
        course = ready_course(
            patient,
            oncologist=oncologist,
            nurse=nurse_a,
            make_course=make_course,
            first_dose_at=now + timedelta(minutes=20),
            now=now,
        )
        record_assessment(patient, nurse=nurse_a, now=now)
        doses.append(course.doses.get(cycle=1, number=1))
    return doses


def race(doses, attempt) -> list[list[tuple[int, str]]]:
    """For each dose, CONCURRENT threads call attempt(dose, i) at once (a barrier). Each thread has its own client
    and its own database connection, closed when it ends."""
    outcomes = []
    for dose in doses:
        barrier = threading.Barrier(CONCURRENT)
        results: list = [None] * CONCURRENT

        def run(i, dose=dose, barrier=barrier, results=results):
            try:
                results[i] = attempt(dose, i, barrier)
            except Exception as exc:  # noqa: BLE001 - reported as an outcome, the test fails on it
                results[i] = (599, repr(exc))
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        outcomes.append(results)
    return outcomes


def check(outcomes, *, success: int, refusal: int, refusal_text: str):
    assert Administration.objects.count() == DOSES
    assert Dose.objects.filter(status=Dose.Status.GIVEN).count() == DOSES
    for results in outcomes:
        statuses = sorted(status for status, _ in results)
        assert statuses.count(success) == 1, results
        assert statuses.count(refusal) == CONCURRENT - 1, results
        assert all(status < 500 for status in statuses), results
        assert all(refusal_text in body for status, body in results if status == refusal), results


def test_concurrent_api_administer(forty_doses, nurse_a, charge_nurse):
    from rest_framework.test import APIClient

    from il2ward.models import ApiToken

    tokens = [ApiToken.objects.create(user=user)[1] for user in (nurse_a, charge_nurse)]

    def attempt(dose, i, barrier):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[i % 2]}")
        body = {
            "started_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
            "verifier": "nurse_a2",
            "verifier_password": PASSWORD,
            "verified_dose_iu": dose.course.dose_iu,
        }
        barrier.wait(timeout=60)
        response = client.post(f"/api/v1/doses/{dose.pk}/administer/", body, format="json")
        return response.status_code, response.content.decode()

    check(race(forty_doses, attempt), success=201, refusal=409, refusal_text='"code":"already_charted"')


def test_concurrent_page_give(forty_doses, nurse_a, charge_nurse, ward_a):
    from django.test import Client

    def attempt(dose, i, barrier):
        client = Client()
        client.force_login(nurse_a if i % 2 else charge_nurse)
        local = timezone.now().astimezone(ward_a.zone) - timedelta(minutes=1)
        form = {
            "action": "give",
            "give-started_at": local.strftime("%Y-%m-%dT%H:%M"),
            "give-vial_lot": f"LOT{dose.pk}",
            "give-reconstituted_at": (local - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"),
            "give-verifier": "nurse_a2",
            "give-verifier_password": PASSWORD,
            "give-verified_dose_iu": str(dose.course.dose_iu),
        }
        barrier.wait(timeout=60)
        response = client.post(f"/doses/{dose.pk}/", form)
        return response.status_code, response.content.decode()

    check(race(forty_doses, attempt), success=302, refusal=409, refusal_text="This dose has already been charted.")
