"""Publishing Celery tasks from services: after commit, ids only, never failing the clinical write.

The database is the truth and the beat's sweeps re-find any work whose message was lost, so when the broker is
down a publish is logged and dropped rather than raised into a nurse's request.
"""

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def send_task_safely(name: str, *args: int) -> bool:
    from il2ward.celery import app

    try:
        app.send_task(name, args=list(args), retry=False)
        return True
    except Exception:  # noqa: BLE001 - any broker failure; the sweep is the safety net
        log.warning("broker unavailable; task %s(%s) left to the sweep", name, ",".join(map(str, args)))
        return False


def enqueue_on_commit(name: str, *args: int) -> None:
    """Send task `name` with id arguments once the surrounding transaction commits (never for a rolled-back write)."""
    transaction.on_commit(lambda: send_task_safely(name, *args))
