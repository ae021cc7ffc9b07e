"""The snapshot's reads on PostgreSQL cost the same whatever the patient's history (monitoring/selectors.py).

Two things are checked. The LATERAL reads pick exactly the rows the standard-SQL reads (window functions over all
history, labs chosen in Python) pick, on data with ties at one clinical time, entries in error, rows after `now`,
panels without every test and batches with different course starts: the engine's input is unchanged. And EXPLAIN
ANALYZE of each of the 7 queries reads no more rows with 400 sets of older history per patient than with 4, and a few
(an index probe from the newest end that stops at its LIMIT, or a range bounded by the course or an interval).
"""

import json
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from il2ward.models import Patient
from monitoring import selectors
from monitoring.domain import engine
from monitoring.domain.rulesets import CONSENSUS_2014
from monitoring.models import (
    BedsideExam,
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    VitalSigns,
    WeightMeasurement,
)
from monitoring.selectors import SnapshotRequest, snapshots_for
from tests.charting import NORMAL_EXAM
from tests.conftest import NOW

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the LATERAL reads are PostgreSQL's; SQLite runs the standard-SQL reads they are compared with")


def _patients(ward, n):
    return Patient.objects.bulk_create(
        Patient(mrn=f"HB-{i:04}", name=f"History {i}", birth_date=date(1970, 1, 1), ward=ward) for i in range(n)
    )


def _history(patients, user, *, sets: int, rng: random.Random | None = None, start=NOW - 30 * M):
    """`sets` vitals, neuro and exam sets per patient q2h back from `start`, a weight and a lab panel every 12 h.
    With `rng`: ties at one time, entries in error, rows after NOW, values left out, other values."""
    rows = {model: [] for model in (VitalSigns, NeuroAssessment, BedsideExam, WeightMeasurement, LabResult)}
    common = {"recorded_by": user, "created_at": NOW}

    def pick(*choices):
        return rng.choice(choices) if rng else choices[0]

    for p in patients:
        at = start
        for i in range(sets):
            if i and not (rng and (i == 1 or rng.random() < 0.3)):  # with rng: ties with the set before
                at = start - 2 * i * H
            if rng and i == 0 and rng.random() < 0.2:
                at = NOW + 10 * M  # after now: never read
            extra = {"entered_in_error_at": NOW} if rng and rng.random() < 0.1 else {}
            base = {"patient": p, "recorded_at": at, **common, **extra}
            rows[VitalSigns].append(
                VitalSigns(
                    **base, sbp=pick(120, 85, 100), dbp=70, heart_rate=80, resp_rate=16, spo2=97, temp_c=37,
                    rhythm=pick("sinus", "", "af"), o2_lpm=Decimal(0),
                    phenylephrine_mcg_kg_min=pick(Decimal(0), None, Decimal("1.2"), Decimal("0.4")),
                    other_pressor="none",
                )
            )  # fmt: skip
            rows[NeuroAssessment].append(NeuroAssessment(**base, rass=pick(0, -1, 1), confusion=pick("none", "mild")))
            rows[BedsideExam].append(BedsideExam(**base, **{**NORMAL_EXAM, "rales": pick("none", "lower_third")}))
            if i % 6 == 0:
                rows[WeightMeasurement].append(WeightMeasurement(**base, weight_kg=pick(Decimal(80), Decimal(81))))
                rows[LabResult].append(
                    LabResult(
                        **base, creatinine_mg_dl=pick(Decimal("1.1"), None, Decimal("2.6")),
                        platelets_k_ul=pick(200, None, 45), bilirubin_mg_dl=Decimal("0.8"),
                        bicarbonate_mmol_l=pick(24, 19), troponin_ng_l=pick(None, None, 20),
                    )
                )  # fmt: skip
    for model, objs in rows.items():
        model.objects.bulk_create(objs)


def _requests(patients, rng=None):
    out = []
    for i, p in enumerate(patients):
        since = NOW - (40 + (i % 3) * 30) * H
        if rng and rng.random() < 0.2:
            since = None
        interval = None if i % 4 == 0 else NOW - 8 * H
        out.append(SnapshotRequest(p.pk, Decimal(80), i % 4 == 0, since, interval, since and since + 6 * H))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_lateral_reads_pick_the_rows_the_standard_sql_picks(seed, ward_a, nurse_a, monkeypatch):
    rng = random.Random(seed)
    patients = _patients(ward_a, 6)
    _history(patients, nurse_a, sets=30, rng=rng)
    requests = _requests(patients, rng)

    lateral = snapshots_for(requests, now=NOW)
    monkeypatch.setattr(
        selectors, "_rows_postgres", lambda requests, now, using: selectors._rows_portable(requests, now=now)
    )
    portable = snapshots_for(requests, now=NOW)

    assert lateral == portable
    for request in requests:  # and the engine, given either, decides the same (it is given the same)
        a = engine.evaluate(lateral[request.patient_id], rule_set=CONSENSUS_2014, now=NOW).to_dict()
        assert a == engine.evaluate(portable[request.patient_id], rule_set=CONSENSUS_2014, now=NOW).to_dict()
    assert any(s.conflicts for s in lateral.values()), "the data should include ties that conflict"
    assert any(s.previous_creatinine for s in lateral.values()) and any(s.troponin_ng_l for s in lateral.values())


def _fluids_and_events(patients, user, rng):
    """Fluid periods q8h and clinical events over four days around the course starts: in error, after now, resolved
    before, after or not at all, recorded before or during the course."""
    fluids, events = [], []
    for p in patients:
        for i in range(12):
            end = NOW - i * 8 * H + rng.choice((0 * M, 20 * M, -20 * M))
            extra = {"entered_in_error_at": NOW} if rng.random() < 0.1 else {}
            fluids.append(FluidBalance(
                patient=p, recorded_at=end, recorded_by=user, created_at=NOW, period_start=end - 8 * H,
                period_end=end, urine_ml=rng.choice((900, 120, 60)), diarrhea_ml=rng.choice((None, 0, 1200)), **extra,
            ))  # fmt: skip
        for _ in range(6):
            at = NOW - rng.randrange(0, 96) * H + rng.choice((0 * M, 10 * M))  # a few after now: never read
            resolved = rng.choice((None, at + H, NOW + H, NOW - M))
            extra = {"entered_in_error_at": NOW} if rng.random() < 0.1 else {}
            events.append(ClinicalEvent(
                patient=p, recorded_at=at, recorded_by=user, created_at=NOW,
                kind=rng.choice(("infection", "chest_pain")), resolved_at=resolved and max(resolved, at), **extra,
            ))  # fmt: skip
    FluidBalance.objects.bulk_create(fluids)
    ClinicalEvent.objects.bulk_create(events)


@pytest.mark.parametrize("seed", range(4))
def test_the_fluid_and_event_reads_in_sql_pick_the_rows_the_orm_picks(seed, ward_a, nurse_a):
    rng = random.Random(seed)
    patients = _patients(ward_a, 6)
    _fluids_and_events(patients, nurse_a, rng)
    requests = _requests(patients, rng)

    fluids = selectors._fluid_periods(requests, now=NOW)
    assert fluids == selectors._fluid_periods_portable(requests, now=NOW)
    events = selectors._events(requests, now=NOW)
    assert events == selectors._events_portable(requests, now=NOW)
    assert sum(map(len, fluids.values())) and sum(map(len, events.values()))
    resolved = [e for found in events.values() for e in found if e.resolved_at is not None and e.resolved_at <= NOW]
    assert resolved, "the data should include events resolved before now, read because they are in the course"


def test_the_standard_sql_reads_are_the_nearest_case_they_grow_with_history(ward_a, nurse_a, monkeypatch):
    """The comparison that makes the bound below able to fail: the window-function reads touch every row."""
    patients = _patients(ward_a, 2)
    _history(patients, nurse_a, sets=200)
    monkeypatch.setattr(
        selectors, "_rows_postgres", lambda requests, now, using: selectors._rows_portable(requests, now=now)
    )

    assert _rows_read(_requests(patients))[0] >= 200 * 2
    # ... as the board's latest vitals did with ROW_NUMBER() over all history (filtered to 1 outside it).
    ids = [p.pk for p in patients]
    with CaptureQueriesContext(connection) as captured:
        list(selectors._standing(VitalSigns, ids, now=NOW).annotate(rn=_row_number()).filter(rn=1))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + captured.captured_queries[0]["sql"])
        plan = cursor.fetchone()[0]
    assert _scanned((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]) >= 200 * 2


def _row_number():
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    return Window(RowNumber(), partition_by=[F("patient_id")], order_by=[F("recorded_at").desc(), F("pk").desc()])


def _rows_read(requests, read=snapshots_for) -> list[int]:
    """Rows each query of `read` read from tables and indexes (EXPLAIN ANALYZE: rows returned plus rows removed by
    a filter, times loops, summed over the scan nodes)."""
    with CaptureQueriesContext(connection) as captured:
        read(requests, now=NOW)
    counts = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
            plan = cursor.fetchone()[0]
            counts.append(_scanned((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
    return counts


def _scanned(plan: dict) -> int:
    own = 0
    if "Scan" in plan["Node Type"]:
        own = (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    return own + sum(_scanned(child) for child in plan.get("Plans", ()))


def _analyze():
    with connection.cursor() as cursor:
        for model in (VitalSigns, NeuroAssessment, BedsideExam, WeightMeasurement, LabResult):
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def test_no_query_reads_more_rows_with_400_sets_of_history_than_with_4(ward_a, nurse_a):
    patients = _patients(ward_a, 4)
    requests = _requests(patients)
    _history(patients, nurse_a, sets=3)
    _history(patients, nurse_a, sets=1, start=NOW - 7 * 24 * H)  # a week old: before every course start
    _analyze()
    small = _rows_read(requests)
    small_board = _rows_read([p.pk for p in patients], selectors.latest_vitals_for)
    # 400 older sets each (67 panels and weights), all before the newest ones and the lookbacks.
    _history(patients, nurse_a, sets=400, start=NOW - 7 * 24 * H - 2 * H)
    _analyze()
    large = _rows_read(requests)
    large_board = _rows_read([p.pk for p in patients], selectors.latest_vitals_for)

    assert len(small) == len(large) == 7 and len(small_board) == len(large_board) == 1
    assert large_board[0] <= small_board[0] and large_board[0] <= 10 * len(patients), (large_board, small_board)
    # Never more rows for more history (the planner may read a small table another way), and a few per patient.
    assert all(a <= b for a, b in zip(large, small, strict=True)), (large, small)
    assert sum(large) < 100 * len(patients), large
