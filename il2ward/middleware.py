"""Request id for the audit trail, and the ward session limits (15 min idle, 12 h absolute)."""

import contextvars
import logging
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


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response; `Cache-Control: no-store` on every response to a signed-in user (a
    session or an API token: DRF sets the user on the request during the view) and on every API response (the
    calendar feed is a user's data too), so no patient page or record stays in a shared workstation's or a proxy's
    cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils.cache import add_never_cache_headers

        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.IL2WARD_PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or request.path.startswith("/api/"):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private; max-age=0, Expires now
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


class HostileInputMiddleware:
    """Refuse what would otherwise be a 500 further in, with the API's error shape and nothing stored:
    a NUL byte in the query string (PostgreSQL cannot store one in text) and a body over the upload limit (413).
    A database outage while answering is a 503 with Retry-After, not a 500: the ward should retry, not report a bug.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values
        ):
            return error_response(request, 400, {"errors": {"query": ["A NUL character is not allowed."]}})
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return error_response(request, 413, {"errors": {"body": [f"The body is over the {limit} byte limit."]}})
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.core.exceptions import RequestDataTooBig
        from django.db import InterfaceError, OperationalError

        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return error_response(request, 413, {"errors": {"body": [f"The body is over the {limit} byte limit."]}})
        if isinstance(exception, OperationalError | InterfaceError):
            logging.getLogger(__name__).warning("database unavailable: %s", type(exception).__name__)
            response = error_response(request, 503, {"detail": "The database is unavailable; try again shortly."})
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return None


RETRY_AFTER_SECONDS = 15


def error_response(request, status: int, body: dict):
    from django.http import JsonResponse

    if request.path.startswith("/api/"):
        return JsonResponse(body, status=status)
    message = "; ".join(msg for messages in body.get("errors", {}).values() for msg in messages) or body.get(
        "detail", ""
    )
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
