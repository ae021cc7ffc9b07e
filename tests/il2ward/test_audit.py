"""The audit trail: every write of il2ward's services appends one hash-chained row; tampering is found.

On PostgreSQL the table itself refuses UPDATE and DELETE (a trigger); the tampering tests switch that trigger off
inside the test's own transaction (rolled back afterwards) to show that verify_chain still finds the edit.
"""

import json
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import ManagementUtility, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from il2ward.audit import (
    GENESIS,
    Entry,
    _event_hash,
    audit,
    audit_many,
    checkpoint_write,
    signing_key,
    verify_chain,
    verify_trail,
)
from il2ward.errors import Conflict, Invalid
from il2ward.models import AuditEvent, Ward
from il2ward.services import patient_create, staff_upsert, ward_upsert
from tests.conftest import NOW, PASSWORD
from tests.workers import require_postgres

pytestmark = pytest.mark.django_db


def events(action: str | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.order_by("pk")
    return list(qs.filter(action=action) if action else qs)


def tamper(sql: str, params: list) -> None:
    """Edit the audit table behind the application's back (in the test's transaction, so it is rolled back)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Deferred foreign-key checks of the rows just written would block ALTER TABLE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE il2ward_auditevent DISABLE TRIGGER il2ward_audit_append_only")
        cursor.execute(sql, params)


@pytest.fixture
def three_events(oncologist, ward_a):
    """A chain with a ward, staff and a patient in it; returns the events written after the fixtures' own."""
    before = AuditEvent.objects.count()
    ward = ward_upsert(code="onc-c", name="Oncology C", tz="Europe/London", by=oncologist, now=NOW)
    staff_upsert(username="nurse_c", role="nurse", password=PASSWORD, ward_codes=[ward.code], now=NOW)
    patient_create(mrn="C-1", name="Pat Gamma", birth_date=date(1980, 1, 1), ward=ward, by=oncologist, now=NOW)
    written = events()[before:]
    assert [e.action for e in written] == ["ward.create", "staff.create", "patient.create"]
    return written


# --- every service writes its row -------------------------------------------------------------------------------


def test_ward_upsert_create_writes_ward_create(oncologist):
    ward = ward_upsert(code="onc-z", name="Oncology Z", tz="Asia/Tokyo", by=oncologist, now=NOW)
    (event,) = events("ward.create")[-1:]
    assert (event.object_type, event.object_id) == ("il2ward.ward", str(ward.pk))
    assert event.actor_id == oncologist.pk
    assert event.at == NOW
    assert event.old is None
    assert event.new == {"code": "onc-z", "name": "Oncology Z", "tz": "Asia/Tokyo"}


def test_ward_upsert_update_writes_old_and_new_values(ward_a):
    before = AuditEvent.objects.count()
    ward = ward_upsert(code="onc-a", name="Oncology A East", tz="America/New_York", now=NOW)
    assert ward.pk == ward_a.pk and Ward.objects.count() == 1
    (event,) = events()[before:]
    assert event.action == "ward.update" and event.object_id == str(ward_a.pk)
    assert event.old == {"name": "Oncology A", "tz": "America/Chicago"}
    assert event.new == {"name": "Oncology A East", "tz": "America/New_York"}


def test_ward_upsert_without_a_change_writes_nothing(ward_a):
    before = AuditEvent.objects.count()
    ward_upsert(code="onc-a", name="Oncology A", tz="America/Chicago", now=NOW)
    assert AuditEvent.objects.count() == before


def test_ward_upsert_with_an_unknown_zone_writes_nothing(db):
    with pytest.raises(Invalid) as raised:
        ward_upsert(code="onc-x", name="X", tz="Mars/Olympus", now=NOW)
    assert "tz" in raised.value.errors
    assert not Ward.objects.exists() and not AuditEvent.objects.exists()


def test_staff_upsert_writes_create_then_update(ward_a, ward_b):
    user = staff_upsert(username="sam", role="nurse", password=PASSWORD, ward_codes=["onc-a"], now=NOW)
    staff_upsert(username="sam", role="charge_nurse", password="", ward_codes=["onc-a", "onc-b"], now=NOW)
    created, updated = events("staff.create")[-1], events("staff.update")[-1]
    assert created.object_type == "auth.user" and created.object_id == str(user.pk)
    assert created.new == {"username": "sam", "role": "nurse", "wards": ["onc-a"], "email_set": False}
    assert updated.object_id == str(user.pk)
    assert updated.new["role"] == "charge_nurse" and updated.new["wards"] == ["onc-a", "onc-b"]
    assert "password" not in json.dumps([created.new, updated.new])  # never the secret, not even hashed


def test_patient_create_writes_patient_create(ward_a, nurse_a):
    patient = patient_create(
        mrn="A-77", name="Pat Seven", birth_date=date(1971, 7, 7), ward=ward_a, sex="female", by=nurse_a, now=NOW
    )
    event = events("patient.create")[-1]
    assert (event.object_type, event.object_id, event.actor_id) == ("il2ward.patient", str(patient.pk), nurse_a.pk)
    assert event.new == {
        "mrn": "A-77",
        "name": "Pat Seven",
        "birth_date": "1971-07-07",
        "ward": "onc-a",
        "sex": "female",
    }


def test_a_refused_patient_create_writes_no_audit_row(patient_a, nurse_a):
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict) as raised:
        patient_create(
            mrn="A-0001", name="Again", birth_date=date(1990, 1, 1), ward=patient_a.ward, by=nurse_a, now=NOW
        )
    assert raised.value.code == "duplicate_mrn"
    assert AuditEvent.objects.count() == before


def test_each_event_links_to_the_one_before(three_events):
    chain = events()
    assert chain[0].prev_hash == GENESIS
    for earlier, later in zip(chain, chain[1:], strict=False):
        assert later.prev_hash == earlier.hash
    assert len({e.hash for e in chain}) == len(chain)


def test_request_id_of_the_api_call_is_recorded(api, nurse_a):
    response = api.as_user(nurse_a).post(
        "/api/v1/patients/",
        {"mrn": "A-RID", "name": "Pat Rid", "birth_date": "1970-01-01", "ward": "onc-a"},
        format="json",
        HTTP_X_REQUEST_ID="req-1234",
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-Id"] == "req-1234"
    assert events("patient.create")[-1].request_id == "req-1234"


# --- verify_chain -----------------------------------------------------------------------------------------------


def test_verify_chain_of_an_empty_trail_is_none(db):
    assert verify_chain() is None


def test_verify_chain_of_an_intact_trail_is_none(three_events):
    assert verify_chain() is None
    assert verify_chain(batch=1) is None  # across iterator chunks too


def test_events_appended_together_chain_in_their_order_in_three_queries(ward_a, django_assert_max_num_queries):
    """audit_many (a sweep closing many slots): one head read and one insert (and the chain lock on PostgreSQL)."""
    audit(actor=None, action="ward.touch", obj=ward_a, at=NOW)
    entries = [Entry(None, "ward.touch", ward_a, NOW + timedelta(seconds=i), new={"n": i}) for i in range(5)]
    with django_assert_max_num_queries(3):
        events = audit_many(entries)
    assert [e.new for e in events] == [{"n": i} for i in range(5)]
    assert [e.pk for e in events] == sorted(e.pk for e in events)
    stored = list(AuditEvent.objects.order_by("pk"))
    assert [e.prev_hash for e in stored[1:]] == [e.hash for e in stored[:-1]]
    assert verify_chain() is None


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "edited afterwards"),
        ("action", "ward.delete"),
        ("new", json.dumps({"code": "onc-c", "name": "Somewhere else", "tz": "Europe/London"})),
        ("at", datetime(2027, 3, 10, 12, 0, 1, tzinfo=UTC)),
        ("object_id", "999"),
    ],
)
def test_verify_chain_finds_the_first_tampered_row(three_events, column, value):
    target = three_events[1]
    tamper(f"UPDATE il2ward_auditevent SET {column} = %s WHERE id = %s", [value, target.pk])
    assert verify_chain() == target


def _forge(target, new, *, key_id, secret):
    return _event_hash(
        target.prev_hash,
        key_id=key_id,
        secret=secret,
        at=target.at,
        actor_id=target.actor_id,
        action=target.action,
        object_type=target.object_type,
        object_id=target.object_id,
        old=target.old,
        new=new,
        reason=target.reason,
        request_id=target.request_id,
    )


def test_an_edit_rehashed_with_the_key_is_found_at_the_next_row(three_events):
    """Even whoever holds the key and re-hashes one edited row breaks the next row's link."""
    target, following = three_events[0], three_events[1]
    kid, secret = signing_key()
    new = {**target.new, "name": "Forged"}
    tamper(
        "UPDATE il2ward_auditevent SET new = %s, hash = %s WHERE id = %s",
        [json.dumps(new), _forge(target, new, key_id=kid, secret=secret), target.pk],
    )
    assert verify_chain() == following


@pytest.mark.parametrize("forger", ["plain-sha256", "wrong-key"])
def test_an_edit_rehashed_without_the_key_is_found_at_the_edited_row(three_events, forger):
    """Without the secret (it lives outside the database) a re-hashed row no longer verifies by itself: the old
    unkeyed formula is refused after keyed rows, a guessed key does not match."""
    target = three_events[1]
    new = {**target.new, "role": "oncologist"}
    key_id, secret = ("", None) if forger == "plain-sha256" else (target.key_id, "guessed-secret")
    tamper(
        "UPDATE il2ward_auditevent SET new = %s, hash = %s, key_id = %s WHERE id = %s",
        [json.dumps(new), _forge(target, new, key_id=key_id, secret=secret), key_id, target.pk],
    )
    assert verify_chain() == target


def test_rows_are_signed_with_the_first_key_and_old_keys_still_verify(three_events, settings):
    assert {e.key_id for e in three_events} == {next(iter(settings.IL2WARD_AUDIT_KEYS))}
    old_keys = dict(settings.IL2WARD_AUDIT_KEYS)
    settings.IL2WARD_AUDIT_KEYS = {"k2": "a-new-secret-for-rotation-0123456789", **old_keys}
    event = audit(actor=None, action="test.rotated", obj=("test.thing", 1), at=NOW)
    assert event.key_id == "k2"
    assert verify_chain() is None
    settings.IL2WARD_AUDIT_KEYS = {"k2": "a-new-secret-for-rotation-0123456789"}  # the old key dropped: refused
    assert verify_chain() == events()[0]


def test_unkeyed_rows_from_before_the_upgrade_verify_only_as_the_chains_start(db):
    """Rows written by the unkeyed version (key id "") still verify; the chain continues keyed from their head."""
    fields = dict(
        at=NOW, actor_id=None, action="legacy.row", object_type="test.thing", object_id="1", old=None, new=None,
        reason="", request_id="",
    )  # fmt: skip
    legacy_hash = _event_hash(GENESIS, key_id="", secret=None, **fields)
    AuditEvent.objects.create(prev_hash=GENESIS, hash=legacy_hash, key_id="", **fields)
    keyed = audit(actor=None, action="test.after", obj=("test.thing", 2), at=NOW)
    assert keyed.prev_hash == legacy_hash and keyed.key_id
    report = verify_trail(checkpoint_path="/nonexistent/checkpoints")
    assert report.intact and (report.count, report.legacy) == (2, 1)


def test_verify_chain_finds_a_deleted_row(three_events):
    removed, following = three_events[1], three_events[2]
    tamper("DELETE FROM il2ward_auditevent WHERE id = %s", [removed.pk])
    assert verify_chain() == following  # its prev_hash points at a row that is gone


def test_an_event_timed_in_a_ward_zone_still_verifies(db):
    """The database gives `at` back in UTC; the hash must not depend on the zone the caller used."""
    local = datetime(2027, 3, 14, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    event = audit(actor=None, action="test.zone", obj=("test.thing", 1), at=local)
    assert AuditEvent.objects.get(pk=event.pk).at == local
    assert verify_chain() is None


def test_audit_refuses_a_naive_time(db):
    with pytest.raises(ValueError, match="aware"):
        audit(actor=None, action="test.naive", obj=("test.thing", 1), at=datetime(2027, 3, 14, 9, 0))
    assert not AuditEvent.objects.exists()


# --- the command ------------------------------------------------------------------------------------------------


def test_verify_audit_chain_command_reports_an_intact_chain(three_events, capsys):
    call_command("verify_audit_chain")
    out = capsys.readouterr().out
    assert f"audit chain intact: {AuditEvent.objects.count()} events" in out
    assert "no checkpoint yet" in out


def test_verify_audit_chain_command_checks_against_the_latest_checkpoint(three_events, capsys, settings):
    checkpoint_write(now=NOW)
    audit(actor=None, action="test.after-checkpoint", obj=("test.thing", 1), at=NOW)
    call_command("verify_audit_chain")
    out = capsys.readouterr().out
    assert f"audit chain intact: {AuditEvent.objects.count()} events" in out
    assert f"checkpoint of {NOW.isoformat()} ({AuditEvent.objects.count() - 1} events)" in out


def test_verify_audit_chain_command_reports_a_cut_tail_the_checkpoint_covered(three_events, capsys):
    checkpoint_write(now=NOW)
    last = three_events[-1]
    tamper("DELETE FROM il2ward_auditevent WHERE id = %s", [last.pk])
    assert verify_chain() is None  # what remains is a consistent chain: only the checkpoint shows the cut
    with pytest.raises(SystemExit):
        ManagementUtility(["manage.py", "verify_audit_chain"]).execute()
    err = capsys.readouterr().err
    assert f"truncated: the checkpoint of {NOW.isoformat()} covers" in err and f"up to event {last.pk}" in err


def test_a_forged_checkpoint_line_is_reported(three_events, capsys, settings):
    record = checkpoint_write(now=NOW)
    with open(settings.IL2WARD_AUDIT_CHECKPOINT_FILE, "a") as sink:  # a shorter trail's "checkpoint", unsigned
        sink.write(json.dumps({**record, "count": 1, "hmac": "0" * 64}) + "\n")
    with pytest.raises(SystemExit):
        ManagementUtility(["manage.py", "verify_audit_chain"]).execute()
    assert "checkpoint line 2" in capsys.readouterr().err


def test_checkpoint_is_signed_appended_and_logged(three_events, settings, caplog):
    caplog.set_level("INFO", logger="il2ward.audit.checkpoint")
    first = checkpoint_write(now=NOW)
    second = checkpoint_write(now=NOW + timedelta(minutes=5))
    lines = settings.IL2WARD_AUDIT_CHECKPOINT_FILE.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    head = events()[-1]
    assert (first["count"], first["last_id"], first["head"]) == (AuditEvent.objects.count(), head.pk, head.hash)
    assert first["kid"] == signing_key()[0] and len(first["hmac"]) == 64
    assert "audit checkpoint" in caplog.text and head.hash in caplog.text


def test_beat_schedules_the_checkpoint(settings):
    from il2ward.celery import app

    app.finalize(auto=True)  # the schedule is declared when the app is finalised
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["il2ward.audit_checkpoint"] == settings.IL2WARD_AUDIT_CHECKPOINT_SECONDS


def test_verify_audit_chain_command_exits_non_zero_naming_the_bad_row(three_events, capsys):
    target = three_events[1]
    tamper("UPDATE il2ward_auditevent SET reason = %s WHERE id = %s", ["edited", target.pk])
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "verify_audit_chain"]).execute()
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    assert f"event {target.pk}: its hash does not match" in err and "staff.create" in err


# --- PostgreSQL: the table refuses edits ------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_refuses_update_of_an_audit_row(three_events):
    require_postgres()
    target = three_events[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=target.pk).update(reason="edited")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE il2ward_auditevent SET action = 'x' WHERE id = %s", [target.pk])
    target.refresh_from_db()
    assert target.reason == "" and target.action == "ward.create"
    assert verify_chain() is None


@pytest.mark.postgres
def test_postgres_refuses_delete_of_an_audit_row(three_events):
    require_postgres()
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=three_events[1].pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM il2ward_auditevent")
    assert AuditEvent.objects.count() == count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_service_transaction", [True, False], ids=["in-service", "autocommit"])
def test_concurrent_appends_on_postgres_keep_one_unbroken_chain(transactional_db, in_service_transaction):
    """8 threads append at once (through a service, and bare in autocommit): no fork, no lost row."""
    require_postgres()
    threads, per_thread = 8, 6
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            start.wait(timeout=30)
            for j in range(per_thread):
                if in_service_transaction:
                    ward_upsert(code=f"w{i}-{j}", name=f"Ward {i}-{j}", tz="UTC", now=timezone.now())
                else:
                    audit(actor=None, action="test.append", obj=("test.thing", f"{i}-{j}"), at=timezone.now())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=append, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    chain = events()
    assert len(chain) == threads * per_thread
    prev_hashes = [e.prev_hash for e in chain]
    assert len(set(prev_hashes)) == len(prev_hashes), "two events claim the same predecessor: the chain forked"
    assert verify_chain() is None
    assert max(e.at for e in chain) - min(e.at for e in chain) < timedelta(minutes=2)
