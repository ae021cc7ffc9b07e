"""The append-only audit trail (a keyed hash chain with signed checkpoints outside the database) and e-signatures.

Each row's hash is HMAC-SHA256 over the row and the previous row's hash, keyed with a secret from the environment
(IL2WARD_AUDIT_KEYS; the row stores the key's id), so whoever can write to the database but does not hold the key
cannot re-hash an edited chain. Rows written before the chain was keyed have an empty key id and a plain SHA-256
hash; they are accepted only as the chain's beginning, before the first keyed row, and the first checkpoint written
after the upgrade anchors them. A checkpoint (head hash, row count, last id, time, HMAC) is appended to a file
outside the database on a schedule, so a cut tail is found too.
"""

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.http import HttpRequest

from il2ward import board_version, people
from il2ward.db import insert
from il2ward.errors import Invalid
from il2ward.middleware import current_request_var, request_id_var
from il2ward.models import AuditEvent, Signature

log = logging.getLogger(__name__)
checkpoint_log = logging.getLogger("il2ward.audit.checkpoint")

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


def signing_key() -> tuple[str, str]:
    """The key id and secret that sign new rows and checkpoints (the first of IL2WARD_AUDIT_KEYS)."""
    kid, secret = next(iter(settings.IL2WARD_AUDIT_KEYS.items()))
    return kid, secret


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def _event_body(prev_hash: str, *, at, actor_id, action, object_type, object_id, old, new, reason, request_id):
    return {
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


def _event_hash(prev_hash: str, *, key_id: str, secret: str | None, **fields) -> str:
    """HMAC-SHA256 of the row (its key id included) keyed with `secret`; key id "" is the unkeyed legacy form."""
    body = _event_body(prev_hash, **fields)
    if not key_id:
        return hashlib.sha256(canonical(body).encode()).hexdigest()
    return _mac(secret, canonical({**body, "kid": key_id}))


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
    prev_hash = _lock_chain_and_read_head() or GENESIS
    key_id, secret = signing_key()
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
        event_hash = _event_hash(prev_hash, key_id=key_id, secret=secret, **fields)
        rows.append(AuditEvent(prev_hash=prev_hash, hash=event_hash, key_id=key_id, **fields))
        prev_hash = event_hash
    # Every audited change may change a ward's board: its poll's ETag moves after the commit.
    board_version.changed_objects(entry.obj for entry in entries)
    # One multi-row INSERT: the ids are drawn in the rows' order, so the chain's order (by id) is the order above.
    insert(rows)
    return rows


_HEAD_SQL: str | None = None


def _lock_chain_and_read_head() -> str | None:
    """Take the chain's lock (PostgreSQL: one writer at a time extends the chain, so it never forks), then read its
    head's hash. On PostgreSQL both go in one round trip as two statements of one simple query: each statement of a
    READ COMMITTED transaction reads with a snapshot taken when it starts, so the head is read after the lock is
    granted and sees any append committed while this one waited (one statement doing both would read with the
    snapshot taken before the wait, and fork the chain)."""
    global _HEAD_SQL
    if connection.vendor != "postgresql":
        return AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first()
    if _HEAD_SQL is None:
        table, pk = connection.ops.quote_name(AuditEvent._meta.db_table), AuditEvent._meta.pk.column
        _HEAD_SQL = (f"SELECT pg_advisory_xact_lock({int(_CHAIN_LOCK_KEY)}); "
                     f"SELECT hash FROM {table} ORDER BY {connection.ops.quote_name(pk)} DESC LIMIT 1")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_HEAD_SQL)  # no parameters: sent as a simple query, which may hold two statements
        if not cursor.nextset():
            raise AssertionError("the chain's head was not read")
        head = cursor.fetchone()
    return head[0] if head else None


def _row_problem(event: AuditEvent, prev_hash: str, keyed_seen: bool) -> str | None:
    if event.prev_hash != prev_hash:
        return "its link to the previous row does not match (a row was edited, removed or moved)"
    if not event.key_id and keyed_seen:
        return "an unkeyed row after keyed rows"
    secret = settings.IL2WARD_AUDIT_KEYS.get(event.key_id) if event.key_id else None
    if event.key_id and secret is None:
        return f"signed with key {event.key_id!r}, which is not configured"
    expected = _event_hash(
        prev_hash,
        key_id=event.key_id,
        secret=secret,
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
    if not hmac.compare_digest(event.hash, expected):
        return "its hash does not match its content"
    return None


def verify_chain(batch: int = 2000) -> AuditEvent | None:
    """Return the first event whose hash or link does not match, or None when the whole chain is intact."""
    prev_hash, keyed_seen = GENESIS, False
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=batch):
        if _row_problem(event, prev_hash, keyed_seen) is not None:
            return event
        prev_hash, keyed_seen = event.hash, keyed_seen or bool(event.key_id)
    return None


# --- checkpoints ------------------------------------------------------------------------------------------------


def _checkpoint_mac(record: dict, secret: str) -> str:
    return _mac(secret, canonical({k: v for k, v in record.items() if k != "hmac"}))


def checkpoint_write(*, now: datetime, path: os.PathLike | str | None = None) -> dict:
    """Append a signed checkpoint of the chain's head (last id, its hash, row count) to the sink outside the database
    and log it; return it. Reads the head under the chain lock, so no append is half-counted."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        head = AuditEvent.objects.order_by("-pk").values("pk", "hash").first()
        count = AuditEvent.objects.count()
    key_id, secret = signing_key()
    record = {
        "at": now.astimezone(UTC).isoformat(),
        "count": count,
        "last_id": head["pk"] if head else 0,
        "head": head["hash"] if head else GENESIS,
        "kid": key_id,
    }
    record["hmac"] = _checkpoint_mac(record, secret)
    line = canonical(record)
    target = os.fspath(path or settings.IL2WARD_AUDIT_CHECKPOINT_FILE)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    checkpoint_log.info("audit checkpoint %s", line)
    return record


class CheckpointError(Exception):
    """The checkpoint sink holds a line that does not verify (edited or forged)."""


def latest_checkpoint(path: os.PathLike | str | None = None) -> dict | None:
    """The last checkpoint in the sink, every line's signature checked; None when there is none yet."""
    target = os.fspath(path or settings.IL2WARD_AUDIT_CHECKPOINT_FILE)
    try:
        with open(target, encoding="utf-8") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    latest = None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            secret = settings.IL2WARD_AUDIT_KEYS.get(record.get("kid"))
            valid = secret is not None and hmac.compare_digest(str(record.get("hmac")), _checkpoint_mac(record, secret))
        except (ValueError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise CheckpointError(f"checkpoint line {number} of {target} does not verify")
        latest = record
    return latest


@dataclass(frozen=True)
class TrailReport:
    count: int  # rows in the trail
    legacy: int  # unkeyed rows at the chain's start (written before the chain was keyed)
    checkpoint: dict | None  # the latest checkpoint checked against
    bad_event: AuditEvent | None = None  # the first row that does not verify
    problem: str = ""  # what is wrong, "" when intact

    @property
    def intact(self) -> bool:
        return not self.problem


def verify_trail(*, checkpoint_path: os.PathLike | str | None = None, batch: int = 2000) -> TrailReport:
    """Walk the chain (links, per-row HMAC with the row's key) and check it against the latest signed checkpoint:
    the checkpointed head row must still exist with the same hash and as many rows up to it."""
    checkpoint = latest_checkpoint(checkpoint_path)
    prev_hash, keyed_seen, count, legacy, upto_checkpoint = GENESIS, False, 0, 0, 0
    head_seen = None
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=batch):
        problem = _row_problem(event, prev_hash, keyed_seen)
        if problem is not None:
            return TrailReport(count, legacy, checkpoint, event, f"event {event.pk}: {problem}")
        count += 1
        legacy += not event.key_id
        if checkpoint and event.pk <= checkpoint["last_id"]:
            upto_checkpoint += 1
            if event.pk == checkpoint["last_id"]:
                head_seen = event
        prev_hash, keyed_seen = event.hash, keyed_seen or bool(event.key_id)
    if checkpoint and checkpoint["count"]:
        if head_seen is None or upto_checkpoint != checkpoint["count"]:
            return TrailReport(
                count,
                legacy,
                checkpoint,
                None,
                f"truncated: the checkpoint of {checkpoint['at']} covers {checkpoint['count']} events up to event "
                f"{checkpoint['last_id']}; {upto_checkpoint} of them remain",
            )
        if not hmac.compare_digest(head_seen.hash, checkpoint["head"]):
            return TrailReport(
                count,
                legacy,
                checkpoint,
                head_seen,
                f"event {head_seen.pk}: its hash differs from the checkpoint of {checkpoint['at']}",
            )
    return TrailReport(count, legacy, checkpoint)


def record_hash(record: dict) -> str:
    return hashlib.sha256(canonical(record).encode()).hexdigest()


def password_check_request() -> HttpRequest:
    """The request a re-entered password arrived with (the lock-out backend needs one); a bare one outside a request
    (a management command, a service called directly)."""
    return current_request_var.get() or HttpRequest()


def check_password_again(user, password: str, field: str = "password") -> None:
    """E-signatures need the password re-entered (ARCHITECTURE.md, Audit and signatures)."""
    from il2ward.security import password_purpose

    token = password_purpose.set("e-signature")
    try:
        ok = bool(password) and authenticate(password_check_request(), username=user.get_username(), password=password)
    finally:
        password_purpose.reset(token)
    if not ok:
        raise Invalid({field: ["Password does not match; enter your own password to sign."]})


def sign(*, signer, password: str, meaning: str, obj, record: dict, at: datetime) -> Signature:
    """Create an e-signature over `record` (the signed content) after re-checking the signer's password."""
    check_password_again(signer, password)
    signature = Signature.objects.create(
        signer=signer,
        printed_name=people.printed_name(signer),
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
