"""Delivery tasks: thin, ids in, idempotent (the claim is the guard). Messages carry delivery ids only."""

import logging

from celery import shared_task
from django.utils import timezone

from il2ward import notifications
from il2ward.lease import BEAT, standby_reason

log = logging.getLogger(__name__)


@shared_task(name="il2ward.deliver", acks_late=True)
def deliver(*delivery_ids: int) -> dict:
    """Send these deliveries. No autoretry: a failure is recorded on the row and the resend sweep retries it."""
    results: dict[str, int] = {}
    for delivery_id in delivery_ids:
        status = notifications.deliver(int(delivery_id))
        results[status] = results.get(status, 0) + 1
    return results


@shared_task(name="il2ward.deliveries_sweep", acks_late=True)
def deliveries_sweep(beat: str | None = None) -> dict:
    """The resend sweep (beat, every SWEEP_INTERVAL_SECONDS): lost claims back, due retries re-enqueued."""
    if reason := standby_reason(name=BEAT, sender=beat):
        log.info("resend sweep from beat %s skipped: %s", beat, reason)
        return {"skipped": reason}
    return notifications.deliveries_resend(now=timezone.now())


@shared_task(name="il2ward.audit_checkpoint", acks_late=True)
def audit_checkpoint() -> int:
    """Beat, every IL2WARD_AUDIT_CHECKPOINT_SECONDS: a signed checkpoint of the audit chain's head, outside the
    database. Returns the number of events it covers."""
    from il2ward.audit import checkpoint_write

    return checkpoint_write(now=timezone.now())["count"]


@shared_task(name="il2ward.api_tokens_purge", acks_late=True)
def api_tokens_purge() -> int:
    """Beat, every IL2WARD_API_TOKEN_PURGE_SECONDS: expired API tokens deleted (one security event with the count).
    Returns how many."""
    from il2ward.credentials import api_tokens_purge_expired

    return api_tokens_purge_expired(now=timezone.now())["tokens_purged"]
