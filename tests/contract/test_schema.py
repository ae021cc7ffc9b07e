"""The published schema itself: valid OpenAPI 3, JSON-only bodies, every operation named, summarised and given its
error responses; login public; the version the CHANGELOG names."""

import pytest

from il2ward.openapi import API_VERSION, LINKS, OPERATIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api, nurse_a):
    response = api.as_user(nurse_a).get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_served_schema_is_valid_openapi(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)  # raises on an invalid document
    assert schema["info"]["version"] == API_VERSION


def test_request_bodies_are_json_only(schema):
    for path, method, operation in operations(schema):
        if "requestBody" in operation:
            # FHIR in publishes FHIR's own media type (it reads plain JSON too); everything else is JSON only.
            wanted = ["application/fhir+json"] if path.startswith("/fhir/") else ["application/json"]
            assert list(operation["requestBody"]["content"]) == wanted, (method, path)


def test_every_operation_has_a_verb_id_a_summary_and_its_errors(schema):
    published = {new for new, _, _ in OPERATIONS.values()}
    for path, method, operation in operations(schema):
        where = (method, path, operation["operationId"])
        assert operation["operationId"] in published, where
        assert not operation["operationId"].startswith("v1_"), where
        assert operation.get("summary"), where
        codes = set(operation["responses"])
        if "{" in path:
            assert "404" in codes, where
        if operation.get("security") != []:
            assert {"401", "403"} <= codes, where
        if "requestBody" in operation:
            assert "400" in codes, where


def test_conflict_codes_are_listed_on_their_operations(schema):
    ops = {op["operationId"]: op for _, _, op in operations(schema)}
    administer = ops["dose_administer"]
    assert "double_check_mismatch" in administer["x-conflict-codes"]
    assert "`hold_criteria_met`" in administer["responses"]["409"]["description"]
    assert ops["patients_create"]["x-conflict-codes"] == ["duplicate_mrn"]
    assert administer["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ConflictBody")
    assert "409" not in ops["dose_get"]["responses"]  # a read has no conflict to document


def test_login_is_public_and_split_into_request_and_response(schema):
    login = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert login["security"] == []
    components = schema["components"]["schemas"]
    request = login["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    response = login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(components[request]["properties"]) == {"username", "password", "client"}
    assert set(components[request]["required"]) == {"username", "password"}  # older clients send the same body
    assert set(components[response]["properties"]) == {"token", "expiry", "client"}
    assert components[response]["properties"]["expiry"]["format"] == "date-time"


def test_logout_needs_the_token_and_takes_no_body(schema):
    for path in ("/api/v1/auth/logout/", "/api/v1/auth/logout-all/"):
        logout = schema["paths"][path]["post"]
        assert "requestBody" not in logout and "204" in logout["responses"], path
        assert logout["security"] != [] and {"401", "403"} <= set(logout["responses"]), path


def test_nullability_lists_and_filters_are_as_served(schema):
    components = schema["components"]["schemas"]
    vitals = components["VitalsOut"]["properties"]
    assert vitals["entered_in_error_at"]["nullable"] and vitals["entered_in_error_by"]["nullable"]
    doses = schema["paths"]["/api/v1/courses/{id}/doses/"]["get"]["responses"]["200"]["content"]
    assert doses["application/json"]["schema"]["type"] == "array"
    patients = schema["paths"]["/api/v1/patients/"]["get"]
    assert "ward" in {p["name"] for p in patients["parameters"]}
    assert "webcal_url" in components["CalendarTokenCreated"]["properties"]


def test_every_link_points_at_a_published_operation(schema):
    ids = {op["operationId"] for _, _, op in operations(schema)}
    links = [
        (op["operationId"], link)
        for _, _, op in operations(schema)
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) == sum(len(declared) for declared in LINKS.values())  # each declared link is published
    for source, link in links:
        assert link["operationId"] in ids, (source, link)


def test_each_link_fills_parameters_and_body_fields_its_target_has(schema):
    """A link naming a parameter or body field the target does not take would be silently ignored by clients."""
    by_id = {op["operationId"]: op for _, _, op in operations(schema)}
    components = schema["components"]["schemas"]
    checked = 0
    for _, _, op in operations(schema):
        for response in op["responses"].values():
            for name, link in response.get("links", {}).items():
                target = by_id[link["operationId"]]
                assert set(link["parameters"]) <= {p["name"] for p in target.get("parameters", [])}, (name, link)
                if "requestBody" in link:
                    body = target["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                    assert set(link["requestBody"]) <= set(components[body]["properties"]), (name, link)
                checked += 1
    assert checked > 25


def test_the_links_chain_a_patient_to_its_courses_doses_and_their_charting(schema):
    """From a new patient, following links alone reaches a course, its doses, and evaluate / administer / hold, and
    from each of those back to the dose (the stateful phase's walk)."""
    edges: dict[str, set[str]] = {}
    for _, _, op in operations(schema):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                edges.setdefault(op["operationId"], set()).add(link["operationId"])
    reached, frontier = {"patients_create"}, ["patients_create"]
    while frontier:
        for target in edges.get(frontier.pop(), ()):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    wanted = {"courses_create", "course_get", "course_doses_list", "dose_get", "dose_evaluate", "dose_administer",
              "dose_hold", "administration_enter_in_error"}  # fmt: skip
    assert wanted <= reached, wanted - reached
    for step in ("dose_evaluate", "dose_hold", "dose_administer"):
        assert "dose_get" in edges[step], step
    assert "course_get" not in edges.get("dose_hold", set())  # the walk above can fail: not every edge exists


def test_oversized_bodies_and_database_outages_are_documented(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        if "fhir" not in path:
            assert "Retry-After" in responses["503"]["headers"], (method, path)


def test_the_administer_409_codes_published_are_the_ones_charting_returns():
    """The schema's list lives in il2ward (which may not import scheduling); this keeps it equal to the domain's."""
    from il2ward.openapi import ADMINISTER_CODES
    from scheduling.domain.charting import REFUSAL_ORDER

    assert ADMINISTER_CODES == REFUSAL_ORDER
