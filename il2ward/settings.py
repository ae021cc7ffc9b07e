"""IL2Ward settings: one module, read from the environment (ARCHITECTURE.md, Configuration).

Environment:
  IL2WARD_ENV            "development" (default) or "production" (secure cookies, HSTS, SSL redirect)
  DJANGO_SECRET_KEY      required in production
  DATABASE_URL           default sqlite:///var/il2ward.sqlite3 (the zero-service demo); PostgreSQL in production and CI
  REDIS_URL              Celery broker; unset = the filesystem transport under var/celery (no service needed)
  IL2WARD_ALLOWED_HOSTS  comma-separated, default "localhost,127.0.0.1" (production: required)
  IL2WARD_*              clinical and timing defaults, listed under "Clinical defaults" below
"""

import hashlib
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from il2ward.openapi import API_VERSION

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IL2WARD_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required")
        return default
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


IL2WARD_ENV = env_str("IL2WARD_ENV", "development")
if IL2WARD_ENV not in ("development", "production"):
    raise ImproperlyConfigured("IL2WARD_ENV must be development or production")
PRODUCTION = IL2WARD_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
if PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env_str("IL2WARD_ALLOWED_HOSTS").split(",")
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production-il2ward")
    ALLOWED_HOSTS = env_str("IL2WARD_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "il2ward.lockouts",  # before axes: its reset commands replace axes' own (every unlock logged)
    "axes",
    "csp",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "template_partials",
    "il2ward",
    "monitoring",
    "scheduling",
    "inbound",
    "fixtures",  # the demo (load_demo); above every app, imported by none
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "il2ward.middleware.RequestIdMiddleware",
    "il2ward.middleware.HostileInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "il2ward.middleware.SessionTimeoutMiddleware",
    "il2ward.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Near last, so it sees every response: answers 429 to a request whose password check was refused by a lock-out.
    "axes.middleware.AxesMiddleware",
    # Innermost: failures of passwords re-entered inside a service's (rolled-back) transaction are written once the
    # view returns, before the lock-out middleware looks (il2ward.security).
    "il2ward.security.DeferredWritesMiddleware",
]

# Password throttling (django-axes): the lock-out check runs before any other backend sees the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "il2ward.urls"
WSGI_APPLICATION = "il2ward.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "il2ward" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'il2ward.sqlite3'}"),
        conn_max_age=env_int("IL2WARD_DB_CONN_MAX_AGE", 60 if PRODUCTION else 0),
        # A kept connection is checked before a request reuses it: after a database restart the first request on
        # each web process reconnects instead of failing on the dead connection.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameter binding lets psycopg prepare a statement after its fifth use on a connection, so the
    # ward's repeated reads (a course with its patient, ward, rule set and oncologist: ~10 ms to plan on a small
    # machine) are planned once per connection, not per request. IL2WARD_DB_PREPARED_STATEMENTS=0 turns it off
    # (needed behind a transaction-mode connection pooler that cannot keep prepared statements).
    if env_bool("IL2WARD_DB_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
    else:
        # A transaction-mode pooler cannot keep a named cursor between transactions either (.iterator()).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat against one SQLite file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Passwords per NIST SP 800-63B: a minimum length, no composition rules, checked against lists of breached and
# context-specific passwords shipped with the code (Django's 20,000 most common breached passwords and
# il2ward/data/breached-site.txt: the product, the drug, the ward), and not like the user's own names.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.CommonPasswordValidator",
        "OPTIONS": {"password_list_path": BASE_DIR / "il2ward" / "data" / "breached-site.txt"},
    },
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
# Argon2id first: new passwords are hashed with it, and a stored PBKDF2 (or other listed) hash is re-hashed with
# Argon2id at the user's next successful sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Sessions: 15 minutes idle, 12 hours absolute (enforced by il2ward.middleware.SessionTimeoutMiddleware).
SESSION_IDLE_SECONDS = env_int("IL2WARD_SESSION_IDLE_SECONDS", 15 * 60)
SESSION_ABSOLUTE_SECONDS = env_int("IL2WARD_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_COOKIE_HTTPONLY = True
# A browser-session cookie: closing the browser on a shared ward workstation ends the session (the server-side
# idle and absolute limits, counted from sign-in, still apply while it is open).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Content-Security-Policy (django-csp): scripts and styles from this origin only, no inline script, style attribute
# or element, no eval (htmx's trigger filters and hx-on are not used). A page that must be self-contained (the
# printed summary: WeasyPrint fetches nothing) gives its <style> elements the response's nonce; the API docs page
# (Swagger UI sets style attributes) allows inline styles for itself (il2ward/urls.py), never inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # Bootstrap's form controls draw their icons as data: SVG
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Features the ward's pages never use, refused for every page (and anything injected into one).
IL2WARD_PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), midi=(), "
    "magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), browsing-topics=()"
)


# The audit chain is keyed (HMAC-SHA256) with secrets kept outside the database: IL2WARD_AUDIT_KEYS is
# "kid:secret,kid:secret,...", the first key signs new rows and checkpoints, every listed key verifies (each row
# stores its key id), so a key is rotated by putting a new one first and keeping the old ones listed.
def parse_audit_keys(raw: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for part in raw.split(","):
        kid, sep, secret = part.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", kid) or not secret:
            raise ImproperlyConfigured(
                "IL2WARD_AUDIT_KEYS must be kid:secret[,kid:secret...] (kid: 1-16 of A-Z a-z 0-9 _ -)"
            )
        if PRODUCTION and len(secret) < 32:
            raise ImproperlyConfigured(f"IL2WARD_AUDIT_KEYS: the secret of key {kid!r} needs 32 or more characters")
        if kid in keys:
            raise ImproperlyConfigured(f"IL2WARD_AUDIT_KEYS: key id {kid!r} is listed twice")
        keys[kid] = secret
    return keys


if PRODUCTION:
    IL2WARD_AUDIT_KEYS = parse_audit_keys(env_str("IL2WARD_AUDIT_KEYS"))
else:  # development, tests and the demo: a key derived from the (development) secret key
    IL2WARD_AUDIT_KEYS = parse_audit_keys(
        os.environ.get("IL2WARD_AUDIT_KEYS") or "dev:" + hashlib.sha256(SECRET_KEY.encode()).hexdigest()
    )
# Signed checkpoints of the chain's head go to an append-only file outside the database (one JSON line each, also
# logged on il2ward.audit.checkpoint for a site to ship elsewhere), written by beat every this many seconds.
IL2WARD_AUDIT_CHECKPOINT_FILE = Path(env_str("IL2WARD_AUDIT_CHECKPOINT_FILE", str(VAR_DIR / "audit-checkpoints.jsonl")))
IL2WARD_AUDIT_CHECKPOINT_SECONDS = env_int("IL2WARD_AUDIT_CHECKPOINT_SECONDS", 300)
# The PostgreSQL role the application connects as (not the tables' owner); after `migrate` (run as the owner) it is
# granted normal DML on every table and only INSERT/SELECT on the audit table. Unset: no grants are made.
IL2WARD_APP_DB_ROLE = os.environ.get("IL2WARD_APP_DB_ROLE", "")

# A username is locked for IL2WARD_LOCKOUT_MINUTES after IL2WARD_LOCKOUT_FAILURES wrong passwords in a row; a client
# address after IL2WARD_LOCKOUT_ADDRESS_FAILURES across usernames (higher, so one nurse's typos never lock the whole
# station behind one address; il2ward.security.LockoutHandler applies the two limits).
AXES_FAILURE_LIMIT = env_int("IL2WARD_LOCKOUT_FAILURES", 5)
IL2WARD_LOCKOUT_ADDRESS_FAILURES = env_int("IL2WARD_LOCKOUT_ADDRESS_FAILURES", 30)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("IL2WARD_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
if not 1 <= AXES_FAILURE_LIMIT <= IL2WARD_LOCKOUT_ADDRESS_FAILURES:
    raise ImproperlyConfigured("IL2WARD_LOCKOUT_ADDRESS_FAILURES must be at least IL2WARD_LOCKOUT_FAILURES (>= 1)")
# The client's address: REMOTE_ADDR, or behind IL2WARD_PROXY_COUNT trusted reverse proxies the address they append
# to X-Forwarded-For (set it to 1 behind the TLS proxy, else every client would share the proxy's address; never
# set it when clients reach the application directly, as they could then choose their address).
IL2WARD_PROXY_COUNT = env_int("IL2WARD_PROXY_COUNT", 0)
if IL2WARD_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = IL2WARD_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_HANDLER = "il2ward.security.LockoutHandler"  # the database handler, counting failures outside rollbacks
AXES_LOCKOUT_CALLABLE = "il2ward.api.lockout_response"  # JSON under /api/ (the schema's 429 body)
AXES_RESET_ON_SUCCESS = True  # the count is of failures in a row: a nurse's occasional typo never adds up
AXES_SENSITIVE_PARAMETERS = ["password", "verifier_password"]

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "il2ward.credentials.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "il2ward.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: what the schema publishes is what a request may send (a generated client follows the schema).
    # The htmx endpoints that take a form post name their own parsers.
    "DEFAULT_PARSER_CLASSES": ["il2ward.parsers.BoundedJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens (django-rest-knox): hashed at rest, one per client, expiring IL2WARD_API_TOKEN_HOURS after issue (no
# sliding renewal: a lost tablet's token dies on time). Sent as `Authorization: Token <token>`, as before.
IL2WARD_API_TOKEN_HOURS = env_int("IL2WARD_API_TOKEN_HOURS", 12)
if IL2WARD_API_TOKEN_HOURS < 1:
    raise ImproperlyConfigured("IL2WARD_API_TOKEN_HOURS must be at least 1")
# Expired tokens never presented again are deleted by a beat task this often (il2ward.tasks.api_tokens_purge).
IL2WARD_API_TOKEN_PURGE_SECONDS = env_int("IL2WARD_API_TOKEN_PURGE_SECONDS", 3600)
KNOX_TOKEN_MODEL = "il2ward.ApiToken"
# knox's own model is swapped out for il2ward.ApiToken, but knox's migrations would still create its table (with a
# foreign key to the users, which then cannot be truncated on its own): knox is treated as an app without migrations.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=IL2WARD_API_TOKEN_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    # Operation ids are derived from the path after /api/ (the FHIR-in endpoints, under /fhir/, name their own).
    "SCHEMA_PATH_PREFIX": r"/api/",
    "TITLE": "IL2Ward API",
    "DESCRIPTION": "High-dose interleukin-2 on the ward: courses, dose calendar, pre-dose holds. "
    "Times are ISO 8601 with an offset; a naive time is a 400. Errors: 400 {errors:{field:[...]}}, "
    "403 role, 404 not found or not visible, 409 {code, detail}.",
    "VERSION": API_VERSION,  # CHANGELOG.md has one entry per contract change
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs page are for signed-in users and API clients (session or token), not the world.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Request and response components apart: a login sends username + password and gets a token back.
    "COMPONENT_SPLIT_REQUEST": True,
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {
        "CourseStatusEnum": "scheduling.models.Course.Status",
        "DoseStatusEnum": "scheduling.models.Dose.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "il2ward.openapi.postprocess",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",  # vendored assets: no CDN at run time
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The FHIR export's identifier system for the MRN: the site's own (an OID or URL its other systems use).
IL2WARD_FHIR_MRN_SYSTEM = os.environ.get("IL2WARD_FHIR_MRN_SYSTEM", "urn:il2ward:fhir:mrn")

# Celery: Redis in production and CI; the filesystem transport when REDIS_URL is unset (zero-service demo).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CELERY_QUEUE_DIR = VAR_DIR / "celery"
    for sub in ("out", "processed", "control"):
        (CELERY_QUEUE_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost"  # the host is ignored; without one kombu warns at every connection
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "out"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "out"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("IL2WARD_CELERY_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_RETRY = True
# The worker's consumer and beat retry the broker for ever (kombu's back-off, 2 s stepping to 30 s, each attempt
# logged "Trying again"): a Redis restart must not stop reminders until someone restarts the worker. This setting
# governs only those long-lived connections; a publish from web is bounded separately below.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Publishing must not hang a request when the broker is down (charting never depends on Redis): a publisher's
# connection attempts are bounded by this many seconds in all, and il2ward.tasking sends with retry=False.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "il2ward.celery:LeasedScheduler"  # sends only while this beat holds the beat lease
# Three queues, so that neither a backlog of evaluations nor a hung webhook delays a sweep (README, Operations):
#   celery      the per-charting evaluate_patient and the calendars: bulk work that may queue up under a busy round;
#   sweeps      the beat's periodic tasks (the sweep with its reminders and escalation, the resend sweep, the audit
#               checkpoint): short, database only, and due on time; a worker of their own consumes it;
#   deliveries  e-mail, webhook and SMS sends: time-critical too, but they wait on other systems (up to their
#               timeouts), so they never share a process slot with the sweeps.
# A worker started without -Q consumes all three (the single-process demo and development setup). The names are those
# of scheduling/task_names.py and il2ward/tasks.py, written out here because settings may not import the apps above
# il2ward; tests/test_task_routes.py checks that every registered task and beat entry is routed as intended.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Each queue with an exchange and routing key of its own name, as Celery makes a queue it was not told of: a bare
# Queue(name) here would get the default routing key "celery", and every message would reach all three queues.
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in ("celery", "sweeps", "deliveries")]
CELERY_TASK_ROUTES = {
    "scheduling.sweep": {"queue": "sweeps"},
    "il2ward.deliveries_sweep": {"queue": "sweeps"},
    "il2ward.audit_checkpoint": {"queue": "sweeps"},
    "il2ward.api_tokens_purge": {"queue": "sweeps"},
    "il2ward.deliver": {"queue": "deliveries"},
}
SWEEP_INTERVAL_SECONDS = env_int("IL2WARD_SWEEP_INTERVAL_SECONDS", 30)
# Worker and beat processes write a heartbeat row this often; /readyz wants one newer than three of these.
IL2WARD_HEARTBEAT_SECONDS = env_int("IL2WARD_HEARTBEAT_SECONDS", 10)
# /readyz names the failed checks only to staff and to a monitor sending `Authorization: Bearer <this>`.
IL2WARD_READYZ_TOKEN = os.environ.get("IL2WARD_READYZ_TOKEN", "")
# The beat lease (il2ward.lease): the holding beat renews it every heartbeat; a standby beat takes it over once it
# has not been renewed for this long, so a second beat waits instead of sending every sweep twice.
IL2WARD_BEAT_LEASE_SECONDS = env_int("IL2WARD_BEAT_LEASE_SECONDS", 3 * IL2WARD_HEARTBEAT_SECONDS)

# Clinical defaults (HOLD-RULES.md). A site changes these here or through a versioned rule-set record.
IL2WARD_DEFAULT_RULE_SET = env_str("IL2WARD_RULE_SET", "consensus-2014")
IL2WARD_DOSE_IU_PER_KG = env_int("IL2WARD_DOSE_IU_PER_KG", 600_000)
IL2WARD_WINDOW_MINUTES = env_int("IL2WARD_WINDOW_MINUTES", 60)  # SCH-WINDOW W; 30 where IL-2 is time-critical
IL2WARD_ON_TIME_MINUTES = env_int("IL2WARD_ON_TIME_MINUTES", 30)
IL2WARD_PRE_DOSE_HOURS = env_int("IL2WARD_PRE_DOSE_HOURS", 2)
# Observations may be charted at most this many days after the time they record (late entry, downtime catch-up).
IL2WARD_BACK_ENTRY_DAYS = env_int("IL2WARD_BACK_ENTRY_DAYS", 7)
# INV-PLAUSIBLE (monitoring/plausibility.py): beyond these a weight or fluid balance needs a confirmation with a reason.
# Django settings, not environment: a site changes them in its settings module.
IL2WARD_PLAUSIBLE_WEIGHT_CHANGE_FRACTION = Decimal("0.10")  # from the previous weight ...
IL2WARD_PLAUSIBLE_WEIGHT_CHANGE_WINDOW = timedelta(hours=48)  # ... measured within this time before
IL2WARD_PLAUSIBLE_URINE_ML_PER_HOUR = 1000
IL2WARD_PLAUSIBLE_FLUID_PERIOD_MIN = timedelta(minutes=30)
IL2WARD_PLAUSIBLE_FLUID_PERIOD_MAX = timedelta(hours=24)
IL2WARD_PLAUSIBLE_COURSE_WEIGHT_LOOKBACK = timedelta(days=7)  # a dosing or baseline weight is compared with these
IL2WARD_DILUENT_POLICY = env_str("IL2WARD_DILUENT_POLICY", "label-current")  # or label-fixed-50 (SCH-PREP)
IL2WARD_RECONSTITUTION_MAX_HOURS = env_int("IL2WARD_RECONSTITUTION_MAX_HOURS", 48)
# How the second nurse proves the blind double check: "session" (she accepts a pending check from her own signed-in
# session), "password" (she co-signs at the first nurse's screen with her password), or "both" (the site lets each
# give choose).
IL2WARD_DOUBLE_CHECK = env_str("IL2WARD_DOUBLE_CHECK", "both")
if IL2WARD_DOUBLE_CHECK not in ("both", "session", "password"):
    raise ImproperlyConfigured(f"IL2WARD_DOUBLE_CHECK must be both, session or password, got {IL2WARD_DOUBLE_CHECK!r}")
# A pending check is closed (refused) after this many doses typed by checkers that do not match the prescribed one:
# the figures are not guessed at until one fits; the first nurse asks again.
IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES = env_int("IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES", 3)
IL2WARD_MIN_REST_DAYS = env_int("IL2WARD_MIN_REST_DAYS", 9)
IL2WARD_RETREAT_AFTER_DISCHARGE_DAYS = env_int("IL2WARD_RETREAT_AFTER_DISCHARGE_DAYS", 49)
IL2WARD_SCHEDULING_PICKUP_SECONDS = env_int("IL2WARD_SCHEDULING_PICKUP_SECONDS", 60)

# Reminders and delivery (HOLD-RULES §5; issue: reminders and escalation). Read from the environment so worker
# processes started by the fault tests and the bench can be given short values.
IL2WARD_ASSESSMENT_DUE_MINUTES = env_int("IL2WARD_ASSESSMENT_DUE_MINUTES", 120)
IL2WARD_DOSE_DUE_MINUTES = env_int("IL2WARD_DOSE_DUE_MINUTES", 30)
IL2WARD_DOSE_OVERDUE_MINUTES = env_int("IL2WARD_DOSE_OVERDUE_MINUTES", 30)
IL2WARD_VITALS_EVERY_MINUTES = env_int("IL2WARD_VITALS_EVERY_MINUTES", 120)
IL2WARD_DAILY_WEIGHT_HOUR = env_int("IL2WARD_DAILY_WEIGHT_HOUR", 6)
IL2WARD_DAILY_LABS_HOUR = env_int("IL2WARD_DAILY_LABS_HOUR", 6)
IL2WARD_ESCALATE_AFTER_MINUTES = env_int("IL2WARD_ESCALATE_AFTER_MINUTES", 15)
IL2WARD_ESCALATION_CHAIN = env_str("IL2WARD_ESCALATION_CHAIN", "")  # "" = the default chain (il2ward/recipients.py)
IL2WARD_ESCALATION_BACKUP = env_str("IL2WARD_ESCALATION_BACKUP", "")  # comma-separated usernames
IL2WARD_DELIVERY_MAX_ATTEMPTS = env_int("IL2WARD_DELIVERY_MAX_ATTEMPTS", 8)
IL2WARD_DELIVERY_BACKOFF_SECONDS = env_int("IL2WARD_DELIVERY_BACKOFF_SECONDS", 30)
IL2WARD_DELIVERY_BACKOFF_MAX_SECONDS = env_int("IL2WARD_DELIVERY_BACKOFF_MAX_SECONDS", 3600)
IL2WARD_RESEND_AFTER_SECONDS = env_int("IL2WARD_RESEND_AFTER_SECONDS", 60)
IL2WARD_DELIVERY_LEASE_SECONDS = env_int("IL2WARD_DELIVERY_LEASE_SECONDS", 120)
IL2WARD_WEBHOOK_TIMEOUT_SECONDS = env_int("IL2WARD_WEBHOOK_TIMEOUT_SECONDS", 5)
IL2WARD_EMAIL_TIMEOUT_SECONDS = env_int("IL2WARD_EMAIL_TIMEOUT_SECONDS", 10)
IL2WARD_BELL_POLL_SECONDS = env_int("IL2WARD_BELL_POLL_SECONDS", 30)
IL2WARD_BASE_URL = env_str("IL2WARD_BASE_URL", "http://127.0.0.1:8000")  # links in e-mails, webhooks and SMS
# SMS through a generic HTTP gateway (il2ward/channels/sms): a JSON POST per text; the channel is off while unset.
IL2WARD_SMS_GATEWAY_URL = env_str("IL2WARD_SMS_GATEWAY_URL", "")
IL2WARD_SMS_GATEWAY_TOKEN = env_str("IL2WARD_SMS_GATEWAY_TOKEN", "")  # sent as "Authorization: Bearer <token>"
IL2WARD_SMS_SENDER = env_str("IL2WARD_SMS_SENDER", "IL2Ward")  # the gateway's "from"
IL2WARD_SMS_TIMEOUT_SECONDS = env_int("IL2WARD_SMS_TIMEOUT_SECONDS", 5)

EMAIL_BACKEND = env_str("IL2WARD_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("IL2WARD_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("IL2WARD_EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("IL2WARD_FROM_EMAIL", "il2ward@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Calendar-feed secrets and query strings (admin searches name patients) are redacted from every line.
    "filters": {"redact": {"()": "il2ward.logredact.RedactFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("IL2WARD_LOG_LEVEL", "INFO")},
    # Request lines carry URLs only; URLs never carry patient data (ids only), and the filter above strips secrets.
    # axes logs every successful login at INFO (the security log has them); its lock-outs are WARNING and stay.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"level": "WARNING"},
    },
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("IL2WARD_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("IL2WARD_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Inbound interfaces (HL7 v2 over MLLP, FHIR in; inbound/). The assigning authority (HL7 PID-3.4) of this site's
# MRN: only an identifier under it matches a patient. FHIR in reads IL2WARD_FHIR_MRN_SYSTEM, the system the export
# writes, so a receiving system sends back what it was sent.
IL2WARD_HL7_MRN_AUTHORITY = env_str("IL2WARD_HL7_MRN_AUTHORITY", "IL2WARD")
# Where the listener runs, /readyz reports a missing or stale listener heartbeat.
IL2WARD_HL7_LISTENER_EXPECTED = env_bool("IL2WARD_HL7_LISTENER_EXPECTED", False)
# MLLP over TLS: the listener's PEM certificate chain and key (both, or neither: plain MLLP on a trusted network).
IL2WARD_HL7_TLS_CERT = env_str("IL2WARD_HL7_TLS_CERT", "")
IL2WARD_HL7_TLS_KEY = env_str("IL2WARD_HL7_TLS_KEY", "")
# Mutual TLS: a PEM file of the site CA(s); set, the listener accepts only clients whose certificate it signed.
IL2WARD_HL7_TLS_CLIENT_CA = env_str("IL2WARD_HL7_TLS_CLIENT_CA", "")
