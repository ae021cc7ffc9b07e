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
from collections.abc import Callable, Sequence
from datetime import datetime

from django.db import OperationalError, connection, connections
from django.db.models import signals

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


_INSERTS: dict[tuple[type, int], tuple[str, list]] = {}
_CACHED_ROWS = 8  # statements for more rows at once are rare: built each time, so the cache stays small


def insert(objs: list) -> None:
    """INSERT new rows of one model as one statement (RETURNING their ids, drawn in the rows' order), as
    bulk_create(objs) or, for one row, save(force_insert=True) would: the fields' pre_save (auto_now_add) and
    database preparation, the rows' state and pk set. On PostgreSQL the statement is built once per model and row
    count (compiling an INSERT costs more Python than the rest of a small write); anything that needs the ORM's full
    path (save signals, inherited tables, database defaults, expressions, another database) takes it."""
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    if (connection.vendor != "postgresql" or meta.parents or signals.pre_save.has_listeners(model)
            or signals.post_save.has_listeners(model)):  # fmt: skip
        _insert_orm(model, objs)
        return
    key = (model, len(objs))
    built = _INSERTS.get(key)
    if built is None:
        fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
        if any(f.db_returning or f.has_db_default() or f.generated for f in fields) or meta.auto_field is None:
            _insert_orm(model, objs)
            return
        qn = connection.ops.quote_name
        row = f"({', '.join(['%s'] * len(fields))})"
        built = (
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) VALUES "
            f"{', '.join([row] * len(objs))} RETURNING {qn(meta.auto_field.column)}",
            fields,
        )
        if len(objs) <= _CACHED_ROWS:
            _INSERTS[key] = built
    sql, fields = built
    params = []
    for obj in objs:
        if obj.pk is not None:
            _insert_orm(model, objs)
            return
        for field in fields:
            value = field.pre_save(obj, True)
            if hasattr(value, "resolve_expression"):
                _insert_orm(model, objs)
                return
            params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchall()
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias


def _insert_orm(model, objs: list) -> None:
    if len(objs) == 1:
        objs[0].save(force_insert=True, using=connection.alias)
    else:
        model._default_manager.bulk_create(objs)


class Statement:
    """A read written once in SQL, for a page whose Django query building cost more than the query itself (the ward
    board: ~8 ms of compiling a page, and as much again building model instances). `build(connection)` returns the
    SQL — standard SQL for SQLite and PostgreSQL alike, with %(name)s parameters — once per process and database;
    `fields` names the model field behind each column it returns (None: a value taken as the database gives it), whose
    converters make each value what the ORM would give (SQLite sends datetimes and JSON as text). Rows come back as
    lists, in the statement's order."""

    def __init__(self, build: Callable[..., str], fields: Sequence):
        self._build = build
        self._fields = tuple(fields)
        self._built: dict[str, tuple[str, list]] = {}

    def _prepared(self, db) -> tuple[str, list]:
        if db.alias not in self._built:
            converters = []
            for field in self._fields:
                if field is None:
                    converters.append(())
                    continue
                column = field.get_col(field.model._meta.db_table)
                found = [*db.ops.get_db_converters(column), *field.get_db_converters(db)]
                converters.append(tuple((converter, column) for converter in found))
            self._built[db.alias] = (self._build(db), converters)
        return self._built[db.alias]

    def rows(self, params: dict, *, using: str = "default") -> list[list]:
        db = connections[using]
        sql, converters = self._prepared(db)
        adapt = db.ops.adapt_datetimefield_value
        params = {key: adapt(value) if isinstance(value, datetime) else value for key, value in params.items()}
        with db.cursor() as cursor:
            if db.vendor == "postgresql":
                from psycopg.types.datetime import TimestamptzLoader

                # psycopg's compiled timestamptz loader (register_loader picks it) instead of Django's, which is
                # Python and cost more than half a board's time on the client. The same instants, aware, in the
                # session's time zone (UTC: Django sets it).
                cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        rows = []
        for raw in fetched:
            row = list(raw)
            for i, pairs in enumerate(converters):
                for converter, column in pairs:
                    row[i] = converter(row[i], column, db)
            rows.append(row)
        return rows


def table_names(db, **models) -> dict[str, str]:
    """{"dose": '"scheduling_dose"', ...}: the quoted table of each model, to format a Statement's SQL."""
    return {key: db.ops.quote_name(model._meta.db_table) for key, model in models.items()}
