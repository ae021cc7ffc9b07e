"""The blind double check made coherent (ISMP independent double check): a nurse or charge nurse, any of whom may be
a dose's second checker, sees the order (weight, IU/kg, SCH-PREP's rules) and never the computed dose of a dose not
yet given — on the patient, course, summary and downtime pages, the board and the API — except the nurse charting
it on its dose page. A given dose's recorded amount stays visible to everyone (the history); oncologists,
pharmacists and administrators see everything (scheduling.selectors.double_checks.sees_computed_dose)."""

import pytest
from django.test import Client

from tests.scheduling.doses.conftest import chart, first_dose
from tests.scheduling.doses.test_double_check import accept, ask

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
DOSE = "48,000,000"  # 80 kg × 600,000 IU/kg (SCH-DOSE), as the pages print it
DOSE_IU = 48_000_000
ORDER = "600,000 IU/kg</strong> × 80.0 kg"
PREPARATION = "Volume to draw"  # the dose page's preparation card (its volume and vials are the computed dose)


@pytest.fixture
def charted(ready, patient_a, nurse_a, nurse_a2):
    course = ready()
    chart(patient_a, nurse_a)
    return course


def page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, (user, url, response.status_code)
    return response.content.decode()


def course_pages(course) -> list[str]:
    return [
        f"/patients/{course.patient_id}/",
        f"/courses/{course.pk}/",
        f"/courses/{course.pk}/summary/",
        "/wards/onc-a/downtime/",
        "/wards/onc-a/",
    ]


def test_a_nurse_and_a_charge_nurse_see_the_order_never_the_computed_dose(charted, nurse_a2, charge_nurse):
    for user in (nurse_a2, charge_nurse):
        for url in course_pages(charted):
            html = page(user, url)
            assert DOSE not in html, (user, url)
        for url in course_pages(charted)[:4]:  # the board row names no dose at all
            assert "600,000 IU/kg" in page(user, url), (user, url)


def test_an_oncologist_and_a_pharmacist_see_the_computed_dose(charted, oncologist, pharmacist):
    for user in (oncologist, pharmacist):
        for url in course_pages(charted)[:4]:
            assert f"{DOSE} IU" in page(user, url), (user, url)


def test_the_nurse_charting_the_dose_sees_it_on_its_dose_page_and_the_second_nurse_does_not(
    api, charted, nurse_a, nurse_a2
):
    dose = first_dose(charted)
    url = f"/doses/{dose.pk}/"
    charting = page(nurse_a, url)
    assert f"{DOSE} IU" in charting and PREPARATION in charting  # the first nurse, charting it
    ask(api, nurse_a, dose)
    checker = page(nurse_a2, url)
    assert DOSE not in checker and PREPARATION not in checker and "600,000 IU/kg" in checker
    assert f"{DOSE} IU" in page(nurse_a, url)  # her own pending check: still her figures


def test_a_given_doses_recorded_amount_stays_visible_but_not_the_next_doses_preparation(
    api, charted, nurse_a, nurse_a2, oncologist
):
    dose = first_dose(charted)
    assert accept(api, nurse_a2, ask(api, nurse_a, dose).json()["id"]).status_code == 201
    for user in (nurse_a, nurse_a2):
        html = page(user, f"/doses/{dose.pk}/")
        assert f"· {DOSE} IU ·" in html  # the history: what was given
        assert PREPARATION not in html  # the slot is closed: nothing left to prepare from this page
    assert PREPARATION in page(oncologist, f"/doses/{dose.pk}/")
    doses = api.as_user(nurse_a2).get(f"/api/v1/courses/{charted.pk}/doses/").json()
    given = [d for d in doses if d["id"] == dose.pk][0]
    assert given["administration"]["dose_iu"] == DOSE_IU


def test_the_course_api_gives_a_nurse_the_order_and_an_oncologist_the_dose(
    api, charted, nurse_a2, charge_nurse, oncologist, pharmacist
):
    order = {
        "dosing_weight_kg": "80.0",
        "dosing_weight_source": "actual",
        "iu_per_kg": 600_000,
        "vial_iu": 22_000_000,
        "reconstitution_ml": "1.2",
        "concentration_iu_per_ml": 18_000_000,
    }
    for user in (nurse_a2, charge_nurse):
        response = api.as_user(user).get(f"/api/v1/courses/{charted.pk}/")
        body = response.json()
        assert (body["dose_iu"], body["preparation"], body["order"]) == (None, None, order)
        assert str(DOSE_IU) not in response.content.decode()
    for user in (oncologist, pharmacist):
        body = api.as_user(user).get(f"/api/v1/courses/{charted.pk}/").json()
        assert body["dose_iu"] == DOSE_IU and body["preparation"]["vials"] == 3 and body["order"] == order
