"""/healthz (the process runs) and /readyz (database, broker, a live worker, a recent sweep, no dead-lettered
delivery; and which beat holds the beat lease, which ones wait as standbys)."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

from il2ward.heartbeats import BEAT, BEAT_PREFIX, LISTENER_PREFIX, STEP_PREFIX, WORKER_PREFIX, live
from il2ward.models import Heartbeat


def _check_worker(now) -> str | None:
    if not live(WORKER_PREFIX, now):
        return f"no worker heartbeat in the last {3 * settings.IL2WARD_HEARTBEAT_SECONDS} s"
    return None


def beat_lease(now) -> dict:
    """The beat lease's holder (host:pid, None before any beat took it), until when, and the live standby beats.

    A second beat is not a problem to readiness: it waits (il2ward.lease) and takes over when the holder stops.
    """
    from il2ward.lease import BEAT as LEASE
    from il2ward.lease import lease_current

    lease = lease_current(LEASE)
    holder = lease.holder if lease else None
    return {
        "holder": holder,
        "expires_at": lease.expires_at.isoformat() if lease else None,
        "expired": bool(lease and lease.expires_at < now),
        "standby": [name for name in live(BEAT_PREFIX, now) if name != holder],
    }


def listener_problem(now, *, expected: bool | None = None) -> str | None:
    """Where a listener is expected (IL2WARD_HL7_LISTENER_EXPECTED), none with a fresh heartbeat is a problem."""
    if not (settings.IL2WARD_HL7_LISTENER_EXPECTED if expected is None else expected):
        return None
    if live(LISTENER_PREFIX, now):
        return None
    last = Heartbeat.objects.filter(name__startswith=LISTENER_PREFIX).order_by("-at").values_list("at", flat=True)
    seen = last.first()
    if seen is None:
        return "no HL7 listener heartbeat yet"
    return f"last HL7 listener heartbeat {int((now - seen).total_seconds())} s ago"


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
        return type(exc).__name__
    return None


def _check_broker() -> str | None:
    from il2ward.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return None


def _check_beat(now) -> str | None:
    last = Heartbeat.objects.filter(name=BEAT).values_list("at", flat=True).first()
    if last is None:
        return "no heartbeat yet"
    if now - last > timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS + 30):
        return f"last heartbeat {int((now - last).total_seconds())} s ago"
    return None


def _check_sweep_steps(now) -> str | None:
    """A sweep step that has not run clean for three intervals while the beat is alive: the sweep runs but that step
    keeps failing, or keeps pushing items back (scheduling.tasks logs them by step, kind and id), which are named."""
    stale_before = now - timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS + 30)
    rows = Heartbeat.objects.filter(name__startswith=STEP_PREFIX, at__lt=stale_before).order_by("name")
    failing = [
        f"{name.removeprefix(STEP_PREFIX)} {int((now - at).total_seconds())} s ago"
        + (f" (done with {len(items)} failed items: {', '.join(items)})" if items else "")
        for name, at, items in rows.values_list("name", "at", "failed_items")
    ]
    return f"sweep steps not succeeding (last success, or first failure): {', '.join(failing)}" if failing else None


def _check_deliveries() -> str | None:
    """Dead-lettered deliveries need a person: retry or dismiss them in the admin."""
    from il2ward.notifications import dead_letters

    dead = dead_letters()
    if not dead:
        return None
    by_channel = ", ".join(f"{channel} {n}" for channel, n in sorted(dead.items()))
    return f"{sum(dead.values())} dead-lettered ({by_channel}): /admin/il2ward/delivery/?status__exact=dead"


def readiness_problems(now) -> dict[str, str]:
    problems = {}
    db = _check_database()
    if db:
        problems["database"] = db
    broker = _check_broker()
    if broker:
        problems["broker"] = broker
    if not db:
        worker = _check_worker(now)
        if worker:
            problems["worker"] = worker
        beat = _check_beat(now)
        if beat:
            problems["beat"] = beat
        elif steps := _check_sweep_steps(now):
            problems["sweep"] = steps
        deliveries = _check_deliveries()
        if deliveries:
            problems["deliveries"] = deliveries
        listener = listener_problem(now)
        if listener:
            problems["hl7_listener"] = listener
        from il2ward.notifications import webhook_problems

        if webhooks := webhook_problems():
            problems["webhooks"] = webhooks
    return problems


def may_see_details(request) -> bool:
    """Which check failed (and the admin pages it names) is for staff, or a monitor holding IL2WARD_READYZ_TOKEN
    (`Authorization: Bearer <token>`); everyone else gets the status alone."""
    import hmac

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.IL2WARD_READYZ_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def readyz(request):
    now = timezone.now()
    problems = readiness_problems(now)
    lease = {}
    if "database" not in problems:
        lease = {"beat_lease": beat_lease(now)}
    if problems:
        body = {"status": "unavailable"}
        if may_see_details(request):
            body.update(failed=problems, **lease)
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", **lease} if may_see_details(request) else {"status": "ok"})
