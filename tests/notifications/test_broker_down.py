"""Redis down: charting still works and no reminder is lost. The broker URL points at a closed port (a real refused
connection, not a stub); once it is back, the resend sweep publishes the delivery and the worker's task sends it.
tests/faults/test_broker_outage.py does the same with a real Redis and a real worker."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from il2ward.celery import app
from il2ward.models import Delivery, Notification
from il2ward.notifications import deliveries_resend
from scheduling.services import reminders
from tests.notifications.conftest import NORMAL_VITALS, published_tasks

pytestmark = pytest.mark.django_db
FIRST = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)


@contextmanager
def broker_at(url: str):
    """Point the Celery app at another broker, dropping the connection and producer pools bound to the old one."""
    configured = app.conf.broker_url

    def switch(to):
        app.conf.broker_url = to
        app._pool = None
        app.amqp._producer_pool = None

    switch(url)
    try:
        yield
    finally:
        switch(configured)


def test_with_the_broker_down_charting_works_and_the_reminder_is_delivered_once_it_is_back(
    api, make_course, patient_a, nurse_a, webhook, django_capture_on_commit_callbacks, caplog
):
    course = make_course(patient_a)
    dose = course.doses.get(cycle=1, number=1)
    due_time = FIRST - timedelta(minutes=30)
    with broker_at("redis://127.0.0.1:9/0"), published_tasks() as sent:
        with (
            time_machine.travel(due_time),
            django_capture_on_commit_callbacks(execute=True),
        ):  # ticking: kombu waits on the clock
            response = api.as_user(nurse_a).post(
                f"/api/v1/patients/{patient_a.pk}/vitals/",
                {**NORMAL_VITALS, "temp_c": "37.2", "recorded_at": "2027-03-12T21:25:00Z"},
                format="json",
            )
            assert response.status_code == 201, response.content  # charting never depends on the broker
        with django_capture_on_commit_callbacks(execute=True):
            reminders.dose_reminders(now=due_time)
    assert sent == []  # nothing reached a broker
    assert "left to the sweep" in caplog.text
    row = Notification.objects.get(kind="dose_due", dose_id=dose.pk, recipient=nurse_a)
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    assert delivery.status == "pending" and webhook.hooks == []

    # The broker is back: the beat's resend sweep publishes it, the worker's task sends it.
    later = due_time + timedelta(seconds=61)
    with published_tasks() as sent:
        deliveries_resend(now=later)
    (ids,) = [args for name, args in sent if name == "il2ward.deliver"]
    pending = set(Delivery.objects.filter(status="pending").values_list("pk", flat=True))
    assert delivery.pk in ids and set(ids) == pending  # the dose_due page, and the assessment_due written with it
    from il2ward.tasks import deliver

    with time_machine.travel(later, tick=False):
        deliver(*ids)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert webhook.delivery_counts() == dict.fromkeys(ids, 1)
    assert {(h.json["kind"], h.json["dose"]["id"]) for h in webhook.hooks} == {
        ("dose_due", dose.pk),
        ("assessment_due", dose.pk),
    }
