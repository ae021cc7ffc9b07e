"""What every benchmark shares: a throwaway database, a timer, the baselines, and the figure a bench reports.

A figure is a ratio against a baseline measured in the same run on the same machine (a trivial authenticated request,
a trivial query), never an absolute time: absolute times say more about the machine than about the code.

The database is never the one DATABASE_URL names: on PostgreSQL the bench creates `il2ward_bench_<pid>_<random>` on the
same server, a name of its own so that two runs never share or drop each other's database (dropped at exit, without
FORCE: every process the bench started is stopped first, so nobody else can be connected); otherwise a SQLite file in
a temporary IL2WARD_VAR_DIR (removed at exit). REDIS_URL is ignored, so
tasks published on commit go to the filesystem transport in that temporary directory, never to a shared broker.

Commits do not wait for the disk (SQLite `synchronous=OFF`, PostgreSQL `synchronous_commit=off`, on the bench's own
connections only): on a shared machine an fsync took from 1 to 19 ms within one run, which measured the disk rather than
the code. IL2WARD_BENCH_DURABLE=1 keeps the waits (every figure then includes them, on both sides of each ratio).

The PostgreSQL database is planned as the deployment's server is configured (docker-compose.yml): random_page_cost
1.1, the PostgreSQL manual's value for solid-state storage, in place of the default 4 that models a spinning disk.
IL2WARD_BENCH_RANDOM_PAGE_COST sets another value; empty keeps the server's own.
"""

import atexit
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

from scheduling.domain.eligibility import ELIGIBILITY_ITEMS

BENCH_DB = f"il2ward_bench_{os.getpid()}_{secrets.token_hex(3)}"  # one per run
DEPLOYED_RANDOM_PAGE_COST = "1.1"  # docker-compose.yml's PostgreSQL (tests/test_compose.py holds them equal)
RANDOM_PAGE_COST = os.environ.get("IL2WARD_BENCH_RANDOM_PAGE_COST", DEPLOYED_RANDOM_PAGE_COST)
PASSWORD = "bench-password-1"
TRIVIAL_GET = "/api/v1/patients/?ward=none"  # authenticated, one small query, an empty list

_state: dict = {}


# --- figures -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One measured figure: `measured` and `baseline` in seconds, `ratio` = measured / baseline, which must be below
    `bar` (or at most `bar` when not `strict`)."""

    name: str
    measured: float
    baseline: float
    ratio: float
    bar: float
    strict: bool = True
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio < self.bar if self.strict else self.ratio <= self.bar

    @property
    def bar_text(self) -> str:
        return f"{'<' if self.strict else '≤'} {self.bar:g}×"


def figure(name: str, measured: float, baseline: float, bar: float, *, strict: bool = True, note: str = "") -> Figure:
    return Figure(name, measured, baseline, measured / baseline, bar, strict, note)


def seconds_text(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


# --- timing ------------------------------------------------------------------------------------------------------


def median_time(fn: Callable[[], object], repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """Median seconds per call of `fn` over `repeat` samples of `number` calls each (after `warmup` calls)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def paired_medians(fns: dict[str, Callable[[], object]], repeat: int = 21, number: int = 5, warmup: int = 3):
    """Median seconds per call of each function, their samples interleaved (a, b, a, b, ...) so that a load change
    on the machine during the run falls on both sides of a ratio alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- Django on a throwaway database --------------------------------------------------------------------------------


def setup_django() -> None:
    """Configure and migrate a throwaway database for this run (idempotent; torn down at exit)."""
    if _state.get("ready"):
        return
    var_dir = tempfile.mkdtemp(prefix="il2ward-bench-")
    _state["var_dir"] = var_dir
    os.environ["IL2WARD_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "il2ward.settings"
    os.environ["DJANGO_DEBUG"] = "0"  # no query log: measure the code, not Django's debug bookkeeping
    os.environ.pop("REDIS_URL", None)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = _create_postgres_database(url)
        _state["postgres_admin_url"] = url
    else:
        os.environ.pop("DATABASE_URL", None)  # the default: a SQLite file under the temporary IL2WARD_VAR_DIR
    atexit.register(teardown)

    import django

    django.setup()
    if os.environ.get("IL2WARD_BENCH_DURABLE") != "1":
        from django.db.backends.signals import connection_created

        connection_created.connect(_no_durability_wait, weak=False)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    # Staff are created with passwords; a fast hasher keeps setup short (logins below use force_login).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _state["ready"] = True


def _no_durability_wait(sender, connection, **kwargs) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
        elif connection.vendor == "postgresql":
            cursor.execute("SET synchronous_commit TO OFF")


def _database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _create_postgres_database(url: str) -> str:
    import psycopg

    with psycopg.connect(_database_url(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
        configure_planner(admin, BENCH_DB)
    return _database_url(url, BENCH_DB)


def configure_planner(admin, name: str) -> None:
    """Plan the bench database `name` as the deployment's server (RANDOM_PAGE_COST), for every session that opens on
    it: this process's, gunicorn's, the worker's."""
    if RANDOM_PAGE_COST:
        admin.execute(f'ALTER DATABASE "{name}" SET random_page_cost = {float(RANDOM_PAGE_COST)}')


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE without FORCE (the caller has stopped every process it started, so nobody else can be
    connected): a few tries while the last sessions close, then say what was left behind."""
    import psycopg

    with psycopg.connect(_database_url(admin_url, "postgres"), autocommit=True) as admin:
        for attempt in range(20):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    print(f"bench: database {name} still in use, not dropped: drop it by hand", flush=True)
                    return
                time.sleep(0.5)


def teardown() -> None:
    """Close connections, drop the PostgreSQL database, remove the temporary directory."""
    if _state.get("ready"):
        from django.db import connections

        connections.close_all()
    admin_url = _state.pop("postgres_admin_url", None)
    if admin_url:
        drop_database(admin_url, BENCH_DB)
    var_dir = _state.pop("var_dir", None)
    if var_dir:
        shutil.rmtree(var_dir, ignore_errors=True)
    _state["ready"] = False


def database_vendor() -> str:
    from django.db import connection

    return connection.vendor


# --- a small ward to measure on ------------------------------------------------------------------------------------


def world() -> dict:
    """A ward, its staff and one patient whose course's first dose is due in 30 minutes, with a complete normal
    pre-dose assessment and eligibility attested, all through the services. Built once per run."""
    if "world" in _state:
        return _state["world"]
    setup_django()
    from django.utils import timezone

    from il2ward.services import staff_upsert, ward_upsert
    from scheduling.models import Dose

    now = timezone.now()
    ward = ward_upsert(code="bench", name="Bench ward", tz="America/Chicago", now=now)
    staff = {
        name: staff_upsert(
            username=name, role=role, password=PASSWORD, ward_codes=[ward.code], printed_name=name.title(), now=now
        )
        for name, role in (("nurse", "nurse"), ("nurse2", "nurse"), ("onc", "oncologist"))
    }
    onc, nurse = staff["onc"], staff["nurse"]
    patient, course = ready_patient(ward, onc, nurse, mrn="BENCH-1", now=now)
    dose = Dose.objects.get(course=course, cycle=1, number=1)
    _state["world"] = {"ward": ward, "staff": staff, "patient": patient, "course": course, "dose": dose, "now": now}
    return _state["world"]


def ready_patient(ward, onc, nurse, *, mrn: str, now):
    """A patient whose course's first dose is due in 30 minutes, eligibility attested, with a complete normal
    pre-dose assessment charted explicitly (rhythm, O2, pressors, every neuro answer, the bedside exam)."""
    from il2ward.services import patient_create
    from monitoring import services as obs
    from scheduling import services as sched

    patient = patient_create(mrn=mrn, name="Bench", birth_date=date(1970, 1, 1), ward=ward, by=onc, now=now)
    course = sched.course_create(
        patient=patient,
        first_dose_at=now + timedelta(minutes=30),
        dosing_weight_kg=Decimal("80"),
        by=onc,
        now=now - timedelta(hours=2),
    )
    sched.course_materialise_calendar(course_id=course.pk, now=now)
    at = now - timedelta(minutes=10)
    obs.vitals_record(
        patient=patient, recorded_at=at, sbp=120, dbp=70, heart_rate=88, resp_rate=16, spo2=97, temp_c=Decimal("37.2"),
        rhythm="sinus", o2_lpm=Decimal(0), phenylephrine_mcg_kg_min=Decimal(0), other_pressor="none", by=nurse, now=now,
    )  # fmt: skip
    obs.neuro_record(
        patient=patient, recorded_at=at, rass=0, confusion="none", neuro_check_failed=False, hallucinations=False,
        vivid_dreams_or_anxiety=False, persistent_crying=False, by=nurse, now=now,
    )  # fmt: skip
    obs.exam_record(
        patient=patient, recorded_at=at, resting_dyspnea=False, rales="none", intubated=False, ileus_distension=False,
        vomiting_refractory=False, distension_affects_breathing=False, abdominal_pain_severe=False,
        extreme_tightness=False, extreme_paresthesias=False, moist_desquamation=False, by=nurse, now=now,
    )  # fmt: skip
    obs.weight_record(patient=patient, recorded_at=at, weight_kg=Decimal("80.5"), by=nurse, now=now)
    obs.labs_record(
        patient=patient, recorded_at=at, creatinine_mg_dl=Decimal("1.1"), platelets_k_ul=Decimal(210),
        bilirubin_mg_dl=Decimal("0.8"), bicarbonate_mmol_l=Decimal(24), ast_u_l=30, alt_u_l=28,
        potassium_mmol_l=Decimal("4.1"), by=nurse, now=now,
    )  # fmt: skip
    for hours in (16, 8):  # two 8 h shifts: RN-UO and GI-DIARRHEA read both
        end = at - timedelta(hours=hours - 8)
        obs.fluids_record(
            patient=patient, period_start=end - timedelta(hours=8), period_end=end, urine_ml=900, diarrhea_ml=0,
            by=nurse, now=now,
        )  # fmt: skip
    items = dict.fromkeys(ELIGIBILITY_ITEMS, True)
    sched.course_attest_eligibility(course_id=course.pk, items=items, password=PASSWORD, by=onc, now=now)
    return patient, course


# --- baselines -------------------------------------------------------------------------------------------------------


def logged_in_client(username: str = "nurse"):
    """A Django test Client with a session for `username` (the browser's way in; force_login skips the hasher)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    world()
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def trivial_get(client) -> Callable[[], None]:
    """One trivial authenticated request: GET a small API list that comes back empty (session, user, roles, one query,
    and the session-timeout middleware's session write, which every request of a signed-in user pays)."""

    def get():
        response = client.get(TRIVIAL_GET)
        assert response.status_code == 200, response.status_code

    return get


def trivial_request(client=None, repeat: int = 51) -> float:
    """Median seconds of one trivial authenticated request (see trivial_get)."""
    return median_time(trivial_get(client or logged_in_client()), repeat=repeat, number=5, warmup=5)


def select_one() -> Callable[[], None]:
    """One trivial database query: `SELECT 1` through Django's cursor, the row fetched."""
    from django.db import connection

    setup_django()

    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return query


def primary_key_get() -> Callable[[], None]:
    """One trivial database query as the application issues them: one row by primary key through the ORM
    (`Ward.objects.get(pk=...)`), the model built."""
    setup_django()
    from il2ward.models import Ward

    ward_id = world()["patient"].ward_id

    def query():
        Ward.objects.get(pk=ward_id)

    return query


def trivial_query(repeat: int = 15, number: int = 500) -> float:
    """Median seconds of one trivial database query (see select_one)."""
    return median_time(select_one(), repeat=repeat, number=number, warmup=50)
