"""A bounded retry of a whole transaction that PostgreSQL aborted to break a deadlock or a serialization conflict.

Lock order (every service): patient → course → dose → audit chain. Parent rows are locked FOR NO KEY UPDATE
(`select_for_update(of=("self",), no_key=True)`), never FOR UPDATE: Django's foreign keys are checked at commit, and
each child row committed (a vitals set, an evaluation, a signature) then takes a KEY SHARE lock on its parent, which
FOR UPDATE blocks. A service holding a parent FOR UPDATE while waiting for the audit chain's lock, and another holding
the chain's lock while its commit waits for that KEY SHARE, is the deadlock this order avoids. The audit chain's lock
is the last lock a service takes (il2ward.audit).

What remains (a lock a library takes, an order not yet followed) is retried here: the transaction is rolled back by
the database, so running the service again from the start is safe; it re-reads everything it decides on.
"""

import functools
import logging
import random
import time

from django.db import OperationalError, connection

log = logging.getLogger(__name__)

# SQLSTATE deadlock_detected and serialization_failure: the database rolled the transaction back; try again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_retryable(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_transaction(func=None, *, attempts: int = 4):
    """Run `func` (which opens its own transaction: put this above @transaction.atomic) again when the database
    aborted it on a deadlock or a serialization conflict, up to `attempts` times in all, with a short random pause.

    Inside an outer transaction nothing is retried: the outer block is already aborted, only its owner can retry.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except OperationalError as exc:
                    if attempt == attempts or connection.in_atomic_block or not is_retryable(exc):
                        raise
                    log.warning("%s: %s, retrying (%d of %d)", func.__name__, type(exc.__cause__).__name__,
                                attempt, attempts - 1)  # fmt: skip
                    time.sleep(random.uniform(0.005, 0.05) * attempt)  # apart, so the two do not collide again
            raise AssertionError("unreachable")

        return wrapper

    return decorate(func) if func is not None else decorate
