"""Thin Celery tasks: ids in, refetch, re-check, call one service. Messages carry ids only."""

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from il2ward.health import beat_beats
from il2ward.lease import BEAT, standby_reason
from scheduling import services
from scheduling.services import reminders

log = logging.getLogger(__name__)


@shared_task(name="scheduling.generate_calendar", acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def generate_calendar(course_id: int) -> int:
    return services.course_materialise_calendar(course_id=course_id, now=timezone.now())


@shared_task(name="scheduling.sweep", acks_late=True)
def sweep(beat: str | None = None) -> dict:
    """The periodic sweep: one `now` for the whole pass. `beat` names the beat that sent it (il2ward.lease)."""
    if reason := standby_reason(name=BEAT, sender=beat):
        log.info("sweep from beat %s skipped: %s", beat, reason)
        return {"skipped": reason}
    now = timezone.now()
    beat_beats(now=now)
    return sweep_at(now=now)


def sweep_at(*, now) -> dict:
    """Everything the sweep does at `now` (the bench and the query-count tests call it with a chosen time)."""
    return {
        "picked_up": len(services.courses_pickup_unscheduled(now=now)),
        "status_changes": services.courses_advance_status(now=now),
        "evaluated": services.doses_evaluate_entering_window(now=now),
        **services.doses_close_expired(now=now),
        # After the closing above, so a slot that has just been missed gets no overdue reminder.
        **reminders.reminders_sweep(now=now),
    }


@shared_task(name="scheduling.evaluate_patient", acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def evaluate_patient(patient_id: int) -> None:
    """New observations for a patient: re-evaluate the next open dose (flags, notifications, retreatment bars)."""
    services.patient_evaluate_next_dose(patient_id=patient_id, now=timezone.now())
