"""The database goes away under the worker (its sessions terminated with pg_terminate_backend, as a restart would):
tasks fail while it is gone, the rows stay, and once it is back the resend sweep delivers everything (at most one
duplicate each, for a send whose result could not be recorded)."""

import time

import pytest

from tests.faults.conftest import (
    FAST,
    all_delivered,
    sweep_until,
    terminate_other_backends,
    webhook_ids,
    write_notifications,
)
from tests.workers import celery_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_nothing_is_lost_when_the_database_comes_back(services, tmp_path, webhook_on, patient_a, nurse_a):
    webhook = webhook_on(delay=0.2)  # each task holds its database session while it posts
    with celery_worker(tmp_path, redis_url=services, env=FAST) as worker:
        write_notifications(patient_a, [nurse_a], 30)
        wait_until(lambda: len(webhook.hooks) >= 2, timeout=60, message=worker.log)
        killed = 0
        deadline = time.monotonic() + 30
        while "OperationalError" not in worker.log(tail=10**6) and time.monotonic() < deadline:
            killed += terminate_other_backends()
            time.sleep(0.1)
        assert killed >= 1 and "OperationalError" in worker.log(tail=10**6), worker.log()
        sweep_until(all_delivered, timeout=120, message=worker.log)
    counts = webhook.delivery_counts()
    print(f"\ndatabase sessions killed {killed}: due {len(webhook_ids())}, delivered {len(counts)}, "
          f"received twice {sum(n > 1 for n in counts.values())}")  # fmt: skip
    assert set(counts) == webhook_ids() and len(counts) == 30
    assert max(counts.values()) <= 2
