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
