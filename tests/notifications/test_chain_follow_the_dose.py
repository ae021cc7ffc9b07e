"""On the real chain (a Celery worker, a beat sweeping every second, Redis, PostgreSQL, a local webhook receiver,
compressed back-off set by environment variables): a page whose first attempt failed is not sent on its retry once
the dose it announces has been held meanwhile."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from il2ward.models import Delivery
from scheduling.services import dose_hold, reminders
from tests.faults.conftest import FAST, services, start_beat, webhook_on  # noqa: F401, F811 - fixtures
from tests.workers import celery_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_dose_due_page_retried_after_the_dose_was_held_is_dropped_not_sent(
    services,  # noqa: F811
    tmp_path,
    webhook_on,  # noqa: F811
    make_course,
    patient_a,
    nurse_a,
):
    release = threading.Event()
    sink = webhook_on(statuses=[500], hold=release)  # the first attempt waits, then fails: a retry is needed
    now = timezone.now()
    course = make_course(patient_a, first_dose_at=now + timedelta(minutes=20), now=now - timedelta(hours=1))
    dose = course.doses.get(cycle=1, number=1)
    with celery_worker(tmp_path, redis_url=services, env=FAST) as worker:
        reminders.dose_reminders(now=timezone.now())  # dose_due (and assessment_due): the worker sends them
        page = Delivery.objects.get(notification__kind="dose_due", channel="webhook")
        assert sink.first_arrived.wait(30), worker.log()
        dose_hold(dose_id=dose.pk, reason="CV-SBP", by=nurse_a, now=timezone.now())  # while the page is in flight
        release.set()
        beat = start_beat(tmp_path, redis_url=services)
        try:
            wait_until(
                lambda: Delivery.objects.filter(channel="webhook", status__in=["pending", "sending"]).count() == 0,
                timeout=60,
                message=lambda: worker.log() + beat.log(),
            )
        finally:
            beat.stop()
    page.refresh_from_db()
    assert page.status == "cancelled" and page.last_error == "done: dose held", (page.status, page.last_error)
    # The first POST to arrive (dose_due or assessment_due) was held open and failed; whichever it was, no dose_due
    # page was accepted after the hold: at most the one attempt made before it.
    sent = [h.json["kind"] for h in sink.hooks]
    assert sent.count("dose_due") <= 1 and page.delivered_at is None
