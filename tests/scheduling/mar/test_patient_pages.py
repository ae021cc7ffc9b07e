"""The patient page (/patients/{id}/: MAR, flowsheet with trends, capillary-leak panel), the other entries (fluids,
labs, events, teaching) and the downtime print (/wards/{code}/downtime/)."""

import re
from datetime import timedelta

import pytest

from il2ward.models import AuditEvent
from monitoring.models import ClinicalEvent, FluidBalance, LabResult
from scheduling.models import TeachingRecord
from scheduling.services.assessments import teaching_record
from tests.conftest import NOW, PASSWORD
from tests.scheduling.mar.conftest import record_assessment

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def charted(dose_now, nurse_a, nurse_a2):
    """Dose 1 given (checked by nurse A2) after an assessment; a second vitals set with SBP 85 afterwards."""
    from scheduling.services import dose_administer, dose_hold

    patient = dose_now.course.patient
    record_assessment(patient, nurse=nurse_a, now=NOW - timedelta(minutes=30), sbp=121)
    record_assessment(patient, nurse=nurse_a, now=NOW)
    dose_administer(
        dose_id=dose_now.pk,
        by=nurse_a,
        started_at=NOW - timedelta(minutes=10),
        ended_at=NOW,
        verifier_username="nurse_a2",
        verifier_password=PASSWORD,
        verified_dose_iu=dose_now.course.dose_iu,
        vial_lot="LOT9",
        now=NOW,
    )
    record_assessment(patient, nurse=nurse_a, now=NOW + timedelta(minutes=2), sbp=85)
    dose2 = dose_now.course.doses.get(cycle=1, number=2)
    dose_hold(dose_id=dose2.pk, reason="patient_declined", note="Asked to wait", by=nurse_a, now=NOW)
    return dose_now


def test_patient_page_mar_in_ward_time_with_who_charted_and_reasons(client, charted, nurse_a):
    client.force_login(nurse_a)
    response = client.get(f"/patients/{charted.course.patient_id}/")
    html = text(response)
    assert response.status_code == 200
    assert html.count("/doses/") >= 28  # every slot links to its charting page
    assert "Wed 10 Mar 06:20" in html  # dose 1 due 12:20 UTC, shown in Chicago time
    assert "05:50–06:00" in html and "Alice Nurse RN / Amira Second RN" in html
    assert "patient_declined" in html and "Asked to wait" in html


def test_patient_page_flowsheet_marks_and_trends(client, charted, nurse_a):
    client.force_login(nurse_a)
    html = text(client.get(f"/patients/{charted.course.patient_id}/"))
    assert re.search(r'<td class="out-of-range">85/62</td>', html)
    assert html.count("<svg") >= 5 and "Systolic BP from 121 to 85 mmHg" in html
    assert "polyline points=" in html


def test_patient_page_capillary_leak_panel(client, charted, nurse_a):
    client.force_login(nurse_a)
    html = text(client.get(f"/patients/{charted.course.patient_id}/"))
    panel = html[html.index('id="leak-h"') : html.index("</dl>", html.index('id="leak-h"'))]
    for label in ("Systolic BP", "Phenylephrine", "Weight gain over baseline", "Urine output, 8 h", "SpO2", "Oedema"):
        assert label in panel
    assert re.search(r"85 mmHg.*?hold", panel)  # CV-SBP reached hold


def test_patient_page_entered_in_error_rows_are_struck_through(client, charted, nurse_a):
    from monitoring.models import VitalSigns
    from monitoring.services import observation_enter_in_error

    wrong = VitalSigns.objects.filter(patient=charted.course.patient, sbp=85).get()
    observation_enter_in_error(observation=wrong, reason="wrong patient", password=PASSWORD, by=nurse_a, now=NOW)
    client.force_login(nurse_a)
    html = text(client.get(f"/patients/{charted.course.patient_id}/"))
    assert re.search(r'<tr class="in-error"> <td class="text-nowrap">[^<]+</td> <td class="out-of-range">85/62', html)


def test_another_wards_patient_is_404_on_every_page(client, charted, nurse_b):
    client.force_login(nurse_b)
    pid = charted.course.patient_id
    for path in ("", "assessment/", "fluids/", "labs/", "events/", "teaching/"):
        assert client.get(f"/patients/{pid}/{path}").status_code == 404, path
    assert client.post(f"/patients/{pid}/labs/", {"recorded_at": "2027-03-10T05:00"}).status_code == 404
    assert not LabResult.objects.filter(recorded_by=nurse_b).exists()


def test_pages_need_login(client, charted):
    for path in (f"/patients/{charted.course.patient_id}/", f"/doses/{charted.pk}/", "/wards/onc-a/downtime/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_fluids_for_a_shift_in_ward_time(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    form = client.get(f"/patients/{dose_now.course.patient_id}/fluids/").content.decode()
    # NOW is 06:00 in Chicago: the last complete shift is 23:00–07:00? no: 15:00–23:00 the day before.
    assert 'value="2027-03-09 15:00"' in form and 'value="2027-03-09 23:00"' in form
    response = client.post(
        f"/patients/{dose_now.course.patient_id}/fluids/",
        {"period_start": "2027-03-09T15:00", "period_end": "2027-03-09T23:00", "urine_ml": "900", "intake_ml": "1400"},
    )
    assert response.status_code == 302
    fluids = FluidBalance.objects.get()
    assert fluids.period_start == NOW - timedelta(hours=15) and fluids.urine_ml == 900 and fluids.intake_ml == 1400


def test_fluids_errors_name_the_field(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(
        f"/patients/{dose_now.course.patient_id}/fluids/",
        {"period_start": "2027-03-09T23:00", "period_end": "2027-03-09T15:00", "urine_ml": "-5"},
    )
    html = text(response)
    assert response.status_code == 400
    assert "Must be after period_start." in html and "Must be between 0 and 10000 mL" in html
    assert not FluidBalance.objects.exists()


def test_labs_entry(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    page = text(client.get(f"/patients/{dose_now.course.patient_id}/labs/"))
    assert "Creatinine (mg/dL)" in page and "Platelets (×10³/µL)" in page
    response = client.post(
        f"/patients/{dose_now.course.patient_id}/labs/",
        {"recorded_at": "2027-03-10T05:30", "creatinine_mg_dl": "2.6", "platelets_k_ul": "140"},
    )
    assert response.status_code == 302
    lab = LabResult.objects.filter(recorded_by=nurse_a).latest("pk")
    assert str(lab.creatinine_mg_dl) == "2.60" and lab.recorded_at == NOW - timedelta(minutes=30)
    empty = client.post(f"/patients/{dose_now.course.patient_id}/labs/", {"recorded_at": "2027-03-10T05:30"})
    assert empty.status_code == 400 and "Give at least one result" in empty.content.decode()


def test_clinical_event_entry_and_resolution(client, dose_now, nurse_a):
    pid = dose_now.course.patient_id
    client.force_login(nurse_a)
    response = client.post(f"/patients/{pid}/events/", {"kind": "infection", "recorded_at": "2027-03-10T05:00"})
    assert response.status_code == 302
    event = ClinicalEvent.objects.get()
    assert event.kind == "infection" and event.recorded_at == NOW - timedelta(hours=1)
    page = text(client.get(f"/patients/{pid}/"))
    assert "Infection" in page and "Mark resolved" in page
    client.post(f"/patients/{pid}/events/", {"action": "resolve", "event": event.pk})
    event.refresh_from_db()
    assert event.resolved_at == NOW and event.resolved_by == nurse_a
    again = client.post(f"/patients/{pid}/events/", {"action": "resolve", "event": event.pk}, follow=True)
    assert "already resolved" in again.content.decode()


def test_teaching_checklist_is_audited_and_a_new_entry_supersedes(client, dose_now, nurse_a):
    pid = dose_now.course.patient_id
    client.force_login(nurse_a)
    assert "Not documented yet" in text(client.get(f"/patients/{pid}/"))
    client.post(f"/patients/{pid}/teaching/", {"infection_risk": "on", "meals_fluids": "on"})
    client.post(f"/patients/{pid}/teaching/", {"infection_risk": "on", "meals_fluids": "on", "dietitian": "on"})
    records = list(TeachingRecord.objects.order_by("pk"))
    assert len(records) == 2 and records[0].items["dietitian"] is False and records[1].items["dietitian"] is True
    assert AuditEvent.objects.filter(action="teaching.record").count() == 2
    html = text(client.get(f"/patients/{pid}/"))
    assert '☑</span><span class="visually-hidden">done:</span> Dietitian referral if needed' in html
    nothing = client.post(f"/patients/{pid}/teaching/", {})
    assert nothing.status_code == 400 and "Tick what was taught" in nothing.content.decode()


def test_teaching_service_refuses_unknown_items(dose_now, nurse_a):
    from il2ward.errors import Invalid

    with pytest.raises(Invalid) as exc:
        teaching_record(course_id=dose_now.course_id, items={"juggling": True}, by=nurse_a, now=NOW)
    assert "items" in exc.value.errors
    assert not TeachingRecord.objects.exists()


def test_assessment_from_the_patient_page_goes_to_the_next_dose(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.get(f"/patients/{dose_now.course.patient_id}/assessment/")
    assert response.status_code == 302 and response["Location"] == f"/doses/{dose_now.pk}/"


def test_downtime_sheet_lists_the_next_24h(client, charted, nurse_a, oncologist):
    client.force_login(oncologist)
    html = text(client.get("/wards/onc-a/downtime/"))
    assert "48,000,000 IU" in html and "draw 2.67 mL into 50 mL D5W" in html  # the oncologist's sheet: the dose
    client.force_login(nurse_a)
    response = client.get("/wards/onc-a/downtime/")
    html = text(response)
    assert response.status_code == 200
    # Dose 1 (12:20 UTC) is given, dose 2 (20:20) held; #3 is due 04:20 tomorrow, #4 at 12:20 — after NOW + 24 h.
    slots = re.findall(r"<td class=\"text-nowrap\">C1 #(\d+)</td>", html)
    assert slots == ["3"]
    # A nurse's sheet (she may be the second checker): the order, never the computed dose (blind double check).
    assert "600,000 IU/kg</strong> × 80.0 kg" in html and "calculates the dose" in html
    assert "48,000,000" not in html and "2.67 mL" not in html
    assert '<span class="out-of-range">BP 85/62</span>' in html
    assert html.count("<td>&nbsp;</td>") == 12  # blank rows to chart vitals every 2 h by hand
    assert "data-print" in html  # il2ward.js prints (no inline handler under the CSP)


def test_downtime_sheet_shows_flags_with_rule_ids(client, dose_now, nurse_a):
    from scheduling.services import dose_evaluate

    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, sbp=80)
    dose_evaluate(dose_id=dose_now.pk, now=NOW)
    client.force_login(nurse_a)
    html = text(client.get("/wards/onc-a/downtime/"))
    assert "<strong>HOLD</strong> CV-SBP" in html


def test_downtime_of_another_ward_is_404(client, charted, nurse_b):
    client.force_login(nurse_b)
    assert client.get("/wards/onc-a/downtime/").status_code == 404


def test_patient_page_without_a_course(client, clock, patient_a, nurse_a):
    client.force_login(nurse_a)
    response = client.get(f"/patients/{patient_a.pk}/")
    html = text(response)
    assert response.status_code == 200
    assert "No IL-2 course for this patient." in html and "Teaching checklist" not in html
    teaching = client.get(f"/patients/{patient_a.pk}/teaching/", follow=True)
    assert "this patient has no course" in text(teaching)


def test_an_oncologist_reads_the_patient_page_and_may_hold_but_not_give(client, dose_now, oncologist):
    client.force_login(oncologist)
    assert client.get(f"/patients/{dose_now.course.patient_id}/").status_code == 200
    html = client.get(f"/doses/{dose_now.pk}/").content.decode()
    assert 'id="hold-form"' in html and 'id="give-form"' not in html
