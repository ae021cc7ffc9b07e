"""Patients over the API (API.md: Conventions, Patients and courses) and token authentication."""

import pytest

from il2ward.models import AuditEvent, Patient
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/api/v1/patients/"


def payload(**overrides) -> dict:
    return {"mrn": "A-1234", "name": "Pat New", "birth_date": "1968-04-03", "ward": "onc-a", "sex": "male", **overrides}


def stored() -> tuple[int, int]:
    return Patient.objects.count(), AuditEvent.objects.count()


def test_nurse_creates_a_patient_on_her_ward(api, nurse_a):
    response = api.as_user(nurse_a).post(URL, payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    patient = Patient.objects.get(pk=body["id"])
    assert body == {
        "id": patient.pk,
        "mrn": "A-1234",
        "name": "Pat New",
        "birth_date": "1968-04-03",
        "sex": "male",
        "ward": "onc-a",
    }
    assert patient.ward.code == "onc-a"
    assert AuditEvent.objects.filter(action="patient.create", object_id=str(patient.pk), actor=nurse_a).exists()


def test_sex_defaults_to_unknown(api, oncologist):
    body = {k: v for k, v in payload().items() if k != "sex"}
    response = api.as_user(oncologist).post(URL, body, format="json")
    assert response.status_code == 201 and response.json()["sex"] == "unknown"


def test_duplicate_mrn_is_409_and_stores_nothing(api, nurse_a, patient_a):
    before = stored()
    response = api.as_user(nurse_a).post(URL, payload(mrn=patient_a.mrn), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_mrn" and response.json()["detail"]
    assert stored() == before


def test_unknown_ward_is_400_naming_ward(api, oncologist):
    before = stored()
    response = api.as_user(oncologist).post(URL, payload(ward="onc-zz"), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["ward"]
    assert stored() == before


def test_a_ward_that_is_not_hers_is_400_naming_ward(api, nurse_b, ward_a):
    before = stored()
    response = api.as_user(nurse_b).post(URL, payload(ward="onc-a"), format="json")
    assert response.status_code == 400 and "ward" in response.json()["errors"]
    assert stored() == before


@pytest.mark.parametrize("missing", ["mrn", "name", "birth_date", "ward"])
def test_missing_field_is_400_naming_it(api, oncologist, missing):
    before = stored()
    body = {k: v for k, v in payload().items() if k != missing}
    response = api.as_user(oncologist).post(URL, body, format="json")
    assert response.status_code == 400
    assert missing in response.json()["errors"]
    assert stored() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", "03/04/1968"),
        ("birth_date", "2999-01-01"),
        ("birth_date", "1850-01-01"),
        ("sex", "x"),
        ("mrn", ""),
    ],
)
def test_bad_values_are_400_naming_the_field(api, oncologist, field, value):
    response = api.as_user(oncologist).post(URL, payload(**{field: value}), format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert not Patient.objects.exists()


def test_malformed_json_is_400_not_500(api, oncologist):
    response = api.as_user(oncologist).post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400 and "errors" in response.json()


def test_pharmacist_may_not_create_a_patient(api, pharmacist, ward_a):
    response = api.as_user(pharmacist).post(URL, payload(), format="json")
    assert response.status_code == 403
    assert not Patient.objects.exists()


def test_detail_for_a_visible_patient(api, nurse_a, patient_a):
    response = api.as_user(nurse_a).get(f"{URL}{patient_a.pk}/")
    assert response.status_code == 200
    assert response.json()["mrn"] == patient_a.mrn and response.json()["ward"] == "onc-a"


def test_nurse_of_ward_b_gets_404_for_a_ward_a_patient(api, nurse_b, patient_a):
    response = api.as_user(nurse_b).get(f"{URL}{patient_a.pk}/")
    assert response.status_code == 404
    assert patient_a.mrn not in response.content.decode()


def test_unknown_patient_is_404(api, oncologist):
    assert api.as_user(oncologist).get(f"{URL}999999/").status_code == 404


def test_list_filtered_by_ward(api, oncologist, patient_a, patient_b):
    client = api.as_user(oncologist)
    assert [p["id"] for p in client.get(URL).json()] == [patient_a.pk, patient_b.pk]
    assert [p["id"] for p in client.get(URL, {"ward": "onc-a"}).json()] == [patient_a.pk]
    assert [p["id"] for p in client.get(URL, {"ward": "onc-b"}).json()] == [patient_b.pk]
    assert client.get(URL, {"ward": "nowhere"}).json() == []


def test_nurse_lists_only_her_wards_patients(api, nurse_a, nurse_b, patient_a, patient_b):
    assert [p["id"] for p in api.as_user(nurse_a).get(URL).json()] == [patient_a.pk]
    assert api.as_user(nurse_a).get(URL, {"ward": "onc-b"}).json() == []
    assert [p["id"] for p in api.as_user(nurse_b).get(URL).json()] == [patient_b.pk]


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_401(api, patient_a, method):
    response = getattr(api, method)(URL, payload() if method == "post" else None, format="json")
    assert response.status_code == 401
    assert api.get(f"{URL}{patient_a.pk}/").status_code == 401


def test_token_auth_round_trip(api, nurse_a, patient_a):
    response = api.post("/api/v1/auth/token/", {"username": "nurse_a", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(f"{URL}{patient_a.pk}/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"username": "nurse_a", "password": "wrong-password"}, {"username": "nobody", "password": PASSWORD}, {}],
)
def test_token_with_bad_credentials_is_400(api, nurse_a, body):
    response = api.post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert "errors" in response.json() and "token" not in response.json()


def test_a_wrong_token_is_401(api, patient_a):
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api.get(f"{URL}{patient_a.pk}/").status_code == 401
