"""POST /api/v1/doses/{id}/administer/ (API.md, Doses): every refusal and what it leaves stored.

A refusal (409) keeps the fresh pre-dose evaluation it was based on and writes nothing else: no administration, no
hold, no audit event. Bad input (400) names the field and stores nothing at all, not even an evaluation.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from il2ward.models import AuditEvent
from scheduling.models import Administration, Dose, DoseEvaluation
from tests.conftest import NOW, PASSWORD
from tests.scheduling.doses.conftest import chart, evaluations, first_dose, stored
from tests.workers import require_postgres

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
DOSE_IU = 48_000_000  # 80 kg (SCH-DOSE)


def url(dose, action="administer") -> str:
    return f"/api/v1/doses/{dose.pk}/{action}/"


def body(**changes) -> dict:
    data = {
        "started_at": "2027-03-10T06:05:00-06:00",  # 12:05 UTC: 25 min before due, on time
        "verifier": "nurse_a2",
        "verifier_password": PASSWORD,
        "verified_dose_iu": DOSE_IU,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def charted(ready, patient_a, nurse_a, nurse_a2):
    """An attested course with a complete, normal pre-dose assessment: dose 1 may be given."""
    course = ready()
    chart(patient_a, nurse_a)
    return course


def test_a_dose_with_a_normal_assessment_is_charted_given_with_its_double_check(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    response = api.as_user(nurse_a).post(url(dose), body(vial_lot="L123"), format="json")
    assert response.status_code == 201, response.content
    adm = Administration.objects.get(dose=dose)
    assert (adm.given_by, adm.verified_by, adm.dose_iu, adm.timing) == (nurse_a, nurse_a2, DOSE_IU, "on_time")
    assert adm.started_at == NOW + timedelta(minutes=5) and adm.charted_at == NOW
    assert adm.evaluation.decision == "give" and adm.evaluation.trigger == "charting"
    dose.refresh_from_db()
    assert dose.status == Dose.Status.GIVEN
    assert response.json()["status"] == "given" and response.json()["administration"]["id"] == adm.pk
    event = AuditEvent.objects.get(action="dose.administer", object_id=str(dose.pk))
    assert (
        event.actor == nurse_a
        and event.new["verified_by"] == nurse_a2.pk
        and event.new["evaluation"] == adm.evaluation_id
    )


# --- 409: each refusal, with nothing stored but the evaluation ------------------------------------------------------


def assert_refused(response, code: str, before: dict, evaluations_before: int, *, evaluated: bool, dose):
    assert response.status_code == 409, response.content
    assert response.json()["code"] == code
    assert stored() == before, "a refusal writes no administration, hold, override, signature or audit event"
    assert evaluations() == evaluations_before + (1 if evaluated else 0)
    if evaluated:
        assert DoseEvaluation.objects.filter(dose=dose).latest("pk").trigger == "charting"


def test_already_charted(api, charted, nurse_a):
    dose = first_dose(charted)
    assert api.as_user(nurse_a).post(url(dose), body(), format="json").status_code == 201
    before, evaluated_before = stored(), evaluations()
    response = api.post(url(dose), body(), format="json")
    assert_refused(response, "already_charted", before, evaluated_before, evaluated=False, dose=dose)
    assert Administration.objects.filter(dose=dose).count() == 1


def test_course_not_active_after_the_course_is_stopped(api, charted, nurse_a, oncologist):
    from scheduling.services import course_stop

    course_stop(course_id=charted.pk, reason="Progression", password=PASSWORD, by=oncologist, now=NOW)
    dose = first_dose(charted)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "course_not_active", before, evaluated_before, evaluated=False, dose=dose)
    dose.refresh_from_db()
    assert dose.status == Dose.Status.CANCELLED


def test_eligibility_not_attested(api, ready, patient_a, nurse_a):
    course = ready(attested=False)
    chart(patient_a, nurse_a)
    dose = first_dose(course)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "eligibility_not_attested", before, evaluated_before, evaluated=True, dose=dose)


@pytest.mark.parametrize("started_at", ["2027-03-10T11:29:00Z", "2027-03-10T11:29:59.999999Z"])
def test_outside_window(api, charted, nurse_a, started_at):
    dose = first_dose(charted)  # due 12:30 UTC, W = 60 min: chartable from 11:30
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(started_at=started_at), format="json")
    assert_refused(response, "outside_window", before, evaluated_before, evaluated=True, dose=dose)


def test_the_window_opens_at_due_minus_w_exactly(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=35))  # before the start: judged as of it (INV-START)
    response = api.as_user(nurse_a).post(
        url(first_dose(course)), body(started_at="2027-03-10T11:30:00Z", early_reason="OR slot at 11:45"), format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["administration"]["timing"] == "early"


def test_stop_criteria_met(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, labs={"platelets_k_ul": 25})  # HM-PLT: < 30 stops
    dose = first_dose(course)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "stop_criteria_met", before, evaluated_before, evaluated=True, dose=dose)
    assert "HM-PLT" in response.json()["detail"]
    dose.refresh_from_db()
    # The refusal keeps its as-of-start evaluation; the dose's flag is the evaluation as of now's to set.
    kept = DoseEvaluation.objects.filter(dose=dose).latest("pk")
    assert kept.decision == "stop" and kept.as_of == NOW + timedelta(minutes=5) and dose.status == Dose.Status.SCHEDULED


def test_hold_criteria_met(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})  # CV-SBP: < 90 holds
    dose = first_dose(course)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "hold_criteria_met", before, evaluated_before, evaluated=True, dose=dose)
    assert "CV-SBP" in response.json()["detail"]
    assert DoseEvaluation.objects.filter(dose=dose).latest("pk").decision == "hold"


def test_assessment_incomplete(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, skip=("neuro",))
    dose = first_dose(course)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "assessment_incomplete", before, evaluated_before, evaluated=True, dose=dose)
    assert "neuro" in response.json()["detail"]


def test_stale_vitals_are_incomplete_and_a_fresh_set_completes_the_assessment(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=61))  # vitals and neuro over 60 min old
    dose = first_dose(course)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert_refused(response, "assessment_incomplete", before, evaluated_before, evaluated=True, dose=dose)
    assert DoseEvaluation.objects.filter(dose=dose).latest("pk").missing == ["vitals", "neuro"]
    chart(patient_a, nurse_a, skip=("weight", "labs", "fluids"))
    assert api.post(url(dose), body(), format="json").status_code == 201


def test_preparation_expired(api, charted, nurse_a):
    dose = first_dose(charted)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(
        url(dose), body(reconstituted_at="2027-03-08T12:04:59Z"), format="json"
    )  # 48 h and 1 s before the start (12:05)
    assert_refused(response, "preparation_expired", before, evaluated_before, evaluated=True, dose=dose)


def test_a_preparation_of_exactly_48_hours_may_be_given(api, charted, nurse_a):
    response = api.as_user(nurse_a).post(
        url(first_dose(charted)), body(reconstituted_at="2027-03-08T12:05:00Z"), format="json"
    )
    assert response.status_code == 201, response.content


def test_double_check_mismatch(api, charted, nurse_a):
    dose = first_dose(charted)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(verified_dose_iu=DOSE_IU - 1), format="json")
    assert_refused(response, "double_check_mismatch", before, evaluated_before, evaluated=True, dose=dose)


# --- 400: the field named, nothing stored ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"started_at": "2027-03-10T12:05:00"}, "started_at"),  # naive
        ({"ended_at": "2027-03-10T12:20:00"}, "ended_at"),  # naive end
        ({"verifier_password": None}, "verifier_password"),  # missing
        ({"verifier_password": "wrong-password"}, "verifier_password"),
        ({"verifier": "nurse_a"}, "verifier"),  # the same person
        ({"verifier": "nurse_b"}, "verifier"),  # a nurse of another ward
        ({"verifier": "onc"}, "verifier"),  # not a nurse
        ({"verified_dose_iu": None}, "verified_dose_iu"),
        ({"started_at": "2027-03-10T12:06:00Z"}, "started_at"),  # more than 5 minutes in the future
    ],
)
def test_bad_input_is_400_naming_the_field_with_nothing_stored(
    api, charted, nurse_a, nurse_b, oncologist, changes, field
):
    dose = first_dose(charted)
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_a).post(url(dose), body(**changes), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert stored() == before and evaluations() == evaluated_before


# --- 403 / 404 ------------------------------------------------------------------------------------------------------


def test_a_pharmacist_may_not_chart_a_dose(api, charted, pharmacist):
    before, evaluated_before = stored(), evaluations()
    assert api.as_user(pharmacist).post(url(first_dose(charted)), body(), format="json").status_code == 403
    assert stored() == before and evaluations() == evaluated_before


def test_an_oncologist_may_not_chart_a_dose(api, charted, oncologist):
    assert api.as_user(oncologist).post(url(first_dose(charted)), body(), format="json").status_code == 403


@pytest.mark.parametrize("action", ["administer", "evaluate", "hold"])
def test_another_wards_dose_is_404(api, charted, nurse_b, action):
    before, evaluated_before = stored(), evaluations()
    response = api.as_user(nurse_b).post(url(first_dose(charted), action), body(reason="CV-SBP"), format="json")
    assert response.status_code == 404
    assert stored() == before and evaluations() == evaluated_before
    assert api.get(f"/api/v1/doses/{first_dose(charted).pk}/").status_code == 404


# --- Entered in error -----------------------------------------------------------------------------------------------


def test_entered_in_error_keeps_the_row_reopens_the_dose_and_both_are_in_the_audit(api, charted, nurse_a):
    dose = first_dose(charted)
    adm_id = api.as_user(nurse_a).post(url(dose), body(), format="json").json()["administration"]["id"]
    response = api.post(
        f"/api/v1/administrations/{adm_id}/entered-in-error/",
        {"reason": "Charted on the wrong patient", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 200, response.content
    adm = Administration.objects.get(pk=adm_id)
    assert adm.entered_in_error_at == NOW and adm.entered_in_error_by == nurse_a
    dose.refresh_from_db()
    assert dose.status == Dose.Status.SCHEDULED
    detail = api.get(f"/api/v1/doses/{dose.pk}/").json()
    assert detail["status"] == "scheduled" and detail["administration"] is None
    actions = list(
        AuditEvent.objects.filter(action__in=["dose.administer", "administration.entered_in_error"]).values_list(
            "action", "new"
        )
    )
    assert [a for a, _ in actions] == ["dose.administer", "administration.entered_in_error"]
    assert actions[1][1]["dose"] == dose.pk
    # The slot is open again: it can be charted (a new row; the corrected one stays).
    assert api.post(url(dose), body(), format="json").status_code == 201
    assert Administration.objects.filter(dose=dose).count() == 2


def test_entered_in_error_needs_the_password(api, charted, nurse_a):
    dose = first_dose(charted)
    adm_id = api.as_user(nurse_a).post(url(dose), body(), format="json").json()["administration"]["id"]
    before = stored()
    response = api.post(
        f"/api/v1/administrations/{adm_id}/entered-in-error/", {"reason": "wrong", "password": "nope"}, format="json"
    )
    assert response.status_code == 400 and "password" in response.json()["errors"]
    assert stored() == before
    assert Administration.objects.get(pk=adm_id).entered_in_error_at is None


# --- Two nurses at once (PostgreSQL) --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_administrations_give_one_201_and_one_409(transactional_db, charted, nurse_a, api):
    """Both requests really overlap: each thread has its own connection, released at the same moment. The dose row
    lock serialises them; the second sees the dose given."""
    require_postgres()
    from rest_framework.test import APIClient

    from il2ward.models import ApiToken

    token = ApiToken.objects.create(user=nurse_a)[1]
    dose = first_dose(charted)
    barrier = threading.Barrier(2)
    results: list = []

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post(url(dose), body(), format="json")
            results.append((response.status_code, response.json().get("code")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [(201, None), (409, "already_charted")]
    assert Administration.objects.filter(dose=dose).count() == 1
    assert AuditEvent.objects.filter(action="dose.administer", object_id=str(dose.pk)).count() == 1


def test_a_start_more_than_30_min_before_due_needs_the_reason_and_stores_it(api, ready, patient_a, nurse_a):
    course = ready()
    dose = first_dose(course)  # due 12:30 UTC
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=35))
    early = body(started_at="2027-03-10T11:59:00Z")  # 31 min before due
    refused = api.as_user(nurse_a).post(url(dose), early, format="json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["early_reason"]
    assert not Administration.objects.exists()
    given = api.as_user(nurse_a).post(url(dose), {**early, "early_reason": "theatre at 12:30"}, format="json")
    assert given.status_code == 201, given.content
    assert Administration.objects.get().early_reason == "theatre at 12:30"
    assert given.json()["administration"]["early_reason"] == "theatre at 12:30"


def test_a_start_30_min_before_due_asks_no_reason(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=35))
    response = api.as_user(nurse_a).post(
        url(first_dose(course)), body(started_at="2027-03-10T12:00:00Z"), format="json"
    )
    assert response.status_code == 201, response.content
    assert Administration.objects.get().early_reason == ""


def test_the_answer_is_the_dose_as_stored_though_it_is_not_read_again(api, charted, nurse_a):
    dose = first_dose(charted)
    api.as_user(nurse_a).post(url(dose, "evaluate"))  # the dose's latest evaluation, shown in both
    given = api.as_user(nurse_a).post(url(dose), body(), format="json")
    assert given.status_code == 201, given.content
    detail = api.as_user(nurse_a).get(f"/api/v1/doses/{dose.pk}/").json()
    assert given.json()["evaluation"] is not None and given.json()["status"] == "given"
    assert given.json() == {key: detail[key] for key in given.json()}


ADMINISTER_QUERIES = 27  # token and roles; the dose (visibility); the second nurse's lockout (two sums), user and
# roles; the dose locked with its course, patient, ward and rule set; her ward; the evaluation as of the start (seven
# snapshot reads, insert); stop history; administration, dose; pending checks; the dose's work; one audit append
# (head, row); the atomic block's savepoint and release; for the answer, the dose's latest evaluation and nothing more.


def test_the_administer_runs_a_pinned_number_of_queries(api, charted, nurse_a, django_assert_num_queries):
    client, dose = api.as_user(nurse_a), first_dose(charted)
    client.post(url(dose, "evaluate"))  # as the window's sweep does: the answer shows this latest evaluation
    with django_assert_num_queries(ADMINISTER_QUERIES):
        response = client.post(url(dose), body(), format="json")
    assert response.status_code == 201, response.content
