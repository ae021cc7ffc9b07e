"""Publishing Celery tasks from services: after commit, ids only, never failing the clinical write.

The database is the truth and the beat's sweeps re-find any work whose message was lost, so when the broker is
down a publish is logged and dropped rather than raised into a nurse's request.

Where a caller gathers its on-commit work (il2ward.deferral, the HL7 listener), each task is published once per
(name, ids) per window, after the answer. A task whose work no sweep re-finds (the scheduling app registers the
re-evaluation of a patient's open slot with `run_here_when_broker_down`) is then run in this process when the broker
refuses it, so an arriving result is evaluated whether or not Redis is up.
"""

import logging

from django.db import transaction

from il2ward import deferral

log = logging.getLogger(__name__)

_RUN_HERE: set[str] = set()


def send_task_safely(name: str, *args: int) -> bool:
    from il2ward.celery import app

    try:
        app.send_task(name, args=list(args), retry=False)
        return True
    except Exception:  # noqa: BLE001 - any broker failure; the sweep is the safety net
        log.warning("broker unavailable; task %s(%s) left to the sweep", name, ",".join(map(str, args)))
        return False


def run_here_when_broker_down(name: str) -> None:
    """Register task `name` as one that a deferred publish runs in its own process when the broker is down."""
    _RUN_HERE.add(name)


def run_here(name: str, *args: int) -> None:
    """Run task `name` now, in this process (its registered function, as a worker would)."""
    from il2ward.celery import app

    if name not in app.tasks:  # outside a worker the apps' task modules are found on first use
        app.loader.import_default_modules()
    app.tasks[name](*args)


class _Publisher:
    """A window's deferred publishes: after the first refusal by the broker the rest are not offered to it again (each
    refusal may take the connection timeout), and the registered tasks run here instead."""

    broker_down = False

    def __init__(self, name: str, args: tuple[int, ...]):
        self.name, self.args = name, args

    def __call__(self) -> None:
        if not _Publisher.broker_down and send_task_safely(self.name, *self.args):
            return
        _Publisher.broker_down = True
        if self.name in _RUN_HERE:
            log.warning("broker unavailable; task %s run in this process", self.name)
            run_here(self.name, *self.args)


def flush_deferred(deferred: deferral.Deferred) -> int:
    """Flush a Deferred that holds publishes: one broker attempt per window once it has refused (see _Publisher)."""
    _Publisher.broker_down = False
    try:
        return deferred.flush()
    finally:
        _Publisher.broker_down = False


def enqueue_on_commit(name: str, *args: int) -> None:
    """Send task `name` with id arguments once the surrounding transaction commits (never for a rolled-back write);
    into the active Deferred instead, if its thread gathers (il2ward.deferral)."""

    def publish() -> None:
        gathered = deferral.current()
        if gathered is None:
            send_task_safely(name, *args)
        else:
            gathered.call(("task", name, args), _Publisher(name, args))

    transaction.on_commit(publish)
