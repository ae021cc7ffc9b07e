"""PostgreSQL: the application's role cannot rewrite the audit trail, and whoever can (the owner) is found out.

The application connects as a role that does not own the tables (il2ward.dbroles; the session fixture in
tests/conftest.py creates it and grants it what production grants). That role may INSERT and SELECT audit rows and
nothing else on that table; it keeps normal DML elsewhere. The owner can still switch the trigger off and edit,
re-hash, reorder or cut the chain: without the HMAC key (outside the database) and against the signed checkpoint
(outside the database), verify_trail reports every such edit at its first bad row, or the truncation.
"""

import json

import psycopg
import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from il2ward.audit import _event_hash, audit, checkpoint_write, verify_trail
from il2ward.models import AuditEvent
from tests.conftest import APP_DB_ROLE, NOW
from tests.workers import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def app_role_connection() -> psycopg.Connection:
    """A connection to the test database as the application role (autocommit: each statement on its own)."""
    import os

    db = connection.settings_dict
    return psycopg.connect(
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        dbname=db["NAME"],
        user=APP_DB_ROLE,
        password=os.environ.get("IL2WARD_APP_DB_PASSWORD") or None,
        autocommit=True,
    )


@pytest.fixture
def app_db():
    require_postgres()
    conn = app_role_connection()
    try:
        yield conn
    finally:
        conn.close()


REFUSED = {
    "disable trigger": "ALTER TABLE il2ward_auditevent DISABLE TRIGGER il2ward_audit_append_only",
    "disable all triggers": "ALTER TABLE il2ward_auditevent DISABLE TRIGGER ALL",
    "truncate": "TRUNCATE il2ward_auditevent",
    "update": "UPDATE il2ward_auditevent SET reason = 'edited'",
    "delete": "DELETE FROM il2ward_auditevent",
    "drop": "DROP TABLE il2ward_auditevent",
    "drop trigger": "DROP TRIGGER il2ward_audit_append_only ON il2ward_auditevent",
    "take ownership": "ALTER TABLE il2ward_auditevent OWNER TO CURRENT_USER",
}


def test_the_application_role_is_not_the_owner_nor_a_superuser(app_db):
    row = app_db.execute(
        "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, t.tableowner FROM pg_roles r, pg_tables t "
        "WHERE r.rolname = current_user AND t.tablename = 'il2ward_auditevent'"
    ).fetchone()
    assert row[:3] == (False, False, False)
    assert row[3] != APP_DB_ROLE


@pytest.mark.parametrize("statement", REFUSED.values(), ids=REFUSED.keys())
def test_the_application_role_cannot_rewrite_the_audit_table(app_db, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_db.execute(statement)


def test_the_application_role_can_append_and_read_audit_rows(app_db):
    """The nearest allowed case: INSERT and SELECT (rolled back, so the test database keeps no row)."""
    with app_db.transaction(force_rollback=True):
        inserted = app_db.execute(
            "INSERT INTO il2ward_auditevent (at, action, object_type, object_id, reason, request_id, prev_hash, hash,"
            " key_id) VALUES (now(), 'test.insert', 'test.thing', '1', '', '', %s, %s, 'dev') RETURNING id",
            ["0" * 64, "f" * 64],
        ).fetchone()[0]
        assert app_db.execute("SELECT action FROM il2ward_auditevent WHERE id = %s", [inserted]).fetchone() == (
            "test.insert",
        )


def test_the_application_role_keeps_normal_dml_on_other_tables(app_db):
    with app_db.transaction(force_rollback=True):
        app_db.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES ('role-test', 'x', now())"
        )
        assert app_db.execute("UPDATE django_session SET session_data = 'y' WHERE session_key = 'role-test'").rowcount
        assert app_db.execute("DELETE FROM django_session WHERE session_key = 'role-test'").rowcount == 1


# --- the owner tampers; the verifier finds it ---------------------------------------------------------------------

ROWS = 10
COLUMNS = ("at", "actor_id", "action", "object_type", "object_id", "old", "new", "reason", "request_id")


@pytest.fixture
def chain(tmp_path):
    """ROWS audit rows and a signed checkpoint covering them all."""
    require_postgres()
    for i in range(ROWS):
        audit(
            actor=None,
            action="dose.administer",
            obj=("scheduling.dose", i + 1),
            at=NOW,
            new={"status": "given", "dose_iu": 42_000_000 + i},
        )
    path = tmp_path / "checkpoints.jsonl"
    checkpoint_write(now=NOW, path=path)
    return list(AuditEvent.objects.order_by("pk")), path


def _owner(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _forged_hash(prev_hash: str, row: dict) -> str:
    """What a forger without the key can compute: the HMAC with a guessed secret."""
    return _event_hash(prev_hash, key_id=row["key_id"], secret="guessed", **{c: row[c] for c in COLUMNS})


def _rows() -> list[dict]:
    return list(AuditEvent.objects.order_by("pk").values("pk", "prev_hash", "hash", "key_id", *COLUMNS))


def _rehash_from(index: int) -> None:
    """Re-link and re-hash every row from `index` on, as a forger covering an edit would."""
    rows = _rows()
    prev = rows[index - 1]["hash"] if index else "0" * 64
    for row in rows[index:]:
        forged = _forged_hash(prev, row)
        _owner("UPDATE il2ward_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [prev, forged, row["pk"]])
        prev = forged


def tamper(kind: str, i: int, j: int, events: list[AuditEvent]) -> tuple[int | None, str]:
    """Apply one tampering as the owner; return (the first bad row's id, or None for a truncation) and a label."""
    _owner("SET CONSTRAINTS ALL IMMEDIATE")
    _owner("ALTER TABLE il2ward_auditevent DISABLE TRIGGER il2ward_audit_append_only")
    target = events[i]
    if kind == "edit":
        _owner("UPDATE il2ward_auditevent SET new = %s WHERE id = %s", [json.dumps({"dose_iu": 4_200_000}), target.pk])
        return target.pk, kind
    if kind == "edit+rehash":
        _owner("UPDATE il2ward_auditevent SET new = %s WHERE id = %s", [json.dumps({"dose_iu": 4_200_000}), target.pk])
        _rehash_from(i)
        return target.pk, kind
    if kind == "edit+rehash-unkeyed":  # the old, unkeyed formula, which needs no secret
        _owner(
            "UPDATE il2ward_auditevent SET new = %s, key_id = '' WHERE id >= %s", ['{"dose_iu": 4200000}', target.pk]
        )
        rows, prev = _rows(), events[i - 1].hash if i else "0" * 64
        for row in rows[i:]:
            forged = _event_hash(prev, key_id="", secret=None, **{c: row[c] for c in COLUMNS})
            _owner("UPDATE il2ward_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [prev, forged, row["pk"]])
            prev = forged
        # From the start, an all-unkeyed chain is self-consistent: the checkpoint's head no longer matches.
        return (target.pk if i else events[-1].pk), kind
    if kind == "truncate":
        _owner("DELETE FROM il2ward_auditevent WHERE id >= %s", [target.pk])
        return None, kind
    if kind == "delete-middle":
        _owner("DELETE FROM il2ward_auditevent WHERE id = %s", [target.pk])
        return events[i + 1].pk, kind
    if kind == "delete-middle+rehash":
        _owner("DELETE FROM il2ward_auditevent WHERE id = %s", [target.pk])
        _rehash_from(i)  # the row now at index i is the one after the deleted row
        return events[i + 1].pk, kind
    if kind == "reorder":
        a, b = events[i], events[j]
        _owner("UPDATE il2ward_auditevent SET hash = 'swap' WHERE id = %s", [a.pk])
        for dst, src in ((b, a), (a, b)):
            _owner(
                "UPDATE il2ward_auditevent SET prev_hash = %s, hash = %s, at = %s, action = %s, object_id = %s, "
                "new = %s WHERE id = %s",
                [src.prev_hash, src.hash, src.at, src.action, src.object_id, json.dumps(src.new), dst.pk],
            )
        return a.pk, kind
    raise AssertionError(kind)


KINDS = ["edit", "edit+rehash", "edit+rehash-unkeyed", "truncate", "delete-middle", "delete-middle+rehash", "reorder"]


def check_found(kind: str, i: int, j: int, events, path) -> None:
    with transaction.atomic():  # a savepoint: the chain is untampered again afterwards
        expected, label = tamper(kind, i, j, events)
        report = verify_trail(checkpoint_path=path)
        transaction.set_rollback(True)
    assert not report.intact, f"{label} at row {i} went unnoticed"
    if expected is None:
        assert report.problem.startswith("truncated"), report.problem
    else:
        assert report.bad_event is not None and report.bad_event.pk == expected, (label, i, report.problem)


def test_an_untampered_chain_verifies_against_its_checkpoint(chain):
    _, path = chain
    report = verify_trail(checkpoint_path=path)
    assert report.intact, report.problem
    assert (report.count, report.checkpoint["count"]) == (ROWS, ROWS)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_tampering_by_the_owner_is_found(chain, data):
    events, path = chain
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    last = ROWS - 2 if kind.startswith("delete-middle") or kind == "reorder" else ROWS - 1
    i = data.draw(st.integers(0, last), label="row")
    j = data.draw(st.integers(i + 1, ROWS - 1), label="other") if kind == "reorder" else i
    check_found(kind, i, j, events, path)
    assert verify_trail(checkpoint_path=path).intact  # rolled back: the chain is whole again


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_each_tampering_at_the_first_a_middle_and_the_last_row_is_found(chain, kind, where):
    events, path = chain
    last = ROWS - 2 if kind.startswith("delete-middle") or kind == "reorder" else ROWS - 1
    i = {"first": 0, "middle": ROWS // 2, "last": last}[where]
    check_found(kind, i, ROWS - 1 if kind == "reorder" else i, events, path)
