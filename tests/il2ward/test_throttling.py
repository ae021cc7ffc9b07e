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


# --- per address: a higher limit across usernames ------------------------------------------------------------------

STATION = "10.20.30.40"


def _from(address: str, username: str, password: str) -> int:
    return (
        Client(REMOTE_ADDR=address).post("/accounts/login/", {"username": username, "password": password}).status_code
    )


def test_one_nurses_typos_lock_her_not_the_station(nurse_a, nurse_b):
    for _ in range(5):
        _from(STATION, "nurse_a", WRONG)
    assert _from(STATION, "nurse_a", PASSWORD) == 429
    assert _from(STATION, "nurse_b", PASSWORD) == 302  # her colleague at the same workstation signs in


def _spray(count: int) -> None:
    """`count` failures from the station, over usernames that each stay under the username limit."""
    for i in range(count):
        assert _from(STATION, f"guess{i % 10}", WRONG) == 200


def test_thirty_failures_from_one_address_across_usernames_lock_the_address(nurse_b):
    _spray(29)
    assert _from(STATION, f"guess{29 % 10}", WRONG) == 429  # the thirtieth locks the address
    assert _from(STATION, "nurse_b", PASSWORD) == 429
    assert _from("10.20.30.41", "nurse_b", PASSWORD) == 302  # another address is not locked


def test_twenty_nine_failures_from_one_address_still_let_a_nurse_sign_in(nurse_b):
    _spray(29)
    assert _from(STATION, "nurse_b", PASSWORD) == 302


def test_a_correct_password_resets_her_count_not_the_addresss(nurse_b):
    _spray(29)
    assert _from(STATION, "nurse_b", PASSWORD) == 302
    assert _from(STATION, "guess0", WRONG) == 429  # the address's 30th failure, after her sign-in
