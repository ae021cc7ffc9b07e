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

from il2ward.audit import GENESIS, Entry, _event_hash, audit, audit_many, verify_chain
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


def test_an_edit_with_its_hash_recomputed_is_found_at_the_next_row(three_events):
    """Whoever knows the hash formula can make an edited row verify by itself; the next row's link still breaks."""
    target, following = three_events[0], three_events[1]
    forged = _event_hash(
        target.prev_hash,
        at=target.at,
        actor_id=target.actor_id,
        action=target.action,
        object_type=target.object_type,
        object_id=target.object_id,
        old=target.old,
        new={**target.new, "name": "Forged"},
        reason=target.reason,
        request_id=target.request_id,
    )
    tamper(
        "UPDATE il2ward_auditevent SET new = %s, hash = %s WHERE id = %s",
        [json.dumps({**target.new, "name": "Forged"}), forged, target.pk],
    )
    assert verify_chain() == following


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
    assert f"audit chain intact: {AuditEvent.objects.count()} events" in capsys.readouterr().out


def test_verify_audit_chain_command_exits_non_zero_naming_the_bad_row(three_events, capsys):
    target = three_events[1]
    tamper("UPDATE il2ward_auditevent SET reason = %s WHERE id = %s", ["edited", target.pk])
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "verify_audit_chain"]).execute()
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    assert f"event {target.pk} " in err and "staff.create" in err


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
