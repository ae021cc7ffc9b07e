"""Browser (Playwright + the system Chromium): the oncologist's course review, end to end.

An oncologist opens a course with holds, reads the reasons, overrides the flagged hold on the next dose with her
password, sees the signature on the page, and downloads the PDF summary, which carries the signature's printed name,
time and meaning. Screenshots go to test-artifacts/. Without Chromium the tests skip, saying why (CI fails instead).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import ARTIFACTS, log_in
from tests.conftest import PASSWORD
from tests.scheduling.review.builders import Staff, build_course, flag_next
from tests.scheduling.review.pdftext import pdf_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def staff(oncologist, nurse_a, nurse_a2):
    return Staff(oncologist, nurse_a, nurse_a2)


def fits_the_tablet(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_oncologist_overrides_a_hold_and_the_pdf_carries_her_signature(
    live_server, transactional_db, browser, staff, patient_a
):
    from il2ward.models import Signature
    from scheduling.models import Override

    now = timezone.now()
    course = build_course(patient_a, staff, now=now, charted=7, abnormal={4: {"sbp": 86}})
    dose = flag_next(course, staff, now=now, sbp=85)  # the next dose: SBP 85 < 90, a hold (CV-SBP)
    zone = patient_a.ward.zone

    page = browser.new_page(viewport={"width": 1024, "height": 900}, accept_downloads=True)
    log_in(page, live_server.url, "onc", PASSWORD)
    page.goto(f"{live_server.url}/courses/")
    page.get_by_role("link", name=patient_a.name).click()
    page.wait_for_load_state()

    # The reasons: the held dose's cell and the holds table name the rule and the value.
    held_cell = page.locator(".dose-grid td.cell-held")
    assert held_cell.count() == 1 and "CV-SBP" in held_cell.inner_text()
    held_table = page.get_by_role("table", name="Held doses with their reasons")
    assert "CV-SBP" in held_table.inner_text() and "86 mmHg" in held_table.inner_text()
    card = page.locator(".card", has_text="Hold flagged · Cycle 1 · dose 8")
    assert "85 mmHg" in card.inner_text()
    assert page.locator("svg.trend").count() == 7 and fits_the_tablet(page)
    page.screenshot(path=str(ARTIFACTS / "review-course-before-override.png"), full_page=True)

    # The override, signed with her password.
    card.get_by_label("Reason for giving this dose").fill("MAP 68, asymptomatic, warm peripheries")
    card.get_by_label("Your password (e-signature)").fill(PASSWORD)
    card.get_by_role("button", name="Sign override").click()
    page.wait_for_load_state()

    override = Override.objects.get(dose=dose)
    signature = Signature.objects.get(pk=override.signature_id)
    stamp = f"{signature.signed_at.astimezone(zone):%H:%M %Z}"
    alert = page.get_by_role("alert").first.inner_text()
    assert "Signed by Dr Olga Oncologist" in alert and stamp in alert
    row = page.locator(f"#dose-{dose.pk}")
    row_text = row.inner_text()
    assert "Dr Olga Oncologist" in row_text and "Hold overridden for one dose" in row_text and stamp in row_text
    assert "Matches the record" in row_text
    assert "Override" in page.locator(f"#cell-{dose.pk}").inner_text()
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "review-course-after-override.png"), full_page=True)

    # The PDF download.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"course-{course.pk}-summary.pdf"
    target = ARTIFACTS / "review-summary.pdf"
    download.save_as(str(target))
    text = pdf_text(target.read_bytes())
    assert "Dr Olga Oncologist" in text and "Hold overridden for one dose" in text
    assert f"{signature.signed_at.astimezone(zone):%a %-d %b %Y %H:%M %Z}" in text
    assert "CV-SBP" in text

    # The printable summary renders its plots in the browser too.
    page.goto(f"{live_server.url}/courses/{course.pk}/summary/")
    assert page.locator("svg.trend").count() == 7
    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "review-summary-print.png"), full_page=True)


def test_a_nurse_reads_the_course_page_without_signing_forms(live_server, transactional_db, browser, staff, patient_a):
    now = timezone.now()
    course = build_course(patient_a, staff, now=now, charted=4, abnormal={2: {"sbp": 84}})
    flag_next(course, staff, now=now, sbp=85)
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    log_in(page, live_server.url, "nurse_a", PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.pk}/")
    assert "CV-SBP" in page.locator(".dose-grid").inner_text()
    assert page.locator("input[type=password]").count() == 0
    assert "Only an oncologist may override a hold." in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "review-course-nurse.png"), full_page=True)


def test_the_demo_courses_read_well(live_server, transactional_db, browser):
    from fixtures import demo

    demo.load(now=timezone.now() - timedelta(seconds=1))
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    log_in(page, live_server.url, "onc", demo.PASSWORD)
    page.goto(f"{live_server.url}/courses/")
    page.screenshot(path=str(ARTIFACTS / "review-demo-course-list.png"), full_page=True)
    for name, shot, expect in (
        ("Maria Lopez", "review-demo-maria.png", ("Cycle 1 · day", "CV-SBP")),
        ("James Okafor", "review-demo-james.png", ("Rest day", "NE-RASS", "RN-UO")),
    ):
        page.goto(f"{live_server.url}/courses/")
        page.get_by_role("link", name=name).click()
        page.wait_for_load_state()
        body = page.inner_text("body")
        assert all(e in body for e in expect), (name, expect)
        assert page.locator("svg.trend").count() == 7 and fits_the_tablet(page), name
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
