"""PostgreSQL restarted under load (a server of this test's own, never the shared one): gunicorn and a Celery
worker and beat run against it while four nurses chart vitals through HTTP; the server is stopped (fast shutdown,
as `pg_ctl restart`), kept down for a moment and started again.

Counted and asserted: requests made; 5xx only while the database was down (each a 503 with Retry-After); every
vitals set answered 201 is in the database afterwards (charting lost 0); web, worker and beat reconnect by
themselves (a course created after the restart gets its calendar from the worker, /readyz is 200 again, the audit
chain verifies)."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.charting import NORMAL_VITALS
from tests.faults.conftest import FAST, manage, start_beat, start_web
from tests.faults.own_services import OwnPostgres, free_port
from tests.workers import start_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
NURSES = 4
PASSWORD = "restart-horse-battery"
BEFORE, DOWN, AFTER = 2.0, 2.0, 2.5  # seconds of charting before the stop, of outage, after the start


SEED = f"""
from django.utils import timezone
from il2ward.services import staff_upsert, ward_upsert
now = timezone.now()
ward_upsert(code="onc-r", name="Restart ward", tz="America/Chicago", now=now)
for username, role in [*((f"nurse{{i}}", "nurse") for i in range({NURSES})), ("onc", "oncologist")]:
    staff_upsert(username=username, role=role, password="{PASSWORD}", ward_codes=["onc-r"], printed_name=username,
                 now=now)
"""


def vitals_body(at: datetime) -> dict:
    return {**{k: str(v) for k, v in NORMAL_VITALS.items()}, "recorded_at": at.isoformat()}


def test_postgres_restarted_under_load_loses_no_charting_and_everything_reconnects(services, tmp_path):
    t0 = time.monotonic()
    marks = {}
    with OwnPostgres() as pg:
        pg.create_database("il2ward_restart")
        db_url = pg.url("il2ward_restart")
        manage("migrate", "-v0", database_url=db_url)
        manage("shell", "-c", SEED, database_url=db_url)  # one process: the ward and its staff
        marks["seeded"] = time.monotonic() - t0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        processes = [
            start_web(tmp_path, database_url=db_url, redis_url=services, port=port),
            start_worker(tmp_path, redis_url=services, database_url=db_url, env=FAST, wait_ready=False),
        ]
        processes.append(start_beat(tmp_path, redis_url=services, database_url=db_url))
        web, worker, beat = processes
        try:
            wait_until(lambda: up(base), timeout=60, message=web.log)
            worker.wait_ready()
            marks["started"] = time.monotonic() - t0
            tokens = {u: token(base, u) for u in [f"nurse{i}" for i in range(NURSES)] + ["onc"]}
            onc = {"Authorization": f"Token {tokens['onc']}"}
            patients = []
            for i in range(NURSES + 1):
                body = {"mrn": f"R-{i}", "name": f"Restart {i}", "birth_date": "1970-01-01", "ward": "onc-r"}
                response = requests.post(f"{base}/api/v1/patients/", json=body, headers=onc, timeout=30)
                assert response.status_code == 201, response.text
                patients.append(response.json()["id"])

            results: list[tuple[float, float, int, str, int | None]] = []  # start, end, status, Retry-After, id
            stop = threading.Event()

            def nurse(i: int) -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Token {tokens[f'nurse{i}']}"
                n = 0
                while not stop.is_set():
                    n += 1
                    at = datetime.now(UTC) - timedelta(minutes=30, seconds=n)  # distinct clinical times
                    started = time.monotonic()
                    try:
                        r = session.post(f"{base}/api/v1/patients/{patients[i]}/vitals/", json=vitals_body(at),
                                         timeout=30)  # fmt: skip
                        status, retry, pk = r.status_code, r.headers.get("Retry-After", ""), None
                        if status == 201:
                            pk = r.json()["id"]
                    except requests.RequestException as exc:  # a reset connection counts as a 5xx
                        status, retry, pk = 599, type(exc).__name__, None
                    results.append((started, time.monotonic(), status, retry, pk))

            threads = [threading.Thread(target=nurse, args=(i,), daemon=True) for i in range(NURSES)]
            for thread in threads:
                thread.start()
            time.sleep(BEFORE)
            down_at = time.monotonic()
            pg.stop(mode="fast")
            time.sleep(DOWN)
            pg.start()
            up_at = time.monotonic()
            time.sleep(AFTER)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

            marks["load done"] = time.monotonic() - t0
            # Restarted again while nobody charts: the web processes' kept connections are dead, and the next
            # request on each must reconnect (a health check) rather than fail.
            pg.stop(mode="fast")
            pg.start()
            idle = []
            for i in range(2 * NURSES):
                r = requests.post(
                    f"{base}/api/v1/patients/{patients[i % NURSES]}/vitals/",
                    json=vitals_body(datetime.now(UTC) - timedelta(minutes=10, seconds=i)),
                    headers={"Authorization": f"Token {tokens[f'nurse{i % NURSES}']}"},
                    timeout=30,
                )
                idle.append(r.status_code)
                if r.status_code == 201:
                    results.append((0.0, 0.0, 201, "", r.json()["id"]))
            # After the restart: the worker generates a new course's calendar, the beat's sweep runs again.
            response = requests.post(
                f"{base}/api/v1/courses/",
                json={"patient": patients[-1], "first_dose_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
                      "dosing_weight_kg": "80"},
                headers=onc, timeout=30,
            )  # fmt: skip
            assert response.status_code == 201, response.text
            course_url = f"{base}/api/v1/courses/{response.json()['id']}/"
            wait_until(
                lambda: requests.get(course_url, headers=onc, timeout=30).json()["status"] == "planned",
                timeout=60,
                message=worker.log,
            )
            wait_until(
                lambda: requests.get(f"{base}/readyz", timeout=30).status_code == 200,
                timeout=60,
                message=lambda: requests.get(f"{base}/readyz", timeout=30).text + worker.log() + beat.log(),
            )
            marks["reconnected"] = time.monotonic() - t0
            stored = stored_vitals(db_url)
            chain = manage("verify_audit_chain", database_url=db_url)
            logs = [p.log(tail=10**7) for p in processes]
        finally:
            stop_all(processes)

    created = {pk for *_, pk in results if pk is not None}
    failures = [(s, e, status, retry) for s, e, status, retry, _ in results if status >= 500]
    outside = [f for f in failures if not (f[0] <= up_at + 0.5 and f[1] >= down_at)]
    not_503 = [f for f in failures if f[2] != 503 or not f[3]]
    lost = created - stored
    print(
        f"\npostgres restart ({DOWN:.0f} s down): requests {len(results)}, 201 {len(created)}, "
        f"5xx {len(failures)}, 503 with Retry-After {len(failures) - len(not_503)}, outside the outage "
        f"{len(outside)}, stored {len(stored)}, charting lost {len(lost)}; after an idle restart {idle.count(201)} "
        f"of {len(idle)} requests 201; " + ", ".join(f"{k} at {v:.1f} s" for k, v in marks.items())
    )
    assert idle == [201] * (2 * NURSES), idle
    assert len(results) >= 20 and len(created) >= 10, results
    assert any(end <= down_at for _, end, *_ in results) and any(start >= up_at for start, *_ in results)
    assert outside == [], (outside, down_at, up_at)
    assert not_503 == [], not_503
    assert lost == set(), lost
    assert any(start >= up_at and status == 201 for start, _, status, *_ in results)  # web reconnected
    assert "audit chain intact" in chain, chain
    for log in logs[1:]:
        assert "Unrecoverable error" not in log, log[-3000:]


def stop_all(processes) -> None:
    for process in processes:  # SIGTERM to all at once, then wait for each (SIGKILL after 15 s)
        if process.process.poll() is None:
            process.process.terminate()
    for process in processes:
        process.stop(timeout=15)


def up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def token(base: str, username: str) -> str:
    response = requests.post(f"{base}/api/v1/auth/token/", json={"username": username, "password": PASSWORD},
                             timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["token"]


def stored_vitals(database_url: str) -> set[int]:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM monitoring_vitalsigns")}
