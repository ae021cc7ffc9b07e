"""Writes of the inbound interfaces: receive a message (HL7 v2 or FHIR), re-process a refused one, change the
code mapping. A message is turned into calls of the same services the API uses (monitoring.services.labs_record,
vitals_record, il2ward.services.patient_*), so an arriving result is validated, audited and re-evaluates the
patient's open slot exactly as a typed one; a refused message stores nothing but its log row.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from il2ward.audit import audit
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient, Ward
from il2ward.services import patient_admit, patient_discharge, patient_transfer, patient_update_demographics
from inbound import hl7v2
from inbound.defaults import DEFAULT_MAPPINGS
from inbound.domain.convert import NotANumber, canonical_system, canonical_unit, convert, parse_number
from inbound.hl7v2 import Refusal
from inbound.models import CodeMapping, InboundMessage, MappingVersion
from monitoring import services as obs
from monitoring.models import LabResult, VitalSigns

INTERFACE_USERNAME = "interface"
BOUNDS = {CodeMapping.Target.LABS: obs.LAB_BOUNDS, CodeMapping.Target.VITALS: obs.VITALS_BOUNDS}
MODELS = {CodeMapping.Target.LABS: LabResult, CodeMapping.Target.VITALS: VitalSigns}
RECORD = {CodeMapping.Target.LABS: obs.labs_record, CodeMapping.Target.VITALS: obs.vitals_record}
ACCEPTED_STATUSES = {"F": "final", "P": "preliminary", "C": "corrected", "A": "amended"}
CORRECTING = {"C", "A"}


def interface_user():
    """The account interfaced observations are recorded by (no password: nobody signs in as it)."""
    User = get_user_model()
    user = User.objects.filter(username=INTERFACE_USERNAME).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create(username=INTERFACE_USERNAME, first_name="Hospital", last_name="interface")
                user.set_unusable_password()
                user.save(update_fields=["password"])
        except IntegrityError:
            user = User.objects.get(username=INTERFACE_USERNAME)
    return user


# ------------------------------------------------------------------------------------------------------ mapping


class Mapping:
    """One mapping version, indexed: (system, code) → {canonical unit: row}."""

    def __init__(self, version: MappingVersion, rows):
        self.number = version.number
        self.index: dict[tuple[str, str], dict[str, CodeMapping]] = {}
        for row in rows:
            self.index.setdefault((row.system, row.code), {})[canonical_unit(row.unit)] = row

    def find(
        self,
        codes: list[tuple[str, str]],
        unit: str,
        *,
        where: str,
        seq: int,
        unit_where: str = "",
        code_where: str = "",
    ) -> CodeMapping:
        for system, code in codes:
            units = self.index.get((canonical_system(system), code))
            if units is None:
                continue
            row = units.get(canonical_unit(unit))
            if row is None and len(units) == 1 and next(iter(units.values())).target == CodeMapping.Target.IGNORE:
                row = next(iter(units.values()))
            if row is None:
                known = ", ".join(sorted(u.unit or "(none)" for u in units.values()))
                raise Refusal(
                    "unit_not_convertible",
                    unit_where or f"{where}-6",
                    f"{system} {code}: unit {unit or '(none)'!r} cannot be converted (known: {known}).",
                    hl7_error="unknown_code",
                    seq=seq,
                )
            return row
        named = ", ".join(f"{s or '?'} {c}" for s, c in codes) or "(none)"
        raise Refusal("unknown_code", code_where or f"{where}-3", f"No mapping for {named}.", hl7_error="unknown_code",
                      seq=seq)  # fmt: skip


_mapping_cache: dict[int, Mapping] = {}


def current_mapping(*, now: datetime) -> Mapping:
    version = MappingVersion.objects.order_by("-number").first() or mapping_write_defaults(now=now)
    if version.pk not in _mapping_cache:  # by primary key: a rewritten version 1 is not the cached one
        _mapping_cache.clear()
        _mapping_cache[version.pk] = Mapping(version, list(version.rows.all()))
    return _mapping_cache[version.pk]


@transaction.atomic
def mapping_write_defaults(*, now: datetime) -> MappingVersion:
    """Version 1 from inbound/defaults.py where no mapping exists (migration 0002 writes it on a new database; a
    database emptied since, as between tests, gets it back here). Audited."""
    existing = MappingVersion.objects.select_for_update().order_by("-number").first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            version = MappingVersion.objects.create(number=1, created_at=now, reason="Defaults (inbound/defaults.py)")
    except IntegrityError:  # written concurrently
        return MappingVersion.objects.get(number=1)
    CodeMapping.objects.bulk_create(
        CodeMapping(
            version=version,
            system=system,
            code=code,
            display=display,
            unit=unit,
            target=target,
            field=field,
            factor=Decimal(str(factor)),
            divisor=Decimal(str(divisor)),
            offset=Decimal(str(offset)),
        )  # fmt: skip
        for system, code, display, unit, target, field, factor, divisor, offset in DEFAULT_MAPPINGS
    )
    audit(actor=None, action="inbound.mapping_defaults", obj=version, at=now, new={"version": 1,
          "rows": len(DEFAULT_MAPPINGS)})  # fmt: skip
    return version


MAPPING_FIELDS = ("system", "code", "display", "unit", "target", "field", "factor", "divisor", "offset")


@retry_transaction
@transaction.atomic
def mapping_change(*, add: list[dict] = (), remove: list[dict] = (), reason: str, by, now: datetime) -> MappingVersion:
    """Write the next mapping version: the current rows, less `remove` ({system, code, unit}), plus `add` (full
    rows; one with the same system, code and unit replaces it). Validated, audited; old versions stay."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Say why the mapping changes."]})
    current = MappingVersion.objects.select_for_update().order_by("-number").first() or mapping_write_defaults(now=now)
    rows = {(r.system, r.code, canonical_unit(r.unit)): r for r in (current.rows.all() if current else [])}
    errors: dict[str, list[str]] = {}
    for item in remove:
        key = (canonical_system(item.get("system", "")), item.get("code", ""), canonical_unit(item.get("unit", "")))
        if rows.pop(key, None) is None:
            errors.setdefault("remove", []).append(f"No row {key[0]} {key[1]} [{item.get('unit', '')}].")
    added = []
    for n, item in enumerate(add):
        row = CodeMapping(**{k: item.get(k, CodeMapping._meta.get_field(k).get_default()) for k in MAPPING_FIELDS})
        row.system = canonical_system(row.system)
        problems = _mapping_row_problems(row)
        if problems:
            errors[f"add[{n}]"] = problems
            continue
        rows[(row.system, row.code, canonical_unit(row.unit))] = row
        added.append(f"{row.system} {row.code} [{row.unit}] → {row.target}.{row.field}")
    if errors:
        raise Invalid(errors)
    version = MappingVersion.objects.create(
        number=(current.number + 1) if current else 1, created_at=now, created_by=by, reason=reason
    )
    CodeMapping.objects.bulk_create(
        CodeMapping(version=version, **{k: getattr(r, k) for k in MAPPING_FIELDS}) for r in rows.values()
    )
    audit(
        actor=by,
        action="inbound.mapping_change",
        obj=version,
        at=now,
        old={"version": current.number if current else None},
        new={"version": version.number, "added": added, "removed": [dict(r) for r in remove]},
        reason=reason,
    )
    return version


def _mapping_row_problems(row: CodeMapping) -> list[str]:
    problems = []
    if not row.code:
        problems.append("code: required.")
    if row.target not in CodeMapping.Target.values:
        problems.append(f"target: one of {', '.join(CodeMapping.Target.values)}.")
    elif row.target != CodeMapping.Target.IGNORE and row.field not in BOUNDS[row.target]:
        problems.append(f"field: {row.field!r} is not a {row.target} field.")
    try:
        if Decimal(str(row.divisor)) == 0:
            problems.append("divisor: may not be 0.")
        Decimal(str(row.factor)) + Decimal(str(row.offset))
    except ArithmeticError:
        problems.append("factor, divisor, offset: numbers.")
    return problems


# ----------------------------------------------------------------------------------------------------- messages


@dataclass
class Receipt:
    ack: str  # the HL7 ACK to send back (HL7 v2); FHIR callers read `message` and `refusal`
    code: str  # AA, AE, AR
    message: InboundMessage | None
    refusal: Refusal | None = None
    duplicate: bool = False


def message_receive(*, raw: str, now: datetime) -> Receipt:
    """Receive one HL7 v2 message: parse, store once per (sending application, control id), answer with an ACK.

    A resent message that was accepted is acknowledged again (AA) and changes nothing; one that was refused is
    processed again (the sender retried, the patient or the mapping may have been fixed since)."""
    ack_id = uuid.uuid4().hex[:20]
    try:
        parsed = hl7v2.parse(raw)
    except Refusal as refusal:
        app, control_id = hl7v2.header_ids(raw)
        row = _log_unparsed(raw, app=app, control_id=control_id, refusal=refusal, now=now)
        return Receipt(hl7v2.ack(None, raw, code=refusal.ack, refusal=refusal, ack_id=ack_id, now=now), refusal.ack,
                       row, refusal)  # fmt: skip
    try:
        row, refusal, duplicate = _receive(parsed, raw, now=now)
    except IntegrityError:  # the same message committed on another connection meanwhile: now it is a resend
        row, refusal, duplicate = _receive(parsed, raw, now=now)
    code = "AA" if refusal is None else refusal.ack
    return Receipt(hl7v2.ack(parsed, raw, code=code, refusal=refusal, ack_id=ack_id, now=now), code, row, refusal,
                   duplicate)  # fmt: skip


@retry_transaction
@transaction.atomic
def _receive(parsed: hl7v2.Parsed, raw: str, *, now: datetime):
    digest = hl7v2.sha256(raw)
    key = {"source_system": parsed.sending_app[:64], "control_id": parsed.control_id[:128]}
    row = InboundMessage.objects.select_for_update().filter(**key).first()
    created = row is None
    if created:  # inserted with its outcome by _process (one INSERT, no savepoint)
        row = InboundMessage(**key, message_type=parsed.message_type, raw=hl7v2.normalise(raw), raw_sha256=digest,
                             received_at=now, last_received_at=now, status=InboundMessage.Status.REFUSED)  # fmt: skip
    else:
        row.times_received += 1
        row.last_received_at = now
        if row.raw_sha256 != digest:
            row.save(update_fields=["times_received", "last_received_at"])
            return row, Refusal("control_id_reused", "MSH-10", "This control id was used for a different message.",
                                ack="AR", hl7_error="bad_value"), False  # fmt: skip
        if row.status in (InboundMessage.Status.ACCEPTED, InboundMessage.Status.REPROCESSED):
            row.save(update_fields=["times_received", "last_received_at"])
            return row, None, True
    refusal = _process(row, parsed, now=now)
    return row, refusal, False


def _log_unparsed(raw: str, *, app: str, control_id: str, refusal: Refusal, now: datetime) -> InboundMessage:
    """A message too broken to read is still logged (keyed by its hash when it has no control id)."""
    digest = hl7v2.sha256(raw)
    key = {"source_system": (app or "unknown")[:64], "control_id": (control_id or f"sha256:{digest[:32]}")[:128]}
    row, created = InboundMessage.objects.get_or_create(
        **key,
        defaults={"message_type": "unparsed", "raw": hl7v2.normalise(raw), "raw_sha256": digest, "received_at": now,
                  "last_received_at": now, "status": InboundMessage.Status.REFUSED},
    )  # fmt: skip
    if not created and row.status not in (InboundMessage.Status.ACCEPTED, InboundMessage.Status.REPROCESSED):
        row.times_received += 1
        row.last_received_at = now
    elif not created:
        return row
    _set_refused(row, refusal, now=now)
    row.save()
    return row


def _set_refused(row: InboundMessage, refusal: Refusal, *, now: datetime) -> None:
    row.status = InboundMessage.Status.REFUSED
    row.error_code, row.error_field, row.error_text = refusal.code, refusal.field[:32], refusal.text
    row.processed_at = now
    row.stored = []


def _process(row: InboundMessage, parsed: hl7v2.Parsed, *, now: datetime, reprocess: bool = False) -> Refusal | None:
    """Apply the message inside a savepoint: all of it is stored, or (refused) none of it."""
    row.patient_ref = parsed.identifiers[0][0][:64] if parsed.identifiers else ""
    try:
        with transaction.atomic():
            mapping = current_mapping(now=now)
            row.mapping_version = mapping.number
            patient, stored = HANDLERS[parsed.message_type](parsed, mapping=mapping, now=now)
    except Refusal as refusal:
        _set_refused(row, refusal, now=now)
        row.patient = _patient_or_none(parsed)
        row.save()
        return refusal
    row.status = InboundMessage.Status.REPROCESSED if reprocess else InboundMessage.Status.ACCEPTED
    row.error_code = row.error_field = row.error_text = ""
    row.patient, row.stored, row.processed_at = patient, stored, now
    row.save()
    return None


def _mrn(parsed: hl7v2.Parsed) -> str:
    system = settings.IL2WARD_HL7_MRN_AUTHORITY
    for ident, authorities in parsed.identifiers:
        if system in authorities:
            return ident
    return ""


def _patient_or_none(parsed) -> Patient | None:
    mrn = _mrn(parsed)
    return Patient.objects.filter(mrn=mrn).first() if mrn else None


def _patient(parsed: hl7v2.Parsed) -> Patient:
    mrn = _mrn(parsed)
    if not mrn:
        raise Refusal("unknown_patient", "PID-3", f"No identifier under the site's MRN system "
                      f"{settings.IL2WARD_HL7_MRN_AUTHORITY!r}.", hl7_error="unknown_patient")  # fmt: skip
    patient = Patient.objects.select_related("ward").filter(mrn=mrn).first()
    if patient is None:
        raise Refusal("unknown_patient", "PID-3", "No patient with this MRN.", hl7_error="unknown_patient")
    return patient


def _ward(parsed: hl7v2.Parsed) -> Ward:
    if not parsed.ward_code:
        raise Refusal("missing_field", "PV1-3", "No assigned location (ward).", hl7_error="missing_field")
    ward = Ward.objects.filter(code__iexact=parsed.ward_code).first()
    if ward is None:
        raise Refusal("unknown_ward", "PV1-3", f"No ward {parsed.ward_code!r}.", hl7_error="unknown_code")
    return ward


def _invalid_to_refusal(exc: Invalid, where: dict[str, tuple[str, int]]) -> Refusal:
    """A service's 400 (field → messages) as a refusal naming the HL7 field the value came from."""
    name, messages = next(iter(exc.errors.items()))
    text = " ".join(messages)
    segment, seq = where.get(name, ("OBX-5", 1))
    if "future" in text:
        code = "future_time"
    elif "required" in text:
        code = "missing_field"
    elif "between" in text or "below" in text:
        code = "impossible_value"
    else:
        code = "invalid_value"
    error = {"missing_field": "missing_field", "future_time": "bad_value"}.get(code, "other")
    return Refusal(code, segment, f"{name}: {text}", hl7_error=error, seq=seq)


def observations_record(
    *,
    patient: Patient,
    values: dict[str, dict[str, tuple[Decimal | int, str, int]]],
    recorded_at: datetime,
    time_where: tuple[str, int],
    source: dict,
    correcting: bool,
    now: datetime,
) -> list[str]:
    """Record what one message (or FHIR transaction) carries: one lab panel and/or one vitals set, through the
    monitoring services. values = {target: {field: (value, where, seq)}}. A correction first marks the results of
    the same order from the same sender entered-in-error (kept, audited), then records the new ones."""
    by = interface_user()
    stored = []
    for target, fields in values.items():
        if not fields:
            continue
        model = MODELS[target]
        if correcting and source.get("source_order"):
            earlier = model.objects.filter(
                patient=patient,
                source_system=source["source_system"],
                source_order=source["source_order"],
                entered_in_error_at__isnull=True,
            )
            for old in earlier:
                obs.observation_supersede(
                    observation=old, reason=f"Corrected by message {source['source_message_id']}", by=by, now=now
                )
        where = {name: (w, seq) for name, (_, w, seq) in fields.items()}
        where["recorded_at"] = time_where
        try:
            row = RECORD[target](
                patient=patient,
                recorded_at=recorded_at,
                source=source,
                by=by,
                now=now,
                **{name: value for name, (value, _, _) in fields.items()},
            )
        except Invalid as exc:
            raise _invalid_to_refusal(exc, where) from exc
        stored.append(row.source_id)
    return stored


def _oru(parsed: hl7v2.Parsed, *, mapping: Mapping, now: datetime):
    patient = _patient(parsed)
    values: dict[str, dict] = {CodeMapping.Target.LABS: {}, CodeMapping.Target.VITALS: {}}
    correcting = False
    for obx in parsed.obx:
        if obx.status not in ACCEPTED_STATUSES:
            raise Refusal("unsupported_status", "OBX-11", f"Result status {obx.status or '(none)'!r} (accepted: "
                          f"{', '.join(ACCEPTED_STATUSES)}).", hl7_error="unknown_code", seq=obx.seq)  # fmt: skip
        row = mapping.find(obx.codes, obx.unit, where="OBX", seq=obx.seq)
        if row.target == CodeMapping.Target.IGNORE:
            continue
        try:
            number = parse_number(obx.value)
        except NotANumber as exc:
            raise Refusal("impossible_value", "OBX-5", "Not a number.", hl7_error="bad_value", seq=obx.seq) from exc
        places = BOUNDS[row.target][row.field].places
        value = convert(number, factor=row.factor, divisor=row.divisor, offset=row.offset, places=places)
        if row.field in values[row.target]:
            raise Refusal("duplicate_field", "OBX-3", f"Two results for {row.field} in one message.",
                          hl7_error="other", seq=obx.seq)  # fmt: skip
        values[row.target][row.field] = (value, "OBX-5", obx.seq)
        correcting |= obx.status in CORRECTING
    if not any(values.values()):
        raise Refusal("missing_field", "OBX-3", "No result IL2Ward stores.", hl7_error="missing_field")
    if parsed.obr_at:
        text, time_where = parsed.obr_at, ("OBR-7", 1)
    elif parsed.obx and parsed.obx[0].observed_at:
        text, time_where = parsed.obx[0].observed_at, ("OBX-14", parsed.obx[0].seq)
    else:
        text, time_where = "", ("OBR-7", 1)
    recorded_at = hl7v2.parse_time(text, zone=patient.ward.zone, where=time_where[0], seq=time_where[1])
    source = {
        "source_system": parsed.sending_app[:64],
        "source_message_id": parsed.control_id[:128],
        "source_order": parsed.order_ref[:128],
    }
    stored = observations_record(patient=patient, values=values, recorded_at=recorded_at, time_where=time_where,
                                 source=source, correcting=correcting, now=now)  # fmt: skip
    return patient, stored


def _event_time(parsed: hl7v2.Parsed, zone) -> datetime:
    if parsed.event_at:
        return hl7v2.parse_time(parsed.event_at, zone=zone, where="EVN-2")
    return hl7v2.parse_time(parsed.sent_at, zone=zone, where="MSH-7")


def _adt_call(service, where: dict[str, str], **kwargs):
    try:
        return service(**kwargs)
    except Invalid as exc:
        name, messages = next(iter(exc.errors.items()))
        raise Refusal("invalid_value", where.get(name, "PID-3"), f"{name}: {' '.join(messages)}") from exc
    except Conflict as exc:
        raise Refusal(exc.code, "PV1-3", exc.detail) from exc


PID_FIELDS = {"name": "PID-5", "birth_date": "PID-7", "sex": "PID-8", "discharged_at": "EVN-2"}


def _demographics(parsed: hl7v2.Parsed) -> dict:
    if not parsed.family and not parsed.given:
        raise Refusal("missing_field", "PID-5", "No patient name.", hl7_error="missing_field")
    if not parsed.birth_date:
        raise Refusal("missing_field", "PID-7", "No date of birth.", hl7_error="missing_field")
    return {
        "name": parsed.name,
        "birth_date": hl7v2.parse_date(parsed.birth_date, where="PID-7"),
        "sex": hl7v2.SEX.get(parsed.sex.upper(), "unknown"),
    }


def _adt_a01(parsed: hl7v2.Parsed, *, mapping, now):
    mrn = _mrn(parsed)
    if not mrn:
        raise Refusal("unknown_patient", "PID-3", f"No identifier under the site's MRN system "
                      f"{settings.IL2WARD_HL7_MRN_AUTHORITY!r}.", hl7_error="unknown_patient")  # fmt: skip
    ward = _ward(parsed)
    at = _event_time(parsed, ward.zone)
    patient = _adt_call(patient_admit, PID_FIELDS, mrn=mrn, ward=ward, admitted_at=at, by=interface_user(),
                        now=now, **_demographics(parsed))  # fmt: skip
    return patient, [f"patient:{patient.pk}"]


def _adt_a02(parsed, *, mapping, now):
    patient = _patient(parsed)
    ward = _ward(parsed)
    at = _event_time(parsed, ward.zone)
    _adt_call(patient_transfer, PID_FIELDS, patient=patient, ward=ward, transferred_at=at, by=interface_user(),
              now=now)  # fmt: skip
    return patient, [f"patient:{patient.pk}"]


def _adt_a03(parsed, *, mapping, now):
    patient = _patient(parsed)
    at = _event_time(parsed, patient.ward.zone)
    _adt_call(patient_discharge, PID_FIELDS, patient=patient, discharged_at=at, by=interface_user(), now=now)
    return patient, [f"patient:{patient.pk}"]


def _adt_a08(parsed, *, mapping, now):
    patient = _patient(parsed)
    given = {
        "name": parsed.name or None,
        "birth_date": hl7v2.parse_date(parsed.birth_date, where="PID-7") if parsed.birth_date else None,
        "sex": hl7v2.SEX.get(parsed.sex.upper()) if parsed.sex else None,
    }
    _adt_call(patient_update_demographics, PID_FIELDS, patient=patient, by=interface_user(), now=now, **given)
    return patient, [f"patient:{patient.pk}"]


HANDLERS = {"ORU^R01": _oru, "ADT^A01": _adt_a01, "ADT^A02": _adt_a02, "ADT^A03": _adt_a03, "ADT^A08": _adt_a08}


@retry_transaction
@transaction.atomic
def message_reprocess(*, message_id: int, by, now: datetime) -> InboundMessage:
    """Process a refused (dead-letter) message again from its stored raw text, after the mapping or the patient
    was fixed. Accepted: status reprocessed; refused again: the new reason is stored. Audited either way."""
    row = InboundMessage.objects.select_for_update().get(pk=message_id)
    if row.status != InboundMessage.Status.REFUSED:
        raise Conflict("not_refused", "Only a refused message can be re-processed.")
    if row.protocol != InboundMessage.Protocol.HL7V2:
        raise Conflict("not_reprocessable", "A FHIR request is re-sent by its client, not re-processed here.")
    old = {"status": row.status, "error_code": row.error_code}
    try:
        parsed = hl7v2.parse(row.raw)
    except Refusal as refusal:
        _set_refused(row, refusal, now=now)
        row.save()
    else:
        _process(row, parsed, now=now, reprocess=True)
    audit(actor=by, action="inbound.reprocess", obj=row, at=now, old=old,
          new={"status": row.status, "error_code": row.error_code, "stored": row.stored})  # fmt: skip
    return row


@transaction.atomic
def message_dismiss(*, message_id: int, reason: str, by, now: datetime) -> InboundMessage:
    """Take a refused message off the dead-letter list without storing it (e.g. sent to the wrong site)."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Say why the message is dismissed."]})
    row = InboundMessage.objects.select_for_update().get(pk=message_id)
    if row.status != InboundMessage.Status.REFUSED:
        raise Conflict("not_refused", "Only a refused message can be dismissed.")
    row.status = InboundMessage.Status.DISMISSED
    row.save(update_fields=["status"])
    audit(actor=by, action="inbound.dismiss", obj=row, at=now, old={"status": "refused"},
          new={"status": row.status}, reason=reason)  # fmt: skip
    return row
