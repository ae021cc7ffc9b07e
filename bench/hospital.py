"""A hospital, not a ward: 40 wards × 30 patients on IL-2 (1,200 open courses, a month of history each) and 80
nurses charting and polling their ward's board at once, through gunicorn on PostgreSQL with the beat's sweeps running.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench hospital
    DATABASE_URL=... .venv/bin/python -m bench hospital --minutes 0.2 --wards 4     # a short run while developing

Arguments (after `hospital`): --minutes per phase (2), --wards (40), --patients per ward (30), --nurses (80, spread
over the wards), --history-days (30: vitals q2h, neuro q4h, a weight and a lab panel a day), --think (mean pause in
seconds between a nurse's rounds, 1.0), --workers (phases, "1,2": gunicorn workers and Celery worker processes of
each phase), --sweep-seconds (the beat's interval, 30 as in production). IL2WARD_BENCH_REDIS_URL (e.g.
redis://127.0.0.1:6379/9) puts the broker on that Redis database; otherwise Celery's filesystem transport in the
run's temporary directory.

The wards are written in bulk (tests/scheduling/mar/builders.py: courses at every point of cycle 1, some flagged hold)
with their history, then ANALYZEd. Each phase starts the processes as docker-compose.yml deploys them: gunicorn
(gthread, THREADS threads a process), a Celery worker (prefork) on the `celery` and `deliveries` queues, a sweeper (one
process) on `sweeps` and, once both are ready, one beat. Each nurse first opens her ward's board (a few at a time,
timed apart), then runs rounds over her ward's patients: POST vitals and a neuro set (each queues the patient's
re-evaluation on the worker), POST evaluate on the patient's next dose, the board's poll as the page's script sends it
(HX-Request with the ETag and the rows' fingerprints it holds: a 304 when nothing changed, else the changed rows), GET
her notifications, and the trivial authenticated GET (bench.common.TRIVIAL_GET) once a round, the baseline measured
under the same load. Judged: 0 errors, and every sweep the beat sent finished within one interval of being sent.
Shown: each endpoint's p95 as a ratio to the trivial GET's p95, requests per second of each phase and the ratio
between them (the machine's cores bound it: this is what one node does, not how far the design scales; see README
"Scaling out"), and the load average.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.common import TRIVIAL_GET, database_vendor, setup_django, world
from bench.load import NEURO, ROOT, VITALS, Recorder, _free_port, _p95, _start, _stop

_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")
_ROW = re.compile(r'data-patient="(\d+)" data-state="[^"]*" data-v="(\w+)"')
_GONE = re.compile(r'id="board-row-(\d+)" hx-swap-oob="delete"')
THREADS = 4  # gunicorn threads a process, as docker-compose.yml runs web
# Longer than any gap between two requests on one kept connection: a nurse's board session is idle for a whole
# round (under load, 10 s and more) and for the opening of the other boards. With a keep-alive near that gap the
# server closed a kept connection just as the client sent its next request on it, and the client saw a
# ConnectionError that no server fault caused (75 s, as nginx keeps an idle client connection).
KEEP_ALIVE = 75


class BoardPoll:
    """What the board page's script sends with its 30 s poll (il2ward/static/il2ward.js): the ETag it holds and its
    rows' fingerprints, so that it gets a 304 when nothing changed and otherwise only the rows that did."""

    def __init__(self, url: str):
        self.url, self.etag, self.rows = url, "", {}

    def poll(self) -> dict:
        known = " ".join(f"{pk}:{v}" for pk, v in self.rows.items())
        headers = {"HX-Request": "true", "X-IL2Ward-Poll": "1"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if known and len(known) < 7000:
            headers["X-IL2Ward-Rows"] = known
        return headers

    def seen(self, response) -> None:
        if response is None or response.status_code not in (200, 304):
            return
        self.etag = response.headers.get("ETag", self.etag)
        if response.status_code == 200:
            self.rows.update(_ROW.findall(response.text))
            for pk in _GONE.findall(response.text):
                self.rows.pop(pk, None)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench hospital")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--wards", type=int, default=40)
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--nurses", type=int, default=80)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--sweep-seconds", type=int, default=30)
    return parser.parse_args(argv)


def _history(patient_ids, user, now, days: int) -> int:
    """Vitals q2h, neuro q4h, a weight and a lab panel a day, for `days` before the last hour. Returns rows written."""
    from monitoring.models import LabResult, NeuroAssessment, VitalSigns, WeightMeasurement

    start, written = now - timedelta(hours=1), 0
    for pid in patient_ids:
        common = {"patient_id": pid, "recorded_by": user, "created_at": now}
        vitals = [
            VitalSigns(**common, recorded_at=start - timedelta(hours=2 * i), sbp=118, dbp=64, heart_rate=92,
                       resp_rate=18, spo2=97, temp_c=Decimal("37.4"), rhythm="sinus", o2_lpm=Decimal(0),
                       phenylephrine_mcg_kg_min=Decimal(0), other_pressor="none")
            for i in range(1, days * 12)
        ]  # fmt: skip
        neuro = [
            NeuroAssessment(**common, recorded_at=start - timedelta(hours=4 * i), rass=0, confusion="none")
            for i in range(days * 6)
        ]
        weights = [
            WeightMeasurement(**common, recorded_at=start - timedelta(days=i), weight_kg=80) for i in range(days)
        ]
        labs = [
            LabResult(**common, recorded_at=start - timedelta(days=i), creatinine_mg_dl=Decimal("1.1"),
                      platelets_k_ul=200, bilirubin_mg_dl=Decimal("0.8"), bicarbonate_mmol_l=24)
            for i in range(days)
        ]  # fmt: skip
        for model, rows in ((VitalSigns, vitals), (NeuroAssessment, neuro), (WeightMeasurement, weights),
                            (LabResult, labs)):  # fmt: skip
            model.objects.bulk_create(rows, batch_size=5000)
            written += len(rows)
    return written


def _build(args) -> dict:
    """The wards, their patients and history, the nurses with an API token and a signed-in session each."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from il2ward.models import ApiToken
    from il2ward.services import staff_upsert, ward_upsert
    from scheduling.models import Dose
    from tests.scheduling.mar.builders import populate_ward

    w = world()
    now = timezone.now()
    codes = [f"h{i:02d}" for i in range(args.wards)]
    wards = {code: ward_upsert(code=code, name=f"Ward {code}", tz="America/Chicago", now=now) for code in codes}
    nurses = [
        (staff_upsert(username=f"hn{i:03d}", role="nurse", password="bench-password-1", ward_codes=[code],
                      printed_name=f"Nurse {i}", now=now), code)
        for i, code in ((i, codes[i % len(codes)]) for i in range(args.nurses))
    ]  # fmt: skip
    patients: dict[str, list[dict]] = {}
    rows = 0
    started = time.monotonic()
    for n, code in enumerate(codes):
        courses = populate_ward(
            wards[code], patients=args.patients, now=now, oncologist=w["staff"]["onc"], nurse=nurses[0][0],
            start=n * args.patients,
        )  # fmt: skip
        rows += _history([c.patient_id for c in courses], nurses[0][0], now, args.history_days)
        nexts = {}
        for dose in Dose.objects.filter(course__in=courses, status=Dose.Status.SCHEDULED).order_by("due_at"):
            nexts.setdefault(dose.course_id, dose.pk)
        patients[code] = [{"patient": c.patient_id, "dose": nexts[c.pk]} for c in courses if c.pk in nexts]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"bench.hospital: {len(codes)} wards, {len(codes) * args.patients} courses, {rows:,} history rows written "
          f"in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    sessions = {}
    for user, _ in nurses:
        client = Client()
        client.force_login(user)
        sessions[user.username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "nurses": [(user.username, code) for user, code in nurses],
        "patients": patients,
        "tokens": {user.username: ApiToken.objects.create(user=user, client="bench")[1] for user, _ in nurses},
        "sessions": sessions,
        "cookie": settings.SESSION_COOKIE_NAME,
    }


def _log_times(path: Path, *patterns: str) -> list[datetime]:
    """The times of the log lines containing all of `patterns` (Celery's "[2026-12-02 05:40:00,123: ..." lines).
    Worker and beat log in the same local zone, and only differences are used: the zone is left as UTC."""
    times = []
    for line in path.read_text(errors="replace").splitlines():
        match = _LOG_TIME.match(line)
        if match and all(p in line for p in patterns):
            times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC))
    return times


def _phase(data: dict, args, workers: int) -> dict:
    """One run of the scenario with `workers` gunicorn workers and Celery worker processes."""
    import requests

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="il2ward-hospital-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "IL2WARD_CELERY_EAGER")}
    # Each phase has its own var directory, so its own filesystem queue: nothing one phase left queued runs in the next.
    env["IL2WARD_VAR_DIR"] = str(log_dir)
    py = sys.executable
    if os.environ.get("IL2WARD_BENCH_REDIS_URL"):
        env["REDIS_URL"] = os.environ["IL2WARD_BENCH_REDIS_URL"]
        subprocess.run([py, "-m", "celery", "-A", "il2ward", "purge", "-f"], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    env.update(PYTHONUNBUFFERED="1", IL2WARD_SWEEP_INTERVAL_SECONDS=str(args.sweep_seconds),
               IL2WARD_HEARTBEAT_SECONDS="5", IL2WARD_DB_CONN_MAX_AGE="60")  # fmt: skip
    if os.environ.get("IL2WARD_BENCH_DURABLE") != "1":
        env["PGOPTIONS"] = "-c synchronous_commit=off"
    # As docker-compose.yml deploys them: gunicorn gthread (THREADS a process), the worker on the evaluations and the
    # sends, and the sweeper alone on the beat's sweeps (one process, one sweep at a time, in every phase).
    processes = [
        _start([py, "-m", "gunicorn", "il2ward.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                "-k", "gthread", "--threads", str(THREADS), "--keep-alive", str(KEEP_ALIVE), "--timeout", "120",
                "--backlog", "512"],
               log_dir, "web", env),
        _start([py, "-m", "celery", "-A", "il2ward", "worker", "--pool=prefork", f"--concurrency={workers}",
                "-Q", "celery,deliveries", "--loglevel=INFO", "-n", f"hospital{workers}@%h", "--without-gossip",
                "--without-mingle"], log_dir, "worker", env),
        _start([py, "-m", "celery", "-A", "il2ward", "worker", "--pool=prefork", "--concurrency=1", "-Q", "sweeps",
                "--loglevel=INFO", "-n", f"sweeper{workers}@%h", "--without-gossip", "--without-mingle"],
               log_dir, "sweeper", env),
    ]  # fmt: skip
    recorder, opened = Recorder(), Recorder()
    seconds = args.minutes * 60
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or processes[0][0].poll() is not None:
                raise RuntimeError(f"gunicorn did not start:\n{processes[0][1].read_text()[-3000:]}")
            time.sleep(0.2)
        # The beat starts once the workers are ready: a sweep's lag is then the queue's, not a worker's boot.
        for process, log in processes[1:]:
            while "ready." not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"a worker did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        processes.append(
            _start([py, "-m", "celery", "-A", "il2ward", "beat", "--loglevel=INFO", "-s",
                    str(log_dir / "beat-schedule")], log_dir, "beat", env)
        )  # fmt: skip
        # Each nurse opens her ward's board first, a few at a time, as a shift's screens are opened over minutes and
        # not all in one second; the opening is timed apart (`opened`), and its failures are errors too.
        pages, boards = {}, {}

        def open_board(username: str, code: str) -> None:
            pages[username] = page = requests.Session()
            page.cookies.set(data["cookie"], data["sessions"][username])
            boards[username] = board = BoardPoll(f"{base}/wards/{code}/")
            board.seen(opened.call(page, "GET board (page)", "GET", board.url, 200))

        with ThreadPoolExecutor(max_workers=workers * THREADS) as pool:
            list(pool.map(lambda nurse: open_board(*nurse), data["nurses"]))
        stop_at = time.monotonic() + seconds

        def nurse(username: str, code: str, offset: int) -> None:
            api = requests.Session()
            api.headers["Authorization"] = f"Token {data['tokens'][username]}"
            page, board = pages[username], boards[username]
            mine = data["patients"][code]
            n = offset
            time.sleep(random.uniform(0, args.think))  # not all at the same instant
            while time.monotonic() < stop_at:
                slot = mine[n % len(mine)]
                n += 1
                at = datetime.now(UTC).isoformat()
                patient = f"{base}/api/v1/patients/{slot['patient']}"
                recorder.call(api, "POST vitals", "POST", f"{patient}/vitals/", 201, json={**VITALS, "recorded_at": at})
                recorder.call(api, "POST neuro", "POST", f"{patient}/neuro/", 201, json={**NEURO, "recorded_at": at})
                recorder.call(api, "POST evaluate", "POST", f"{base}/api/v1/doses/{slot['dose']}/evaluate/", 200)
                board.seen(recorder.call(page, "GET board (poll)", "GET", board.url, (200, 304), headers=board.poll()))
                recorder.call(api, "GET notifications", "GET", f"{base}/api/v1/notifications/", 200)
                recorder.call(api, "trivial GET", "GET", f"{base}{TRIVIAL_GET}", 200)
                time.sleep(random.uniform(0, 2 * args.think))

        threads = [threading.Thread(target=nurse, args=(u, c, i)) for i, (u, c) in enumerate(data["nurses"])]
        print(f"bench.hospital: phase with {workers} worker(s) of each kind, {len(threads)} nurses, {seconds:g} s",
              file=sys.stderr, flush=True)  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 180)
        time.sleep(min(args.sweep_seconds, 30))  # the last sweep sent may finish within its interval
    finally:
        _stop(processes)
    sent = _log_times(processes[3][1], "Sending due task scheduling-sweep")
    done = _log_times(processes[2][1], "scheduling.sweep[", "succeeded")
    runs = [
        float(m)
        for m in re.findall(r"scheduling\.sweep\[[^\]]+\] succeeded in ([0-9.]+)s", processes[2][1].read_text())
    ]
    lags = [(d - s).total_seconds() for s, d in zip(sent, done, strict=False)]
    errors = recorder.errors + opened.errors
    if errors:
        print(f"bench.hospital: logs in {log_dir}", file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return {"recorder": recorder, "opened": opened, "seconds": seconds, "sent": len(sent), "done": len(done),
            "lags": lags, "runs": runs}  # fmt: skip


def run(argv: list[str] | None = None) -> list:
    args = _arguments(argv or [])
    setup_django()
    if database_vendor() != "postgresql":
        raise RuntimeError("bench.hospital runs on PostgreSQL: set DATABASE_URL=postgres://...")
    data = _build(args)
    from django.db import connections

    connections.close_all()  # the bench's own session must not hold the database during the run
    phases = {}
    for workers in [int(x) for x in args.workers.split(",")]:
        load_before = os.getloadavg()
        phases[workers] = _phase(data, args, workers)
        phases[workers]["load"] = (load_before, os.getloadavg())
    figures: list = []
    for workers, phase in phases.items():
        recorder, seconds = phase["recorder"], phase["seconds"]
        errors = recorder.errors + phase["opened"].errors
        made = sum(len(v) for v in recorder.times.values())
        tag = f"{workers} worker(s)"
        figures += [
            (f"hospital, {tag}: requests per second", made / seconds,
             f"{made} in {seconds:g} s; load average {phase['load'][0][0]:.1f} → {phase['load'][1][0]:.1f}"),
            (f"hospital, {tag}: errors", len(errors), "; ".join(errors[:3]) or "0 expected", not errors),
            (f"hospital, {tag}: sweeps finished within their interval", sum(lag <= args.sweep_seconds
             for lag in phase["lags"]), f"of {phase['sent']} sent, {phase['done']} finished; slowest "
             f"{max(phase['lags'], default=0):.1f} s after sending; longest run {max(phase['runs'], default=0):.2f} s; "
             f"interval {args.sweep_seconds} s",
             phase["sent"] > 0 and phase["done"] >= phase["sent"]
             and all(lag <= args.sweep_seconds for lag in phase["lags"])),
        ]  # fmt: skip
        trivial = _p95(recorder.times["trivial GET"])
        figures.append(
            (f"hospital, {tag}: trivial GET p95 (ms)", trivial * 1e3, f"n={len(recorder.times['trivial GET'])}")
        )
        opening = phase["opened"].times.get("GET board (page)", [])
        if opening:
            figures.append(
                (f"hospital, {tag}: GET board (page), opened before the phase, p95 (ms)", _p95(opening) * 1e3,
                 f"median {statistics.median(opening) * 1e3:.0f} ms, n={len(opening)}, {workers * THREADS} at a time")
            )  # fmt: skip
        for label in sorted(recorder.times):
            if label != "trivial GET":
                values = recorder.times[label]
                figures.append(
                    (f"hospital, {tag}: {label} p95 / trivial GET p95", _p95(values) / trivial,
                     f"{_p95(values) * 1e3:.0f} ms, median {statistics.median(values) * 1e3:.0f} ms, n={len(values)}")
                )  # fmt: skip
    if len(phases) >= 2:
        (a, pa), (b, pb) = list(phases.items())[:2]
        rate = [sum(len(v) for v in p["recorder"].times.values()) / p["seconds"] for p in (pa, pb)]
        figures.append((f"hospital: throughput with {b} vs {a} worker(s) of each kind", rate[1] / rate[0],
                        f"×; {os.cpu_count()} CPU cores on this machine, shared"))  # fmt: skip
    return figures


def main() -> int:
    from bench.__main__ import passed, table

    figures = run(sys.argv[1:])
    print(table(figures))
    return 0 if all(passed(f) for f in figures) else 1


if __name__ == "__main__":
    setup_django()
    sys.exit(main())
