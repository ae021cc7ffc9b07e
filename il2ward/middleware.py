"""Request id for the audit trail, and the ward session limits (15 min idle, 12 h absolute)."""

import contextvars
import time
import uuid

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# The request being served, so a password re-entered deep in a service (second nurse, e-signature) is throttled
# per client address like a login.
current_request_var: contextvars.ContextVar = contextvars.ContextVar("current_request", default=None)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        request_token = current_request_var.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request_var.reset(request_token)
            request_id_var.reset(token)
        response["X-Request-Id"] = rid
        return response


POLL_HEADER = "X-IL2Ward-Poll"


class SessionTimeoutMiddleware:
    """Log a browser session out after SESSION_IDLE_SECONDS without user action, and after SESSION_ABSOLUTE_SECONDS.

    Automatic refreshes (htmx polling, which sends the X-IL2Ward-Poll header) do not count as user action, so a
    board left open on a screen does not keep a nurse signed in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and hasattr(request, "session")
            and "_auth_user_id" in request.session
        ):
            now = time.time()
            started = request.session.setdefault("il2ward_started", now)
            last = request.session.get("il2ward_last_action", now)
            if now - last > settings.SESSION_IDLE_SECONDS or now - started > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
                if request.headers.get("HX-Request"):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = settings.LOGIN_URL
                    return response
                if request.path.startswith("/api/"):
                    return self.get_response(request)  # now anonymous: the API answers 401
                return redirect(f"{settings.LOGIN_URL}?next={request.path}")
            if not request.headers.get(POLL_HEADER):
                request.session["il2ward_last_action"] = now
        return self.get_response(request)
