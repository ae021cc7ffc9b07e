"""Reads that cost the same whatever the history: the ward board for 120 patients and POST /doses/{id}/evaluate/
with 1 vs 800 older vitals sets per patient, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench history

Two wards of 120 patients are written in bulk (tests/scheduling/mar/builders.py), identical but for their history: one
with the single vitals set the builder charts, the other with 800 older sets per patient (q1h back from a day ago: a
month of busy charting, 96,000 rows). Two ready patients (bench.common.ready_patient: a complete normal assessment) are
evaluated, one with its assessment only and one with 800 older vitals and neuro sets, 100 exams, 34 weights and 34 lab
panels. The tables are ANALYZEd, as autovacuum would after such growth. Each pair is timed interleaved (medians).

Bars: each "800" figure ≤ 1.2 × its "1" figure. Judged on PostgreSQL; on SQLite (the demo, window
functions over all history) the ratios are printed as information. Also shown: each figure against the trivial
authenticated GET of the same run.
"""

import sys
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from bench.common import (
    database_vendor,
    figure,
    logged_in_client,
    paired_medians,
    ready_patient,
    setup_django,
    trivial_get,
    world,
)

PATIENTS, HISTORY = 120, 800
WARDS = {"hist-1": 0, "hist-800": HISTORY}


def _older_vitals(patient_ids, user, now, sets: int):
    from monitoring.models import VitalSigns

    start = now - timedelta(days=1)
    rows = [
        VitalSigns(
            patient_id=pid, recorded_at=start - timedelta(hours=i), recorded_by=user, created_at=now, sbp=118, dbp=60,
            heart_rate=90, resp_rate=18, spo2=97, temp_c=Decimal("37.3"), rhythm="sinus", o2_lpm=Decimal(0),
            phenylephrine_mcg_kg_min=Decimal(0), other_pressor="none",
        )
        for pid in patient_ids
        for i in range(sets)
    ]  # fmt: skip
    VitalSigns.objects.bulk_create(rows, batch_size=5000)


def _older_assessments(patient_id, user, now, sets: int):
    """Neuro sets, exams, weights and lab panels before the patient's current assessment."""
    from monitoring.models import BedsideExam, LabResult, NeuroAssessment, WeightMeasurement
    from tests.charting import NORMAL_EXAM

    start = now - timedelta(days=1)
    common = {"patient_id": patient_id, "recorded_by": user, "created_at": now}
    NeuroAssessment.objects.bulk_create(
        [
            NeuroAssessment(**common, recorded_at=start - timedelta(hours=i), rass=0, confusion="none")
            for i in range(sets)
        ]
    )
    BedsideExam.objects.bulk_create(
        [BedsideExam(**common, recorded_at=start - timedelta(hours=8 * i), **NORMAL_EXAM) for i in range(sets // 8)]
    )
    WeightMeasurement.objects.bulk_create(
        [WeightMeasurement(**common, recorded_at=start - timedelta(days=i), weight_kg=80) for i in range(sets // 24)]
    )
    LabResult.objects.bulk_create(
        [
            LabResult(**common, recorded_at=start - timedelta(days=i), creatinine_mg_dl=Decimal("1.1"),
                      platelets_k_ul=200, bilirubin_mg_dl=Decimal("0.8"), bicarbonate_mmol_l=24)
            for i in range(sets // 24)
        ]
    )  # fmt: skip


def _build():
    from django.db import connection
    from django.utils import timezone

    from il2ward.services import staff_upsert, ward_upsert
    from scheduling.models import Dose
    from tests.scheduling.mar.builders import populate_ward

    w = world()
    now = timezone.now()
    wards = {code: ward_upsert(code=code, name=f"History {code}", tz="America/Chicago", now=now) for code in WARDS}
    nurse = staff_upsert(
        username="hist-nurse", role="nurse", password="bench-password-1", ward_codes=[*WARDS, w["ward"].code], now=now
    )
    oncologist = w["staff"]["onc"]
    for code, sets in WARDS.items():
        ward = wards[code]
        courses = populate_ward(ward, patients=PATIENTS, now=now, oncologist=oncologist, nurse=nurse)
        if sets:
            _older_vitals([c.patient_id for c in courses], nurse, now, sets)
    doses = {}
    for label, sets in (("1", 0), ("800", HISTORY)):
        patient, course = ready_patient(w["ward"], oncologist, w["staff"]["nurse"], mrn=f"HIST-{label}", now=now)
        if sets:
            _older_vitals([patient.pk], nurse, now, sets)
            _older_assessments(patient.pk, nurse, now, sets)
        doses[label] = Dose.objects.get(course=course, cycle=1, number=1)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return nurse, doses


def run() -> list:
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    nurse, doses = _build()
    board = logged_in_client("hist-nurse")
    evaluator = logged_in_client("nurse")

    def getter(client, url):
        def get():
            assert client.get(url).status_code == 200, url

        return get

    def poster(client, url):
        def post():
            response = client.post(url)
            assert response.status_code == 200, response.content

        return post

    pages = {label: getter(board, f"/wards/hist-{label}/") for label in ("1", "800")}
    evaluations = {label: poster(evaluator, f"/api/v1/doses/{doses[label].pk}/evaluate/") for label in ("1", "800")}

    def measure():
        return (
            paired_medians({**pages, "trivial": trivial_get(board)}, repeat=15, number=3),
            paired_medians({**evaluations, "trivial": trivial_get(evaluator)}, repeat=21, number=5),
        )

    timed_board, timed_eval = measure()
    queries = {}
    for name, fn in (("board", pages["800"]), ("board 1", pages["1"]), ("evaluate", evaluations["800"])):
        with CaptureQueriesContext(connection) as captured:
            fn()
        queries[name] = len(captured)
    judged = database_vendor() == "postgresql"
    figures: list = []
    for name, timed, note in (
        ("ward board, 120 patients", timed_board, f"queries {queries['board 1']}/{queries['board']}"),
        ("POST /doses/{id}/evaluate/", timed_eval, f"queries {queries['evaluate']}"),
    ):
        title = f"{name}: {HISTORY} vs 1 vitals sets per patient"
        if judged:
            figures.append(figure(title, timed["800"], timed["1"], 1.2, strict=False, note=note))
        else:
            figures.append((title, timed["800"] / timed["1"], f"×; {note}; bar judged on PostgreSQL"))
        for label in ("1", "800"):
            figures.append((f"{name}, {label} set(s) / trivial GET", timed[label] / timed["trivial"], "×; information"))
    if judged:  # the snapshot read as before: window functions over all history (the reads SQLite still uses)
        with _window_reads():
            before_eval = paired_medians({**evaluations, "trivial": trivial_get(evaluator)}, repeat=21, number=5)
        figures.append(
            (f"POST /doses/{{id}}/evaluate/: {HISTORY} vs 1, read with window functions over all history (before)",
             before_eval["800"] / before_eval["1"], f"×; 1 set {before_eval['1'] / before_eval['trivial']:.3g}× and "
             f"{HISTORY} sets {before_eval['800'] / before_eval['trivial']:.3g}× the trivial GET; information")
        )  # fmt: skip
    return figures


@contextmanager
def _window_reads():
    """The evaluation snapshot as it read before the LATERAL reads: ROW_NUMBER() windows over each patient's rows.
    (The board reads its latest vitals in its own statement, scheduling/selectors/board.py: nothing to compare.)"""
    from monitoring import selectors

    saved = selectors._rows_postgres
    selectors._rows_postgres = lambda requests, *, now, using: selectors._rows_portable(requests, now=now)
    try:
        yield
    finally:
        selectors._rows_postgres = saved


def main() -> int:
    from bench.__main__ import passed, table

    figures = run()
    print(table(figures))
    return 0 if all(passed(f) for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
