"""The worker is killed (SIGKILL) in the middle of its deliveries: one POST is out (the receiver holds it), the rest
are queued. The claim of the one in flight stays `sending` until its lease runs out, the resend sweep takes it back
and another worker delivers it and everything still queued. Counted and asserted: due vs delivered (0 lost), and
exactly one duplicate at the receiver, the documented at-least-once resend, carrying the same event id and delivery
id (the idempotency key a receiver deduplicates on)."""

import threading
import time

import pytest

from il2ward.models import Delivery
from tests.faults.conftest import FAST, all_delivered, sweep_until, webhook_ids, write_notifications
from tests.workers import celery_worker, start_worker

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
DUE = 12


def test_worker_killed_during_deliveries_loses_none_and_duplicates_only_the_one_in_flight(
    services, tmp_path, webhook_on, patient_a, nurse_a
):
    hold = threading.Event()
    webhook = webhook_on(hold=hold)  # the first POST hangs until released
    first = start_worker(tmp_path, redis_url=services, env=FAST)
    try:
        write_notifications(patient_a, [nurse_a], DUE)
        assert webhook.first_arrived.wait(60), (
            f"{list(Delivery.objects.values_list('pk', 'channel', 'status'))}\n{first.log(tail=20000)}"
        )
        first.kill()  # mid-send: the request is out, the result never recorded, the rest still queued
    finally:
        first.stop()
        hold.set()
    stuck = Delivery.objects.get(channel="webhook", status="sending")
    queued = Delivery.objects.filter(channel="webhook", status="pending").count()
    assert stuck.attempts == 1 and queued == DUE - 1
    with celery_worker(tmp_path, redis_url=services, env=FAST) as second:
        time.sleep(3)  # the claim's lease (IL2WARD_DELIVERY_LEASE_SECONDS=3) runs out
        sweep_until(all_delivered, timeout=90, message=second.log)
    stuck.refresh_from_db()
    counts = webhook.delivery_counts()
    events = [hook.headers["X-IL2Ward-Event-Id"] for hook in webhook.hooks]
    print(
        f"\nworker killed mid-delivery: due {len(webhook_ids())}, queued at the kill {queued}, delivered "
        f"{Delivery.objects.filter(channel='webhook', status='delivered').count()}, POSTs received "
        f"{len(webhook.hooks)}, duplicates {len(webhook.hooks) - len(counts)}, distinct event ids {len(set(events))}"
    )
    assert set(counts) == webhook_ids() and len(counts) == DUE  # none lost
    assert stuck.status == "delivered" and stuck.attempts == 2
    assert counts[stuck.pk] == 2  # the one sent before the kill and the resend: one duplicate, never more
    assert all(n == 1 for pk, n in counts.items() if pk != stuck.pk)
    # The duplicate is recognisable: the same event id, so a receiver keeps one.
    resent = [h for h in webhook.hooks if int(h.headers["X-IL2Ward-Delivery"]) == stuck.pk]
    assert len({h.headers["X-IL2Ward-Event-Id"] for h in resent}) == 1 and len(set(events)) == DUE
    assert [h.json["attempt"] for h in resent] == [1, 2]
