"""The ward board's poll in Chromium: a 304 leaves the page as it is, a change swaps only its row (htmx out-of-band
swaps, rows wrapped in <template>), a new patient's row is added and a stopped course's removed, in the board's order,
and the board still passes axe afterwards."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.browser.conftest import SIZES, axe_violations, log_in
from tests.browser.test_tablet_and_accessibility import ward  # noqa: F401 - the fixture
from tests.charting import EXPLICIT_VITALS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _poll(page):
    with page.expect_response(lambda r: r.request.headers.get("x-il2ward-poll") == "1") as info:
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the poll's own trigger
    page.wait_for_timeout(300)  # htmx settles the swaps
    return info.value


def _marked(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('tr.board-row[data-kept]')].map(r => r.dataset.patient)")


def test_the_poll_swaps_only_what_changed(browser, live_server, ward, nurse_a, oncologist, make_course):  # noqa: F811
    from il2ward.services import patient_create
    from monitoring.services import vitals_record
    from scheduling.services import course_stop

    held, ready = ward["A-0001"], ward["A-0003"]
    context = browser.new_context(**SIZES["tablet-820"])
    page = context.new_page()
    try:
        log_in(page, live_server.url, "nurse_a")
        page.wait_for_url(re.compile(r"/wards/onc-a/$"))
        page.evaluate("document.querySelectorAll('tr.board-row').forEach(r => r.dataset.kept = '1')")
        page.evaluate("document.querySelector('#board-summary time').textContent = '00:00:00'")
        statuses = [_poll(page).status for _ in range(2)]
        assert 304 in statuses and set(statuses) <= {200, 304}, statuses  # a minute may turn between the two
        assert re.fullmatch(r"\d\d:\d\d:\d\d", page.locator("#board-summary time").inner_text())
        assert page.locator("#board-summary time").inner_text() != "00:00:00"  # a 304 still says when it checked
        assert sorted(_marked(page)) == sorted([str(held.patient_id), str(ready.patient_id)])  # nothing re-drawn

        now = timezone.now()
        low = {"sbp": 80, "dbp": 50, "heart_rate": 96, "resp_rate": 18, "spo2": 97, "temp_c": Decimal("37.0")}
        at = now - timedelta(minutes=1)
        vitals_record(patient=ready.patient, recorded_at=at, **low, **EXPLICIT_VITALS, by=nurse_a, now=now)
        assert _poll(page).status == 200
        row = page.locator(f"#board-row-{ready.patient_id}")
        assert "BP 80/50" in row.inner_text()
        assert _marked(page) == [str(held.patient_id)]  # the other row was left alone

        newcomer = patient_create(mrn="A-0100", name="Ann Newcomer", birth_date=now.date().replace(year=1960),
                                  ward=ready.patient.ward, by=oncologist, now=now)  # fmt: skip
        make_course(newcomer, first_dose_at=now + timedelta(hours=5), now=now)
        assert _poll(page).status == 200
        assert page.locator("tr.board-row").count() == 3 and page.locator(f"#board-row-{newcomer.pk}").is_visible()
        order = page.evaluate("() => [...document.querySelectorAll('tr.board-row')].map(r => r.dataset.patient)")
        assert order == page.evaluate("document.getElementById('board-order').dataset.order").split()

        course_stop(course_id=held.pk, reason="progression", password=PASSWORD, by=oncologist, now=now)
        assert _poll(page).status == 200
        assert page.locator("tr.board-row").count() == 2 and page.locator(f"#board-row-{held.patient_id}").count() == 0
        assert page.locator("template").count() == 0  # the wrappers of the out-of-band rows are gone
        assert axe_violations(page) == []
    finally:
        context.close()
