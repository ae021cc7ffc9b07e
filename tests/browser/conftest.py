"""Chromium through Playwright for the browser tests: one browser per test, screenshots to test-artifacts/, and
axe-core (tests/node_modules, installed by scripts/install) for the accessibility checks.

Skips saying why without /usr/bin/chromium or axe-core; fails instead under IL2WARD_REQUIRE_SERVICES=1.
"""

from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.workers import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
# The two sizes the wards use: a tablet in portrait (touch) and a nurse-station screen.
TABLET = {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True}
STATION = {"viewport": {"width": 1366, "height": 768}}
SIZES = {"tablet-820": TABLET, "station-1366": STATION}


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"needs Chromium at {CHROMIUM} (Debian package chromium); Playwright cannot download one here")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    # Playwright's sync API keeps an event loop; the test's own ORM calls are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            from django.db import connections

            connections.close_all()  # PostgreSQL: leave no session behind for the test database's teardown


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def axe_violations(page, *, impacts=("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.x A/AA violations of the impacts given, as "rule-id: selector" lines."""
    if not AXE.exists():
        skip_or_fail(f"axe-core is not installed at {AXE} (scripts/install runs npm ci in tests/)")
    # Evaluated through the DevTools protocol, not added as a <script> element: the page's CSP refuses inline script.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag',
             values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {', '.join(n['target'][0] for n in v['nodes'][:3])}"
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than its viewport (0: no horizontal scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
