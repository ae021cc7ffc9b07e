"""Staff provisioning from the command line (API.md): create_ward and create_staff are idempotent; the password comes
from IL2WARD_PASSWORD, never from argv."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.http import HttpRequest

from il2ward.models import AuditEvent, StaffProfile, Ward

pytestmark = pytest.mark.django_db
User = get_user_model()
GOOD_PASSWORD = "a-long-ward-password-42"


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- create_ward ------------------------------------------------------------------------------------------------


def test_create_ward_creates_then_updates_one_ward():
    out = run("create_ward", "onc-c", "--name", "Oncology C", "--tz", "America/Denver")
    assert "onc-c" in out
    run("create_ward", "onc-c", "--name", "Oncology C (4th floor)", "--tz", "America/Phoenix")
    ward = Ward.objects.get()
    assert (ward.code, ward.name, ward.tz) == ("onc-c", "Oncology C (4th floor)", "America/Phoenix")
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["ward.create", "ward.update"]


def test_create_ward_twice_with_the_same_values_changes_nothing():
    run("create_ward", "onc-c", "--name", "Oncology C", "--tz", "UTC")
    run("create_ward", "onc-c", "--name", "Oncology C", "--tz", "UTC")
    assert Ward.objects.count() == 1 and AuditEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["onc-c", "--name", "C", "--tz", "Mars/Olympus"], "tz"),
        (["onc-c", "--name", "C", "--tz", "America"], "tz"),  # a directory of zones, not a zone
        (["onc c", "--name", "C", "--tz", "UTC"], "code"),
        (["onc-c", "--name", " ", "--tz", "UTC"], "name"),
        (["onc-c", "--name", "C"], "--tz"),
    ],
)
def test_create_ward_refuses_bad_input_and_stores_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_ward", *args)
    assert not Ward.objects.exists() and not AuditEvent.objects.exists()


# --- create_staff -----------------------------------------------------------------------------------------------


@pytest.fixture
def wards(ward_a, ward_b):
    return ward_a, ward_b


def test_create_staff_creates_a_user_with_role_wards_and_a_working_password(wards, monkeypatch, client):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    out = run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a", "--email", "nina@example.org")
    assert "nina" in out and GOOD_PASSWORD not in out
    user = User.objects.get(username="nina")
    assert list(user.groups.values_list("name", flat=True)) == ["nurse"]
    assert list(user.profile.wards.values_list("code", flat=True)) == ["onc-a"]
    assert user.email == "nina@example.org" and not user.is_staff
    assert authenticate(HttpRequest(), username="nina", password=GOOD_PASSWORD) == user
    assert client.post("/accounts/login/", {"username": "nina", "password": GOOD_PASSWORD}).status_code == 302


def test_create_staff_password_works_for_the_api_token(wards, monkeypatch, api):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a")
    response = api.post("/api/v1/auth/token/", {"username": "nina", "password": GOOD_PASSWORD}, format="json")
    assert response.status_code == 200 and response.json()["token"]


def test_create_staff_run_twice_updates_one_user(wards, monkeypatch):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a", "--email", "nina@example.org")
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD + "-new")
    run("create_staff", "nina", "--role", "charge_nurse", "--ward", "onc-a", "--ward", "onc-b", "--name", "Nina RN")
    assert User.objects.filter(username="nina").count() == 1
    assert StaffProfile.objects.filter(user__username="nina").count() == 1
    user = User.objects.get(username="nina")
    assert list(user.groups.values_list("name", flat=True)) == ["charge_nurse"]
    assert sorted(user.profile.wards.values_list("code", flat=True)) == ["onc-a", "onc-b"]
    assert user.profile.printed_name == "Nina RN"
    assert user.email == "nina@example.org"  # kept when --email is not given again
    assert authenticate(HttpRequest(), username="nina", password=GOOD_PASSWORD) is None
    assert authenticate(HttpRequest(), username="nina", password=GOOD_PASSWORD + "-new") == user
    actions = list(AuditEvent.objects.filter(object_type="auth.user").values_list("action", flat=True))
    assert actions == ["staff.create", "staff.update"]


def test_create_staff_admin_gets_the_django_admin(monkeypatch, db):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    run("create_staff", "root2", "--role", "admin")
    assert User.objects.get(username="root2").is_staff


def test_create_staff_without_il2ward_password_fails_and_stores_nothing(wards, monkeypatch):
    monkeypatch.delenv("IL2WARD_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="IL2WARD_PASSWORD"):
        run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a")
    assert not User.objects.filter(username="nina").exists()


def test_create_staff_refuses_a_weak_password(wards, monkeypatch):
    monkeypatch.setenv("IL2WARD_PASSWORD", "short")
    with pytest.raises(CommandError, match="IL2WARD_PASSWORD"):
        run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a")
    assert not User.objects.filter(username="nina").exists()


def test_create_staff_has_no_password_option(wards, monkeypatch):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    parser = load_command_class("il2ward", "create_staff").create_parser("manage.py", "create_staff")
    assert "--password" not in parser.format_help()
    with pytest.raises(CommandError, match="unrecognized arguments"):
        run("create_staff", "nina", "--role", "nurse", "--ward", "onc-a", "--password", "in-argv-and-ps-output")
    assert not User.objects.filter(username="nina").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nina", "--role", "surgeon", "--ward", "onc-a"], "role"),
        (["nina", "--role", "nurse", "--ward", "onc-z"], "onc-z"),
        (["nina", "--role", "nurse", "--ward", "onc-a", "--ward", "nowhere"], "nowhere"),
        (["bad name!", "--role", "nurse"], "username"),
        (["nina", "--ward", "onc-a"], "--role"),
    ],
)
def test_create_staff_refuses_unknown_role_or_ward_and_stores_nothing(wards, monkeypatch, args, message):
    monkeypatch.setenv("IL2WARD_PASSWORD", GOOD_PASSWORD)
    users, events = User.objects.count(), AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        run("create_staff", *args)
    assert (User.objects.count(), AuditEvent.objects.count()) == (users, events)
