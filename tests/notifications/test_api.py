"""API.md, Notifications: GET /api/v1/notifications/ (the caller's) and POST /api/v1/notifications/{id}/acknowledge/
(only the recipient; acknowledging a hold acknowledges it for every recipient and stops its escalation)."""

from datetime import timedelta

import pytest
import time_machine

from il2ward.models import AuditEvent, Delivery, Notification
from il2ward.notifications import notify
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def hold(patient, users, *, dose_id=41, now=NOW):
    return notify(
        kind="hold_flagged",
        recipients=users,
        dedupe=f"hold_flagged:dose{dose_id}",
        now=now,
        patient=patient,
        course_id=9,
        dose_id=dose_id,
        details={"rules": ["CV-SBP"], "cycle": 1, "number": 5},
    )


def test_the_list_is_the_callers_own_newest_first_in_the_contracts_shape(api, patient_a, nurse_a, oncologist):
    hold(patient_a, [nurse_a, oncologist])
    notify(kind="dose_due", recipients=[nurse_a], dedupe="dose_due:dose42", now=NOW + timedelta(minutes=1),
           patient=patient_a, dose_id=42, course_id=9, details={"cycle": 1, "number": 6})  # fmt: skip
    body = api.as_user(nurse_a).get("/api/v1/notifications/").json()
    assert [row["kind"] for row in body] == ["dose_due", "hold_flagged"]
    assert body[1] == {
        "id": Notification.objects.get(kind="hold_flagged", recipient=nurse_a).pk,
        "kind": "hold_flagged",
        "patient": patient_a.pk,
        "dose": 41,
        "course": 9,
        "details": {"rules": ["CV-SBP"], "cycle": 1, "number": 5},
        "due_at": None,
        "due_at_local": None,
        "created_at": "2027-03-10T12:00:00Z",
        "created_at_local": "2027-03-10T06:00:00-06:00",  # Chicago, CST
        "acknowledged_at": None,
        "acknowledged_at_local": None,
        "time_zone": "America/Chicago",
    }
    assert len(api.as_user(oncologist).get("/api/v1/notifications/").json()) == 1


def test_anonymous_is_401_and_a_bad_filter_is_400_naming_it(api, nurse_a):
    assert api.get("/api/v1/notifications/").status_code == 401
    response = api.as_user(nurse_a).get("/api/v1/notifications/?limit=0")
    assert response.status_code == 400 and "limit" in response.json()["errors"]
    response = api.as_user(nurse_a).get("/api/v1/notifications/?unacknowledged=maybe")
    assert response.status_code == 400 and "unacknowledged" in response.json()["errors"]


def test_only_the_recipient_acknowledges_someone_elses_is_404(api, patient_a, nurse_a, nurse_a2, webhook):
    (mine,) = hold(patient_a, [nurse_a])
    response = api.as_user(nurse_a2).post(f"/api/v1/notifications/{mine.pk}/acknowledge/")
    assert response.status_code == 404
    mine.refresh_from_db()
    assert mine.acknowledged_at is None
    assert api.post("/api/v1/notifications/999999/acknowledge/").status_code == 404


def test_acknowledging_a_hold_acknowledges_it_for_every_recipient_and_cancels_their_pages(
    api, patient_a, nurse_a, nurse_a2, oncologist, webhook
):
    rows = {n.recipient.username: n for n in hold(patient_a, [nurse_a, nurse_a2, oncologist])}
    (other,) = hold(patient_a, [nurse_a], dose_id=99)  # another dose: untouched
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        response = api.as_user(nurse_a2).post(f"/api/v1/notifications/{rows['nurse_a2'].pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["acknowledged_at"] == "2027-03-10T12:05:00Z"
    acked = dict(
        Notification.objects.filter(dose_id=41).values_list("recipient__username", "acknowledged_by__username")
    )
    assert acked == {"nurse_a": "nurse_a2", "nurse_a2": "nurse_a2", "onc": "nurse_a2"}
    other.refresh_from_db()
    assert other.acknowledged_at is None
    assert set(
        Delivery.objects.filter(notification__dose_id=41, channel="webhook").values_list("status", flat=True)
    ) == {"cancelled"}
    event = AuditEvent.objects.get(action="notification.acknowledge")
    assert event.actor == nurse_a2 and sorted(event.new["acknowledged"]) == sorted(r.pk for r in rows.values())
    # Again: harmless, the first time stays.
    with time_machine.travel(NOW + timedelta(minutes=9), tick=False):
        again = api.as_user(nurse_a).post(f"/api/v1/notifications/{rows['nurse_a'].pk}/acknowledge/")
    assert again.status_code == 200 and again.json()["acknowledged_at"] == "2027-03-10T12:05:00Z"
    assert AuditEvent.objects.filter(action="notification.acknowledge").count() == 1


def test_unacknowledged_filter(api, patient_a, nurse_a):
    (first,) = hold(patient_a, [nurse_a])
    hold(patient_a, [nurse_a], dose_id=50)
    api.as_user(nurse_a).post(f"/api/v1/notifications/{first.pk}/acknowledge/")
    body = api.as_user(nurse_a).get("/api/v1/notifications/?unacknowledged=true").json()
    assert [row["dose"] for row in body] == [50]


def test_the_schema_documents_the_notification_endpoints(admin_client):
    schema = admin_client.get("/api/schema/").content.decode()
    for path in ("/api/v1/notifications/:", "/api/v1/notifications/{id}/acknowledge/:"):
        assert path in schema, path
