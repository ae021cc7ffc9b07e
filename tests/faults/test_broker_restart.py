"""Redis killed and restarted under a real worker (this test's own redis-server, never the shared one): the worker
keeps retrying the broker instead of exiting, reconnects by itself, and a task published after the restart runs.
Run with and without Redis persistence (without it the restarted Redis is empty; the database is the truth)."""

import time

import pytest

from il2ward.models import Delivery
from tests.faults.conftest import FAST, all_delivered, webhook_ids, write_notifications
from tests.faults.own_services import OwnRedis
from tests.notifications.test_broker_down import broker_at
from tests.workers import celery_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize("persistent", [False, True], ids=["no-persistence", "appendonly"])
def test_worker_survives_a_redis_restart_and_runs_tasks_published_after_it(
    services, tmp_path, webhook_on, patient_a, nurse_a, persistent
):
    webhook = webhook_on()
    with OwnRedis(tmp_path / "redis", persistent=persistent) as redis_server, broker_at(redis_server.url):
        with celery_worker(tmp_path, redis_url=redis_server.url, env=FAST) as worker:
            write_notifications(patient_a, [nurse_a], 3)
            wait_until(lambda: len(webhook.hooks) >= 3, timeout=60, message=worker.log)

            redis_server.kill()
            # Charting during the outage: the rows are written, the publishes are dropped (the sweep's job).
            write_notifications(patient_a, [nurse_a], 2, start=3)
            wait_until(lambda: "Trying again" in worker.log(tail=10**6), timeout=30, message=worker.log)
            time.sleep(3)  # several failed reconnection attempts
            assert worker.process.poll() is None, f"the worker exited when Redis went away:\n{worker.log()}"

            redis_server.start()
            wait_until(
                lambda: worker.log(tail=10**6).count("Connected to redis://") >= 2, timeout=60, message=worker.log
            )
            write_notifications(patient_a, [nurse_a], 2, start=5)  # published to the restarted broker
            from il2ward.celery import app

            app.send_task("il2ward.deliveries_sweep")  # what beat does every interval: picks up the two dropped
            wait_until(all_delivered, timeout=60, message=worker.log)
            log = worker.log(tail=10**6)
    counts = webhook.delivery_counts()
    print(f"broker restart (persistent={persistent}): due {len(webhook_ids())}, delivered {len(counts)}, "
          f"max per delivery {max(counts.values())}")  # fmt: skip
    assert set(counts) == webhook_ids() and len(counts) == 7  # none lost
    assert set(counts.values()) == {1}  # none twice
    assert "Unrecoverable error" not in log
    assert Delivery.objects.filter(status="delivered").count() == Delivery.objects.count()
