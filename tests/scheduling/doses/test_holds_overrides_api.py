"""Holding a dose and overriding a hold (API.md: hold, override; HOLD-RULES §3 Override, SCH-3HELD).

A hold records a coded reason and the rule ids of a fresh evaluation. An oncologist's override (reason + password,
stored as an e-signature) lifts a `hold` for one slot and the rules she signed for, never a `stop`. Nurses never
override.
"""

from datetime import timedelta

import pytest

from il2ward.models import AuditEvent
from scheduling.models import Dose, Hold, Override
from scheduling.services import dose_hold
from tests.conftest import NOW, PASSWORD
from tests.scheduling.doses.conftest import chart, evaluations, first_dose, notifications, stored

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
ADMINISTER = {
    "started_at": "2027-03-10T12:05:00Z",
    "verifier": "nurse_a2",
    "verifier_password": PASSWORD,
    "verified_dose_iu": 48_000_000,
}


def post(api, user, dose, action, data=None):
    return api.as_user(user).post(f"/api/v1/doses/{dose.pk}/{action}/", data or {}, format="json")


@pytest.fixture
def low_bp(ready, patient_a, nurse_a):
    """Dose 1 with SBP 85 charted: CV-SBP holds."""
    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    return first_dose(course)


# --- Hold ------------------------------------------------------------------------------------------------------------


def test_a_nurse_holds_a_dose_with_a_coded_reason_and_the_rule_ids(api, low_bp, nurse_a):
    response = post(api, nurse_a, low_bp, "hold", {"reason": "CV-SBP", "note": "SBP 85 after fluids"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "held" and body["hold"]["reason"] == "CV-SBP" and body["hold"]["rules"] == ["CV-SBP"]
    hold = Hold.objects.get(dose=low_bp)
    assert (hold.by, hold.automatic, hold.rule_ids, hold.at) == (nurse_a, False, ["CV-SBP"], NOW)
    assert hold.evaluation.decision == "hold" and hold.evaluation.trigger == "hold"
    event = AuditEvent.objects.get(action="dose.hold", object_id=str(low_bp.pk))
    assert event.actor == nurse_a and event.new["rules"] == ["CV-SBP"] and event.reason == "SBP 85 after fluids"
    # Held is charted: it cannot be given now (SCH-NOMAKEUP: never made up either).
    refused = post(api, nurse_a, low_bp, "administer", ADMINISTER)
    assert refused.status_code == 409 and refused.json()["code"] == "already_charted"


def test_an_oncologist_may_hold_a_pharmacist_may_not(api, low_bp, oncologist, pharmacist):
    before = stored()
    assert post(api, pharmacist, low_bp, "hold", {"reason": "CV-SBP"}).status_code == 403
    assert stored() == before
    assert post(api, oncologist, low_bp, "hold", {"reason": "patient_refused"}).status_code == 200


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "x" * 65}])
def test_a_hold_without_a_coded_reason_is_400(api, low_bp, nurse_a, data):
    before, evaluated = stored(), evaluations()
    response = post(api, nurse_a, low_bp, "hold", data)
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    assert stored() == before and evaluations() == evaluated


def test_holding_a_held_dose_is_409_already_charted(api, low_bp, nurse_a):
    post(api, nurse_a, low_bp, "hold", {"reason": "CV-SBP"})
    before = stored()
    response = post(api, nurse_a, low_bp, "hold", {"reason": "CV-SBP"})
    assert response.status_code == 409 and response.json()["code"] == "already_charted"
    assert stored() == before


def test_third_hold_in_a_cycle_notifies_the_oncologist_once(ready, nurse_a, oncologist):
    """SCH-3HELD: the third held slot of a cycle writes one third_hold notification for the oncologist; the fourth
    adds none. Holds in another cycle count apart."""
    course = ready()
    doses = list(Dose.objects.filter(course=course, cycle=1).order_by("number"))
    for dose in doses[:2]:
        dose_hold(dose_id=dose.pk, reason="CV-SBP", by=nurse_a, now=NOW)
    assert notifications("third_hold") == []
    dose_hold(dose_id=doses[2].pk, reason="NE-RASS", by=nurse_a, now=NOW)
    third = notifications("third_hold")
    assert [(n.recipient, n.dose_id, n.course_id) for n in third] == [(oncologist, doses[2].pk, course.pk)]
    assert third[0].details["rule"] == "SCH-3HELD" and third[0].details["cycle"] == 1 and third[0].details["held"] == 3
    dose_hold(dose_id=doses[3].pk, reason="CV-SBP", by=nurse_a, now=NOW)
    assert len(notifications("third_hold")) == 1


# --- Override --------------------------------------------------------------------------------------------------------


def test_an_oncologist_override_lifts_the_hold_for_this_slot(api, low_bp, oncologist, nurse_a):
    response = post(api, oncologist, low_bp, "override", {"reason": "SBP 85 is her baseline", "password": PASSWORD})
    assert response.status_code == 201, response.content
    override = Override.objects.get(dose=low_bp)
    signature = override.signature
    assert (signature.signer, signature.meaning, signature.object_id) == (
        oncologist,
        "Hold overridden for one dose",
        str(low_bp.pk),
    )
    assert response.json()["signature"]["record_hash"] == signature.record_hash
    assert AuditEvent.objects.filter(action="dose.override", object_id=str(low_bp.pk), actor=oncologist).exists()
    detail = api.get(f"/api/v1/doses/{low_bp.pk}/").json()
    assert [o["id"] for o in detail["overrides"]] == [override.pk]
    assert detail["overrides"][0]["signature"]["printed_name"] == "Dr Olga Oncologist"
    # Still a hold decision, but overridden: the nurse may give it.
    given = post(api, nurse_a, low_bp, "administer", ADMINISTER)
    assert given.status_code == 201, given.content
    assert given.json()["administration"]["id"]


def test_an_override_covers_the_rules_it_was_signed_for_only(api, low_bp, oncologist, nurse_a, patient_a):
    post(api, oncologist, low_bp, "override", {"reason": "baseline BP", "password": PASSWORD})
    chart(patient_a, nurse_a, at=NOW - timedelta(minutes=2), vitals={"sbp": 85, "dbp": 50}, neuro={"rass": -2})
    refused = post(api, nurse_a, low_bp, "administer", ADMINISTER)
    assert refused.status_code == 409 and refused.json()["code"] == "hold_criteria_met"
    assert "NE-RASS" in refused.json()["detail"]


def test_a_stop_is_never_overridden(api, ready, patient_a, nurse_a, oncologist):
    course = ready()
    chart(patient_a, nurse_a, vitals={"rhythm": "af"})  # CV-RHYTHM v2: AF stops
    dose = first_dose(course)
    before = stored()
    response = post(api, oncologist, dose, "override", {"reason": "I accept the risk", "password": PASSWORD})
    assert response.status_code == 409 and response.json()["code"] == "stop_criteria_met"
    assert "CV-RHYTHM" in response.json()["detail"]
    assert stored() == before  # no override, no signature


def test_a_give_decision_has_nothing_to_override(api, ready, patient_a, nurse_a, oncologist):
    course = ready()
    chart(patient_a, nurse_a)
    response = post(api, oncologist, first_dose(course), "override", {"reason": "r", "password": PASSWORD})
    assert response.status_code == 409 and response.json()["code"] == "override_not_allowed"


def test_a_nurse_may_not_override(api, low_bp, nurse_a, charge_nurse):
    before, evaluated = stored(), evaluations()
    for user in (nurse_a, charge_nurse):
        response = post(api, user, low_bp, "override", {"reason": "r", "password": PASSWORD})
        assert response.status_code == 403
    assert stored() == before and evaluations() == evaluated


@pytest.mark.parametrize(
    ("data", "field"),
    [({"reason": "baseline", "password": "wrong"}, "password"), ({"password": PASSWORD}, "reason")],
)
def test_an_override_needs_a_reason_and_the_password_again(api, low_bp, oncologist, data, field):
    before = stored()
    response = post(api, oncologist, low_bp, "override", data)
    assert response.status_code == 400 and field in response.json()["errors"]
    assert stored() == before


def test_overriding_a_dose_that_does_not_exist_is_404(api, oncologist):
    assert api.as_user(oncologist).post("/api/v1/doses/999999/override/", {}, format="json").status_code == 404
