"""Browser (Playwright + the system Chromium): the bell counts live, polls with X-IL2Ward-Poll, and a nurse
acknowledges from the list; she opts into text messages with her number (a bad one is refused by the field). Without
Chromium the test skips, saying why (CI fails instead)."""

import os
from pathlib import Path

import pytest
from django.utils import timezone

from il2ward.notifications import notify
from tests.conftest import PASSWORD
from tests.workers import skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser(monkeypatch):
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"needs Chromium at {CHROMIUM} (Debian package chromium); Playwright cannot download one here")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
            from django.db import connections

            connections.close_all()


def due(patient, user, dose_id):
    notify(kind="dose_due", recipients=[user], dedupe=f"dose_due:dose{dose_id}", now=timezone.now(),
           patient=patient, dose_id=dose_id, course_id=1, details={"cycle": 1, "number": dose_id})  # fmt: skip


def test_the_bell_counts_live_and_the_nurse_acknowledges(
    live_server, transactional_db, browser, settings, patient_a, nurse_a
):
    settings.IL2WARD_BELL_POLL_SECONDS = 1
    due(patient_a, nurse_a, 1)
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    polls = []
    page.on(
        "request",
        lambda r: polls.append(r.headers.get("x-il2ward-poll")) if r.url.endswith("/notifications/bell/") else None,
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("nurse_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/notifications/")
    from playwright.sync_api import expect

    bell = page.locator("#notification-bell [data-count]")
    bell.wait_for()
    assert bell.inner_text() == "1"
    due(patient_a, nurse_a, 2)  # arrives while the page is open
    # Polled by locator (no string evaluated in the page: the CSP allows no eval).
    expect(bell).to_have_text("2", timeout=30_000)
    page.wait_for_selector("#notification-list tr[data-kind='dose_due'] >> nth=1")
    page.screenshot(path=str(ARTIFACTS / "notifications-bell.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    page.locator("#notification-list").get_by_role("button", name="Acknowledge", exact=True).first.click()
    page.wait_for_selector("#notification-list [data-unacknowledged='1']")
    expect(bell).to_have_text("1", timeout=30_000)
    assert polls and set(polls) == {"1"}  # every bell refresh said it was a poll


def test_a_nurse_opts_into_texts_with_her_number_and_a_bad_one_is_refused_by_its_field(
    live_server, transactional_db, browser, settings, nurse_a
):
    from il2ward.channels import wants
    from il2ward.models import StaffProfile

    settings.IL2WARD_SMS_GATEWAY_URL = "http://127.0.0.1:9/sms"  # configured: SMS is offered
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("nurse_a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/notifications/")
    page.get_by_label("Text my notifications to my mobile").check()
    page.get_by_label("Mobile number for text messages").fill("0415 555 2671")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_selector("#id_sms_phone.is-invalid")
    assert "Start with + and the country code" in page.locator("#id_sms_phone ~ .invalid-feedback, "
                                                                "#error_1_id_sms_phone").first.inner_text()  # fmt: skip
    assert not wants(StaffProfile.objects.get(user=nurse_a), "sms")
    page.get_by_label("Mobile number for text messages").fill("+1 415 555 2671")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Notification preferences saved.").wait_for()
    assert page.get_by_label("Mobile number for text messages").input_value() == "+14155552671"
    assert page.get_by_label("Text my notifications to my mobile").is_checked()
    profile = StaffProfile.objects.get(user=nurse_a)
    assert wants(profile, "sms") and profile.channels["sms"]["phone"] == "+14155552671"
    page.screenshot(path=str(ARTIFACTS / "notifications-preferences-sms.png"), full_page=True)
