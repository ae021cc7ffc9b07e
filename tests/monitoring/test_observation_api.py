"""The observation endpoints (API.md: Observations): happy paths, impossible values, times, access and corrections."""

from datetime import timedelta
from decimal import Decimal

import pytest

from il2ward.models import AuditEvent
from monitoring.models import OBSERVATION_MODELS, ClinicalEvent, VitalSigns
from tests.conftest import NOW, PASSWORD
from tests.monitoring.conftest import KINDS, payload, record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(fast_password_hashing):
    pass


# The ranges the contract promises (API.md and the issue), written out here so a change to the services' tables
# fails a test: (kind, field) -> (lowest possible, highest possible, decimal places accepted).
RANGES = {
    ("vitals", "sbp"): (40, 300, 0),
    ("vitals", "dbp"): (20, 200, 0),
    ("vitals", "heart_rate"): (20, 250, 0),
    ("vitals", "resp_rate"): (4, 80, 0),
    ("vitals", "spo2"): (50, 100, 0),
    ("vitals", "temp_c"): (30, 45, 1),
    ("vitals", "o2_lpm"): (0, 15, 1),
    ("vitals", "fio2_pct"): (21, 100, 0),
    ("vitals", "phenylephrine_mcg_kg_min"): (0, 10, 2),
    ("vitals", "other_pressor_mcg_kg_min"): (0, 50, 2),
    ("neuro", "rass"): (-5, 4, 0),
    ("weights", "weight_kg"): (20, 350, 1),
    ("fluids", "urine_ml"): (0, 10_000, 0),
    ("fluids", "intake_ml"): (0, 20_000, 0),
    ("fluids", "diarrhea_ml"): (0, 10_000, 0),
    ("labs", "creatinine_mg_dl"): (Decimal("0.1"), 20, 2),
    ("labs", "platelets_k_ul"): (0, 2000, 1),
    ("labs", "bilirubin_mg_dl"): (0, 50, 2),
    ("labs", "bicarbonate_mmol_l"): (5, 50, 1),
    ("labs", "ast_u_l"): (0, 20_000, 0),
    ("labs", "alt_u_l"): (0, 20_000, 0),
    ("labs", "albumin_g_dl"): (Decimal("0.5"), 8, 1),
    ("labs", "potassium_mmol_l"): (Decimal("1.5"), 10, 2),
    ("labs", "magnesium_mg_dl"): (Decimal("0.3"), 10, 2),
    ("labs", "phosphate_mg_dl"): (Decimal("0.3"), 20, 2),
    ("labs", "sodium_mmol_l"): (90, 200, 1),
    ("labs", "hemoglobin_g_dl"): (1, 25, 1),
    ("labs", "wbc_k_ul"): (0, 500, 2),
    ("labs", "troponin_ng_l"): (0, 100_000, 1),
    ("labs", "ck_mb_ng_ml"): (0, 5_000, 1),
}


def json_number(value: Decimal | int, places: int):
    return int(value) if places == 0 else str(value)


def _outside_cases():
    for (kind, field), (low, high, places) in RANGES.items():
        step = Decimal(1).scaleb(-places)
        yield pytest.param(kind, field, json_number(Decimal(low) - step, places), id=f"{kind}.{field}<{low}")
        yield pytest.param(kind, field, json_number(Decimal(high) + step, places), id=f"{kind}.{field}>{high}")


def url(patient, kind):
    return f"/api/v1/patients/{patient.pk}/{kind}/"


def test_the_services_use_the_promised_ranges():
    from monitoring import services

    tables = {
        "vitals": services.VITALS_BOUNDS,
        "neuro": services.NEURO_BOUNDS,
        "weights": services.WEIGHT_BOUNDS,
        "fluids": services.FLUID_BOUNDS,
        "labs": services.LAB_BOUNDS,
    }
    actual = {(kind, f): (b.low, b.high, b.places) for kind, table in tables.items() for f, b in table.items()}
    assert actual == {key: (Decimal(low), Decimal(high), places) for key, (low, high, places) in RANGES.items()}


# --------------------------------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("kind", KINDS)
def test_nurse_records_an_observation_and_gets_the_stored_row(kind, api, nurse_a, patient_a, frozen):
    response = api.as_user(nurse_a).post(url(patient_a, kind), payload(kind), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    model = OBSERVATION_MODELS[kind]
    row = model.objects.get()
    assert body["id"] == row.pk
    assert body["patient"] == patient_a.pk
    assert body["recorded_by"] == "nurse_a"
    assert body["recorded_at"] == "2027-03-10T11:50:00Z"
    assert body["recorded_local"] == "2027-03-10T05:50:00-06:00"  # ward A is America/Chicago
    assert body["created_at"] == "2027-03-10T12:00:00Z"
    assert body["entered_in_error_at"] is None
    assert row.recorded_at == NOW - timedelta(minutes=10)
    assert row.recorded_by == nurse_a


def test_vitals_body_and_row(api, nurse_a, patient_a, frozen):
    body = payload("vitals", o2_lpm="2.5", fio2_pct=28, rhythm="af", phenylephrine_mcg_kg_min="0.25")
    response = api.as_user(nurse_a).post(url(patient_a, "vitals"), body, format="json")

    assert response.status_code == 201
    data = response.json()
    assert {k: data[k] for k in ("sbp", "dbp", "map", "heart_rate", "resp_rate", "spo2")} == {
        "sbp": 120,
        "dbp": 70,
        "map": 87,
        "heart_rate": 88,
        "resp_rate": 16,
        "spo2": 97,
    }
    assert (data["temp_c"], data["o2_lpm"], data["fio2_pct"]) == ("37.2", "2.5", 28)
    assert (data["rhythm"], data["phenylephrine_mcg_kg_min"]) == ("af", "0.25")
    row = VitalSigns.objects.get()
    assert (row.temp_c, row.o2_lpm, row.phenylephrine_mcg_kg_min) == (Decimal("37.2"), Decimal("2.5"), Decimal("0.25"))


def test_vitals_without_the_optional_fields_store_nulls(api, nurse_a, patient_a, frozen):
    data = api.as_user(nurse_a).post(url(patient_a, "vitals"), payload("vitals"), format="json").json()

    assert (data["o2_lpm"], data["fio2_pct"], data["rhythm"], data["phenylephrine_mcg_kg_min"]) == (None,) * 4
    row = VitalSigns.objects.get()
    assert (row.o2_lpm, row.fio2_pct, row.rhythm, row.phenylephrine_mcg_kg_min) == (None, None, "", None)


def test_fluids_body_uses_the_period(api, nurse_a, patient_a, frozen):
    data = api.as_user(nurse_a).post(url(patient_a, "fluids"), payload("fluids"), format="json").json()

    assert data["period_start"] == "2027-03-10T03:50:00Z"
    assert data["period_end"] == data["recorded_at"] == "2027-03-10T11:50:00Z"
    assert data["period_end_local"] == "2027-03-10T05:50:00-06:00"
    assert (data["urine_ml"], data["intake_ml"], data["diarrhea_ml"]) == (900, 1500, 0)


def test_labs_store_the_given_panel_and_leave_the_rest_null(api, nurse_a, patient_a, frozen):
    body = payload("labs", creatinine_mg_dl="2.45", troponin_ng_l="14.5")
    data = api.as_user(nurse_a).post(url(patient_a, "labs"), body, format="json").json()

    assert (data["creatinine_mg_dl"], data["troponin_ng_l"], data["sodium_mmol_l"]) == ("2.45", "14.5", None)
    assert data["ast_u_l"] == 30


def test_event_body(api, nurse_a, patient_a, frozen):
    body = payload("events", kind="sustained_vt", note="12 beats on telemetry")
    data = api.as_user(nurse_a).post(url(patient_a, "events"), body, format="json").json()

    assert (data["kind"], data["note"], data["resolved_at"]) == ("sustained_vt", "12 beats on telemetry", None)


@pytest.mark.parametrize("kind", KINDS)
def test_get_lists_newest_first(kind, api, nurse_a, patient_a, frozen):
    client = api.as_user(nurse_a)
    for minutes in (50, 10, 30):
        assert (
            client.post(
                url(patient_a, kind), payload(kind, NOW - timedelta(minutes=minutes)), format="json"
            ).status_code
            == 201
        )

    response = client.get(url(patient_a, kind))

    assert response.status_code == 200
    assert [row["recorded_at"][11:16] for row in response.json()] == ["11:50", "11:30", "11:10"]


def test_get_limit(api, nurse_a, patient_a, frozen):
    for minutes in (30, 20, 10):
        record("weights", patient_a, nurse_a, at=NOW - timedelta(minutes=minutes))
    client = api.as_user(nurse_a)

    assert [r["recorded_at"][11:16] for r in client.get(url(patient_a, "weights") + "?limit=2").json()] == [
        "11:50",
        "11:40",
    ]
    bad = client.get(url(patient_a, "weights") + "?limit=0")
    assert bad.status_code == 400 and "limit" in bad.json()["errors"]


@pytest.mark.parametrize("persona", ["charge_nurse", "oncologist"])
def test_charge_nurse_and_oncologist_may_record(persona, request, api, patient_a, frozen):
    user = request.getfixturevalue(persona)
    assert api.as_user(user).post(url(patient_a, "vitals"), payload("vitals"), format="json").status_code == 201


# --------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kind", "field", "value"), list(_outside_cases()))
def test_impossible_value_is_400_naming_the_field_and_stores_nothing(
    kind, field, value, api, nurse_a, patient_a, frozen
):
    model = OBSERVATION_MODELS[kind]
    audits = AuditEvent.objects.count()

    companions = {"other_pressor": "dopamine"} if field == "other_pressor_mcg_kg_min" else {}
    response = api.as_user(nurse_a).post(
        url(patient_a, kind), payload(kind, **{field: value, **companions}), format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert model.objects.count() == 0
    assert AuditEvent.objects.count() == audits


@pytest.mark.parametrize(("kind", "field", "value"), [("vitals", "sbp", 120), ("vitals", "sbp", 70)])
def test_diastolic_at_or_above_systolic_is_400_on_dbp(kind, field, value, api, nurse_a, patient_a, frozen):
    response = api.as_user(nurse_a).post(url(patient_a, kind), payload(kind, sbp=value, dbp=70), format="json")
    if value == 70:
        assert response.status_code == 400 and list(response.json()["errors"]) == ["dbp"]
        assert VitalSigns.objects.count() == 0
    else:
        assert response.status_code == 201


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("vitals", {"temp_c": "37.25"}, "temp_c"),  # one decimal place
        ("vitals", {"heart_rate": "88.5"}, "heart_rate"),
        ("vitals", {"sbp": None}, "sbp"),  # required
        ("vitals", {"rhythm": "wobbly"}, "rhythm"),
        ("vitals", {"temp_c": "hot"}, "temp_c"),
        ("vitals", {"temp_c": "1e30"}, "temp_c"),
        ("vitals", {"temp_c": "Infinity"}, "temp_c"),
        ("neuro", {"confusion": "some"}, "confusion"),
        ("labs", {"ast_u_l": "30.5"}, "ast_u_l"),
        ("labs", {"creatinine_mg_dl": "NaN"}, "creatinine_mg_dl"),
        ("events", {"kind": "hiccups"}, "kind"),
        ("weights", {"weight_kg": True}, "weight_kg"),
    ],
)
def test_malformed_value_is_400_naming_the_field(kind, change, field, api, nurse_a, patient_a, frozen):
    response = api.as_user(nurse_a).post(url(patient_a, kind), payload(kind, **change), format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert OBSERVATION_MODELS[kind].objects.count() == 0


def test_labs_need_at_least_one_result(api, nurse_a, patient_a, frozen):
    body = {"recorded_at": "2027-03-10T11:00:00Z", "creatinine_mg_dl": None}
    response = api.as_user(nurse_a).post(url(patient_a, "labs"), body, format="json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


@pytest.mark.parametrize("kind", KINDS)
def test_naive_time_is_400(kind, api, nurse_a, patient_a, frozen):
    field = "period_end" if kind == "fluids" else "recorded_at"
    response = api.as_user(nurse_a).post(
        url(patient_a, kind), payload(kind, **{field: "2027-03-10T11:00:00"}), format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert OBSERVATION_MODELS[kind].objects.count() == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("minutes", "status"), [(4, 201), (5, 201), (6, 400)])
def test_recorded_at_more_than_5_minutes_ahead_is_400(kind, minutes, status, api, nurse_a, patient_a, frozen):
    field = "period_end" if kind == "fluids" else "recorded_at"
    response = api.as_user(nurse_a).post(
        url(patient_a, kind), payload(kind, NOW + timedelta(minutes=minutes)), format="json"
    )

    assert response.status_code == status
    if status == 400:
        assert list(response.json()["errors"]) == [field]
    assert OBSERVATION_MODELS[kind].objects.count() == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2027-03-10T03:00:00Z", "2027-03-10T03:00:00Z", 400),  # empty period
        ("2027-03-10T04:00:00Z", "2027-03-10T03:00:00Z", 400),  # backwards
        ("2027-03-09T10:59:00Z", "2027-03-10T11:00:00Z", 400),  # 24 h 1 min
        ("2027-03-09T11:00:00Z", "2027-03-10T11:00:00Z", 201),  # 24 h
        ("2027-03-10T03:00:00-06:00", "2027-03-10T11:00:00Z", 201),  # offsets: 09:00Z → 11:00Z
    ],
)
def test_fluid_period_must_run_forward_and_last_at_most_24_h(start, end, status, api, nurse_a, patient_a, frozen):
    body = payload("fluids", period_start=start, period_end=end)
    response = api.as_user(nurse_a).post(url(patient_a, "fluids"), body, format="json")

    assert response.status_code == status
    if status == 400:
        assert list(response.json()["errors"]) == ["period_end"]


# --------------------------------------------------------------------------------------------------- access


@pytest.mark.parametrize("kind", KINDS)
def test_nurse_of_another_ward_gets_404(kind, api, nurse_b, patient_a, frozen):
    client = api.as_user(nurse_b)

    assert client.post(url(patient_a, kind), payload(kind), format="json").status_code == 404
    assert client.get(url(patient_a, kind)).status_code == 404
    assert OBSERVATION_MODELS[kind].objects.count() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_pharmacist_may_read_but_not_record(kind, api, pharmacist, nurse_a, patient_a, frozen):
    record(kind, patient_a, nurse_a)
    client = api.as_user(pharmacist)

    assert client.post(url(patient_a, kind), payload(kind), format="json").status_code == 403
    listed = client.get(url(patient_a, kind))
    assert listed.status_code == 200 and len(listed.json()) == 1
    assert OBSERVATION_MODELS[kind].objects.count() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_anonymous_gets_401(kind, api, patient_a):
    assert api.post(url(patient_a, kind), payload(kind), format="json").status_code == 401
    assert api.get(url(patient_a, kind)).status_code == 401


def test_unknown_patient_is_404(api, nurse_a, frozen):
    assert (
        api.as_user(nurse_a).post("/api/v1/patients/999999/vitals/", payload("vitals"), format="json").status_code
        == 404
    )


# --------------------------------------------------------------------------------------------------- audit


@pytest.mark.parametrize("kind", KINDS)
def test_each_observation_writes_an_audit_event_with_its_values(kind, api, nurse_a, patient_a, frozen):
    response = api.as_user(nurse_a).post(url(patient_a, kind), payload(kind), format="json")
    row = OBSERVATION_MODELS[kind].objects.get()

    event = AuditEvent.objects.filter(object_type=row._meta.label_lower, object_id=str(row.pk)).get()
    assert event.action == f"{kind}.record"
    assert event.actor == nurse_a
    assert event.at == NOW
    assert event.new["patient"] == patient_a.pk
    body = response.json()
    assert event.new["recorded_at"] == "2027-03-10T11:50:00+00:00"
    expected = {
        "vitals": "sbp",
        "neuro": "rass",
        "exam": "rales",
        "weights": "weight_kg",
        "fluids": "urine_ml",
        "labs": "ast_u_l",
        "events": "kind",
    }[kind]
    assert str(event.new[expected]) == str(body[expected])


def test_vitals_audit_holds_every_value(api, nurse_a, patient_a, frozen):
    api.as_user(nurse_a).post(url(patient_a, "vitals"), payload("vitals", rhythm="sinus"), format="json")

    event = AuditEvent.objects.get(action="vitals.record")
    assert event.new == {
        "patient": patient_a.pk,
        "recorded_at": "2027-03-10T11:50:00+00:00",
        "sbp": 120,
        "dbp": 70,
        "heart_rate": 88,
        "resp_rate": 16,
        "spo2": 97,
        "temp_c": "37.2",
        "o2_lpm": None,
        "fio2_pct": None,
        "phenylephrine_mcg_kg_min": None,
        "other_pressor_mcg_kg_min": None,
        "rhythm": "sinus",
        "other_pressor": "",
    }


# --------------------------------------------------------------------------------------------------- corrections


def error_url(kind, row):
    return f"/api/v1/observations/{kind}/{row.pk}/entered-in-error/"


@pytest.mark.parametrize("kind", KINDS)
def test_entered_in_error_keeps_the_row_marked(kind, api, nurse_a, patient_a, frozen):
    row = record(kind, patient_a, nurse_a)
    client = api.as_user(nurse_a)

    response = client.post(error_url(kind, row), {"reason": "wrong patient", "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["entered_in_error_at"] == "2027-03-10T12:00:00Z"
    assert response.json()["entered_in_error_by"] == "nurse_a"
    row.refresh_from_db()
    assert (row.entered_in_error_at, row.entered_in_error_by, row.entered_in_error_reason) == (
        NOW,
        nurse_a,
        "wrong patient",
    )
    assert OBSERVATION_MODELS[kind].objects.count() == 1
    event = AuditEvent.objects.get(action=f"{kind}.entered_in_error")
    assert (event.object_id, event.reason, event.actor) == (str(row.pk), "wrong patient", nurse_a)
    listed = client.get(url(patient_a, kind)).json()
    assert [(r["id"], r["entered_in_error_reason"]) for r in listed] == [(row.pk, "wrong patient")]

    again = client.post(error_url(kind, row), {"reason": "again", "password": PASSWORD}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_entered_in_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "typo", "password": "not-my-password"}, "password"),
        ({"password": PASSWORD}, "reason"),
        ({"reason": "   ", "password": PASSWORD}, "reason"),
    ],
)
def test_entered_in_error_needs_a_reason_and_the_password(body, field, api, nurse_a, patient_a, frozen):
    row = record("vitals", patient_a, nurse_a)

    response = api.as_user(nurse_a).post(error_url("vitals", row), body, format="json")

    assert response.status_code == 400 and field in response.json()["errors"]
    row.refresh_from_db()
    assert row.entered_in_error_at is None
    assert not AuditEvent.objects.filter(action="vitals.entered_in_error").exists()


def test_entered_in_error_access(api, nurse_a, nurse_b, pharmacist, oncologist, patient_a, frozen):
    row = record("vitals", patient_a, nurse_a)
    body = {"reason": "typo", "password": PASSWORD}

    assert api.as_user(nurse_b).post(error_url("vitals", row), body, format="json").status_code == 404
    assert api.as_user(pharmacist).post(error_url("vitals", row), body, format="json").status_code == 403
    assert api.as_user(oncologist).post(error_url("neuro", row), body, format="json").status_code == 404
    assert api.as_user(oncologist).post(error_url("bogus", row), body, format="json").status_code == 404
    assert api.as_user(oncologist).post(error_url("vitals", row), body, format="json").status_code == 200


def test_event_resolve(api, nurse_a, nurse_b, patient_a, frozen):
    event = record("events", patient_a, nurse_a, at=NOW - timedelta(hours=3))
    resolve = f"/api/v1/patients/{patient_a.pk}/events/{event.pk}/resolve/"

    assert api.as_user(nurse_b).post(resolve, {}, format="json").status_code == 404
    early = api.as_user(nurse_a).post(resolve, {"resolved_at": "2027-03-10T08:00:00Z"}, format="json")
    assert early.status_code == 400 and list(early.json()["errors"]) == ["resolved_at"]

    response = api.as_user(nurse_a).post(resolve, {"note": "afebrile 48 h"}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["resolved_at"], response.json()["resolution_note"]) == (
        "2027-03-10T12:00:00Z",
        "afebrile 48 h",
    )
    event.refresh_from_db()
    assert (event.resolved_at, event.resolved_by) == (NOW, nurse_a)
    assert AuditEvent.objects.filter(action="events.resolve", object_id=str(event.pk)).exists()
    again = api.as_user(nurse_a).post(resolve, {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_resolved"


def test_event_of_another_patient_cannot_be_resolved_through_this_one(
    api, oncologist, nurse_a, patient_a, patient_b, frozen
):
    event = record("events", patient_b, oncologist)
    response = api.as_user(oncologist).post(
        f"/api/v1/patients/{patient_a.pk}/events/{event.pk}/resolve/", {}, format="json"
    )

    assert response.status_code == 404
    assert ClinicalEvent.objects.get().resolved_at is None


def test_openapi_schema_builds(api, nurse_a):
    response = api.as_user(nurse_a).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/patients/{id}/vitals/" in paths
    assert "/api/v1/observations/{kind}/{id}/entered-in-error/" in paths
