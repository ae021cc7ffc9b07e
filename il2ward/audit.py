"""The append-only audit trail (hash chain) and e-signatures."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.http import HttpRequest

from il2ward.errors import Invalid
from il2ward.middleware import current_request_var, request_id_var
from il2ward.models import AuditEvent, Signature

GENESIS = "0" * 64
_CHAIN_LOCK_KEY = 7_240_211  # pg_advisory_xact_lock key serialising appends to the chain


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def jsonable(value):
    """Round-trip through canonical JSON so what is stored is exactly what was hashed."""
    return None if value is None else json.loads(canonical(value))


def _event_hash(
    prev_hash: str, *, at: datetime, actor_id, action, object_type, object_id, old, new, reason, request_id
):
    body = canonical(
        {
            "prev": prev_hash,
            "at": at.astimezone(UTC).isoformat(),  # the database gives the time back in UTC: hash it that way
            "actor": actor_id,
            "action": action,
            "type": object_type,
            "id": str(object_id),
            "old": old,
            "new": new,
            "reason": reason,
            "rid": request_id,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One event to append: who did what to which object, when, the values before and after, and why."""

    actor: object
    action: str
    obj: object  # a model instance, or (object type, object id)
    at: datetime
    old: object = None
    new: object = None
    reason: str = ""


def audit(*, actor, action: str, obj, at: datetime, old=None, new=None, reason: str = "") -> AuditEvent:
    """Append one event. Call inside the service's transaction so the event commits (or not) with the change."""
    return audit_many([Entry(actor, action, obj, at, old, new, reason)])[0]


def audit_many(entries: Iterable[Entry]) -> list[AuditEvent]:
    """Append events in their order, in three queries however many (PostgreSQL: the chain lock, the chain's head,
    one insert). Call inside the service's transaction so the events commit (or not) with the change.

    Called outside a transaction (autocommit), the read of the chain's head and the insert still run in one
    transaction of their own: otherwise the PostgreSQL advisory lock would be released after its own statement and two
    concurrent appends could fork the chain.
    """
    entries = list(entries)
    for entry in entries:
        if entry.at.tzinfo is None or entry.at.utcoffset() is None:
            raise ValueError(f"audit time must be timezone-aware, got {entry.at!r}")
    if not entries:
        return []
    if not connection.in_atomic_block:
        with transaction.atomic():
            return audit_many(entries)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # one writer at a time extends the chain, so it never forks
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    prev_hash = AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first() or GENESIS
    rows = []
    request_id = request_id_var.get()
    for entry in entries:
        obj = entry.obj
        fields = {
            "at": entry.at.astimezone(UTC),
            "actor_id": getattr(entry.actor, "pk", None),
            "action": entry.action,
            "object_type": obj._meta.label_lower if hasattr(obj, "_meta") else str(obj[0]),
            "object_id": str(obj.pk) if hasattr(obj, "_meta") else str(obj[1]),
            "old": jsonable(entry.old),
            "new": jsonable(entry.new),
            "reason": entry.reason,
            "request_id": request_id,
        }
        event_hash = _event_hash(prev_hash, **fields)
        rows.append(AuditEvent(prev_hash=prev_hash, hash=event_hash, **fields))
        prev_hash = event_hash
    # One multi-row INSERT: the ids are drawn in the rows' order, so the chain's order (by id) is the order above.
    return AuditEvent.objects.bulk_create(rows)


def verify_chain(batch: int = 2000) -> AuditEvent | None:
    """Return the first event whose hash or link does not match, or None when the whole chain is intact."""
    prev_hash = GENESIS
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=batch):
        expected = _event_hash(
            prev_hash,
            at=event.at,
            actor_id=event.actor_id,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            old=event.old,
            new=event.new,
            reason=event.reason,
            request_id=event.request_id,
        )
        if event.prev_hash != prev_hash or event.hash != expected:
            return event
        prev_hash = event.hash
    return None


def record_hash(record: dict) -> str:
    return hashlib.sha256(canonical(record).encode()).hexdigest()


def password_check_request() -> HttpRequest:
    """The request a re-entered password arrived with (the lock-out backend needs one); a bare one outside a request
    (a management command, a service called directly)."""
    return current_request_var.get() or HttpRequest()


def check_password_again(user, password: str, field: str = "password") -> None:
    """E-signatures need the password re-entered (ARCHITECTURE.md, Audit and signatures)."""
    if not password or authenticate(password_check_request(), username=user.get_username(), password=password) is None:
        raise Invalid({field: ["Password does not match; enter your own password to sign."]})


def sign(*, signer, password: str, meaning: str, obj, record: dict, at: datetime) -> Signature:
    """Create an e-signature over `record` (the signed content) after re-checking the signer's password."""
    check_password_again(signer, password)
    profile = getattr(signer, "profile", None)
    printed = (profile.printed_name if profile else "") or signer.get_full_name() or signer.get_username()
    signature = Signature.objects.create(
        signer=signer,
        printed_name=printed,
        meaning=meaning,
        signed_at=at,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        record_hash=record_hash(record),
    )
    audit(
        actor=signer,
        action="signature.create",
        obj=signature,
        at=at,
        new={
            "meaning": meaning,
            "object": f"{signature.object_type}:{signature.object_id}",
            "record_hash": signature.record_hash,
        },
    )
    return signature
