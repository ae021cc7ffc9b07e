"""Password throttling (django-axes): a username is locked after 5 wrong passwords in a row, on every login path."""

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-at-all"


def _login_page(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_login_page_locks_after_five_failures_then_refuses_the_right_password(nurse_a, nurse_b):
    client = Client()
    for _ in range(4):
        assert _login_page(client, "nurse_a", WRONG).status_code == 200  # the form again, with an error
    assert _login_page(client, "nurse_a", WRONG).status_code == 429  # the fifth failure locks the username
    response = _login_page(client, "nurse_a", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another nurse at the same station is not locked out by her colleague's failures.
    assert _login_page(Client(), "nurse_b", PASSWORD).status_code == 302


def test_four_failures_then_the_right_password_logs_in(nurse_a):
    client = Client()
    for _ in range(4):
        _login_page(client, "nurse_a", WRONG)
    assert _login_page(client, "nurse_a", PASSWORD).status_code == 302


def test_token_endpoint_locks_after_five_failures(api, nurse_a, nurse_b):
    url = "/api/v1/auth/token/"
    for _ in range(4):
        assert api.post(url, {"username": "nurse_a", "password": WRONG}, format="json").status_code == 400
    assert api.post(url, {"username": "nurse_a", "password": WRONG}, format="json").status_code == 429
    locked = api.post(url, {"username": "nurse_a", "password": PASSWORD}, format="json")
    assert locked.status_code == 429
    assert "token" not in locked.content.decode()
    assert locked["Content-Type"] == "application/json" and "locked" in locked.json()["detail"]  # the API's 429 body
    assert api.post(url, {"username": "nurse_b", "password": PASSWORD}, format="json").status_code == 200


def test_failures_on_the_token_endpoint_count_for_the_login_page(api, nurse_a):
    for _ in range(5):
        api.post("/api/v1/auth/token/", {"username": "nurse_a", "password": WRONG}, format="json")
    assert _login_page(Client(), "nurse_a", PASSWORD).status_code == 429
