"""Reminders end to end: due time → delivered (in-app and webhook), a burst of 500, and what a quiet sweep costs.

    .venv/bin/python -m bench.reminders

`run()` measures in a child process on its own throwaway database (SQLite in a temporary IL2WARD_VAR_DIR, or
`il2ward_bench_<pid>_<random>_reminders` on DATABASE_URL's server, dropped afterwards without FORCE) with Celery's
filesystem transport in that directory (REDIS_URL is ignored unless IL2WARD_BENCH_REDIS_URL names a Redis database to
use), so it neither disturbs nor is disturbed by the other benches' data. The child starts a real worker and a real
beat with a 2 s sweep interval (IL2WARD_SWEEP_INTERVAL_SECONDS=2), and a webhook receiver on 127.0.0.1.

1. Sweep cost: `scheduling.tasks.sweep_at` (the whole sweep) and `scheduling.reminders.reminders_sweep` (this issue's
   part) with nothing due, median of repeats, at 10 and at 1,000 active courses. Bar: 1,000 ≤ 3 × 10.
2. Latency: 40 dose_due reminders due one per second; from each one's due time (due − 30 min) to the moment its in-app
   row is visible to another process (polled every 0.2 s, as the bell would read it) and to the webhook's arrival.
   Bar: p95 ≤ interval + 5 s, none missed.
3. Burst: 500 dose_due reminders due in the same second. Bar: every one delivered (in-app and webhook) within
   interval + 30 s of that second.

The 1,000 quiet courses stay in the database during 2 and 3 (a sweep always walks past them). The courses are written
in bulk (no services: no audit rows, no calendar messages queued ahead of the reminders); their vitals, weight and
labs were charted just before, so only the reminders measured fall due (assessment_due is moved to due − 1 min
with IL2WARD_ASSESSMENT_DUE_MINUTES so that it stays out of the measured minute).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
INTERVAL = 2
SPREAD = 40
BURST = 500
QUIET = (10, 1000)
CHILD_ENV = {
    "IL2WARD_SWEEP_INTERVAL_SECONDS": str(INTERVAL),
    "IL2WARD_ASSESSMENT_DUE_MINUTES": "1",
    "DJANGO_DEBUG": "0",
    "DJANGO_SETTINGS_MODULE": "il2ward.settings",
    "PYTHONUNBUFFERED": "1",
}


def run() -> list[tuple]:
    """(name, value, bar, passed) rows (information rows without `passed`); the measuring happens in a child
    process with its own database, worker and beat."""
    env = {k: v for k, v in os.environ.items() if k not in ("IL2WARD_VAR_DIR", "IL2WARD_CELERY_EAGER")}
    env.update(CHILD_ENV)
    done = subprocess.run(
        [sys.executable, "-m", "bench.reminders", "--child"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"bench.reminders child failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return [_judged(*row) for row in json.loads(lines[-1].removeprefix("RESULT "))]


def _judged(name: str, value: float, bar: str) -> tuple:
    """(name, value, bar, passed) for a row with a bar ("≤ 7 s", "= 0"); (name, value, "info") otherwise."""
    if bar.startswith("≤ "):
        return (name, value, bar, value <= float(bar[2:].split()[0]))
    if bar.startswith("= "):
        return (name, value, bar, value == float(bar[2:]))
    return (name, value, bar)


# --- the child: a throwaway database, a worker, a beat ---------------------------------------------------------------


def _setup() -> dict:
    var_dir = tempfile.mkdtemp(prefix="il2ward-bench-reminders-")
    os.environ["IL2WARD_VAR_DIR"] = var_dir
    state = {"var_dir": var_dir}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        from bench.common import BENCH_DB, configure_planner

        parts = urlsplit(url)
        name = f"{BENCH_DB}_reminders"  # this child's own: two runs never share or drop each other's
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            configure_planner(conn, name)
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
        state.update(admin=admin, name=name)
    else:
        os.environ.pop("DATABASE_URL", None)
    redis_url = os.environ.pop("IL2WARD_BENCH_REDIS_URL", "")
    os.environ.pop("REDIS_URL", None)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    return state


def _teardown(state: dict) -> None:
    import shutil

    from django.db import connections

    connections.close_all()
    if state.get("admin"):
        from bench.common import drop_database

        drop_database(state["admin"], state["name"])  # the worker and beat have stopped
    shutil.rmtree(state["var_dir"], ignore_errors=True)


class Receiver:
    """The paging system: records (delivery id, arrival time) of every webhook POST."""

    def __init__(self):
        self.arrivals: dict[int, float] = {}
        self.duplicates = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                delivery = int(self.headers["X-IL2Ward-Delivery"])
                if delivery in receiver.arrivals:
                    receiver.duplicates += 1
                receiver.arrivals.setdefault(delivery, time.time())
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/page"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _world(webhook_url: str):
    from django.utils import timezone

    from il2ward.models import Ward
    from il2ward.services import staff_upsert, ward_upsert
    from monitoring.services import rule_set_current

    now = timezone.now()
    ward = ward_upsert(code="bench-rem", name="Reminder bench", tz="UTC", now=now)
    Ward.objects.filter(pk=ward.pk).update(webhook_url=webhook_url, webhook_secret="bench")
    nurse = staff_upsert(username="rem-nurse", role="nurse", password="x" * 12, ward_codes=[ward.code], now=now)
    onc = staff_upsert(username="rem-onc", role="oncologist", password="x" * 12, ward_codes=[ward.code], now=now)
    return {"ward": ward, "nurse": nurse, "onc": onc, "rule_set": rule_set_current("consensus-2014", now=now)}


def _courses(world, *, count: int, start: int, first_due, now, status: str, given_first: bool):
    """`count` patients with a course each (bulk), slot 1 due at first_due(i), their observations charted at now."""
    from datetime import timedelta
    from decimal import Decimal

    from il2ward.models import Patient
    from monitoring.models import LabResult, VitalSigns, WeightMeasurement
    from scheduling.models import Course, Dose

    patients = Patient.objects.bulk_create(
        Patient(mrn=f"RB-{i:05d}", name=f"Bench {i}", birth_date=now.date(), ward=world["ward"],
                assigned_nurse=world["nurse"])
        for i in range(start, start + count)
    )  # fmt: skip
    courses = Course.objects.bulk_create(
        Course(patient=p, status=status, dosing_weight_kg=Decimal(80), baseline_weight_kg=Decimal(80),
               dose_iu=48_000_000, first_dose_at=first_due(i), cycle2_first_at=first_due(i) + timedelta(days=14),
               rule_set=world["rule_set"], oncologist=world["onc"], created_at=now, scheduled_at=now)
        for i, p in enumerate(patients)
    )  # fmt: skip
    doses = []
    for i, course in enumerate(courses):
        for cycle, offset in ((1, timedelta(0)), (2, timedelta(days=14))):
            for number in range(1, 15):
                done = given_first and cycle == 1 and number == 1
                doses.append(
                    Dose(course=course, cycle=cycle, number=number, status="given" if done else "scheduled",
                         due_at=first_due(i) + offset + (number - 1) * timedelta(hours=8))
                )  # fmt: skip
    Dose.objects.bulk_create(doses, batch_size=2000)
    common = {"recorded_at": now, "recorded_by": world["nurse"], "created_at": now}
    VitalSigns.objects.bulk_create(
        VitalSigns(patient=p, sbp=120, dbp=70, heart_rate=88, resp_rate=16, spo2=97, temp_c=Decimal("37.2"), **common)
        for p in patients
    )
    WeightMeasurement.objects.bulk_create(
        WeightMeasurement(patient=p, weight_kg=Decimal(80), **common) for p in patients
    )
    LabResult.objects.bulk_create(LabResult(patient=p, creatinine_mg_dl=Decimal("1.0"), **common) for p in patients)
    _analyze()
    return courses


def _analyze() -> None:
    """Planner statistics after a bulk load, as autovacuum would keep them on a live ward (without them PostgreSQL
    plans the new tables as empty: nested loops over a thousand rows)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _sweep_costs(world) -> dict[str, float]:
    """Median seconds of the whole sweep and of the reminder sweeps, nothing due, at 10 and at 1,000 courses."""
    from datetime import timedelta

    from django.utils import timezone

    from il2ward.models import Notification
    from scheduling.services.reminders import reminders_sweep
    from scheduling.tasks import sweep_at

    now = timezone.now()
    out = {}
    built = 0
    for size in QUIET:
        _courses(world, count=size - built, start=built, first_due=lambda i: now - timedelta(hours=3), now=now,
                 status="active", given_first=True)  # fmt: skip
        built = size
        for name, fn in (("sweep", sweep_at), ("reminders", reminders_sweep)):
            samples = []
            for _ in range(3):
                fn(now=now)  # warm
            for _ in range(15):
                start = time.perf_counter()
                result = fn(now=now)
                samples.append(time.perf_counter() - start)
                assert not any(result.values()), result  # nothing due: a quiet sweep
            out[f"{name}@{size}"] = statistics.median(samples)
    assert not Notification.objects.exists()
    return out


def _start(kind: str, log_dir: Path) -> subprocess.Popen:
    args = ["worker", "--pool=solo", "--without-gossip", "--without-mingle"] if kind == "worker" else [
        "beat", "-s", str(log_dir / "beat-schedule")]  # fmt: skip
    log = open(log_dir / f"{kind}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "il2ward", *args, "--loglevel=INFO"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _latencies(world, receiver: Receiver, log_dir: Path) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from il2ward.models import Delivery, Notification

    now = timezone.now()
    anchor = now + timedelta(seconds=25)  # the worker and the beat are up by then
    burst_at = anchor + timedelta(seconds=SPREAD + 10)
    spread = _courses(world, count=SPREAD, start=10_000, now=now, status="active", given_first=False,
                      first_due=lambda i: anchor + timedelta(seconds=i, minutes=30))  # fmt: skip
    burst = _courses(world, count=BURST, start=20_000, now=now, status="active", given_first=False,
                     first_due=lambda i: burst_at + timedelta(minutes=30))  # fmt: skip
    processes = [_start("worker", log_dir), _start("beat", log_dir)]
    groups = {"spread": [c.pk for c in spread], "burst": [c.pk for c in burst]}
    deadline = time.monotonic() + (burst_at - timezone.now()).total_seconds() + INTERVAL + 30 + 60
    seen: dict[int, float] = {}  # notification id → when it was first visible (what the bell would show)
    try:
        while time.monotonic() < deadline:
            checked = time.time()
            for pk in Notification.objects.filter(kind="dose_due").exclude(pk__in=seen).values_list("pk", flat=True):
                seen[pk] = checked
            hooks = Delivery.objects.filter(channel="webhook", notification__kind="dose_due")
            if hooks.count() == SPREAD + BURST and all(
                pk in receiver.arrivals for pk in hooks.values_list("pk", flat=True)
            ):
                break
            time.sleep(0.2)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    result = {}
    for group, course_ids in groups.items():
        expected = len(course_ids)
        rows = Notification.objects.filter(kind="dose_due", course_id__in=course_ids)
        in_app, webhook = [], []
        for row in rows.prefetch_related("deliveries"):
            by_channel = {d.channel: d for d in row.deliveries.all()}
            if "in_app" in by_channel and row.pk in seen:  # committed and visible (polled every 0.2 s)
                in_app.append(seen[row.pk] - row.due_at.timestamp())
            if "webhook" in by_channel and by_channel["webhook"].pk in receiver.arrivals:
                webhook.append(receiver.arrivals[by_channel["webhook"].pk] - row.due_at.timestamp())
        result[group] = {"expected": expected, "in_app": in_app, "webhook": webhook}
    result["duplicates"] = receiver.duplicates
    return result


def _p95(values: list[float]) -> float:
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def _measure() -> list[tuple[str, float, str]]:
    state = _setup()
    try:
        receiver = Receiver()
        world = _world(receiver.url)
        costs = _sweep_costs(world)
        with tempfile.TemporaryDirectory() as logs:
            lat = _latencies(world, receiver, Path(logs))
    finally:
        _teardown(state)
    from django.db import connection

    spread, burst = lat["spread"], lat["burst"]
    missed = spread["expected"] - min(len(spread["in_app"]), len(spread["webhook"]))
    burst_missed = burst["expected"] - min(len(burst["in_app"]), len(burst["webhook"]))
    burst_last = max(burst["in_app"] + burst["webhook"], default=float("inf"))
    bar_ratio, burst_ratio = (INTERVAL + 5) / INTERVAL, (INTERVAL + 30) / INTERVAL
    rows = [
        (f"reminder due → in-app, p95 s (sweep interval {INTERVAL} s)", _p95(spread["in_app"]), f"≤ {INTERVAL + 5} s"),
        ("reminder due → in-app, p95 / interval", _p95(spread["in_app"]) / INTERVAL, f"≤ {bar_ratio:g}"),
        ("reminder due → webhook, p95 s", _p95(spread["webhook"]), f"≤ {INTERVAL + 5} s"),
        ("reminder due → webhook, p95 / interval", _p95(spread["webhook"]) / INTERVAL, f"≤ {bar_ratio:g}"),
        (f"reminders missed (of {SPREAD})", float(missed), "= 0"),
        (f"{BURST} due in one second: last delivered after, s", burst_last, f"≤ {INTERVAL + 30} s"),
        (f"{BURST} due in one second: last delivered / interval", burst_last / INTERVAL, f"≤ {burst_ratio:g}"),
        (f"{BURST} due in one second: missed", float(burst_missed), "= 0"),
        (f"{BURST} due in one second: last in-app row after, s", max(burst["in_app"], default=-1.0), "info"),
        (f"{BURST} due in one second: last webhook after, s", max(burst["webhook"], default=-1.0), "info"),
        ("webhook duplicates", float(lat["duplicates"]), "info"),
        ("quiet sweep, 10 active courses, s", costs["sweep@10"], "info"),
        ("quiet sweep, 1,000 active courses, s", costs["sweep@1000"], "info"),
        ("quiet sweep cost 1,000 / 10 courses", costs["sweep@1000"] / costs["sweep@10"], "≤ 3"),
        ("quiet reminder sweeps cost 1,000 / 10 courses", costs["reminders@1000"] / costs["reminders@10"], "≤ 3"),
        (f"database: {connection.vendor}", 0.0, "info"),
    ]  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    if "--child" in argv:
        print("RESULT " + json.dumps(_measure()), flush=True)
        return 0
    rows = run()
    width = max(len(name) for name, _, _ in rows)
    for name, value, bar in rows:
        print(f"{name.ljust(width)}  {value:10.3f}  {bar}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
