"""The bell (count, htmx polling that does not keep the session alive), the list with acknowledge, preferences, and the
assignments page (assigned nurse per patient, the ward's on-call oncologist)."""

import re
import time

import pytest

from il2ward.channels import wants
from il2ward.models import AuditEvent, Notification, Patient, StaffProfile, Ward
from il2ward.notifications import notify
from tests.conftest import NOW, make_staff

pytestmark = pytest.mark.django_db
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_X_IL2WARD_POLL": "1"}


def due(patient, users, dose_id):
    return notify(
        kind="dose_due",
        recipients=users,
        dedupe=f"dose_due:dose{dose_id}",
        now=NOW,
        patient=patient,
        dose_id=dose_id,
        course_id=1,
        details={"cycle": 1, "number": dose_id},
    )


def badge(html: str) -> int:
    return int(re.search(r'data-count="(\d+)"', html).group(1))


def test_every_page_has_the_bell_which_polls_with_the_poll_header(client, nurse_a):
    client.force_login(nurse_a)
    html = client.get("/notifications/").content.decode()
    bell = re.search(r'<a id="notification-bell".*?</a>', html, re.S).group(0)
    assert 'hx-get="/notifications/bell/"' in bell and '"X-IL2Ward-Poll": "1"' in bell


def test_the_bell_counts_unacknowledged_in_app_notifications(client, patient_a, nurse_a):
    client.force_login(nurse_a)
    due(patient_a, [nurse_a], 1)
    (second,) = due(patient_a, [nurse_a], 2)
    response = client.get("/notifications/bell/", **POLL)
    assert response.status_code == 200 and badge(response.content.decode()) == 2
    assert 'hx-trigger="every 30s"' in response.content.decode()
    Notification.objects.filter(pk=second.pk).update(acknowledged_at=NOW)
    assert badge(client.get("/notifications/bell/", **POLL).content.decode()) == 1
    # In-app switched off: the bell stays quiet for new ones.
    StaffProfile.objects.filter(user=nurse_a).update(channels={"in_app": {"on": False}})
    due(patient_a, [nurse_a], 3)
    assert badge(client.get("/notifications/bell/", **POLL).content.decode()) == 1


def test_polling_does_not_keep_the_session_alive(client, nurse_a, settings):
    client.force_login(nurse_a)
    client.get("/notifications/")  # a user action
    session = client.session
    session["il2ward_last_action"] = time.time() - 600
    session.save()
    client.get("/notifications/bell/", **POLL)
    assert abs(client.session["il2ward_last_action"] - (time.time() - 600)) < 5  # unchanged by the poll
    client.get("/notifications/")
    assert client.session["il2ward_last_action"] > time.time() - 5  # a real request counts
    session = client.session
    session["il2ward_last_action"] = time.time() - settings.SESSION_IDLE_SECONDS - 1
    session.save()
    response = client.get("/notifications/bell/", **POLL)
    assert response.status_code == 204 and response["HX-Redirect"] == "/accounts/login/"


def test_a_polling_bell_without_a_session_is_sent_to_the_login_page(client):
    response = client.get("/notifications/bell/", **POLL)
    assert response.status_code == 204 and response["HX-Redirect"] == "/accounts/login/"
    assert client.get("/notifications/").status_code == 302


def test_the_list_shows_name_and_links_and_acknowledges_with_htmx(client, patient_a, nurse_a, nurse_a2):
    (row,) = due(patient_a, [nurse_a], 7)
    client.force_login(nurse_a)
    html = client.get("/notifications/").content.decode()
    assert "Pat Alpha" in html and '/doses/7/"' in html and f'/patients/{patient_a.pk}/"' in html
    assert "Dose due" in html and "Acknowledge" in html
    assert re.search(r'id="id_notify_email"', html) and "<label" in html  # preferences, labelled
    response = client.post(f"/notifications/{row.pk}/acknowledge/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="notification-list"') and "<html" not in fragment
    assert 'data-unacknowledged="0"' in fragment
    row.refresh_from_db()
    assert row.acknowledged_by == nurse_a
    # Not hers: 404.
    client.force_login(nurse_a2)
    assert client.post(f"/notifications/{row.pk}/acknowledge/").status_code == 404


def test_preferences_are_saved(client, nurse_a):
    client.force_login(nurse_a)
    response = client.post(
        "/notifications/preferences/", {"on_duty": "on", "notify_in_app": "on", "notify_webhook": "on"}
    )
    assert response.status_code == 302
    profile = StaffProfile.objects.get(user=nurse_a)
    assert (profile.on_duty, wants(profile, "in_app"), wants(profile, "email"), wants(profile, "webhook")) == (
        True,
        True,
        False,
        True,
    )


def test_the_charge_nurse_sets_assignments_and_on_call_audited(
    client, ward_a, patient_a, nurse_a, nurse_a2, charge_nurse, oncologist
):
    client.force_login(charge_nurse)
    html = client.get(f"/wards/{ward_a.code}/assignments/").content.decode()
    assert re.search(rf'<label\s+for="id_nurse_{patient_a.pk}"', html) and re.search(r'<label\s+for="id_on_call', html)
    response = client.post(
        f"/wards/{ward_a.code}/assignments/",
        {f"nurse_{patient_a.pk}": nurse_a2.pk, "on_call_oncologist": oncologist.pk},
    )
    assert response.status_code == 302
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse == nurse_a2
    assert Ward.objects.get(pk=ward_a.pk).on_call_oncologist == oncologist
    assert {e.action for e in AuditEvent.objects.filter(actor=charge_nurse)} >= {"patient.assign_nurse", "ward.on_call"}


def test_a_nurse_sees_the_assignments_but_cannot_change_them(client, ward_a, patient_a, nurse_a, nurse_a2):
    client.force_login(nurse_a)
    html = client.get(f"/wards/{ward_a.code}/assignments/").content.decode()
    assert "disabled" in html and "Save assignments" not in html
    response = client.post(f"/wards/{ward_a.code}/assignments/", {f"nurse_{patient_a.pk}": nurse_a2.pk})
    assert response.status_code == 403
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse is None


def test_another_wards_assignments_are_not_found(client, ward_a, nurse_b):
    client.force_login(nurse_b)
    assert client.get(f"/wards/{ward_a.code}/assignments/").status_code == 404


def test_a_nurse_of_another_ward_cannot_be_assigned(client, ward_a, ward_b, patient_a, nurse_b, charge_nurse):
    client.force_login(charge_nurse)
    response = client.post(f"/wards/{ward_a.code}/assignments/", {f"nurse_{patient_a.pk}": nurse_b.pk})
    assert response.status_code == 200 and "is-invalid" in response.content.decode()
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse is None


@pytest.mark.parametrize("patients", [3, 30])
def test_the_assignments_page_query_count_is_flat(patients, client, ward_a, nurse_a, charge_nurse, oncologist):
    from il2ward.services import patient_create

    for i in range(patients):
        patient_create(mrn=f"AS-{i}", name=f"P {i}", birth_date=NOW.date(), ward=ward_a, by=oncologist, now=NOW)
    make_staff("onc2", "oncologist", [ward_a])
    client.force_login(charge_nurse)
    client.get(f"/wards/{ward_a.code}/assignments/")  # warm: session, roles
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/wards/{ward_a.code}/assignments/").status_code == 200
    assert len(captured) <= 12, [q["sql"] for q in captured]


def test_the_admin_edits_on_call_and_assignments_audited(admin_client, ward_a, patient_a, nurse_a, oncologist):
    response = admin_client.post(
        f"/admin/il2ward/ward/{ward_a.pk}/change/",
        {"code": ward_a.code, "name": ward_a.name, "tz": ward_a.tz, "on_call_oncologist": oncologist.pk,
         "webhook_url": "", "webhook_secret": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Ward.objects.get(pk=ward_a.pk).on_call_oncologist == oncologist
    html = admin_client.get("/admin/il2ward/patient/").content.decode()
    assert 'name="form-0-assigned_nurse"' in html  # editable in the list
    response = admin_client.post(
        f"/admin/il2ward/patient/{patient_a.pk}/change/",
        {"mrn": patient_a.mrn, "name": patient_a.name, "birth_date": "1970-05-01", "sex": patient_a.sex,
         "ward": ward_a.pk, "assigned_nurse": nurse_a.pk},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse == nurse_a
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"ward.on_call", "patient.assign_nurse"} <= actions


def test_acknowledge_all_clears_the_reminders_and_leaves_each_hold_to_be_acknowledged(client, patient_a, nurse_a):
    due(patient_a, [nurse_a], 1)
    due(patient_a, [nurse_a], 2)
    (hold,) = notify(
        kind="hold_flagged",
        recipients=[nurse_a],
        dedupe="hold_flagged:dose3:evaluation9",
        now=NOW,
        patient=patient_a,
        dose_id=3,
        course_id=1,
        details={"cycle": 1, "number": 3, "rules": ["CV-SBP"]},
    )
    client.force_login(nurse_a)
    assert 'id="acknowledge-reminders"' in client.get("/notifications/").content.decode()
    response = client.post("/notifications/acknowledge-reminders/")
    assert response.status_code == 302
    open_kinds = set(Notification.objects.filter(acknowledged_at__isnull=True).values_list("kind", flat=True))
    assert open_kinds == {"hold_flagged"}  # a hold ends its escalation for everyone: one by one, at the dose
    event = AuditEvent.objects.get(action="notification.acknowledge_all")
    assert len(event.new["acknowledged"]) == 2
    assert 'id="acknowledge-reminders"' not in client.get("/notifications/").content.decode()
    client.post(f"/notifications/{hold.pk}/acknowledge/")
    assert not Notification.objects.filter(acknowledged_at__isnull=True).exists()
