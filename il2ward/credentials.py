"""Sign-in credentials: API tokens (django-rest-knox) issued, revoked and expired, and lock-outs (django-axes) lifted.

One function per state change. Each is written to the security log (il2ward.security: ids and client labels, never
a token or its digest); what an administrator does is also an audit event (il2ward.audit).
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication

from il2ward import security
from il2ward.audit import audit
from il2ward.errors import Invalid
from il2ward.models import ApiToken

CLIENT_MAX_LENGTH = 64

# Why a token stopped working (the security log's detail.reason).
LOGOUT = "logout"  # its owner, with the token itself
LOGOUT_ALL = "logout_all"  # its owner, every token at once
ADMIN = "admin"
PASSWORD_CHANGED = "password_changed"
DEACTIVATED = "deactivated"
REPLACED = "replaced"  # a new login from the same client


class ApiTokenAuthentication(TokenAuthentication):
    """knox's token check (`Authorization: Token <token>`: the token's key finds the rows, its SHA-512 is compared
    in constant time; an inactive user is refused). An expired token is refused and removed, logged as expired;
    knox would also scan the user's other tokens on every request (a query per API call), so those expired are
    removed at the user's next login instead."""

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            api_token_expire(token=auth_token)
            return True
        return False


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The schema's `tokenAuth` (the name it had with REST framework's tokens): `Authorization: Token <token>`."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")


def _clean_client(client) -> str:
    if client is None:
        return ""
    if not isinstance(client, str):
        raise Invalid({"client": ["Give the client's name as text."]})
    client = client.strip()
    if len(client) > CLIENT_MAX_LENGTH:
        raise Invalid({"client": [f"At most {CLIENT_MAX_LENGTH} characters."]})
    return client


def _record(kind: str, token: ApiToken, *, request=None, **detail) -> None:
    security.record(
        kind, request=request, user=token.user, detail={"token": token.pk, "client": token.client, **detail}
    )


def api_token_issue(*, user, client: str = "", request=None) -> tuple[ApiToken, str]:
    """A new token for `user`, named after its client; returns (row, token). The token is shown this once: only its
    digest is stored. A login from a named client replaces that client's previous token; an unnamed login (older
    clients) replaces nothing. The user's expired tokens are removed.

    The user's row is locked (FOR NO KEY UPDATE: nothing referencing it is blocked) for the read-replace-create, so
    simultaneous logins of one user serialise and at most one live token per named client remains."""
    client = _clean_client(client)
    now = timezone.now()
    with transaction.atomic():
        get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk").first()
        mine = ApiToken.objects.select_related("user").filter(user=user)
        expired = list(mine.filter(expiry__lt=now))
        replaced = list(mine.filter(client=client).exclude(expiry__lt=now)) if client else []
        ApiToken.objects.filter(pk__in=[t.pk for t in expired + replaced]).delete()
        row, token = ApiToken.objects.create(user=user, client=client)
    for old in expired:
        _record("token_expired", old, request=request)
    for old in replaced:
        _record("token_revoked", old, request=request, reason=REPLACED, by=user.pk)
    _record("token_issued", row, request=request, expiry=row.expiry.isoformat() if row.expiry else None)
    return row, token


def api_token_expire(*, token: ApiToken) -> None:
    """An expired token presented: removed, and logged once (a concurrent request may have removed it already)."""
    if ApiToken.objects.filter(pk=token.pk).delete()[0]:
        _record("token_expired", token)


def api_tokens_purge_expired(*, now=None) -> dict[str, int]:
    """The sweep's step: expired tokens not presented since (a tablet put away, a retired interface) are deleted, in
    one statement, with one security event carrying the count (no token, digest or key). Constant queries."""
    now = now or timezone.now()
    purged = ApiToken.objects.filter(expiry__lt=now).delete()[1].get(ApiToken._meta.label, 0)
    if purged:
        security.record("tokens_purged", detail={"tokens": purged})
    return {"tokens_purged": purged}


def api_token_revoke(*, token: ApiToken, by, reason: str, request=None) -> bool:
    """Revoke one token (its owner's logout, or an administrator). False when it was already gone."""
    with transaction.atomic():
        gone = ApiToken.objects.filter(pk=token.pk).delete()[0]
        if gone and reason == ADMIN:
            audit(actor=by, action="api_token.revoke", obj=("il2ward.apitoken", str(token.pk)), at=timezone.now(),
                  old={"user": token.user_id, "client": token.client}, reason=reason)  # fmt: skip
    if gone:
        _record("token_revoked", token, request=request, reason=reason, by=getattr(by, "pk", None))
    return bool(gone)


def api_tokens_revoke_for_user(*, user, by, reason: str, request=None) -> int:
    """Revoke every token of `user` (logout everywhere, a password change, a deactivation); returns how many."""
    tokens = list(ApiToken.objects.select_related("user").filter(user=user))
    if not tokens:
        return 0
    with transaction.atomic():
        count = ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).delete()[0]
        if reason in (ADMIN, DEACTIVATED) and by is not None and by.pk != user.pk:
            audit(actor=by, action="api_token.revoke_all", obj=user, at=timezone.now(),
                  old={"tokens": [t.pk for t in tokens]}, reason=reason)  # fmt: skip
    for token in tokens:
        _record("token_revoked", token, request=request, reason=reason, by=getattr(by, "pk", None))
    return count


def lockout_unlock(
    *, by, username: str = "", address: str = "", everything: bool = False, via: str = "", request=None
) -> int:
    """Lift the lock-out of a username, of a client address, or (`everything`, axes_reset) every lock-out
    (django-axes' failed attempts are cleared, so the count starts again); returns how many attempt rows were cleared.
    Logged and audited even when none were. `by` is the administrator (None from a management command, then `via`
    names the command)."""
    from axes.utils import reset

    username, address = (username or "").strip(), (address or "").strip()
    if everything and (username or address):
        raise Invalid({"username": ["Unlock everything, or a username or an address."]})
    if not everything and bool(username) == bool(address):
        raise Invalid({"username": ["Give a username or an address, not both."]})
    with transaction.atomic():
        if everything:
            cleared, target = reset(), {"everything": True}
        elif username:
            cleared, target = reset(username=username), {"username": username}
        else:
            cleared, target = reset(ip=address), {"address": address}
        audit(actor=by, action="lockout.unlock", obj=("axes.accessattempt", (username or address or "*")[:64]),
              at=timezone.now(), new={**target, "attempts_cleared": cleared}, reason=via)  # fmt: skip
    detail = {**target, "attempts_cleared": cleared, "by": getattr(by, "pk", None), **({"via": via} if via else {})}
    security.record("unlock", request=request, username=username, detail=detail)
    return cleared


# --- signal receivers (connected in apps.py) -------------------------------------------------------------------


def on_user_saved(sender, instance, created: bool = False, update_fields=None, **kwargs):
    """A password set (not an Argon2 re-hash of the same password at login) or a deactivation revokes every API
    token of the user, whichever way the user was saved (admin, `changepassword`, a service)."""
    if created:
        return
    by = _acting_user()
    if not instance.is_active:
        if ApiToken.objects.filter(user=instance).exists():
            api_tokens_revoke_for_user(user=instance, by=by, reason=DEACTIVATED, request=_request())
        return
    if getattr(instance, "_il2ward_password_changed", False):
        instance._il2ward_password_changed = False
        api_tokens_revoke_for_user(user=instance, by=by or instance, reason=PASSWORD_CHANGED, request=_request())


def on_user_saving(sender, instance, **kwargs):
    """Before the save: Django keeps the raw password in `_password` between set_password() and save(), except when
    check_password() re-hashes the same password with a newer hasher (it clears `_password` before saving). An
    unusable password set (the account closed to sign-in) counts as a change too."""
    if instance.pk is None:
        return
    changed = getattr(instance, "_password", None) is not None
    if not changed and not instance.has_usable_password():
        old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
        changed = old is not None and old != instance.password
    instance._il2ward_password_changed = changed


def _request():
    from il2ward.middleware import current_request_var

    return current_request_var.get()


def _acting_user():
    request = _request()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None
