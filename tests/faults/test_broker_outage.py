"""Redis down for the web process: charting works, the reminder's row is written, its publish is dropped; once the
broker is back the beat's resend sweep (here: one sweep message) has the real worker deliver it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from il2ward.models import Delivery, Notification
from scheduling.services import reminders
from tests.faults.conftest import FAST, all_delivered, sweep_until
from tests.notifications.conftest import NORMAL_VITALS
from tests.notifications.test_broker_down import broker_at
from tests.workers import celery_worker

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_redis_down_charting_works_and_the_reminder_arrives_once_redis_is_back(
    services, tmp_path, webhook_on, api, make_course, patient_a, nurse_a
):
    webhook = webhook_on()
    now = timezone.now()
    course = make_course(patient_a, first_dose_at=now + timedelta(minutes=20), now=now)
    with celery_worker(tmp_path, redis_url=services, env=FAST) as worker:
        with broker_at("redis://127.0.0.1:9/0"):
            response = api.as_user(nurse_a).post(
                f"/api/v1/patients/{patient_a.pk}/vitals/",
                {**NORMAL_VITALS, "temp_c": "37.2", "recorded_at": now.isoformat()},
                format="json",
            )
            assert response.status_code == 201, response.content
            reminders.dose_reminders(now=timezone.now())  # writes assessment_due and dose_due; publishes fail
        dose = course.doses.get(cycle=1, number=1)
        assert Notification.objects.filter(dose_id=dose.pk, kind="dose_due").exists()
        assert set(Delivery.objects.filter(channel="webhook").values_list("status", flat=True)) == {"pending"}
        sweep_until(all_delivered, timeout=60, message=worker.log)
    assert {h.json["kind"] for h in webhook.hooks} == {"assessment_due", "dose_due"}
    assert set(webhook.delivery_counts().values()) == {1}
