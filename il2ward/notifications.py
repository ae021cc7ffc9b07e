"""Writing outbox rows. Call inside the transaction that causes the notification; a repeat is harmless."""

from datetime import datetime

from django.db import IntegrityError, transaction

from il2ward.models import Notification


def notify(
    *,
    kind: str,
    recipients,
    dedupe: str,
    now: datetime,
    patient=None,
    course_id: int | None = None,
    dose_id: int | None = None,
    details: dict | None = None,
) -> list[Notification]:
    """One row per recipient with key `<dedupe>:<recipient id>`; an existing key is left alone (idempotent)."""
    created = []
    for user in {u.pk: u for u in recipients if u is not None}.values():
        key = f"{dedupe}:u{user.pk}"
        try:
            with transaction.atomic():
                row, made = Notification.objects.get_or_create(
                    dedupe_key=key,
                    defaults={
                        "kind": kind,
                        "recipient": user,
                        "patient": patient,
                        "course_id": course_id,
                        "dose_id": dose_id,
                        "details": details or {},
                        "created_at": now,
                    },
                )
        except IntegrityError:  # a concurrent writer won the key
            continue
        if made:
            created.append(row)
    return created
