"""The administrator lifts a lock-out (django-axes) of a username or a client address in the admin: through the
service, in the security log and the audit trail; what was not selected stays locked."""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from il2ward.models import AuditEvent, SecurityEvent
from tests.conftest import PASSWORD, make_staff

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-at-all"
STATION = "10.20.30.40"
LIST = "/admin/axes/accessattempt/"


def sign_in(username: str, password: str, address: str = "10.9.9.9") -> int:
    client = Client(REMOTE_ADDR=address)
    return client.post("/accounts/login/", {"username": username, "password": password}).status_code


def lock(username: str, address: str = "10.9.9.9") -> None:
    for _ in range(5):
        sign_in(username, WRONG, address)
    assert sign_in(username, PASSWORD, address) == 429


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(make_staff("admin_u", "admin"))
    return client


def selected(**match) -> list[int]:
    return list(AccessAttempt.objects.filter(**match).values_list("pk", flat=True))


def test_the_admin_sees_the_lockouts_and_unlocks_one_username(admin_client, nurse_a, nurse_b):
    lock("nurse_a")
    lock("nurse_b")
    listing = admin_client.get(LIST)
    assert listing.status_code == 200
    assert b"nurse_a" in listing.content and b"Unlock the selected usernames" in listing.content
    response = admin_client.post(LIST, {"action": "unlock_usernames", "_selected_action": selected(username="nurse_a")})
    assert response.status_code == 302
    assert sign_in("nurse_a", PASSWORD) == 302
    assert sign_in("nurse_b", PASSWORD) == 429  # not selected: still locked
    event = SecurityEvent.objects.get(kind="unlock")
    assert event.username == event.detail["username"] == "nurse_a" and event.detail["attempts_cleared"] >= 1
    assert event.path.startswith("/admin/")
    audit_row = AuditEvent.objects.get(action="lockout.unlock")
    assert audit_row.actor.username == "admin_u" and audit_row.new["username"] == "nurse_a"


def test_unlocking_an_address_lets_the_whole_station_sign_in_again(admin_client, nurse_b):
    for i in range(30):
        sign_in(f"guess{i % 10}", WRONG, STATION)
    assert sign_in("nurse_b", PASSWORD, STATION) == 429  # the address is locked
    response = admin_client.post(
        LIST, {"action": "unlock_addresses", "_selected_action": selected(ip_address=STATION)[:1]}
    )
    assert response.status_code == 302
    assert sign_in("nurse_b", PASSWORD, STATION) == 302
    assert SecurityEvent.objects.get(kind="unlock").detail["address"] == STATION


def test_attempts_cannot_be_deleted_by_hand_and_a_nurse_cannot_unlock(admin_client, nurse_a, nurse_b):
    lock("nurse_a")
    ids = selected(username="nurse_a")
    assert b"delete_selected" not in admin_client.get(LIST).content
    admin_client.post(LIST, {"action": "delete_selected", "_selected_action": ids})
    assert AccessAttempt.objects.filter(pk__in=ids).count() == len(ids)  # no such action: nothing deleted
    assert admin_client.post(f"{LIST}{ids[0]}/delete/", {"post": "yes"}).status_code == 403
    nurse = Client()
    nurse.force_login(nurse_b)
    assert nurse.post(LIST, {"action": "unlock_usernames", "_selected_action": ids}).status_code == 302  # to login
    assert sign_in("nurse_a", PASSWORD) == 429
    assert not SecurityEvent.objects.filter(kind="unlock").exists()


def test_the_service_refuses_neither_or_both(admin_client):
    from il2ward.credentials import lockout_unlock
    from il2ward.errors import Invalid

    admin = make_staff("admin_v", "admin")
    for kwargs in ({}, {"username": "a", "address": "10.0.0.1"}):
        with pytest.raises(Invalid):
            lockout_unlock(by=admin, **kwargs)
    assert lockout_unlock(by=admin, username="nobody") == 0  # nothing to clear is still logged
    assert SecurityEvent.objects.filter(kind="unlock", username="nobody").count() == 1


def test_the_list_says_what_is_locked_in_constant_queries(admin_client, nurse_b):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def listing_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST).status_code == 200
        return len(captured)

    sign_in("nurse_b", WRONG, STATION)
    few = listing_queries()
    for i in range(30):
        sign_in(f"guess{i % 10}", WRONG, STATION)  # 31 failures from the station, none reaching a username's 5
    html = admin_client.get(LIST).content.decode()
    assert html.count('<td class="field-locked">address</td>') == AccessAttempt.objects.count() == 11
    assert "username and address" not in html
    assert listing_queries() == few  # 1 row or 11: the same queries
    lock("nurse_b", "10.1.1.1")
    assert '<td class="field-locked">username</td>' in admin_client.get(LIST).content.decode()


# --- manage.py axes_reset*: the same service --------------------------------------------------------------------


def _command(name: str, *args) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def test_axes_reset_username_unlocks_through_the_service_and_leaves_the_other_locked(nurse_a, nurse_b):
    lock("nurse_a")
    lock("nurse_b", address="10.8.8.8")
    assert "attempts removed" in _command("axes_reset_username", "nurse_a")
    assert sign_in("nurse_a", PASSWORD) == 302
    assert sign_in("nurse_b", PASSWORD, "10.8.8.8") == 429  # not named: still locked
    event = SecurityEvent.objects.get(kind="unlock")
    assert event.username == "nurse_a" and event.detail["via"] == "manage.py axes_reset_username"
    assert event.detail["by"] is None and event.detail["attempts_cleared"] >= 1
    audit = AuditEvent.objects.get(action="lockout.unlock")
    assert audit.actor is None and audit.reason == "manage.py axes_reset_username"
    assert audit.new["username"] == "nurse_a"


def test_axes_reset_ip_unlocks_an_address_logged_and_audited(nurse_a):
    from django.conf import settings

    for n in range(settings.IL2WARD_LOCKOUT_ADDRESS_FAILURES):
        sign_in(f"guess{n}", WRONG, STATION)
    assert sign_in("nurse_a", PASSWORD, STATION) == 429
    _command("axes_reset_ip", STATION)
    assert sign_in("nurse_a", PASSWORD, STATION) == 302
    assert SecurityEvent.objects.get(kind="unlock").detail["address"] == STATION
    assert AuditEvent.objects.get(action="lockout.unlock").new["address"] == STATION


def test_axes_reset_unlocks_everyone_logged_once_and_nothing_to_clear_is_logged_too(nurse_a, nurse_b):
    lock("nurse_a")
    lock("nurse_b", address="10.8.8.8")
    _command("axes_reset")
    assert sign_in("nurse_a", PASSWORD) == 302 and sign_in("nurse_b", PASSWORD, "10.8.8.8") == 302
    assert SecurityEvent.objects.get(kind="unlock").detail["everything"] is True
    assert "No attempts found." in _command("axes_reset_username", "nobody")
    assert SecurityEvent.objects.filter(kind="unlock").count() == 2
    assert AuditEvent.objects.filter(action="lockout.unlock").count() == 2


def test_axes_reset_ip_username_clears_nothing_unlogged(nurse_a):
    from django.core.management.base import CommandError

    lock("nurse_a")
    with pytest.raises(CommandError, match="axes_reset_username or axes_reset_ip"):
        _command("axes_reset_ip_username", "10.9.9.9", "nurse_a")
    assert sign_in("nurse_a", PASSWORD) == 429
    assert not SecurityEvent.objects.filter(kind="unlock").exists()
