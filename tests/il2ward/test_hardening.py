"""Hardening: no-store on every authenticated response, Permissions-Policy, browser-session cookies, Argon2id first
(old hashes upgraded at sign-in), NIST 800-63B password validators."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "") and "private" in response["Cache-Control"]


def test_a_signed_in_page_is_no_store(client, nurse_a, ward_a):
    client.force_login(nurse_a)
    response = client.get(f"/wards/{ward_a.code}/")
    assert response.status_code == 200 and no_store(response)
    assert "camera=()" in response["Permissions-Policy"]


def test_an_api_response_with_a_token_is_no_store(api, nurse_a, patient_a):
    response = api.as_user(nurse_a).get(f"/api/v1/patients/{patient_a.pk}/")
    assert response.status_code == 200 and no_store(response)


def test_the_calendar_feed_is_no_store_not_max_age(api, nurse_a, patient_a, make_course):
    from il2ward import feeds
    from tests.conftest import NOW

    course = make_course(patient_a)
    _, secret = feeds.calendar_token_create(user=nurse_a, now=NOW)
    response = Client().get(f"/api/v1/calendar/{secret}/courses/{course.pk}.ics")
    assert response.status_code == 200 and no_store(response)


def test_the_anonymous_login_page_still_gets_the_permissions_policy(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and "microphone=()" in response["Permissions-Policy"]


def test_the_session_cookie_ends_with_the_browser(client, nurse_a):
    response = client.post("/accounts/login/", {"username": "nurse_a", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies["sessionid"]
    assert not cookie["expires"] and not cookie["max-age"] and cookie["httponly"]


def test_a_pbkdf2_hash_is_upgraded_to_argon2id_at_sign_in(nurse_a, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    nurse_a.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    nurse_a.save(update_fields=["password"])
    assert Client().post("/accounts/login/", {"username": "nurse_a", "password": PASSWORD}).status_code == 302
    nurse_a.refresh_from_db()
    assert nurse_a.password.startswith("argon2$argon2id$")


def test_production_settings_hash_new_passwords_with_argon2id(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IL2WARD_"))}
    env.update(
        IL2WARD_ENV="production",
        DJANGO_SECRET_KEY="p" * 60,
        IL2WARD_ALLOWED_HOSTS="ward.example.org",
        IL2WARD_AUDIT_KEYS="k1:" + "s" * 40,
        IL2WARD_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        DJANGO_SETTINGS_MODULE="il2ward.settings",
    )
    code = (
        "import django; django.setup(); from django.contrib.auth.hashers import make_password; "
        "from django.conf import settings; print(make_password('a-long-ward-password-42')); "
        "print(settings.SESSION_EXPIRE_AT_BROWSER_CLOSE)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    hashed, expire_at_close = result.stdout.split()[-2:]
    assert hashed.startswith("argon2$argon2id$") and expire_at_close == "True"


@pytest.mark.parametrize(
    "password",
    ["eleven-char", "password1234", "aldesleukin", "Oncology2027", "nurse_a12345"],
    ids=["too-short", "breached", "the-drug", "the-ward", "like-the-username"],
)
def test_weak_passwords_are_refused(password, nurse_a):
    with pytest.raises(ValidationError):
        validate_password(password, user=nurse_a)


@pytest.mark.parametrize("password", ["twelve chars", "correct-horse-battery", "aaaaaaaaaaaaaaaa", "431298765012"])
def test_long_enough_passwords_need_no_composition(password, nurse_a):
    """The nearest allowed cases: no digits, capitals or symbols demanded; spaces allowed (NIST 800-63B)."""
    validate_password(password, user=nurse_a)
