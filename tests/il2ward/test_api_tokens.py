"""API tokens (django-rest-knox): hashed at rest, expiring, one per client, revoked by their owner (logout), by an
administrator, by a password change and by a deactivation; each issue and revocation in the security log."""

import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from il2ward.models import ApiToken, AuditEvent, SecurityEvent
from tests.conftest import NOW, PASSWORD, make_staff

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/token/"
PROBE = "/api/v1/patients/"


def login(api, username="nurse_a", password=PASSWORD, **extra):
    return api.post(LOGIN, {"username": username, "password": password, **extra}, format="json")


def token_of(api, username="nurse_a", **extra) -> str:
    response = login(api, username, **extra)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def status_with(token: str, path: str = PROBE, method: str = "get") -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return getattr(client, method)(path).status_code


def revocations(**filters) -> list[str]:
    rows = SecurityEvent.objects.filter(kind="token_revoked", **filters).order_by("pk")
    return [row.detail["reason"] for row in rows]


def test_login_answers_a_token_its_expiry_and_client_and_stores_only_a_hash(api, nurse_a):
    with time_machine.travel(NOW, tick=False):
        response = login(api, client="ward-a-tablet-3")
    assert response.status_code == 200
    body = response.json()
    token = body["token"]
    assert body["expiry"] == "2027-03-11T00:00:00Z" == (NOW + timedelta(hours=12)).isoformat().replace("+00:00", "Z")
    assert body["client"] == "ward-a-tablet-3"
    row = ApiToken.objects.get()
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert (row.user, row.client) == (nurse_a, "ward-a-tablet-3")
    # Nowhere in the database in plaintext: not in the token table, not in the security log, not in the audit.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM il2ward_apitoken")
        stored = json.dumps(cursor.fetchall(), default=str)
    assert token not in stored and token[15:] not in stored  # the 15-character look-up key only
    logged = json.dumps(list(SecurityEvent.objects.values()) + list(AuditEvent.objects.values()), default=str)
    assert token[:15] not in logged and row.digest not in logged
    issued = SecurityEvent.objects.get(kind="token_issued")
    assert issued.detail == {"token": row.pk, "client": "ward-a-tablet-3", "expiry": "2027-03-11T00:00:00+00:00"}
    assert status_with(token) == 200


def test_every_login_is_a_new_token_and_two_clients_hold_two_tokens(api, nurse_a):
    tablet = token_of(api, client="tablet")
    lab = token_of(api, client="lab-interface")
    first, second = token_of(api), token_of(api)  # an older client naming none: a token each time
    assert len({tablet, lab, first, second}) == 4
    assert all(status_with(t) == 200 for t in (tablet, lab, first, second))
    assert ApiToken.objects.filter(user=nurse_a).count() == 4


def test_a_new_login_from_the_same_client_replaces_that_clients_token_only(api, nurse_a):
    old_tablet = token_of(api, client="tablet")
    lab = token_of(api, client="lab-interface")
    new_tablet = token_of(api, client="tablet")
    assert status_with(old_tablet) == 401
    assert status_with(new_tablet) == 200 and status_with(lab) == 200
    assert revocations(user=nurse_a) == ["replaced"]


def test_a_client_name_over_64_characters_is_a_400_naming_it_and_nothing_is_stored(api, nurse_a):
    response = login(api, client="x" * 65)
    assert response.status_code == 400 and "client" in response.json()["errors"]
    assert not ApiToken.objects.exists() and not SecurityEvent.objects.filter(kind="token_issued").exists()
    assert login(api, client="x" * 64).status_code == 200  # the longest allowed


def test_a_token_expires_after_12_hours_then_is_refused_and_removed(api, nurse_a):
    with time_machine.travel(NOW, tick=False) as clock:
        token = token_of(api)
        clock.shift(timedelta(hours=12) - timedelta(seconds=1))
        assert status_with(token) == 200  # the last second of its life
        clock.shift(timedelta(seconds=2))
        assert status_with(token) == 401
        assert not ApiToken.objects.exists()
        assert SecurityEvent.objects.filter(kind="token_expired", user=nurse_a).count() == 1
        assert status_with(token_of(api)) == 200  # logging in again works


def test_the_lifetime_is_a_site_setting(api, nurse_a, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=1)}  # IL2WARD_API_TOKEN_HOURS=1
    with time_machine.travel(NOW, tick=False) as clock:
        response = login(api)
        assert response.json()["expiry"] == "2027-03-10T13:00:00Z"
        clock.shift(timedelta(minutes=61))
        assert status_with(response.json()["token"]) == 401


def test_expired_tokens_of_the_user_are_removed_at_the_next_login(api, nurse_a):
    with time_machine.travel(NOW, tick=False) as clock:
        token_of(api, client="tablet")
        clock.shift(timedelta(hours=13))
        token_of(api, client="lab")
    assert list(ApiToken.objects.values_list("client", flat=True)) == ["lab"]
    assert SecurityEvent.objects.filter(kind="token_expired", user=nurse_a).count() == 1


def test_logout_revokes_the_token_it_is_sent_with_and_no_other(api, nurse_a):
    tablet, lab = token_of(api, client="tablet"), token_of(api, client="lab")
    assert status_with(tablet, "/api/v1/auth/logout/", "post") == 204
    assert status_with(tablet) == 401
    assert status_with(tablet, "/api/v1/auth/logout/", "post") == 401  # already revoked
    assert status_with(lab) == 200
    assert revocations(user=nurse_a) == ["logout"]


def test_logout_all_revokes_every_token_of_the_caller_only(api, nurse_a, nurse_b):
    tablet, lab, other = token_of(api, client="tablet"), token_of(api, client="lab"), token_of(api, "nurse_b")
    assert status_with(lab, "/api/v1/auth/logout-all/", "post") == 204
    assert status_with(tablet) == 401 and status_with(lab) == 401
    assert status_with(other) == 200  # another nurse's token is hers
    assert revocations(user=nurse_a) == ["logout_all", "logout_all"]


def test_logout_needs_a_token_not_a_session(nurse_a):
    client = Client()
    client.force_login(nurse_a)
    assert client.post("/api/v1/auth/logout/").status_code == 401


def test_a_password_change_revokes_every_token_of_the_user(api, nurse_a, nurse_b):
    mine, hers = token_of(api, client="tablet"), token_of(api, "nurse_b")
    nurse_a.set_password("a-new-long-passphrase-for-alice")
    nurse_a.save()
    assert status_with(mine) == 401
    assert status_with(hers) == 200
    assert revocations(user=nurse_a) == ["password_changed"]
    assert status_with(token_of(api, password="a-new-long-passphrase-for-alice")) == 200


def test_the_password_change_form_revokes_the_tokens_too(api, nurse_a):
    token = token_of(api)
    client = Client()
    client.force_login(make_staff("admin_u", "admin"))
    new = "another-long-passphrase-for-alice"
    response = client.post(
        f"/admin/auth/user/{nurse_a.pk}/password/", {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content
    assert status_with(token) == 401


def test_a_rehash_of_the_same_password_at_login_keeps_the_tokens(api, nurse_a, settings):
    """Argon2id upgrades an older hash at the next sign-in: the same password, so no token is revoked."""
    from django.contrib.auth.hashers import make_password

    token = token_of(api)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    type(nurse_a).objects.filter(pk=nurse_a.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    token_of(api, client="second")  # this login re-hashes with Argon2id
    nurse_a.refresh_from_db()
    assert nurse_a.password.startswith("argon2")
    assert status_with(token) == 200
    assert revocations() == []


def test_deactivation_revokes_every_token_and_reactivation_brings_none_back(api, nurse_a):
    token = token_of(api)
    nurse_a.is_active = False
    nurse_a.save()
    assert not ApiToken.objects.filter(user=nurse_a).exists()
    assert revocations(user=nurse_a) == ["deactivated"]
    nurse_a.is_active = True
    nurse_a.save()
    assert status_with(token) == 401
    nurse_a.first_name = "Alice"
    nurse_a.save()  # an ordinary edit of an active user revokes nothing
    assert status_with(token_of(api)) == 200
    assert revocations(user=nurse_a) == ["deactivated"]


def _admin_client():
    client = Client()
    client.force_login(make_staff("admin_u", "admin"))
    return client


def test_an_administrator_revokes_a_token_in_the_admin_logged_and_audited(api, nurse_a):
    tablet, lab = token_of(api, client="tablet"), token_of(api, client="lab")
    row = ApiToken.objects.get(client="tablet")
    client = _admin_client()
    listing = client.get("/admin/il2ward/apitoken/")
    assert listing.status_code == 200 and b"tablet" in listing.content and b"Revoke the selected" in listing.content
    assert tablet[:15].encode() not in listing.content and row.digest.encode() not in listing.content
    response = client.post("/admin/il2ward/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert status_with(tablet) == 401 and status_with(lab) == 200
    event = SecurityEvent.objects.get(kind="token_revoked")
    assert event.detail["reason"] == "admin" and event.user == nurse_a and event.detail["client"] == "tablet"
    audit_row = AuditEvent.objects.get(action="api_token.revoke")
    assert (audit_row.object_id, audit_row.actor.username) == (str(row.pk), "admin_u")


def test_a_nurse_cannot_reach_the_token_admin(api, nurse_a):
    token_of(api)
    client = Client()
    client.force_login(nurse_a)
    assert client.post("/admin/il2ward/apitoken/", {"action": "revoke", "_selected_action": [1]}).status_code == 302
    assert ApiToken.objects.count() == 1


def test_wrong_passwords_on_the_token_endpoint_still_lock_with_a_client_named(api, nurse_a):
    for _ in range(4):
        assert login(api, password="wrong-password-here", client="tablet").status_code == 400
    assert login(api, password="wrong-password-here", client="tablet").status_code == 429
    assert login(api, client="tablet").status_code == 429
    assert not ApiToken.objects.exists()


def test_an_inactive_users_token_is_refused(api, nurse_a):
    token = token_of(api)
    type(nurse_a).objects.filter(pk=nurse_a.pk).update(is_active=False)  # even bypassing the signal (raw update)
    assert status_with(token) == 401


@pytest.mark.django_db(transaction=True)
def test_plaintext_tokens_of_rest_frameworks_authtoken_are_carried_over_hashed_and_dropped(nurse_a):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("il2ward.migrations.0016_api_tokens_knox")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id int)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, timezone.now(), nurse_a.pk])
    with connection.schema_editor() as editor:
        migration.migrate_drf_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    row = ApiToken.objects.get()
    assert (row.user, row.client, row.digest) == (nurse_a, "migrated", hashlib.sha512(old_key.encode()).hexdigest())
    assert timedelta(hours=11) < row.expiry - timezone.now() <= timedelta(hours=12)
    assert status_with(old_key) == 200  # the old client keeps working until it expires


# --- Expired tokens purged on a schedule; simultaneous logins of one client -------------------------------------


def test_the_purge_deletes_expired_tokens_only_with_one_event_holding_the_count(nurse_a, nurse_b):
    from il2ward.credentials import api_tokens_purge_expired

    with time_machine.travel(NOW, tick=False) as clock:
        old = [ApiToken.objects.create(user=user, client=c)[1] for user in (nurse_a, nurse_b) for c in ("t1", "t2")]
        clock.shift(timedelta(hours=11))
        ApiToken.objects.create(user=nurse_a, client="fresh")
        clock.shift(timedelta(hours=1, seconds=1))  # the first four are 12 h 0 min 1 s old, the fresh one 1 h
        assert api_tokens_purge_expired() == {"tokens_purged": 4}
        assert list(ApiToken.objects.values_list("client", flat=True)) == ["fresh"]
        event = SecurityEvent.objects.get(kind="tokens_purged")
        assert event.detail == {"tokens": 4} and event.user is None
        assert not any(token[:8] in json.dumps(event.detail) for token in old)
        assert api_tokens_purge_expired() == {"tokens_purged": 0}  # nothing left: no event either
        assert SecurityEvent.objects.filter(kind="tokens_purged").count() == 1


def test_a_token_in_its_last_second_is_not_purged(nurse_a):
    from il2ward.credentials import api_tokens_purge_expired

    with time_machine.travel(NOW, tick=False) as clock:
        ApiToken.objects.create(user=nurse_a, client="tablet")
        clock.shift(timedelta(hours=12) - timedelta(seconds=1))
        assert api_tokens_purge_expired() == {"tokens_purged": 0}
        assert ApiToken.objects.count() == 1


def test_the_purge_takes_a_constant_number_of_queries(nurse_a, nurse_b):
    from django.test.utils import CaptureQueriesContext

    from il2ward.credentials import api_tokens_purge_expired

    def queries(count: int) -> int:
        with time_machine.travel(NOW, tick=False) as clock:
            for n in range(count):
                ApiToken.objects.create(user=nurse_a if n % 2 else nurse_b, client=f"c{n}")
            clock.shift(timedelta(hours=13))
            with CaptureQueriesContext(connection) as captured:
                assert api_tokens_purge_expired()["tokens_purged"] == count
        return len(captured)

    assert queries(1) == queries(9)


def test_beat_schedules_the_purge(settings):
    from il2ward.celery import app
    from il2ward.tasks import api_tokens_purge

    app.finalize()
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["il2ward.api_tokens_purge"] == settings.IL2WARD_API_TOKEN_PURGE_SECONDS
    with time_machine.travel(NOW, tick=False):
        assert api_tokens_purge() == 0


def _logins_at_once(clients: list[str]) -> list[int]:
    import threading

    from rest_framework.test import APIClient

    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def post(client_name: str) -> None:
        try:
            barrier.wait(timeout=10)
            codes.append(login(APIClient(), client=client_name).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes


@pytest.mark.django_db(transaction=True)
def test_eight_simultaneous_logins_from_one_client_leave_one_live_token(transactional_db, nurse_a):
    from tests.workers import require_postgres

    require_postgres()
    assert _logins_at_once(["tablet"] * 8) == [200] * 8
    assert ApiToken.objects.filter(user=nurse_a, client="tablet", expiry__gt=timezone.now()).count() == 1
    assert SecurityEvent.objects.filter(kind="token_issued").count() == 8
    assert SecurityEvent.objects.filter(kind="token_revoked", detail__reason="replaced").count() == 7


@pytest.mark.django_db(transaction=True)
def test_simultaneous_logins_from_two_clients_keep_two_tokens(transactional_db, nurse_a):
    from tests.workers import require_postgres

    require_postgres()
    assert _logins_at_once(["tablet", "lab"] * 4) == [200] * 8
    assert sorted(ApiToken.objects.filter(user=nurse_a).values_list("client", flat=True)) == ["lab", "tablet"]
