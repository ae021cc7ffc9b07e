"""GET /api/v1/courses/{id}/calendar.ics and the secret subscription feed (API.md, Export): RFC 5545, parsed with
the `icalendar` library; no patient name; stable UIDs; SEQUENCE / LAST-MODIFIED move with the slot's status."""

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from scheduling.export import ics
from scheduling.export.records import calendar_slots
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def calendar(api, user, course_id, **headers):
    response = api.as_user(user).get(f"/api/v1/courses/{course_id}/calendar.ics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return response


def events(body: bytes) -> dict[str, object]:
    return {str(e["uid"]): e for e in Calendar.from_ical(body).walk("VEVENT")}


def test_the_demo_course_calendar_parses_with_one_event_per_slot(api, demo):
    body = calendar(api, demo.users["onc"], demo.maria.pk).content
    parsed = Calendar.from_ical(body)
    assert str(parsed["version"]) == "2.0" and "IL2Ward" in str(parsed["prodid"])
    found = events(body)
    doses = list(demo.maria.doses.order_by("cycle", "number"))
    assert len(doses) == 28
    assert set(found) == {f"dose-{d.pk}@il2ward" for d in doses}
    for dose in doses:
        event = found[f"dose-{dose.pk}@il2ward"]
        assert event.decoded("dtstart") == dose.due_at
        assert f"cycle {dose.cycle} dose {dose.number}" in str(event["summary"])
    held = found[f"dose-{demo.maria.doses.get(cycle=1, number=4).pk}@il2ward"]
    assert str(held["summary"]) == "IL-2 ML · cycle 1 dose 4 · held"
    given = found[f"dose-{demo.maria.doses.get(cycle=1, number=1).pk}@il2ward"]
    assert str(given["summary"]).endswith("· given")
    due = found[f"dose-{demo.maria.doses.get(cycle=1, number=8).pk}@il2ward"]
    assert str(due["summary"]).endswith("· due") and int(due["sequence"]) == 0


def test_the_calendar_names_no_patient(api, demo):
    body = calendar(api, demo.users["onc"], demo.maria.pk).content.decode()
    for leak in ("Maria", "Lopez", "DEMO-001", "1968"):
        assert leak not in body
    assert "IL-2 ML" in body  # initials at most


def test_a_status_change_moves_sequence_and_last_modified_and_keeps_the_uid(api, demo):
    from scheduling import services as sched

    dose = demo.maria.doses.get(cycle=1, number=8)
    uid = f"dose-{dose.pk}@il2ward"
    before = events(calendar(api, demo.users["onc"], demo.maria.pk).content)[uid]
    sched.dose_hold(dose_id=dose.pk, reason="patient_off_ward", by=demo.users["nurse"], now=NOW + timedelta(minutes=5))
    after = events(calendar(api, demo.users["onc"], demo.maria.pk).content)[uid]
    assert int(after["sequence"]) > int(before["sequence"])
    assert after.decoded("last-modified") == NOW + timedelta(minutes=5) > before.decoded("last-modified")
    assert str(after["summary"]).endswith("· held")
    assert after.decoded("dtstart") == before.decoded("dtstart")


def test_an_unchanged_course_gives_the_same_bytes(api, demo):
    first = calendar(api, demo.users["onc"], demo.maria.pk).content
    assert calendar(api, demo.users["nurse"], demo.maria.pk).content == first


def test_cancelled_slots_are_cancelled_events(api, demo):
    from scheduling import services as sched

    sched.course_stop(course_id=demo.maria.pk, reason="toxicity", password=demo.password, by=demo.users["onc"], now=NOW)
    found = events(calendar(api, demo.users["onc"], demo.maria.pk).content)
    statuses = [str(e["status"]) for e in found.values()]
    assert statuses.count("CANCELLED") == 21  # doses 8–14 and cycle 2
    assert statuses.count("CONFIRMED") == 7


def test_a_calendar_accept_header_is_honoured(api, demo):
    calendar(api, demo.users["onc"], demo.maria.pk, HTTP_ACCEPT="text/calendar")


def test_another_wards_nurse_gets_404(api, nurse_b, patient_a, make_course):
    course = make_course(patient_a)
    assert api.as_user(nurse_b).get(f"/api/v1/courses/{course.pk}/calendar.ics").status_code == 404


def test_a_bad_id_is_404_and_anonymous_is_401(api, oncologist, patient_a, make_course):
    course = make_course(patient_a)
    assert api.as_user(oncologist).get("/api/v1/courses/987654/calendar.ics").status_code == 404
    api.credentials()  # drop the token: anonymous
    assert api.get(f"/api/v1/courses/{course.pk}/calendar.ics").status_code == 401


@pytest.mark.parametrize("patient", ["Wei Chen", "Maria Lopez"])
def test_the_slots_are_one_query(demo, patient, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert len(calendar_slots(demo.courses[patient])) == 28


# --- the pure parts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Maria Lopez", "ML"), ("Jean-Luc de la Tour", "JT"), ("Cher", "C"), ("  ", ""), ("o'Brien ann", "OA")],
)
def test_initials(name, expected):
    assert ics.initials(name) == expected


def test_sequence_grows_with_each_later_change():
    written = datetime(2027, 3, 1, tzinfo=UTC)

    def slot(changed):
        return ics.Slot(1, 1, 1, written + timedelta(days=1), "held", changed)

    assert ics.sequence(slot(None), written_at=written) == 0
    values = [ics.sequence(slot(written + timedelta(seconds=s)), written_at=written) for s in (0, 1, 2, 3600, 86400)]
    assert values == sorted(values) and len(set(values[1:])) == 4 and values[0] >= 1


def test_a_conditional_get_with_the_etag_is_a_304_until_a_slot_changes(api, demo):
    from django.utils.http import parse_http_date

    from scheduling import services as sched

    url = f"/api/v1/courses/{demo.maria.pk}/calendar.ics"
    first = calendar(api, demo.users["onc"], demo.maria.pk)
    etag, modified = first["ETag"], first["Last-Modified"]
    assert etag.startswith('"') and parse_http_date(modified) <= NOW.timestamp() + 1
    again = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert api.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200  # the nearest allowed case
    # Last-Modified alone is information, never a 304 (a moved cycle 2 changes no status).
    assert api.get(url, HTTP_IF_MODIFIED_SINCE=modified).status_code == 200
    dose = demo.maria.doses.get(cycle=1, number=8)
    sched.dose_hold(dose_id=dose.pk, reason="patient_off_ward", by=demo.users["nurse"], now=NOW + timedelta(minutes=5))
    changed = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert parse_http_date(changed["Last-Modified"]) == int((NOW + timedelta(minutes=5)).timestamp())


def test_a_calendar_error_is_json_even_when_text_calendar_was_asked_for(api, oncologist, patient_a, make_course):
    response = api.as_user(oncologist).get("/api/v1/courses/987654/calendar.ics", HTTP_ACCEPT="text/calendar")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json() == {"detail": "Not found."}
    feed = api.get("/api/v1/calendar/no-such-token/courses/1.ics", HTTP_ACCEPT="text/calendar")
    assert feed.status_code == 404 and feed["Content-Type"] == "application/json"
