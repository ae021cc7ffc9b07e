"""The SMS gateway down: the real worker's attempts fail with 503 and the delivery stays pending (retried with
backoff by the resend sweep), nothing is lost; once the gateway answers, exactly one text is accepted for it."""

import pytest
from django.db import transaction
from django.utils import timezone

from il2ward.models import Delivery, StaffProfile
from il2ward.notifications import notify
from tests.faults.conftest import FAST, all_delivered, sweep_until
from tests.notifications.sinks import WebhookSink
from tests.workers import celery_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_texts_wait_out_a_gateway_outage_and_are_sent_once_when_it_is_back(
    services, tmp_path, settings, patient_a, nurse_a
):
    with WebhookSink(down=True) as gateway:
        settings.IL2WARD_SMS_GATEWAY_URL = gateway.url
        StaffProfile.objects.filter(user=nurse_a).update(channels={"sms": {"on": True, "phone": "+14155552671"}})
        env = {**FAST, "IL2WARD_SMS_GATEWAY_URL": gateway.url, "IL2WARD_SMS_GATEWAY_TOKEN": "t"}
        with celery_worker(tmp_path, redis_url=services, env=env) as worker:
            with transaction.atomic():  # the delivery task is published when this commits
                (row,) = notify(kind="dose_due", recipients=[nurse_a], dedupe="dose_due:dose77",
                                now=timezone.now(), patient=patient_a, course_id=1, dose_id=77,
                                details={"cycle": 1, "number": 3})  # fmt: skip
            sms = Delivery.objects.get(notification=row, channel="sms")
            wait_until(lambda: Delivery.objects.get(pk=sms.pk).attempts >= 1, timeout=30, message=worker.log)
            sweep_until(lambda: Delivery.objects.get(pk=sms.pk).attempts >= 3, timeout=60, message=worker.log)
            sms.refresh_from_db()
            assert sms.status in ("pending", "sending") and sms.last_error == "HTTP 503"
            gateway.down = False
            sweep_until(all_delivered, timeout=60, message=worker.log)
    statuses = [hook.status for hook in gateway.hooks]
    assert statuses.count(200) == 1 and statuses[-1] == 200 and statuses.count(503) >= 3
    assert {hook.json["reference"] for hook in gateway.hooks} == {f"il2ward-delivery-{sms.pk}"}  # one text, retried
    assert "77" in gateway.hooks[-1].json["text"] and "Pat" not in gateway.hooks[-1].body.decode()
