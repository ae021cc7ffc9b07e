"""The sweeps have a queue of their own: a sweep runs within its interval while 200 evaluations wait.

Real workers as docker-compose.yml runs them (one taking `celery,deliveries`, a sweeper taking `sweeps`), Redis and a
database a second process can open (PostgreSQL in CI). Beside it, the nearest case: the same sweep put on the
evaluations' queue waits behind every evaluation queued before it, which is what happened before it had its own.
"""

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from il2ward.celery import app
from scheduling.task_names import EVALUATE_PATIENT, SWEEP
from tests.workers import celery_worker, purge_redis, require_redis, test_database_url, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]
BACKLOG = 200


def succeeded(log: str, task: str) -> int:
    return len(re.findall(rf"{re.escape(task)}\[[^\]]+\] succeeded", log))


@pytest.mark.django_db(transaction=True)
def test_a_sweep_runs_within_its_interval_while_200_evaluations_are_queued(
    transactional_db, tmp_path, patient_a, make_course
):
    import redis

    redis_url = require_redis()
    database_url = test_database_url()
    purge_redis(redis_url)
    now = timezone.now()
    make_course(patient_a, first_dose_at=now + timedelta(minutes=30), now=now)  # each evaluation has a dose to read
    broker = redis.Redis.from_url(redis_url)
    with (
        celery_worker(tmp_path, redis_url=redis_url, database_url=database_url, queues="celery,deliveries") as worker,
        celery_worker(tmp_path, redis_url=redis_url, database_url=database_url, queues="sweeps") as sweeper,
    ):
        for _ in range(BACKLOG):
            app.send_task(EVALUATE_PATIENT, args=[patient_a.pk])
        # The worker is busy with them before the sweep is sent, as during a medication round.
        wait_until(lambda: succeeded(worker.log(10**6), EVALUATE_PATIENT) >= 1, timeout=60, message=worker.log)

        sent = time.monotonic()
        app.send_task(SWEEP)  # as the beat sends it: routed by CELERY_TASK_ROUTES
        wait_until(
            lambda: succeeded(sweeper.log(10**6), SWEEP) == 1,
            timeout=settings.SWEEP_INTERVAL_SECONDS,
            message=lambda: f"sweeper log:\n{sweeper.log()}",
        )
        took = time.monotonic() - sent
        still_queued = broker.llen("celery")
        evaluated = succeeded(worker.log(10**6), EVALUATE_PATIENT)
        print(f"sweep finished {took:.2f} s after sending, {evaluated} evaluations done, {still_queued} still queued")
        assert took <= settings.SWEEP_INTERVAL_SECONDS
        assert still_queued > 0 and evaluated < BACKLOG  # it did not wait for the backlog
        assert succeeded(worker.log(10**6), SWEEP) == 0  # the evaluations' worker never took it

        # The nearest case: the sweep on the evaluations' queue runs only after every evaluation queued before it.
        app.send_task(SWEEP, queue="celery")
        wait_until(
            lambda: succeeded(worker.log(10**6), SWEEP) == 1,
            timeout=300,
            message=lambda: f"worker log:\n{worker.log()}",
        )
        log = worker.log(10**6)
        assert succeeded(log[: log.index(f"{SWEEP}[")], EVALUATE_PATIENT) == BACKLOG
    broker.close()
