"""The nurse's eMAR in Chromium: sign in, an assessment with SBP 85 holds the dose by CV-SBP and the give is
refused; normal values, then the dose is given with a second nurse's blind check; the board shows it given.

Charting runs at both ward sizes (tests/browser/conftest.py SIZES): a tablet in portrait (820 px, touch) and the nurse
station (1366 px); screenshots go to test-artifacts/. Skips saying why without /usr/bin/chromium; fails instead under
IL2WARD_REQUIRE_SERVICES=1.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduling.mar.forms import EXAM_LABELS
from scheduling.models import Administration
from tests.browser.conftest import ARTIFACTS, SIZES
from tests.conftest import PASSWORD
from tests.scheduling.mar.conftest import ready_course

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def shoot(page, name: str) -> None:
    """Screenshot the page at the size it is shown at (the file tool shows them; they are kept as test artefacts)."""
    width = page.viewport_size["width"]
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


def local(moment, zone) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def fill_assessment(page, *, sbp: str, at: str | None = None) -> None:
    if at is not None:
        page.get_by_label("Assessed at (ward time)").fill(at)
    page.get_by_label("Systolic BP (mmHg)").fill(sbp)
    page.get_by_label("Diastolic BP (mmHg)").fill("60")
    page.get_by_label("Heart rate (/min)").fill("96")
    page.get_by_label("Resp. rate (/min)").fill("18")
    page.get_by_label("SpO2 (%)").fill("97")
    page.get_by_label("Temperature (°C)").fill("37.6")
    page.get_by_label("Rhythm").select_option("sinus")
    page.get_by_label("RASS").select_option("0")
    page.get_by_label("Confusion / agitation").select_option("none")
    # INV-EXPLICIT: every answer chosen, none left to read as "no"
    page.get_by_label("Phenylephrine (µg/kg/min)").fill("0")
    page.get_by_label("Other vasopressor").select_option("none")
    page.get_by_label("O2 flow (L/min)").fill("0")
    page.get_by_label("Rales").select_option("none")
    for name in ("neuro_check_failed", "hallucinations", "vivid_dreams_or_anxiety", "persistent_crying", *EXAM_LABELS):
        page.locator(f"input[name$='-{name}'][value='no']").check()
    page.get_by_role("button", name="Save assessment and evaluate").click()


def fill_give(page, *, dose_iu: int, zone) -> None:
    now = timezone.now()
    page.get_by_label("Vial lot number").fill("AL-7731")
    page.get_by_label("Reconstituted at (ward time)").fill(local(now - timedelta(minutes=25), zone))
    page.get_by_label("Second nurse: username").fill("nurse_a2")
    page.get_by_label("Second nurse: password").fill(PASSWORD)
    page.get_by_label("Second nurse: dose she calculated (IU)").fill(f"{dose_iu:,}")


@pytest.mark.parametrize("size", SIZES)
def test_nurse_charts_a_dose_in_the_browser(
    size, browser, live_server, transactional_db, ward_a, patient_a, oncologist, nurse_a, nurse_a2, make_course
):
    """The whole first dose, as a nurse charts it on a tablet in portrait (touch) and at the nurse station."""
    now = timezone.now()
    course = ready_course(
        patient_a,
        oncologist=oncologist,
        nurse=nurse_a,
        make_course=make_course,
        first_dose_at=now + timedelta(minutes=20),
        now=now,
    )
    dose = course.doses.get(cycle=1, number=1)
    zone = ward_a.zone
    page = browser.new_page(**SIZES[size])
    try:
        # Sign in: the nurse lands on her ward board.
        page.goto(f"{live_server.url}/")
        page.get_by_label("Username").fill("nurse_a")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        row = page.locator(f'tr[data-patient="{patient_a.pk}"]')
        assert row.get_attribute("data-state") == "due_now"

        # Open the dose from the board; the first evaluation is incomplete (no vitals yet).
        row.get_by_role("link", name=re.compile(r"C1 #1")).click()
        page.wait_for_url(re.compile(rf"/doses/{dose.pk}/$"))
        assert page.locator("#decision").inner_text() == "INCOMPLETE"

        # SBP 85: the evaluation updates in place (htmx) to HOLD by CV-SBP.
        fill_assessment(page, sbp="85", at=local(timezone.now() - timedelta(minutes=2), zone))
        page.wait_for_selector("#decision:text('HOLD')")
        assert "CV-SBP" in page.locator("#evaluation").inner_text()
        assert "85 mmHg" in page.locator("#evaluation").inner_text()

        # Action first: while the hold stands the page offers new data and the hold, not the Give form.
        assert page.get_by_role("button", name="Give — chart as given").count() == 0
        assert page.get_by_role("link", name="Record new data and re-evaluate").is_visible()
        assert "CV-SBP" in page.locator("#action").inner_text()
        assert not Administration.objects.exists()
        shoot(page, "nurse-dose-hold")

        # Normal values a minute later (at the same minute the two readings would conflict and the lower count,
        # INV-CONFLICT): GIVE; then the blind double check by the second nurse, on the same screen.
        fill_assessment(page, sbp="118", at=local(timezone.now() - timedelta(minutes=1), zone))
        page.wait_for_selector("#decision:text('GIVE')")
        fill_give(page, dose_iu=course.dose_iu, zone=zone)
        second = page.locator("fieldset.second-nurse")
        assert f"{course.dose_iu:,}" not in second.inner_text()
        assert page.get_by_label("Second nurse: dose she calculated (IU)").input_value() == f"{course.dose_iu:,}"
        shoot(page, "nurse-dose-ready")
        page.get_by_role("button", name="Give — chart as given").click()
        page.wait_for_selector("text=charted as given")
        adm = Administration.objects.get(dose=dose)
        assert (adm.given_by, adm.verified_by, adm.vial_lot) == (nurse_a, nurse_a2, "AL-7731")
        shoot(page, "nurse-dose-given")

        # The board shows it given.
        page.get_by_role("link", name="Oncology A").first.click()
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        row = page.locator(f'tr[data-patient="{patient_a.pk}"]')
        assert row.get_attribute("data-state") == "given"
        assert "Given" in row.inner_text() and "1 / 0" in row.inner_text()
        shoot(page, "nurse-board")

        # Every field on the charting page has a label, and the give button is reachable by keyboard.
        page.goto(f"{live_server.url}/doses/{dose.pk}/")
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                   .map(el => el.name)"""
        )
        assert unlabelled == []
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"nurse-failure-{size}.png"), full_page=True)  # what the nurse saw
        raise
    finally:
        page.close()


def test_board_and_pages_have_labels_and_keyboard_focus(browser, live_server, transactional_db, ward_a, patient_a,
                                                        oncologist, nurse_a, make_course):  # fmt: skip
    now = timezone.now()
    course = ready_course(
        patient_a,
        oncologist=oncologist,
        nurse=nurse_a,
        make_course=make_course,
        first_dose_at=now + timedelta(minutes=20),
        now=now,
    )
    dose = course.doses.get(cycle=1, number=1)
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("nurse_a")
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        # Tab through the board until the patient's dose link has focus.
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.getAttribute('href')") == f"/doses/{dose.pk}/":
                break
        else:
            pytest.fail("the dose link on the board is not reachable with the keyboard")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/doses/{dose.pk}/$"))
        for path in (f"/doses/{dose.pk}/", f"/patients/{patient_a.pk}/", f"/patients/{patient_a.pk}/fluids/",
                     f"/patients/{patient_a.pk}/labs/", f"/patients/{patient_a.pk}/events/",
                     f"/patients/{patient_a.pk}/teaching/"):  # fmt: skip
            page.goto(f"{live_server.url}{path}")
            unlabelled = page.evaluate(
                """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                       .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                       .map(el => el.name)"""
            )
            assert unlabelled == [], path
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1024, f"{path} scrolls sideways at 1024 px ({width} px)"
    finally:
        page.close()


def test_a_nurse_holds_a_dose_with_the_keyboard_alone(
    browser, live_server, transactional_db, ward_a, patient_a, oncologist, nurse_a, make_course
):
    """Forms are usable by keyboard alone: with the dose on hold (SBP 85, CV-SBP), the hold is recorded with Tab,
    arrow keys, typing, Space and Enter only, and lands as a Hold row naming its rule."""
    from scheduling.models import Hold

    now = timezone.now()
    course = ready_course(
        patient_a, oncologist=oncologist, nurse=nurse_a, make_course=make_course,
        first_dose_at=now + timedelta(minutes=20), now=now,
    )  # fmt: skip
    dose = course.doses.get(cycle=1, number=1)
    page = browser.new_page(**SIZES["station-1366"])
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("nurse_a")
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        page.goto(f"{live_server.url}/doses/{dose.pk}/")
        fill_assessment(page, sbp="85", at=local(timezone.now() - timedelta(minutes=2), ward_a.zone))
        page.wait_for_selector("#decision:text('HOLD')")

        def focused(attribute: str) -> str | None:
            return page.evaluate(f"document.activeElement && document.activeElement.getAttribute('{attribute}')")

        seen = []
        for _ in range(60):  # Tab forward to the hold form's reason: action first, so it comes before the assessment
            page.keyboard.press("Tab")
            seen.append(page.evaluate("(e => e && (e.name || e.id || e.tagName))(document.activeElement)"))
            if focused("name") == "hold-reason":
                break
        else:
            raise AssertionError(f"the hold reason is not reachable with the keyboard: {seen}")
        for _ in range(40):  # arrow keys choose the rule the evaluation named
            if page.evaluate("document.activeElement.value") == "CV-SBP":
                break
            page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.value") == "CV-SBP"
        page.keyboard.press("Tab")
        assert focused("name") == "hold-note"
        page.keyboard.type("SBP 85 on the pre-dose check; reassess at the next slot")
        page.keyboard.press("Tab")
        assert focused("name") == "hold-confirm_hold"
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        assert focused("id") == "hold-button"
        page.keyboard.press("Enter")
        page.wait_for_selector("text=C1 #1 held (CV-SBP)")
        hold = Hold.objects.get(dose=dose)
        assert (hold.reason, hold.by) == ("CV-SBP", nurse_a) and "reassess" in hold.note
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "nurse-keyboard-failure.png"), full_page=True)
        raise
    finally:
        page.close()
