"""The Content-Security-Policy in Chromium: the board, the dose page, the course page and its printed summary load,
poll and swap (htmx) with no CSP violation reported, neither in the console nor as a securitypolicyviolation event.
A planted inline script is reported, so the listener is known to hear them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import log_in
from tests.scheduling.mar.conftest import ready_course

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber);
});"""


def open_page(browser, base: str, username: str):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(LISTEN)  # run by the browser before the page's scripts, outside the page's CSP
    log_in(page, base, username)
    return page, console


def violations(page, console) -> list[str]:
    page.wait_for_timeout(300)  # let a late report arrive
    return page.evaluate("window.__csp") + console


def test_no_csp_violation_on_the_board_dose_and_course_pages(
    browser, live_server, transactional_db, ward_a, patient_a, oncologist, nurse_a, make_course
):
    now = timezone.now()
    course = ready_course(patient_a, oncologist=oncologist, nurse=nurse_a, make_course=make_course,
                          first_dose_at=now + timedelta(minutes=20), now=now)  # fmt: skip
    dose = course.doses.get(cycle=1, number=1)
    base = live_server.url

    page, console = open_page(browser, base, "nurse_a")
    page.goto(f"{base}/wards/{ward_a.code}/")
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    # A poll of the board (htmx swaps the section) and the bell's load, as the 30 s timer would.
    with page.expect_response(
        lambda r: r.url.endswith(f"/wards/{ward_a.code}/") and r.request.is_navigation_request() is False
    ):
        page.evaluate("htmx.trigger(document, 'il2ward:visible')")
    assert violations(page, console) == [], "board"
    page.goto(f"{base}/doses/{dose.pk}/")
    page.get_by_role("heading").first.wait_for()
    assert violations(page, console) == [], "dose"
    # The listener hears a violation: an inline script planted into the page is refused and reported.
    page.evaluate(
        "var s = document.createElement('script'); s.textContent = 'window.__ran = 1'; document.body.append(s)"
    )
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in violations(page, console))
    page.close()

    page, console = open_page(browser, base, "onc")
    page.goto(f"{base}/courses/{course.pk}/")
    page.get_by_role("heading").first.wait_for()
    assert violations(page, console) == [], "course"
    page.goto(f"{base}/courses/{course.pk}/summary/")
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize") != "", "summary styled"
    assert violations(page, console) == [], "summary"
    page.close()
