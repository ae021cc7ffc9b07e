"""The admin changes wards through the services: the same validation and one audit shape as everywhere else."""

import pytest

from il2ward.models import AuditEvent, Ward
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def change_ward(client, ward, **fields):
    data = {"name": ward.name, "tz": ward.tz, "on_call_oncologist": ward.on_call_oncologist_id or "",
            "webhook_url": ward.webhook_url, "webhook_secret": ward.webhook_secret, **fields}  # fmt: skip
    return client.post(f"/admin/il2ward/ward/{ward.pk}/change/", data, follow=True)


@pytest.fixture
def admin_user(ward_a):
    return make_staff("site_admin", "admin")


def test_on_call_set_in_the_admin_is_audited_like_the_assignments_page(client, admin_user, ward_a, oncologist):
    client.force_login(admin_user)
    assert change_ward(client, ward_a, on_call_oncologist=oncologist.pk).status_code == 200
    ward_a.refresh_from_db()
    assert ward_a.on_call_oncologist == oncologist
    event = AuditEvent.objects.get(action="ward.on_call")
    assert (event.old, event.new, event.actor) == ({"oncologist": None}, {"oncologist": oncologist.pk}, admin_user)


def test_a_nurse_is_refused_as_on_call_oncologist_and_nothing_changes(client, admin_user, ward_a, nurse_a):
    client.force_login(admin_user)
    change_ward(client, ward_a, on_call_oncologist=nurse_a.pk)
    ward_a.refresh_from_db()
    assert ward_a.on_call_oncologist is None
    assert not AuditEvent.objects.filter(action="ward.on_call").exists()


def test_a_rename_is_audited_with_old_and_new_and_the_code_cannot_change(client, admin_user, ward_a):
    client.force_login(admin_user)
    code = ward_a.code
    change_ward(client, ward_a, name="Oncology 4 East", code="other")
    ward_a.refresh_from_db()
    assert (ward_a.code, ward_a.name) == (code, "Oncology 4 East")
    event = AuditEvent.objects.get(action="ward.update")
    assert event.old["name"] != "Oncology 4 East" and event.new["name"] == "Oncology 4 East"
    assert Ward.objects.filter(code="other").count() == 0


def test_a_webhook_secret_never_reaches_the_audit_trail(client, admin_user, ward_a):
    client.force_login(admin_user)
    change_ward(client, ward_a, webhook_url="https://pager.example.org/hook", webhook_secret="k3y-value")
    ward_a.refresh_from_db()
    assert (ward_a.webhook_url, ward_a.webhook_secret) == ("https://pager.example.org/hook", "k3y-value")
    event = AuditEvent.objects.get(action="ward.webhook")
    assert event.new == {"webhook_url": "https://pager.example.org/hook", "webhook_secret": "set"}
    assert not [row for row in AuditEvent.objects.all() if "k3y-value" in f"{row.old}{row.new}{row.reason}"]
    # Unsigned is refused by the form: nothing changes, nothing is audited.
    change_ward(client, ward_a, webhook_url="https://pager.example.org/other", webhook_secret="")
    ward_a.refresh_from_db()
    assert ward_a.webhook_url == "https://pager.example.org/hook"
    assert AuditEvent.objects.filter(action="ward.webhook").count() == 1


def test_wards_given_in_the_admin_are_audited_by_code(client, admin_user, nurse_a, ward_a, ward_b):
    client.force_login(admin_user)
    profile = nurse_a.profile
    data = {"user": nurse_a.pk, "printed_name": profile.printed_name, "wards": [ward_a.pk, ward_b.pk], "on_duty": "on"}
    for field in ("notify_in_app", "notify_email", "notify_webhook"):  # the preferences still on the form, if any
        if getattr(profile, field, False):
            data[field] = "on"
    assert client.post(f"/admin/il2ward/staffprofile/{profile.pk}/change/", data).status_code == 302
    assert sorted(profile.wards.values_list("code", flat=True)) == sorted([ward_a.code, ward_b.code])
    event = AuditEvent.objects.get(action="staff.update", object_id=str(nurse_a.pk))
    assert (event.old, event.new) == ({"wards": [ward_a.code]}, {"wards": sorted([ward_a.code, ward_b.code])})
    # Saved again unchanged: no second row.
    client.post(f"/admin/il2ward/staffprofile/{profile.pk}/change/", data)
    assert AuditEvent.objects.filter(action="staff.update", object_id=str(nurse_a.pk)).count() == 1
