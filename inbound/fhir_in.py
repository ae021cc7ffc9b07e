"""FHIR in: Observations (vital-signs and laboratory), alone or in a transaction Bundle, validated with
fhir.resources (R4B, as the export) and stored through the same mapping and services as HL7 v2.

A retry stores once: every Observation needs an identifier (or an If-None-Exist "identifier=system|value"), and
one already stored from the same client is answered 200 with what it stored. A Bundle is all or nothing.
Observations of one patient at one effective time make one lab panel and/or one vitals set (a monitor sends
SBP, DBP, HR, ... as separate Observations or as components of a panel).
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from inbound import hl7v2
from inbound.domain.convert import convert
from inbound.hl7v2 import Refusal
from inbound.models import CodeMapping, InboundMessage
from inbound.services import BOUNDS, current_mapping, observations_record

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORIES = {"vital-signs", "laboratory"}
STATUSES = {"final", "amended", "corrected", "preliminary"}


@dataclass
class Item:
    codes: list[tuple[str, str]]
    value: object
    unit: str
    where: str


@dataclass
class ObservationIn:
    key: str
    where: str
    raw: dict
    mrn: str
    effective: datetime
    items: list[Item] = field(default_factory=list)
    correcting: bool = False


def _refuse(code: str, where: str, text: str) -> Refusal:
    return Refusal(code, where, text)


def read_observation(data, *, where: str, if_none_exist: str = "") -> ObservationIn:
    if not isinstance(data, dict) or data.get("resourceType") != "Observation":
        raise _refuse("invalid_resource", where, "An Observation resource is expected.")
    try:
        resource = Observation.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__")
        raise _refuse(
            "invalid_resource", f"{where}.{location}" if location else where, error.get("msg", "Invalid.")
        ) from exc
    categories = {c.code for cat in resource.category or [] for c in cat.coding or [] if c.system == CATEGORY_SYSTEM}
    if not categories & CATEGORIES:
        raise _refuse("unsupported_category", f"{where}.category", "Only vital-signs and laboratory Observations.")
    if resource.status not in STATUSES:
        raise _refuse("unsupported_status", f"{where}.status", f"Status {resource.status!r} is not stored.")
    key = ""
    if if_none_exist:
        key = if_none_exist.removeprefix("identifier=")
    else:
        for ident in resource.identifier or []:
            if ident.value:
                key = f"{ident.system or ''}|{ident.value}"
                break
    if not key:
        raise _refuse("missing_identifier", f"{where}.identifier", "An identifier is required, so a retry stores once.")
    subject = resource.subject.identifier if resource.subject and resource.subject.identifier else None
    if subject is None or subject.system != settings.IL2WARD_FHIR_MRN_SYSTEM or not subject.value:
        raise _refuse("unknown_patient", f"{where}.subject", f"A subject identifier under the site's MRN system "
                      f"{settings.IL2WARD_FHIR_MRN_SYSTEM!r} is required.")  # fmt: skip
    effective = resource.effectiveDateTime
    if effective is None or not isinstance(effective, datetime):
        raise _refuse(
            "missing_field", f"{where}.effectiveDateTime", "effectiveDateTime (with a UTC offset) is required."
        )
    if effective.tzinfo is None:
        raise _refuse("bad_value", f"{where}.effectiveDateTime", "Give the time with its UTC offset.")
    parsed = ObservationIn(key=key[:128], where=where, raw=data, mrn=subject.value, effective=effective.astimezone(UTC),
                           correcting=resource.status in ("amended", "corrected"))  # fmt: skip

    def item(code, quantity, at: str) -> Item | None:
        codes = [(c.system or "", c.code) for c in (code.coding or []) if c.code]
        if quantity is None:
            return None
        if quantity.value is None:
            raise _refuse("missing_field", f"{at}.valueQuantity.value", "A value is required.")
        return Item(codes=codes, value=quantity.value, unit=quantity.code or quantity.unit or "", where=at)

    if (top := item(resource.code, resource.valueQuantity, where)) is not None:
        parsed.items.append(top)
    for n, component in enumerate(resource.component or []):
        if (part := item(component.code, component.valueQuantity, f"{where}.component[{n}]")) is not None:
            parsed.items.append(part)
    if not parsed.items:
        raise _refuse(
            "missing_field", f"{where}.valueQuantity", "A valueQuantity (or components with one) is required."
        )
    return parsed


def source_name(user) -> str:
    return f"fhir:{user.get_username()}"[:64]


def receive(*, entries: list[tuple[dict, str, str]], user, patients, now: datetime) -> list[dict]:
    """entries: (resource, where, If-None-Exist). Returns per entry {status, stored, message}. Raises Refusal
    (nothing stored) naming the element. `patients` is the queryset the caller may write for."""
    source = source_name(user)
    parsed = [read_observation(data, where=where, if_none_exist=ine) for data, where, ine in entries]
    results: list[dict | None] = [None] * len(parsed)
    with transaction.atomic():
        existing = {
            m.control_id: m
            for m in InboundMessage.objects.select_for_update().filter(
                source_system=source, control_id__in=[p.key for p in parsed]
            )
        }
        new = []
        for n, obs_in in enumerate(parsed):
            row = existing.get(obs_in.key)
            if row is not None and row.status == InboundMessage.Status.ACCEPTED:
                results[n] = {"status": "200 OK", "stored": row.stored, "message": row}
            else:
                new.append((n, obs_in))
        mapping = current_mapping(now=now)
        groups: dict[tuple[str, datetime], list[tuple[int, ObservationIn]]] = {}
        for n, obs_in in new:
            groups.setdefault((obs_in.mrn, obs_in.effective), []).append((n, obs_in))
        for (mrn, effective), members in groups.items():
            patient = patients.filter(mrn=mrn).select_related("ward").first()
            if patient is None:
                raise _refuse(
                    "unknown_patient", f"{members[0][1].where}.subject", "No patient with this MRN on your wards."
                )
            values: dict[str, dict] = {CodeMapping.Target.LABS: {}, CodeMapping.Target.VITALS: {}}
            for _, obs_in in members:
                for it in obs_in.items:
                    row = mapping.find(it.codes, it.unit, where=it.where, seq=1, code_where=f"{it.where}.code",
                                       unit_where=f"{it.where}.valueQuantity.code")  # fmt: skip
                    if row.target == CodeMapping.Target.IGNORE:
                        continue
                    places = BOUNDS[row.target][row.field].places
                    value = convert(it.value, factor=row.factor, divisor=row.divisor, offset=row.offset, places=places)
                    if row.field in values[row.target]:
                        raise _refuse("duplicate_field", f"{it.where}.code", f"Two values for {row.field}.")
                    values[row.target][row.field] = (value, f"{it.where}.valueQuantity", 1)
            first = members[0][1]
            stored = observations_record(
                patient=patient,
                values=values,
                recorded_at=effective,
                time_where=(f"{first.where}.effectiveDateTime", 1),
                source={"source_system": source, "source_message_id": first.key, "source_order": first.key},
                correcting=any(m.correcting for _, m in members),
                now=now,
            )
            for n, obs_in in members:
                raw = json.dumps(obs_in.raw, sort_keys=True)
                message, _ = InboundMessage.objects.update_or_create(
                    source_system=source,
                    control_id=obs_in.key,
                    defaults={"protocol": InboundMessage.Protocol.FHIR, "message_type": "Observation", "raw": raw,
                              "raw_sha256": hl7v2.sha256(raw), "received_at": now, "last_received_at": now,
                              "processed_at": now, "status": InboundMessage.Status.ACCEPTED, "patient": patient,
                              "patient_ref": mrn[:64], "stored": stored, "error_code": "", "error_field": "",
                              "error_text": "", "mapping_version": mapping.number},
                )  # fmt: skip
                results[n] = {"status": "201 Created", "stored": stored, "message": message}
    return results


def log_refusal(*, entries: list[tuple[dict, str, str]], user, refusal: Refusal, now: datetime) -> None:
    """A refused request is logged (dead-letter list) under each identifier it carried, nothing else stored."""
    source = source_name(user)
    for data, _, ine in entries:
        ident = ine.removeprefix("identifier=") if ine else ""
        if not ident and isinstance(data, dict):
            for i in data.get("identifier") or []:
                if isinstance(i, dict) and i.get("value"):
                    ident = f"{i.get('system', '')}|{i['value']}"
                    break
        raw = json.dumps(data, sort_keys=True, default=str)
        key = (ident or f"sha256:{hl7v2.sha256(raw)[:32]}")[:128]
        row = InboundMessage.objects.filter(source_system=source, control_id=key).first()
        if row is not None and row.status == InboundMessage.Status.ACCEPTED:
            continue
        InboundMessage.objects.update_or_create(
            source_system=source,
            control_id=key,
            defaults={"protocol": InboundMessage.Protocol.FHIR, "message_type": "Observation", "raw": raw,
                      "raw_sha256": hl7v2.sha256(raw), "received_at": now, "last_received_at": now, "processed_at": now,
                      "status": InboundMessage.Status.REFUSED, "error_code": refusal.code,
                      "error_field": refusal.where[-32:], "error_text": refusal.text, "stored": []},
        )  # fmt: skip


def bundle_entries(data) -> list[tuple[dict, str, str]]:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise _refuse("invalid_resource", "Bundle", "A Bundle resource is expected.")
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(p) for p in error.get("loc", ()))
        raise _refuse("invalid_resource", f"Bundle.{location}", error.get("msg", "Invalid.")) from exc
    if bundle.type != "transaction":
        raise _refuse("unsupported_bundle", "Bundle.type", "Only a transaction Bundle is accepted.")
    entries = []
    for n, entry in enumerate(data.get("entry") or []):
        where = f"Bundle.entry[{n}].resource"
        request = entry.get("request") or {}
        if request.get("method") != "POST" or not str(request.get("url", "")).startswith("Observation"):
            raise _refuse("unsupported_entry", f"Bundle.entry[{n}].request", "Only POST Observation entries.")
        entries.append((entry.get("resource"), where, request.get("ifNoneExist") or ""))
    if not entries:
        raise _refuse("missing_field", "Bundle.entry", "No entries.")
    return entries


def operation_outcome(refusal: Refusal) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-found"
                if refusal.code == "unknown_patient"
                else ("code-invalid" if refusal.code in ("unknown_code", "unit_not_convertible") else "invalid"),
                "details": {
                    "coding": [{"system": "urn:il2ward:inbound-error", "code": refusal.code}],
                    "text": refusal.text,
                },
                "diagnostics": refusal.text,
                "expression": [refusal.where],
            }  # fmt: skip
        ],
    }
