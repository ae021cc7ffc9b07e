"""A real Celery worker for tests that need the whole path: API → commit → Redis → worker → database.

    url = require_redis()                       # skip (or fail under IL2WARD_REQUIRE_SERVICES=1) without Redis
    purge_redis(url)                            # no stale messages from earlier tests
    with celery_worker(tmp_path, redis_url=url) as worker:
        ...                                     # worker.log() for failure messages; worker.kill() for fault tests

The worker is a separate process, so it must reach the database the test uses: the test needs `transactional_db`
(data committed, not held in the test's transaction) and a database another process can open (PostgreSQL, or a
SQLite file; not pytest-django's in-memory SQLite). `test_database_url()` builds the URL from the settings after
pytest-django created the test database.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("IL2WARD_REQUIRE_SERVICES") == "1"
ALL_QUEUES = "celery,sweeps,deliveries"  # CELERY_TASK_QUEUES, every queue a task is routed to


def skip_or_fail(reason: str):
    """Skip saying why; in CI (IL2WARD_REQUIRE_SERVICES=1) a missing service is a failure, not a skip."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (IL2WARD_REQUIRE_SERVICES=1, so this cannot be skipped)", pytrace=False)
    pytest.skip(reason)


def require_redis() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        skip_or_fail("needs a real Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/5)")
    return url


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        skip_or_fail(f"needs PostgreSQL (running on {connection.vendor}): set DATABASE_URL=postgres://...")


def purge_redis(url: str) -> None:
    """Empty the Redis database the tests use (queues, unacked messages), so the worker sees only this test's tasks."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def test_database_url() -> str:
    """A DATABASE_URL for the test database pytest-django created (its NAME replaced the configured one)."""
    from django.conf import settings
    from django.db import connection

    db = {**connection.settings_dict, **settings.DATABASES["default"]}
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            skip_or_fail(
                "a worker process cannot open the in-memory SQLite test database: set DATABASE_URL to PostgreSQL"
            )
        return f"sqlite:///{name}"
    if not engine.endswith("postgresql"):
        skip_or_fail(f"no worker URL for database engine {engine}")
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = db.get("HOST") or "", str(db.get("PORT") or "")
    query = {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    if host.startswith("/"):  # a Unix socket directory
        query["host"], host = host, ""
    netloc = credentials + host + (f":{port}" if port and host else "")
    return f"postgres://{netloc}/{quote(db['NAME'], safe='')}" + (f"?{urlencode(query)}" if query else "")


test_database_url.__test__ = False  # a helper, not a test, despite its name


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path, name: str):
        self.process = process
        self.log_path = log_path
        self.name = name

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log(tail=10**6):
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task, as on an OOM kill or a pulled plug (no acknowledgement is sent)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it does not exit in time. Always leaves no process behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(
    log_dir: Path,
    *,
    redis_url: str,
    database_url: str | None = None,
    queues: str = ALL_QUEUES,
    env: dict | None = None,
    wait_ready: bool = True,
) -> Worker:
    """Start `celery -A il2ward worker --pool=solo -Q <queues>` against the test database and `redis_url`.

    By default it takes every queue (il2ward/settings.py), as the single-process demo worker does: one worker then
    runs the evaluations, the sweeps and the sends. `queues="sweeps"` and `queues="celery,deliveries"` start the two
    kinds docker-compose.yml runs."""
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    worker_env = {k: v for k, v in os.environ.items() if k != "IL2WARD_CELERY_EAGER"}
    worker_env.update(
        DJANGO_SETTINGS_MODULE="il2ward.settings",
        DATABASE_URL=database_url or test_database_url(),
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        **(env or {}),
    )
    log_path = Path(log_dir) / f"worker-{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "il2ward",
                "worker",
                "--pool=solo",
                "-Q",
                queues,
                "--loglevel=INFO",
                "-n",
                name,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, log_path, name)
    if wait_ready:
        try:
            worker.wait_ready()
        except BaseException:
            worker.stop()
            raise
    return worker


@contextmanager
def celery_worker(log_dir: Path, **kwargs):
    """`start_worker` as a context manager: the worker is stopped however the block ends."""
    worker = start_worker(log_dir, **kwargs)
    try:
        yield worker
    finally:
        worker.stop()


def wait_until(predicate, *, timeout: float, interval: float = 0.25, message=lambda: "") -> None:
    """Poll `predicate()` until it is true; fail with `message()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s. {message()}")
        time.sleep(interval)
