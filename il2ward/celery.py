"""The Celery app. Its beat schedule is declared here, in code; one beat at a time sends it (the beat lease).

Worker and beat processes each write their own heartbeat row from a small thread (`worker:<hostname>`,
`beat:<hostname>:<pid>`), so /readyz can say that a worker is alive and which beats are running. A beat's thread
also takes or renews the beat lease (il2ward.lease): only the holder's scheduler sends the sweeps (LeasedScheduler),
and each sweep it sends carries its name, so a sweep from a beat that lost the lease while the message waited in the
queue is skipped by the worker (il2ward.lease.standby_reason). A second beat is a standby, not a double sweep.
"""

import atexit
import logging
import os
import socket
import threading

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import beat_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "il2ward.settings")

log = logging.getLogger(__name__)
beat_log = logging.getLogger("celery.beat")  # the scheduler's own "Sending due task" line, as Celery logs it

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
        # Expired API tokens that were never presented again (il2ward.credentials).
        "api-tokens-purge": {"task": "il2ward.api_tokens_purge", "schedule": settings.IL2WARD_API_TOKEN_PURGE_SECONDS},
    }


class BeatLease:
    """This beat process's view of the beat lease, kept by its heartbeat thread."""

    holder: str = ""  # this beat's name, host:pid, set when the beat starts
    held: bool = False
    seen_holder: str | None = None  # for the log line when the holder changes

    @classmethod
    def refresh(cls) -> None:
        from django.conf import settings
        from django.utils import timezone

        from il2ward.lease import BEAT, lease_current, lease_take

        held = lease_take(name=BEAT, holder=cls.holder, now=timezone.now(), seconds=settings.IL2WARD_BEAT_LEASE_SECONDS)
        current = cls.holder if held else getattr(lease_current(BEAT), "holder", None)
        if held and not cls.held:
            log.warning("beat lease taken: this beat (%s) sends the sweeps", cls.holder)
        elif not held and (cls.held or current != cls.seen_holder):
            log.warning("beat lease held by %s: this beat (%s) waits as a standby", current, cls.holder)
        cls.held, cls.seen_holder = held, current

    @classmethod
    def release(cls) -> None:
        """At a clean exit: give the lease up, so a standby takes over at its next heartbeat, not at expiry."""
        from django.db import connection

        from il2ward.lease import BEAT, lease_release

        if cls.held:
            try:
                lease_release(name=BEAT, holder=cls.holder)
                log.warning("beat lease released by %s", cls.holder)
            except Exception:  # noqa: BLE001 - it expires by itself
                log.warning("beat lease not released (database unavailable?); it expires by itself")
            finally:
                connection.close()
        cls.held = False

    @classmethod
    def lost(cls) -> None:
        """The database cannot be reached: stop sending until the lease is confirmed again."""
        if cls.held:
            log.warning("beat lease not renewed (database unavailable?): this beat (%s) pauses the sweeps", cls.holder)
        cls.held = False


class LeasedScheduler(PersistentScheduler):
    """Celery's own persistent scheduler, sending only while this beat holds the beat lease."""

    def apply_entry(self, entry, producer=None):
        if not BeatLease.held:
            log.debug("not sending %s: this beat is a standby", entry.name)
            return
        entry.kwargs = {**(entry.kwargs or {}), "beat": BeatLease.holder}
        beat_log.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:  # noqa: BLE001 - the broker is down: one line, not a stack trace every interval
            # The sweeps are idempotent and the next interval sends them again; the outbox rows wait meanwhile.
            log.warning("%s not sent (%s); sent again at the next interval", entry.name, exc)


def start_heartbeat_thread(name: str, *, also=None, failed=None) -> threading.Thread:
    """Write heartbeat `name` now and every IL2WARD_HEARTBEAT_SECONDS until the process exits.

    A thread of its own, with its own database connection closed after each beat, so a database outage only
    skips beats (logged) and never touches the connection a task is using.
    """
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from il2ward.heartbeats import process_beats

    def beat_once():
        try:
            process_beats(name=name, now=timezone.now())
            if also:
                also()
        except Exception:  # noqa: BLE001 - the database may be down; readiness will say so
            log.warning("heartbeat %s not written (database unavailable?); trying again", name)
            if failed:
                failed()
        finally:
            connection.close()

    def beat_forever():
        while True:
            threading.Event().wait(settings.IL2WARD_HEARTBEAT_SECONDS)
            beat_once()

    beat_once()  # before the first tick, so the lease holder's first sweep is not skipped

    thread = threading.Thread(target=beat_forever, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    return thread


@worker_ready.connect
def worker_heartbeat(sender, **kwargs):
    start_heartbeat_thread(f"worker:{sender.hostname}"[:64])


@beat_init.connect
def beat_heartbeat(sender, **kwargs):
    BeatLease.holder = f"{socket.gethostname()}:{os.getpid()}"[:58]
    atexit.register(BeatLease.release)
    start_heartbeat_thread(f"beat:{BeatLease.holder}", also=BeatLease.refresh, failed=BeatLease.lost)
