"""Courses over the API (API.md: Patients and courses): create, refusals that store nothing, the dose list."""

import pytest

from il2ward.models import AuditEvent
from scheduling.models import Course, Dose

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]
URL = "/api/v1/courses/"


def payload(patient, **overrides) -> dict:
    return {"patient": patient.pk, "first_dose_at": "2027-03-12T16:00:00-06:00", "dosing_weight_kg": "80", **overrides}


def stored() -> tuple[int, int, int]:
    return Course.objects.count(), Dose.objects.count(), AuditEvent.objects.count()


def test_oncologist_creates_a_course_in_status_scheduling(api, oncologist, patient_a):
    response = api.as_user(oncologist).post(URL, payload(patient_a), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    course = Course.objects.get(pk=body["id"])
    assert body["status"] == "scheduling" == course.status
    assert body["patient"] == patient_a.pk
    assert body["dose_iu"] == 48_000_000 == course.dose_iu
    assert body["dosing_weight_kg"] == "80.0"
    assert body["first_dose_at"] == "2027-03-12T22:00:00Z"
    assert body["first_dose_local"] == "2027-03-12T16:00:00-06:00"
    prep = body["preparation"]
    assert (prep["volume_ml"], prep["vials"], prep["diluent_ml"]) == ("2.67", 3, 50)
    assert body["eligibility"]["attested"] is False
    assert body["cycles"] == [] and sum(body["counts"].values()) == 0  # the slots come from the task
    assert course.oncologist == oncologist and course.baseline_weight_kg == course.dosing_weight_kg
    assert AuditEvent.objects.filter(action="course.create", object_id=str(course.pk), actor=oncologist).exists()


def test_the_course_is_readable_by_a_nurse_of_its_ward_only(api, oncologist, nurse_a, nurse_b, patient_a):
    course_id = api.as_user(oncologist).post(URL, payload(patient_a), format="json").json()["id"]
    assert api.as_user(nurse_a).get(f"{URL}{course_id}/").json()["id"] == course_id
    assert api.as_user(nurse_b).get(f"{URL}{course_id}/").status_code == 404


def test_a_nurse_may_not_create_a_course(api, nurse_a, patient_a):
    before = stored()
    response = api.as_user(nurse_a).post(URL, payload(patient_a), format="json")
    assert response.status_code == 403
    assert stored() == before


def test_anonymous_is_401(api, patient_a):
    before = stored()
    assert api.post(URL, payload(patient_a), format="json").status_code == 401
    assert stored() == before


@pytest.mark.parametrize("first_dose_at", ["2027-03-12T16:00:00", "2027-03-12T16:00", "2027-03-12", "soon", 1234])
def test_a_first_dose_without_an_offset_is_400_naming_the_field(api, oncologist, patient_a, first_dose_at):
    before = stored()
    response = api.as_user(oncologist).post(URL, payload(patient_a, first_dose_at=first_dose_at), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["first_dose_at"]
    assert stored() == before


@pytest.mark.parametrize("weight", ["19.9", "350.1", "0", "-80", "eighty"])
def test_an_impossible_weight_is_400_naming_dosing_weight_kg(api, oncologist, patient_a, weight):
    before = stored()
    response = api.as_user(oncologist).post(URL, payload(patient_a, dosing_weight_kg=weight), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["dosing_weight_kg"]
    assert stored() == before


@pytest.mark.parametrize(("weight", "dose_iu"), [("20", 12_000_000), ("350", 210_000_000), ("42.3", 25_380_000)])
def test_weights_at_the_limits_are_accepted(api, oncologist, patient_a, weight, dose_iu):
    response = api.as_user(oncologist).post(URL, payload(patient_a, dosing_weight_kg=weight), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["dose_iu"] == dose_iu


def test_an_impossible_baseline_weight_is_400_naming_it(api, oncologist, patient_a):
    before = stored()
    response = api.as_user(oncologist).post(URL, payload(patient_a, baseline_weight_kg="400"), format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["baseline_weight_kg"]
    assert stored() == before


@pytest.mark.parametrize("patient", [999_999, "abc", None])
def test_an_unknown_patient_is_400_naming_patient(api, oncologist, patient_a, patient):
    before = stored()
    response = api.as_user(oncologist).post(URL, {**payload(patient_a), "patient": patient}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["patient"]
    assert stored() == before


def test_a_second_open_course_is_409_active_course_exists(api, oncologist, patient_a):
    client = api.as_user(oncologist)
    assert client.post(URL, payload(patient_a), format="json").status_code == 201
    before = stored()
    response = client.post(URL, payload(patient_a, first_dose_at="2027-05-01T16:00:00-05:00"), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "active_course_exists" and response.json()["detail"]
    assert stored() == before


def test_course_doses_lists_28_slots_in_ward_time(api, nurse_a, make_course, patient_a):
    course = make_course(patient_a)
    response = api.as_user(nurse_a).get(f"{URL}{course.pk}/doses/")
    assert response.status_code == 200
    doses = response.json()
    assert len(doses) == 28
    assert [(d["cycle"], d["number"]) for d in doses] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert {d["status"] for d in doses} == {"scheduled"} and {d["course"] for d in doses} == {course.pk}
    assert (doses[0]["due_at"], doses[0]["due_local"]) == ("2027-03-12T22:00:00Z", "2027-03-12T16:00:00-06:00")
    assert (doses[5]["due_at"], doses[5]["due_local"]) == ("2027-03-14T14:00:00Z", "2027-03-14T09:00:00-05:00")
    assert (doses[14]["due_at"], doses[14]["due_local"]) == ("2027-03-26T21:00:00Z", "2027-03-26T16:00:00-05:00")
    assert doses[0]["evaluation"] is None and doses[0]["administration"] is None


def test_course_doses_of_a_berlin_ward_are_in_berlin_time(api, oncologist, make_course, patient_b):
    course = make_course(patient_b)  # the same instant, on a Europe/Berlin ward
    doses = api.as_user(oncologist).get(f"{URL}{course.pk}/doses/").json()
    assert doses[0]["due_local"] == "2027-03-12T23:00:00+01:00"


def test_course_doses_are_404_for_a_nurse_of_another_ward(api, nurse_b, make_course, patient_a):
    course = make_course(patient_a)
    response = api.as_user(nurse_b).get(f"{URL}{course.pk}/doses/")
    assert response.status_code == 404
    assert "due_at" not in response.content.decode()


def test_course_detail_after_scheduling_has_cycles_and_counts(api, nurse_a, make_course, patient_a):
    course = make_course(patient_a)
    body = api.as_user(nurse_a).get(f"{URL}{course.pk}/").json()
    assert body["status"] == "planned"
    assert body["counts"] == {"scheduled": 28, "given": 0, "held": 0, "missed": 0, "cancelled": 0}
    assert body["cycles"] == [
        {"number": 1, "first_due_at": "2027-03-12T22:00:00Z", "last_due_at": "2027-03-17T06:00:00Z"},
        {"number": 2, "first_due_at": "2027-03-26T21:00:00Z", "last_due_at": "2027-03-31T05:00:00Z"},
    ]


def test_dose_detail_is_404_for_a_nurse_of_another_ward(api, nurse_a, nurse_b, make_course, patient_a):
    dose = make_course(patient_a).doses.order_by("cycle", "number").first()
    assert api.as_user(nurse_a).get(f"/api/v1/doses/{dose.pk}/").json()["due_local"] == "2027-03-12T16:00:00-06:00"
    assert api.as_user(nurse_b).get(f"/api/v1/doses/{dose.pk}/").status_code == 404
