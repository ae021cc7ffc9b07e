"""The access matrix: every URL pattern (walked from the resolver, so a new route without a row fails) requested
with GET and POST, as anonymous, each role, and another ward's nurse, against a table of codes.

Every object in a path belongs to ward A (patient A, her course, its first dose, her vitals, nurse A's calendar
token), so nurse B (ward B) must never get a 2xx: she gets 404 (not visible) wherever nurse A is allowed. POST
bodies are empty: 400 means the caller got past authorisation (the field errors come after the access check).
"""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import NOW, make_staff
from tests.scheduling.doses.conftest import chart, first_dose, frozen, ready  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

ROLES = ("anon", "nurse_a", "nurse_b", "charge", "onc", "pharm", "admin")


def routes() -> list[tuple[str, object]]:
    """(route, callback) of every URL pattern outside the Django admin (its own rule below)."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern) == "admin/":
                    continue
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    return list(walk(get_resolver().url_patterns))


MISSING = 999_999  # nested objects the matrix does not build: the outer object's access is what is judged


@pytest.fixture
def world(ready, patient_a, patient_b, nurse_a, nurse_b, charge_nurse, oncologist, pharmacist):  # noqa: F811
    from il2ward import feeds

    course = ready()
    rows = chart(patient_a, nurse_a)
    token, secret = feeds.calendar_token_create(user=nurse_a, now=NOW)
    admin_user = make_staff("admin_u", "admin")
    from datetime import timedelta

    from scheduling.models import DoubleCheck

    # Nurse A's give waiting for a second nurse's own-session check (the charge nurse of ward A may answer it).
    check = DoubleCheck.objects.create(
        dose=first_dose(course),
        requested_by=nurse_a,
        requested_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        started_at=NOW,
    )
    users = {
        "nurse_a": nurse_a,
        "nurse_b": nurse_b,
        "charge": charge_nurse,
        "onc": oncologist,
        "pharm": pharmacist,
        "admin": admin_user,
    }
    ids = {
        "code": patient_a.ward.code,
        "patient": patient_a.pk,
        "course": course.pk,
        "dose": first_dose(course).pk,
        "vitals": rows["vitals"].pk,
        "token_id": token.pk,
        "secret": secret,
        "check": check.pk,
    }
    return users, ids


def fill(route: str, ids: dict) -> str:
    """The route with ward A's objects in its parameters."""
    first = route.removeprefix("api/v1/").split("/", 1)[0]
    pk = {
        "patients": ids["patient"],
        "courses": ids["course"],
        "doses": ids["dose"],
        "observations": ids["vitals"],
        "calendar-tokens": ids["token_id"],
        "calendar": ids["course"],
        "double-checks": ids["check"],
    }.get(first, MISSING)
    values = {
        "<slug:code>": ids["code"],
        "<int:pk>": pk,
        "<int:dose_pk>": ids["dose"],
        "<int:event_pk>": MISSING,
        "<int:event_id>": MISSING,
        "<slug:kind>": "vitals",
        "<slug:name>": "adverse_event",
        "<str:token>": ids["secret"],
    }
    path = "/" + route
    for placeholder, value in values.items():
        path = path.replace(placeholder, str(value))
    assert "<" not in path, f"no value for a parameter of {route}: add it to fill()"
    return path


def observe(users, ids) -> dict[tuple[str, str], dict[str, int]]:
    observed: dict[tuple[str, str], dict[str, int]] = {}
    clients = {"anon": Client(raise_request_exception=False)}
    for role, user in users.items():
        clients[role] = Client(raise_request_exception=False)
        clients[role].force_login(user)
    for route, _ in sorted(routes(), key=lambda r: r[0] == "accounts/logout/"):  # signing out last
        path = fill(route, ids)
        for method in ("GET", "POST"):
            row = observed.setdefault((route, method), {})
            for role in ROLES:
                client = clients[role]
                if method == "GET":
                    response = client.get(path)
                elif route.startswith(("api/", "fhir/")):  # JSON only: an empty object reaches the role checks
                    response = client.post(path, "{}", content_type="application/json")
                else:
                    response = client.post(path, {})
                row[role] = response.status_code
    return observed


# Expected codes, in ROLES order: anon nurse_a nurse_b(other ward) charge(ward A) onc pharm admin.
# Pages send the anonymous to sign in (302), the API answers 401; a role not allowed is 403, an object on a ward
# the caller does not see is 404 (whether or not it exists); 400 is an allowed caller's empty POST. The calendar
# feed needs no session: its secret stands for nurse A. /readyz is 503 here (no worker or beat in the test).
EXPECTED = {
    "GET accounts/login/": "200 200 200 200 200 200 200",
    "POST accounts/login/": "200 200 200 200 200 200 200",
    "GET ": "302 302 302 302 302 302 302",
    "POST ": "302 302 302 302 302 302 302",
    "GET wards/<slug:code>/": "302 200 404 200 200 200 200",
    "POST wards/<slug:code>/": "302 200 404 200 200 200 200",
    "GET courses/": "302 200 200 200 200 200 200",
    "POST courses/": "302 405 405 405 405 405 405",
    "GET courses/new/": "302 403 403 403 200 403 403",
    "POST courses/new/": "302 403 403 403 200 403 403",
    "GET courses/<int:pk>/": "302 200 404 200 200 200 200",
    "POST courses/<int:pk>/": "302 405 405 405 405 405 405",
    "GET wards/<slug:code>/downtime/": "302 200 404 200 200 200 200",
    "POST wards/<slug:code>/downtime/": "302 200 404 200 200 200 200",
    "GET patients/<int:pk>/": "302 200 404 200 200 200 200",
    "POST patients/<int:pk>/": "302 200 404 200 200 200 200",
    "GET patients/<int:pk>/assessment/": "302 302 404 302 302 302 302",
    "POST patients/<int:pk>/assessment/": "302 302 404 302 302 302 302",
    "GET patients/<int:pk>/fluids/": "302 200 404 200 200 200 200",
    "POST patients/<int:pk>/fluids/": "302 400 404 400 400 403 403",
    "GET patients/<int:pk>/labs/": "302 200 404 200 200 200 200",
    "POST patients/<int:pk>/labs/": "302 400 404 400 400 403 403",
    "GET patients/<int:pk>/events/": "302 200 404 200 200 200 200",
    "POST patients/<int:pk>/events/": "302 400 404 400 400 403 403",
    "GET patients/<int:pk>/teaching/": "302 200 404 200 200 200 200",
    "POST patients/<int:pk>/teaching/": "302 400 404 400 400 403 403",
    "GET doses/<int:pk>/": "302 200 404 200 200 200 200",
    "POST doses/<int:pk>/": "302 400 404 400 400 400 400",
    "GET courses/<int:pk>/eligibility/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/eligibility/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/stop/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/stop/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/cycle2/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/cycle2/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/discharge/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/discharge/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/response/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/response/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/adverse-events/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/adverse-events/": "302 400 404 400 400 403 403",
    "GET courses/<int:pk>/adverse-events/<int:event_pk>/entered-in-error/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/adverse-events/<int:event_pk>/entered-in-error/": "302 404 404 404 404 403 403",
    "GET courses/<int:pk>/doses/<int:dose_pk>/override/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/doses/<int:dose_pk>/override/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/doses/<int:dose_pk>/cycle-decision/": "302 405 405 405 405 405 405",
    "POST courses/<int:pk>/doses/<int:dose_pk>/cycle-decision/": "302 403 404 403 400 403 403",
    "GET courses/<int:pk>/forms/<slug:name>/": "302 200 404 200 200 403 403",
    "POST courses/<int:pk>/forms/<slug:name>/": "302 405 405 405 405 405 405",
    "GET courses/<int:pk>/summary/": "302 200 404 200 200 200 200",
    "POST courses/<int:pk>/summary/": "302 405 405 405 405 405 405",
    "GET courses/<int:pk>/summary.pdf": "302 200 404 200 200 200 200",
    "POST courses/<int:pk>/summary.pdf": "302 405 405 405 405 405 405",
    "GET api/v1/courses/<int:pk>/cycle-decisions/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/<int:pk>/cycle-decisions/": "401 403 404 403 400 403 403",
    "GET api/v1/courses/<int:pk>/cycle2/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/<int:pk>/cycle2/": "401 403 404 403 400 403 403",
    "GET api/v1/courses/<int:pk>/discharge/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/<int:pk>/discharge/": "401 403 404 403 400 403 403",
    "GET api/v1/courses/<int:pk>/response-assessments/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/response-assessments/": "401 403 404 403 400 403 403",
    "GET api/v1/courses/<int:pk>/adverse-events/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/adverse-events/": "401 400 404 400 400 403 403",
    "GET api/v1/courses/<int:pk>/signatures/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/signatures/": "401 405 405 405 405 405 405",
    "GET api/v1/patients/<int:pk>/retreatment/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/retreatment/": "401 405 405 405 405 405 405",
    "GET notifications/": "302 200 200 200 200 200 200",
    "POST notifications/": "302 200 200 200 200 200 200",
    "GET notifications/bell/": "302 200 200 200 200 200 200",
    "POST notifications/bell/": "302 200 200 200 200 200 200",
    "GET notifications/preferences/": "302 405 405 405 405 405 405",
    "POST notifications/preferences/": "302 302 302 302 302 302 302",
    "GET notifications/acknowledge-reminders/": "302 405 405 405 405 405 405",
    "POST notifications/acknowledge-reminders/": "302 302 302 302 302 302 302",
    "GET notifications/<int:pk>/acknowledge/": "302 405 405 405 405 405 405",
    "POST notifications/<int:pk>/acknowledge/": "302 404 404 404 404 404 404",
    "GET wards/<slug:code>/assignments/": "302 200 404 200 200 200 200",
    "POST wards/<slug:code>/assignments/": "302 403 404 200 200 403 200",
    "GET api/v1/notifications/": "401 200 200 200 200 200 200",
    "POST api/v1/notifications/": "401 405 405 405 405 405 405",
    "GET api/v1/notifications/<int:pk>/acknowledge/": "401 405 405 405 405 405 405",
    "POST api/v1/notifications/<int:pk>/acknowledge/": "401 404 404 404 404 404 404",
    "GET api/v1/auth/token/": "405 405 405 405 405 405 405",
    "POST api/v1/auth/token/": "400 400 400 400 400 400 400",
    # Logout revokes the API token it is sent with: a session (as here) is no token, so 401 for everyone.
    "GET api/v1/auth/logout/": "401 401 401 401 401 401 401",
    "POST api/v1/auth/logout/": "401 401 401 401 401 401 401",
    "GET api/v1/auth/logout-all/": "401 401 401 401 401 401 401",
    "POST api/v1/auth/logout-all/": "401 401 401 401 401 401 401",
    "GET api/v1/patients/": "401 200 200 200 200 200 200",
    "POST api/v1/patients/": "401 400 400 400 400 403 400",
    "GET api/v1/patients/<int:pk>/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/": "401 405 405 405 405 405 405",
    "GET api/v1/patients/<int:pk>/vitals/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/vitals/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/neuro/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/neuro/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/exam/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/exam/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/weights/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/weights/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/fluids/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/fluids/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/labs/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/labs/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/events/": "401 200 404 200 200 200 200",
    "POST api/v1/patients/<int:pk>/events/": "401 400 404 400 400 403 403",
    "GET api/v1/patients/<int:pk>/events/<int:event_id>/resolve/": "401 405 405 405 405 405 405",
    "POST api/v1/patients/<int:pk>/events/<int:event_id>/resolve/": "401 404 404 404 404 403 403",
    "GET api/v1/observations/<slug:kind>/<int:pk>/entered-in-error/": "401 405 405 405 405 405 405",
    "POST api/v1/observations/<slug:kind>/<int:pk>/entered-in-error/": "401 400 404 400 400 403 403",
    "GET api/v1/courses/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/": "401 403 403 403 400 403 403",
    "GET api/v1/courses/<int:pk>/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/": "401 405 405 405 405 405 405",
    "GET api/v1/courses/<int:pk>/doses/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/doses/": "401 405 405 405 405 405 405",
    "GET api/v1/doses/<int:pk>/": "401 200 404 200 200 200 200",
    "POST api/v1/doses/<int:pk>/": "401 405 405 405 405 405 405",
    "GET api/v1/courses/<int:pk>/eligibility/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/<int:pk>/eligibility/": "401 403 403 403 400 403 403",
    "GET api/v1/courses/<int:pk>/stop/": "401 405 405 405 405 405 405",
    "POST api/v1/courses/<int:pk>/stop/": "401 403 403 403 400 403 403",
    "GET api/v1/doses/<int:pk>/evaluate/": "401 405 405 405 405 405 405",
    "POST api/v1/doses/<int:pk>/evaluate/": "401 200 404 200 200 200 200",
    "GET api/v1/doses/<int:pk>/administer/": "401 405 405 405 405 405 405",
    "POST api/v1/doses/<int:pk>/administer/": "401 400 404 400 403 403 403",
    # The own-session double check: nurses ask and answer (400: the empty body); nurse A, who asked, withdraws it
    # (200; the charge nurse may not: 400), another ward's nurse never sees it (404).
    "GET api/v1/doses/<int:pk>/double-checks/": "401 405 405 405 405 405 405",
    "POST api/v1/doses/<int:pk>/double-checks/": "401 400 404 400 403 403 403",
    "GET api/v1/double-checks/": "401 200 200 200 200 200 200",
    "POST api/v1/double-checks/": "401 405 405 405 405 405 405",
    "GET api/v1/double-checks/<int:pk>/": "401 200 404 200 200 200 200",
    "POST api/v1/double-checks/<int:pk>/": "401 405 405 405 405 405 405",
    "GET api/v1/double-checks/<int:pk>/accept/": "401 405 405 405 405 405 405",
    "POST api/v1/double-checks/<int:pk>/accept/": "401 400 404 400 403 403 403",
    "GET api/v1/double-checks/<int:pk>/refuse/": "401 405 405 405 405 405 405",
    "POST api/v1/double-checks/<int:pk>/refuse/": "401 400 404 400 403 403 403",
    "GET api/v1/double-checks/<int:pk>/cancel/": "401 405 405 405 405 405 405",
    "POST api/v1/double-checks/<int:pk>/cancel/": "401 200 404 400 403 403 403",
    "GET api/v1/doses/<int:pk>/hold/": "401 405 405 405 405 405 405",
    "POST api/v1/doses/<int:pk>/hold/": "401 400 404 400 400 403 403",
    "GET api/v1/doses/<int:pk>/override/": "401 405 405 405 405 405 405",
    "POST api/v1/doses/<int:pk>/override/": "401 403 403 403 400 403 403",
    "GET api/v1/administrations/<int:pk>/entered-in-error/": "401 405 405 405 405 405 405",
    "POST api/v1/administrations/<int:pk>/entered-in-error/": "401 404 404 404 404 403 403",
    "GET api/v1/courses/<int:pk>/fhir/": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/fhir/": "401 405 405 405 405 405 405",
    "GET api/v1/courses/<int:pk>/calendar.ics": "401 200 404 200 200 200 200",
    "POST api/v1/courses/<int:pk>/calendar.ics": "401 405 405 405 405 405 405",
    "GET api/v1/calendar/<str:token>/courses/<int:pk>.ics": "200 200 200 200 200 200 200",
    "POST api/v1/calendar/<str:token>/courses/<int:pk>.ics": "405 405 405 405 405 405 405",
    "GET api/v1/calendar-tokens/": "401 200 200 200 200 200 200",
    "POST api/v1/calendar-tokens/": "401 201 201 201 201 201 201",
    "GET api/v1/calendar-tokens/<int:pk>/revoke/": "401 405 405 405 405 405 405",
    "POST api/v1/calendar-tokens/<int:pk>/revoke/": "401 200 404 404 404 404 404",
    "GET api/schema/": "401 200 200 200 200 200 200",
    "POST api/schema/": "401 405 405 405 405 405 405",
    "GET api/docs/": "401 200 200 200 200 200 200",
    "POST api/docs/": "401 405 405 405 405 405 405",
    # FHIR in: the empty object is not a valid resource (400) for those who may chart; FHIR JSON only.
    "GET fhir/": "401 405 405 405 405 405 405",
    "POST fhir/": "401 400 400 400 400 403 403",
    "GET fhir/Observation": "401 405 405 405 405 405 405",
    "POST fhir/Observation": "401 400 400 400 400 403 403",
    "GET favicon.ico": "301 301 301 301 301 301 301",
    "POST favicon.ico": "301 301 301 301 301 301 301",
    "GET healthz": "200 200 200 200 200 200 200",
    "POST healthz": "200 200 200 200 200 200 200",
    "GET readyz": "503 503 503 503 503 503 503",
    "POST readyz": "503 503 503 503 503 503 503",
    "GET accounts/logout/": "405 405 405 405 405 405 405",
    "POST accounts/logout/": "302 302 302 302 302 302 302",
}


def test_every_route_has_a_row_and_answers_as_the_table_says(world):
    users, ids = world
    observed = observe(users, ids)
    expected = {(key.split(" ", 1)[1], key.split(" ", 1)[0]): codes for key, codes in EXPECTED.items()}
    missing = sorted(f"{method} {route}" for route, method in set(observed) - set(expected))
    assert not missing, f"routes without a row in EXPECTED (add one): {missing}"
    gone = sorted(f"{method} {route}" for route, method in set(expected) - set(observed))
    assert not gone, f"rows for routes that no longer exist: {gone}"
    wrong = []
    for (route, method), row in observed.items():
        got = " ".join(str(row[role]) for role in ROLES)
        if got != expected[(route, method)]:
            wrong.append(f"{method} {route}: expected {expected[(route, method)]}, got {got}")
    assert not wrong, "\n".join(wrong)
    assert all(code != 500 for row in observed.values() for code in row.values())


def test_another_wards_nurse_never_gets_ward_a_objects():
    """The invariant the table must keep: nurse B gets no 2xx on any route naming one of ward A's objects (the
    calendar feed excepted: its secret, not her session, decides)."""
    nurse_b = ROLES.index("nurse_b")
    for key, codes in EXPECTED.items():
        route = key.split(" ", 1)[1]
        if "<" in route and "<str:token>" not in route:
            assert not codes.split()[nurse_b].startswith("2"), key


def test_the_admin_is_for_administrators_only(world):
    """Every registered model's admin list: the anonymous and every other role are sent to the admin's sign-in."""
    users, _ = world
    urls = ["/admin/"] + [f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry]
    for role in ROLES:
        client = Client()
        if role != "anon":
            client.force_login(users[role])
        for url in urls:
            code = client.get(url).status_code
            assert code == (200 if role == "admin" else 302), (role, url, code)
