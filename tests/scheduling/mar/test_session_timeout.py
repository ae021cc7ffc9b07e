"""SessionTimeoutMiddleware: 15 min without user action logs out; the board's htmx poll (X-IL2Ward-Poll) is not user
action; 12 h is the absolute limit whatever the activity."""

from datetime import timedelta

import pytest
import time_machine

from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_X_IL2WARD_POLL": "1"}


@pytest.fixture
def traveller():
    with time_machine.travel(NOW, tick=False) as t:
        yield t


def sign_in(client, user):
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/wards/onc-a/").status_code == 200  # the first action starts the clocks


def logged_out_by_poll(response) -> bool:
    return response.status_code == 204 and response["HX-Redirect"] == "/accounts/login/"


def test_polls_alone_do_not_keep_the_session_alive(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    for minute in (5, 10, 14):
        traveller.move_to(NOW + timedelta(minutes=minute))
        response = client.get("/wards/onc-a/", **POLL)
        assert response.status_code == 200 and 'id="board"' in response.content.decode()
    traveller.move_to(NOW + timedelta(minutes=15, seconds=1))
    assert logged_out_by_poll(client.get("/wards/onc-a/", **POLL))
    # and the session is really gone: a normal page now asks to sign in
    response = client.get("/wards/onc-a/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_user_action_restarts_the_idle_clock(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    traveller.move_to(NOW + timedelta(minutes=14))
    assert client.get("/wards/onc-a/").status_code == 200  # a click: user action
    traveller.move_to(NOW + timedelta(minutes=28))
    assert client.get("/wards/onc-a/", **POLL).status_code == 200  # 14 min after the click: still signed in
    traveller.move_to(NOW + timedelta(minutes=29, seconds=1))
    assert logged_out_by_poll(client.get("/wards/onc-a/", **POLL))


def test_idle_logout_redirects_a_page_to_the_login_with_next(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    traveller.move_to(NOW + timedelta(minutes=16))
    response = client.get("/wards/onc-a/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/wards/onc-a/"


def test_twelve_hours_is_the_absolute_limit(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    for minutes in range(10, 12 * 60, 10):  # a click every 10 minutes, all shift long
        traveller.move_to(NOW + timedelta(minutes=minutes))
        assert client.get("/wards/onc-a/").status_code == 200, minutes
    traveller.move_to(NOW + timedelta(hours=12, seconds=1))
    response = client.get("/wards/onc-a/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_signing_in_again_starts_fresh_clocks(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    traveller.move_to(NOW + timedelta(minutes=20))
    assert client.get("/wards/onc-a/").status_code == 302
    sign_in(client, nurse_a)
    traveller.move_to(NOW + timedelta(minutes=30))
    assert client.get("/wards/onc-a/", **POLL).status_code == 200


def test_an_idle_api_session_answers_401(client, nurse_a, traveller):
    sign_in(client, nurse_a)
    assert client.get("/api/v1/patients/").status_code == 200
    traveller.move_to(NOW + timedelta(minutes=16))
    assert client.get("/api/v1/patients/").status_code in (401, 403)
