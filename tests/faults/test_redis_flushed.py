"""Redis flushed (FLUSHDB) in the middle of a run: the queued delivery messages are gone, the outbox rows are not,
and the resend sweep delivers every one of them, each once."""

import time

import pytest

from il2ward.models import Delivery
from tests.faults.conftest import FAST, all_delivered, sweep_until, webhook_ids, write_notifications
from tests.workers import celery_worker, purge_redis, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_redis_flushed_mid_run_nothing_is_missed(services, tmp_path, webhook_on, patient_a, nurse_a):
    webhook = webhook_on(delay=0.1)  # slow enough that a queue builds up
    with celery_worker(tmp_path, redis_url=services, env=FAST) as worker:
        write_notifications(patient_a, [nurse_a], 30)
        wait_until(lambda: len(webhook.hooks) >= 3, timeout=60, message=worker.log)
        purge_redis(services)  # FLUSHDB: every queued message is lost
        time.sleep(2)  # the worker finishes what it already held
        lost = Delivery.objects.filter(channel="webhook", status="pending").count()
        assert lost >= 10, f"the flush should have lost queued messages ({lost} pending)"
        sweep_until(all_delivered, timeout=90, message=worker.log)
        assert "Traceback" not in worker.log(tail=10**6)
    counts = webhook.delivery_counts()
    print(f"\nredis flushed: due {len(webhook_ids())}, messages lost {lost}, delivered {len(counts)}, "
          f"received twice {sum(n > 1 for n in counts.values())}")  # fmt: skip
    assert set(counts) == webhook_ids() and len(counts) == 30
    assert max(counts.values()) == 1  # nothing sent twice
