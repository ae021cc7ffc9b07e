"""A sweep step that survives a bad row: its items are processed together, and only when that fails one at a time.

The sweep's steps work in batches in a constant number of queries (the slots entering their window, the slots to
close, the reminders of a chunk). One item that cannot be processed (a row a hand edit broke, a value the code did
not foresee) would fail its whole batch, every interval, until a person fixed the row. So when a batch raises, its
transaction has rolled back and each of its items runs alone in a transaction of its own (a savepoint inside a
caller's): an item that fails again is rolled back, logged by its kind and id and the exception's class (never the
exception's text, which may quote the row), and pushed back: it stays what it was, so the next sweep takes it again,
while the other items complete. A batch that succeeds costs nothing more: no savepoint per item, the same queries.

The sweep (scheduling.tasks) collects the pushed-back items of each step while it runs and records them in the
step's heartbeat, which /readyz reads.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class PushedBack:
    """The items one step of the sweep left for the next sweep, as "<kind> <id>" (no patient data)."""

    step: str
    items: list[str] = field(default_factory=list)


_current: ContextVar[PushedBack | None] = ContextVar("pushed_back", default=None)


@contextmanager
def collecting(step: str) -> Iterator[PushedBack]:
    """The items pushed back while the block runs (one step of the sweep) are collected into the value yielded."""
    pushed = PushedBack(step)
    token = _current.set(pushed)
    try:
        yield pushed
    finally:
        _current.reset(token)


def push_back(item: str, exc: BaseException) -> None:
    current = _current.get()
    step = current.step if current else "-"
    log.error("sweep step %s: %s failed (%s), left for the next sweep", step, item, type(exc).__name__)
    if current is not None and item not in current.items:  # two reminders of one slot: one item to look at
        current.items.append(item)


def batch_then_each(run: Callable[[list[int] | None, list[int]], R], *, kind: str) -> list[R]:
    """`run(only, taken)` processes a batch in a transaction of its own, appending the ids of the items it took to
    `taken` before it writes; `only=None` takes the step's whole batch, a list only those ids (re-checked, as they
    may have changed meanwhile). The whole batch runs first; if it raises, each id it had taken runs alone.

    Returns the results of the runs that completed: the batch's alone, or one per item that did not fail. A failure
    before any item was taken (the candidates' query) is the step's own failure: it is raised.
    """
    taken: list[int] = []
    try:
        return [run(None, taken)]
    except Exception as exc:  # noqa: BLE001 - one bad item must not fail the others: each is retried alone
        if not taken:
            raise
        log.warning("sweep: a batch of %d %s items failed (%s), each tried alone", len(taken), kind, type(exc).__name__)
    return each_alone(taken, lambda pk: run([pk], []), name=lambda pk: f"{kind} {pk}")


def each_alone(items: Sequence[T], run: Callable[[T], R], *, name: Callable[[T], str]) -> list[R]:
    """Run each item alone (`run` opens its own transaction); the ones that raise are pushed back."""
    results = []
    for item in items:
        try:
            results.append(run(item))
        except Exception as exc:  # noqa: BLE001 - logged by id and type, left for the next sweep
            push_back(name(item), exc)
    return results


def batch_or_each(items: Sequence[T], run: Callable[[Sequence[T]], R], *, name: Callable[[T], str]) -> list[R]:
    """Items known beforehand: `run(items)` once (in a transaction of its own); if it raises, each item alone."""
    if not items:
        return []
    try:
        return [run(items)]
    except Exception as exc:  # noqa: BLE001 - one bad item must not fail the others: each is retried alone
        log.warning("sweep: a batch of %d items failed (%s), each tried alone", len(items), type(exc).__name__)
    return each_alone(items, lambda item: run([item]), name=name)
