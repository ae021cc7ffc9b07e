"""The bedside safety invariants of HOLD-RULES §3a, through the charting service and the API.

For each invariant: the case that must be refused and its nearest case that must be allowed, so a product that
refuses everything fails too. The ward clock is tests.holds.conftest's: NOW = 12:00 UTC, dose 1 due at 12:30 (window
11:30–13:30), data charted by default at 11:50.
"""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from il2ward.errors import Conflict
from monitoring.models import ClinicalEvent
from monitoring.services import event_record, event_resolve
from scheduling.models import Administration, Course, Dose, DoseEvaluation, Override
from scheduling.services import course_stop, dose_administer, dose_evaluate, dose_override
from scheduling.services.decisions import cycle_decide
from scheduling.services.evaluation import override_covers
from tests.conftest import NOW, PASSWORD
from tests.scheduling.doses.conftest import chart, first_dose, notifications

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
DOSE_IU = 48_000_000  # 80 kg (SCH-DOSE)
START = NOW + timedelta(minutes=5)


def give(dose, nurse_a, *, started_at=START, now=NOW):
    return dose_administer(
        dose_id=dose.pk,
        by=nurse_a,
        started_at=started_at,
        ended_at=None,
        verifier_username="nurse_a2",
        verifier_password=PASSWORD,
        verified_dose_iu=DOSE_IU,
        early_reason="given with the ward's earlier round",  # stored only for a start > 30 min before due
        now=now,
    )


def refused(dose, nurse_a, **kwargs) -> str:
    with pytest.raises(Conflict) as caught:
        give(dose, nurse_a, **kwargs)
    assert not Administration.objects.filter(dose=dose).exists()
    return caught.value.code


def continue_cycle(dose, oncologist):
    choice = {"choice": "continue", "reason": "rate controlled", "password": PASSWORD}
    return cycle_decide(dose_id=dose.pk, by=oncologist, now=NOW, **choice)


def flag(patient, kind, nurse):
    return event_record(patient=patient, kind=kind, recorded_at=NOW - timedelta(minutes=20), by=nurse, now=NOW)


def override(dose, oncologist, *, now=NOW, reason="SBP 85 is her baseline"):
    return dose_override(dose_id=dose.pk, reason=reason, password=PASSWORD, by=oncologist, now=now)


# --- INV-START: judged as of the infusion's start -------------------------------------------------------------------


def test_inv_start_data_charted_after_the_start_does_not_make_a_retrospective_dose_complete(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    started = NOW - timedelta(minutes=20)
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=5))  # a complete assessment, but after the start
    assert refused(dose, nurse_a, started_at=started) == "assessment_incomplete"
    evaluation = DoseEvaluation.objects.filter(dose=dose).latest("pk")
    assert evaluation.as_of == started and evaluation.evaluated_at == NOW


def test_inv_start_nearest_allowed_data_charted_before_the_start(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    started = NOW - timedelta(minutes=20)
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=25))
    adm = give(dose, nurse_a, started_at=started)
    assert adm.evaluation.decision == "give" and adm.evaluation.as_of == started  # stored with the administration


def test_inv_start_a_post_dose_sbp_charted_first_does_not_block_the_dose_given(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    started = NOW - timedelta(minutes=20)
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=30))
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=5), skip=("labs", "fluids", "weight"), vitals={"sbp": 84})
    assert give(dose, nurse_a, started_at=started).evaluation.decision == "give"


def test_inv_start_nearest_refused_the_same_sbp_before_the_start_holds(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    started = NOW - timedelta(minutes=20)
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=30))
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=25), skip=("labs", "fluids", "weight"), vitals={"sbp": 84})
    assert refused(dose, nurse_a, started_at=started) == "hold_criteria_met"


# --- INV-OVR: an override covers what it was signed against ---------------------------------------------------------


@pytest.fixture
def overridden(ready, patient_a, nurse_a, oncologist):
    """Dose 1 held by SBP 85 (charted at 11:50) and overridden by the oncologist at 12:00."""
    dose = first_dose(ready())
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    signed = override(dose, oncologist)
    covered = {"rule": "CV-SBP", "value": "85 mmHg", "measure": "85", "worse": "lower", "threshold": "< 90 mmHg"}
    assert signed.covers == [covered]
    return dose


def test_inv_ovr_a_worse_value_of_the_overridden_rule_lapses_it(overridden, patient_a, nurse_a):
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=2), skip=("labs", "fluids", "weight"), vitals={"sbp": 78})
    assert refused(overridden, nurse_a) == "hold_criteria_met"
    lapsed = Override.objects.get(dose=overridden)
    assert lapsed.lapsed_at == NOW and lapsed.lapsed_by.decision == "hold"


def test_inv_ovr_nearest_allowed_a_better_value_stays_covered(overridden, patient_a, nurse_a):
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=2), skip=("labs", "fluids", "weight"), vitals={"sbp": 87})
    give(overridden, nurse_a)
    assert Override.objects.get(dose=overridden).lapsed_at is None


def test_inv_ovr_the_same_value_stays_covered(overridden, nurse_a):
    assert give(overridden, nurse_a).evaluation.decision == "hold"  # charted under the override


def test_inv_ovr_a_lapsed_override_never_applies_again_even_when_the_value_recovers(overridden, patient_a, nurse_a):
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=3), skip=("labs", "fluids", "weight"), vitals={"sbp": 78})
    dose_evaluate(dose_id=overridden.pk, now=NOW)  # the sweep sees SBP 78: the override lapses
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=2), skip=("labs", "fluids", "weight"), vitals={"sbp": 85})
    assert refused(overridden, nurse_a) == "hold_criteria_met"


def test_inv_ovr_a_rule_holding_on_two_inputs_compares_each_with_its_own_signed_value():
    """CV-PRESSOR held on phenylephrine at dosing (0.6) and on the highest since the last slot (1.2): at dosing 0.7
    is worse than what was signed for it, although it is below the other input's signed 1.2."""
    at_dosing = {"rule": "CV-PRESSOR", "level": "hold", "value": "0.6 µg/kg/min", "threshold": "> 0.5 µg/kg/min",
                 "measure": "0.6", "worse": "higher"}  # fmt: skip
    interval = {"rule": "CV-PRESSOR", "level": "hold", "value": "1.2 µg/kg/min", "threshold": "≥ 1.0 µg/kg/min",
                "measure": "1.2", "worse": "higher"}  # fmt: skip
    covers = [at_dosing, interval]
    assert not override_covers(covers, [{**at_dosing, "value": "0.7 µg/kg/min", "measure": "0.7"}, interval])
    assert override_covers(covers, [{**at_dosing, "value": "0.55 µg/kg/min", "measure": "0.55"}, interval])


def test_inv_ovr_a_new_hold_rule_lapses_it(overridden, patient_a, nurse_a):
    chart(
        patient_a,
        nurse_a,
        at=NOW - timedelta(minutes=2),
        skip=("labs", "fluids", "weight"),
        vitals={"sbp": 85, "dbp": 50},
        neuro={"rass": -2},
    )
    assert refused(overridden, nurse_a) == "hold_criteria_met"


def test_inv_ovr_an_override_never_lifts_stale_data(overridden, nurse_a):
    # The SBP-85 set was charted at 11:50; a start at 12:51 is 61 min later: vitals stale at the start.
    assert refused(overridden, nurse_a, started_at=NOW + timedelta(minutes=51), now=NOW + timedelta(minutes=51)) == (
        "assessment_incomplete"
    )


def test_inv_ovr_nearest_allowed_exactly_60_minutes_is_fresh(overridden, nurse_a):
    give(overridden, nurse_a, started_at=NOW + timedelta(minutes=50), now=NOW + timedelta(minutes=50))


def test_inv_ovr_a_second_override_of_the_same_findings_is_refused(overridden, oncologist):
    with pytest.raises(Conflict) as caught:
        override(overridden, oncologist)
    assert caught.value.code == "already_overridden"
    assert Override.objects.filter(dose=overridden).count() == 1


def test_inv_ovr_nearest_allowed_a_new_override_after_a_lapse(overridden, patient_a, nurse_a, oncologist):
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=2), skip=("labs", "fluids", "weight"), vitals={"sbp": 78})
    dose_evaluate(dose_id=overridden.pk, now=NOW)
    override(overridden, oncologist, reason="78 accepted after review")
    assert Override.objects.filter(dose=overridden, lapsed_at__isnull=True).count() == 1
    give(overridden, nurse_a)


def test_inv_ovr_the_api_shows_what_the_override_covered(api, overridden, oncologist):
    detail = api.as_user(oncologist).get(f"/api/v1/doses/{overridden.pk}/").json()
    [shown] = detail["overrides"]
    assert shown["covers"][0]["rule"] == "CV-SBP" and shown["covers"][0]["value"] == "85 mmHg"
    assert shown["lapsed_at"] is None and shown["reason"] == "SBP 85 is her baseline"


# --- INV-STOP: the recommending slot is never given -----------------------------------------------------------------


def test_inv_stop_the_recommending_slot_is_never_given_even_after_continue(ready, patient_a, nurse_a, oncologist):
    course = ready()
    dose = first_dose(course)
    chart(patient_a, nurse_a, vitals={"heart_rate": 135})  # CV-HR stop
    dose_evaluate(dose_id=dose.pk, now=NOW)
    cycle_decide(
        dose_id=dose.pk, choice="continue", reason="rate controlled", password=PASSWORD, by=oncologist, now=NOW
    )
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=1), skip=("labs", "fluids", "weight"))  # normal again
    assert refused(dose, nurse_a) == "stop_criteria_met"


def test_inv_stop_nearest_allowed_the_next_slot_is_evaluated_afresh(ready, patient_a, nurse_a, oncologist):
    course = ready()
    dose = first_dose(course)
    chart(patient_a, nurse_a, vitals={"heart_rate": 135})
    dose_evaluate(dose_id=dose.pk, now=NOW)
    cycle_decide(
        dose_id=dose.pk, choice="continue", reason="rate controlled", password=PASSWORD, by=oncologist, now=NOW
    )
    second = Dose.objects.get(course=course, cycle=1, number=2)
    later = second.due_at - timedelta(minutes=5)
    chart(patient_a, nurse_a, at=later - timedelta(minutes=10), now=later)
    assert give(second, nurse_a, started_at=later, now=later).evaluation.decision == "give"


# --- INV-DISC: discontinue blocks the rest of the course ------------------------------------------------------------


@pytest.fixture
def discontinued(ready, patient_a, nurse_a):
    """Sustained VT recorded, evaluated (discontinue), then marked resolved; the patient's data normal again."""
    course = ready()
    event = event_record(
        patient=patient_a, kind="sustained_vt", recorded_at=NOW - timedelta(minutes=20), by=nurse_a, now=NOW
    )
    dose_evaluate(dose_id=first_dose(course).pk, now=NOW)
    event_resolve(event=event, by=nurse_a, now=NOW)
    chart(patient_a, nurse_a)
    course.refresh_from_db()
    return course


def test_inv_disc_a_resolved_sustained_vt_still_blocks_this_and_every_later_slot(discontinued, patient_a, nurse_a):
    assert discontinued.discontinued_at == NOW and discontinued.discontinued_by.decision == "discontinue"
    assert refused(first_dose(discontinued), nurse_a) == "course_discontinued"
    second = Dose.objects.get(course=discontinued, cycle=1, number=2)
    later = second.due_at
    chart(patient_a, nurse_a, at=later - timedelta(minutes=10), now=later)
    assert refused(second, nurse_a, started_at=later, now=later) == "course_discontinued"
    cycle2 = Dose.objects.get(course=discontinued, cycle=2, number=1)
    chart(patient_a, nurse_a, at=cycle2.due_at - timedelta(minutes=10), now=cycle2.due_at)
    assert refused(cycle2, nurse_a, started_at=cycle2.due_at, now=cycle2.due_at) == "course_discontinued"


def test_inv_disc_notifications_say_the_oncologist_is_to_stop_the_course(discontinued, client, oncologist):
    from il2ward.channels import message_for

    raised = notifications("stop_recommended")
    assert raised and {n.details["decision"] for n in raised} == {"discontinue"}
    assert message_for(raised[0]).subject.startswith("[IL2Ward] Discontinue: oncologist to stop the course | ")
    client.force_login(oncologist)
    assert "Discontinue: oncologist to stop the course" in client.get("/notifications/").content.decode()


def test_inv_disc_nearest_allowed_a_stop_says_stop_recommended(ready, patient_a, nurse_a):
    from il2ward.channels import message_for

    course = ready()
    chart(patient_a, nurse_a, vitals={"heart_rate": 135})  # CV-HR stop, not a permanent discontinuation
    dose_evaluate(dose_id=first_dose(course).pk, now=NOW)
    raised = notifications("stop_recommended")
    assert raised and message_for(raised[0]).subject.startswith("[IL2Ward] Stop recommended | ")


def test_inv_disc_nearest_allowed_a_resolved_hold_event_does_not_block(ready, patient_a, nurse_a):
    course = ready()
    event = event_record(
        patient=patient_a, kind="heme_positive", recorded_at=NOW - timedelta(minutes=20), by=nurse_a, now=NOW
    )
    dose_evaluate(dose_id=first_dose(course).pk, now=NOW)
    event_resolve(event=event, by=nurse_a, now=NOW)
    chart(patient_a, nurse_a)
    give(first_dose(course), nurse_a)


def test_inv_disc_neither_an_override_nor_continue_lifts_it(discontinued, oncologist):
    dose = first_dose(discontinued)
    with pytest.raises(Conflict) as caught:
        override(dose, oncologist)
    assert caught.value.code == "course_discontinued"
    assert not Override.objects.exists()


def test_inv_disc_the_oncologists_stop_cancels_the_open_slots(discontinued, oncologist):
    course_stop(course_id=discontinued.pk, reason="sustained VT", password=PASSWORD, by=oncologist, now=NOW)
    assert set(Dose.objects.filter(course=discontinued).values_list("status", flat=True)) == {"cancelled"}
    assert Course.objects.get(pk=discontinued.pk).status == "stopped"


def test_inv_disc_a_bar_event_recorded_and_resolved_between_evaluations_still_discontinues(ready, patient_a, nurse_a):
    course = ready()
    event = event_record(
        patient=patient_a, kind="seizures", recorded_at=NOW - timedelta(minutes=20), by=nurse_a, now=NOW
    )
    event_resolve(event=event, by=nurse_a, now=NOW)  # never evaluated while active
    chart(patient_a, nurse_a)
    assert refused(first_dose(course), nurse_a) == "course_discontinued"
    assert ClinicalEvent.objects.get(pk=event.pk).resolved_at == NOW


# --- INV-CONFLICT: two readings at the same clinical time -----------------------------------------------------------


@pytest.mark.parametrize("order", [(85, 120), (120, 85)], ids=["low first", "low last"])
def test_inv_conflict_the_most_restrictive_reading_counts_whichever_was_typed_last(ready, patient_a, nurse_a, order):
    dose = first_dose(ready())
    chart(patient_a, nurse_a)
    at = NOW - timedelta(minutes=3)
    for sbp in order:
        chart(patient_a, nurse_a, at=at, skip=("labs", "fluids", "weight", "neuro", "exam"), vitals={"sbp": sbp})
    assert refused(dose, nurse_a) == "hold_criteria_met"
    findings = DoseEvaluation.objects.filter(dose=dose).latest("pk").findings
    assert {f["rule"] for f in findings} >= {"CV-SBP", "INV-CONFLICT"}


def test_inv_conflict_nearest_allowed_two_normal_readings_give_and_say_they_conflict(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    chart(patient_a, nurse_a)
    at = NOW - timedelta(minutes=3)
    for sbp in (120, 121):
        chart(patient_a, nurse_a, at=at, skip=("labs", "fluids", "weight", "neuro", "exam"), vitals={"sbp": sbp})
    adm = give(dose, nurse_a)
    assert [f["rule"] for f in adm.evaluation.findings] == ["INV-CONFLICT"]


# --- INV-EXPLICIT: an answer left out is missing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "left_out",
    [
        {"vitals": {"rhythm": None}},
        {"vitals": {"o2_lpm": None}},
        {"vitals": {"phenylephrine_mcg_kg_min": None}},
        {"vitals": {"other_pressor": None}},
        {"neuro": {"neuro_check_failed": None}},
        {"neuro": {"hallucinations": None}},
    ],
    ids=lambda c: ".".join(f"{k}.{next(iter(v))}" for k, v in c.items()),
)
def test_inv_explicit_an_input_left_out_is_missing_never_normal(ready, patient_a, nurse_a, left_out):
    dose = first_dose(ready())
    chart(patient_a, nurse_a, **left_out)
    assert refused(dose, nurse_a) == "assessment_incomplete"


def test_inv_explicit_no_bedside_exam_is_missing(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    chart(patient_a, nurse_a, skip=("exam",))
    assert refused(dose, nurse_a) == "assessment_incomplete"


def test_inv_explicit_nearest_allowed_every_answer_charted_as_none(ready, patient_a, nurse_a):
    dose = first_dose(ready())
    chart(patient_a, nurse_a, vitals={"o2_lpm": 0, "phenylephrine_mcg_kg_min": 0, "other_pressor": "none"})
    give(dose, nurse_a)


# --- The property: never `given` unless the as-of-start evaluation allows it ----------------------------------------


def test_override_covers_is_exactly_the_same_rules_at_no_worse_values():
    covers = [{"rule": "CV-SBP", "value": "85 mmHg", "measure": "85", "worse": "lower"}]
    hold = {"rule": "CV-SBP", "level": "hold", "value": "85 mmHg", "measure": "85", "worse": "lower"}
    assert override_covers(covers, [hold])
    assert override_covers(covers, [hold | {"value": "86 mmHg", "measure": "86"}])
    assert not override_covers(covers, [hold | {"value": "84 mmHg", "measure": "84"}])
    assert not override_covers(covers, [hold, {"rule": "NE-RASS", "level": "hold", "value": "-2"}])
    assert not override_covers(covers, [hold, {"rule": "CV-HR", "level": "stop", "value": "135 /min"}])
    assert override_covers(covers, [hold, {"rule": "RS-RR", "level": "notify", "value": "31 /min"}])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sbp_before=st.integers(70, 130),
    sbp_after=st.one_of(st.none(), st.integers(70, 130)),
    data_minutes_before_start=st.sampled_from([1, 30, 59, 60, 61, 90]),
    signed=st.booleans(),
    sbp_after_override=st.one_of(st.none(), st.integers(70, 130)),
    start_minutes=st.integers(-25, 0),
)
def test_property_the_service_never_records_given_unless_the_start_evaluation_allows_it(
    ready,
    patient_a,
    nurse_a,
    oncologist,
    sbp_before,
    sbp_after,
    data_minutes_before_start,
    signed,
    sbp_after_override,
    start_minutes,
):
    from django.db import transaction

    sid = transaction.savepoint()
    try:
        course = ready()
        dose = first_dose(course)
        started = NOW + timedelta(minutes=start_minutes)
        chart(
            patient_a,
            nurse_a,
            at=started - timedelta(minutes=data_minutes_before_start),
            vitals={"sbp": sbp_before, "dbp": 50},
        )
        if sbp_after is not None:  # a post-dose reading charted before the administration is
            chart(patient_a, nurse_a, at=started + timedelta(minutes=4), skip=("labs", "fluids", "weight"),
                  vitals={"sbp": sbp_after, "dbp": 50})  # fmt: skip
        if signed:
            try:
                override(dose, oncologist)
            except Conflict:
                pass
        if sbp_after_override is not None:
            chart(patient_a, nurse_a, at=started - timedelta(minutes=1), skip=("labs", "fluids", "weight"),
                  vitals={"sbp": sbp_after_override, "dbp": 50})  # fmt: skip
        try:
            adm = give(dose, nurse_a, started_at=started)
        except Conflict:
            assert not Administration.objects.filter(dose=dose).exists()
            return
        evaluation = adm.evaluation
        assert evaluation.as_of == started and not evaluation.missing
        if evaluation.decision != "give":
            assert evaluation.decision == "hold"
            standing = Override.objects.filter(dose=dose, lapsed_at__isnull=True)
            assert any(override_covers(o.covers, evaluation.findings) for o in standing)
        latest_at_start = sbp_before
        if sbp_after_override is not None:  # charted 1 min before the start; at the same minute, the lower counts
            same_time = data_minutes_before_start == 1
            latest_at_start = min(sbp_before, sbp_after_override) if same_time else sbp_after_override
        assert latest_at_start >= 90 or evaluation.decision == "hold"
    finally:
        transaction.savepoint_rollback(sid)


# --- INV-PLAUSIBLE: a course's dosing weight against the measured weight --------------------------------------------


@pytest.fixture
def weighed(patient_a, nurse_a):
    from monitoring.services import weight_record

    weight_record(patient=patient_a, recorded_at=NOW - timedelta(days=1), weight_kg=80, by=nurse_a, now=NOW)


def new_course(api, oncologist, patient, weight, **extra):
    body = {"patient": patient.pk, "first_dose_at": "2027-03-12T16:00:00Z", "dosing_weight_kg": weight, **extra}
    return api.as_user(oncologist).post("/api/v1/courses/", body, format="json")


def test_inv_plausible_176_for_an_80_kg_patient_is_refused_nothing_stored(api, weighed, oncologist, patient_a):
    response = new_course(api, oncologist, patient_a, "176")
    assert response.status_code == 400 and "dosing_weight_kg" in response.json()["errors"]
    assert not Course.objects.exists()
    baseline = new_course(api, oncologist, patient_a, "80", baseline_weight_kg="176")
    assert baseline.status_code == 400 and "baseline_weight_kg" in baseline.json()["errors"]
    no_reason = new_course(api, oncologist, patient_a, "176", confirm=True)
    assert no_reason.status_code == 400 and "confirm_reason" in no_reason.json()["errors"]
    assert not Course.objects.exists()


def test_inv_plausible_nearest_allowed_within_10_percent_or_confirmed(api, weighed, oncologist, patient_a):
    assert new_course(api, oncologist, patient_a, "88").status_code == 201  # exactly 10 % from 80 kg
    Course.objects.update(status="stopped")
    confirmed = new_course(api, oncologist, patient_a, "96", confirm=True, confirm_reason="re-weighed on the bed scale")
    assert confirmed.status_code == 201, confirmed.content
    assert confirmed.json()["weight_confirmed_reason"] == "re-weighed on the bed scale"
