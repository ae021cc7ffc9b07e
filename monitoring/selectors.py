"""Reads for monitoring: the rule engine's snapshots (batch-shaped), the ward board's latest vitals, the flowsheet.

Every read of clinical data here skips rows marked entered-in-error and rows dated after ``now``. Query counts are
pinned by tests: ``snapshots_for`` costs one query per observation table (7) whatever the number of patients.

"Latest per patient" is a ``ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY ...)`` filtered to 1, run in a
subquery so it runs the same on SQLite and PostgreSQL. Ordering first by a CASE that puts the rows meeting a condition
first ("rhythm charted") makes row 1 the latest row meeting it, so several "latest X" questions are answered by one
scan of a table. ``snapshots_for`` (on every pre-dose evaluation) writes that window SQL around a plainly compiled
queryset (``_numbered``) and picks the labs in Python from one plain query: Django's compiling of window functions
cost more than the queries themselves.
"""

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce

from django.db import connections
from django.db.models import Case, F, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
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


def _newest_first(condition: Q | None = None) -> Window:
    """Row number per patient, newest first; with a condition, the rows meeting it are numbered first."""
    order = [] if condition is None else [Case(When(condition, then=Value(0)), default=Value(1))]
    return Window(
        RowNumber(), partition_by=[F("patient_id")], order_by=[*order, F("recorded_at").desc(), F("pk").desc()]
    )


def _numbered(
    queryset: QuerySet,
    *,
    where: str,
    where_params: tuple = (),
    conditions: dict[str, str] | None = None,
    order_by: str = "",
):
    """`queryset`'s rows with ``rn``, their number per patient newest first (the same as ``_newest_first()``), and
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
    ids = [r.patient_id for r in requests]

    # Vitals: the latest sets (ties at its time conflict), the two latest sets with a rhythm charted (for
    # previous_rhythm), and the sets since the earliest interval start asked for (the highest phenylephrine).
    # (rhythm is NOT NULL: blank means not charted.)
    intervals = [r.interval_since for r in requests if r.interval_since is not None]
    vitals_recent: dict[int, list[VitalSigns]] = {}
    rhythm_sets: dict[int, list[VitalSigns]] = {}
    pressor_sets: dict[int, list[VitalSigns]] = {}
    for row in _numbered(
        _standing(VitalSigns, ids, now=now),
        conditions={"rhythm_rn": "rhythm <> ''"},
        where=f"rn <= {_TIES} OR (rhythm_rn <= 2 AND rhythm <> '')"
        + (" OR (recorded_at >= %s AND phenylephrine_mcg_kg_min IS NOT NULL)" if intervals else ""),
        where_params=(min(intervals),) if intervals else (),
        order_by="patient_id, recorded_at DESC, id DESC",
    ):
        if row.rn <= _TIES:
            vitals_recent.setdefault(row.patient_id, []).append(row)
        if row.rhythm and row.rhythm_rn <= 2:
            rhythm_sets.setdefault(row.patient_id, []).append(row)
        if row.phenylephrine_mcg_kg_min is not None:
            pressor_sets.setdefault(row.patient_id, []).append(row)

    # Neuro: the latest sets and the last day of them (NE-PERSIST); the bedside exam and weights: the latest.
    neuro_recent: dict[int, list[NeuroAssessment]] = {}
    for row in _numbered(
        _standing(NeuroAssessment, ids, now=now),
        where=f"rn <= {_TIES} OR recorded_at >= %s",
        where_params=(now - NEURO_LOOKBACK,),
        order_by="patient_id, recorded_at DESC, id DESC",
    ):
        neuro_recent.setdefault(row.patient_id, []).append(row)
    exams: dict[int, list[BedsideExam]] = {}
    for row in _numbered(
        _standing(BedsideExam, ids, now=now), where=f"rn <= {_TIES}", order_by="patient_id, recorded_at DESC, id DESC"
    ):
        exams.setdefault(row.patient_id, []).append(row)
    weights_recent: dict[int, list[WeightMeasurement]] = {}
    for row in _numbered(
        _standing(WeightMeasurement, ids, now=now),
        where=f"rn <= {_TIES}",
        order_by="patient_id, recorded_at DESC, id DESC",
    ):
        weights_recent.setdefault(row.patient_id, []).append(row)

    # Labs: every standing row of these patients, chronological (panels are few: about one a day). Per column the
    # latest non-null result (a panel need not contain every test) and, for creatinine, the one before it, the
    # course's results (history) and the latest at or before the course start (baseline) are chosen in Python: one
    # plain query instead of eight window functions, which cost more to compile than the rows cost to read.
    lab_rows: dict[int, list[LabResult]] = {}
    for row in _standing(LabResult, ids, now=now).order_by("patient_id", "recorded_at", "pk"):
        lab_rows.setdefault(row.patient_id, []).append(row)

    fluids: dict[int, list[FluidPeriod]] = {}
    for row in (
        _standing(FluidBalance, ids, now=now, time_field="period_end")
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

    # Events: active at `now`, or recorded during the course (resolved ones too; the engine counts only active).
    events: dict[int, list[Event]] = {}
    in_course = _per_since(requests, "recorded_at__gte", unbounded=True)
    for row in (
        _standing(ClinicalEvent, ids, now=now)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gt=now) | in_course)
        .order_by("patient_id", "recorded_at", "pk")
    ):
        events.setdefault(row.patient_id, []).append(
            Event(kind=row.kind, at=row.recorded_at, source_id=row.source_id, resolved_at=row.resolved_at)
        )

    snapshots = {}
    for request in requests:
        pid = request.patient_id
        recent_vitals = vitals_recent.get(pid, [])
        vitals = recent_vitals[0] if recent_vitals else None
        previous_rhythm = next((r for r in rhythm_sets.get(pid, []) if vitals is None or r.pk != vitals.pk), None)
        recent_neuro = neuro_recent.get(pid, [])
        neuro = recent_neuro[0] if recent_neuro else None
        recent_exams = exams.get(pid, [])
        exam = recent_exams[0] if recent_exams else None
        recent_weights = weights_recent.get(pid, [])
        weight = recent_weights[0] if recent_weights else None
        conflicts = [
            *_conflicts(recent_vitals, VITAL_FIELDS),
            *_conflicts(recent_neuro, NEURO_FIELDS),
            *_conflicts(recent_exams, EXAM_FIELDS),
            *_conflicts(recent_weights, ("weight_kg",)),
        ]
        pressor_max = None
        if request.interval_since is not None:
            for row in pressor_sets.get(pid, []):
                if row.recorded_at >= request.interval_since and (
                    pressor_max is None or row.phenylephrine_mcg_kg_min > pressor_max.phenylephrine_mcg_kg_min
                ):
                    pressor_max = row
        history = tuple(
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
        labs = lab_rows.get(pid, [])  # chronological: (recorded_at, pk) ascending
        latest_labs = {}
        for field in SNAPSHOT_LAB_FIELDS:
            latest = next((r for r in reversed(labs) if getattr(r, field) is not None), None)
            latest_labs[field] = _reading(latest, field)
            if latest is not None:
                value = getattr(latest, field)
                conflicts += [
                    (field, _reading(r, field))
                    for r in labs
                    if r is not latest
                    and r.recorded_at == latest.recorded_at
                    and getattr(r, field) is not None
                    and getattr(r, field) != value
                ]
        creatinine = [r for r in labs if r.creatinine_mg_dl is not None]
        latest_creatinine = creatinine[-1] if creatinine else None
        previous_creatinine = creatinine[-2] if len(creatinine) >= 2 else None
        creatinine_history = [
            _reading(r, "creatinine_mg_dl")
            for r in creatinine
            if r is not latest_creatinine and (request.since is None or r.recorded_at >= request.since)
        ]
        baseline_at = request.baseline_at or request.since
        baseline = None
        if baseline_at is not None:
            baseline = next((r.creatinine_mg_dl for r in reversed(creatinine) if r.recorded_at <= baseline_at), None)
        snapshots[pid] = PatientSnapshot(
            **{field: _reading(vitals, field) for field in VITAL_FIELDS},
            **{field: _reading(neuro, field) for field in NEURO_FIELDS},
            **{field: _reading(exam, field) for field in EXAM_FIELDS},
            phenylephrine_max_interval=_reading(pressor_max, "phenylephrine_mcg_kg_min"),
            neuro_history=history,
            conflicts=tuple(conflicts),
            weight_kg=_reading(weight, "weight_kg"),
            baseline_weight_kg=request.baseline_weight_kg,
            **latest_labs,
            urine_periods=tuple(fluids.get(pid, ())),
            events=tuple(events.get(pid, ())),
            previous_creatinine=_reading(previous_creatinine, "creatinine_mg_dl"),
            creatinine_history=tuple(creatinine_history),
            baseline_creatinine_mg_dl=baseline,
            first_slot_of_cycle=request.first_slot_of_cycle,
            previous_rhythm=_reading(previous_rhythm, "rhythm"),
        )
    return snapshots


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
    rows = _standing(VitalSigns, ids, now=now).annotate(rn=_newest_first()).filter(rn=1).order_by()
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
