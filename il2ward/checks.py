"""Start-up validation of the reminder and delivery settings (Django system checks: `manage.py check`, runserver,
migrate and the test runner run them). A value that would silence a reminder kind or crash a sweep is an error that
names the setting, found when the site deploys rather than when a dose is missed without anyone told."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from il2ward.recipients import escalation_chain

# (setting, minimum); the defaults are il2ward/settings.py's.
MINIMUMS = (
    ("IL2WARD_WINDOW_MINUTES", 1),
    ("IL2WARD_ASSESSMENT_DUE_MINUTES", 1),
    ("IL2WARD_DOSE_DUE_MINUTES", 1),
    ("IL2WARD_DOSE_OVERDUE_MINUTES", 1),
    ("IL2WARD_VITALS_EVERY_MINUTES", 1),
    ("IL2WARD_ESCALATE_AFTER_MINUTES", 1),
    ("IL2WARD_DELIVERY_MAX_ATTEMPTS", 1),
    ("IL2WARD_DELIVERY_BACKOFF_SECONDS", 1),
    ("IL2WARD_DELIVERY_BACKOFF_MAX_SECONDS", 1),
    ("IL2WARD_RESEND_AFTER_SECONDS", 1),
    ("IL2WARD_DELIVERY_LEASE_SECONDS", 1),
    ("IL2WARD_WEBHOOK_TIMEOUT_SECONDS", 1),
    ("IL2WARD_EMAIL_TIMEOUT_SECONDS", 1),
    ("IL2WARD_SMS_TIMEOUT_SECONDS", 1),
)


def problems() -> list[tuple[str, str]]:
    """(setting, what is wrong) for every invalid reminder or delivery setting; [] when all are valid."""
    found = []
    values = {}
    for name, minimum in MINIMUMS:
        value = getattr(settings, name)
        values[name] = value
        if not isinstance(value, int) or value < minimum:
            found.append((name, f"{name} must be an integer of at least {minimum}, got {value!r}"))
    for name in ("IL2WARD_DAILY_WEIGHT_HOUR", "IL2WARD_DAILY_LABS_HOUR"):
        hour = getattr(settings, name)
        if not isinstance(hour, int) or not 0 <= hour <= 23:
            found.append((name, f"{name} must be an hour from 0 to 23, got {hour!r}"))
    overdue, window = values["IL2WARD_DOSE_OVERDUE_MINUTES"], values["IL2WARD_WINDOW_MINUTES"]
    if isinstance(overdue, int) and isinstance(window, int) and overdue >= window:
        # dose_overdue is due from due + overdue until the slot is missed at due + W: it would never fire.
        found.append(
            (
                "IL2WARD_DOSE_OVERDUE_MINUTES",
                f"IL2WARD_DOSE_OVERDUE_MINUTES ({overdue}) must be less than IL2WARD_WINDOW_MINUTES ({window}): "
                "otherwise the slot is missed before dose_overdue is due and nobody is told it is overdue",
            )
        )
    try:
        escalation_chain()
    except ImproperlyConfigured as exc:
        if not str(exc).startswith("IL2WARD_ESCALATE_AFTER_MINUTES"):  # that one is reported above
            found.append(("IL2WARD_ESCALATION_CHAIN", str(exc)))
    gateway = str(settings.IL2WARD_SMS_GATEWAY_URL)
    if gateway:
        parts = urlsplit(gateway)
        secure = parts.scheme == "https" or settings.IL2WARD_ENV != "production"
        if parts.scheme not in ("http", "https") or not parts.netloc or not secure:
            # The token and the recipients' numbers travel in that request: never in clear text in production.
            found.append(("IL2WARD_SMS_GATEWAY_URL", "IL2WARD_SMS_GATEWAY_URL must be an https:// URL (http:// is "
                          "allowed outside production)"))  # fmt: skip
    if settings.SWEEP_INTERVAL_SECONDS < 1:
        found.append(("SWEEP_INTERVAL_SECONDS", "IL2WARD_SWEEP_INTERVAL_SECONDS must be at least 1"))
    return found


@register()
def notification_settings(app_configs, **kwargs) -> list[Error]:
    return [Error(message, obj=name, id="il2ward.E100") for name, message in problems()]
