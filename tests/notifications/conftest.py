"""Helpers for the reminders and notifications.

NOW = 2027-03-10 12:00 UTC = 06:00 in Chicago (ward A, CST) = 13:00 in Berlin (ward B). `make_course`
(tests/conftest.py) puts cycle 1 slot 1 of a course at 2027-03-12 22:00 UTC unless told otherwise.
"""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery.signals import after_task_publish

from il2ward.models import Delivery, Notification
from tests.charting import NORMAL_VITALS
from tests.conftest import NOW
from tests.notifications.sinks import SmtpSink, WebhookSink


@contextmanager
def published_tasks():
    """(task name, args) of every message the broker accepted while the block runs (after_task_publish)."""
    sent: list[tuple[str, tuple]] = []

    def record(sender=None, body=None, **kwargs):
        sent.append((sender, tuple(body[0])))

    after_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        after_task_publish.disconnect(record)


def rows(**filters) -> list[tuple[str, str]]:
    """(kind, recipient username) of the notifications matching `filters`, sorted."""
    return sorted(Notification.objects.filter(**filters).values_list("kind", "recipient__username"))


def channels_of(notification) -> dict[str, str]:
    return dict(Delivery.objects.filter(notification=notification).values_list("channel", "status"))


def vitals(patient, by, *, at, **changes):
    from monitoring.services import vitals_record

    return vitals_record(patient=patient, recorded_at=at, by=by, now=at, **{**NORMAL_VITALS, **changes})


@pytest.fixture
def active_course(make_course, patient_a):
    """A course whose cycle 1 began (slot 1 due NOW − 1 h): status active at NOW."""
    from scheduling.services import courses_advance_status

    def _make(patient=None, first=NOW - timedelta(hours=1)):
        course = make_course(patient or patient_a, first_dose_at=first, now=first - timedelta(hours=6))
        courses_advance_status(now=NOW)
        course.refresh_from_db()
        return course

    return _make


@pytest.fixture
def smtp(settings):
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        yield sink


@pytest.fixture
def webhook(ward_a):
    """A webhook receiver, configured on ward A with a secret."""
    with WebhookSink() as sink:
        ward_a.webhook_url, ward_a.webhook_secret = sink.url, "s3cret-key"
        ward_a.save(update_fields=["webhook_url", "webhook_secret"])
        yield sink


@pytest.fixture
def flagged(make_course, patient_a, nurse_a, oncologist):
    """A hold: slot 1 due at NOW + 30 min, SBP 85 at NOW − 5 min, evaluated at NOW: hold_flagged to nurse and onc."""
    from scheduling.services import dose_evaluate

    nurse_a.email = "nurse@example.org"
    nurse_a.save(update_fields=["email"])
    course = make_course(patient_a, first_dose_at=NOW + timedelta(minutes=30), now=NOW - timedelta(hours=6))
    vitals(patient_a, nurse_a, at=NOW - timedelta(minutes=5), sbp=85)
    dose = course.doses.get(cycle=1, number=1)
    dose_evaluate(dose_id=dose.pk, now=NOW)
    dose.refresh_from_db()
    assert dose.flag == "hold"
    return dose


@pytest.fixture
def sms_gateway(settings):
    """A generic HTTP SMS gateway on 127.0.0.1 (the webhook receiver: it records every POST and answers as told)."""
    with WebhookSink() as sink:
        settings.IL2WARD_SMS_GATEWAY_URL = sink.url
        settings.IL2WARD_SMS_GATEWAY_TOKEN = "gw-token-1"
        settings.IL2WARD_SMS_SENDER = "IL2Ward"
        yield sink
