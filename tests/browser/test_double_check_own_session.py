"""The blind double check from the second nurse's own session, in Chromium with two browser contexts (two devices,
two sign-ins): nurse A charts the give and asks for the check; nurse B sees it on her board, opens it on her own
device, sees the order (weight, IU/kg, vial) and never the computed dose, types the dose she calculated and accepts;
nurse A's page then shows the dose given, checked by nurse B. Screenshots go to test-artifacts/.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduling.models import Administration, DoubleCheck
from tests.browser.conftest import ARTIFACTS, axe_violations, log_in
from tests.scheduling.mar.conftest import ready_course, record_assessment

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_nurse_b_accepts_nurse_a_s_give_from_her_own_session(
    browser, live_server, transactional_db, ward_a, patient_a, oncologist, nurse_a, nurse_a2, make_course
):
    now = timezone.now()
    course = ready_course(
        patient_a, oncologist=oncologist, nurse=nurse_a, make_course=make_course,
        first_dose_at=now + timedelta(minutes=20), now=now,
    )  # fmt: skip
    record_assessment(patient_a, nurse=nurse_a, now=now)
    dose = course.doses.get(cycle=1, number=1)
    dose_text = f"{course.dose_iu:,}"  # 48,000,000 for 80 kg
    first = browser.new_context(viewport={"width": 1366, "height": 900})
    second = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True, is_mobile=True)
    page_a, page_b = first.new_page(), second.new_page()
    try:
        log_in(page_a, live_server.url, "nurse_a")
        page_a.goto(f"{live_server.url}/doses/{dose.pk}/")
        page_a.wait_for_selector("#decision:text('GIVE')")
        page_a.get_by_label("Vial lot number").fill("AL-7731")
        reconstituted = (timezone.now() - timedelta(minutes=25)).astimezone(ward_a.zone).strftime("%Y-%m-%d %H:%M")
        page_a.get_by_label("Reconstituted at (ward time)").fill(reconstituted)
        page_a.get_by_role("button", name="Ask the second nurse to check it from her own session").click()
        page_a.wait_for_selector("#check-waiting")
        assert "waiting for a second nurse" in page_a.content().lower()
        assert not Administration.objects.exists() and DoubleCheck.objects.get().status == "pending"
        page_a.screenshot(path=str(ARTIFACTS / "double-check-waiting.png"), full_page=True)

        # Nurse B, on her own tablet: the board lists the check waiting for her.
        log_in(page_b, live_server.url, "nurse_a2")
        page_b.wait_for_url(re.compile(r"/wards/onc-a/$"))
        waiting = page_b.locator("#checks-waiting")
        assert "Pat Alpha" in waiting.inner_text() and "Alice Nurse RN" in waiting.inner_text()
        waiting.get_by_role("link").first.click()
        page_b.wait_for_url(re.compile(rf"/doses/{dose.pk}/"))
        check = page_b.locator("#double-check")
        assert "80.0 kg" in check.inner_text() and "600,000 IU/kg" in check.inner_text()
        # Blind: the computed dose is nowhere on her page (no preparation figures either).
        assert dose_text not in page_b.content() and str(course.dose_iu) not in page_b.content()
        assert page_b.locator("#prep-h").count() == 0
        assert axe_violations(page_b) == []
        page_b.screenshot(path=str(ARTIFACTS / "double-check-second-nurse-820.png"), full_page=True)

        # A wrong figure charts nothing; her own calculation charts it.
        page_b.get_by_label("Dose you calculated from the order (IU)").fill("4,800,000")
        page_b.get_by_role("button", name="Checked — chart as given").click()
        page_b.wait_for_selector("text=does not match")
        assert not Administration.objects.exists()
        assert dose_text not in page_b.content()
        page_b.get_by_label("Dose you calculated from the order (IU)").fill(dose_text)
        page_b.get_by_role("button", name="Checked — chart as given").click()
        page_b.wait_for_selector("text=charted as given")
        adm = Administration.objects.get(dose=dose)
        assert (adm.given_by, adm.verified_by, adm.vial_lot) == (nurse_a, nurse_a2, "AL-7731")

        # Nurse A's page shows it given, checked by nurse B.
        page_a.reload()
        assert page_a.locator("#outcome").inner_text() == "GIVEN"
        assert "checked by Amira Second RN" in page_a.locator("#action").inner_text()
        page_a.screenshot(path=str(ARTIFACTS / "double-check-given.png"), full_page=True)
    except Exception:
        page_a.screenshot(path=str(ARTIFACTS / "double-check-failure-a.png"), full_page=True)
        page_b.screenshot(path=str(ARTIFACTS / "double-check-failure-b.png"), full_page=True)
        raise
    finally:
        first.close()
        second.close()
