"""FHIR in: POST /fhir/Observation and a transaction Bundle, through the same mapping and services as HL7 v2."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from inbound.models import InboundMessage
from monitoring.models import LabResult, VitalSigns
from tests.conftest import NOW

AT = (NOW - timedelta(minutes=20)).isoformat()
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def observation(ident, code, value, unit, *, category=LAB, mrn="A-0001", system="http://loinc.org", **extra):
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:lab:result", "value": ident}],
        "status": "final",
        "category": [category],
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"identifier": {"system": "urn:il2ward:fhir:mrn", "value": mrn}},
        "effectiveDateTime": AT,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        **extra,
    }


def post(api, user, path, body, **headers):
    return api.as_user(user).post(path, body, format="json", **headers)


def test_an_observation_is_stored_once_on_retry(api, nurse_a, patient_a):
    body = observation("R-1", "2160-0", 150, "umol/L")
    first = post(api, nurse_a, "/fhir/Observation", body)
    assert first.status_code == 201, first.content
    labs = LabResult.objects.get()
    assert labs.creatinine_mg_dl == Decimal("1.70")
    assert (labs.source_system, labs.source_message_id) == ("fhir:nurse_a", "urn:lab:result|R-1")
    assert first["Location"] == f"Observation/labs-{labs.pk}"
    again = post(api, nurse_a, "/fhir/Observation", body)
    assert again.status_code == 200
    assert LabResult.objects.count() == 1


def test_if_none_exist_keys_the_conditional_create(api, nurse_a, patient_a):
    body = observation("R-2", "2823-3", 4.2, "mmol/L")
    del body["identifier"]
    assert post(api, nurse_a, "/fhir/Observation", body).status_code == 400  # no identifier: a retry would store twice
    header = {"HTTP_IF_NONE_EXIST": "identifier=urn:lab:result|R-2"}
    assert post(api, nurse_a, "/fhir/Observation", body, **header).status_code == 201
    assert post(api, nurse_a, "/fhir/Observation", body, **header).status_code == 200
    assert LabResult.objects.count() == 1


REFUSALS = [
    ("unknown patient", dict(mrn="NOPE"), "Observation.subject", "unknown_patient"),
    ("unknown code", dict(code="9999-9"), "Observation.code", "unknown_code"),
    ("unit", dict(unit="g/L"), "Observation.valueQuantity.code", "unit_not_convertible"),
    ("impossible value", dict(value=95), "Observation.valueQuantity", "impossible_value"),
    (
        "future",
        dict(effectiveDateTime=(NOW + timedelta(hours=1)).isoformat()),
        "Observation.effectiveDateTime",
        "future_time",
    ),  # fmt: skip
    (
        "other category",
        dict(category={"coding": [{"system": LAB["coding"][0]["system"], "code": "imaging"}]}),
        "Observation.category",
        "unsupported_category",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("why", "change", "expression", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_operation_outcomes_naming_the_element(api, nurse_a, patient_a, why, change, expression, code):
    args = {"code": "2160-0", "value": 1.1, "unit": "mg/dL"}
    extra = {k: v for k, v in change.items() if k not in args and k != "mrn"}
    args.update({k: v for k, v in change.items() if k in args})
    body = observation("R-9", args["code"], args["value"], args["unit"], mrn=change.get("mrn", "A-0001"), **extra)
    response = post(api, nurse_a, "/fhir/Observation", body)
    assert response.status_code == 422, response.content
    issue = response.json()["issue"][0]
    assert issue["expression"] == [expression]
    assert issue["details"]["coding"][0]["code"] == code
    assert not LabResult.objects.exists()
    assert InboundMessage.objects.get().status == "refused"


def test_a_patient_on_another_ward_is_unknown_to_the_caller(api, nurse_b, patient_a):
    response = post(api, nurse_b, "/fhir/Observation", observation("R-10", "2160-0", 1.1, "mg/dL"))
    assert response.status_code == 422
    assert not LabResult.objects.exists()


def test_invalid_fhir_is_a_400_and_anonymous_is_refused(api, nurse_a, patient_a):
    body = observation("R-11", "2160-0", "one point one", "mg/dL")
    response = post(api, nurse_a, "/fhir/Observation", body)
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"
    assert APIClient().post("/fhir/Observation", body, format="json").status_code in (401, 403)


def vitals_bundle(prefix="V", sbp=118):
    codes = [("8480-6", sbp, "mm[Hg]"), ("8462-4", 70, "mm[Hg]"), ("8867-4", 80, "/min"), ("9279-1", 14, "/min"),
             ("59408-5", 98, "%"), ("8310-5", 36.8, "Cel")]  # fmt: skip
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(f"{prefix}-{n}", code, value, unit, category=VITAL),
                "request": {"method": "POST", "url": "Observation"},
            }
            for n, (code, value, unit) in enumerate(codes)
        ],
    }


def test_a_transaction_of_vital_signs_makes_one_vitals_set_and_a_retry_stores_nothing_more(api, nurse_a, patient_a):
    response = post(api, nurse_a, "/fhir/", vitals_bundle())
    assert response.status_code == 200, response.content
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created"] * 6
    vitals = VitalSigns.objects.get()
    assert (vitals.sbp, vitals.dbp, vitals.temp_c, vitals.rhythm) == (118, 70, Decimal("36.8"), "")
    again = post(api, nurse_a, "/fhir/", vitals_bundle())
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 6
    assert VitalSigns.objects.count() == 1


def test_a_transaction_is_all_or_nothing(api, nurse_a, patient_a):
    response = post(api, nurse_a, "/fhir/", vitals_bundle(prefix="W", sbp=400))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.valueQuantity"]
    assert not VitalSigns.objects.exists()
