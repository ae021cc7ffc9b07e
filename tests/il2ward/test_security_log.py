"""The security log (SecurityEvent): sign-ins, failures, lock-outs, tokens issued, exports; no secrets in it; the
admin's identity edits of a patient audited with old and new values."""

import json
from datetime import date

import pytest
from axes.models import AccessAttempt
from django.test import Client

from il2ward import feeds
from il2ward.models import AuditEvent, Patient, SecurityEvent
from tests.conftest import NOW, PASSWORD, make_staff

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-at-all"


def kinds(**filters) -> list[str]:
    return list(SecurityEvent.objects.filter(**filters).order_by("pk").values_list("kind", flat=True))


def no_secrets_in_the_log(*secrets: str) -> None:
    text = json.dumps(list(SecurityEvent.objects.values()), default=str)
    for secret in secrets:
        assert secret not in text


def test_sign_in_failure_lockout_and_sign_out_are_logged(nurse_a):
    client = Client(REMOTE_ADDR="10.1.2.3")
    for _ in range(5):
        client.post("/accounts/login/", {"username": "nurse_a", "password": WRONG})
    assert sorted(kinds(username="nurse_a")) == ["lockout"] + ["login_failed"] * 5
    failed = SecurityEvent.objects.filter(kind="login_failed").first()
    assert (failed.ip, failed.path, failed.user) == ("10.1.2.3", "/accounts/login/", None)
    AccessAttempt.objects.all().delete()  # the admin's unlock
    assert client.post("/accounts/login/", {"username": "nurse_a", "password": PASSWORD}).status_code == 302
    client.post("/accounts/logout/")
    assert kinds(user=nurse_a) == ["login", "logout"]
    no_secrets_in_the_log(WRONG, PASSWORD)


def test_an_unknown_username_is_logged_as_typed(db):
    Client().post("/accounts/login/", {"username": "nobody", "password": WRONG})
    assert kinds(username="nobody") == ["login_failed"]


def test_token_issue_is_logged_without_the_token(api, nurse_a):
    response = api.post("/api/v1/auth/token/", {"username": "nurse_a", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert kinds(user=nurse_a) == ["token_issued"]
    no_secrets_in_the_log(response.json()["token"], PASSWORD)


def test_the_session_clock_starts_at_sign_in(nurse_a, settings):
    client = Client()
    client.post("/accounts/login/", {"username": "nurse_a", "password": PASSWORD})
    session = client.session
    assert session["il2ward_started"] == session["il2ward_last_action"]
    assert SecurityEvent.objects.get(kind="login").at.timestamp() == pytest.approx(session["il2ward_started"], abs=2)


def test_exports_are_logged_with_what_was_exported(api, client, nurse_a, oncologist, patient_a, make_course):
    course = make_course(patient_a)
    assert api.as_user(nurse_a).get(f"/api/v1/courses/{course.pk}/fhir/").status_code == 200
    client.force_login(nurse_a)
    assert client.get(f"/wards/{patient_a.ward.code}/downtime/").status_code == 200
    _, secret = feeds.calendar_token_create(user=nurse_a, now=NOW)
    assert Client().get(f"/api/v1/calendar/{secret}/courses/{course.pk}.ics").status_code == 200
    exports = SecurityEvent.objects.filter(kind="export", user=nurse_a).order_by("pk")
    assert [e.detail for e in exports] == [
        {"format": "fhir", "course": course.pk},
        {"format": "downtime_sheet", "ward": "onc-a", "doses": exports[1].detail["doses"]},
        {"format": "ics", "course": course.pk, "via": "feed"},
    ]
    no_secrets_in_the_log(secret, patient_a.name, patient_a.mrn)
    assert exports[2].path == "/api/v1/calendar/<str:token>/courses/<int:pk>.ics"  # the route: never the secret


def test_the_admin_shows_the_security_log_read_only(admin_client, nurse_a):
    Client().post("/accounts/login/", {"username": "nurse_a", "password": WRONG})
    listing = admin_client.get("/admin/il2ward/securityevent/?kind=login_failed")
    assert listing.status_code == 200 and "nurse_a" in listing.content.decode()
    assert admin_client.get("/admin/il2ward/securityevent/add/").status_code == 403
    event = SecurityEvent.objects.get(kind="login_failed")
    response = admin_client.post(f"/admin/il2ward/securityevent/{event.pk}/change/", {"username": "x"})
    assert response.status_code == 403
    assert SecurityEvent.objects.get(pk=event.pk).username == "nurse_a"


# --- the admin's identity edits of a patient -----------------------------------------------------------------------


def test_an_admin_edit_of_mrn_name_birth_date_sex_and_ward_is_audited_with_old_and_new(admin_client, patient_a, ward_b):
    response = admin_client.post(
        f"/admin/il2ward/patient/{patient_a.pk}/change/",
        {"mrn": "A-0002", "name": "Pat Renamed", "birth_date": "1971-06-02", "sex": "female", "ward": ward_b.pk,
         "assigned_nurse": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    patient = Patient.objects.get(pk=patient_a.pk)
    assert (patient.mrn, patient.name, patient.birth_date, patient.ward) == (
        "A-0002",
        "Pat Renamed",
        date(1971, 6, 2),
        ward_b,
    )
    event = AuditEvent.objects.get(action="patient.update", object_id=str(patient_a.pk))
    assert event.old == {"mrn": "A-0001", "name": "Pat Alpha", "birth_date": "1970-05-01", "sex": "unknown",
                         "ward": "onc-a"}  # fmt: skip
    assert event.new == {"mrn": "A-0002", "name": "Pat Renamed", "birth_date": "1971-06-02", "sex": "female",
                         "ward": "onc-b"}  # fmt: skip
    assert event.actor.username == "admin"


def test_an_admin_save_without_a_change_writes_no_audit_row(admin_client, patient_a, ward_a):
    before = AuditEvent.objects.count()
    response = admin_client.post(
        f"/admin/il2ward/patient/{patient_a.pk}/change/",
        {"mrn": patient_a.mrn, "name": patient_a.name, "birth_date": "1970-05-01", "sex": patient_a.sex,
         "ward": ward_a.pk, "assigned_nurse": ""},
    )  # fmt: skip
    assert response.status_code == 302
    assert AuditEvent.objects.count() == before


def test_a_patient_added_in_the_admin_is_audited(admin_client, ward_a):
    response = admin_client.post(
        "/admin/il2ward/patient/add/",
        {"mrn": "A-9", "name": "Pat New", "birth_date": "1980-01-01", "sex": "male", "ward": ward_a.pk,
         "assigned_nurse": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    patient = Patient.objects.get(mrn="A-9")
    assert AuditEvent.objects.get(action="patient.create", object_id=str(patient.pk)).new["name"] == "Pat New"


def test_a_duplicate_mrn_in_the_admin_is_a_form_error_with_nothing_changed(admin_client, patient_a, patient_b):
    before = AuditEvent.objects.count()
    response = admin_client.post(
        f"/admin/il2ward/patient/{patient_a.pk}/change/",
        {"mrn": patient_b.mrn, "name": patient_a.name, "birth_date": "1970-05-01", "sex": patient_a.sex,
         "ward": patient_a.ward.pk, "assigned_nurse": ""},
    )  # fmt: skip
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Patient.objects.get(pk=patient_a.pk).mrn == "A-0001" and AuditEvent.objects.count() == before


def test_a_second_admin_may_change_a_patient_too(ward_a, patient_a, client):
    admin2 = make_staff("admin2", "admin")
    admin2.is_staff = admin2.is_superuser = True
    admin2.save()
    client.force_login(admin2)
    client.post(
        f"/admin/il2ward/patient/{patient_a.pk}/change/",
        {"mrn": patient_a.mrn, "name": "Pat Alpha-Smith", "birth_date": "1970-05-01", "sex": patient_a.sex,
         "ward": ward_a.pk, "assigned_nurse": ""},
    )  # fmt: skip
    assert AuditEvent.objects.get(action="patient.update").actor == admin2
