"""Where an interfaced value came from is shown to API clients and in the FHIR export: the API's observation fields
source_system, source_message_id and source_order (blank when charted by hand), the export's Observation.meta.source
(sender and message) and a filler order identifier (OBR-3). Validated with fhir.resources' R4B models."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from fhir.resources.R4B.bundle import Bundle

from inbound.services import message_receive
from monitoring import services as obs
from scheduling.export import fhir
from tests.conftest import NOW
from tests.inbound.messages import oru

pytestmark = pytest.mark.django_db
AT = NOW - timedelta(minutes=30)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def interfaced_and_typed(patient_a, oncologist):
    raw = oru("LAB/7 77", [("2160-0", "1.3", "mg/dL")], at=AT, order="ORD-55")  # a slash and a space: quoted in URIs
    assert message_receive(raw=raw, now=NOW).code == "AA"
    obs.labs_record(patient=patient_a, recorded_at=AT - timedelta(hours=1), creatinine_mg_dl=Decimal("1.1"),
                    by=oncologist, now=NOW)  # fmt: skip


def test_the_api_shows_the_source_of_each_observation(api, oncologist, patient_a, interfaced_and_typed):
    response = api.as_user(oncologist).get(f"/api/v1/patients/{patient_a.pk}/labs/")
    assert response.status_code == 200, response.content
    rows = response.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    interfaced, typed = sorted(rows, key=lambda r: r["recorded_at"], reverse=True)
    assert (interfaced["source_system"], interfaced["source_message_id"], interfaced["source_order"]) == (
        "LAB", "LAB/7 77", "ORD-55")  # fmt: skip
    assert (typed["source_system"], typed["source_message_id"], typed["source_order"]) == ("", "", "")


def test_the_schema_publishes_the_source_fields(api, oncologist):
    schema = api.as_user(oncologist).get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    labs = schema.json()["components"]["schemas"]["LabsOut"]
    for name in ("source_system", "source_message_id", "source_order"):
        assert labs["properties"][name]["type"] == "string", name
        assert labs["properties"][name].get("readOnly") is True, name


def test_the_fhir_export_names_the_sender_the_message_and_the_order(api, oncologist, patient_a, make_course,
                                                                     interfaced_and_typed):  # fmt: skip
    course = make_course(patient_a)
    response = api.as_user(oncologist).get(f"/api/v1/courses/{course.pk}/fhir/")
    assert response.status_code == 200, response.content
    bundle = response.json()
    Bundle.model_validate(bundle)
    creatinine = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
                  and "2160-0" in {c["code"] for c in e["resource"]["code"]["coding"]}]  # fmt: skip
    interfaced = [r for r in creatinine if "meta" in r]
    typed = [r for r in creatinine if "meta" not in r]
    assert len(interfaced) == 1 and len(typed) == 1, creatinine
    (sent,) = interfaced
    assert sent["meta"]["source"] == f"{fhir.SOURCE_SYSTEM}:LAB#LAB%2F7%2077"
    assert sent["identifier"] == [{"type": {"coding": [{"system": fhir.V2_IDENTIFIER_TYPE, "code": "FILL",
                                                        "display": "Filler Identifier"}]},
                                   "system": f"{fhir.SOURCE_SYSTEM}:LAB", "value": "ORD-55"}]  # fmt: skip
    assert "identifier" not in typed[0]
