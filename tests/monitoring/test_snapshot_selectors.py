"""The snapshot selector: what the rule engine is given, and in how many queries."""

from dataclasses import fields
from datetime import date, timedelta
from decimal import Decimal

import pytest

from il2ward.models import Patient
from monitoring import selectors, services
from monitoring.domain import engine
from monitoring.domain.rulesets import CONSENSUS_2014
from monitoring.domain.snapshot import EXAM_FIELDS, Event, FluidPeriod, PatientSnapshot, Reading
from monitoring.models import (
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    VitalSigns,
    WeightMeasurement,
)
from monitoring.selectors import SnapshotRequest, patient_snapshot, snapshots_for
from tests.conftest import NOW, PASSWORD
from tests.monitoring.conftest import record

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _fast(fast_password_hashing):
    pass


def snap(patient, *, now=NOW, **request) -> PatientSnapshot:
    return patient_snapshot(patient.pk, now=now, **request)


def test_a_patient_without_data_gets_an_empty_snapshot(patient_a):
    snapshot = snap(patient_a, baseline_weight_kg=Decimal("80.0"), first_slot_of_cycle=True, since=NOW - 48 * H)

    assert snapshot == PatientSnapshot(baseline_weight_kg=Decimal("80.0"), first_slot_of_cycle=True)


def test_no_requests_no_queries(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert snapshots_for([], now=NOW) == {}


def test_naive_since_is_refused():
    from datetime import datetime

    with pytest.raises(ValueError, match="aware"):
        SnapshotRequest(1, since=datetime(2027, 3, 1))


# --------------------------------------------------------------------------------------------------- vitals


def test_the_latest_vitals_set_wins_whole(nurse_a, patient_a):
    record(
        "vitals", patient_a, nurse_a, at=NOW - 3 * H, sbp=85, o2_lpm="4", fio2_pct=40, phenylephrine_mcg_kg_min="0.6"
    )
    latest = record("vitals", patient_a, nurse_a, at=NOW - 20 * M, sbp=118, temp_c="38.4", rhythm="sinus")
    record("vitals", patient_a, nurse_a, at=NOW - 2 * H, sbp=90)

    snapshot = snap(patient_a)

    source = f"vitals:{latest.pk}"
    at = NOW - 20 * M
    assert snapshot.sbp == Reading(118, at, source)
    assert snapshot.dbp == Reading(70, at, source)
    assert snapshot.heart_rate == Reading(88, at, source)
    assert snapshot.resp_rate == Reading(16, at, source)
    assert snapshot.spo2 == Reading(97, at, source)
    assert snapshot.temp_c == Reading(Decimal("38.4"), at, source)
    assert snapshot.rhythm == Reading("sinus", at, source)
    # Left out of the latest set: not carried forward from the older one.
    assert (snapshot.o2_lpm, snapshot.fio2_pct, snapshot.phenylephrine_mcg_kg_min) == (None, None, None)


def test_value_types_are_exact(nurse_a, patient_a):
    record("vitals", patient_a, nurse_a, o2_lpm="2.5", phenylephrine_mcg_kg_min="0.55")
    snapshot = snap(patient_a)

    assert type(snapshot.sbp.value) is int
    assert snapshot.o2_lpm.value == Decimal("2.5") and isinstance(snapshot.o2_lpm.value, Decimal)
    assert snapshot.phenylephrine_mcg_kg_min.value == Decimal("0.55")
    assert snapshot.sbp.at.utcoffset() == timedelta(0)


def test_readings_after_now_are_not_given(nurse_a, patient_a):
    before = record("vitals", patient_a, nurse_a, at=NOW - 30 * M, sbp=110)
    record("vitals", patient_a, nurse_a, at=NOW + 3 * M, sbp=80)  # allowed 3 min ahead; not there yet at NOW

    assert snap(patient_a).sbp == Reading(110, NOW - 30 * M, f"vitals:{before.pk}")
    assert snap(patient_a, now=NOW + 3 * M).sbp.value == 80


def test_an_entry_in_error_is_ignored(nurse_a, patient_a):
    kept = record("vitals", patient_a, nurse_a, at=NOW - 2 * H, sbp=112)
    wrong = record("vitals", patient_a, nurse_a, at=NOW - 10 * M, sbp=80)
    assert snap(patient_a).sbp.source_id == f"vitals:{wrong.pk}"

    services.observation_enter_in_error(
        observation=wrong, reason="other patient", password=PASSWORD, by=nurse_a, now=NOW
    )

    assert VitalSigns.objects.count() == 2
    assert snap(patient_a).sbp == Reading(112, NOW - 2 * H, f"vitals:{kept.pk}")


def test_previous_rhythm_is_the_last_rhythm_charted_before_the_latest_set(nurse_a, patient_a):
    sinus = record("vitals", patient_a, nurse_a, at=NOW - 4 * H, rhythm="sinus")
    record("vitals", patient_a, nurse_a, at=NOW - 3 * H)  # rhythm not charted
    af = record("vitals", patient_a, nurse_a, at=NOW - 2 * H, rhythm="af")

    snapshot = snap(patient_a)
    assert snapshot.rhythm == Reading("af", NOW - 2 * H, f"vitals:{af.pk}")
    assert snapshot.previous_rhythm == Reading("sinus", NOW - 4 * H, f"vitals:{sinus.pk}")

    record("vitals", patient_a, nurse_a, at=NOW - 1 * H)  # latest set without a rhythm
    snapshot = snap(patient_a)
    assert snapshot.rhythm is None
    assert snapshot.previous_rhythm == Reading("af", NOW - 2 * H, f"vitals:{af.pk}")


# --------------------------------------------------------------------------------------------------- neuro, weight


def test_latest_neuro_and_weight(nurse_a, patient_a):
    record("neuro", patient_a, nurse_a, at=NOW - 3 * H, rass=-3, confusion="severe", hallucinations=True)
    neuro = record("neuro", patient_a, nurse_a, at=NOW - 1 * H, rass=-1, confusion="mild", neuro_check_failed=True)
    record("weights", patient_a, nurse_a, at=NOW - 30 * H, weight_kg="80.0")
    weight = record("weights", patient_a, nurse_a, at=NOW - 6 * H, weight_kg="84.5")

    snapshot = snap(patient_a, baseline_weight_kg=Decimal("80.0"))

    source = f"neuro:{neuro.pk}"
    assert snapshot.rass == Reading(-1, NOW - H, source)
    assert snapshot.confusion == Reading("mild", NOW - H, source)
    assert snapshot.neuro_check_failed == Reading(True, NOW - H, source)
    assert snapshot.hallucinations is None  # not answered in the newest set: missing, not "no"
    assert snapshot.weight_kg == Reading(Decimal("84.5"), NOW - 6 * H, f"weights:{weight.pk}")
    assert snapshot.baseline_weight_kg == Decimal("80.0")


# --------------------------------------------------------------------------------------------------- labs


def test_each_lab_is_the_latest_result_of_that_test(nurse_a, patient_a):
    since = NOW - 72 * H
    pre_course = record("labs", patient_a, nurse_a, at=NOW - 100 * H, creatinine_mg_dl="0.90")
    full = record("labs", patient_a, nurse_a, at=NOW - 30 * H, creatinine_mg_dl="1.00", platelets_k_ul=200)
    creat = services.labs_record(
        patient=patient_a, recorded_at=NOW - 5 * H, creatinine_mg_dl=Decimal("1.4"), by=nurse_a, now=NOW
    )
    plt = services.labs_record(patient=patient_a, recorded_at=NOW - 2 * H, platelets_k_ul=150, by=nurse_a, now=NOW)
    wrong = services.labs_record(
        patient=patient_a, recorded_at=NOW - 1 * H, creatinine_mg_dl=Decimal("9.9"), by=nurse_a, now=NOW
    )
    services.observation_enter_in_error(observation=wrong, reason="haemolysed", password=PASSWORD, by=nurse_a, now=NOW)
    services.labs_record(patient=patient_a, recorded_at=NOW + 2 * M, platelets_k_ul=20, by=nurse_a, now=NOW)

    snapshot = snap(patient_a, since=since)

    assert snapshot.creatinine_mg_dl == Reading(Decimal("1.40"), NOW - 5 * H, f"labs:{creat.pk}")
    assert snapshot.platelets_k_ul == Reading(Decimal("150.0"), NOW - 2 * H, f"labs:{plt.pk}")
    assert snapshot.bilirubin_mg_dl == Reading(Decimal("0.80"), NOW - 30 * H, f"labs:{full.pk}")
    assert snapshot.bicarbonate_mmol_l.source_id == f"labs:{full.pk}"
    assert snapshot.ast_u_l == Reading(30, NOW - 30 * H, f"labs:{full.pk}")
    assert snapshot.alt_u_l.value == 28
    assert snapshot.potassium_mmol_l.value == Decimal("4.10")
    assert snapshot.previous_creatinine == Reading(Decimal("1.00"), NOW - 30 * H, f"labs:{full.pk}")
    assert snapshot.creatinine_history == (Reading(Decimal("1.00"), NOW - 30 * H, f"labs:{full.pk}"),)
    assert snapshot.baseline_creatinine_mg_dl == Decimal("0.90")

    unbounded = snap(patient_a)
    assert [r.source_id for r in unbounded.creatinine_history] == [f"labs:{pre_course.pk}", f"labs:{full.pk}"]
    assert unbounded.baseline_creatinine_mg_dl is None


# --------------------------------------------------------------------------------------------------- fluids


def test_fluid_periods_of_the_last_48_h_within_the_course(nurse_a, patient_a):
    def fluids(end, hours=8, urine=600, **kw):
        return services.fluids_record(
            patient=patient_a, period_start=end - hours * H, period_end=end, urine_ml=urine, by=nurse_a, now=NOW, **kw
        )

    fluids(NOW - 50 * H)  # ended more than 48 h ago
    before_course = fluids(NOW - 40 * H)
    shift = fluids(NOW - 20 * H, diarrhea_ml=300)
    latest = fluids(NOW - 4 * H, urine=150)
    wrong = fluids(NOW - 1 * H, urine=5)
    services.observation_enter_in_error(observation=wrong, reason="wrong bag", password=PASSWORD, by=nurse_a, now=NOW)
    fluids(NOW + 4 * M)  # not ended yet at NOW

    snapshot = snap(patient_a, since=NOW - 36 * H)

    assert snapshot.urine_periods == (
        FluidPeriod(NOW - 28 * H, NOW - 20 * H, 600, 300, f"fluids:{shift.pk}"),
        FluidPeriod(NOW - 12 * H, NOW - 4 * H, 150, None, f"fluids:{latest.pk}"),
    )
    assert [p.source_id for p in snap(patient_a).urine_periods] == [
        f"fluids:{before_course.pk}",
        f"fluids:{shift.pk}",
        f"fluids:{latest.pk}",
    ]


# --------------------------------------------------------------------------------------------------- events


def test_events_active_now_or_recorded_during_the_course(nurse_a, patient_a):
    since = NOW - 72 * H

    def event(kind, at, resolved_at=None):
        row = record("events", patient_a, nurse_a, kind=kind, at=at)
        if resolved_at:
            services.event_resolve(event=row, resolved_at=resolved_at, by=nurse_a, now=NOW)
        return row

    active_old = event("bullous_dermatitis", NOW - 200 * H)  # before the course, still active
    event("infection", NOW - 200 * H, resolved_at=NOW - 100 * H)  # before the course and over
    over = event("sustained_vt", NOW - 48 * H, resolved_at=NOW - 47 * H)  # during the course, over (history)
    resolving = event("heme_positive", NOW - 5 * H, resolved_at=NOW + 2 * M)  # still active at NOW
    wrong = event("frank_bleeding", NOW - 1 * H)
    services.observation_enter_in_error(
        observation=wrong, reason="wrong patient", password=PASSWORD, by=nurse_a, now=NOW
    )
    event("seizures", NOW + 3 * M)  # not yet

    snapshot = snap(patient_a, since=since)

    assert snapshot.events == (
        Event("bullous_dermatitis", NOW - 200 * H, f"events:{active_old.pk}"),
        Event("sustained_vt", NOW - 48 * H, f"events:{over.pk}", NOW - 47 * H),
        Event("heme_positive", NOW - 5 * H, f"events:{resolving.pk}", NOW + 2 * M),
    )
    assert [e.kind for e in snapshot.events if e.active_at(NOW)] == ["bullous_dermatitis", "heme_positive"]
    assert ClinicalEvent.objects.count() == 6


# --------------------------------------------------------------------------------------------------- batches


def test_each_patient_gets_only_their_own_data(nurse_a, nurse_b, patient_a, patient_b):
    record("vitals", patient_a, nurse_a, sbp=101)
    record("vitals", patient_b, nurse_b, sbp=131)
    record("labs", patient_a, nurse_a, at=NOW - 10 * H, creatinine_mg_dl="1.20")
    record("labs", patient_b, nurse_b, at=NOW - 10 * H, creatinine_mg_dl="2.20")
    record("labs", patient_b, nurse_b, at=NOW - 3 * H, creatinine_mg_dl="2.60")
    record("events", patient_b, nurse_b, kind="edema")

    got = snapshots_for(
        [
            SnapshotRequest(patient_a.pk, Decimal("70.0"), True, NOW - 20 * H),
            SnapshotRequest(patient_b.pk, Decimal("90.0"), False, NOW - 5 * H),
        ],
        now=NOW,
    )

    a, b = got[patient_a.pk], got[patient_b.pk]
    assert (a.sbp.value, b.sbp.value) == (101, 131)
    assert (a.creatinine_mg_dl.value, b.creatinine_mg_dl.value) == (Decimal("1.20"), Decimal("2.60"))
    assert (a.previous_creatinine, b.previous_creatinine.value) == (None, Decimal("2.20"))
    assert (a.creatinine_history, b.creatinine_history) == ((), ())
    assert (a.baseline_creatinine_mg_dl, b.baseline_creatinine_mg_dl) == (None, Decimal("2.20"))
    assert (a.events, [e.kind for e in b.events]) == ((), ["edema"])
    assert (a.baseline_weight_kg, a.first_slot_of_cycle, b.baseline_weight_kg, b.first_slot_of_cycle) == (
        Decimal("70.0"),
        True,
        Decimal("90.0"),
        False,
    )


def test_the_rule_engine_reads_a_complete_fresh_snapshot_as_give(nurse_a, patient_a):
    from tests.charting import EXPLICIT_NEURO, EXPLICIT_VITALS, NORMAL_EXAM

    record("vitals", patient_a, nurse_a, **EXPLICIT_VITALS)
    record("neuro", patient_a, nurse_a, **EXPLICIT_NEURO)
    record("exam", patient_a, nurse_a, **NORMAL_EXAM)
    for kind in ("weights", "labs"):
        record(kind, patient_a, nurse_a)
    record("fluids", patient_a, nurse_a, at=NOW - 10 * M)
    record("fluids", patient_a, nurse_a, at=NOW - 8 * H - 10 * M)

    snapshot = snap(patient_a, baseline_weight_kg=Decimal("80.0"), since=NOW - 24 * H)
    result = engine.evaluate(snapshot, rule_set=CONSENSUS_2014, now=NOW)

    assert result.decision == "give", result.to_dict()
    assert {s.split(":")[0] for s in result.used} == {"vitals", "neuro", "exam", "weights", "labs", "fluids"}


def make_ward_with(n: int, ward, user):
    """n patients, each with two of every observation (one older, one newer) and two events."""
    patients = Patient.objects.bulk_create(
        Patient(mrn=f"Q-{i:04}", name=f"Patient {i}", birth_date=date(1970, 1, 1), ward=ward) for i in range(n)
    )
    common = {"recorded_by": user, "created_at": NOW}
    rows = {model: [] for model in (VitalSigns, NeuroAssessment, WeightMeasurement, FluidBalance, LabResult)}
    events = []
    for p in patients:
        for hours in (5, 1):
            at = NOW - hours * H
            base = {"patient": p, "recorded_at": at, **common}
            rows[VitalSigns].append(
                VitalSigns(**base, sbp=120, dbp=70, heart_rate=80, resp_rate=16, spo2=97, temp_c=37, rhythm="sinus")
            )
            rows[NeuroAssessment].append(NeuroAssessment(**base, rass=0, confusion="none"))
            rows[WeightMeasurement].append(WeightMeasurement(**base, weight_kg=80))
            rows[FluidBalance].append(FluidBalance(**base, period_start=at - 4 * H, period_end=at, urine_ml=500))
            rows[LabResult].append(LabResult(**base, creatinine_mg_dl=Decimal("1.1"), platelets_k_ul=200))
            events.append(ClinicalEvent(**base, kind="edema"))
    for model, objs in rows.items():
        model.objects.bulk_create(objs)
    ClinicalEvent.objects.bulk_create(events)
    return patients


@pytest.mark.parametrize("n", [2, 20])
def test_snapshots_for_costs_seven_queries_whatever_the_number_of_patients(
    n, ward_a, nurse_a, django_assert_num_queries
):
    patients = make_ward_with(n, ward_a, nurse_a)
    requests = [SnapshotRequest(p.pk, Decimal(80), False, NOW - (i % 3 + 24) * H) for i, p in enumerate(patients)]

    with django_assert_num_queries(7):
        got = snapshots_for(requests, now=NOW)

    assert len(got) == n
    assert all(s.sbp.at == NOW - H and len(s.urine_periods) == 2 and len(s.events) == 2 for s in got.values())
    assert all(s.previous_creatinine.at == NOW - 5 * H for s in got.values())


@pytest.mark.parametrize("n", [2, 20])
def test_latest_vitals_for_is_one_query(n, ward_a, nurse_a, django_assert_num_queries):
    patients = make_ward_with(n, ward_a, nurse_a)

    with django_assert_num_queries(1):
        latest = selectors.latest_vitals_for([p.pk for p in patients], now=NOW)

    assert sorted(latest) == sorted(p.pk for p in patients)
    assert all(v.recorded_at == NOW - H for v in latest.values())
    assert selectors.latest_vitals_for([], now=NOW) == {}


@pytest.mark.parametrize("n", [2, 20])
def test_observations_list_is_one_query(n, nurse_a, patient_a, django_assert_num_queries):
    VitalSigns.objects.bulk_create(
        VitalSigns(
            patient=patient_a,
            recorded_at=NOW - i * M,
            recorded_by=nurse_a,
            created_at=NOW,
            sbp=120,
            dbp=70,
            heart_rate=80,
            resp_rate=16,
            spo2=97,
            temp_c=37,
        )
        for i in range(n)
    )

    with django_assert_num_queries(1):
        rows = selectors.observations(patient_a, "vitals")
        names = [row.recorded_by.username for row in rows]

    assert len(rows) == n and names == ["nurse_a"] * n
    assert [r.recorded_at for r in rows] == sorted((r.recorded_at for r in rows), reverse=True)


@pytest.mark.parametrize("n", [2, 20])
def test_the_get_endpoint_query_count_is_flat(n, api, nurse_a, patient_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api.as_user(nurse_a)
    client.get(f"/api/v1/patients/{patient_a.pk}/events/")  # warm the caches (token, roles)
    counts = []
    for _ in range(2):
        ClinicalEvent.objects.bulk_create(
            ClinicalEvent(patient=patient_a, recorded_at=NOW - i * M, recorded_by=nurse_a, created_at=NOW, kind="edema")
            for i in range(n)
        )
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/api/v1/patients/{patient_a.pk}/events/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_snapshot_fills_every_reading_field_the_engine_declares():
    declared = {f.name for f in fields(PatientSnapshot) if f.type == "Reading | None"}
    filled = {
        *selectors.VITAL_FIELDS,
        *selectors.NEURO_FIELDS,
        *EXAM_FIELDS,
        "phenylephrine_max_interval",
        "weight_kg",
        *selectors.SNAPSHOT_LAB_FIELDS,
        "previous_creatinine",
        "previous_rhythm",
    }
    assert declared == filled
