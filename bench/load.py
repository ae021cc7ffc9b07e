"""A bounded load test: 16 nurses charting and 2 oncologists reviewing across 4 wards, through gunicorn on
PostgreSQL, with a Celery worker and the beat's sweeps running, for IL2WARD_LOAD_SECONDS (default 120).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench load

Loopback only (gunicorn on 127.0.0.1, a free port), bounded in time and in clients (18 threads, each waiting
IL2WARD_LOAD_THINK_SECONDS, default 0.25, between requests). The throwaway database is bench.common's (a name of
its own per run, dropped at exit without FORCE after every process here has stopped); the broker is the filesystem
transport in the run's temporary directory, never a shared Redis.

Each nurse works her ward's patients in turn: vitals and a neuro set charted, the next dose evaluated, the vitals
list and her notifications read. Each oncologist reads a course, its doses and a dose. Every client also sends the
trivial authenticated request (bench.common.TRIVIAL_GET) once a round, so the baseline is measured under the same
load at the same moments. Judged: 0 errors (any status other than the expected one, or no answer). Shown: the p95
of each endpoint as a ratio to the trivial request's p95, and the sweeps the sweeper (a worker on the sweeps queue
alone) ran meanwhile.
"""

import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import TRIVIAL_GET, database_vendor, ready_patient, setup_django, world

ROOT = Path(__file__).resolve().parents[1]
WARDS, NURSES_PER_WARD, PATIENTS_PER_WARD, ONCOLOGISTS = 4, 4, 3, 2
VITALS = {"sbp": 120, "dbp": 70, "heart_rate": 88, "resp_rate": 16, "spo2": 97, "temp_c": "37.2", "rhythm": "sinus",
          "o2_lpm": "0", "phenylephrine_mcg_kg_min": "0", "other_pressor": "none"}  # fmt: skip
NEURO = {"rass": 0, "confusion": "none", "neuro_check_failed": False, "hallucinations": False,
         "vivid_dreams_or_anxiety": False, "persistent_crying": False}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _build() -> dict:
    """4 wards, 4 nurses and 3 ready patients each (a course due in 30 min), 2 oncologists; API tokens for all."""
    from django.utils import timezone

    from il2ward.models import ApiToken, Ward
    from il2ward.services import staff_upsert, ward_upsert
    from scheduling.models import Dose

    world()  # bench.common's ward and staff, built once per run
    now = timezone.now()
    codes = [f"load-{w}" for w in range(WARDS)]
    for code in codes:
        ward_upsert(code=code, name=f"Load ward {code}", tz="America/Chicago", now=now)
    onc_users = [
        staff_upsert(username=f"load-onc{i}", role="oncologist", password="bench-password-1", ward_codes=codes,
                     printed_name=f"Onc {i}", now=now)
        for i in range(ONCOLOGISTS)
    ]  # fmt: skip
    nurses, patients = [], {}
    for w, code in enumerate(codes):
        ward = Ward.objects.get(code=code)
        ward_nurses = [
            staff_upsert(username=f"load-n{w}-{i}", role="nurse", password="bench-password-1", ward_codes=[code],
                         printed_name=f"Nurse {w}-{i}", now=now)
            for i in range(NURSES_PER_WARD)
        ]  # fmt: skip
        nurses += [(n, code) for n in ward_nurses]
        patients[code] = []
        for p in range(PATIENTS_PER_WARD):
            patient, course = ready_patient(ward, onc_users[0], ward_nurses[0], mrn=f"LOAD-{w}-{p}", now=now)
            dose = Dose.objects.get(course=course, cycle=1, number=1)
            patients[code].append({"patient": patient.pk, "course": course.pk, "dose": dose.pk})
    tokens = {u.username: ApiToken.objects.create(user=u)[1] for u, _ in nurses}
    tokens.update({u.username: ApiToken.objects.create(user=u)[1] for u in onc_users})
    return {
        "nurses": [(n.username, code) for n, code in nurses],
        "oncologists": [u.username for u in onc_users],
        "patients": patients,
        "tokens": tokens,
    }


def _start(argv: list[str], log_dir: Path, name: str, env: dict) -> tuple[subprocess.Popen, Path]:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, log_path


def _stop(processes) -> None:
    for process, _ in processes:
        if process.poll() is None:
            process.terminate()
    for process, _ in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def call(self, session, label: str, method: str, url: str, expected: int | tuple[int, ...], **kwargs):
        """Time one request; an answer other than `expected` (a status, or any of several) is an error. Returns the
        response, or None when there was none."""
        import requests

        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=60, **kwargs)
            status = response.status_code
        except requests.RequestException as exc:
            status, response = type(exc).__name__, None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times.setdefault(label, []).append(elapsed)
            if status not in (expected if isinstance(expected, tuple) else (expected,)):
                body = response.text[:200] if response is not None else ""
                self.errors.append(f"{label}: {status} {body}")
        return response


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def run() -> list:
    setup_django()
    if database_vendor() != "postgresql":
        raise RuntimeError("bench.load runs on PostgreSQL: set DATABASE_URL=postgres://...")
    import requests

    seconds = float(os.environ.get("IL2WARD_LOAD_SECONDS", "120"))
    think = float(os.environ.get("IL2WARD_LOAD_THINK_SECONDS", "0.25"))
    data = _build()
    from django.db import connections

    connections.close_all()  # the bench's own session must not hold the database during the run
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="il2ward-load-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "IL2WARD_CELERY_EAGER")}
    env.update(PYTHONUNBUFFERED="1", IL2WARD_SWEEP_INTERVAL_SECONDS="10", IL2WARD_HEARTBEAT_SECONDS="5",
               IL2WARD_DB_CONN_MAX_AGE="60")  # fmt: skip
    if os.environ.get("IL2WARD_BENCH_DURABLE") != "1":
        env["PGOPTIONS"] = "-c synchronous_commit=off"  # as bench.common does for its own connections
    py = sys.executable
    processes = [
        _start([py, "-m", "gunicorn", "il2ward.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "4",
                "--timeout", "60"], log_dir, "web", env),
        _start([py, "-m", "celery", "-A", "il2ward", "worker", "--pool=solo", "-Q", "celery,deliveries",
                "--loglevel=INFO", "-n", "load@%h", "--without-gossip", "--without-mingle"], log_dir, "worker", env),
        # The beat's sweeps on a worker of their own, as docker-compose.yml runs them.
        _start([py, "-m", "celery", "-A", "il2ward", "worker", "--pool=solo", "-Q", "sweeps", "--loglevel=INFO",
                "-n", "load-sweeper@%h", "--without-gossip", "--without-mingle"], log_dir, "sweeper", env),
        _start([py, "-m", "celery", "-A", "il2ward", "beat", "--loglevel=INFO", "-s", str(log_dir / "beat-schedule")],
               log_dir, "beat", env),
    ]  # fmt: skip
    recorder = Recorder()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or processes[0][0].poll() is not None:
                raise RuntimeError(f"gunicorn did not start:\n{processes[0][1].read_text()[-3000:]}")
            time.sleep(0.2)
        stop_at = time.monotonic() + seconds

        def nurse(username: str, code: str) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {data['tokens'][username]}"
            mine = data["patients"][code]
            n = 0
            while time.monotonic() < stop_at:
                slot = mine[n % len(mine)]
                n += 1
                at = datetime.now(UTC).isoformat()
                patient = f"{base}/api/v1/patients/{slot['patient']}"
                recorder.call(session, "POST vitals", "POST", f"{patient}/vitals/", 201,
                              json={**VITALS, "recorded_at": at})  # fmt: skip
                recorder.call(session, "POST neuro", "POST", f"{patient}/neuro/", 201,
                              json={**NEURO, "recorded_at": at})  # fmt: skip
                recorder.call(session, "POST evaluate", "POST", f"{base}/api/v1/doses/{slot['dose']}/evaluate/", 200)
                recorder.call(session, "GET vitals list", "GET", f"{patient}/vitals/?limit=10", 200)
                recorder.call(session, "GET notifications", "GET", f"{base}/api/v1/notifications/", 200)
                recorder.call(session, "trivial GET", "GET", f"{base}{TRIVIAL_GET}", 200)
                time.sleep(random.uniform(0, 2 * think))

        def oncologist(username: str) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {data['tokens'][username]}"
            every = [slot for slots in data["patients"].values() for slot in slots]
            n = 0
            while time.monotonic() < stop_at:
                slot = every[n % len(every)]
                n += 1
                recorder.call(session, "GET course", "GET", f"{base}/api/v1/courses/{slot['course']}/", 200)
                recorder.call(session, "GET course doses", "GET", f"{base}/api/v1/courses/{slot['course']}/doses/", 200)
                recorder.call(session, "GET dose", "GET", f"{base}/api/v1/doses/{slot['dose']}/", 200)
                recorder.call(session, "trivial GET", "GET", f"{base}{TRIVIAL_GET}", 200)
                time.sleep(random.uniform(0, 2 * think))

        threads = [threading.Thread(target=nurse, args=args) for args in data["nurses"]]
        threads += [threading.Thread(target=oncologist, args=(u,)) for u in data["oncologists"]]
        print(f"bench.load: {len(data['nurses'])} nurses, {len(data['oncologists'])} oncologists, {WARDS} wards, "
              f"{seconds:g} s", file=sys.stderr, flush=True)  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
    finally:
        _stop(processes)
    sweeper_log = processes[2][1].read_text(errors="replace")
    if not recorder.errors:
        shutil.rmtree(log_dir, ignore_errors=True)  # kept (and named) only when something went wrong
    else:
        print(f"bench.load: logs in {log_dir}", file=sys.stderr)
    sweeps = sum(1 for line in sweeper_log.splitlines() if "scheduling.sweep[" in line and "succeeded" in line)
    trivial = _p95(recorder.times["trivial GET"])
    requests_made = sum(len(v) for v in recorder.times.values())
    figures = [
        ("requests", requests_made, f"in {seconds:g} s, {requests_made / seconds:.1f}/s"),
        ("errors", len(recorder.errors), "; ".join(recorder.errors[:3]) or "0 expected", not recorder.errors),
        ("sweeps run by the sweeper", sweeps, "beat every 10 s"),
        ("trivial GET p95 (ms)", trivial * 1e3, f"n={len(recorder.times['trivial GET'])}, the baseline"),
    ]
    for label in sorted(recorder.times):
        if label == "trivial GET":
            continue
        values = recorder.times[label]
        p95 = _p95(values)
        figures.append(
            (f"{label} p95 / trivial GET p95", p95 / trivial, f"{p95 * 1e3:.1f} ms, median "
             f"{statistics.median(values) * 1e3:.1f} ms, n={len(values)}")
        )  # fmt: skip
    return figures
