"""A course as a FHIR R4 Bundle (type ``collection``), HOLD-RULES.md §6.

Pure: ``build_bundle`` turns rows already loaded (``CourseRecord``, filled by records.py) into the bundle's JSON
dict; no Django, no queries, no clock (``now`` comes in). What goes in:

- Patient; a Practitioner for every staff member referenced (printed name, username as identifier).
- The course as one MedicationRequest: aldesleukin, dose in IU (SCH-DOSE), one ``dosageInstruction`` per cycle with
  ``timing.repeat`` {frequency 1, period 8, periodUnit h, count 14} bounded by the cycle's slots.
- Each charted dose as a MedicationAdministration: ``completed`` for an administration (``entered-in-error`` once
  corrected), ``not-done`` for a hold (statusReason = the rule ids) or a missed slot (reason ``missed``).
  FHIR R4 MedicationAdministration has no verifier element: the blind double check is a second ``performer`` whose
  ``function`` is ``verifier`` from http://terminology.hl7.org/CodeSystem/med-admin-perform-function (the giver has
  function ``performer``).
- Each hold's (and each override's) blocking findings as DetectedIssues implicating that MedicationAdministration,
  one per rule, with the observations the rule read as evidence and the hold / override as the mitigation. The code
  is the rule id (its coding's version: the rule set and version that fired it), HL7 v3 ActCode's detected-issue
  code for what the rule reads (LAB, COND, OBSA) and SNOMED CT's medical contraindication (as in the hold's
  statusReason: rule_codings is the one mapping); severity from the finding's level.
- Vitals, neuro checks, weights and fluids as Observations (LOINC + UCUM; category ``vital-signs`` for the §6 codes;
  RASS and the other findings without a LOINC code under a local code system), labs as ``laboratory`` Observations.
  Rows marked entered-in-error are exported with status ``entered-in-error`` (nothing clinical disappears).
- Each e-signature on the course or its doses as a Provenance (author, time, meaning, and the signed record's hash),
  and each correction (an administration, a hold or an observation marked entered in error) as a Provenance
  (activity NULLIFY) with the hash of the audit row that recorded it; signed only where the password was re-entered.

Every reference is a ``urn:uuid:`` fullUrl derived with uuid5 from the row's kind and id, so it resolves inside the
bundle and the same row gets the same id on every export.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from il2ward.fhir_base import FHIR_VERSION, MEDIA_TYPE, narrative, operation_outcome
from monitoring.domain.engine import BLOCKING_LEVELS
from monitoring.domain.rulesets import LEVELS, RULE_CATALOGUE  # LEVELS: mildest first
from monitoring.domain.snapshot import EXAM_FLAGS

__all__ = ["FHIR_VERSION", "MEDIA_TYPE", "build_bundle", "narrative", "operation_outcome"]


# Stable ids: uuid5(namespace, "<ResourceType>/<key>"). A site that merges exports of several IL2Ward servers gives each
# its own namespace.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:il2ward:fhir")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
ADMIN_CATEGORY = "http://terminology.hl7.org/CodeSystem/medication-admin-category"
REQUEST_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"

# Local systems (no standard code exists): rule ids of HOLD-RULES.md, our observation codes, our identifiers.
LOCAL = "urn:il2ward:fhir"
RULE_SYSTEM = f"{LOCAL}:rule"
LOCAL_OBS = f"{LOCAL}:observation"
NOT_DONE_SYSTEM = f"{LOCAL}:not-done-reason"
RECORD_HASH_URL = f"{LOCAL}:extension:record-hash"
AUDIT_HASH_URL = f"{LOCAL}:extension:audit-hash"  # the audit trail row that records a correction (il2ward/audit.py)
MRN_SYSTEM = f"{LOCAL}:mrn"  # the default; a site sets its own (IL2WARD_FHIR_MRN_SYSTEM)
CORRECTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"  # NULLIFY: marked entered in error
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
EVENT_SYSTEM = f"{LOCAL}:dose-event"  # one identifier per charted event of a slot (given, held, missed)
# SNOMED CT beside the local rule codes: a hold for rule findings is a medical contraindication to this dose.
HOLD_SNOMED = {"system": SNOMED, "code": "397745006", "display": "Medical contraindication"}
# HL7 v3 ActCode, the system of DetectedIssue.code's preferred value set (detectedissue-category): what kind of data
# made the therapy inappropriate. Lab rules are Lab Alerts, rules on recorded clinical events (conditions) Condition
# Alerts, and the rest (vitals, neuro checks, the bedside exam, fluids, weight) Observation Alerts.
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ISSUE_LAB = {"system": V3_ACT_CODE, "code": "LAB", "display": "Lab Alert"}
ISSUE_CONDITION = {"system": V3_ACT_CODE, "code": "COND", "display": "Condition Alert"}
ISSUE_OBSERVATION = {"system": V3_ACT_CODE, "code": "OBSA", "display": "Observation Alert"}
LAB_RULES = frozenset({"RN-CREAT", "RN-HCO3", "HM-PLT", "HP-BILI", "HP-TRANS", "LB-CREAT"})
CONDITION_RULES = frozenset({"CV-ISCHEMIA", "GI-HEME", "HP-FAIL", "SK-BULLOUS", "IN-INFECT", "LB-SEPSIS", "LB-DISCONT"})
# An oncologist's override: ActDetectedIssueManagementCode 2, "Assessed patient, therapy is appropriate".
OVERRIDE_ACTION = {"system": V3_ACT_CODE, "code": "2", "display": "Assessed Patient"}
PER_KG_IU = 600_000  # SCH-DOSE
USER_SYSTEM = f"{LOCAL}:username"
COURSE_SYSTEM = f"{LOCAL}:course"
DOSE_SYSTEM = f"{LOCAL}:dose"

ALDESLEUKIN = {
    "coding": [{"system": ATC, "code": "L03AC01", "display": "aldesleukin"}],
    "text": "aldesleukin (interleukin-2), high dose",
}
ROUTE_IV = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}], "text": "IV"}
INFUSION_MINUTES = 15  # SCH-PREP: infuse over 15 min
SLOT_HOURS = 8  # SCH-SLOTS
SLOTS_PER_CYCLE = 14

# (code, display, UCUM unit) per column. Units are UCUM codes; `10*3/uL` is ×10³/µL.
LAB_CODES = {
    "creatinine_mg_dl": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL"),
    "platelets_k_ul": ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL"),
    "bilirubin_mg_dl": ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL"),
    "bicarbonate_mmol_l": ("1963-8", "Bicarbonate [Moles/volume] in Serum or Plasma", "mmol/L"),
    "ast_u_l": ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "alt_u_l": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "albumin_g_dl": ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL"),
    "potassium_mmol_l": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L"),
    "magnesium_mg_dl": ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL"),
    "phosphate_mg_dl": ("2777-1", "Phosphate [Mass/volume] in Serum or Plasma", "mg/dL"),
    "sodium_mmol_l": ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L"),
    "hemoglobin_g_dl": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL"),
    "wbc_k_ul": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL"),
    "ck_mb_ng_ml": ("13969-1", "Creatine kinase.MB [Mass/volume] in Serum or Plasma", "ng/mL"),
}
# (exported part, column, local code, display)
NEURO_ANSWERS = (
    ("check", "neuro_check_failed", "neuro-check-failed", "Fails serial 7s or WORLD backward"),
    ("hallucinations", "hallucinations", "hallucinations", "Hallucinations"),
    ("vivid_dreams", "vivid_dreams_or_anxiety", "vivid-dreams-or-anxiety", "Vivid dreams or anxiety"),
    ("crying", "persistent_crying", "persistent-crying", "Persistent crying"),
)
LOCAL_LAB_CODES = {"troponin_ng_l": ("troponin", "Troponin (site assay)", "ng/L")}

# Which exported observation a rule reads: (observation kind, parts). Used as the DetectedIssue's evidence.
RULE_EVIDENCE = {
    "CV-SBP": ("vitals", ("bp",)),
    "CV-PRESSOR": ("vitals", ("phenylephrine",)),
    "CV-HR": ("vitals", ("hr", "temp")),
    "CV-RHYTHM": ("vitals", ("rhythm",)),
    "RS-SPO2": ("vitals", ("spo2",)),
    "RS-O2": ("vitals", ("spo2",)),
    "RS-RR": ("vitals", ("rr",)),
    "TP-TEMP": ("vitals", ("temp",)),
    "RN-UO": ("fluids", ("urine",)),
    "LB-OLIG": ("fluids", ("urine",)),
    "GI-DIARRHEA": ("fluids", ("diarrhea",)),
    "RN-CREAT": ("labs", ("creatinine_mg_dl",)),
    "LB-CREAT": ("labs", ("creatinine_mg_dl",)),
    "RN-HCO3": ("labs", ("bicarbonate_mmol_l",)),
    "HM-PLT": ("labs", ("platelets_k_ul",)),
    "HP-BILI": ("labs", ("bilirubin_mg_dl",)),
    "HP-TRANS": ("labs", ("ast_u_l", "alt_u_l")),
    "FL-WT": ("weights", ("weight",)),
    "NE-RASS": ("neuro", ("rass",)),
    "NE-CONF": ("neuro", ("confusion",)),
    "NE-CHECK": ("neuro", ("check", "hallucinations")),
}
# A finding's level → DetectedIssue.severity (http://hl7.org/fhir/detectedissue-severity).
SEVERITY = {"discontinue": "high", "stop": "high", "hold": "moderate", "notify": "low"}


@dataclass
class CourseRecord:
    """Everything one export reads, loaded up front (records.course_record). Rows are read by attribute only."""

    course: Any  # with .patient and .oncologist (and .rule_set)
    doses: list = field(default_factory=list)
    administrations: list = field(default_factory=list)  # all, entered-in-error too; with .given_by / .verified_by
    holds: list = field(default_factory=list)  # all, entered-in-error too; with .evaluation / .by
    overrides: list = field(default_factory=list)  # with .evaluation / .by
    signatures: list = field(default_factory=list)  # il2ward Signature rows on the course and its doses
    observations: dict = field(default_factory=dict)  # kind ("vitals", "neuro", "weights", "fluids", "labs") → rows
    rate_ml_h: Decimal | None = None  # SCH-PREP infusion rate of the course's dose


def build_bundle(
    record: CourseRecord, *, now: datetime, namespace: uuid.UUID = NAMESPACE, mrn_system: str = MRN_SYSTEM
) -> dict:
    return _Builder(record, namespace, mrn_system).build(now)


def summary_of(resource: dict) -> str:
    """What a reader sees first: the type, status, what it is (code/medication), when, and its value or note."""
    kind = resource["resourceType"]
    parts = [kind]
    if resource.get("status"):
        parts.append(f"({resource['status']})")
    for key in ("code", "medicationCodeableConcept"):
        if isinstance(resource.get(key), dict) and resource[key].get("text"):
            parts.append(resource[key]["text"])
            break
    for key in ("effectiveDateTime", "recorded", "authoredOn", "identifiedDateTime"):
        if key in resource:
            parts.append(f"at {resource[key]}")
            break
    if "effectivePeriod" in resource:
        parts.append(f"{resource['effectivePeriod']['start']} – {resource['effectivePeriod'].get('end', '')}")
    value = resource.get("valueQuantity")
    if value:
        parts.append(f"= {value['value']} {value['unit']}")
    for key in ("valueInteger", "valueBoolean"):
        if key in resource:
            parts.append(f"= {str(resource[key]).lower()}")
    if "valueCodeableConcept" in resource:
        parts.append(f"= {resource['valueCodeableConcept'].get('text', '')}")
    if kind == "Patient":
        parts.append(f"{resource['name'][0]['text']}, born {resource['birthDate']}")
    elif kind == "Practitioner":
        parts.append(resource["name"][0]["text"])
    if resource.get("dosage", {}).get("text"):
        parts.append(resource["dosage"]["text"])
    if resource.get("detail"):
        parts.append(resource["detail"])
    elif resource.get("note"):
        parts.append(resource["note"][0]["text"])
    if kind == "Provenance":
        parts.append(resource["activity"].get("text", ""))
    return " ".join(p for p in parts if p)


def instant(value: datetime) -> str:
    """Aware time → FHIR instant/dateTime in UTC with `Z` (a naive time is a bug, never guessed)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime in a FHIR export: {value!r}")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def number(value) -> int | float:
    """A JSON number. Decimals have at most a few digits here, so the float's shortest repr prints the same digits."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    return value


def quantity(value, unit: str, display: str | None = None) -> dict:
    return {"value": number(value), "unit": display or unit, "system": UCUM, "code": unit}


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    result = {"coding": [coding]}
    if text:
        result["text"] = text
    return result


def rule_codings(rule: str, rule_set=None) -> list[dict]:
    """The one home of a rule finding's codes, for a hold's statusReason and a DetectedIssue alike: the local rule id
    (its `version` the rule set and version that fired it), then SNOMED CT's medical contraindication."""
    local = {"system": RULE_SYSTEM, "code": rule}
    if rule_set is not None:
        local["version"] = str(rule_set)
    if rule in RULE_CATALOGUE:
        local["display"] = RULE_CATALOGUE[rule].title
    return [local, HOLD_SNOMED]


def issue_category(rule: str) -> dict:
    """The HL7 v3 ActCode detected-issue code of a rule (see LAB_RULES / CONDITION_RULES)."""
    if rule in LAB_RULES:
        return ISSUE_LAB
    return ISSUE_CONDITION if rule in CONDITION_RULES else ISSUE_OBSERVATION


def category(code: str) -> list[dict]:
    return [concept(OBS_CATEGORY, code)]


def printed_name(user) -> str:
    profile = getattr(user, "profile", None)  # a superuser may have no StaffProfile: use the account's own name
    return (profile.printed_name if profile else "") or user.get_full_name() or user.get_username()


class _Builder:
    def __init__(self, record: CourseRecord, namespace: uuid.UUID, mrn_system: str = MRN_SYSTEM):
        self.r = record
        self.mrn_system = mrn_system
        self.course = record.course
        self.patient = record.course.patient
        self.namespace = namespace
        self.entries: dict[str, dict] = {}  # fullUrl → resource, in insertion order
        self.practitioners: dict[int, dict] = {}

    # --- ids and references -------------------------------------------------------------------------------------------

    def uid(self, resource_type: str, key) -> str:
        return str(uuid.uuid5(self.namespace, f"{resource_type}/{key}"))

    def ref(self, resource_type: str, key) -> dict:
        return {"reference": f"urn:uuid:{self.uid(resource_type, key)}", "type": resource_type}

    def add(self, resource_type: str, key, resource: dict) -> dict:
        base = {"resourceType": resource_type, "id": self.uid(resource_type, key), **resource}
        resource = {"resourceType": resource_type, "id": base["id"], "text": narrative(summary_of(base)), **resource}
        self.entries[f"urn:uuid:{resource['id']}"] = resource
        return self.ref(resource_type, key)

    def has(self, reference: dict) -> bool:
        return reference["reference"] in self.entries

    def practitioner(self, user) -> dict:
        if user.pk not in self.practitioners:
            name = printed_name(user)
            self.practitioners[user.pk] = self.add(
                "Practitioner",
                user.pk,
                {
                    "identifier": [{"system": USER_SYSTEM, "value": user.get_username()}],
                    "name": [{"text": name}],
                },
            )
            self.practitioners[user.pk]["display"] = name
        return dict(self.practitioners[user.pk])

    # --- the bundle ---------------------------------------------------------------------------------------------------

    def build(self, now: datetime) -> dict:
        self.subject = self.add_patient()
        self.request = self.add_request()
        for kind, rows in self.r.observations.items():
            for row in rows:
                getattr(self, f"obs_{kind}")(row)
        self.dose_resources: dict[int, list[dict]] = {}  # dose id → its MedicationAdministration refs, oldest first
        self.add_administrations()
        self.add_signatures()
        self.add_corrections()
        return {
            "resourceType": "Bundle",
            "meta": {"tag": [{"system": LOCAL, "code": f"fhir-{FHIR_VERSION}"}]},
            "identifier": {"system": COURSE_SYSTEM, "value": f"course-{self.course.pk}"},
            "type": "collection",
            "timestamp": instant(now),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in self.entries.items()],
        }

    def add_patient(self) -> dict:
        p = self.patient
        return self.add(
            "Patient",
            p.pk,
            {
                "identifier": [
                    {
                        "use": "usual",
                        "type": concept(V2_IDENTIFIER_TYPE, "MR", "Medical record number"),
                        "system": self.mrn_system,
                        "value": p.mrn,
                    }
                ],
                "name": [{"text": p.name}],
                "gender": p.sex if p.sex in ("male", "female", "other") else "unknown",
                "birthDate": p.birth_date.isoformat(),
            },
        )

    # --- the course ---------------------------------------------------------------------------------------------------

    def add_request(self) -> dict:
        c = self.course
        status = {"completed": "completed", "stopped": "stopped"}.get(c.status, "active")
        bounds: dict[int, list[datetime]] = {}
        for dose in self.r.doses:
            bounds.setdefault(dose.cycle, []).append(dose.due_at)
        starts = {1: c.first_dose_at, 2: c.cycle2_first_at}
        dosage = []
        for cycle in sorted(set(starts) | set(bounds)):
            dues = sorted(bounds.get(cycle, []))
            period = {"start": instant(dues[0] if dues else starts[cycle])}
            if dues:
                period["end"] = instant(dues[-1])
            count = len(dues) or SLOTS_PER_CYCLE
            dosage.append(
                {
                    "sequence": cycle,
                    "text": f"Cycle {cycle}: {c.dose_iu:,} IU IV over {INFUSION_MINUTES} min every {SLOT_HOURS} h, "
                    f"{count} doses",
                    "timing": {
                        "repeat": {
                            "boundsPeriod": period,
                            "count": count,
                            "duration": INFUSION_MINUTES,
                            "durationUnit": "min",
                            "frequency": 1,
                            "period": SLOT_HOURS,
                            "periodUnit": "h",
                        }
                    },
                    "route": ROUTE_IV,
                    "doseAndRate": self.dose_and_rate(c),
                }
            )
        resource = {
            "identifier": [{"system": COURSE_SYSTEM, "value": str(c.pk)}],
            "status": status,
            "intent": "order",
            "category": [concept(REQUEST_CATEGORY, "inpatient")],
            "medicationCodeableConcept": ALDESLEUKIN,
            "subject": self.subject,
            "authoredOn": instant(c.created_at),
            "requester": self.practitioner(c.oncologist),
            "dosageInstruction": dosage,
            "note": [
                {
                    "text": f"SCH-DOSE: {c.dose_iu:,} IU = 600,000 IU/kg × {c.dosing_weight_kg} kg "
                    f"({c.dosing_weight_source} weight; baseline {c.baseline_weight_kg} kg). Regimen {c.regimen}, "
                    f"rule set {c.rule_set}. Held or missed doses are never made up (SCH-NOMAKEUP)."
                }
            ],
        }
        if status == "stopped" and c.stop_reason:
            resource["statusReason"] = {"text": c.stop_reason}
        return self.add("MedicationRequest", c.pk, resource)

    def dose_and_rate(self, c) -> list[dict]:
        """Ordered per kg (SCH-DOSE), calculated as the absolute dose for the dosing weight, infused at the SCH-PREP
        rate."""
        calculated = {
            "type": concept(DOSE_RATE_TYPE, "calculated", "Calculated"),
            "doseQuantity": quantity(c.dose_iu, "[iU]", "IU"),
        }
        if self.r.rate_ml_h is not None:
            calculated["rateQuantity"] = quantity(self.r.rate_ml_h, "mL/h")
        ordered = {
            "type": concept(DOSE_RATE_TYPE, "ordered", "Ordered"),
            "doseQuantity": quantity(PER_KG_IU, "[iU]/kg", "IU/kg"),
        }
        return [calculated, ordered]  # the absolute dose first, as before the per-kg order was added

    # --- doses --------------------------------------------------------------------------------------------------------

    def add_administrations(self) -> None:
        doses = {d.pk: d for d in self.r.doses}
        for adm in self.r.administrations:
            self.administration(doses[adm.dose_id], adm)
        overrides: dict[int, list] = {}
        for ov in self.r.overrides:
            overrides.setdefault(ov.dose_id, []).append(ov)
        for hold in self.r.holds:
            self.hold(doses[hold.dose_id], hold)
        for dose in self.r.doses:
            if dose.status == "missed":
                self.missed(dose)
            for ov in overrides.get(dose.pk, []):
                self.override(dose, ov)

    def _dose_base(self, dose, status: str, event: str) -> dict:
        # Each charted event of a slot is its own identifier ("<dose id>/hold-<id>"): a hold and a later
        # administration of the same slot are two events, never one record updated.
        return {
            "identifier": [{"system": EVENT_SYSTEM, "value": f"{dose.pk}/{event}"}],
            "status": status,
            "category": concept(ADMIN_CATEGORY, "inpatient"),
            "medicationCodeableConcept": ALDESLEUKIN,
            "subject": self.subject,
            "request": self.request,
        }

    def _remember(self, dose, reference: dict) -> dict:
        self.dose_resources.setdefault(dose.pk, []).append(reference)
        return reference

    def administration(self, dose, adm) -> dict:
        in_error = adm.entered_in_error_at is not None
        resource = self._dose_base(dose, "entered-in-error" if in_error else "completed", f"administration-{adm.pk}")
        if adm.ended_at:
            resource["effectivePeriod"] = {"start": instant(adm.started_at), "end": instant(adm.ended_at)}
        else:
            resource["effectiveDateTime"] = instant(adm.started_at)
        resource["performer"] = [
            {"function": concept(PERFORM_FUNCTION, "performer", "Performer"), "actor": self.practitioner(adm.given_by)},
            {
                "function": concept(PERFORM_FUNCTION, "verifier", "Verifier"),
                "actor": self.practitioner(adm.verified_by),
            },
        ]
        used = self.evidence_of(adm.evaluation)
        if used:
            resource["supportingInformation"] = used
        notes = [
            f"{dose_label(dose)}, due {instant(dose.due_at)}; charted {instant(adm.charted_at)}, "
            f"timing {adm.timing.replace('_', ' ')}; blind double check by a second nurse.",
        ]
        if adm.vial_lot or adm.reconstituted_at:
            reconstituted = instant(adm.reconstituted_at) if adm.reconstituted_at else "not recorded"
            notes.append(f"Vial lot {adm.vial_lot or 'not recorded'}; reconstituted {reconstituted}.")
        if in_error:
            notes.append(f"Entered in error {instant(adm.entered_in_error_at)}: {adm.entered_in_error_reason}")
        resource["note"] = [{"text": text} for text in notes]
        per_kg = round(adm.dose_iu / adm.dosing_weight_kg) if adm.dosing_weight_kg else None
        resource["dosage"] = {
            "text": f"{adm.dose_iu:,} IU ({per_kg:,} IU/kg × {adm.dosing_weight_kg} kg, "
            f"{adm.dosing_weight_source} weight)"
            + (f" at {self.r.rate_ml_h} mL/h" if self.r.rate_ml_h is not None else ""),
            "route": ROUTE_IV,
            "dose": quantity(adm.dose_iu, "[iU]", "IU"),
        }
        if self.r.rate_ml_h is not None:
            resource["dosage"]["rateQuantity"] = quantity(self.r.rate_ml_h, "mL/h")
        return self._remember(dose, self.add("MedicationAdministration", f"administration-{adm.pk}", resource))

    def hold(self, dose, hold) -> None:
        in_error = hold.entered_in_error_at is not None
        resource = self._dose_base(dose, "entered-in-error" if in_error else "not-done", f"hold-{hold.pk}")
        # The rule ids that met hold criteria; a hold with none (a nurse's own coded reason) gives that code.
        rule_set = hold.evaluation.rule_set if hold.evaluation is not None else None
        resource["statusReason"] = [
            {"coding": rule_codings(rule, rule_set), "text": f"Held: {rule}"} for rule in hold.rule_ids
        ] or [concept(NOT_DONE_SYSTEM, hold.reason, text=f"Held: {hold.reason}")]
        resource["effectiveDateTime"] = instant(dose.due_at)  # the slot that was not given
        if hold.by is not None:
            resource["performer"] = [
                {"function": concept(PERFORM_FUNCTION, "performer", "Performer"), "actor": self.practitioner(hold.by)}
            ]
        how = "recorded held by the sweep at due + W" if hold.automatic else "held"
        note = f"{dose_label(dose)}, {how} {instant(hold.at)} (reason {hold.reason}). {hold.note}".strip()
        resource["note"] = [{"text": note}]
        if in_error:
            resource["note"].append(
                {"text": f"Entered in error {instant(hold.entered_in_error_at)}: {hold.entered_in_error_reason}"}
            )
        reference = self._remember(dose, self.add("MedicationAdministration", f"hold-{hold.pk}", resource))
        if hold.evaluation is not None:
            mitigation = {
                "action": {"text": "Dose held (not given); reassess at the next slot"},
                "date": instant(hold.at),
            }
            if hold.by is not None:
                mitigation["author"] = self.practitioner(hold.by)
            findings = [f for f in hold.evaluation.findings if f["level"] in BLOCKING_LEVELS]
            self.issues(f"hold-{hold.pk}", findings, hold.evaluation, reference, mitigation, in_error=in_error)

    def missed(self, dose) -> None:
        resource = self._dose_base(dose, "not-done", "missed")
        resource["statusReason"] = [
            concept(NOT_DONE_SYSTEM, "missed", "Missed", "Missed: not charted by due + W (SCH-WINDOW)")
        ]
        resource["effectiveDateTime"] = instant(dose.due_at)
        resource["note"] = [{"text": f"{dose_label(dose)}, missed; never made up (SCH-NOMAKEUP)."}]
        self._remember(dose, self.add("MedicationAdministration", f"missed-{dose.pk}", resource))

    def override(self, dose, ov) -> None:
        """An override lifts a hold for one slot: its hold findings are issues on what was then charted."""
        targets = self.dose_resources.get(dose.pk)
        if not targets:
            return  # nothing charted for the slot yet: the override stays visible through its Provenance
        mitigation = {
            "action": {
                "coding": [OVERRIDE_ACTION],
                "text": f"Hold overridden for this dose by an oncologist (e-signed): {ov.reason}",
            },
            "date": instant(ov.at),
            "author": self.practitioner(ov.by),
        }
        findings = [f for f in ov.evaluation.findings if f["level"] == "hold"]
        self.issues(f"override-{ov.pk}", findings, ov.evaluation, targets[-1], mitigation, in_error=False)

    def issues(self, key: str, findings, evaluation, implicated: dict, mitigation: dict, *, in_error: bool) -> None:
        """One DetectedIssue per rule (its id stays `<key>-<rule>`): a rule with findings at two levels (a stop and a
        hold threshold both crossed) is one issue at the most severe level, with every finding's message."""
        by_rule: dict[str, list[dict]] = {}
        for finding in findings:
            by_rule.setdefault(finding["rule"], []).append(finding)
        for rule, found in by_rule.items():
            level = max((f["level"] for f in found), key=LEVELS.index)
            local, snomed = rule_codings(rule, evaluation.rule_set)
            evidence = {"code": [{"coding": [local]}]}
            detail = self.evidence_of(evaluation, rule)
            if detail:
                evidence["detail"] = detail
            messages = " ".join(f["message"] for f in found)
            self.add(
                "DetectedIssue",
                f"{key}-{rule}",
                {
                    "status": "entered-in-error" if in_error else "final",
                    # The rule id first (a receiver that reads one coding gets ours), then the standard codes.
                    "code": {
                        "coding": [local, issue_category(rule), snomed],
                        "text": f"{rule} {local['display']}" if "display" in local else rule,
                    },
                    "severity": SEVERITY[level],
                    "patient": self.subject,
                    "identifiedDateTime": instant(evaluation.evaluated_at),
                    "implicated": [implicated],
                    "evidence": [evidence],
                    "detail": f"{messages} Rule set {evaluation.rule_set}.",
                    "mitigation": [mitigation],
                },
            )

    def evidence_of(self, evaluation, rule: str | None = None) -> list[dict]:
        """References to the exported observations an evaluation read (only those of `rule`'s inputs, if given)."""
        if evaluation is None:
            return []
        wanted = RULE_EVIDENCE.get(rule) if rule else None
        if rule and wanted is None:
            return []
        found = []
        for source in evaluation.observations_used:
            kind, _, pk = source.partition(":")
            if wanted and kind != wanted[0]:
                continue
            parts = wanted[1] if wanted else OBSERVATION_PARTS.get(kind, ())
            for part in parts:
                reference = self.ref("Observation", f"{kind}-{pk}-{part}")
                if self.has(reference) and reference not in found:
                    found.append(reference)
        return found

    # --- signatures ---------------------------------------------------------------------------------------------------

    def add_signatures(self) -> None:
        for sig in self.r.signatures:
            if sig.object_type == "scheduling.dose":
                charted = self.dose_resources.get(int(sig.object_id))
                target = charted[-1] if charted else self.request  # e.g. an override on a slot not charted yet
            else:
                target = self.request
            signer = self.practitioner(sig.signer)
            self.add(
                "Provenance",
                f"signature-{sig.pk}",
                {
                    "target": [target],
                    "recorded": instant(sig.signed_at),
                    "activity": {"text": sig.meaning},
                    "agent": [{"type": concept(PARTICIPANT_TYPE, "author", "Author"), "who": signer}],
                    "signature": [
                        {
                            "type": [
                                {
                                    "system": SIGNATURE_TYPE,
                                    "code": "1.2.840.10065.1.12.1.1",
                                    "display": "Author's Signature",
                                }
                            ],
                            "when": instant(sig.signed_at),
                            "who": signer,
                            # An e-signature here is the password re-entered plus a SHA-256 of the signed record.
                            "extension": [{"url": RECORD_HASH_URL, "valueString": f"sha256:{sig.record_hash}"}],
                        }
                    ],
                },
            )

    def add_corrections(self) -> None:
        """A Provenance for each correction (an administration, a hold or an observation marked entered in error):
        who, when, why, targeting the corrected resource, with the hash of the audit row that recorded it."""
        for adm in self.r.administrations:
            if adm.entered_in_error_at is not None:
                target = self.ref("MedicationAdministration", f"administration-{adm.pk}")
                self.correction(f"administration-{adm.pk}", [target], adm, signed=True)
        for hold in self.r.holds:
            if hold.entered_in_error_at is not None:
                target = self.ref("MedicationAdministration", f"hold-{hold.pk}")
                self.correction(f"hold-{hold.pk}", [target], hold, signed=False)  # undone at the bedside, no password
        for kind, rows in self.r.observations.items():
            for row in rows:
                if row.entered_in_error_at is None:
                    continue
                targets = [self.ref("Observation", f"{kind}-{row.pk}-{part}") for part in OBSERVATION_PARTS[kind]]
                targets = [t for t in targets if self.has(t)]
                if targets:
                    self.correction(f"{kind}-{row.pk}", targets, row, signed=True)

    def correction(self, key: str, targets: list[dict], row, *, signed: bool) -> None:
        """`signed`: the service asked for the user's password again. An interface's account (a hospital system
        superseding a result it sent) has no usable password, so its corrections are never shown as signed."""
        by = getattr(row, "entered_in_error_by", None)
        resource = {
            "target": targets,
            "recorded": instant(row.entered_in_error_at),
            "activity": concept(CORRECTION_SYSTEM, "NULLIFY", "nullify", "Entered in error"),
            "reason": [{"text": row.entered_in_error_reason or "Entered in error"}],
            "agent": [],
        }
        audit_hash = getattr(row, "correction_hash", None)
        if audit_hash:
            # The audit row's HMAC-SHA256 (il2ward/audit.py): `verify_audit_chain` proves it unaltered in the chain.
            resource["extension"] = [{"url": AUDIT_HASH_URL, "valueString": audit_hash}]
        if by is not None:
            who = self.practitioner(by)
            resource["agent"] = [{"type": concept(PARTICIPANT_TYPE, "author", "Author"), "who": who}]
            if signed and by.has_usable_password():
                # Confirmed by the user's password re-entered: an e-signature over the audited correction.
                resource["signature"] = [
                    {
                        "type": [
                            {
                                "system": SIGNATURE_TYPE,
                                "code": "1.2.840.10065.1.12.1.1",
                                "display": "Author's Signature",
                            }
                        ],
                        "when": instant(row.entered_in_error_at),
                        "who": who,
                        **({"extension": [{"url": AUDIT_HASH_URL, "valueString": audit_hash}]} if audit_hash else {}),
                    }
                ]
        else:
            resource["agent"] = [{"type": concept(PARTICIPANT_TYPE, "author", "Author"), "who": {"display": "unknown"}}]
        self.add("Provenance", f"correction-{key}", resource)

    # --- observations -------------------------------------------------------------------------------------------------

    def observation(self, row, part: str, cat: str, code: dict, value: dict | None = None, **extra) -> None:
        """One exported Observation of `row`; `period=` (fluids) replaces the point-in-time effectiveDateTime."""
        period = extra.pop("period", None)
        effective = {"effectivePeriod": period} if period else {"effectiveDateTime": instant(row.recorded_at)}
        resource = {
            "status": "entered-in-error" if row.entered_in_error_at is not None else "final",
            "category": category(cat),
            "code": code,
            "subject": self.subject,
            **effective,
            "issued": instant(row.created_at),
            "performer": [self.practitioner(row.recorded_by)],
            **(value or {}),
            **extra,
        }
        self.add("Observation", f"{row.KIND}-{row.pk}-{part}", resource)

    def obs_vitals(self, row) -> None:
        mmhg = "mm[Hg]"
        self.observation(
            row,
            "bp",
            "vital-signs",
            loinc("85354-9", "Blood pressure panel with all children optional"),
            component=[
                {"code": loinc("8480-6", "Systolic blood pressure"), "valueQuantity": quantity(row.sbp, mmhg, "mmHg")},
                {"code": loinc("8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(row.dbp, mmhg, "mmHg")},
            ],
        )
        self.observation(
            row,
            "map",
            "vital-signs",
            loinc("8478-0", "Mean blood pressure"),
            {"valueQuantity": quantity(row.map, mmhg, "mmHg")},
        )
        self.observation(
            row, "hr", "vital-signs", loinc("8867-4", "Heart rate"), {"valueQuantity": quantity(row.heart_rate, "/min")}
        )
        self.observation(
            row,
            "rr",
            "vital-signs",
            loinc("9279-1", "Respiratory rate"),
            {"valueQuantity": quantity(row.resp_rate, "/min")},
        )
        oxygen = []
        if row.o2_lpm is not None:
            oxygen.append(
                {"code": loinc("3151-8", "Inhaled oxygen flow rate"), "valueQuantity": quantity(row.o2_lpm, "L/min")}
            )
        if row.fio2_pct is not None:
            oxygen.append(
                {"code": loinc("3150-0", "Inhaled oxygen concentration"), "valueQuantity": quantity(row.fio2_pct, "%")}
            )
        spo2 = {
            "coding": [
                {
                    "system": LOINC,
                    "code": "59408-5",
                    "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
                },
                {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
            ],
            "text": "SpO2",
        }
        self.observation(
            row,
            "spo2",
            "vital-signs",
            spo2,
            {"valueQuantity": quantity(row.spo2, "%")},
            **({"component": oxygen} if oxygen else {}),
        )
        self.observation(
            row,
            "temp",
            "vital-signs",
            loinc("8310-5", "Body temperature"),
            {"valueQuantity": quantity(row.temp_c, "Cel", "°C")},
        )
        if row.rhythm:
            self.observation(
                row,
                "rhythm",
                "exam",
                local("cardiac-rhythm", "Cardiac rhythm"),
                {"valueCodeableConcept": concept(f"{LOCAL_OBS}:rhythm", row.rhythm, text=row.get_rhythm_display())},
            )
        if row.phenylephrine_mcg_kg_min is not None:
            self.observation(
                row,
                "phenylephrine",
                "therapy",
                local("phenylephrine-rate", "Phenylephrine infusion rate at dosing"),
                {"valueQuantity": quantity(row.phenylephrine_mcg_kg_min, "ug/kg/min", "µg/kg/min")},
            )
        if row.other_pressor:
            pressor = {
                "valueCodeableConcept": concept(
                    f"{LOCAL_OBS}:vasopressor", row.other_pressor, text=row.get_other_pressor_display()
                )
            }
            rate = row.other_pressor_mcg_kg_min
            if rate is not None:
                pressor["component"] = [
                    {
                        "code": local("vasopressor-rate", "Vasopressor infusion rate"),
                        "valueQuantity": quantity(rate, "ug/kg/min", "µg/kg/min"),
                    }
                ]
            self.observation(row, "other_pressor", "therapy", local("other-vasopressor", "Other vasopressor"), pressor)

    def obs_neuro(self, row) -> None:
        self.observation(
            row, "rass", "survey", local("rass", "Richmond Agitation-Sedation Scale (RASS)"), {"valueInteger": row.rass}
        )
        self.observation(
            row,
            "confusion",
            "exam",
            local("confusion", "Confusion / agitation"),
            {
                "valueCodeableConcept": concept(
                    f"{LOCAL_OBS}:confusion", row.confusion, text=row.get_confusion_display()
                )
            },
        )
        # An answer not given is not exported: a receiver must not read it as "no".
        for part, column, code, display in NEURO_ANSWERS:
            value = getattr(row, column)
            if value is not None:
                self.observation(row, part, "exam", local(code, display), {"valueBoolean": value})

    def obs_exam(self, row) -> None:
        self.observation(
            row,
            "rales",
            "exam",
            local("rales", "Rales"),
            {"valueCodeableConcept": concept(f"{LOCAL_OBS}:rales", row.rales, text=row.get_rales_display())},
        )
        for column in EXAM_FLAGS:
            display = str(row._meta.get_field(column).verbose_name)
            self.observation(
                row,
                column,
                "exam",
                local(column.replace("_", "-"), display[0].upper() + display[1:]),
                {"valueBoolean": getattr(row, column)},
            )

    def obs_weights(self, row) -> None:
        self.observation(
            row,
            "weight",
            "vital-signs",
            loinc("29463-7", "Body weight"),
            {"valueQuantity": quantity(row.weight_kg, "kg")},
        )

    def obs_fluids(self, row) -> None:
        period = {"start": instant(row.period_start), "end": instant(row.period_end)}
        hours = (row.period_end - row.period_start).total_seconds() / 3600
        # LOINC 9192-6 is the 24-hour urine output; a shift's volume (usually 8 h) is 9187-6 "Urine output" with
        # its interval in effectivePeriod, so a receiver never reads 8 h of urine as a day's.
        urine = loinc("9192-6", "Urine output 24 hour") if hours == 24 else loinc("9187-6", "Urine output")
        self.observation(
            row, "urine", "vital-signs", urine, {"valueQuantity": quantity(row.urine_ml, "mL")}, period=period
        )
        if row.intake_ml is not None:
            self.observation(
                row,
                "intake",
                "exam",
                local("fluid-intake", "Fluid intake over the period"),
                {"valueQuantity": quantity(row.intake_ml, "mL")},
                period=period,
            )
        if row.diarrhea_ml is not None:
            self.observation(
                row,
                "diarrhea",
                "exam",
                local("diarrhea-volume", "Diarrhoea volume over the period"),
                {"valueQuantity": quantity(row.diarrhea_ml, "mL")},
                period=period,
            )

    def obs_labs(self, row) -> None:
        for column, (code, display, unit) in LAB_CODES.items():
            value = getattr(row, column)
            if value is not None:
                self.observation(
                    row, column, "laboratory", loinc(code, display), {"valueQuantity": quantity(value, unit)}
                )
        for column, (code, display, unit) in LOCAL_LAB_CODES.items():
            value = getattr(row, column)
            if value is not None:
                self.observation(
                    row, column, "laboratory", local(code, display), {"valueQuantity": quantity(value, unit)}
                )


# Every exported part of one observation row (an administration's supportingInformation points at all of them).
OBSERVATION_PARTS = {
    "vitals": ("bp", "map", "hr", "rr", "spo2", "temp", "rhythm", "phenylephrine", "other_pressor"),
    "neuro": ("rass", "confusion", "check", "hallucinations", "vivid_dreams", "crying"),
    "exam": ("rales", *EXAM_FLAGS),
    "weights": ("weight",),
    "fluids": ("urine", "intake", "diarrhea"),
    "labs": (*LAB_CODES, *LOCAL_LAB_CODES),
}


def loinc(code: str, display: str) -> dict:
    return concept(LOINC, code, display, display)


def local(code: str, display: str) -> dict:
    return concept(LOCAL_OBS, code, display, display)


def dose_label(dose) -> str:
    return f"Cycle {dose.cycle} · dose {dose.number}"


def references(bundle: dict) -> list[str]:
    """Every `reference` string anywhere in the bundle (the tests check each resolves to an entry's fullUrl)."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bundle)
    return found
