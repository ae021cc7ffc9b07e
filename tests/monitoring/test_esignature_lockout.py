"""A wrong e-signature password (here: marking an observation entered-in-error) counts towards the signer's
lock-out and is logged, although the service that checked it rolled back."""

import pytest
from axes.models import AccessAttempt

from il2ward.models import SecurityEvent
from tests.conftest import PASSWORD
from tests.monitoring.conftest import record

pytestmark = pytest.mark.django_db

WRONG = "not-my-password-at-all"


def _error(client, row, password):
    url = f"/api/v1/observations/vitals/{row.pk}/entered-in-error/"
    return client.post(url, {"reason": "wrong patient", "password": password}, format="json").status_code


def test_five_wrong_signature_passwords_lock_the_signer(api, nurse_a, nurse_a2, patient_a, frozen):
    row = record("vitals", patient_a, nurse_a)
    client = api.as_user(nurse_a)
    assert [_error(client, row, WRONG) for _ in range(5)] == [400, 400, 400, 400, 429]
    assert AccessAttempt.objects.get(username="nurse_a").failures_since_start == 5
    assert _error(client, row, PASSWORD) == 429  # locked: even her right password (and it extends the lock)
    row.refresh_from_db()
    assert row.entered_in_error_at is None
    events = SecurityEvent.objects.filter(kind="password_recheck_failed", username="nurse_a")
    assert {e.detail["purpose"] for e in events} == {"e-signature"} and events.count() == 6  # 5 wrong, 1 locked
    assert _error(api.as_user(nurse_a2), record("vitals", patient_a, nurse_a2), PASSWORD) == 200  # she is not locked


def test_four_wrong_signature_passwords_then_the_right_one_signs(api, nurse_a, patient_a, frozen):
    row = record("vitals", patient_a, nurse_a)
    client = api.as_user(nurse_a)
    assert [_error(client, row, WRONG) for _ in range(4)] == [400] * 4
    assert _error(client, row, PASSWORD) == 200
