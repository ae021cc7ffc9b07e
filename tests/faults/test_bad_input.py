"""Hostile or mistaken input is refused with the API's error shape and nothing stored, never a 500: out-of-range
times, NUL bytes, a 10,000-deep JSON body, a body over the limit; and a database outage is a 503 with Retry-After."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from il2ward.models import AuditEvent
from monitoring.models import VitalSigns
from scheduling.models import Course
from tests.notifications.conftest import NORMAL_VITALS
from tests.workers import require_postgres

pytestmark = pytest.mark.django_db


def vitals_post(api, nurse, patient, **changes):
    body = {**NORMAL_VITALS, "recorded_at": timezone.now().isoformat(), **changes}
    return api.as_user(nurse).post(f"/api/v1/patients/{patient.pk}/vitals/", body, format="json")


@pytest.mark.parametrize(
    "recorded_at",
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1900-01-01T00:00:00Z"],
)
def test_vitals_at_an_impossible_time_are_a_400_naming_the_field_and_nothing_is_stored(
    api, nurse_a, patient_a, recorded_at
):
    audits = AuditEvent.objects.count()
    response = vitals_post(api, nurse_a, patient_a, recorded_at=recorded_at)
    assert response.status_code == 400, response.content
    assert "recorded_at" in response.json()["errors"]
    assert not VitalSigns.objects.exists() and AuditEvent.objects.count() == audits
    assert api.as_user(nurse_a).get(f"/api/v1/patients/{patient_a.pk}/vitals/").status_code == 200


def test_vitals_within_the_back_entry_limit_are_accepted_and_beyond_it_refused(api, nurse_a, patient_a, settings):
    now = timezone.now()
    inside = now - timedelta(days=settings.IL2WARD_BACK_ENTRY_DAYS) + timedelta(minutes=5)
    assert vitals_post(api, nurse_a, patient_a, recorded_at=inside.isoformat()).status_code == 201
    outside = now - timedelta(days=settings.IL2WARD_BACK_ENTRY_DAYS, minutes=5)
    response = vitals_post(api, nurse_a, patient_a, recorded_at=outside.isoformat())
    assert response.status_code == 400 and "back-entry" in response.json()["errors"]["recorded_at"][0]
    assert VitalSigns.objects.count() == 1


def test_fluid_period_from_year_one_is_a_400(api, nurse_a, patient_a):
    response = api.as_user(nurse_a).post(
        f"/api/v1/patients/{patient_a.pk}/fluids/",
        {"period_start": "0001-01-01T00:00:00Z", "period_end": "0001-01-01T08:00:00Z", "intake_ml": 100,
         "urine_ml": 100},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert "period_start" in response.json()["errors"]


@pytest.mark.parametrize(
    ("offset", "allowed"),
    [(timedelta(days=-3650), False), (timedelta(days=-2), False), (timedelta(hours=-12), True),
     (timedelta(days=300), True), (timedelta(days=400), False)],
)  # fmt: skip
def test_course_first_dose_is_bounded_to_one_day_past_and_one_year_ahead(patient_a, oncologist, offset, allowed):
    from il2ward.errors import Invalid
    from scheduling.services import course_create

    now = timezone.now()

    def create():
        return course_create(
            patient=patient_a, first_dose_at=now + offset, dosing_weight_kg=Decimal(80), by=oncologist, now=now
        )

    if allowed:
        assert create().pk
    else:
        with pytest.raises(Invalid) as exc:
            create()
        assert list(exc.value.errors) == ["first_dose_at"]
        assert not Course.objects.exists()


def test_course_in_year_9999_is_a_400_through_the_api(api, oncologist, patient_a):
    response = api.as_user(oncologist).post(
        "/api/v1/courses/",
        {"patient": patient_a.pk, "first_dose_at": "9999-12-31T23:00:00Z", "dosing_weight_kg": "80"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "first_dose_at" in response.json()["errors"]
    assert not Course.objects.exists()


def test_nul_in_a_query_parameter_is_a_400_and_a_plain_one_is_fine(api, nurse_a):
    response = api.as_user(nurse_a).get("/api/v1/patients/?ward=A%00B")
    assert response.status_code == 400 and "NUL" in response.json()["errors"]["query"][0]
    assert api.as_user(nurse_a).get("/api/v1/patients/?ward=AB").status_code == 200


def test_nul_in_a_text_field_is_a_400_and_nothing_is_stored(api, nurse_a, patient_a):
    response = api.as_user(nurse_a).post(
        f"/api/v1/patients/{patient_a.pk}/events/",
        {"kind": "infection", "recorded_at": timezone.now().isoformat(), "note": "bad\x00note"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "errors" in response.json()
    from monitoring.models import ClinicalEvent

    assert not ClinicalEvent.objects.exists()


def test_a_10000_deep_json_body_is_a_400_and_a_shallow_one_is_parsed(api, nurse_a, patient_a):
    deep = "[" * 10_000 + "]" * 10_000
    client = api.as_user(nurse_a)
    url = f"/api/v1/patients/{patient_a.pk}/vitals/"
    response = client.post(url, deep, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "deeper" in response.json()["errors"]["body"][0]
    shallow = json.dumps({**NORMAL_VITALS, "recorded_at": timezone.now().isoformat()}, default=str)
    assert client.post(url, shallow, content_type="application/json").status_code == 201


def test_a_body_over_the_limit_is_a_json_413(api, nurse_a, patient_a, settings):
    client = api.as_user(nurse_a)
    url = f"/api/v1/patients/{patient_a.pk}/vitals/"
    big = json.dumps({"note": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    response = client.post(url, big, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json" and "limit" in response.json()["errors"]["body"][0]
    assert not VitalSigns.objects.exists()


@pytest.mark.postgres
def test_the_database_going_away_is_a_503_with_retry_after(transactional_db, api, nurse_a, patient_a):
    """The database is made unreachable for this process (its connection closed and pointed at a closed port)."""
    require_postgres()
    from rest_framework.test import APIClient

    from il2ward.models import ApiToken

    token = ApiToken.objects.create(user=nurse_a)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/v1/patients/{patient_a.pk}/vitals/"
    assert client.get(url).status_code == 200
    configured = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT="9", NAME=configured["NAME"])
    try:
        response = client.get(url)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(configured)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] and "unavailable" in response.json()["detail"]
    assert client.get(url).status_code == 200  # back: served again
