"""The blind double check from the second nurse's own session (scheduling.services.double_checks; API
/doses/{id}/double-checks/ and /double-checks/{id}/...): every refusal beside its nearest allowed case.

The first nurse's give leaves a pending check (audited); another nurse of the ward accepts it from her own session
with the dose she calculated, and only then is the dose charted, evaluated as of its start (HOLD-RULES §3a
INV-START) under the dose's row lock. The check lives until the dose's window closes (due + W).
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from il2ward.models import AuditEvent
from scheduling.models import Administration, Dose, DoubleCheck
from tests.conftest import NOW, PASSWORD, make_staff
from tests.scheduling.doses.conftest import FIRST, chart, first_dose, stored
from tests.workers import require_postgres

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
DOSE_IU = 48_000_000  # 80 kg × 600,000 IU/kg (SCH-DOSE)
STARTED = "2027-03-10T06:05:00-06:00"  # 12:05 UTC: 25 min before due, on time


@pytest.fixture
def charted(ready, patient_a, nurse_a, nurse_a2):
    course = ready()
    chart(patient_a, nurse_a)
    return course


def ask(api, nurse, dose, **changes):
    data = {"started_at": STARTED, "vial_lot": "L7", **changes}
    return api.as_user(nurse).post(f"/api/v1/doses/{dose.pk}/double-checks/", data, format="json")


def accept(api, nurse, check_id, dose_iu=DOSE_IU):
    return api.as_user(nurse).post(
        f"/api/v1/double-checks/{check_id}/accept/", {"verified_dose_iu": dose_iu}, format="json"
    )


def test_the_give_waits_for_a_pending_check_shown_with_the_order_and_never_the_dose(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    response = ask(api, nurse_a, dose)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["requested_by"] == "nurse_a"
    assert body["expires_at"] == "2027-03-10T13:30:00Z"  # due 12:30 + W 60 min: the dose's window
    assert body["order"] == {
        "dosing_weight_kg": "80.0",
        "dosing_weight_source": "actual",
        "iu_per_kg": 600_000,
        "vial_iu": 22_000_000,
        "reconstitution_ml": "1.2",
        "concentration_iu_per_ml": 18_000_000,
    }
    assert str(DOSE_IU) not in response.content.decode() and "dose_iu" not in body  # blind: no computed dose
    assert not Administration.objects.exists()
    assert Dose.objects.get(pk=dose.pk).status == Dose.Status.SCHEDULED
    assert AuditEvent.objects.filter(action="double_check.request", object_id=str(body["id"])).count() == 1
    # The second nurse sees it in her list; the first nurse does not (it is not hers to answer).
    assert [c["id"] for c in api.as_user(nurse_a2).get("/api/v1/double-checks/").json()] == [body["id"]]
    assert api.as_user(nurse_a).get("/api/v1/double-checks/").json() == []


def test_the_second_nurse_accepts_from_her_own_session_and_the_dose_is_charted(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    response = accept(api, nurse_a2, check_id)
    assert response.status_code == 201, response.content
    adm = Administration.objects.get(dose=dose)
    assert (adm.given_by, adm.verified_by, adm.dose_iu, adm.vial_lot) == (nurse_a, nurse_a2, DOSE_IU, "L7")
    assert adm.started_at == NOW + timedelta(minutes=5) and adm.timing == "on_time"
    assert adm.evaluation.trigger == "charting" and adm.evaluation.as_of == adm.started_at  # INV-START
    check = DoubleCheck.objects.get(pk=check_id)
    assert (check.status, check.decided_by, check.administration) == ("accepted", nurse_a2, adm)
    event = AuditEvent.objects.get(action="dose.administer", object_id=str(dose.pk))
    assert event.actor == nurse_a2 and event.new["given_by"] == nurse_a.pk and event.new["double_check"] == check_id
    assert AuditEvent.objects.filter(action="double_check.accept", object_id=str(check_id)).count() == 1
    assert (response.json()["status"], response.json()["administration"]) == ("accepted", adm.pk)
    assert response.json()["decided_by"] == "nurse_a2"


def test_the_own_session_path_hashes_no_password(api, charted, nurse_a, nurse_a2, monkeypatch):
    """The charting request itself checks no password (her session proved her identity at sign-in)."""
    from django.contrib.auth import hashers

    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    calls = []
    original = hashers.check_password
    monkeypatch.setattr(hashers, "check_password", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr("django.contrib.auth.base_user.check_password", hashers.check_password)
    assert accept(api, nurse_a2, check_id).status_code == 201
    assert calls == []


def test_the_first_nurse_may_not_accept_her_own_check_another_nurse_may(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    before = stored()
    own = accept(api, nurse_a, check_id)
    assert own.status_code == 400 and "different nurse" in own.json()["errors"]["verifier"][0]
    assert stored() == before
    assert accept(api, nurse_a2, check_id).status_code == 201


def test_a_charge_nurse_of_the_ward_may_accept(api, charted, nurse_a, charge_nurse):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert accept(api, charge_nurse, check_id).status_code == 201


def test_another_wards_nurse_does_not_see_it_and_a_nurse_of_both_wards_may_accept(
    api, charted, nurse_a, nurse_b, ward_a, ward_b
):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert accept(api, nurse_b, check_id).status_code == 404
    assert api.as_user(nurse_b).get(f"/api/v1/double-checks/{check_id}/").status_code == 404
    both = make_staff("nurse_ab", "nurse", [ward_a, ward_b])
    assert accept(api, both, check_id).status_code == 201


def test_an_oncologist_or_pharmacist_may_not_accept(api, charted, nurse_a, oncologist, pharmacist):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert accept(api, oncologist, check_id).status_code == 403
    assert accept(api, pharmacist, check_id).status_code == 403


def test_a_dose_that_does_not_match_charts_nothing_and_is_counted(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    wrong = accept(api, nurse_a2, check_id, dose_iu=4_800_000)
    assert wrong.status_code == 409 and wrong.json()["code"] == "double_check_mismatch"
    assert not Administration.objects.exists()
    check = DoubleCheck.objects.get(pk=check_id)
    assert (check.status, check.mismatches) == ("pending", 1)
    assert AuditEvent.objects.filter(action="double_check.mismatch", object_id=str(check_id)).count() == 1
    assert accept(api, nurse_a2, check_id).status_code == 201  # recalculated: it matches


def test_bad_input_is_400_naming_the_field_with_nothing_stored(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    before = stored()
    future = ask(api, nurse_a, dose, started_at="2027-03-10T12:30:00Z")
    assert future.status_code == 400 and list(future.json()["errors"]) == ["started_at"]
    assert stored() == before and not DoubleCheck.objects.exists()
    check_id = ask(api, nurse_a, dose).json()["id"]
    before = stored()
    empty = api.as_user(nurse_a2).post(f"/api/v1/double-checks/{check_id}/accept/", {}, format="json")
    assert empty.status_code == 400 and list(empty.json()["errors"]) == ["verified_dose_iu"]
    assert stored() == before


def test_the_request_is_refused_as_the_give_would_be(api, ready, patient_a, nurse_a):
    """INV-START at the request too: an SBP of 85 at the start holds, so no check is even asked for."""
    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85})
    response = ask(api, nurse_a, first_dose(course))
    assert response.status_code == 409 and response.json()["code"] == "hold_criteria_met"
    assert not DoubleCheck.objects.exists()


def test_data_charted_after_the_request_that_holds_refuses_the_accept(api, charted, patient_a, nurse_a, nurse_a2):
    """The accept re-evaluates as of the start under the lock: a reading timed before the start and charted after
    the request (a late entry) holds the dose; one timed after the start neither blocks nor allows it."""
    from monitoring.services import vitals_record
    from tests.charting import NORMAL_VITALS

    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose, started_at="2027-03-10T12:00:00Z").json()["id"]
    post_dose = {**NORMAL_VITALS, "sbp": 80}
    vitals_record(patient=patient_a, recorded_at=NOW + timedelta(minutes=3), by=nurse_a, now=NOW, **post_dose)
    other = DoubleCheck.objects.get(pk=check_id)
    assert other.status == "pending"
    vitals_record(patient=patient_a, recorded_at=NOW - timedelta(minutes=1), by=nurse_a, now=NOW, **post_dose)
    refused = accept(api, nurse_a2, check_id)
    assert refused.status_code == 409 and refused.json()["code"] == "hold_criteria_met"
    assert not Administration.objects.exists()


def test_a_post_dose_reading_does_not_block_the_accept(api, charted, patient_a, nurse_a, nurse_a2):
    from monitoring.services import vitals_record
    from tests.charting import NORMAL_VITALS

    check_id = ask(api, nurse_a, first_dose(charted), started_at="2027-03-10T12:00:00Z").json()["id"]
    vitals_record(
        patient=patient_a, recorded_at=NOW + timedelta(minutes=3), by=nurse_a, now=NOW, **{**NORMAL_VITALS, "sbp": 80}
    )
    assert accept(api, nurse_a2, check_id).status_code == 201


def test_one_pending_check_per_dose(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    assert ask(api, nurse_a, dose).status_code == 201
    again = ask(api, nurse_a2, dose)
    assert again.status_code == 409 and again.json()["code"] == "double_check_pending"


def test_the_check_expires_with_the_dose_window(api, charted, nurse_a, nurse_a2, frozen):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    frozen.move_to(FIRST + timedelta(minutes=60))  # due + W exactly: still open
    assert api.as_user(nurse_a2).get("/api/v1/double-checks/").json()[0]["id"] == check_id
    frozen.move_to(FIRST + timedelta(minutes=60, seconds=1))
    late = accept(api, nurse_a2, check_id)
    assert late.status_code == 409 and late.json()["code"] == "double_check_expired"
    assert api.as_user(nurse_a2).get(f"/api/v1/double-checks/{check_id}/").json()["status"] == "expired"
    assert api.as_user(nurse_a2).get("/api/v1/double-checks/").json() == []
    assert not Administration.objects.exists()


def test_the_second_nurse_refuses_with_a_reason_audited(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    url = f"/api/v1/double-checks/{check_id}/refuse/"
    no_reason = api.as_user(nurse_a2).post(url, {"reason": " "}, format="json")
    assert no_reason.status_code == 400 and list(no_reason.json()["errors"]) == ["reason"]
    by_herself = api.as_user(nurse_a).post(url, {"reason": "changed my mind"}, format="json")
    assert by_herself.status_code == 400 and list(by_herself.json()["errors"]) == ["verifier"]
    refused = api.as_user(nurse_a2).post(url, {"reason": "wrong bag label"}, format="json")
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert refused.json()["refused_reason"] == "wrong bag label"
    event = AuditEvent.objects.get(action="double_check.refuse", object_id=str(check_id))
    assert event.actor == nurse_a2 and event.reason == "wrong bag label"
    late = accept(api, nurse_a2, check_id)
    assert late.status_code == 409 and late.json()["code"] == "double_check_closed"
    assert Dose.objects.get(pk=dose.pk).status == Dose.Status.SCHEDULED
    assert ask(api, nurse_a, dose).status_code == 201  # she may ask again


def test_the_first_nurse_withdraws_her_check_nobody_else_may(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    url = f"/api/v1/double-checks/{check_id}/cancel/"
    assert api.as_user(nurse_a2).post(url, format="json").status_code == 400
    response = api.as_user(nurse_a).post(url, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="double_check.cancel", object_id=str(check_id)).count() == 1
    again = api.as_user(nurse_a).post(url, format="json")
    assert again.status_code == 409 and again.json()["code"] == "double_check_closed"


def test_a_co_signed_give_closes_the_pending_check(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    cosign = {"started_at": STARTED, "verifier": "nurse_a2", "verifier_password": PASSWORD, "verified_dose_iu": DOSE_IU}
    assert api.as_user(nurse_a).post(f"/api/v1/doses/{dose.pk}/administer/", cosign, format="json").status_code == 201
    assert DoubleCheck.objects.get(pk=check_id).status == "cancelled"
    closed = accept(api, nurse_a2, check_id)
    assert closed.status_code == 409 and closed.json()["code"] == "double_check_closed"
    assert Administration.objects.filter(dose=dose).count() == 1


def test_a_hold_cancels_the_pending_check(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    held = api.as_user(nurse_a).post(f"/api/v1/doses/{dose.pk}/hold/", {"reason": "patient_declined"}, format="json")
    assert held.status_code == 200
    assert DoubleCheck.objects.get(pk=check_id).status == "cancelled"


def test_a_site_may_keep_only_one_way(api, charted, nurse_a, nurse_a2, settings):
    dose = first_dose(charted)
    settings.IL2WARD_DOUBLE_CHECK = "password"
    refused = ask(api, nurse_a, dose)
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["verifier"]
    settings.IL2WARD_DOUBLE_CHECK = "session"
    cosign = {"started_at": STARTED, "verifier": "nurse_a2", "verifier_password": PASSWORD, "verified_dose_iu": DOSE_IU}
    refused = api.as_user(nurse_a).post(f"/api/v1/doses/{dose.pk}/administer/", cosign, format="json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["verifier"]
    assert ask(api, nurse_a, dose).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_nurses_accepting_at_once_chart_one_administration(transactional_db, charted, nurse_a, nurse_a2, api):
    """Both accepts really overlap (a thread and a connection each); the dose row lock serialises them: one 201, the
    other finds the check closed."""
    require_postgres()
    from rest_framework.test import APIClient

    from il2ward.models import ApiToken

    charge = make_staff("charge_x", "charge_nurse", list(nurse_a.profile.wards.all()))
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    barrier = threading.Barrier(2)
    results: list = []
    tokens = {user.pk: ApiToken.objects.create(user=user, client="test")[1] for user in (nurse_a2, charge)}

    def post(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.pk]}")
        try:
            barrier.wait(timeout=10)
            response = client.post(
                f"/api/v1/double-checks/{check_id}/accept/", {"verified_dose_iu": DOSE_IU}, format="json"
            )
            results.append((response.status_code, response.json().get("code")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(user,)) for user in (nurse_a2, charge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [(201, None), (409, "double_check_closed")]
    assert Administration.objects.filter(dose=dose).count() == 1
    assert AuditEvent.objects.filter(action="dose.administer", object_id=str(dose.pk)).count() == 1


ACCEPT_QUERIES = 25  # token and roles; the check (visibility); the dose locked through it, the check; ward; evaluation
# as of the start (snapshot reads, insert); stop history; administration, dose, check; the dose's work and the check's
# bell resolved (its rows, their deliveries); one audit append for the resolution, the give and the accept, last.
# An audit append is two statements on either database: PostgreSQL sends the chain's lock with the head's read.


def test_the_accept_runs_a_pinned_number_of_queries(api, charted, nurse_a, nurse_a2, django_assert_num_queries):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    client = api.as_user(nurse_a2)
    with django_assert_num_queries(ACCEPT_QUERIES):
        response = client.post(
            f"/api/v1/double-checks/{check_id}/accept/", {"verified_dose_iu": DOSE_IU}, format="json"
        )
    assert response.status_code == 201
