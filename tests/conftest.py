"""Personas and helpers shared by every test (ARCHITECTURE.md, Tests).

Ward A (America/Chicago) and ward B (Europe/Berlin); nurse A, a second nurse A (blind double checks), nurse B,
a charge nurse on A, an oncologist and a pharmacist. Everyone's password is PASSWORD.
"""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

# CI runs the property tests with a fixed seed so a run is reproducible; locally they explore freely.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

PASSWORD = "correct-horse-battery"
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def pytest_report_header(config):
    return [
        f"DATABASE_URL: {'set' if os.environ.get('DATABASE_URL') else 'unset (SQLite)'}",
        f"REDIS_URL: {'set' if os.environ.get('REDIS_URL') else 'unset (Redis tests skip)'}",
    ]


APP_DB_ROLE = os.environ.get("IL2WARD_APP_DB_ROLE") or "il2ward_app"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After pytest-django has created and migrated the test database, on PostgreSQL create the application role
    (not the owner) and grant it what production grants (il2ward.dbroles), so tests can connect as it."""
    from django.db import connection

    from il2ward.dbroles import ensure_role, grant_app_role

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            ensure_role(connection, APP_DB_ROLE, os.environ.get("IL2WARD_APP_DB_PASSWORD", ""))
            grant_app_role(connection, APP_DB_ROLE)
    yield


@pytest.fixture
def ward_a(db):
    from il2ward.services import ward_upsert

    return ward_upsert(code="onc-a", name="Oncology A", tz="America/Chicago", now=NOW)


@pytest.fixture
def ward_b(db):
    from il2ward.services import ward_upsert

    return ward_upsert(code="onc-b", name="Oncology B", tz="Europe/Berlin", now=NOW)


def make_staff(username, role, wards=(), printed_name=""):
    from il2ward.services import staff_upsert

    return staff_upsert(
        username=username,
        role=role,
        password=PASSWORD,
        ward_codes=[w.code for w in wards],
        printed_name=printed_name or username.replace("_", " ").title(),
        now=NOW,
    )


@pytest.fixture
def nurse_a(ward_a):
    return make_staff("nurse_a", "nurse", [ward_a], "Alice Nurse RN")


@pytest.fixture
def nurse_a2(ward_a):
    return make_staff("nurse_a2", "nurse", [ward_a], "Amira Second RN")


@pytest.fixture
def nurse_b(ward_b):
    return make_staff("nurse_b", "nurse", [ward_b], "Bea Nurse RN")


@pytest.fixture
def charge_nurse(ward_a):
    return make_staff("charge_a", "charge_nurse", [ward_a], "Chris Charge RN")


@pytest.fixture
def oncologist(ward_a, ward_b):
    return make_staff("onc", "oncologist", [ward_a, ward_b], "Dr Olga Oncologist")


@pytest.fixture
def pharmacist(db):
    return make_staff("pharm", "pharmacist", [], "Phil Pharmacist")


@pytest.fixture
def patient_a(ward_a, oncologist):
    from il2ward.services import patient_create

    return patient_create(
        mrn="A-0001", name="Pat Alpha", birth_date=datetime(1970, 5, 1).date(), ward=ward_a, by=oncologist, now=NOW
    )


@pytest.fixture
def patient_b(ward_b, oncologist):
    from il2ward.services import patient_create

    return patient_create(
        mrn="B-0001", name="Pat Beta", birth_date=datetime(1965, 1, 2).date(), ward=ward_b, by=oncologist, now=NOW
    )


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates it with that user's token."""

    class Client(APIClient):
        def as_user(self, user):
            from il2ward.models import ApiToken

            # Straight from knox's manager: no security-log row, as a test's own set-up.
            _, token = ApiToken.objects.create(user=user, client="test")
            self.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            return self

    return Client()


@pytest.fixture
def make_course(oncologist):
    """Create a course and write its calendar as the Celery task would (synchronously, for service-level tests)."""
    from scheduling.services import course_create, course_materialise_calendar

    def _make(patient, first_dose_at=None, weight="80", now=NOW, **kwargs):
        first_dose_at = first_dose_at or datetime(2027, 3, 12, 22, 0, tzinfo=UTC)
        # A course that started well before `now` was created back then (a course may not start > 1 day ago).
        created_at = min(now, first_dose_at - timedelta(hours=2))
        course = course_create(
            patient=patient,
            first_dose_at=first_dose_at,
            dosing_weight_kg=Decimal(weight),
            by=oncologist,
            now=created_at if first_dose_at < now - timedelta(days=1) else now,
            **kwargs,
        )
        course_materialise_calendar(course_id=course.pk, now=now)
        course.refresh_from_db()
        return course

    return _make


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture(autouse=True)
def audit_checkpoint_file(settings, tmp_path):
    """Each test's audit checkpoints go to a file of its own (a checkpoint names rows only that test wrote)."""
    settings.IL2WARD_AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Personas are created with real passwords in every test; a cheap hasher keeps that from dominating the run.

    The password checks themselves (login, token, e-signature re-entry) still run through Django's auth.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
