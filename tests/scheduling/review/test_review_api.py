"""API for the review's decisions (scheduling/api/review.py): the contract's shapes, roles and refusals."""

from datetime import timedelta

import pytest

from scheduling.models import AdverseEvent, CycleDecision, Dose, ResponseAssessment
from tests.conftest import NOW, PASSWORD
from tests.scheduling.review.builders import build_course, flag_next

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


def test_cycle_decision_api_stop_cancels_and_returns_the_signature(api, staff, patient_a, frozen):
    course = build_course(patient_a, staff, charted=4)
    dose = flag_next(course, staff, now=NOW, heart_rate=135)
    url = f"/api/v1/courses/{course.pk}/cycle-decisions/"
    body = {"dose": dose.pk, "choice": "stop", "reason": "HR 135", "password": PASSWORD}
    assert api.as_user(staff.nurse).post(url, body, format="json").status_code == 403
    response = api.as_user(staff.oncologist).post(url, {**body, "password": "wrong"}, format="json")
    assert response.status_code == 400 and "password" in response.json()["errors"]
    response = api.as_user(staff.oncologist).post(url, body, format="json")
    assert response.status_code == 201
    assert response.json()["signature"]["meaning"] == "Cycle stopped after a stop recommendation"
    assert Dose.objects.filter(course=course, cycle=1, status="cancelled").count() == 10
    again = api.post(url, body, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    assert CycleDecision.objects.count() == 1


def test_cycle2_api_needs_an_offset_and_nine_rest_days(api, staff, make_course, patient_a, frozen):
    course = make_course(patient_a)
    url = f"/api/v1/courses/{course.pk}/cycle2/"
    client = api.as_user(staff.oncologist)
    naive = client.post(url, {"first_at": "2027-03-29T16:00", "reason": "r", "password": PASSWORD}, format="json")
    assert naive.status_code == 400 and "first_at" in naive.json()["errors"]
    early = client.post(url, {"first_at": "2027-03-25T16:00-05:00", "reason": "r", "password": PASSWORD}, format="json")
    assert early.status_code == 400 and "SCH-CYCLE2" in early.json()["errors"]["first_at"][0]
    ok = client.post(url, {"first_at": "2027-03-29T16:00-05:00", "reason": "r", "password": PASSWORD}, format="json")
    assert ok.status_code == 200
    assert ok.json() == {
        "id": course.pk,
        "cycle2_first_at": "2027-03-29T21:00:00Z",
        "cycle2_first_local": "2027-03-29T16:00:00-05:00",
    }


def test_discharge_and_response_api(api, staff, make_course, patient_a, frozen):
    course = make_course(patient_a, first_dose_at=NOW - timedelta(days=20))
    client = api.as_user(staff.oncologist)
    early = client.post(
        f"/api/v1/courses/{course.pk}/response-assessments/",
        {"assessed_on": NOW.date().isoformat(), "response": "SD", "password": PASSWORD},
        format="json",
    )
    assert early.status_code == 409 and early.json()["code"] == "course_not_finished"
    client.post(f"/api/v1/courses/{course.pk}/stop/", {"reason": "Done", "password": PASSWORD}, format="json")
    discharge = client.post(
        f"/api/v1/courses/{course.pk}/discharge/",
        {"discharge_date": (NOW - timedelta(days=1)).date().isoformat(), "password": PASSWORD},
        format="json",
    )
    assert discharge.status_code == 200
    response = client.post(
        f"/api/v1/courses/{course.pk}/response-assessments/",
        {"assessed_on": NOW.date().isoformat(), "response": "SD", "note": "CT stable", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201 and response.json()["signature"]["printed_name"] == "Dr Olga Oncologist"
    listed = client.get(f"/api/v1/courses/{course.pk}/response-assessments/").json()
    assert [r["response"] for r in listed] == ["SD"] and ResponseAssessment.objects.count() == 1
    retreat = client.get(f"/api/v1/patients/{patient_a.pk}/retreatment/").json()
    earliest = (NOW - timedelta(days=1)).date() + timedelta(days=49)
    assert retreat["allowed"] is False and retreat["earliest_date"] == earliest.isoformat()
    later = client.get(
        f"/api/v1/patients/{patient_a.pk}/retreatment/", {"first_dose_at": f"{earliest.isoformat()}T18:00:00Z"}
    )
    assert later.json() == {"allowed": True, "earliest_date": earliest.isoformat(), "reasons": []}
    bad = client.get(f"/api/v1/patients/{patient_a.pk}/retreatment/", {"first_dose_at": "2027-05-01T10:00"})
    assert bad.status_code == 400 and "first_dose_at" in bad.json()["errors"]


def test_adverse_event_api_lists_and_records(api, staff, patient_a, nurse_b, frozen):
    course = build_course(patient_a, staff, charted=6, abnormal={4: {"sbp": 84}})
    held = Dose.objects.get(course=course, status="held")
    url = f"/api/v1/courses/{course.pk}/adverse-events/"
    body = {
        "category": "cardiovascular",
        "term": "Hypotension",
        "grade": 2,
        "onset_at": "2027-03-09T10:00:00Z",
        "held_doses": [held.pk],
    }
    assert api.as_user(nurse_b).post(url, body, format="json").status_code == 404  # not her ward
    bad = api.as_user(staff.nurse).post(url, {**body, "grade": 7}, format="json")
    assert bad.status_code == 400 and "grade" in bad.json()["errors"] and not AdverseEvent.objects.exists()
    created = api.as_user(staff.nurse).post(url, body, format="json")
    assert created.status_code == 201 and created.json()["held_doses"] == [held.pk]
    assert created.json()["onset_local"] == "2027-03-09T04:00:00-06:00"
    assert [e["term"] for e in api.get(url).json()] == ["Hypotension"]


def test_signatures_api_reports_a_change_after_signing(api, staff, patient_a, frozen):
    from scheduling.models import Course

    course = build_course(patient_a, staff, charted=2)
    client = api.as_user(staff.oncologist)
    signed = client.get(f"/api/v1/courses/{course.pk}/signatures/").json()
    assert [(s["meaning"], s["state"]) for s in signed] == [("Eligibility for high-dose IL-2 attested", "valid")]
    Course.objects.filter(pk=course.pk).update(
        eligibility_items={**course.eligibility_items, "no_organ_allograft": False}
    )
    assert client.get(f"/api/v1/courses/{course.pk}/signatures/").json()[0]["state"] == "changed"
