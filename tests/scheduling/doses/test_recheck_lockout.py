"""Wrong second-nurse passwords count towards her lock-out and are logged, although the service that found them
rolled back (il2ward.security writes them once the view has returned)."""

import pytest
from axes.models import AccessAttempt

from il2ward.models import SecurityEvent
from scheduling.models import Administration
from tests.scheduling.doses.conftest import chart, first_dose
from tests.scheduling.doses.test_administer_api import body, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

WRONG = "not-her-password-at-all"


@pytest.fixture
def charted(ready, patient_a, nurse_a, nurse_a2):
    course = ready()
    chart(patient_a, nurse_a)
    return course


def test_five_wrong_second_nurse_passwords_lock_her_and_are_logged(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    client = api.as_user(nurse_a)
    codes = [client.post(url(dose), body(verifier_password=WRONG), format="json").status_code for _ in range(5)]
    assert codes == [400, 400, 400, 400, 429]  # the fifth failure locks her username
    assert AccessAttempt.objects.get(username="nurse_a2").failures_since_start == 5
    locked = client.post(url(dose), body(), format="json")  # now even her right password is refused
    assert locked.status_code == 429 and not Administration.objects.exists()
    events = SecurityEvent.objects.filter(kind="password_recheck_failed", username="nurse_a2")
    assert events.count() == 6 and {e.detail["purpose"] for e in events} == {"second-nurse"}  # 5 wrong, 1 locked
    assert SecurityEvent.objects.filter(kind="lockout", username="nurse_a2").count() == 2  # the lock, the locked try
    assert not AccessAttempt.objects.filter(username="nurse_a").exists()  # the first nurse is not locked


def test_four_wrong_second_nurse_passwords_then_the_right_one_charts(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    client = api.as_user(nurse_a)
    for _ in range(4):
        assert client.post(url(dose), body(verifier_password=WRONG), format="json").status_code == 400
    response = client.post(url(dose), body(), format="json")
    assert response.status_code == 201, response.content
    assert Administration.objects.get().verified_by == nurse_a2
