"""The ward board's version: a counter on the ward, bumped after every commit that changes what its board shows.

The board's poll answers 304 while the counter and the minute have not moved (scheduling/mar/views.py): reading it
costs nothing, since the view loads the ward anyway. Why a counter and not the latest of the rows' timestamps: most
rows the board reads have no "changed at" (a flag, a lapse, an entered-in-error are updates), and a maximum over a
month of a ward's history is not a constant-cost read.

Who bumps it: `audit_many` (il2ward/audit.py) for every audited change — every clinical and identity change is
audited, so that one place sees them all — and, for what is derived and not audited, the evaluation that sets a
dose's flag (scheduling/services/evaluation.py). Objects are mapped to their ward by the id they carry (a patient's
ward, a course's or observation's patient, a dose's course, an administration's, hold's or override's dose, a
nurse's assigned patients), in one UPDATE per transaction, after the commit: the board never sees a version newer than
the rows it reads, and the ward row is not locked for the writer's whole transaction. A bump lost to a crash between
the commit and the UPDATE is caught up within a minute (the ETag carries the minute too).
"""

import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q

from il2ward import deferral

log = logging.getLogger(__name__)

_ATTR = "_il2ward_board_changes"


def _pending() -> dict[str, set] | None:
    """This transaction's pending ids, if its flush is still registered (a rollback drops the flush and the ids)."""
    changes = getattr(connection, _ATTR, None)
    registered = any(func is _flush for _, func, _ in connection.run_on_commit)
    return changes if registered else None


def _flush() -> None:
    changes = getattr(connection, _ATTR, None) or {}
    setattr(connection, _ATTR, None)
    gathered = deferral.current()
    if gathered is not None:  # the HL7 listener: one UPDATE for a window's messages, after their ACKs
        gathered.gather("board_version", changes, _bump)
        return
    _bump(changes)


def _bump(changes: dict[str, set]) -> None:
    from il2ward.models import Ward

    query = Q()
    for lookup, ids in changes.items():
        if ids:
            query |= Q(pk__in=Ward.objects.filter(**{f"{lookup}__in": ids}).values("pk"))
    if not query:
        return
    try:
        Ward.objects.filter(query).update(board_version=F("board_version") + 1)
    except DatabaseError:  # after the commit: the change is saved; the board catches up at the next minute
        log.warning("ward board version not bumped", exc_info=True)


def changed(*, wards=(), patients=(), courses=(), doses=(), nurses=()) -> None:
    """Mark the boards showing these objects as changed, once the current transaction commits (now, outside one)."""
    ids = {"pk": wards, "patients__pk": patients, "patients__courses__pk": courses}
    ids |= {"patients__courses__doses__pk": doses, "patients__assigned_nurse__pk": nurses}
    if not any(ids.values()):
        return
    if not connection.in_atomic_block:
        setattr(connection, _ATTR, {k: set(v) for k, v in ids.items()})
        _flush()
        return
    pending = _pending()
    if pending is None:
        pending = {k: set() for k in ids}
        setattr(connection, _ATTR, pending)
        transaction.on_commit(_flush)
    for key, values in ids.items():
        pending[key].update(v for v in values if v is not None)


def changed_objects(objects) -> None:
    """`changed` for audited objects: each mapped to its ward by the id it carries (see _LOOKUPS)."""
    found: dict[str, list] = {}
    user_model = settings.AUTH_USER_MODEL.lower()
    for obj in objects:
        meta = getattr(obj, "_meta", None)
        if meta is None:
            continue
        if meta.label_lower == "il2ward.ward":
            found.setdefault("wards", []).append(obj.pk)
        elif meta.label_lower == "il2ward.patient":
            found.setdefault("patients", []).append(obj.pk)
        elif meta.label_lower == user_model:
            found.setdefault("nurses", []).append(obj.pk)  # a printed name on the rows of her patients
        else:
            for attr, key in (("patient_id", "patients"), ("course_id", "courses"), ("dose_id", "doses")):
                value = getattr(obj, attr, None)
                if value is not None:
                    found.setdefault(key, []).append(value)
                    break
    if found:
        changed(**found)
