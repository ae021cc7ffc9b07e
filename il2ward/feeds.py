"""Calendar feed tokens: a per-user secret in a URL, so a calendar client can subscribe without a session.

The token identifies the user, never a patient: whatever is read through it is read with the owner's access. Only a
SHA-256 of the secret is stored (``CalendarFeedToken.token``), so the database alone cannot be turned into working
feed URLs; the secret is shown once, when it is created. Revoking is a new state on the row, never a delete.
"""

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.http import Http404

from il2ward.audit import audit
from il2ward.errors import Conflict
from il2ward.models import CalendarFeedToken


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def calendar_token_create(*, user, now: datetime) -> tuple[CalendarFeedToken, str]:
    """A new feed token for `user`; returns the row and the secret (the only time the secret exists in clear)."""
    secret = secrets.token_urlsafe(32)  # 256 bits, URL-safe (letters, digits, - and _)
    row = CalendarFeedToken.objects.create(user=user, token=_digest(secret), created_at=now)
    audit(actor=user, action="calendar_token.create", obj=row, at=now, new={"user": user.pk})  # never the secret
    return row, secret


@transaction.atomic
def calendar_token_revoke(*, token_id: int, by, now: datetime) -> CalendarFeedToken:
    """Revoke one of `by`'s tokens: its feed URLs answer 404 from now on."""
    row = token_for(by, token_id, lock=True)
    if row.revoked_at is not None:
        raise Conflict("token_already_revoked", "This calendar link is already revoked.")
    row.revoked_at = now
    row.save(update_fields=["revoked_at"])
    audit(actor=by, action="calendar_token.revoke", obj=row, at=now, old={"revoked_at": None}, new={"revoked_at": now})
    return row


def token_for(user, token_id, *, lock: bool = False) -> CalendarFeedToken:
    """One of the user's own tokens (someone else's is "not found")."""
    qs = CalendarFeedToken.objects.select_for_update(no_key=True) if lock else CalendarFeedToken.objects
    try:
        return qs.get(pk=token_id, user=user)
    except (CalendarFeedToken.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such calendar link") from exc


def tokens_of(user) -> list[CalendarFeedToken]:
    return list(CalendarFeedToken.objects.filter(user=user).order_by("-created_at", "-pk"))


def token_owner(secret: str):
    """The active user a live secret belongs to, or None (unknown, revoked, or the user is deactivated)."""
    if not secret or len(secret) > 128:
        return None
    row = (
        CalendarFeedToken.objects.select_related("user")
        .filter(token=_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return row.user if row else None
