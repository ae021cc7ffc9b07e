"""Reads for monitoring: the rule engine's snapshots (batch-shaped), the ward board's latest vitals, the flowsheet.

Every read of clinical data here skips rows marked entered-in-error and rows dated after ``now``. Query counts are
pinned by tests: ``snapshots_for`` costs one query per observation table (7) whatever the number of patients.

"Latest per patient" on PostgreSQL is a ``LATERAL (… ORDER BY recorded_at DESC, id DESC LIMIT n)`` per patient of
the batch on the (patient, recorded_at) index (``_lateral_sql``), and the labs are read per column (the latest result
of each test the rules read, on a partial index per test): a read costs the same after a month of q2h charting as
after one set, at the same query count. Everything else the snapshot reads is a range bounded by the course (its
creatinine results, its events), the previous slot (phenylephrine since then) or a lookback (neuro 24 h, fluids 48 h).
SQLite (the demo) has no LATERAL: there the same rows are picked with ``ROW_NUMBER() OVER (PARTITION BY patient_id
…)`` over the patient's rows and the labs in Python (``_rows_portable``); a test on PostgreSQL checks that both pick
the same rows (tests/monitoring/test_snapshot_history_bound.py).
"""

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce

from django.db import connections
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from il2ward import access
from il2ward.models import Patient
from monitoring.domain.snapshot import EXAM_FIELDS, LAB_NAMES, Event, FluidPeriod, NeuroSet, PatientSnapshot, Reading
from monitoring.models import (
    OBSERVATION_MODELS,
    BedsideExam,
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    Observation,
    VitalSigns,
    WeightMeasurement,
)

VITAL_FIELDS = (
    "sbp",
    "dbp",
    "heart_rate",
    "resp_rate",
    "spo2",
    "temp_c",
    "o2_lpm",
    "fio2_pct",
    "rhythm",
    "phenylephrine_mcg_kg_min",
    "other_pressor",
    "other_pressor_mcg_kg_min",
)
NEURO_FIELDS = (
    "rass",
    "confusion",
    "neuro_check_failed",
    "hallucinations",
    "vivid_dreams_or_anxiety",
    "persistent_crying",
)
# NE-PERSIST looks back this far for a mental-status change that has not cleared.
NEURO_LOOKBACK = timedelta(hours=24)
# Rows at the latest clinical time fetched per table: two sets charted at the same minute conflict (INV-CONFLICT).
_TIES = 3
SNAPSHOT_LAB_FIELDS = tuple(LAB_NAMES)  # the lab columns the rule engine reads

# Fluid periods passed to the engine: those ending in the 48 h before `now`. The engine's longest window is 24 h back
# from the end of the latest period, so this covers it even when that period ended up to a day ago; and it never
# reaches into an earlier cycle, which ended at least 9 rest days before a new one starts.
FLUID_LOOKBACK = timedelta(hours=48)


@dataclass(frozen=True)
class SnapshotRequest:
    """Which patient, and the course context the snapshot needs.

    ``since`` is the start of the course (aware): events recorded since then are passed even when resolved,
    ``creatinine_history`` holds the creatinine results since then, ``baseline_creatinine_mg_dl`` is the latest
    creatinine at or before it, and fluid periods ending before it are not passed. None = no lower bound (and no
    baseline creatinine).
    """

    patient_id: int
    baseline_weight_kg: Decimal | int | None = None
    first_slot_of_cycle: bool = False
    since: datetime | None = None
    # The previous slot's due time: CV-PRESSOR reads the highest phenylephrine charted since then.
    interval_since: datetime | None = None
    # The course's first dose: the baseline creatinine is the latest at or before it (default: since).
    baseline_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "interval_since", "baseline_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"SnapshotRequest.{name} must be timezone-aware, got {value!r}")


def _standing(model, patient_ids, *, now: datetime, time_field: str = "recorded_at") -> QuerySet:
    """Rows of these patients that stand (not entered in error) and exist at `now`."""
    return model.objects.filter(
        patient_id__in=patient_ids, entered_in_error_at__isnull=True, **{f"{time_field}__lte": now}
    )


def _numbered(
    queryset: QuerySet,
    *,
    where: str,
    where_params: tuple = (),
    conditions: dict[str, str] | None = None,
    order_by: str = "",
):
    """`queryset`'s rows with ``rn``, their number per patient newest first (recorded_at, then pk, descending), and
    one more number per (name → SQL condition) in `conditions`, numbering the rows meeting it first; only the rows
    meeting the SQL condition `where` are returned (a RawQuerySet of model instances).

    The window functions are written as SQL around the queryset's own SQL (compiled by Django as a plain query):
    Django takes about a millisecond to compile each window function, several times the cost of running it. The
    SQL is standard and runs the same on SQLite and PostgreSQL.
    """
    model = queryset.model
    qn = connections[queryset.db].ops.quote_name
    newest = f"{qn('recorded_at')} DESC, {qn(model._meta.pk.column)} DESC"
    numbers = [
        f"ROW_NUMBER() OVER (PARTITION BY {qn('patient_id')} ORDER BY "
        f"{f'CASE WHEN {condition} THEN 0 ELSE 1 END, ' if condition else ''}{newest}) AS {qn(name)}"
        for name, condition in {"rn": "", **(conditions or {})}.items()
    ]
    inner, params = queryset.order_by().query.sql_with_params()
    sql = f"SELECT * FROM (SELECT s.*, {', '.join(numbers)} FROM ({inner}) s) r WHERE {where}"
    sql = f"{sql} ORDER BY {order_by}" if order_by else sql
    return model.objects.db_manager(queryset.db).raw(sql, (*params, *where_params))


def _per_since(requests: list[SnapshotRequest], lookup: str, *, unbounded: bool) -> Q:
    """OR over the requests' `since`: Q(patient_id__in=[...], <lookup>=since). A request without `since` matches
    all its rows when `unbounded`, none otherwise."""
    groups: dict[datetime | None, list[int]] = {}
    for request in requests:
        groups.setdefault(request.since, []).append(request.patient_id)
    parts = []
    for since, ids in groups.items():
        if since is not None:
            parts.append(Q(patient_id__in=ids, **{lookup: since}))
        elif unbounded:
            parts.append(Q(patient_id__in=ids))
    return reduce(operator.or_, parts) if parts else Q(pk__in=[])


def _reading(row: Observation | None, field: str) -> Reading | None:
    if row is None:
        return None
    value = getattr(row, field)
    if value is None or value == "":
        return None
    return Reading(value=value, at=row.recorded_at, source_id=row.source_id)


def _conflicts(rows: list[Observation], fields: tuple[str, ...]) -> list[tuple[str, Reading]]:
    """INV-CONFLICT: other rows at the clinical time of the latest (rows[0]) that chart a different value of a field.

    A row that leaves a field out does not conflict with one that charts it: only two readings can disagree."""
    if len(rows) < 2:
        return []
    latest = rows[0]
    found = []
    for other in rows[1:]:
        if other.recorded_at != latest.recorded_at:
            break
        for field in fields:
            reading = _reading(other, field)
            if reading is not None and reading.value != getattr(latest, field):
                found.append((field, reading))
    return found


# --- fetching: the rows each snapshot field is chosen from --------------------------------------------------------


@dataclass
class _Rows:
    """Per patient id, the rows the snapshot is assembled from (whichever database found them)."""

    vitals_recent: dict[int, list[VitalSigns]]  # the _TIES newest sets, newest first
    rhythm_sets: dict[int, list[VitalSigns]]  # the two newest sets with a rhythm charted, newest first
    pressor_sets: dict[int, list[VitalSigns]]  # sets since the request's interval_since with phenylephrine charted
    neuro_recent: dict[int, list[NeuroAssessment]]  # the _TIES newest and those of the lookback, newest first
    exams: dict[int, list[BedsideExam]]  # the _TIES newest, newest first
    weights: dict[int, list[WeightMeasurement]]  # the _TIES newest, newest first
    # Labs. Per lab field, the rows at that field's latest time that chart it, chronological (the last is the latest);
    # the two newest creatinine results, newest first; the course's creatinine results (since), chronological; and the
    # latest creatinine at or before baseline_at.
    lab_latest: dict[int, dict[str, list[LabResult]]]
    creatinine_last2: dict[int, list[LabResult]]
    creatinine_since: dict[int, list[LabResult]]
    creatinine_baseline: dict[int, LabResult]


_NEWEST = "ORDER BY t.recorded_at DESC, t.id DESC"


def _columns(model) -> str:
    return ", ".join(f't."{f.column}"' for f in model._meta.concrete_fields)


def _lateral_sql(model, parts: dict[str, str]) -> str:
    """One query, per patient of the batch (the relation ``p``: id, since, interval_since, baseline_at) a LATERAL
    subquery per part (name → ``WHERE … ORDER BY … LIMIT …`` after the standing-row conditions), UNION ALL, each row
    tagged with its part's name. Every part walks the (patient, recorded_at) index from one end and stops at its
    LIMIT, or reads a range bounded by the course or an interval: its cost does not grow with the patient's history.
    """
    table = model._meta.db_table
    standing = "t.patient_id = p.id AND t.entered_in_error_at IS NULL AND t.recorded_at <= %(now)s"
    branches = [
        f"SELECT l.*, '{name}' AS part FROM p CROSS JOIN LATERAL "
        f'(SELECT {_columns(model)} FROM "{table}" t WHERE {standing} {rest}) l'
        for name, rest in parts.items()
    ]
    return (
        "WITH p AS (SELECT * FROM unnest(%(ids)s::bigint[], %(since)s::timestamptz[], %(interval)s::timestamptz[], "
        "%(baseline)s::timestamptz[]) AS p(id, since, interval_since, baseline_at)) " + " UNION ALL ".join(branches)
    )


def _postgres_parts() -> dict:
    """The SQL of each table's query (built once: it depends only on the models)."""
    if "sql" not in _SQL:
        # Per lab field: the rows charting it at its latest time (an index probe for that time, then its rows).
        latest_time = (
            f'SELECT u.recorded_at FROM "{LabResult._meta.db_table}" u WHERE u.patient_id = p.id'
            " AND u.entered_in_error_at IS NULL AND u.recorded_at <= %(now)s AND u.{field} IS NOT NULL"
            " ORDER BY u.recorded_at DESC LIMIT 1"
        )
        labs = {
            f"at:{field}": f"AND t.{field} IS NOT NULL AND t.recorded_at = ({latest_time.format(field=field)})"
            " ORDER BY t.id"
            for field in SNAPSHOT_LAB_FIELDS
        }
        creatinine = "AND t.creatinine_mg_dl IS NOT NULL"
        course = "t.recorded_at >= COALESCE(p.since, '-infinity'::timestamptz)"
        labs["last2"] = f"{creatinine} {_NEWEST} LIMIT 2"
        labs["since"] = f"{creatinine} AND {course} ORDER BY t.recorded_at, t.id"
        labs["baseline"] = f"{creatinine} AND t.recorded_at <= p.baseline_at {_NEWEST} LIMIT 1"
        pressor = "AND t.recorded_at >= p.interval_since AND t.phenylephrine_mcg_kg_min IS NOT NULL"
        _SQL["sql"] = {
            VitalSigns: _lateral_sql(
                VitalSigns,
                {
                    "recent": f"{_NEWEST} LIMIT {_TIES}",
                    "rhythm": f"AND t.rhythm <> '' {_NEWEST} LIMIT 2",
                    "pressor": f"{pressor} {_NEWEST}",
                },
            ),
            NeuroAssessment: _lateral_sql(
                NeuroAssessment,
                {"recent": f"{_NEWEST} LIMIT {_TIES}", "lookback": f"AND t.recorded_at >= %(lookback)s {_NEWEST}"},
            ),
            BedsideExam: _lateral_sql(BedsideExam, {"recent": f"{_NEWEST} LIMIT {_TIES}"}),
            WeightMeasurement: _lateral_sql(WeightMeasurement, {"recent": f"{_NEWEST} LIMIT {_TIES}"}),
            LabResult: _lateral_sql(LabResult, labs),
        }
    return _SQL["sql"]


_SQL: dict = {}


def _postgres_params(requests: list[SnapshotRequest], *, now: datetime) -> dict:
    return {
        "ids": [r.patient_id for r in requests],
        "since": [r.since for r in requests],
        "interval": [r.interval_since for r in requests],
        "baseline": [r.baseline_at or r.since for r in requests],
        "now": now,
        "lookback": now - NEURO_LOOKBACK,
    }


def _rows_postgres(requests: list[SnapshotRequest], *, now: datetime, using: str) -> _Rows:
    """One LATERAL query per table (see _lateral_sql)."""
    sql, params = _postgres_parts(), _postgres_params(requests, now=now)
    rows = _Rows({}, {}, {}, {}, {}, {}, {}, {}, {}, {})

    def run(model):
        return model.objects.db_manager(using).raw(sql[model], params)

    by_part = {"recent": rows.vitals_recent, "rhythm": rows.rhythm_sets, "pressor": rows.pressor_sets}
    for row in run(VitalSigns):
        by_part[row.part].setdefault(row.patient_id, []).append(row)
    neuro: dict[int, dict[int, NeuroAssessment]] = {}
    for row in run(NeuroAssessment):  # a set can be both among the newest and in the lookback: once
        neuro.setdefault(row.patient_id, {})[row.pk] = row
    rows.neuro_recent.update((pid, list(found.values())) for pid, found in neuro.items())
    for model, into in ((BedsideExam, rows.exams), (WeightMeasurement, rows.weights)):
        for row in run(model):
            into.setdefault(row.patient_id, []).append(row)
    for row in run(LabResult):
        if row.part.startswith("at:"):
            rows.lab_latest.setdefault(row.patient_id, {}).setdefault(row.part[3:], []).append(row)
        elif row.part == "last2":
            rows.creatinine_last2.setdefault(row.patient_id, []).append(row)
        elif row.part == "since":
            rows.creatinine_since.setdefault(row.patient_id, []).append(row)
        else:
            rows.creatinine_baseline[row.patient_id] = row
    # SQL orders rows inside each subquery only: put each list in the order _Rows promises (a handful of rows).
    for newest_first in (*by_part.values(), rows.neuro_recent, rows.exams, rows.weights, rows.creatinine_last2):
        for found in newest_first.values():
            found.sort(key=_clinical_order, reverse=True)
    for found in (*rows.creatinine_since.values(), *(f for d in rows.lab_latest.values() for f in d.values())):
        found.sort(key=_clinical_order)
    return rows


def _clinical_order(row: Observation) -> tuple:
    return (row.recorded_at, row.pk)


def _rows_portable(requests: list[SnapshotRequest], *, now: datetime) -> _Rows:
    """The same rows with standard SQL (SQLite, the demo's database): window functions over each patient's rows,
    and the labs chosen in Python from all of them. Cost grows with the history; PostgreSQL uses _rows_postgres."""
    ids = [r.patient_id for r in requests]
    rows = _Rows({}, {}, {}, {}, {}, {}, {}, {}, {}, {})
    # (rhythm is NOT NULL: blank means not charted.)
    intervals = [r.interval_since for r in requests if r.interval_since is not None]
    interval_of = {r.patient_id: r.interval_since for r in requests}
    for row in _numbered(
        _standing(VitalSigns, ids, now=now),
        conditions={"rhythm_rn": "rhythm <> ''"},
        where=f"rn <= {_TIES} OR (rhythm_rn <= 2 AND rhythm <> '')"
        + (" OR (recorded_at >= %s AND phenylephrine_mcg_kg_min IS NOT NULL)" if intervals else ""),
        where_params=(min(intervals),) if intervals else (),
        order_by="patient_id, recorded_at DESC, id DESC",
    ):
        if row.rn <= _TIES:
            rows.vitals_recent.setdefault(row.patient_id, []).append(row)
        if row.rhythm and row.rhythm_rn <= 2:
            rows.rhythm_sets.setdefault(row.patient_id, []).append(row)
        since = interval_of[row.patient_id]
        if row.phenylephrine_mcg_kg_min is not None and since is not None and row.recorded_at >= since:
            rows.pressor_sets.setdefault(row.patient_id, []).append(row)
    for row in _numbered(
        _standing(NeuroAssessment, ids, now=now),
        where=f"rn <= {_TIES} OR recorded_at >= %s",
        where_params=(now - NEURO_LOOKBACK,),
        order_by="patient_id, recorded_at DESC, id DESC",
    ):
        rows.neuro_recent.setdefault(row.patient_id, []).append(row)
    for model, into in ((BedsideExam, rows.exams), (WeightMeasurement, rows.weights)):
        for row in _numbered(
            _standing(model, ids, now=now), where=f"rn <= {_TIES}", order_by="patient_id, recorded_at DESC, id DESC"
        ):
            into.setdefault(row.patient_id, []).append(row)
    lab_rows: dict[int, list[LabResult]] = {}
    for row in _standing(LabResult, ids, now=now).order_by("patient_id", "recorded_at", "pk"):
        lab_rows.setdefault(row.patient_id, []).append(row)
    for request in requests:
        pid, labs = request.patient_id, lab_rows.get(request.patient_id, [])  # chronological
        for field in SNAPSHOT_LAB_FIELDS:
            charted = [r for r in labs if getattr(r, field) is not None]
            if charted:
                at = charted[-1].recorded_at
                rows.lab_latest.setdefault(pid, {})[field] = [r for r in charted if r.recorded_at == at]
        creatinine = [r for r in labs if r.creatinine_mg_dl is not None]
        rows.creatinine_last2[pid] = creatinine[::-1][:2]
        rows.creatinine_since[pid] = [r for r in creatinine if request.since is None or r.recorded_at >= request.since]
        baseline_at = request.baseline_at or request.since
        if baseline_at is not None:
            baseline = next((r for r in reversed(creatinine) if r.recorded_at <= baseline_at), None)
            if baseline is not None:
                rows.creatinine_baseline[pid] = baseline
    return rows


def snapshots_for(requests: list[SnapshotRequest], *, now: datetime) -> dict[int, PatientSnapshot]:
    """The rule engine's input for many patients in 7 queries (one per observation table), keyed by patient id.

    Each reading is the latest standing value at or before `now`, whatever its age; a patient without data gets
    an empty snapshot. See ``monitoring/domain/snapshot.py`` for what the engine expects of each field.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    requests = list({r.patient_id: r for r in requests}.values())
    if not requests:
        return {}
    using = VitalSigns.objects.db
    if connections[using].vendor == "postgresql":
        rows = _rows_postgres(requests, now=now, using=using)
    else:
        rows = _rows_portable(requests, now=now)
    fluids = _fluid_periods(requests, now=now)
    events = _events(requests, now=now)
    return {
        r.patient_id: _snapshot(
            r, rows, fluids=fluids.get(r.patient_id, ()), events=events.get(r.patient_id, ()), now=now
        )
        for r in requests
    }


# The batch as a relation (patient id, course start) for the two range reads below, on PostgreSQL.
_BATCH = "WITH p AS (SELECT * FROM unnest(%(ids)s::bigint[], %(since)s::timestamptz[]) AS p(id, since)) "
# Written as SQL: compiling each of these ORM queries cost about as much CPU as the LATERAL reads, on every evaluation.
_FLUIDS_SQL = (
    _BATCH + f'SELECT t.id, t.patient_id, t.period_start, t.period_end, t.urine_ml, t.diarrhea_ml FROM p JOIN "'
    f'{FluidBalance._meta.db_table}" t ON t.patient_id = p.id WHERE t.entered_in_error_at IS NULL'
    " AND t.period_end <= %(now)s AND t.period_end > %(lookback)s AND (p.since IS NULL OR t.period_end > p.since)"
    " ORDER BY t.patient_id, t.period_start, t.id"
)
_EVENTS_SQL = (
    _BATCH + f'SELECT t.id, t.patient_id, t.kind, t.recorded_at, t.resolved_at FROM p JOIN "'
    f'{ClinicalEvent._meta.db_table}" t ON t.patient_id = p.id WHERE t.entered_in_error_at IS NULL'
    " AND t.recorded_at <= %(now)s AND (t.resolved_at IS NULL OR t.resolved_at > %(now)s"
    " OR p.since IS NULL OR t.recorded_at >= p.since) ORDER BY t.patient_id, t.recorded_at, t.id"
)


def _batch_rows(sql: str, requests: list[SnapshotRequest], **params) -> list[tuple]:
    with connections[FluidBalance.objects.db].cursor() as cursor:
        cursor.execute(sql, {"ids": [r.patient_id for r in requests], "since": [r.since for r in requests], **params})
        return cursor.fetchall()


def _fluid_periods(requests: list[SnapshotRequest], *, now: datetime) -> dict[int, list[FluidPeriod]]:
    """Per patient, the standing fluid periods ending in the lookback and after the course's start, in order (one
    query)."""
    if connections[FluidBalance.objects.db].vendor != "postgresql":
        return _fluid_periods_portable(requests, now=now)
    fluids: dict[int, list[FluidPeriod]] = {}
    for pk, patient_id, start, end, urine_ml, diarrhea_ml in _batch_rows(
        _FLUIDS_SQL, requests, now=now, lookback=now - FLUID_LOOKBACK
    ):
        fluids.setdefault(patient_id, []).append(
            FluidPeriod(
                start=start, end=end, urine_ml=urine_ml, diarrhea_ml=diarrhea_ml, source_id=f"{FluidBalance.KIND}:{pk}"
            )
        )
    return fluids


def _fluid_periods_portable(requests: list[SnapshotRequest], *, now: datetime) -> dict[int, list[FluidPeriod]]:
    """_fluid_periods through the ORM (SQLite; on PostgreSQL a test checks both read the same periods)."""
    fluids: dict[int, list[FluidPeriod]] = {}
    for row in (
        _standing(FluidBalance, [r.patient_id for r in requests], now=now, time_field="period_end")
        .filter(period_end__gt=now - FLUID_LOOKBACK)
        .filter(_per_since(requests, "period_end__gt", unbounded=True))
        .order_by("patient_id", "period_start", "pk")
    ):
        fluids.setdefault(row.patient_id, []).append(
            FluidPeriod(
                start=row.period_start,
                end=row.period_end,
                urine_ml=row.urine_ml,
                diarrhea_ml=row.diarrhea_ml,
                source_id=row.source_id,
            )
        )
    return fluids


def _events(requests: list[SnapshotRequest], *, now: datetime) -> dict[int, list[Event]]:
    """Per patient, the events active at `now` or recorded during the course (resolved ones too; the engine counts
    only active ones), in order (one query)."""
    if connections[ClinicalEvent.objects.db].vendor != "postgresql":
        return _events_portable(requests, now=now)
    events: dict[int, list[Event]] = {}
    for pk, patient_id, kind, at, resolved_at in _batch_rows(_EVENTS_SQL, requests, now=now):
        events.setdefault(patient_id, []).append(
            Event(kind=kind, at=at, source_id=f"{ClinicalEvent.KIND}:{pk}", resolved_at=resolved_at)
        )
    return events


def _events_portable(requests: list[SnapshotRequest], *, now: datetime) -> dict[int, list[Event]]:
    """_events through the ORM (SQLite; on PostgreSQL a test checks both read the same events)."""
    events: dict[int, list[Event]] = {}
    in_course = _per_since(requests, "recorded_at__gte", unbounded=True)
    for row in (
        _standing(ClinicalEvent, [r.patient_id for r in requests], now=now)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=now) | in_course)
        .order_by("patient_id", "recorded_at", "pk")
    ):
        events.setdefault(row.patient_id, []).append(
            Event(kind=row.kind, at=row.recorded_at, source_id=row.source_id, resolved_at=row.resolved_at)
        )
    return events


def _snapshot(request: SnapshotRequest, rows: _Rows, *, fluids, events, now: datetime) -> PatientSnapshot:
    """One patient's snapshot, assembled from the rows fetched for the whole batch (no queries)."""
    pid = request.patient_id
    recent_vitals = rows.vitals_recent.get(pid, [])
    recent_neuro = rows.neuro_recent.get(pid, [])
    recent_exams = rows.exams.get(pid, [])
    recent_weights = rows.weights.get(pid, [])
    vitals, neuro, exam, weight = (_newest(r) for r in (recent_vitals, recent_neuro, recent_exams, recent_weights))
    previous_rhythm = next((r for r in rows.rhythm_sets.get(pid, []) if vitals is None or r.pk != vitals.pk), None)
    latest_labs, lab_conflicts = _lab_readings(rows.lab_latest.get(pid, {}))
    conflicts = [
        *_conflicts(recent_vitals, VITAL_FIELDS),
        *_conflicts(recent_neuro, NEURO_FIELDS),
        *_conflicts(recent_exams, EXAM_FIELDS),
        *_conflicts(recent_weights, ("weight_kg",)),
        *lab_conflicts,
    ]
    previous_creatinine, creatinine_history, baseline_creatinine = _creatinine_readings(rows, pid)
    return PatientSnapshot(
        **{field: _reading(vitals, field) for field in VITAL_FIELDS},
        **{field: _reading(neuro, field) for field in NEURO_FIELDS},
        **{field: _reading(exam, field) for field in EXAM_FIELDS},
        phenylephrine_max_interval=_reading(_pressor_max(request, rows), "phenylephrine_mcg_kg_min"),
        neuro_history=_neuro_history(recent_neuro, now=now),
        conflicts=tuple(conflicts),
        weight_kg=_reading(weight, "weight_kg"),
        baseline_weight_kg=request.baseline_weight_kg,
        **latest_labs,
        urine_periods=tuple(fluids),
        events=tuple(events),
        previous_creatinine=previous_creatinine,
        creatinine_history=creatinine_history,
        baseline_creatinine_mg_dl=baseline_creatinine,
        first_slot_of_cycle=request.first_slot_of_cycle,
        previous_rhythm=_reading(previous_rhythm, "rhythm"),
    )


def _newest(rows: list) -> Observation | None:
    """The first of rows kept newest first, if any."""
    return rows[0] if rows else None


def _pressor_max(request: SnapshotRequest, rows: _Rows) -> VitalSigns | None:
    """CV-PRESSOR: the set with the highest phenylephrine charted since the previous slot (the first of equals)."""
    pressor_max = None
    if request.interval_since is not None:
        for row in rows.pressor_sets.get(request.patient_id, []):
            if row.recorded_at >= request.interval_since and (
                pressor_max is None or row.phenylephrine_mcg_kg_min > pressor_max.phenylephrine_mcg_kg_min
            ):
                pressor_max = row
    return pressor_max


def _neuro_history(recent_neuro: list[NeuroAssessment], *, now: datetime) -> tuple[NeuroSet, ...]:
    """NE-PERSIST's input: the neuro sets of the lookback, chronological."""
    return tuple(
        NeuroSet(
            at=row.recorded_at,
            rass=row.rass,
            confusion=row.confusion,
            neuro_check_failed=row.neuro_check_failed,
            source_id=row.source_id,
        )
        for row in reversed(recent_neuro)
        if row.recorded_at >= now - NEURO_LOOKBACK
    )


def _lab_readings(lab_latest: dict[str, list[LabResult]]) -> tuple[dict, list[tuple[str, Reading]]]:
    """Labs per column: the latest result of each test (a panel need not contain every test), and every other
    result of that test at the same clinical time that disagrees with it (INV-CONFLICT), chronological."""
    latest_labs = {}
    conflicts = []
    for field in SNAPSHOT_LAB_FIELDS:
        at_latest = lab_latest.get(field, [])
        latest = at_latest[-1] if at_latest else None
        latest_labs[field] = _reading(latest, field)
        if latest is not None:
            value = getattr(latest, field)
            conflicts += [(field, _reading(r, field)) for r in at_latest[:-1] if getattr(r, field) != value]
    return latest_labs, conflicts


def _creatinine_readings(rows: _Rows, pid: int) -> tuple[Reading | None, tuple[Reading | None, ...], Decimal | None]:
    """The creatinine before the latest, the course's other results (chronological) and the baseline value."""
    last2 = rows.creatinine_last2.get(pid, [])
    latest = _newest(last2)
    previous = last2[1] if len(last2) >= 2 else None
    history = tuple(
        _reading(r, "creatinine_mg_dl")
        for r in rows.creatinine_since.get(pid, [])
        if latest is None or r.pk != latest.pk
    )
    baseline_row = rows.creatinine_baseline.get(pid)
    baseline = baseline_row.creatinine_mg_dl if baseline_row is not None else None
    return _reading(previous, "creatinine_mg_dl"), history, baseline


def patient_snapshot(
    patient_id: int,
    *,
    now: datetime,
    baseline_weight_kg: Decimal | int | None = None,
    first_slot_of_cycle: bool = False,
    since: datetime | None = None,
) -> PatientSnapshot:
    """One patient's snapshot (the same 7 queries as a batch)."""
    request = SnapshotRequest(patient_id, baseline_weight_kg, first_slot_of_cycle, since)
    return snapshots_for([request], now=now)[patient_id]


def latest_vitals_for(patient_ids, *, now: datetime) -> dict[int, VitalSigns]:
    """The latest standing vitals set at or before `now` of each patient that has one (one query; the ward board)."""
    ids = list(patient_ids)
    if not ids:
        return {}
    if connections[VitalSigns.objects.db].vendor == "postgresql":
        # One LATERAL probe per patient of the (patient, recorded_at) index from the newest end. PostgreSQL runs the
        # portable query's correlated subquery three times per patient (EXPLAIN: 360 loops for 120 patients).
        table = connections[VitalSigns.objects.db].ops.quote_name(VitalSigns._meta.db_table)
        rows = VitalSigns.objects.raw(
            f"SELECT v.* FROM unnest(%s::bigint[]) AS p(id) CROSS JOIN LATERAL (SELECT * FROM {table} s WHERE "
            "s.patient_id = p.id AND s.entered_in_error_at IS NULL AND s.recorded_at <= %s "
            "ORDER BY s.recorded_at DESC, s.id DESC LIMIT 1) v",
            [ids, now],
        )
        return {row.patient_id: row for row in rows}
    # Per patient, the id of its latest set (a correlated subquery with LIMIT 1: one probe of the (patient,
    # recorded_at) index from the newest end), then those rows: standard SQL, bounded on SQLite and PostgreSQL alike.
    latest = (
        VitalSigns.objects.filter(patient_id=OuterRef("pk"), entered_in_error_at__isnull=True, recorded_at__lte=now)
        .order_by("-recorded_at", "-pk")
        .values("pk")[:1]
    )
    rows = VitalSigns.objects.filter(
        pk__in=Patient.objects.filter(pk__in=ids).annotate(latest=Subquery(latest)).values("latest")
    ).order_by()
    return {row.patient_id: row for row in rows}


def observation_model(kind: str) -> type[Observation]:
    """The model of an observation kind (vitals, neuro, weights, fluids, labs, events); unknown kind → 404."""
    try:
        return OBSERVATION_MODELS[kind]
    except KeyError as exc:
        raise Http404("No such observation kind") from exc


def observations(patient: Patient, kind: str, *, limit: int = 200) -> list[Observation]:
    """A patient's observations of one kind, newest first, including those entered in error (shown as such).

    One query (recording and correcting users joined).
    """
    model = observation_model(kind)
    related = ["recorded_by__profile", "entered_in_error_by__profile"]
    related += ["resolved_by__profile"] if model is ClinicalEvent else []
    return list(model.objects.filter(patient=patient).select_related(*related).order_by("-recorded_at", "-pk")[:limit])


def observation_for(user, kind: str, observation_id) -> Observation:
    """One observation the user may see (its patient on the user's wards), with patient and ward; else 404."""
    model = observation_model(kind)
    related = ["patient__ward", "recorded_by", "entered_in_error_by"]
    if model is ClinicalEvent:
        related.append("resolved_by")
    try:
        return (
            model.objects.select_related(*related)
            .filter(patient__in=access.visible_patients(user))
            .get(pk=observation_id)
        )
    except (model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such observation") from exc


def event_for(patient: Patient, event_id) -> ClinicalEvent:
    try:
        return ClinicalEvent.objects.select_related("recorded_by").get(patient=patient, pk=event_id)
    except (ClinicalEvent.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such event") from exc
