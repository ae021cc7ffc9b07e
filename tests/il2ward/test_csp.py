"""Content-Security-Policy (django-csp): every page's HTML, walked from the resolver as in the access matrix, has no
inline script, no on*= handler, no style attribute and no <style> element without the response's nonce; the policy
refuses inline script and eval; the API docs page has its own policy (inline styles, never inline script)."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.scheduling.doses.conftest import chart, first_dose, frozen, ready  # noqa: F401 - fixtures
from tests.test_access_matrix import fill, routes, world  # noqa: F401 - the matrix's objects of ward A

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


class Inline(HTMLParser):
    """Collects what a strict CSP would refuse."""

    def __init__(self, nonce: str | None):
        super().__init__()
        self.nonce, self.found, self._in_script = nonce, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")
        if tag == "script" and "src" not in attrs and attrs.get("type") not in ("application/json",):
            self.found.append("<script> inline")
        if tag == "style" and (self.nonce is None or attrs.get("nonce") != self.nonce):
            self.found.append("<style> without the response's nonce")


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


def inline_in(response) -> list[str]:
    nonce = re.search(r"'nonce-([^']+)'", response.get("Content-Security-Policy", ""))
    parser = Inline(nonce.group(1) if nonce else None)
    parser.feed(response.content.decode())
    return parser.found


def test_the_policy_refuses_inline_script_styles_and_eval(client, nurse_a):
    client.force_login(nurse_a)
    csp = policy(client.get("/wards/onc-a/"))
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]  # no nonce used: none offered
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    # The sign-in page too (no session yet).
    assert policy(Client().get("/accounts/login/"))["script-src"] == ["'self'"]


def test_every_page_as_each_role_has_no_inline_script_or_style(world):  # noqa: F811
    users, ids = world
    walked = 0
    for role in ("nurse_a", "charge", "onc", "admin"):
        client = Client(raise_request_exception=False)
        client.force_login(users[role])
        for route, _ in routes():
            if route.startswith(("api/", "fhir/", "accounts/logout/")) or "<str:token>" in route:
                continue
            response = client.get(fill(route, ids))
            if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
                continue
            assert "'unsafe-inline'" not in response["Content-Security-Policy"], route
            assert inline_in(response) == [], (role, route)
            walked += 1
    assert walked >= 40, walked  # the board, patient, dose, course, summary, downtime, notifications, ...


def test_the_printed_summary_styles_carry_the_nonce_of_its_response(world):  # noqa: F811
    users, ids = world
    client = Client()
    client.force_login(users["onc"])
    response = client.get(f"/courses/{ids['course']}/summary/")
    nonce = re.search(r"'nonce-([^']+)'", policy(response)["style-src"][1]).group(1)
    assert policy(response)["script-src"] == ["'self'"]
    assert response.content.decode().count(f'<style nonce="{nonce}">') == 2 and inline_in(response) == []
    assert ".dose-grid" in response.content.decode()  # the review's static CSS, inlined for WeasyPrint
    other = client.get(f"/courses/{ids['course']}/summary/")
    assert policy(other)["style-src"] != policy(response)["style-src"]  # a fresh nonce per response
    # A planted inline handler or a nonce-less style would be caught by the same check.
    planted = type(response)(response.content.replace(b"<h1>", b'<h1 onclick="x()" style="color:red">'))
    planted["Content-Security-Policy"] = response["Content-Security-Policy"]
    assert inline_in(planted) == ["<h1 onclick=...>", "<h1 style=...>"]


def test_the_api_docs_page_allows_inline_styles_but_no_inline_script(client, nurse_a):
    client.force_login(nurse_a)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    csp = policy(page)
    assert csp["script-src"] == ["'self'"] and "'unsafe-inline'" in csp["style-src"]
    found = inline_in(page)
    assert "<script> inline" not in found and not any("on" in f and "=" in f for f in found), found
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    # The ward's pages keep the strict policy.
    assert "'unsafe-inline'" not in client.get("/notifications/")["Content-Security-Policy"]


def test_the_admin_lists_run_no_inline_script(world):  # noqa: F811
    """Django's admin (5.2) has no inline script or handler; one of its lists may add a small <style> element (a
    list without actions), which the policy drops: only a column width."""
    from django.contrib import admin

    users, _ = world
    client = Client()
    client.force_login(users["admin"])
    urls = ["/admin/"] + [f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        found = [f for f in inline_in(response) if not f.startswith("<style>")]
        assert found == [], (url, found)
    assert len(urls) > 15
