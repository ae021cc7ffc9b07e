"""Inputs the pre-dose rules must not guess (INV-EXPLICIT) and values that look like typing slips (INV-PLAUSIBLE)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from il2ward.errors import Invalid
from il2ward.models import AuditEvent
from monitoring import services
from monitoring.models import BedsideExam, FluidBalance, NeuroAssessment, VitalSigns, WeightMeasurement
from tests.charting import NORMAL_EXAM
from tests.conftest import NOW
from tests.monitoring.conftest import payload, record

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


# --------------------------------------------------------------------------------------------------- explicit


def test_a_vitals_set_without_rhythm_o2_or_pressors_is_stored_as_not_charted(nurse_a, patient_a):
    row = record("vitals", patient_a, nurse_a)
    row.refresh_from_db()
    assert (row.rhythm, row.o2_lpm, row.fio2_pct) == ("", None, None)
    assert (row.phenylephrine_mcg_kg_min, row.other_pressor, row.other_pressor_mcg_kg_min) == (None, "", None)


def test_other_pressor_none_is_stored_as_charted_none(nurse_a, patient_a):
    row = record("vitals", patient_a, nurse_a, other_pressor="none", phenylephrine_mcg_kg_min="0", rhythm="bigeminy")
    row.refresh_from_db()
    assert (row.other_pressor, row.phenylephrine_mcg_kg_min, row.rhythm) == ("none", Decimal("0.00"), "bigeminy")


def test_other_pressor_needs_its_rate_and_none_takes_none(nurse_a, patient_a):
    with pytest.raises(Invalid) as no_rate:
        record("vitals", patient_a, nurse_a, other_pressor="norepinephrine")
    with pytest.raises(Invalid) as rate_with_none:
        record("vitals", patient_a, nurse_a, other_pressor="none", other_pressor_mcg_kg_min="0.05")
    with pytest.raises(Invalid) as rate_without_drug:
        record("vitals", patient_a, nurse_a, other_pressor_mcg_kg_min="0.05")
    assert "other_pressor_mcg_kg_min" in no_rate.value.errors
    assert "other_pressor_mcg_kg_min" in rate_with_none.value.errors
    assert list(rate_without_drug.value.errors) == ["other_pressor"]
    assert VitalSigns.objects.count() == 0
    row = record("vitals", patient_a, nurse_a, other_pressor="norepinephrine", other_pressor_mcg_kg_min="0.05")
    assert (row.other_pressor, row.other_pressor_mcg_kg_min) == ("norepinephrine", Decimal("0.05"))


def test_neuro_answers_left_out_are_null_and_given_ones_kept(nurse_a, patient_a):
    blank = record("neuro", patient_a, nurse_a)
    answered = record(
        "neuro",
        patient_a,
        nurse_a,
        neuro_check_failed=False,
        hallucinations=True,
        vivid_dreams_or_anxiety=False,
        persistent_crying=True,
    )
    blank.refresh_from_db()
    answered.refresh_from_db()
    flags = ("neuro_check_failed", "hallucinations", "vivid_dreams_or_anxiety", "persistent_crying")
    assert [getattr(blank, f) for f in flags] == [None] * 4
    assert [getattr(answered, f) for f in flags] == [False, True, False, True]


def test_neuro_over_the_api_stores_an_omitted_answer_as_null(api, nurse_a, patient_a, frozen):
    response = api.as_user(nurse_a).post(
        f"/api/v1/patients/{patient_a.pk}/neuro/", payload("neuro", hallucinations=False), format="json"
    )
    assert response.status_code == 201
    assert response.json()["hallucinations"] is False and response.json()["neuro_check_failed"] is None
    assert NeuroAssessment.objects.get().neuro_check_failed is None


@pytest.mark.parametrize("missing", sorted(NORMAL_EXAM))
def test_an_exam_with_any_finding_left_out_is_refused_over_the_api(missing, api, nurse_a, patient_a, frozen):
    body = payload("exam", **{missing: None})
    response = api.as_user(nurse_a).post(f"/api/v1/patients/{patient_a.pk}/exam/", body, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == [missing]
    assert BedsideExam.objects.count() == 0


def test_a_complete_exam_is_stored_audited_and_listed(api, nurse_a, patient_a, frozen):
    body = payload("exam", rales="lower_third", resting_dyspnea=True)
    response = api.as_user(nurse_a).post(f"/api/v1/patients/{patient_a.pk}/exam/", body, format="json")
    assert response.status_code == 201
    row = BedsideExam.objects.get()
    assert (row.rales, row.resting_dyspnea, row.intubated) == ("lower_third", True, False)
    assert AuditEvent.objects.get(action="exam.record").new["rales"] == "lower_third"
    listed = api.as_user(nurse_a).get(f"/api/v1/patients/{patient_a.pk}/exam/").json()
    assert [item["rales"] for item in listed] == ["lower_third"]


def test_the_exam_service_refuses_a_missing_finding(nurse_a, patient_a):
    with pytest.raises(Invalid):
        services.exam_record(
            patient=patient_a, recorded_at=NOW, by=nurse_a, now=NOW, **{**NORMAL_EXAM, "moist_desquamation": None}
        )
    assert BedsideExam.objects.count() == 0


# --------------------------------------------------------------------------------------------------- plausible


def weight(patient, nurse, kg, *, at, **extra):
    return services.weight_record(patient=patient, recorded_at=at, weight_kg=Decimal(kg), by=nurse, now=NOW, **extra)


def test_a_weight_more_than_10_percent_from_the_last_48_h_is_refused_unless_confirmed(nurse_a, patient_a):
    weight(patient_a, nurse_a, "80.0", at=NOW - 24 * H)
    with pytest.raises(Invalid) as caught:
        weight(patient_a, nurse_a, "88.1", at=NOW)
    assert "weight_kg" in caught.value.errors
    with pytest.raises(Invalid) as no_reason:
        weight(patient_a, nurse_a, "88.1", at=NOW, confirm=True)
    assert "confirm_reason" in no_reason.value.errors
    assert WeightMeasurement.objects.count() == 1

    confirmed = weight(patient_a, nurse_a, "88.1", at=NOW, confirm=True, confirm_reason="re-weighed: oedema")
    assert confirmed.confirmed_reason == "re-weighed: oedema"
    assert AuditEvent.objects.filter(action="weights.record").last().new["confirmed_reason"] == "re-weighed: oedema"


def test_the_nearest_weights_pass_without_confirmation(nurse_a, patient_a):
    weight(patient_a, nurse_a, "80.0", at=NOW - 24 * H)
    assert weight(patient_a, nurse_a, "88.0", at=NOW - 12 * H).confirmed_reason == ""  # exactly 10 %
    assert weight(patient_a, nurse_a, "79.2", at=NOW).confirmed_reason == ""  # 10 % below the newest, 88.0


def test_a_weight_compared_with_one_older_than_48_h_passes(nurse_a, patient_a):
    weight(patient_a, nurse_a, "80.0", at=NOW - 49 * H)
    assert weight(patient_a, nurse_a, "176.0", at=NOW).confirmed_reason == ""


def fluids(patient, nurse, *, hours, urine, **extra):
    return services.fluids_record(
        patient=patient, period_start=NOW - hours, period_end=NOW, urine_ml=urine, by=nurse, now=NOW, **extra
    )


def test_urine_faster_than_1000_ml_per_hour_is_refused_unless_confirmed(nurse_a, patient_a):
    with pytest.raises(Invalid) as caught:
        fluids(patient_a, nurse_a, hours=2 * H, urine=2001)
    assert "urine_ml" in caught.value.errors
    assert FluidBalance.objects.count() == 0
    assert fluids(patient_a, nurse_a, hours=2 * H, urine=2000).confirmed_reason == ""  # exactly 1,000 mL/h
    row = fluids(patient_a, nurse_a, hours=2 * H, urine=2001, confirm=True, confirm_reason="diuretic given")
    assert row.confirmed_reason == "diuretic given"


def test_a_fluid_period_under_30_min_or_over_24_h_needs_confirmation(nurse_a, patient_a):
    with pytest.raises(Invalid) as short:
        fluids(patient_a, nurse_a, hours=timedelta(minutes=29), urine=100)
    assert "period_end" in short.value.errors and short.value.confirmable == {"period_end"}
    assert fluids(patient_a, nurse_a, hours=timedelta(minutes=30), urine=100).pk
    assert fluids(
        patient_a, nurse_a, hours=timedelta(minutes=29), urine=100, confirm=True, confirm_reason="catheter"
    ).pk
    with pytest.raises(Invalid) as long:
        fluids(patient_a, nurse_a, hours=24 * H + timedelta(minutes=1), urine=100)
    assert "longer than 24 hours" in long.value.errors["period_end"][0]
    assert fluids(patient_a, nurse_a, hours=24 * H, urine=100).pk
    row = fluids(patient_a, nurse_a, hours=24 * H + timedelta(minutes=1), urine=100, confirm=True, confirm_reason="x")
    assert row.confirmed_reason == "x"


def test_the_api_refuses_an_implausible_weight_naming_the_field_and_shows_the_reason(api, nurse_a, patient_a, frozen):
    weight(patient_a, nurse_a, "80.0", at=NOW - 24 * H)
    url = f"/api/v1/patients/{patient_a.pk}/weights/"
    refused = api.as_user(nurse_a).post(url, payload("weights", weight_kg="176.0"), format="json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["weight_kg"]
    confirmed = api.as_user(nurse_a).post(
        url, payload("weights", weight_kg="176.0", confirm=True, confirm_reason="bariatric scale"), format="json"
    )
    assert confirmed.status_code == 201 and confirmed.json()["confirmed_reason"] == "bariatric scale"


def test_vasopressin_takes_no_rate_in_micrograms_per_kg(nurse_a, patient_a):
    """Vasopressin is dosed in units/min: 0.03 typed into the µg/kg/min field would be stored in the wrong unit."""
    with pytest.raises(Invalid) as in_the_wrong_unit:
        record("vitals", patient_a, nurse_a, other_pressor="vasopressin", other_pressor_mcg_kg_min="0.03")
    assert "units/min" in in_the_wrong_unit.value.errors["other_pressor_mcg_kg_min"][0]
    assert VitalSigns.objects.count() == 0
    row = record("vitals", patient_a, nurse_a, other_pressor="vasopressin")
    assert (row.other_pressor, row.other_pressor_mcg_kg_min) == ("vasopressin", None)
