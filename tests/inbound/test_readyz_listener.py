"""/readyz and the HL7 listener: reported only where a listener is expected, by its heartbeat row."""

from datetime import timedelta

import pytest
from django.utils import timezone

from il2ward.health import listener_problem
from il2ward.heartbeats import process_beats

pytestmark = pytest.mark.django_db


def test_an_expected_listener_without_a_heartbeat_is_a_readiness_problem(settings):
    settings.IL2WARD_HL7_LISTENER_EXPECTED = True
    now = timezone.now()
    assert listener_problem(now) == "no HL7 listener heartbeat yet"
    process_beats(
        name="hl7-listener:host:2575", now=now - timedelta(seconds=3 * settings.IL2WARD_HEARTBEAT_SECONDS + 5)
    )
    assert "last HL7 listener heartbeat" in listener_problem(now)
    process_beats(name="hl7-listener:host:2575", now=now)
    assert listener_problem(now) is None


def test_readyz_names_the_listener_only_where_one_is_expected(admin_client, settings):
    client = admin_client  # the failed checks are shown to staff
    now = timezone.now()
    assert "hl7_listener" not in client.get("/readyz").json().get("failed", {})
    settings.IL2WARD_HL7_LISTENER_EXPECTED = True
    assert "hl7_listener" in client.get("/readyz").json()["failed"]
    process_beats(name="hl7-listener:host:2575", now=now)
    assert "hl7_listener" not in client.get("/readyz").json().get("failed", {})
