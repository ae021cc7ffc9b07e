"""Fault tests: the real Redis, real Celery workers (and beats) in other processes, the real PostgreSQL.

They skip, saying why, without REDIS_URL or PostgreSQL, and fail instead under IL2WARD_REQUIRE_SERVICES=1 (CI).
Short timings are given to the workers through the environment (il2ward/settings.py reads it at start-up) and to this
process through settings: a pending delivery is resent after 1 s, a claim is taken back after 3 s.

The database outage is simulated by terminating the test database's other backends (the worker's) with
pg_terminate_backend, not by restarting the server, which other engineers' test runs share.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from il2ward.models import Delivery, Notification
from il2ward.notifications import notify
from tests.notifications.sinks import WebhookSink
from tests.workers import ROOT, Worker, purge_redis, require_postgres, require_redis, test_database_url

FAST = {
    "IL2WARD_RESEND_AFTER_SECONDS": "1",
    "IL2WARD_DELIVERY_LEASE_SECONDS": "3",
    "IL2WARD_DELIVERY_BACKOFF_SECONDS": "1",
    "IL2WARD_WEBHOOK_TIMEOUT_SECONDS": "60",
    "IL2WARD_HEARTBEAT_SECONDS": "1",
}


@pytest.fixture
def services(transactional_db, settings):
    """The Redis URL, after checking both services and emptying the Redis database of stale messages."""
    url = require_redis()
    require_postgres()
    purge_redis(url)
    for name, value in FAST.items():
        setattr(settings, name, int(value))
    return url


@pytest.fixture
def webhook_on(ward_a):
    """Start a WebhookSink(**kwargs) and configure it on ward A; stopped at the end of the test."""
    started = []

    def _start(**kwargs) -> WebhookSink:
        sink = WebhookSink(**kwargs).__enter__()
        started.append(sink)
        ward_a.webhook_url, ward_a.webhook_secret = sink.url, "fault-secret"
        ward_a.save(update_fields=["webhook_url", "webhook_secret"])
        return sink

    yield _start
    for sink in started:
        sink.__exit__(None, None, None)


def write_notifications(patient, users, count: int, *, start: int = 0) -> list[Notification]:
    """`count` dose_due notifications, each committed in its own transaction (so each publishes its own task)."""
    made = []
    for i in range(start, start + count):
        with transaction.atomic():
            made += notify(
                kind="dose_due",
                recipients=users,
                dedupe=f"dose_due:dose{1000 + i}",
                now=timezone.now(),
                patient=patient,
                course_id=1,
                dose_id=1000 + i,
                details={"cycle": 1, "number": 1},
            )
    return made


def webhook_ids() -> set[int]:
    return set(Delivery.objects.filter(channel="webhook").values_list("pk", flat=True))


def all_delivered() -> bool:
    return not Delivery.objects.exclude(status="delivered").exists()


def run_sweep(name: str = "il2ward.deliveries_sweep") -> None:
    """What the beat does every interval: publish the sweep task (to the real broker)."""
    from il2ward.celery import app

    app.send_task(name)


def sweep_until(done, *, timeout: float, every: float = 1.5, message=lambda: "") -> None:
    """Run the resend sweep every `every` seconds (as the beat would) until `done()`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout} s. {message()}")
        run_sweep()
        time.sleep(every)


def start_beat(log_dir: Path, *, redis_url: str, interval: int = 1, database_url: str | None = None) -> Worker:
    """A real `celery beat` with its own schedule file, sweeping every `interval` seconds."""
    env = {k: v for k, v in os.environ.items() if k != "IL2WARD_CELERY_EAGER"}
    env.update(
        DJANGO_SETTINGS_MODULE="il2ward.settings",
        DATABASE_URL=database_url or test_database_url(),
        REDIS_URL=redis_url,
        IL2WARD_SWEEP_INTERVAL_SECONDS=str(interval),
        PYTHONUNBUFFERED="1",
        **FAST,
    )
    tag = uuid.uuid4().hex[:8]
    log_path = Path(log_dir) / f"beat-{tag}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "il2ward", "beat", "--loglevel=INFO",
             "-s", str(Path(log_dir) / f"beat-{tag}.schedule")],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Worker(process, log_path, f"beat-{tag}")


def terminate_other_backends() -> int:
    """The database 'restarts' for everyone but us: kill the test database's other sessions (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def start_web(log_dir: Path, *, database_url: str, redis_url: str, port: int, workers: int = 2, env=None) -> Worker:
    """gunicorn serving il2ward on 127.0.0.1:`port` (sync workers), as in production: kept database connections."""
    web_env = {k: v for k, v in os.environ.items() if k != "IL2WARD_CELERY_EAGER"}
    web_env.update(
        DJANGO_SETTINGS_MODULE="il2ward.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        IL2WARD_DB_CONN_MAX_AGE="60",
        PYTHONUNBUFFERED="1",
        **(env or {}),
    )
    log_path = Path(log_dir) / f"web-{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "il2ward.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", str(workers), "--timeout", "60", "--graceful-timeout", "5"],
            cwd=ROOT, env=web_env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Worker(process, log_path, f"web-{port}")


def manage(*argv: str, database_url: str, env=None) -> str:
    """`manage.py <argv>` in its own process against `database_url`; its output, or an AssertionError."""
    run_env = {k: v for k, v in os.environ.items() if k != "IL2WARD_CELERY_EAGER"}
    run_env.update(DJANGO_SETTINGS_MODULE="il2ward.settings", DATABASE_URL=database_url, REDIS_URL="", **(env or {}))
    result = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300
    )
    if result.returncode:
        raise AssertionError(f"manage.py {' '.join(argv)}: {result.stdout}{result.stderr}")
    return result.stdout
