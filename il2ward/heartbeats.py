"""Heartbeats: one row per process or periodic step, stamped when it last did its work. /readyz (il2ward/health.py)
reads them; the beat, the workers, the MLLP listener and each step of the sweep write them."""

from datetime import timedelta

from django.conf import settings

from il2ward.models import Heartbeat

BEAT = "beat"  # written by the sweep task the beat schedules: the sweeps are actually running
WORKER_PREFIX = "worker:"  # one row per worker process (il2ward.celery), named by its Celery hostname
BEAT_PREFIX = "beat:"  # one row per beat process, beat:<host>:<pid>, so a second beat shows up


def beat_beats(*, now) -> None:
    Heartbeat.objects.update_or_create(name=BEAT, defaults={"at": now})


def process_beats(*, name: str, now) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": now})


def live(prefix: str, now) -> list[str]:
    fresh_after = now - timedelta(seconds=3 * settings.IL2WARD_HEARTBEAT_SECONDS)
    rows = Heartbeat.objects.filter(name__startswith=prefix, at__gte=fresh_after).order_by("name")
    return [name.removeprefix(prefix) for name in rows.values_list("name", flat=True)]


def worker_alive(hostname: str, *, now) -> bool:
    """The worker named `hostname` (its Celery node name) wrote its heartbeat within three intervals."""
    return hostname in live(WORKER_PREFIX, now)


LISTENER_PREFIX = "hl7-listener:"  # one row per MLLP listener (inbound.listener), hl7-listener:<host>:<port>
STEP_PREFIX = "sweep-step:"  # one row per step of the sweep (scheduling.tasks), stamped when the step last succeeded


def steps_beat(
    *, succeeded: list[str], failed: list[str], now, pushed_back: dict[str, list[str]] | None = None
) -> None:
    """One query for all the steps of a clean sweep: each succeeded step stamped `now` (its pushed-back items
    cleared); a failed step keeps its last success, and one that never succeeded gets its row at its first failure,
    so /readyz can count from there.

    A step done with items pushed back (scheduling.services.isolation) records them and, like a failed step, keeps
    its last clean run: /readyz names it, with those items, once it has not run clean for three intervals, and one
    item that succeeds at the next sweep (a lock, a race) raises nothing.
    """
    if succeeded:
        Heartbeat.objects.bulk_create(
            [Heartbeat(name=f"{STEP_PREFIX}{step}", at=now, failed_items=[]) for step in succeeded],
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["at", "failed_items"],
        )
    if pushed_back:
        Heartbeat.objects.bulk_create(
            [Heartbeat(name=f"{STEP_PREFIX}{step}", at=now, failed_items=items) for step, items in pushed_back.items()],
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["failed_items"],
        )
    if failed:
        Heartbeat.objects.bulk_create(
            [Heartbeat(name=f"{STEP_PREFIX}{step}", at=now) for step in failed], ignore_conflicts=True
        )
