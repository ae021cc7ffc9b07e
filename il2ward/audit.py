"""The append-only audit trail (hash chain) and e-signatures."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import authenticate
from django.db import connection, transaction

from il2ward.errors import Invalid
from il2ward.middleware import request_id_var
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


def audit(*, actor, action: str, obj, at: datetime, old=None, new=None, reason: str = "") -> AuditEvent:
    """Append one event. Call inside the service's transaction so the event commits (or not) with the change.

    Called outside a transaction (autocommit), the read of the chain's head and the insert still run in one
    transaction of their own: otherwise the PostgreSQL advisory lock would be released after its own statement and two
    concurrent appends could fork the chain.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"audit time must be timezone-aware, got {at!r}")
    if not connection.in_atomic_block:
        with transaction.atomic():
            return audit(actor=actor, action=action, obj=obj, at=at, old=old, new=new, reason=reason)
    at = at.astimezone(UTC)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # one writer at a time extends the chain, so it never forks
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    last = AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first()
    prev_hash = last or GENESIS
    fields = {
        "at": at,
        "actor_id": getattr(actor, "pk", None),
        "action": action,
        "object_type": obj._meta.label_lower if hasattr(obj, "_meta") else str(obj[0]),
        "object_id": str(obj.pk) if hasattr(obj, "_meta") else str(obj[1]),
        "old": jsonable(old),
        "new": jsonable(new),
        "reason": reason,
        "request_id": request_id_var.get(),
    }
    return AuditEvent.objects.create(prev_hash=prev_hash, hash=_event_hash(prev_hash, **fields), **fields)


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


def check_password_again(user, password: str, field: str = "password") -> None:
    """E-signatures need the password re-entered (ARCHITECTURE.md, Audit and signatures)."""
    if not password or authenticate(username=user.get_username(), password=password) is None:
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
