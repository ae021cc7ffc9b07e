"""A ward with real data for the contract tests: two nurses, an oncologist, a patient with an attested course whose
calendar is written, a set of every observation, and one dose evaluated, given and one held, so the fuzzer and the
generated client reach real rows as well as 404s."""

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from il2ward.models import ApiToken
from tests.conftest import PASSWORD, make_staff


@pytest.fixture
def contract_ward(transactional_db, ward_a):
    from il2ward.services import patient_create
    from scheduling.services import course_create, course_materialise_calendar

    now = timezone.now()
    nurse = make_staff("nurse_a", "nurse", [ward_a], "Alice Nurse RN")
    make_staff("nurse_a2", "nurse", [ward_a], "Amira Second RN")
    onc = make_staff("onc", "oncologist", [ward_a], "Dr Olga Oncologist")
    patient = patient_create(
        mrn="C-0001", name="Pat Contract", birth_date=(now - timedelta(days=365 * 50)).date(), ward=ward_a, by=onc,
        now=now,
    )  # fmt: skip
    from decimal import Decimal

    course = course_create(
        patient=patient, first_dose_at=now + timedelta(hours=1), dosing_weight_kg=Decimal("80"), by=onc, now=now
    )
    course_materialise_calendar(course_id=course.pk, now=now)
    return SimpleNamespace(
        ward=ward_a,
        nurse=nurse,
        onc=onc,
        patient=patient,
        course=course,
        tokens={u.username: ApiToken.objects.create(user=u, client="contract")[1] for u in (nurse, onc)},
        password=PASSWORD,
    )


def served_schema(base_url: str, token: str) -> dict:
    """The schema as the server publishes it (authenticated: it may be behind login)."""
    import urllib.request

    request = urllib.request.Request(
        f"{base_url}/api/schema/?format=json",
        headers={"Authorization": f"Token {token}", "Accept": "application/vnd.oai.openapi+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local live server
        return json.load(response)
