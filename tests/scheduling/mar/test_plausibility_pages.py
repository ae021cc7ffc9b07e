"""HOLD-RULES §3a INV-PLAUSIBLE on the nurse's pages: an implausible weight or urine is refused with the reason in
view and a confirmation offered beside it; confirmed with a reason it is stored, audited and shown with the value.
The nearest plausible value is stored with no confirmation asked."""

import re

import pytest

from il2ward.models import AuditEvent
from monitoring.models import FluidBalance, VitalSigns, WeightMeasurement
from tests.scheduling.mar.test_dose_page import assessment, text

pytestmark = pytest.mark.django_db

CONFIRM_BOX = re.compile(r'<input type="checkbox" name="assess-confirm"')


def weights(patient):
    return list(WeightMeasurement.objects.filter(patient=patient).values_list("weight_kg", flat=True))


def test_a_weight_in_pounds_is_refused_with_the_confirmation_in_view_and_nothing_stored(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    patient = dose_now.course.patient
    before = weights(patient)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(weight_kg="176"))
    html = text(response)
    assert response.status_code == 400
    assert "176.0 kg is more than 10 % from the previous weight 80.0 kg" in html
    assert CONFIRM_BOX.search(html) and 'name="assess-confirm_reason"' in html
    assert weights(patient) == before
    assert not VitalSigns.objects.filter(patient=patient).exists()  # nor the rest of the same assessment


def test_the_nearest_plausible_weight_is_stored_without_asking(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(weight_kg="88.0"))  # exactly 10 % up
    assert response.status_code == 302
    stored = WeightMeasurement.objects.get(patient=dose_now.course.patient, weight_kg="88.0")
    assert stored.confirmed_reason == ""
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    assert not CONFIRM_BOX.search(html)  # the confirmation is not offered before anything needs it


def test_confirming_without_a_reason_is_refused_and_keeps_the_box(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(weight_kg="96", confirm="on", confirm_reason=" "))
    html = text(response)
    assert response.status_code == 400
    assert "Say why this value is right." in html and CONFIRM_BOX.search(html)
    assert not WeightMeasurement.objects.filter(weight_kg="96").exists()


def test_a_confirmed_weight_is_stored_with_its_reason_audited_and_shown_on_the_flowsheet(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(
        f"/doses/{dose_now.pk}/",
        assessment(weight_kg="96", confirm="on", confirm_reason="reweighed on the bed scale"),
    )
    assert response.status_code == 302
    stored = WeightMeasurement.objects.get(weight_kg="96")
    assert stored.confirmed_reason == "reweighed on the bed scale"
    event = AuditEvent.objects.filter(action="weights.record").latest("pk")
    assert event.new["confirmed_reason"] == "reweighed on the bed scale"
    html = text(client.get(f"/patients/{dose_now.course.patient_id}/"))
    assert re.search(r"<td>96(\.0)? <span class=\"badge[^\"]*confirmed-reason\"", html)
    assert "reweighed on the bed scale" in html


def test_urine_over_12_minutes_is_refused_on_the_fluids_page_and_stored_once_confirmed(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    url = f"/patients/{dose_now.course.patient_id}/fluids/"
    entry = {"period_start": "2027-03-09T22:48", "period_end": "2027-03-09T23:00", "urine_ml": "520"}
    response = client.post(url, entry)
    html = text(response)
    assert response.status_code == 400
    assert "shorter than 30 minutes" in html and "faster than 1000 mL/h" in html
    assert '<input type="checkbox" name="confirm"' in html
    assert not FluidBalance.objects.exists()
    response = client.post(url, {**entry, "confirm": "on", "confirm_reason": "catheter bag emptied late"})
    assert response.status_code == 302
    assert FluidBalance.objects.get().confirmed_reason == "catheter bag emptied late"


def test_a_plausible_shift_on_the_fluids_page_asks_nothing(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    url = f"/patients/{dose_now.course.patient_id}/fluids/"
    html = text(client.get(url))
    assert '<input type="checkbox" name="confirm"' not in html and 'type="hidden" name="confirm"' in html
    response = client.post(
        url, {"period_start": "2027-03-09T15:00", "period_end": "2027-03-09T23:00", "urine_ml": "900"}
    )
    assert response.status_code == 302 and FluidBalance.objects.get().confirmed_reason == ""
