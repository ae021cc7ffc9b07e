"""il2ward.db.retry_transaction against a real PostgreSQL deadlock: two threads lock two rows in opposite orders.
Undecorated, the database aborts one of them (the fault is real); decorated, both complete. Errors that are not a
deadlock or a serialization failure, and calls inside an outer transaction, are not retried."""

import threading

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from il2ward.db import retry_transaction
from il2ward.models import Heartbeat
from tests.workers import require_postgres

pytestmark = [pytest.mark.postgres]


def opposite_orders(decorate) -> tuple[list[Exception], list[int]]:
    """Each thread locks its first row, waits for the other to do the same, then locks its second row."""
    now = timezone.now()
    a, b = (Heartbeat.objects.create(name=n, at=now).pk for n in ("lock-a", "lock-b"))
    barrier = threading.Barrier(2)
    errors: list[Exception] = []
    calls = [0, 0]

    def body(i, first, second):
        calls[i] += 1
        Heartbeat.objects.select_for_update().get(pk=first)
        if calls[i] == 1:
            barrier.wait(timeout=30)  # both hold their first row: a lock cycle, on the first attempt only
        Heartbeat.objects.select_for_update().get(pk=second)

    def run(i, first, second):
        service = decorate(transaction.atomic(lambda: body(i, first, second)))
        try:
            service()
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in ((0, a, b), (1, b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors, calls


def test_without_the_retry_the_deadlock_reaches_the_caller(transactional_db):
    require_postgres()
    errors, _ = opposite_orders(lambda f: f)
    assert len(errors) == 1 and isinstance(errors[0], OperationalError), errors
    assert "deadlock" in str(errors[0])


def test_with_the_retry_both_transactions_complete(transactional_db):
    require_postgres()
    errors, calls = opposite_orders(retry_transaction)
    assert errors == []
    assert sorted(calls) == [1, 2]  # the deadlock victim ran once more


def test_other_errors_are_not_retried(transactional_db):
    require_postgres()
    calls = []

    @retry_transaction
    @transaction.atomic
    def duplicate():
        calls.append(1)
        Heartbeat.objects.create(name="same", at=timezone.now())

    duplicate()
    with pytest.raises(IntegrityError):
        duplicate()
    assert len(calls) == 2


def test_inside_an_outer_transaction_nothing_is_retried(db):
    require_postgres()
    calls = []

    @retry_transaction
    def aborted():
        calls.append(1)
        with connection.cursor() as cursor:  # what PostgreSQL raises for a deadlock victim
            cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$")

    with pytest.raises(OperationalError):
        aborted()
    assert calls == [1]
