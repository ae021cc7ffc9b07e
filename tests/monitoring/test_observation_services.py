"""Observation services: accepted edges, normalisation, the audit row and the task published after commit."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from il2ward.errors import Conflict, Invalid
from il2ward.models import AuditEvent
from monitoring import services
from monitoring.models import OBSERVATION_MODELS, ClinicalEvent, FluidBalance, LabResult, VitalSigns
from tests.conftest import NOW, PASSWORD
from tests.monitoring.conftest import KINDS, record
from tests.monitoring.test_observation_api import RANGES

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(fast_password_hashing):
    pass


def _edge_cases():
    for (kind, field), (low, high, _places) in RANGES.items():
        for value in (Decimal(low), Decimal(high)):
            yield pytest.param(kind, field, value, id=f"{kind}.{field}={value}")


@pytest.mark.parametrize(("kind", "field", "value"), list(_edge_cases()))
def test_the_edges_of_each_range_are_accepted(kind, field, value, nurse_a, patient_a):
    companions = {}
    if (field, value) == ("sbp", 40):
        companions["dbp"] = 20  # diastolic must stay below systolic
    if (field, value) == ("dbp", 200):
        companions["sbp"] = 300
    if field == "other_pressor_mcg_kg_min":
        companions["other_pressor"] = "dopamine"  # a rate needs its drug
    if (field, value) == ("urine_ml", 10_000):
        companions.update(confirm=True, confirm_reason="possible, if unlikely, in 8 h")

    row = record(kind, patient_a, nurse_a, **{field: value, **companions})

    row.refresh_from_db()
    assert getattr(row, field) == value


def test_numbers_are_normalised_exactly(nurse_a, patient_a):
    row = record("vitals", patient_a, nurse_a, temp_c=37.2, o2_lpm="2", heart_rate="88.0")

    assert (row.temp_c, row.o2_lpm, row.heart_rate) == (Decimal("37.2"), Decimal("2.0"), 88)
    labs = record("labs", patient_a, nurse_a, ast_u_l="45.0", creatinine_mg_dl=Decimal("1.5"))
    assert (labs.ast_u_l, labs.creatinine_mg_dl) == (45, Decimal("1.50"))


def test_every_bad_field_is_named_at_once(nurse_a, patient_a):
    with pytest.raises(Invalid) as caught:
        services.vitals_record(
            patient=patient_a,
            recorded_at=NOW + timedelta(hours=1),
            sbp=20,
            dbp=70,
            heart_rate=300,
            resp_rate=16,
            spo2=None,
            temp_c=Decimal("37.0"),
            by=nurse_a,
            now=NOW,
        )

    assert set(caught.value.errors) == {"sbp", "heart_rate", "spo2", "recorded_at"}
    assert VitalSigns.objects.count() == 0


def test_naive_recorded_at_is_refused_before_the_orm_sees_it(nurse_a, patient_a):
    with pytest.raises(Invalid) as caught:
        services.weight_record(
            patient=patient_a, recorded_at=datetime(2027, 3, 10, 11, 0), weight_kg=Decimal(80), by=nurse_a, now=NOW
        )
    assert list(caught.value.errors) == ["recorded_at"]


def test_fluids_recorded_at_defaults_to_period_end_and_may_not_precede_it(nurse_a, patient_a):
    row = record("fluids", patient_a, nurse_a, at=NOW - timedelta(hours=1))
    assert row.recorded_at == row.period_end == NOW - timedelta(hours=1)

    with pytest.raises(Invalid) as caught:
        record("fluids", patient_a, nurse_a, at=NOW - timedelta(hours=1), recorded_at=NOW - timedelta(hours=2))
    assert list(caught.value.errors) == ["recorded_at"]
    assert FluidBalance.objects.count() == 1


def test_overlapping_fluid_periods_are_accepted(nurse_a, patient_a):
    # The rule engine reads an overlap as a charting error and takes the safer values; nothing is refused.
    record("fluids", patient_a, nurse_a, at=NOW - timedelta(hours=1))
    record("fluids", patient_a, nurse_a, at=NOW - timedelta(hours=2))
    assert FluidBalance.objects.count() == 2


def test_map_is_rounded_half_up():
    assert VitalSigns(sbp=120, dbp=70).map == 87  # 86.67
    assert VitalSigns(sbp=121, dbp=70).map == 87  # 87.0
    assert VitalSigns(sbp=90, dbp=60).map == 70


# --------------------------------------------------------------------------------------------------- side effects


@pytest.mark.parametrize("kind", KINDS)
def test_the_patient_is_re_evaluated_after_commit(
    kind, nurse_a, patient_a, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(kind, patient_a, nurse_a)
        assert published == []  # nothing leaves before the commit

    assert len(callbacks) == 1
    callbacks[0]()
    assert published == [("scheduling.evaluate_patient", patient_a.pk)]


def test_a_refused_write_publishes_nothing_and_audits_nothing(
    nurse_a, patient_a, published, django_capture_on_commit_callbacks
):
    audits = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Invalid):
        record("vitals", patient_a, nurse_a, sbp=400)

    assert callbacks == [] and published == []
    assert AuditEvent.objects.count() == audits


def test_corrections_re_evaluate_the_patient(nurse_a, patient_a, published, django_capture_on_commit_callbacks):
    vitals = record("vitals", patient_a, nurse_a)
    event = record("events", patient_a, nurse_a, at=NOW - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.observation_enter_in_error(observation=vitals, reason="typo", password=PASSWORD, by=nurse_a, now=NOW)
        services.event_resolve(event=event, by=nurse_a, now=NOW)

    assert len(callbacks) == 2
    assert published == [("scheduling.evaluate_patient", patient_a.pk)] * 2


@pytest.mark.parametrize("kind", KINDS)
def test_audit_event_names_the_row_and_its_values(kind, nurse_a, patient_a):
    row = record(kind, patient_a, nurse_a)

    event = AuditEvent.objects.order_by("-pk").first()
    assert (event.action, event.object_type, event.object_id) == (f"{kind}.record", row._meta.label_lower, str(row.pk))
    assert (event.actor, event.at) == (nurse_a, NOW)
    assert event.new["patient"] == patient_a.pk
    assert datetime.fromisoformat(event.new["recorded_at"]) == row.recorded_at


def test_labs_audit_holds_the_panel(nurse_a, patient_a):
    record("labs", patient_a, nurse_a, creatinine_mg_dl=Decimal("2.45"))

    new = AuditEvent.objects.get(action="labs.record").new
    assert (new["creatinine_mg_dl"], new["ast_u_l"], new["troponin_ng_l"]) == ("2.45", 30, None)


def test_the_audit_chain_stays_intact(nurse_a, patient_a):
    from il2ward.audit import verify_chain

    for kind in KINDS:
        row = record(kind, patient_a, nurse_a)
    services.observation_enter_in_error(observation=row, reason="typo", password=PASSWORD, by=nurse_a, now=NOW)
    assert verify_chain() is None


# --------------------------------------------------------------------------------------------------- state changes


def test_entering_in_error_twice_is_a_conflict(nurse_a, patient_a):
    row = record("labs", patient_a, nurse_a)
    services.observation_enter_in_error(observation=row, reason="haemolysed", password=PASSWORD, by=nurse_a, now=NOW)

    with pytest.raises(Conflict) as caught:
        services.observation_enter_in_error(observation=row, reason="again", password=PASSWORD, by=nurse_a, now=NOW)
    assert caught.value.code == "already_entered_in_error"
    assert LabResult.objects.get().entered_in_error_reason == "haemolysed"


def test_a_wrong_password_changes_nothing(nurse_a, patient_a):
    row = record("vitals", patient_a, nurse_a)

    with pytest.raises(Invalid) as caught:
        services.observation_enter_in_error(observation=row, reason="typo", password="guess", by=nurse_a, now=NOW)

    assert list(caught.value.errors) == ["password"]
    row.refresh_from_db()
    assert row.entered_in_error_at is None


def test_resolving_an_event(nurse_a, patient_a):
    event = record("events", patient_a, nurse_a, at=NOW - timedelta(hours=5))
    resolved = services.event_resolve(
        event=event, resolved_at=NOW - timedelta(hours=1), note="cultures negative", by=nurse_a, now=NOW
    )

    assert (resolved.resolved_at, resolved.resolved_by, resolved.resolution_note) == (
        NOW - timedelta(hours=1),
        nurse_a,
        "cultures negative",
    )
    audit = AuditEvent.objects.get(action="events.resolve")
    assert audit.old == {"resolved_at": None}
    assert audit.new["resolved_at"] == (NOW - timedelta(hours=1)).isoformat()

    with pytest.raises(Conflict) as caught:
        services.event_resolve(event=event, by=nurse_a, now=NOW)
    assert caught.value.code == "already_resolved"


def test_an_event_entered_in_error_cannot_be_resolved(nurse_a, patient_a):
    event = record("events", patient_a, nurse_a)
    services.observation_enter_in_error(observation=event, reason="wrong bed", password=PASSWORD, by=nurse_a, now=NOW)

    with pytest.raises(Conflict) as caught:
        services.event_resolve(event=event, by=nurse_a, now=NOW)
    assert caught.value.code == "entered_in_error"
    assert ClinicalEvent.objects.get().resolved_at is None


@pytest.mark.parametrize("kind", ["volume_overload", "new_irregular_rhythm", "gi_bleed_surgery", "edema"])
def test_every_engine_event_kind_can_be_recorded(kind, nurse_a, patient_a):
    assert record("events", patient_a, nurse_a, kind=kind).kind == kind


def test_models_cover_every_kind():
    assert set(OBSERVATION_MODELS) == set(KINDS)
