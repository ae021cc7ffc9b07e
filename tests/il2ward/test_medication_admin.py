"""The medication list behind the eligibility interaction warnings is kept in the admin, audited, never deleted."""

import pytest

from il2ward.models import AuditEvent, Medication
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def test_admin_adds_a_medication_with_an_audit_row_and_cannot_delete_it(client, patient_a):
    admin_user = make_staff("site_admin", "admin")
    client.force_login(admin_user)
    response = client.post(
        "/admin/il2ward/medication/add/", {"patient": patient_a.pk, "name": "Methotrexate", "active": "on"}
    )
    assert response.status_code == 302
    medication = Medication.objects.get()
    assert (medication.name, medication.recorded_by) == ("Methotrexate", admin_user)
    event = AuditEvent.objects.get(action="medication.create")
    assert event.new == {"patient": patient_a.pk, "name": "Methotrexate", "active": True}
    assert client.post(f"/admin/il2ward/medication/{medication.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Medication.objects.count() == 1


def test_an_admin_edit_goes_through_the_service_with_old_and_new_values(client, patient_a):
    admin_user = make_staff("site_admin", "admin")
    client.force_login(admin_user)
    client.post("/admin/il2ward/medication/add/", {"patient": patient_a.pk, "name": "Methotrexate", "active": "on"})
    medication = Medication.objects.get()
    # Made inactive (not deleted): the old value is in the audit row beside the new one.
    response = client.post(f"/admin/il2ward/medication/{medication.pk}/change/", {"patient": patient_a.pk,
                           "name": "Methotrexate"})  # fmt: skip
    assert response.status_code == 302
    medication.refresh_from_db()
    assert medication.active is False
    event = AuditEvent.objects.get(action="medication.update")
    assert (event.old, event.new) == ({"active": True}, {"patient": patient_a.pk, "active": False})
    # Saving again with nothing changed writes no audit row.
    client.post(f"/admin/il2ward/medication/{medication.pk}/change/", {"patient": patient_a.pk, "name": "Methotrexate"})
    assert AuditEvent.objects.filter(action="medication.update").count() == 1


def test_a_blank_medication_name_is_refused_and_nothing_stored(client, patient_a):
    client.force_login(make_staff("site_admin", "admin"))
    response = client.post("/admin/il2ward/medication/add/", {"patient": patient_a.pk, "name": "  ", "active": "on"})
    assert response.status_code == 200  # the form again, with its error
    assert not Medication.objects.exists() and not AuditEvent.objects.filter(action="medication.create").exists()
