"""The Celery app. Exactly one beat runs; its schedule is declared here, in code.

Worker and beat processes each write their own heartbeat row from a small thread (`worker:<hostname>`,
`beat:<hostname>:<pid>`), so /readyz can say that a worker is alive and whether a second beat is running.
"""

import logging
import os
import socket
import threading

from celery import Celery
from celery.signals import beat_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "il2ward.settings")

log = logging.getLogger(__name__)

app = Celery("il2ward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def declare_beat_schedule(sender, **kwargs):
    from django.conf import settings

    every = settings.SWEEP_INTERVAL_SECONDS
    sender.conf.beat_schedule = {
        "scheduling-sweep": {"task": "scheduling.sweep", "schedule": every},
        # Resend what is still pending (lost messages, flushed Redis, killed workers, retries after backoff).
        "notifications-resend": {"task": "il2ward.deliveries_sweep", "schedule": every},
        # A signed checkpoint of the audit chain's head to the sink outside the database (il2ward.audit).
        "audit-checkpoint": {"task": "il2ward.audit_checkpoint", "schedule": settings.IL2WARD_AUDIT_CHECKPOINT_SECONDS},
    }


def start_heartbeat_thread(name: str) -> threading.Thread:
    """Write heartbeat `name` now and every IL2WARD_HEARTBEAT_SECONDS until the process exits.

    A thread of its own, with its own database connection closed after each beat, so a database outage only
    skips beats (logged) and never touches the connection a task is using.
    """
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from il2ward.health import process_beats

    def beat_forever():
        while True:
            try:
                process_beats(name=name, now=timezone.now())
            except Exception:  # noqa: BLE001 - the database may be down; readiness will say so
                log.warning("heartbeat %s not written (database unavailable?); trying again", name)
            finally:
                connection.close()
            threading.Event().wait(settings.IL2WARD_HEARTBEAT_SECONDS)

    thread = threading.Thread(target=beat_forever, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    return thread


@worker_ready.connect
def worker_heartbeat(sender, **kwargs):
    start_heartbeat_thread(f"worker:{sender.hostname}"[:64])


@beat_init.connect
def beat_heartbeat(sender, **kwargs):
    start_heartbeat_thread(f"beat:{socket.gethostname()}:{os.getpid()}"[:64])
