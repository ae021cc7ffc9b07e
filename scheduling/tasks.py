"""Thin Celery tasks: ids in, refetch, re-check, call one service. Messages carry ids only."""

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from il2ward.heartbeats import beat_beats, steps_beat
from il2ward.lease import BEAT, standby_reason
from scheduling import services
from scheduling.services import isolation, reminders
from scheduling.task_names import EVALUATE_PATIENT, GENERATE_CALENDAR, SWEEP

log = logging.getLogger(__name__)


@shared_task(name=GENERATE_CALENDAR, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def generate_calendar(course_id: int) -> int:
    return services.course_materialise_calendar(course_id=course_id, now=timezone.now())


@shared_task(name=SWEEP, acks_late=True)
def sweep(beat: str | None = None) -> dict:
    """The periodic sweep: one `now` for the whole pass. `beat` names the beat that sent it (il2ward.lease)."""
    if reason := standby_reason(name=BEAT, sender=beat):
        log.info("sweep from beat %s skipped: %s", beat, reason)
        return {"skipped": reason}
    now = timezone.now()
    beat_beats(now=now)
    return sweep_at(now=now)


# The sweep's steps, in order. After the closing of expired slots, so a slot just missed gets no overdue reminder.
SWEEP_STEPS = (
    ("pickup", lambda now: {"picked_up": len(services.courses_pickup_unscheduled(now=now))}),
    ("status", lambda now: {"status_changes": services.courses_advance_status(now=now)}),
    ("evaluate", lambda now: {"evaluated": services.doses_evaluate_entering_window(now=now)}),
    ("close", lambda now: services.doses_close_expired(now=now)),
    ("double_checks", lambda now: services.double_checks_expire(now=now)),
    ("reminders", lambda now: reminders.reminders_sweep(now=now)),
)


def sweep_at(*, now) -> dict:
    """Everything the sweep does at `now` (the bench and the query-count tests call it with a chosen time).

    Each step runs in its own transaction (the services' own) and is isolated: a step that fails is logged by name
    (the exception type only, never its text, which may quote a row) and the later steps still run. Within a step
    each item is isolated too (scheduling.services.isolation): one that fails is pushed back, logged by kind and id,
    and the step completes with the others. A step's heartbeat is stamped only when it runs clean, and records the
    items it pushed back, so /readyz names a step that keeps failing and the items that keep failing in it.
    """
    result: dict = {}
    succeeded, failed, pushed_back = [], [], {}
    for step, run in SWEEP_STEPS:
        with isolation.collecting(step) as pushed:
            try:
                result.update(run(now))
            except Exception as exc:  # noqa: BLE001 - one failing step must not stop the others every interval
                log.error("sweep step %s failed: %s", step, type(exc).__name__)
                failed.append(step)
                continue
        if pushed.items:
            pushed_back[step] = pushed.items
        else:
            succeeded.append(step)
    steps_beat(succeeded=succeeded, failed=failed, pushed_back=pushed_back, now=now)
    if failed:
        result["failed"] = failed
    if pushed_back:
        result["pushed_back"] = {step: len(items) for step, items in pushed_back.items()}
    return result


@shared_task(name=EVALUATE_PATIENT, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def evaluate_patient(patient_id: int) -> None:
    """New observations for a patient: re-evaluate the next open dose (flags, notifications, retreatment bars)."""
    services.patient_evaluate_next_dose(patient_id=patient_id, now=timezone.now())
