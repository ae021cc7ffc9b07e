"""The security log (SecurityEvent) and writes that must outlive a refused service's transaction.

A wrong second-nurse or e-signature password is found inside the service's transaction, which then rolls back
with the refusal; the lock-out counter (django-axes) and the security log must still keep that failure. Inside a
request such writes are queued while a transaction is open and run by DeferredWritesMiddleware once the view has
returned (its transactions are over), before the lock-out middleware decides on a 429. Outside a request (a
management command) they run at once.
"""

import contextvars
import logging
from collections.abc import Callable

from axes.handlers.database import AxesDatabaseHandler
from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)

_deferred: contextvars.ContextVar[list | None] = contextvars.ContextVar("il2ward_deferred_writes", default=None)
# What a password being checked is for, when it is not a sign-in ("second-nurse", "e-signature").
password_purpose: contextvars.ContextVar[str] = contextvars.ContextVar("il2ward_password_purpose", default="")


def outside_transaction(write: Callable[[], object]) -> None:
    """Run `write` now, or, inside a request's open transaction, once the view has returned."""
    queue = _deferred.get()
    if queue is not None and connection.in_atomic_block:
        queue.append(write)
    else:
        write()


class DeferredWritesMiddleware:
    """Innermost: runs the writes queued during the view (after its transactions ended), then lets the response out
    (the lock-out middleware, just outside this one, sees the lock a deferred failure set)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        queue: list = []
        token = _deferred.set(queue)
        try:
            response = self.get_response(request)
        finally:
            _deferred.reset(token)
            for write in queue:
                try:
                    write()
                except Exception:  # noqa: BLE001 - the response stands; a lost security row is logged
                    log.exception("deferred security write failed")
        return response


class LockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler, with two limits and failures recorded outside the service's transaction.

    A username locks after AXES_FAILURE_LIMIT failures (IL2WARD_LOCKOUT_FAILURES, 5), a client address after
    IL2WARD_LOCKOUT_ADDRESS_FAILURES (30) across usernames: one nurse's typos lock her, never the whole station
    behind one address, while guessing many usernames from one address is stopped. axes compares one count with one
    limit, so the address's count is scaled to the username's limit (locked exactly when it reaches its own). A
    correct password resets only that username's failures, not the address's.
    """

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        parent = super().user_login_failed
        outside_transaction(lambda: parent(sender, credentials, request, **kwargs))

    def get_failures(self, request, credentials: dict | None = None) -> int:
        from axes.attempts import get_cool_off_threshold
        from axes.helpers import get_client_username
        from axes.models import AccessAttempt
        from django.conf import settings
        from django.db.models import Sum

        recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))

        def total(**match) -> int:
            return recent.filter(**match).aggregate(n=Sum("failures_since_start"))["n"] or 0

        username = get_client_username(request, credentials)
        by_username = total(username=username) if username else 0
        ip = getattr(request, "axes_ip_address", None)
        by_address = total(ip_address=ip) if ip else 0
        user_limit, address_limit = settings.AXES_FAILURE_LIMIT, settings.IL2WARD_LOCKOUT_ADDRESS_FAILURES
        return max(by_username, by_address * user_limit // address_limit)

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        from axes.helpers import get_client_username
        from axes.models import AccessAttempt

        username = get_client_username(request, credentials)
        return AccessAttempt.objects.filter(username=username).delete()[0] if username else 0


def _client(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    ip = getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or None
    # The route, not the path: a calendar feed's path holds its secret (never the query string either).
    match = getattr(request, "resolver_match", None)
    path = "/" + match.route if match is not None and match.route else getattr(request, "path", "")
    return ip, (path or "")[:200]


def record(kind: str, *, request=None, user=None, username: str = "", detail: dict | None = None) -> None:
    """Append one security event (outside any open transaction of the request)."""
    from il2ward.models import SecurityEvent

    ip, path = _client(request)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    fields = {
        "at": timezone.now(),
        "kind": kind,
        "user_id": getattr(user, "pk", None),
        "username": (username or (user.get_username() if user is not None else ""))[:150],
        "ip": ip,
        "path": path,
        "detail": detail or {},
    }
    outside_transaction(lambda: SecurityEvent.objects.create(**fields))


def export(request, *, user, fmt: str, **what) -> None:
    """An export left the system: which format and which records (ids only)."""
    record("export", request=request, user=user, detail={"format": fmt, **what})


# --- signal receivers (connected in apps.py) -------------------------------------------------------------------


def on_logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        # The session's clocks count from the sign-in itself (SessionTimeoutMiddleware).
        now = timezone.now().timestamp()
        request.session["il2ward_started"] = now
        request.session["il2ward_last_action"] = now
    record("login", request=request, user=user)


def on_logged_out(sender, request, user, **kwargs):
    if user is not None:
        record("logout", request=request, user=user)


def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str((credentials or {}).get("username", ""))
    purpose = password_purpose.get()
    if purpose:
        record("password_recheck_failed", request=request, username=username, detail={"purpose": purpose})
    else:
        record("login_failed", request=request, username=username)


def on_locked_out(sender, request, username=None, ip_address=None, **kwargs):
    record("lockout", request=request, username=str(username or ""), detail={"by": "username" if username else "ip"})
