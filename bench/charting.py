"""Charting a dose through gunicorn on PostgreSQL, at 1 and 8 concurrent nurses, against a trivial authenticated
POST in the same run (bar ≤ 6×: charting must not hold a worker long), for both ways the second nurse checks the give:

- own session: the first nurse's `POST /doses/{id}/double-checks/` and the second nurse's
  `POST /double-checks/{id}/accept/` from her own signed-in session: no password is hashed on either request;
- password re-entry: `POST /doses/{id}/administer/` with the second nurse's password, hashed with the production
  hasher (Argon2id, as settings.PASSWORD_HASHERS has it): kept where a site wants it, measured and reported.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench charting

Named only (it starts gunicorn). Gunicorn runs as docker-compose does (GUNICORN_ARGS: gthread workers, so a request
hashing a password holds one thread, not a whole worker). Each figure is the median over REPEATS of the per-repeat
ratio of median latencies (path / trivial POST at the same concurrency, the rounds interleaved). The trivial POST is a
weight refused with 400 (session/token, parsing, validation, no write). Shown besides: how long a trivial GET waits
while 8 nurses chart by password re-entry, against the same GET while they chart from their own sessions (does the
board wait behind the hash?). Loopback only, bounded in requests; the throwaway database is bench.common's.
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import PASSWORD, TRIVIAL_GET, Figure, database_vendor, ready_patient, setup_django, world
from bench.load import _free_port, _start, _stop

GUNICORN_ARGS = ["-k", "gthread", "-w", "2", "--threads", "4", "--timeout", "60"]  # compose: 3 × 4 (2 cores here)
CONCURRENCY = {1: 6, 8: 2}  # nurses at once → requests per nurse per round
REPEATS = 3
BAR = 6
DOSE_IU = 48_000_000


def _build(count: int) -> dict:
    from django.contrib.auth.hashers import Argon2PasswordHasher

    from il2ward.models import ApiToken
    from scheduling.models import Dose

    w = world()
    staff, now = w["staff"], w["now"]
    hasher = Argon2PasswordHasher()
    verifier = staff["nurse2"]
    verifier.password = hasher.encode(PASSWORD, hasher.salt())  # the production hasher, as a real site stores it
    verifier.save(update_fields=["password"])
    doses = [
        Dose.objects.get(course=ready_patient(w["ward"], staff["onc"], staff["nurse"], mrn=f"CH-{i}", now=now)[1],
                         cycle=1, number=1).pk
        for i in range(count)
    ]  # fmt: skip
    return {
        "doses": doses,
        "patient": w["patient"].pk,
        "tokens": {u: ApiToken.objects.create(user=staff[u], client="bench")[1] for u in ("nurse", "nurse2")},
    }


def run() -> list:
    setup_django()
    if database_vendor() != "postgresql":
        raise RuntimeError("bench.charting runs on PostgreSQL: set DATABASE_URL=postgres://...")
    import requests

    per_round = sum(c * n for c, n in CONCURRENCY.items())
    data = _build(2 * REPEATS * per_round + 2)
    from django.db import connections

    connections.close_all()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="il2ward-charting-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "IL2WARD_CELERY_EAGER")}
    env.update(PYTHONUNBUFFERED="1", IL2WARD_DB_CONN_MAX_AGE="60")
    if os.environ.get("IL2WARD_BENCH_DURABLE") != "1":
        env["PGOPTIONS"] = "-c synchronous_commit=off"
    web = _start([sys.executable, "-m", "gunicorn", "il2ward.wsgi:application", "-b", f"127.0.0.1:{port}",
                  *GUNICORN_ARGS], log_dir, "web", env)  # fmt: skip
    doses = list(data["doses"])
    lock = threading.Lock()

    def session(user: str):
        s = requests.Session()
        s.headers["Authorization"] = f"Token {data['tokens'][user]}"
        # A connection per request, for every path alike: gthread closes a kept-alive connection idle for 2 s, and a
        # POST is not retried on a reset (the first nurse's connection idles while the second nurse accepts).
        s.headers["Connection"] = "close"
        return s

    def timed(s, url: str, expected: int, body: dict) -> tuple[float, dict]:
        started = time.perf_counter()
        response = s.post(url, json=body, timeout=60)
        elapsed = time.perf_counter() - started
        if response.status_code != expected:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        return elapsed, response.json()

    def next_dose() -> int:
        with lock:
            return doses.pop()

    def trivial(first, second, out):
        elapsed, _ = timed(first, f"{base}/api/v1/patients/{data['patient']}/weights/", 400, {"weight_kg": "1"})
        out.setdefault("trivial POST", []).append(elapsed)

    def own_session(first, second, out):
        dose = next_dose()
        started = datetime.now(UTC).isoformat()
        asked, check = timed(first, f"{base}/api/v1/doses/{dose}/double-checks/", 201, {"started_at": started})
        accepted, _ = timed(second, f"{base}/api/v1/double-checks/{check['id']}/accept/", 201,
                            {"verified_dose_iu": DOSE_IU})  # fmt: skip
        out.setdefault("request", []).append(asked)
        out.setdefault("accept", []).append(accepted)

    def password(first, second, out):
        dose = next_dose()
        body = {"started_at": datetime.now(UTC).isoformat(), "verifier": "nurse2", "verifier_password": PASSWORD,
                "verified_dose_iu": DOSE_IU}  # fmt: skip
        elapsed, _ = timed(first, f"{base}/api/v1/doses/{dose}/administer/", 201, body)
        out.setdefault("administer", []).append(elapsed)

    def probe(stop: threading.Event, out: list):
        s = session("nurse")
        while not stop.is_set():
            started = time.perf_counter()
            s.get(f"{base}{TRIVIAL_GET}", timeout=60)
            out.append(time.perf_counter() - started)
            time.sleep(0.05)

    def round_(work, nurses: int, each: int, probed: list | None = None) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        errors: list[BaseException] = []

        def nurse():
            first, second = session("nurse"), session("nurse2")
            try:
                for _ in range(each):
                    work(first, second, out)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(stop, probed)) if probed is not None else None
        threads = [threading.Thread(target=nurse) for _ in range(nurses)]
        if prober:
            prober.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        stop.set()
        if prober:
            prober.join(timeout=60)
        if errors:
            raise errors[0]
        return out

    figures = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or web[0].poll() is not None:
                raise RuntimeError(f"gunicorn did not start:\n{web[1].read_text()[-3000:]}")
            time.sleep(0.2)
        for _ in range(3):  # warm each worker's imports and connections
            round_(trivial, 4, 2)
        ratios: dict[tuple[int, str], list[float]] = {}
        absolute: dict[tuple[int, str], list[float]] = {}
        probes: dict[str, list[float]] = {"own session": [], "password": []}
        for _ in range(REPEATS):
            for nurses, each in CONCURRENCY.items():
                base_round = round_(trivial, nurses, each)
                own = round_(own_session, nurses, each, probes["own session"] if nurses == 8 else None)
                pwd = round_(password, nurses, each, probes["password"] if nurses == 8 else None)
                baseline = statistics.median(base_round["trivial POST"])
                for name, samples in (*own.items(), *pwd.items(), ("trivial POST", base_round["trivial POST"])):
                    ratios.setdefault((nurses, name), []).append(statistics.median(samples) / baseline)
                    absolute.setdefault((nurses, name), []).append(statistics.median(samples))
        labels = {
            "accept": "own session: POST /double-checks/{id}/accept/ (charts the dose; no password hash)",
            "request": "own session: POST /doses/{id}/double-checks/ (the first nurse's give)",
            "administer": "password re-entry: POST /doses/{id}/administer/ (Argon2id check of the second nurse)",
        }
        for nurses in CONCURRENCY:
            baseline = statistics.median(absolute[(nurses, "trivial POST")])
            for name, label in labels.items():
                ratio = statistics.median(ratios[(nurses, name)])
                measured = statistics.median(absolute[(nurses, name)])
                who = f"charting, {nurses} nurse{'s' if nurses > 1 else ''}: {label}"
                if name == "administer":  # the hash is kept on this path: measured and shown, not judged
                    figures.append((f"{who} / trivial authenticated POST", ratio, f"×; {measured * 1e3:.1f} ms vs "
                                    f"{baseline * 1e3:.1f} ms; median of {REPEATS} repeats; information"))  # fmt: skip
                else:
                    figures.append(Figure(f"{who} vs trivial authenticated POST", measured, baseline, ratio, BAR,
                                          strict=False, note=f"median of {REPEATS} repeats"))  # fmt: skip
        if probes["own session"] and probes["password"]:
            own_wait, pwd_wait = statistics.median(probes["own session"]), statistics.median(probes["password"])
            figures.append(
                (
                    "charting, 8 nurses: a trivial GET during password re-entry charting / during own-session charting",
                    pwd_wait / own_wait,
                    f"×; {pwd_wait * 1e3:.1f} ms vs {own_wait * 1e3:.1f} ms; gunicorn {' '.join(GUNICORN_ARGS)};"
                    " information",
                )
            )
    finally:
        _stop([web])
    return figures
