"""Writes of the inbound interfaces: receive a message (HL7 v2 or FHIR), re-process a refused one, change the
code mapping. A message is turned into calls of the same services the API uses (monitoring.services.labs_record,
vitals_record, il2ward.services.patient_*), so an arriving result is validated, audited and re-evaluates the
patient's open slot exactly as a typed one; a refused message stores nothing but its log row.
"""

import inspect
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Subquery

from il2ward.audit import audit
from il2ward.db import insert, retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient, Ward
from il2ward.services import patient_admit, patient_discharge, patient_transfer, patient_update_demographics
from inbound import hl7v2
from inbound.defaults import DEFAULT_MAPPINGS
from inbound.domain.convert import NotANumber, canonical_system, canonical_unit, convert, parse_number
from inbound.hl7v2 import Refusal
from inbound.models import CodeMapping, InboundMessage, MappingVersion, ResultOrder
from monitoring import services as obs
from monitoring.domain.bounds import Bound
from monitoring.models import LabResult, Observation, VitalSigns

INTERFACE_USERNAME = "interface"
_R = TypeVar("_R")
# Keyed by target (CodeMapping.Target, a str: a stored row's target reads back as a plain str).
BOUNDS: dict[str, dict[str, Bound]] = {CodeMapping.Target.LABS: obs.LAB_BOUNDS,
                                       CodeMapping.Target.VITALS: obs.VITALS_BOUNDS}  # fmt: skip
MODELS: dict[str, type[LabResult] | type[VitalSigns]] = {CodeMapping.Target.LABS: LabResult,
                                                         CodeMapping.Target.VITALS: VitalSigns}  # fmt: skip


def _in_callers_transaction(service: Callable[..., _R]) -> Callable[..., _R]:
    """`service` without its savepoint. Here a service is only called inside the message's transaction (or the
    careful path's savepoint around the whole message), and whatever it raises refuses the message and rolls all of
    it back: its own savepoint (two round trips a result) would never be rolled back to alone. Outside a transaction
    it still opens one (atomic without a savepoint)."""
    return transaction.atomic(savepoint=False)(inspect.unwrap(service))


RECORD: dict[str, Callable[..., LabResult | VitalSigns]] = {
    CodeMapping.Target.LABS: _in_callers_transaction(obs.labs_record),
    CodeMapping.Target.VITALS: _in_callers_transaction(obs.vitals_record),
}
ACCEPTED_STATUSES = {"F": "final", "P": "preliminary", "C": "corrected", "A": "amended", "W": "wrong, withdrawn",
                     "D": "deleted"}  # fmt: skip
CORRECTING = {"C", "A"}  # supersedes the order's earlier results (entered-in-error, kept); unsent tests carried over
WITHDRAWING = {"W", "D"}  # withdraws that test (entered-in-error, kept; nothing is deleted); no new value


_interface_cache: dict[int, object] = {}


def interface_user(pk: int | None = None):
    """The account interfaced observations are recorded by (no password: nobody signs in as it). With `pk` (read
    in the same query as the patient), the process keeps the user it loaded for that id."""
    User = get_user_model()
    if pk is not None:
        if pk not in _interface_cache:
            _interface_cache.clear()
            _interface_cache[pk] = User.objects.get(pk=pk)
        return _interface_cache[pk]
    user = User.objects.filter(username=INTERFACE_USERNAME).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create(username=INTERFACE_USERNAME, first_name="Hospital", last_name="interface")
                user.set_unusable_password()
                user.save(update_fields=["password"])
        except IntegrityError:
            user = User.objects.get(username=INTERFACE_USERNAME)
    _interface_cache.clear()  # keyed by the id the database gives: a rolled-back account is never found by it
    _interface_cache[user.pk] = user
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


def current_mapping(*, now: datetime, pk: int | None = None) -> Mapping:
    """The newest mapping version, indexed once per process. `pk`: its id, read in the same query as the patient
    (an ORU^R01 then costs no query of its own for the mapping)."""
    if pk is None:
        version = MappingVersion.objects.order_by("-number").first() or mapping_write_defaults(now=now)
        pk = version.pk
    if pk not in _mapping_cache:  # by primary key: a rewritten version 1 is not the cached one
        version = MappingVersion.objects.get(pk=pk)
        _mapping_cache.clear()
        _mapping_cache[pk] = Mapping(version, list(version.rows.all()))
    return _mapping_cache[pk]


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
def mapping_change(
    *, add: Sequence[dict] = (), remove: Sequence[dict] = (), reason: str, by, now: datetime
) -> MappingVersion:
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
        row = CodeMapping(**{k: item.get(k, _mapping_default(k)) for k in MAPPING_FIELDS})
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


def _mapping_default(name: str):
    """A CodeMapping column's default, for a row added without it."""
    field = CodeMapping._meta.get_field(name)
    return field.get_default() if isinstance(field, models.Field) else None


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
    processed again (the sender retried, the patient or the mapping may have been fixed since).

    Most messages are new and accepted: they take one transaction without a savepoint (_receive_new). Anything
    else (a control id already logged, a refusal) rolls that back and takes the careful path (_receive), which
    locks the log row first and applies the message inside a savepoint."""
    ack_id = uuid.uuid4().hex[:20]
    try:
        parsed = hl7v2.parse(raw)
    except Refusal as unreadable:
        app, control_id = hl7v2.header_ids(raw)
        logged = _log_unparsed(raw, app=app, control_id=control_id, refusal=unreadable, now=now)
        return Receipt(hl7v2.ack(None, raw, code=unreadable.ack, refusal=unreadable, ack_id=ack_id, now=now),
                       unreadable.ack, logged, unreadable)  # fmt: skip
    try:
        row, refusal, duplicate = _receive_new(parsed, raw, now=now)
    except (_NotNew, IntegrityError):
        try:
            row, refusal, duplicate = _receive(parsed, raw, now=now)
        except IntegrityError:  # the same message committed on another connection meanwhile: now it is a resend
            row, refusal, duplicate = _receive(parsed, raw, now=now)
    code = "AA" if refusal is None else refusal.ack
    return Receipt(hl7v2.ack(parsed, raw, code=code, refusal=refusal, ack_id=ack_id, now=now), code, row, refusal,
                   duplicate)  # fmt: skip


DONE: frozenset[str] = frozenset({InboundMessage.Status.ACCEPTED, InboundMessage.Status.REPROCESSED})  # stored once


class _NotNew(Exception):
    """The fast path does not apply (refused): roll it back, take the careful one."""


def _new_row(parsed: hl7v2.Parsed, raw: str, *, now: datetime) -> InboundMessage:
    return InboundMessage(source_system=parsed.sending_app[:64], control_id=parsed.control_id[:128],
                          message_type=parsed.message_type, raw=hl7v2.normalise(raw), raw_sha256=hl7v2.sha256(raw),
                          received_at=now, last_received_at=now, status=InboundMessage.Status.REFUSED)  # fmt: skip


@retry_transaction
@transaction.atomic
def _receive_new(parsed: hl7v2.Parsed, raw: str, *, now: datetime):
    """A message not seen before, accepted: applied, then its log row inserted last, in one transaction. A control
    id already logged fails that INSERT (the unique constraint) and a refusal raises _NotNew; either rolls all of it
    back (the audit rows and the evaluation tasks, published only on commit, too)."""
    row = _new_row(parsed, raw, now=now)
    try:
        _apply(row, parsed, now=now)
    except Refusal as refusal:
        raise _NotNew from refusal
    _set_accepted(row, reprocess=False, now=now)
    insert([row])
    return row, None, False


@retry_transaction
@transaction.atomic
def _receive(parsed: hl7v2.Parsed, raw: str, *, now: datetime):
    digest = hl7v2.sha256(raw)
    key = {"source_system": parsed.sending_app[:64], "control_id": parsed.control_id[:128]}
    found = InboundMessage.objects.select_for_update().filter(**key).first()
    if found is None:  # inserted with its outcome by _process (one INSERT, no savepoint)
        row = _new_row(parsed, raw, now=now)
    else:
        row = found
        row.times_received += 1
        row.last_received_at = now
        if row.raw_sha256 != digest:
            row.save(update_fields=["times_received", "last_received_at"])
            return row, Refusal("control_id_reused", "MSH-10", "This control id was used for a different message.",
                                ack="AR", hl7_error="bad_value"), False  # fmt: skip
        if row.status in DONE:
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
    if not created and row.status not in DONE:
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


def _apply(row: InboundMessage, parsed: hl7v2.Parsed, *, now: datetime) -> None:
    """What the message does (its handler), recorded on its log row; raises Refusal."""
    row.patient_ref = parsed.identifiers[0][0][:64] if parsed.identifiers else ""
    context = Context(row=row, now=now)
    row.patient, row.stored = HANDLERS[parsed.message_type](parsed, context=context, now=now)


def _set_accepted(row: InboundMessage, *, reprocess: bool, now: datetime) -> None:
    row.status = InboundMessage.Status.REPROCESSED if reprocess else InboundMessage.Status.ACCEPTED
    row.error_code = row.error_field = row.error_text = ""
    row.processed_at = now


def _process(row: InboundMessage, parsed: hl7v2.Parsed, *, now: datetime, reprocess: bool = False) -> Refusal | None:
    """Apply the message inside a savepoint: all of it is stored, or (refused) none of it."""
    try:
        with transaction.atomic():
            _apply(row, parsed, now=now)
    except Refusal as refusal:
        _set_refused(row, refusal, now=now)
        row.patient = _patient_or_none(parsed)
        row.save()
        return refusal
    _set_accepted(row, reprocess=reprocess, now=now)
    row.save()
    return None


class Context:
    """What a handler reads once per message: the mapping version and the interface's account (for an ORU^R01,
    read in the same query as the patient), and the log row it records the version on."""

    def __init__(self, *, row: InboundMessage, now: datetime):
        self.row, self.now = row, now
        self._mapping: Mapping | None = None
        self._by = None

    def known(self, *, mapping_pk: int | None, interface_pk: int | None) -> None:
        if mapping_pk is not None:
            self._mapping = current_mapping(now=self.now, pk=mapping_pk)
            self.row.mapping_version = self._mapping.number
        if interface_pk is not None:
            self._by = interface_user(interface_pk)

    @property
    def mapping(self) -> Mapping:
        if self._mapping is None:
            self._mapping = current_mapping(now=self.now)
            self.row.mapping_version = self._mapping.number
        return self._mapping

    @property
    def by(self):
        if self._by is None:
            self._by = interface_user()
        return self._by


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


@dataclass(frozen=True)
class Withdrawal:
    """One test an OBX-11 W or D withdraws: its field, the codes it was sent under (OBX-3), its OBX-4 sub-id."""

    target: str
    field: str
    codes: tuple[tuple[str, str], ...]
    sub_id: str
    seq: int  # the OBX's occurrence in the message, for ERR-2


def observations_record(
    *,
    patient: Patient,
    values: dict[str, dict[str, tuple[Decimal | int, str, int]]],
    recorded_at: datetime | None,
    time_where: tuple[str, int],
    source: dict,
    correcting: bool,
    now: datetime,
    withdrawals: Sequence[Withdrawal] = (),
    sent_at: datetime | None = None,
    by=None,
) -> list[str]:
    """Record what one order of a message (or a FHIR transaction) carries: one lab panel and/or one vitals set,
    through the monitoring services. values = {target: {field: (value, where, seq)}}.

    Message order per order (same sender, same OBR-3): a correction (C, A) marks the earlier current results of the
    order entered-in-error (kept, audited) and records one new row at the correction's time that holds what it
    sends and, for the tests it does not send, the earlier rows' values (merged in pk order, the later wins; for
    vitals the choices too), so a lab that resends only the corrected test leaves the panel's others current. A
    correction for an order with nothing earlier stores what it sends. A withdrawal (W, D) takes back single tests
    (`withdrawals`, see _withdraw): nothing new is stored for them. A result older than one already stored for the
    order (its message sent earlier, MSH-7 `sent_at`, but arriving later, e.g. on another connection) never
    overtakes it: it is stored, for the history, and marked entered-in-error at once."""
    if not any(values.values()) and not withdrawals:
        return []
    by = by or interface_user()
    stored: list[str] = []
    order = source.get("source_order")
    label = source["source_message_id"]
    if withdrawals and not order:
        raise Refusal("missing_field", "OBR-3", "A withdrawal (OBX-11 W or D) names the order it withdraws.",
                      hl7_error="missing_field")  # fmt: skip
    overtaken_by = _order_seen(patient=patient, source=source, sent_at=sent_at) if order else None
    for target in (CodeMapping.Target.LABS, CodeMapping.Target.VITALS):
        fields = values.get(target) or {}
        withdrawn = [w for w in withdrawals if w.target == target]
        if not fields and not withdrawn:
            continue
        if withdrawn and overtaken_by is None:
            stored += _withdraw(patient=patient, target=target, withdrawals=withdrawn, source=source, by=by, now=now)
        carried: dict = {}
        if correcting and order and overtaken_by is None:
            model = MODELS[target]
            earlier = model.objects.filter(patient=patient, source_system=source["source_system"],
                                           source_order=order, entered_in_error_at__isnull=True)  # fmt: skip
            for old in earlier.order_by("pk"):
                carried |= _carried(old, target)  # in pk order: a later row's value wins
                obs.observation_supersede(observation=old, reason=f"Corrected by message {label}", by=by, now=now)
        if not fields:
            continue
        where = {name: (w, seq) for name, (_, w, seq) in fields.items()}
        first = min(where.values(), key=lambda place: place[1])
        where |= {name: first for name in carried if name not in where}  # a carried value's error: the correction's
        where["recorded_at"] = time_where
        try:
            row = RECORD[target](
                patient=patient,
                recorded_at=recorded_at,
                source=source,
                by=by,
                now=now,
                **(carried | {name: value for name, (value, _, _) in fields.items()}),
            )
        except Invalid as exc:
            raise _invalid_to_refusal(exc, where) from exc
        if overtaken_by is not None:  # kept for the history, never the current value
            obs.observation_supersede(observation=row, reason=f"Sent before message {overtaken_by} of the same "
                                      "order, which arrived first", by=by, now=now)  # fmt: skip
        stored.append(row.source_id)
    return stored


# A vitals set is charted whole (vitals_record requires these): one of them withdrawn takes back the set.
VITALS_REQUIRED = ("sbp", "dbp", "heart_rate", "resp_rate", "spo2", "temp_c")
VITALS_CHOICES = ("rhythm", "other_pressor")


def _carried(old: LabResult | VitalSigns, target: str) -> dict:
    """What an earlier row of the order holds (its values, for vitals its choices too): a correction that does not
    send a test leaves that test as it was, so the corrected panel stays whole."""
    kept = {name: getattr(old, name) for name in BOUNDS[target] if getattr(old, name) is not None}
    if target == CodeMapping.Target.VITALS:
        kept |= {name: getattr(old, name) for name in VITALS_CHOICES if getattr(old, name)}
    return kept


def _withdraw(*, patient: Patient, target: str, withdrawals: list[Withdrawal], source: dict, by,
              now: datetime) -> list[str]:  # fmt: skip
    """Take back single tests of an order: each earlier current result of the order (same sender, OBR-3) that
    holds the withdrawn test (OBX-3 code, and OBX-4 sub-id when the withdrawal gives one) is marked
    entered-in-error (kept, audited), and the panel's other tests are recorded again at once as a new row (same
    time, same source message), so they stay current. A withdrawn vital takes its whole set (see VITALS_REQUIRED).
    A test with nothing to withdraw refuses the message (unknown_result at its OBX-11)."""
    model = MODELS[target]
    label = source["source_message_id"]
    rows: dict[int, tuple[LabResult | VitalSigns, list[Withdrawal]]] = {}
    for item in withdrawals:
        earlier = model.objects.filter(patient=patient, source_system=source["source_system"],
                                       source_order=source["source_order"], entered_in_error_at__isnull=True,
                                       **{f"{item.field}__isnull": False})  # fmt: skip
        matched = [row for row in earlier.order_by("pk") if not item.sub_id or _sent_with_sub_id(row, item)]
        if not matched:
            codes = ", ".join(code for _, code in item.codes)
            raise Refusal("unknown_result", "OBX-11", f"Nothing of {codes} in order {source['source_order']!r} from "
                          f"{source['source_system']} to withdraw.", hl7_error="unknown_patient",
                          seq=item.seq)  # fmt: skip
        for row in matched:
            rows.setdefault(row.pk, (row, []))[1].append(item)
    stored = []
    for old, items in rows.values():
        gone = {item.field for item in items}
        kept = {name: getattr(old, name) for name in BOUNDS[target] if name not in gone}
        kept = {name: value for name, value in kept.items() if value is not None}
        if target == CodeMapping.Target.VITALS:
            kept |= {name: getattr(old, name) for name in VITALS_CHOICES if getattr(old, name)}
            if gone & set(VITALS_REQUIRED):
                kept = {}
        codes = ", ".join(code for item in items for _, code in item.codes[:1])
        reason = f"Withdrawn by message {label} ({codes})"
        if kept:
            again = RECORD[target](patient=patient, recorded_at=old.recorded_at, by=by, now=now, **kept,
                                   source={name: getattr(old, name) for name in obs.SOURCE_FIELDS})  # fmt: skip
            reason += f"; the other results kept as {again.source_id}"
            stored.append(again.source_id)
        obs.observation_supersede(observation=old, reason=reason, by=by, now=now)
    return stored


def _sent_with_sub_id(row: Observation, item: Withdrawal) -> bool:
    """Whether the message that brought `row` sent the withdrawn test under the same OBX-4 sub-id (read from its
    stored raw text; a row whose message cannot be read does not match, so nothing is withdrawn by a guess)."""
    raw = (
        InboundMessage.objects.filter(source_system=row.source_system, control_id=row.source_message_id)
        .values_list("raw", flat=True)
        .first()
    )
    try:
        parsed = hl7v2.parse(raw) if raw else None
    except Refusal:
        parsed = None
    if parsed is None:
        return False
    wanted = {(canonical_system(system), code) for system, code in item.codes}
    return any(
        obx.sub_id == item.sub_id and wanted & {(canonical_system(system), code) for system, code in obx.codes}
        for group in parsed.groups
        if group.order_ref[:128] == row.source_order
        for obx in group.obx
    )


def _order_seen(*, patient: Patient, source: dict, sent_at: datetime | None) -> str | None:
    """Note this message as the newest of its order, unless a later one (by MSH-7) was seen: then return that
    one's control id (this message is older news). Without a send time, arrival order decides."""
    key = {"source_system": source["source_system"], "order_ref": source["source_order"]}
    control_id = source["source_message_id"]
    if connection.vendor == "postgresql":  # one statement instead of a locking read and a write (throughput)
        table = ResultOrder._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (source_system, order_ref, patient_id, last_sent_at, last_control_id) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source_system, order_ref) DO UPDATE SET "
                f"last_sent_at = COALESCE(EXCLUDED.last_sent_at, {table}.last_sent_at), "
                "last_control_id = EXCLUDED.last_control_id "
                f"WHERE EXCLUDED.last_sent_at IS NULL OR {table}.last_sent_at IS NULL "
                f"OR {table}.last_sent_at <= EXCLUDED.last_sent_at RETURNING 1",
                [key["source_system"], key["order_ref"], patient.pk, sent_at, control_id],
            )
            if cursor.fetchone() is not None:
                return None
        return ResultOrder.objects.filter(**key).values_list("last_control_id", flat=True).first()
    seen = ResultOrder.objects.select_for_update().filter(**key).first()
    if seen is None:
        ResultOrder.objects.create(**key, patient=patient, last_sent_at=sent_at, last_control_id=control_id)
        return None
    if sent_at is not None and seen.last_sent_at is not None and seen.last_sent_at > sent_at:
        return seen.last_control_id
    seen.last_sent_at, seen.last_control_id = sent_at or seen.last_sent_at, control_id
    seen.save(update_fields=["last_sent_at", "last_control_id"])
    return None


def _oru_patient(parsed: hl7v2.Parsed, context: Context) -> Patient:
    """The patient, locked (one ORU^R01 at a time per patient, whichever connection it came on: message order),
    read with the newest mapping version's id and the interface account's id in the same query."""
    mrn = _mrn(parsed)
    if not mrn:
        raise Refusal("unknown_patient", "PID-3", f"No identifier under the site's MRN system "
                      f"{settings.IL2WARD_HL7_MRN_AUTHORITY!r}.", hl7_error="unknown_patient")  # fmt: skip
    read = _oru_patient_postgres if connection.vendor == "postgresql" else _oru_patient_orm
    found = read(mrn)
    if found is None:
        raise Refusal("unknown_patient", "PID-3", "No patient with this MRN.", hl7_error="unknown_patient")
    patient, mapping_pk, interface_pk = found
    context.known(mapping_pk=mapping_pk, interface_pk=interface_pk)
    return patient


def _oru_patient_orm(mrn: str) -> tuple[Patient, int | None, int | None] | None:
    User = get_user_model()
    patient = (
        Patient.objects.select_for_update(of=("self",), no_key=True)  # a parent row (il2ward.db)
        .select_related("ward")
        .annotate(
            mapping_pk=Subquery(MappingVersion.objects.order_by("-number").values("pk")[:1]),
            interface_pk=Subquery(User.objects.filter(username=INTERFACE_USERNAME).values("pk")[:1]),
        )
        .filter(mrn=mrn)
        .first()
    )
    return None if patient is None else (patient, patient.mapping_pk, patient.interface_pk)


_patient_sql: str | None = None


def _oru_patient_postgres(mrn: str) -> tuple[Patient, int | None, int | None] | None:
    """The same read as _oru_patient_orm as one statement written once: compiling that queryset (the lock, the join,
    two subqueries) cost more Python than the rest of the patient's part of a message. Neither table has a column
    that needs a converter (from_db_value), so the rows are built from the values as the database gives them."""
    global _patient_sql
    patient_fields = [f.attname for f in Patient._meta.concrete_fields]
    ward_fields = [f.attname for f in Ward._meta.concrete_fields]
    if _patient_sql is None:
        User = get_user_model()

        def qn(name: str | None) -> str:
            return connection.ops.quote_name(str(name))

        columns = [f"p.{qn(f.column)}" for f in Patient._meta.concrete_fields]
        columns += [f"w.{qn(f.column)}" for f in Ward._meta.concrete_fields]
        _patient_sql = (
            f"SELECT {', '.join(columns)}, "
            f"(SELECT m.{qn(MappingVersion._meta.pk.column)} FROM {qn(MappingVersion._meta.db_table)} m "
            f"ORDER BY m.{qn(MappingVersion._meta.get_field('number').column)} DESC LIMIT 1), "
            f"(SELECT u.{qn(User._meta.pk.column)} FROM {qn(User._meta.db_table)} u "
            f"WHERE u.{qn(User._meta.get_field('username').column)} = %s LIMIT 1) "
            f"FROM {qn(Patient._meta.db_table)} p INNER JOIN {qn(Ward._meta.db_table)} w "
            f"ON w.{qn(Ward._meta.pk.column)} = p.{qn(Patient._meta.get_field('ward').column)} "
            f"WHERE p.{qn(Patient._meta.get_field('mrn').column)} = %s "
            "LIMIT 1 FOR NO KEY UPDATE OF p"  # a parent row (il2ward.db)
        )
    with connection.cursor() as cursor:
        cursor.execute(_patient_sql, [INTERFACE_USERNAME, mrn])
        found = cursor.fetchone()
    if found is None:
        return None
    n = len(patient_fields)
    patient = Patient.from_db(connection.alias, patient_fields, found[:n])
    ward = Ward.from_db(connection.alias, ward_fields, found[n : n + len(ward_fields)])
    Patient._meta.get_field("ward").set_cached_value(patient, ward)
    return patient, found[-2], found[-1]


@dataclass
class _Order:
    """What one OBR group of an ORU^R01 asks for."""

    group: hl7v2.Group
    values: dict
    withdrawals: list[Withdrawal]
    correcting: bool
    recorded_at: datetime | None
    time_where: tuple[str, int]


def _oru_order(group: hl7v2.Group, *, mapping: Mapping, zone) -> _Order:
    values: dict[str, dict] = {CodeMapping.Target.LABS: {}, CodeMapping.Target.VITALS: {}}
    correcting, withdrawals = False, []
    for obx in group.obx:
        if obx.status not in ACCEPTED_STATUSES:
            raise Refusal("unsupported_status", "OBX-11", f"Result status {obx.status or '(none)'!r} (accepted: "
                          f"{', '.join(ACCEPTED_STATUSES)}).", hl7_error="unknown_code", seq=obx.seq)  # fmt: skip
        row = mapping.find(obx.codes, obx.unit, where="OBX", seq=obx.seq)
        if row.target == CodeMapping.Target.IGNORE:
            continue
        if obx.status in WITHDRAWING:  # the value, if any, is the one withdrawn: not stored again
            withdrawals.append(Withdrawal(row.target, row.field, tuple(obx.codes), obx.sub_id, obx.seq))
            continue
        try:
            number = parse_number(obx.value)
        except NotANumber as exc:
            raise Refusal("impossible_value", "OBX-5", "Not a number.", hl7_error="bad_value", seq=obx.seq) from exc
        places = BOUNDS[row.target][row.field].places
        value = convert(number, factor=row.factor, divisor=row.divisor, offset=row.offset, places=places)
        if row.field in values[row.target]:
            raise Refusal("duplicate_field", "OBX-3", f"Two results for {row.field} in one order.",
                          hl7_error="other", seq=obx.seq)  # fmt: skip
        values[row.target][row.field] = (value, "OBX-5", obx.seq)
        correcting |= obx.status in CORRECTING
    recorded_at, time_where = None, ("OBR-7", max(group.seq, 1))
    if any(values.values()):
        if group.obr_at:
            text = group.obr_at
        elif group.obx and group.obx[0].observed_at:
            text, time_where = group.obx[0].observed_at, ("OBX-14", group.obx[0].seq)
        else:
            text = ""
        recorded_at = hl7v2.parse_time(text, zone=zone, where=time_where[0], seq=time_where[1])
    return _Order(group, values, withdrawals, correcting, recorded_at, time_where)


def _oru(parsed: hl7v2.Parsed, *, context: Context, now: datetime):
    """Each OBR group is one order at its own time (OBR-7, else its first OBX-14): a lab panel and/or a vitals set
    each. The whole message is checked before anything is written; a refusal stores none of it."""
    patient = _oru_patient(parsed, context)
    zone = patient.ward.zone
    orders = [_oru_order(group, mapping=context.mapping, zone=zone) for group in parsed.groups]
    if not any(any(o.values.values()) or o.withdrawals for o in orders):
        raise Refusal("missing_field", "OBX-3", "No result IL2Ward stores.", hl7_error="missing_field")
    sent_at = _sent_at(parsed, zone)
    stored = []
    for order in orders:
        source = {
            "source_system": parsed.sending_app[:64],
            "source_message_id": parsed.control_id[:128],
            "source_order": order.group.order_ref[:128],
        }
        stored += observations_record(patient=patient, values=order.values, recorded_at=order.recorded_at,
                                      time_where=order.time_where, source=source, correcting=order.correcting,
                                      withdrawals=order.withdrawals, sent_at=sent_at, by=context.by,
                                      now=now)  # fmt: skip
    return patient, stored


def _sent_at(parsed: hl7v2.Parsed, zone) -> datetime | None:
    """MSH-7, the message's time: the order of two messages about one order (None when absent or unreadable: then
    arrival order is all there is)."""
    try:
        return hl7v2.parse_time(parsed.sent_at, zone=zone, where="MSH-7")
    except Refusal:
        return None


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


def _adt_a01(parsed: hl7v2.Parsed, *, context: Context, now):
    mrn = _mrn(parsed)
    if not mrn:
        raise Refusal("unknown_patient", "PID-3", f"No identifier under the site's MRN system "
                      f"{settings.IL2WARD_HL7_MRN_AUTHORITY!r}.", hl7_error="unknown_patient")  # fmt: skip
    ward = _ward(parsed)
    at = _event_time(parsed, ward.zone)
    patient = _adt_call(patient_admit, PID_FIELDS, mrn=mrn, ward=ward, admitted_at=at, by=context.by,
                        now=now, **_demographics(parsed))  # fmt: skip
    return patient, [f"patient:{patient.pk}"]


def _adt_a02(parsed, *, context: Context, now):
    patient = _patient(parsed)
    ward = _ward(parsed)
    at = _event_time(parsed, ward.zone)
    _adt_call(patient_transfer, PID_FIELDS, patient=patient, ward=ward, transferred_at=at, by=context.by,
              now=now)  # fmt: skip
    return patient, [f"patient:{patient.pk}"]


def _adt_a03(parsed, *, context: Context, now):
    patient = _patient(parsed)
    at = _event_time(parsed, patient.ward.zone)
    _adt_call(patient_discharge, PID_FIELDS, patient=patient, discharged_at=at, by=context.by, now=now)
    return patient, [f"patient:{patient.pk}"]


def _adt_a08(parsed, *, context: Context, now):
    patient = _patient(parsed)
    given = {
        "name": parsed.name or None,
        "birth_date": hl7v2.parse_date(parsed.birth_date, where="PID-7") if parsed.birth_date else None,
        "sex": hl7v2.SEX.get(parsed.sex.upper()) if parsed.sex else None,
    }
    _adt_call(patient_update_demographics, PID_FIELDS, patient=patient, by=context.by, now=now, **given)
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
