"""Charting a dose at /doses/{id}/: the live evaluation, the pre-dose assessment, give with the blind double check,
hold, correction; every refusal shown as a message, never a crash."""

import re
from datetime import timedelta

import pytest

from il2ward.models import AuditEvent
from monitoring.models import FluidBalance, NeuroAssessment, VitalSigns, WeightMeasurement
from scheduling.mar.forms import EXAM_LABELS
from scheduling.models import Administration, Dose, DoseEvaluation, Hold
from tests.conftest import NOW, PASSWORD
from tests.scheduling.mar.conftest import record_assessment

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


NEURO_YES_NO = ("neuro_check_failed", "hallucinations", "vivid_dreams_or_anxiety", "persistent_crying")


def assessment(**overrides) -> dict:
    data = {
        "action": "assess",
        "assess-recorded_at": "2027-03-10T05:58",  # ward-local (Chicago, CST): 11:58 UTC
        "assess-sbp": "118",
        "assess-dbp": "64",
        "assess-heart_rate": "92",
        "assess-resp_rate": "18",
        "assess-spo2": "97",
        "assess-temp_c": "37.4",
        "assess-rhythm": "sinus",
        "assess-o2_lpm": "0",
        "assess-phenylephrine_mcg_kg_min": "0",
        "assess-other_pressor": "none",
        "assess-rass": "0",
        "assess-confusion": "none",
        # every INV-EXPLICIT answer chosen, and a normal bedside exam
        **{f"assess-{name}": "no" for name in (*NEURO_YES_NO, *EXAM_LABELS)},
        "assess-rales": "none",
    }
    data.update({f"assess-{k}" if k != "action" else k: v for k, v in overrides.items()})
    return data


def give(dose, **overrides) -> dict:
    data = {
        "action": "give",
        "give-started_at": "2027-03-10T05:59",  # 11:59 UTC: after the assessment (INV-START), in the 12:20 window
        "give-ended_at": "2027-03-10T06:00",
        "give-vial_lot": "AL123",
        "give-reconstituted_at": "2027-03-10T05:20",
        "give-verifier": "nurse_a2",
        "give-verifier_password": PASSWORD,
        "give-verified_dose_iu": f"{dose.course.dose_iu:,}",  # typed with separators
    }
    data.update({f"give-{k}": v for k, v in overrides.items()})
    return data


def test_opening_the_dose_evaluates_it_and_shows_the_preparation(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.get(f"/doses/{dose_now.pk}/")
    html = text(response)
    assert response.status_code == 200
    evaluation = DoseEvaluation.objects.get(dose=dose_now)
    assert evaluation.trigger == "opened" and evaluation.decision == "incomplete"  # no vitals yet
    assert "INCOMPLETE" in html and "vitals" in html
    assert (
        "48,000,000 IU" in html and "2.67 mL" in html and "50 mL D5W" in html and "No</strong> in-line filter" in html
    )


def test_the_second_nurse_section_does_not_show_the_dose(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    html = client.get(f"/doses/{dose_now.pk}/").content.decode()
    section = html[html.index('<fieldset class="second-nurse') : html.index("</fieldset>", html.index("second-nurse"))]
    assert "Second nurse: dose she calculated" in section
    for shown in ("48,000,000", "48000000", "48 000 000", "48 MIU"):
        assert shown not in section
    field = re.search(r'<input[^>]*name="give-verified_dose_iu"[^>]*>', section).group(0)
    assert "value=" not in field  # typed independently, never pre-filled


def test_assessment_with_sbp_85_holds_by_cv_sbp(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(sbp="85"), HTTP_HX_REQUEST="true")
    html = text(response)
    assert response.status_code == 200
    assert 'id="decision">HOLD' in html.replace("> ", ">") or "HOLD</span>" in html
    assert "CV-SBP" in html and "85 mmHg" in html
    # Action first: a held dose offers new data and the hold, never the Give form.
    assert "Record new data and re-evaluate" in html and 'id="give-form"' not in html
    assert html.index('id="action"') < html.index('id="assess-form"')
    dose_now.refresh_from_db()
    assert dose_now.flag == "hold" and dose_now.latest_evaluation.trigger == "assessment"
    vitals = VitalSigns.objects.get(patient=dose_now.course.patient)
    assert vitals.sbp == 85 and vitals.recorded_at == NOW - timedelta(minutes=2)  # 05:58 Chicago = 11:58 UTC
    assert NeuroAssessment.objects.filter(patient=dose_now.course.patient).count() == 1


def test_assessment_errors_name_the_field_and_store_nothing(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(sbp="400", rass="0", weight_kg="500"))
    html = text(response)
    assert response.status_code == 400
    assert re.search(r'id="error_1_id_assess-sbp"[^>]*>.*?Must be between 40 and 300 mmHg', html)
    assert "Must be between 20 and 350 kg" in html
    patient = dose_now.course.patient
    assert not VitalSigns.objects.filter(patient=patient).exists()
    assert not NeuroAssessment.objects.filter(patient=patient).exists()  # the valid part was rolled back too
    assert WeightMeasurement.objects.filter(patient=patient).count() == 1  # only the baseline weight


def test_assessment_records_urine_since_the_last_slot_and_todays_weight(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(
        f"/doses/{dose_now.pk}/",
        assessment(urine_since="2027-03-09T21:58", urine_ml="640", weight_kg="81.2"),
    )
    assert response.status_code == 302 and response["Location"] == f"/doses/{dose_now.pk}/"
    fluids = FluidBalance.objects.get(patient=dose_now.course.patient)
    assert fluids.urine_ml == 640 and fluids.period_end - fluids.period_start == timedelta(hours=8)
    assert WeightMeasurement.objects.filter(patient=dose_now.course.patient, weight_kg="81.2").exists()
    dose_now.refresh_from_db()
    assert dose_now.latest_evaluation.decision == "give"


def test_urine_volume_without_its_start_names_the_field(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", assessment(urine_ml="300", urine_since=""))
    assert response.status_code == 400
    assert "Give the start of the urine period." in text(response)
    assert not VitalSigns.objects.exists()


def test_give_is_refused_while_the_hold_stands(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, sbp=85)
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", give(dose_now))
    html = text(response)
    assert response.status_code == 409
    assert "Refused:" in html and "Hold criteria are met" in html and "CV-SBP" in html and "hold_criteria_met" in html
    assert not Administration.objects.exists()
    dose_now.refresh_from_db()
    assert dose_now.status == Dose.Status.SCHEDULED and dose_now.flag == "hold"


def test_give_with_the_blind_double_check(client, dose_now, nurse_a, nurse_a2):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", give(dose_now), follow=True)
    html = text(response)
    adm = Administration.objects.get(dose=dose_now)
    assert (adm.given_by, adm.verified_by, adm.vial_lot) == (nurse_a, nurse_a2, "AL123")
    # Typed in Chicago time, stored in UTC.
    assert adm.started_at == NOW - timedelta(minutes=1) and adm.ended_at == NOW
    assert adm.reconstituted_at == NOW - timedelta(minutes=40)
    assert "charted as given" in html and "checked by Amira Second RN" in html
    assert "Given Wed 10 Mar 05:59–06:00" in html  # the history in ward time
    assert AuditEvent.objects.filter(action="dose.administer", object_id=str(dose_now.pk)).exists()


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"verified_dose_iu": "4800000"}, 409, "does not match the prescribed dose"),
        ({"verifier": "nurse_a"}, 400, "The second check must be by a different nurse."),
        ({"verifier_password": "wrong-password"}, 400, "The second nurse&#x27;s username or password is wrong."),
        ({"verifier": "onc"}, 400, "The second check must be by a nurse."),
        ({"verified_dose_iu": "48 million"}, 400, "Type the dose in whole IU"),
        ({"reconstituted_at": "2027-03-08T05:00"}, 409, "reconstituted more than 48 h ago"),
        ({"started_at": "2027-03-10T04:00", "reconstituted_at": "2027-03-10T03:50"}, 409, "outside the dose window"),
        ({"started_at": "2027-03-10T06:06", "ended_at": ""}, 400, "The start time is in the future."),
        ({"started_at": "not a time"}, 400, "Enter a date and 24-hour time (ward time), e.g. 2027-03-10 06:00."),
    ],
)
def test_give_refusals_are_messages_not_crashes(client, dose_now, nurse_a, nurse_a2, overrides, status, message):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", give(dose_now, **overrides))
    assert response.status_code == status
    assert message in response.content.decode()
    assert not Administration.objects.exists()


def test_a_pharmacist_cannot_give(client, dose_now, pharmacist, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(pharmacist)
    assert client.get(f"/doses/{dose_now.pk}/").status_code == 200  # may read
    assert client.post(f"/doses/{dose_now.pk}/", give(dose_now)).status_code == 403
    assert not Administration.objects.exists()


def test_a_dose_on_another_ward_is_404(client, dose_now, nurse_b):
    client.force_login(nurse_b)
    assert client.get(f"/doses/{dose_now.pk}/").status_code == 404
    assert client.post(f"/doses/{dose_now.pk}/", {"action": "hold", "hold-reason": "CV-SBP"}).status_code == 404


def test_hold_with_a_rule_id_and_a_note(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, sbp=84)
    client.force_login(nurse_a)
    html = client.get(f"/doses/{dose_now.pk}/").content.decode()
    assert re.search(r'<option value="CV-SBP" selected>', html)  # the evaluation's rule is offered first
    response = client.post(
        f"/doses/{dose_now.pk}/",
        {"action": "hold", "hold-reason": "CV-SBP", "hold-note": "SBP 84", "hold-confirm_hold": "on"},
        follow=True,
    )
    hold = Hold.objects.get(dose=dose_now)
    assert (hold.reason, hold.rule_ids, hold.note, hold.by) == ("CV-SBP", ["CV-SBP"], "SBP 84", nurse_a)
    assert "held (CV-SBP)" in text(response)
    again = client.post(
        f"/doses/{dose_now.pk}/", {"action": "hold", "hold-reason": "CV-SBP", "hold-confirm_hold": "on"}
    )
    assert again.status_code == 409 and "This dose has already been charted." in again.content.decode()
    assert "give-form" not in again.content.decode()  # nothing left to chart


def test_hold_other_needs_a_note(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", {"action": "hold", "hold-reason": "other"})
    assert response.status_code == 400 and "Say why the dose is held." in response.content.decode()
    assert not Hold.objects.exists()


def test_charting_an_already_held_dose_is_refused_clearly(client, dose_now, nurse_a, nurse_a2):
    from scheduling.services import dose_hold

    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    page = client.get(f"/doses/{dose_now.pk}/")  # the nurse opened the page...
    assert page.status_code == 200
    dose_hold(dose_id=dose_now.pk, reason="patient_declined", by=nurse_a2, now=NOW)  # ...a colleague held it meanwhile
    response = client.post(f"/doses/{dose_now.pk}/", give(dose_now))
    assert response.status_code == 409 and "This dose has already been charted." in response.content.decode()


def test_correction_entered_in_error_keeps_the_record(client, dose_now, nurse_a, nurse_a2):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    client.post(f"/doses/{dose_now.pk}/", give(dose_now))
    adm = Administration.objects.get(dose=dose_now)
    wrong = client.post(
        f"/doses/{dose_now.pk}/",
        {
            "action": "correct",
            "correct-administration": adm.pk,
            "correct-reason": "Wrong patient",
            "correct-password": "x",
        },
    )
    assert wrong.status_code == 400 and "Password does not match" in wrong.content.decode()
    response = client.post(
        f"/doses/{dose_now.pk}/",
        {
            "action": "correct",
            "correct-administration": adm.pk,
            "correct-reason": "Wrong patient",
            "correct-password": PASSWORD,
        },
        follow=True,
    )
    adm.refresh_from_db()
    dose_now.refresh_from_db()
    assert adm.entered_in_error_at == NOW and adm.entered_in_error_reason == "Wrong patient"
    assert dose_now.status == Dose.Status.SCHEDULED
    html = text(response)
    assert "entered in error" in html and "Wrong patient" in html and "Given Wed 10 Mar 05:59" in html


def test_unknown_action_is_a_400(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    assert client.post(f"/doses/{dose_now.pk}/", {"action": "delete"}).status_code == 400


# --- Action first, errors in view, guarded timing ------------------------------------------------------------------


def test_a_dose_to_give_opens_with_the_give_form_first_and_hold_behind_it(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    assert html.index('id="decision"') < html.index('id="give-form"') < html.index('id="assess-form"')
    assert html.index('id="give-form"') < html.index('id="hold-instead"')


def test_a_hold_says_why_in_words_with_the_rule_id_second(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, sbp=84)
    client.force_login(nurse_a)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    why = html[html.index('aria-label="Why"') :]
    assert re.search(r"<li><strong>[^<]*[Ss]ystolic[^<]*</strong> <span class=\"small text-muted\">CV-SBP", why)
    assert 'id="give-form"' not in html and "Override the hold" not in html  # a nurse never overrides


def test_the_oncologist_is_offered_the_override_on_a_hold(client, dose_now, nurse_a, oncologist):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, sbp=84)
    client.force_login(oncologist)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    course = dose_now.course
    assert f'href="/courses/{course.pk}/doses/{dose_now.pk}/override/">Override the hold (e-signed)' in html


def test_missing_data_is_listed_in_words(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    assert "Still needed before this dose:" in html and "the bedside exam in the last 2 h" in html
    assert "Chart the pre-dose assessment" in html


def test_a_refused_give_puts_a_summary_at_the_top_linking_to_the_field(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", give(dose_now, verifier_password="wrong"))
    html = text(response)
    assert response.status_code == 400
    summary = html[html.index('id="error-summary"') : html.index('id="action"')]
    assert "data-autofocus" in summary
    assert '<a href="#id_give-verifier_password" class="alert-link">Second nurse: password</a>' in summary
    assert html.index('id="error-summary"') < html.index('id="give-form"')


def test_a_hold_needs_its_confirmation(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    response = client.post(f"/doses/{dose_now.pk}/", {"action": "hold", "hold-reason": "no_iv_access"})
    assert response.status_code == 400 and "Tick to confirm the hold." in text(response)
    assert not Hold.objects.exists()


def test_a_mistaken_hold_is_undone_within_the_window_audited_and_the_dose_is_open(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    held = {"action": "hold", "hold-reason": "no_iv_access", "hold-confirm_hold": "on"}
    assert client.post(f"/doses/{dose_now.pk}/", held).status_code == 302
    hold = Hold.objects.get()
    assert 'id="undo-hold-form"' in text(client.get(f"/doses/{dose_now.pk}/"))
    response = client.post(
        f"/doses/{dose_now.pk}/", {"action": "undo_hold", "undo-hold": hold.pk, "undo-reason": "wrong patient"}
    )
    assert response.status_code == 302
    hold.refresh_from_db()
    dose_now.refresh_from_db()
    assert dose_now.status == Dose.Status.SCHEDULED
    assert (hold.entered_in_error_by, hold.entered_in_error_reason) == (nurse_a, "wrong patient")
    assert AuditEvent.objects.filter(action="hold.entered_in_error", reason="wrong patient").exists()


def test_a_hold_cannot_be_undone_after_the_window_closed(dose_now, nurse_a):
    from il2ward.errors import Conflict
    from scheduling.services import dose_hold, hold_enter_in_error

    hold = dose_hold(dose_id=dose_now.pk, reason="no_iv_access", by=nurse_a, now=NOW)
    closed = dose_now.due_at + timedelta(minutes=61)  # W = 60
    with pytest.raises(Conflict) as caught:
        hold_enter_in_error(hold_id=hold.pk, reason="oops", by=nurse_a, now=closed)
    assert caught.value.code == "outside_window"
    last_minute = dose_now.due_at + timedelta(minutes=60)
    assert hold_enter_in_error(hold_id=hold.pk, reason="oops", by=nurse_a, now=last_minute).entered_in_error_at


def test_an_early_give_on_the_page_asks_why_and_records_it(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW, minutes_ago=45)
    client.force_login(nurse_a)
    early = give(dose_now, started_at="2027-03-10T05:45")  # 11:45 UTC: 35 min before the 12:20 due time
    response = client.post(f"/doses/{dose_now.pk}/", early)
    html = text(response)
    assert response.status_code == 400 and "35 min before the dose is due" in html
    assert 'name="give-early_reason"' in html and 'type="hidden" name="give-early_reason"' not in html
    response = client.post(f"/doses/{dose_now.pk}/", {**early, "give-early_reason": "CT at 06:30"})
    assert response.status_code == 302
    assert Administration.objects.get().early_reason == "CT at 06:30"


def test_urine_since_defaults_to_the_shift_start_not_the_last_measurement(client, dose_now, nurse_a):
    client.force_login(nurse_a)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    # NOW is 06:00 in Chicago: the current shift began at 23:00; no fluid period charted yet.
    assert re.search(r'name="assess-urine_since" value="2027-03-09 23:00"', html)


def test_urine_since_continues_from_the_last_fluid_period(client, dose_now, nurse_a):
    from monitoring import services as obs

    obs.fluids_record(
        patient=dose_now.course.patient,
        period_start=NOW - timedelta(hours=9),
        period_end=NOW - timedelta(hours=1),
        urine_ml=600,
        by=nurse_a,
        now=NOW,
    )
    client.force_login(nurse_a)
    html = text(client.get(f"/doses/{dose_now.pk}/"))
    assert re.search(r'name="assess-urine_since" value="2027-03-10 05:00"', html)
