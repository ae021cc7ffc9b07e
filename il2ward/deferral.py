"""Work that follows a commit, gathered and done later, once per key: for a process that answers before doing it.

A committed write usually publishes its tasks and bumps its ward's board version in its on-commit hooks, before the
caller answers. The HL7 listener answers (ACK) first: while a Deferred is active in its thread (`collecting`), the
hooks of each committed transaction (il2ward.tasking, il2ward.board_version) add their work here instead, keyed so
that many messages about one patient within one window publish one evaluation and bump the board once, and the
listener flushes it a short time later, off the path of the next ACK. A rolled-back transaction runs no hook, so it
adds nothing. What is gathered lives in memory until the flush: a process killed in between loses it, as it loses
an on-commit publish killed between the commit and the broker.
"""

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_active = threading.local()


class Deferred:
    """Calls gathered by key (thread-safe: the listener's worker threads add, a flush takes them all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, Callable[[], object]] = {}
        self._sets: dict[Hashable, tuple[Callable[[dict[str, set]], object], dict[str, set]]] = {}

    def call(self, key: Hashable, fn: Callable[[], object]) -> None:
        """`fn()` once at the flush, however often `key` is added before it."""
        with self._lock:
            self._calls.setdefault(key, fn)

    def gather(self, key: Hashable, values: dict[str, set], fn: Callable[[dict[str, set]], object]) -> None:
        """`fn(union of every `values` added under `key`)` once at the flush."""
        with self._lock:
            _, merged = self._sets.setdefault(key, (fn, {}))
            for name, ids in values.items():
                merged.setdefault(name, set()).update(ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls) + len(self._sets)

    def flush(self) -> int:
        """Do what was gathered (in the order first added) and forget it; return how many calls were made. A call
        that raises is logged by its type only and does not stop the others."""
        with self._lock:
            calls, self._calls = list(self._calls.values()), {}
            sets, self._sets = list(self._sets.values()), {}
        done = 0
        for fn in [*(lambda fn=fn, merged=merged: fn(merged) for fn, merged in sets), *calls]:
            try:
                fn()
                done += 1
            except Exception as exc:  # noqa: BLE001 - one failure must not drop the rest of the window's work
                log.error("deferred work failed: %s", type(exc).__name__)
        return done


def current() -> Deferred | None:
    """The Deferred active in this thread, if any."""
    return getattr(_active, "deferred", None)


@contextmanager
def collecting(deferred: Deferred) -> Iterator[Deferred]:
    """Within the block, this thread's on-commit work goes to `deferred` (tasking and board_version ask current())."""
    previous = current()
    _active.deferred = deferred
    try:
        yield deferred
    finally:
        _active.deferred = previous
