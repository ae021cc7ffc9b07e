"""The worker is killed (SIGKILL) while sending: the claim stays `sending` until its lease runs out, the resend sweep
takes it back and another worker delivers it. At most one duplicate reaches the receiver."""

import threading
import time

import pytest

from il2ward.models import Delivery
from tests.faults.conftest import FAST, all_delivered, sweep_until, write_notifications
from tests.workers import celery_worker, start_worker

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_worker_killed_while_sending_is_delivered_with_at_most_one_duplicate(
    services, tmp_path, webhook_on, patient_a, nurse_a
):
    hold = threading.Event()
    webhook = webhook_on(hold=hold)  # the first POST hangs until released
    first = start_worker(tmp_path, redis_url=services, env=FAST)
    try:
        write_notifications(patient_a, [nurse_a], 3)
        assert webhook.first_arrived.wait(60), (
            f"{list(Delivery.objects.values_list('pk', 'channel', 'status'))}\n{first.log(tail=20000)}"
        )
        first.kill()  # mid-send: the request is out, the result never recorded
    finally:
        first.stop()
        hold.set()
    stuck = Delivery.objects.get(channel="webhook", status="sending")
    assert stuck.attempts == 1
    with celery_worker(tmp_path, redis_url=services, env=FAST) as second:
        time.sleep(3)  # the claim's lease (IL2WARD_DELIVERY_LEASE_SECONDS=3) runs out
        sweep_until(all_delivered, timeout=90, message=second.log)
    stuck.refresh_from_db()
    assert stuck.status == "delivered" and stuck.attempts == 2
    counts = webhook.delivery_counts()
    assert counts[stuck.pk] == 2  # the one sent before the kill and the resend: one duplicate, never more
    assert all(n == 1 for pk, n in counts.items() if pk != stuck.pk) and len(counts) == 3
