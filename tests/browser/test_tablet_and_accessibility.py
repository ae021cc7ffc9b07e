"""The nurse's and the oncologist's pages at the two sizes the wards use (a tablet in portrait, 820 px with touch,
and a 1366 px nurse station): axe-core finds no serious or critical WCAG 2.1 A/AA violation, no page scrolls
sideways, the board shows every column of every patient, and the Give button is in the first screen.

Screenshots of each page at each size go to test-artifacts/ (named page-size.png).
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import ARTIFACTS, SIZES, axe_violations, horizontal_overflow, log_in
from tests.scheduling.mar.conftest import ready_course, record_assessment

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def ward(transactional_db, ward_a, patient_a, oncologist, nurse_a, make_course):
    """Patient A held by SBP 85 (CV-SBP); patient C ready to give, both due in 20 min."""
    from il2ward.services import patient_create
    from scheduling.services import dose_evaluate

    now = timezone.now()
    patient_c = patient_create(
        mrn="A-0003", name="Cy Gamma", birth_date=now.date().replace(year=1960), ward=ward_a, by=oncologist, now=now
    )
    courses = {}
    for patient, sbp in ((patient_a, 85), (patient_c, 121)):
        course = ready_course(
            patient,
            oncologist=oncologist,
            nurse=nurse_a,
            make_course=make_course,
            first_dose_at=now + timedelta(minutes=20),
            now=now,
        )
        record_assessment(patient, nurse=nurse_a, now=now, sbp=sbp)
        dose_evaluate(dose_id=course.doses.get(cycle=1, number=1).pk, now=now)
        courses[patient.mrn] = course
    return courses


def pages_of(courses):
    held, ready = courses["A-0001"], courses["A-0003"]
    return {
        "board": "/wards/onc-a/",
        "patient": f"/patients/{held.patient_id}/",
        "dose-held": f"/doses/{held.doses.get(cycle=1, number=1).pk}/",
        "dose-ready": f"/doses/{ready.doses.get(cycle=1, number=1).pk}/",
        "notifications": "/notifications/",
    }


@pytest.mark.parametrize("size", SIZES)
def test_the_nurses_pages_pass_axe_fit_the_screen_and_show_the_action_first(browser, live_server, ward, size):
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    found, overflow = {}, {}
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        found["login"] = axe_violations(page)
        log_in(page, live_server.url, "nurse_a")
        for name, path in pages_of(ward).items():
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            found[name] = axe_violations(page)
            overflow[name] = horizontal_overflow(page)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
        page.goto(f"{live_server.url}{pages_of(ward)['dose-ready']}")
        give = page.get_by_role("button", name="Give — chart as given").bounding_box()
        print(f"{size}: Give button top at {give['y']:.0f} px of a {SIZES[size]['viewport']['height']} px screen")
        # Action first: the Give button is in the first screen at either size, above the assessment.
        assert give["y"] + give["height"] <= SIZES[size]["viewport"]["height"]
        assert give["y"] < page.locator("#assess-form").bounding_box()["y"]
    finally:
        context.close()
    assert {name: v for name, v in found.items() if v} == {}
    assert {name: px for name, px in overflow.items() if px > 0} == {}


@pytest.mark.parametrize("size", SIZES)
def test_the_oncologists_course_page_passes_axe_and_fits_the_screen(browser, live_server, ward, size):
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    try:
        log_in(page, live_server.url, "onc")
        for name, path in (("course", f"/courses/{ward['A-0001'].pk}/"), ("courses", "/courses/")):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
            assert axe_violations(page) == [], name
            assert horizontal_overflow(page) == 0, name
    finally:
        context.close()


def test_the_board_on_a_tablet_shows_every_column_of_every_patient(browser, live_server, ward):
    context = browser.new_context(**SIZES["tablet-820"])
    page = context.new_page()
    try:
        log_in(page, live_server.url, "nurse_a")
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        for mrn in ("A-0001", "A-0003"):
            row = page.locator("tr.board-row", has_text=mrn)
            card = row.bounding_box()
            assert card["x"] >= 0 and card["x"] + card["width"] <= 820
            for label in ("Next slot", "State · why", "Last vitals", "Given / held"):
                cell = row.locator(f'td[data-label="{label}"]')
                box = cell.bounding_box()
                assert cell.is_visible() and box["x"] + box["width"] <= 820, (mrn, label)
            assert re.search(r"HR \d+", row.inner_text()) and re.search(r"SpO2 \d+", row.inner_text())
        held = page.locator("tr.board-row", has_text="A-0001").inner_text()
        assert "Systolic blood pressure" in held and "CV-SBP" in held  # in words, the id beside it
        small = page.evaluate(
            """() => [...document.querySelectorAll('main a, main button')]
                 .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
                 .map(el => el.textContent.trim().slice(0, 30))"""
        )
        assert small == []  # every target a nurse taps is at least 44 px high
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_a_refused_give_shows_the_error_in_view_and_a_mistaken_hold_is_undone(browser, live_server, ward, size):
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    ready = ward["A-0003"]
    dose = ready.doses.get(cycle=1, number=1)
    try:
        log_in(page, live_server.url, "nurse_a")
        page.goto(f"{live_server.url}/doses/{dose.pk}/")
        # A wrong second-nurse password: the summary is at the top, in view and focused; the address is unchanged.
        page.get_by_label("Vial lot number").fill("AL-1")
        page.get_by_label("Reconstituted at (ward time)").fill(
            (timezone.now() - timedelta(minutes=20)).astimezone(ready.patient.ward.zone).strftime("%Y-%m-%d %H:%M")
        )
        page.get_by_label("Second nurse: username").fill("nurse_a2")
        page.get_by_label("Second nurse: password").fill("not-her-password")
        page.get_by_label("Second nurse: dose she calculated (IU)").fill(f"{ready.dose_iu:,}")
        page.get_by_role("button", name="Give — chart as given").click()
        summary = page.locator("#error-summary")
        summary.wait_for()
        assert "Second nurse: password" in summary.inner_text()
        assert page.evaluate("document.activeElement.id") == "error-summary"
        box = summary.bounding_box()
        # In view: scrolled to the top, give or take scrollIntoView's sub-pixel rounding (-0.0625 px at 1366 px).
        assert -1 < box["y"] < SIZES[size]["viewport"]["height"]
        assert page.url.endswith(f"/doses/{dose.pk}/")
        page.screenshot(path=str(ARTIFACTS / f"flow-refused-give-{size}.png"))
        # Hold by mistake (confirmed), then undo it while the window is open: the dose is open again.
        page.locator("#hold-instead summary").click()
        page.get_by_label("Reason (rule id or code)").select_option("no_iv_access")
        page.get_by_label("Hold it: this dose will not be given, and a held dose is never made up").check()
        page.get_by_role("button", name="Hold — not given (never made up)").click()
        page.locator("#outcome").wait_for()
        page.locator("#undo-hold summary").click()
        page.get_by_label("Why the hold was a mistake").fill("wrong patient's chart")
        page.screenshot(path=str(ARTIFACTS / f"flow-undo-hold-{size}.png"))
        page.get_by_role("button", name="Mark the hold entered in error — the dose is open again").click()
        page.get_by_role("button", name="Give — chart as given").wait_for()
        dose.refresh_from_db()
        assert dose.status == "scheduled"
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_the_nurse_sees_the_oncologists_override_and_reminders_clear_when_the_dose_is_given(
    browser, live_server, ward, oncologist, nurse_a, nurse_a2, size
):
    from il2ward.notifications import notify
    from scheduling.services import dose_override
    from tests.conftest import PASSWORD

    held = ward["A-0001"]
    dose = held.doses.get(cycle=1, number=1)
    now = timezone.now()
    dose_override(dose_id=dose.pk, reason="SBP 85 is her baseline", password=PASSWORD, by=oncologist, now=now)
    notify(kind="dose_due", recipients=[nurse_a], dedupe=f"dose_due:dose{dose.pk}", now=now,
           patient=held.patient, dose_id=dose.pk, course_id=held.pk, details={"cycle": 1, "number": 1})  # fmt: skip
    context = browser.new_context(**SIZES[size])
    page = context.new_page()
    try:
        log_in(page, live_server.url, "nurse_a")
        page.goto(f"{live_server.url}/doses/{dose.pk}/")
        action = page.locator("#action").inner_text()
        assert "hold overridden by Dr Olga Oncologist" in action and "SBP 85 is her baseline" in action
        assert page.get_by_role("button", name="Give — chart as given").is_visible()
        page.locator("#notification-bell [data-count='1']").wait_for()
        page.screenshot(path=str(ARTIFACTS / f"flow-override-seen-{size}.png"))
        page.get_by_label("Vial lot number").fill("AL-2")
        page.get_by_label("Reconstituted at (ward time)").fill(
            (now - timedelta(minutes=20)).astimezone(held.patient.ward.zone).strftime("%Y-%m-%d %H:%M")
        )
        page.get_by_label("Second nurse: username").fill("nurse_a2")
        page.get_by_label("Second nurse: password").fill(PASSWORD)
        page.get_by_label("Second nurse: dose she calculated (IU)").fill(f"{held.dose_iu:,}")
        page.get_by_role("button", name="Give — chart as given").click()
        page.wait_for_load_state()
        assert page.locator("#error-summary").count() == 0, page.locator("#error-summary").inner_text()
        page.wait_for_selector("text=charted as given")
        page.locator("#notification-bell [data-count='0']").wait_for()  # the dose_due reminder resolved itself
        page.goto(f"{live_server.url}/notifications/")
        assert "acknowledge-reminders" not in page.content()  # nothing left to acknowledge
    finally:
        context.close()
