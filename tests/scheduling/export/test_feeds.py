"""Calendar subscription links (il2ward/feeds.py; POST /api/v1/calendar-tokens/, .../revoke/, the feed URL):
the token stands for its owner, never a patient; revoked → 404; audited; the secret is never stored in clear."""

import hashlib

import pytest
from icalendar import Calendar

from il2ward import feeds
from il2ward.models import AuditEvent, CalendarFeedToken
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/calendar-tokens/"


def feed_url(secret, course_id) -> str:
    return f"/api/v1/calendar/{secret}/courses/{course_id}.ics"


def create(api, user, **body):
    response = api.as_user(user).post(TOKENS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_creating_a_token_stores_only_its_hash_and_is_audited(oncologist):
    row, secret = feeds.calendar_token_create(user=oncologist, now=NOW)
    row.refresh_from_db()
    assert row.token == hashlib.sha256(secret.encode()).hexdigest() != secret
    assert len(secret) >= 43
    event = AuditEvent.objects.get(action="calendar_token.create", object_id=str(row.pk))
    assert event.actor == oncologist
    assert secret not in str(event.new) and row.token not in str(event.new)


def test_a_subscription_link_serves_the_calendar_without_a_session(api, client, nurse_a, patient_a, make_course):
    course = make_course(patient_a)
    body = create(api, nurse_a, course=course.pk)
    assert body["feed_url"].endswith(feed_url(body["token"], course.pk))
    assert body["feed_url_template"].endswith(feed_url(body["token"], "{course}"))
    assert body["webcal_url"].startswith("webcal://")
    response = client.get(feed_url(body["token"], course.pk))  # a fresh client: no session, no API token
    assert response.status_code == 200
    assert len(Calendar.from_ical(response.content).walk("VEVENT")) == 28
    assert b"Pat Alpha" not in response.content and b"IL-2 PA" in response.content


def test_a_revoked_link_is_404(api, client, nurse_a, patient_a, make_course):
    course = make_course(patient_a)
    body = create(api, nurse_a)
    assert client.get(feed_url(body["token"], course.pk)).status_code == 200
    response = api.as_user(nurse_a).post(f"{TOKENS}{body['id']}/revoke/")
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert client.get(feed_url(body["token"], course.pk)).status_code == 404
    assert AuditEvent.objects.filter(action="calendar_token.revoke", object_id=str(body["id"]), actor=nurse_a).exists()
    again = api.as_user(nurse_a).post(f"{TOKENS}{body['id']}/revoke/")
    assert again.status_code == 409 and again.json()["code"] == "token_already_revoked"


def test_a_link_sees_only_what_its_owner_sees(api, client, nurse_b, patient_a, patient_b, make_course):
    course_a = make_course(patient_a)
    course_b = make_course(patient_b)
    body = create(api, nurse_b)
    assert client.get(feed_url(body["token"], course_b.pk)).status_code == 200
    response = client.get(feed_url(body["token"], course_a.pk))  # ward A: not nurse B's
    assert response.status_code == 404 and b"VEVENT" not in response.content


def test_unknown_tokens_and_deactivated_owners_are_404(api, client, nurse_a, patient_a, make_course):
    course = make_course(patient_a)
    body = create(api, nurse_a)
    assert client.get(feed_url("not-a-token", course.pk)).status_code == 404
    assert client.get(feed_url(body["token"][:-1], course.pk)).status_code == 404
    nurse_a.is_active = False
    nurse_a.save(update_fields=["is_active"])
    assert client.get(feed_url(body["token"], course.pk)).status_code == 404


def test_a_link_of_another_user_cannot_be_revoked(api, client, nurse_a, nurse_a2, patient_a, make_course):
    course = make_course(patient_a)
    body = create(api, nurse_a)
    assert api.as_user(nurse_a2).post(f"{TOKENS}{body['id']}/revoke/").status_code == 404
    assert CalendarFeedToken.objects.get(pk=body["id"]).revoked_at is None
    assert client.get(feed_url(body["token"], course.pk)).status_code == 200


def test_the_list_shows_the_callers_links_without_secrets(api, nurse_a, nurse_a2):
    mine = create(api, nurse_a)
    create(api, nurse_a2)
    listed = api.as_user(nurse_a).get(TOKENS).json()
    assert [t["id"] for t in listed] == [mine["id"]]
    assert set(listed[0]) == {"id", "created_at", "revoked_at"}


def test_a_course_the_caller_cannot_see_is_400_and_stores_nothing(api, nurse_b, patient_a, make_course):
    course = make_course(patient_a)
    before = (CalendarFeedToken.objects.count(), AuditEvent.objects.count())
    response = api.as_user(nurse_b).post(TOKENS, {"course": course.pk}, format="json")
    assert response.status_code == 400 and "course" in response.json()["errors"]
    assert (CalendarFeedToken.objects.count(), AuditEvent.objects.count()) == before


def test_anonymous_cannot_create_a_link(api):
    assert api.post(TOKENS, {}, format="json").status_code == 401
    assert not CalendarFeedToken.objects.exists()


# --- the course page's card (htmx) --------------------------------------------------------------------------------


def test_htmx_create_answers_a_fragment_with_the_link(client, nurse_a, patient_a, make_course):
    from tests.conftest import PASSWORD

    course = make_course(patient_a)
    assert client.post("/accounts/login/", {"username": "nurse_a", "password": PASSWORD}).status_code == 302
    response = client.post(TOKENS, {"course": course.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 201
    html = response.content.decode()
    row = CalendarFeedToken.objects.get(user=nurse_a)
    assert "/api/v1/calendar/" in html and f"/courses/{course.pk}.ics" in html
    assert 'hx-swap-oob="true"' in html and f"/api/v1/calendar-tokens/{row.pk}/revoke/" in html
    assert "<label" in html
    listed = client.get(TOKENS, HTTP_HX_REQUEST="true").content.decode()
    assert f"calendar-token-{row.pk}" in listed and "Revoke" in listed
    revoked = client.post(f"{TOKENS}{row.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert revoked.status_code == 200 and "Revoked" in revoked.content.decode()


def test_the_links_snippet_renders_for_a_course(rf, nurse_a, patient_a, make_course):
    from django.template.loader import render_to_string

    course = make_course(patient_a)
    request = rf.get(f"/courses/{course.pk}/")
    request.user = nurse_a
    html = render_to_string("scheduling/export/links.html", {"course": course}, request=request)
    assert f'href="/api/v1/courses/{course.pk}/fhir/"' in html
    assert f'href="/api/v1/courses/{course.pk}/calendar.ics"' in html
    assert 'hx-post="/api/v1/calendar-tokens/"' in html and 'name="csrfmiddlewaretoken"' in html


@pytest.mark.django_db
def test_course_page_links_to_the_fhir_bundle_and_the_calendar(client, oncologist, patient_a, make_course):
    course = make_course(patient_a)
    client.force_login(oncologist)
    html = client.get(f"/courses/{course.pk}/").content.decode()
    assert f"/api/v1/courses/{course.pk}/fhir/" in html
    assert f"/api/v1/courses/{course.pk}/calendar.ics" in html
