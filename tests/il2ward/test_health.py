"""Health probes and the API's own documentation (API.md: Health; Conventions: OpenAPI schema and docs).

/readyz checks the broker for real: Redis when REDIS_URL is set, else the filesystem transport of the demo.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone

from il2ward.health import readiness_problems
from il2ward.heartbeats import BEAT, process_beats
from il2ward.models import Heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_alive():
    process_beats(name="worker:celery@ward-host", now=timezone.now())


def test_healthz_is_200_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_503_naming_beat_before_any_heartbeat(admin_client, worker_alive):
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    failed = response.json()["failed"]
    assert list(failed) == ["beat"], failed  # the database and the broker are fine


def test_readyz_is_200_after_the_sweep_task_ran(client, admin_client, worker_alive):
    from scheduling.tasks import sweep

    sweep.apply().get()  # the task the beat schedules, run here in-process
    assert Heartbeat.objects.get(name=BEAT).at > timezone.now() - timedelta(minutes=1)
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}  # which beat holds the lease is for staff
    staff = admin_client.get("/readyz").json()
    assert staff["beat_lease"] == {"holder": None, "expires_at": None, "expired": False, "standby": []}


def test_readyz_is_503_naming_beat_when_the_heartbeat_is_stale(admin_client, settings):
    Heartbeat.objects.create(name=BEAT, at=timezone.now() - timedelta(seconds=4 * settings.SWEEP_INTERVAL_SECONDS + 30))
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    assert "ago" in response.json()["failed"]["beat"]


def test_readyz_is_503_naming_broker_when_the_broker_is_unreachable(admin_client, worker_alive):
    """A broker URL nobody listens on (a real failed connection, not a stub)."""
    from il2ward.celery import app

    Heartbeat.objects.create(name=BEAT, at=timezone.now())
    configured = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        response = admin_client.get("/readyz")
    finally:
        app.conf.broker_url = configured
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["broker"]


def test_readyz_names_the_worker_without_a_fresh_worker_heartbeat(admin_client, settings):
    Heartbeat.objects.create(name=BEAT, at=timezone.now())
    stale = timezone.now() - timedelta(seconds=3 * settings.IL2WARD_HEARTBEAT_SECONDS + 1)
    Heartbeat.objects.create(name="worker:celery@gone", at=stale)
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["worker"]
    process_beats(name="worker:celery@alive", now=timezone.now())
    assert admin_client.get("/readyz").status_code == 200


def test_worker_alive_is_per_worker_and_needs_a_fresh_heartbeat(settings):
    from il2ward.heartbeats import worker_alive

    now = timezone.now()
    process_beats(name="worker:celery@one", now=now)
    process_beats(name="worker:celery@two", now=now - timedelta(seconds=3 * settings.IL2WARD_HEARTBEAT_SECONDS + 1))
    assert worker_alive("celery@one", now=now)
    assert not worker_alive("celery@two", now=now) and not worker_alive("celery@three", now=now)


def test_readyz_names_the_beat_holding_the_lease_and_the_standby_and_two_beats_are_ready(admin_client, worker_alive):
    from il2ward.lease import lease_take

    now = timezone.now()
    Heartbeat.objects.create(name=BEAT, at=now)
    process_beats(name="beat:host-a:101", now=now)
    assert lease_take(name="beat", holder="host-a:101", now=now, seconds=30)
    response = admin_client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["beat_lease"]["holder"] == "host-a:101" and response.json()["beat_lease"]["standby"] == []
    process_beats(name="beat:host-b:202", now=now)
    assert not lease_take(name="beat", holder="host-b:202", now=now, seconds=30)
    response = admin_client.get("/readyz")
    assert response.status_code == 200, response.content  # the second beat waits: not a fault
    lease = response.json()["beat_lease"]
    assert lease["holder"] == "host-a:101" and lease["standby"] == ["host-b:202"] and not lease["expired"]
    assert readiness_problems(now) == {}


def test_openapi_schema_is_served_and_lists_the_endpoints(admin_client):
    response = admin_client.get("/api/schema/")
    assert response.status_code == 200
    schema = response.content.decode()
    assert re.search(r"^openapi: 3\.", schema, re.M)
    for path in ("/api/v1/courses/", "/api/v1/patients/", "/api/v1/patients/{id}/", "/api/v1/auth/token/"):
        assert f"{path}:" in schema, path


def test_openapi_schema_documents_course_and_dose_reads(admin_client):
    """API.md lists GET courses/{id}/, courses/{id}/doses/ and doses/{id}/: the schema must not drop them."""
    schema = admin_client.get("/api/schema/").content.decode()
    for path in ("/api/v1/courses/{id}/", "/api/v1/courses/{id}/doses/", "/api/v1/doses/{id}/"):
        assert f"{path}:" in schema, f"{path} missing from the OpenAPI schema"


def test_api_docs_page_uses_no_cdn(admin_client):
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    for cdn in ("cdn.", "unpkg", "jsdelivr", "cdnjs", "googleapis"):
        assert cdn not in html, cdn
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html)
    assert any("swagger-ui" in a for a in assets), "the docs page should load the vendored Swagger UI"
    for asset in assets:
        assert finders.find(asset), f"/static/{asset} is referenced by /api/docs/ but not shipped"
    assert "/api/schema/" in admin_client.get("/api/docs/?script=").content.decode()  # its script, not inline


def test_readyz_gives_anonymous_callers_the_status_only(client, admin_client, settings):
    """Which check failed (and the admin page it may name) is for staff and the monitoring token only."""
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "unavailable"}
    assert "failed" in admin_client.get("/readyz").json()
    settings.IL2WARD_READYZ_TOKEN = "monitor-token-0123456789"
    assert "failed" in client.get("/readyz", HTTP_AUTHORIZATION="Bearer monitor-token-0123456789").json()
    assert "failed" not in client.get("/readyz", HTTP_AUTHORIZATION="Bearer wrong").json()


def test_readyz_details_are_not_for_a_nurse(client, nurse_a):
    client.force_login(nurse_a)
    assert client.get("/readyz").json() == {"status": "unavailable"}


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_sign_in(client, api, nurse_a, path):
    assert client.get(path).status_code in (401, 403)
    assert api.as_user(nurse_a).get(path).status_code == 200  # an API client with a token
    client.force_login(nurse_a)
    assert client.get(path).status_code == 200
