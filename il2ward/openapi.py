"""The published OpenAPI schema's shared parts: the error bodies, and a post-processing hook that gives every
operation a verb-like id, a summary, its error responses and the 409 codes it can return.

The hook reads one table (OPERATIONS) rather than decorating ~50 views one by one, so the whole contract's naming and
conflict codes can be read (and reviewed) in one place; a test fails when an operation is missing from it.
"""

API_VERSION = "1.6.0"  # CHANGELOG.md: one entry per contract change


ERROR_COMPONENTS = {
    "ErrorsBody": {
        "type": "object",
        "description": "400: bad input, nothing stored. Each key names a field (or `body`, `non_field_errors`); "
        "a field of a nested object or list maps its keys (or positions) to their messages.",
        "properties": {
            "errors": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
                },
            }
        },
        "required": ["errors"],
    },
    "ConflictBody": {
        "type": "object",
        "description": "409: the request is valid but the state forbids it; `code` is stable, `detail` is for people.",
        "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["code", "detail"],
    },
    "DetailBody": {
        "type": "object",
        "description": "401 / 403 / 404 / 415 / 429: a sentence for people.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
}


# operation id as drf-spectacular derives it -> (published id, summary, 409 codes)
ADMINISTER_CODES = (
    "already_charted",
    "course_not_active",
    "eligibility_not_attested",
    "outside_window",
    "course_discontinued",
    "stop_criteria_met",
    "hold_criteria_met",
    "assessment_incomplete",
    "preparation_expired",
    "double_check_mismatch",
)
OPEN_DOSE_CODES = ("already_charted", "course_not_active")
# The own-session double check: the request is refused as a give would be (but the dose is not compared yet); the
# accept adds the check's own state.
DOUBLE_CHECK_REQUEST_CODES = (*(c for c in ADMINISTER_CODES if c != "double_check_mismatch"), "double_check_pending")
DOUBLE_CHECK_CLOSED_CODES = ("double_check_closed", "double_check_expired")
DOUBLE_CHECK_ACCEPT_CODES = (*DOUBLE_CHECK_CLOSED_CODES, *ADMINISTER_CODES)
OBSERVATIONS = {
    "vitals": "vital signs",
    "neuro": "a neuro check",
    "exam": "a bedside exam",
    "weights": "a weight",
    "fluids": "a fluid balance",
    "labs": "lab results",
    "events": "a clinical event",
}

OPERATIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # FHIR in (inbound/): FHIR JSON bodies, OperationOutcome answers; they name their own ids.
    "fhir_observation_create": ("fhir_observation_create", "Receive one FHIR Observation (vital signs or lab)", ()),
    "fhir_transaction": ("fhir_transaction", "Receive a transaction Bundle of Observations: all or none", ()),
    "v1_auth_token_create": ("auth_token_obtain", "Log in: exchange a username and password for an API token", ()),
    "v1_auth_logout_create": ("auth_logout", "Log out: revoke the API token this request is sent with", ()),
    "v1_auth_logout_all_create": ("auth_logout_all", "Log out everywhere: revoke every API token of the caller", ()),
    "v1_patients_list": ("patients_list", "List the patients on the caller's wards", ()),
    "v1_patients_create": ("patients_create", "Register a patient", ("duplicate_mrn",)),
    "v1_patients_retrieve": ("patient_get", "Read one patient", ()),
    "v1_patients_retreatment_retrieve": ("patient_retreatment_check", "May a new course start (SCH-RETREAT)?", ()),
    "v1_patients_events_resolve_create": (
        "patient_event_resolve",
        "Mark a clinical event resolved",
        ("already_resolved", "entered_in_error"),
    ),
    "v1_observations_entered_in_error_create": (
        "observation_enter_in_error",
        "Mark an observation entered in error (e-signed)",
        ("already_entered_in_error",),
    ),
    "v1_courses_create": (
        "courses_create",
        "Start a course (oncologist)",
        ("active_course_exists", "retreatment_blocked"),
    ),
    "v1_courses_retrieve": ("course_get", "Read a course: dose, preparation, eligibility, cycles, counts", ()),
    "v1_courses_doses_list": ("course_doses_list", "List the course's dose slots", ()),
    "v1_courses_eligibility_create": (
        "course_eligibility_attest",
        "Attest eligibility (HOLD-RULES §2, e-signed)",
        (
            "already_attested",
            "course_not_active",
            "retreatment_blocked",
            "baseline_creatinine_missing",
            "baseline_creatinine_high",
        ),
    ),
    "v1_courses_stop_create": ("course_stop", "Stop the course (e-signed)", ("course_not_active",)),
    "v1_courses_cycle_decisions_create": (
        "course_cycle_decide",
        "Continue or stop the cycle after a stop recommendation (e-signed)",
        ("no_stop_recommendation", "course_not_active", "course_discontinued", "already_decided"),
    ),
    "v1_courses_cycle2_create": (
        "course_cycle2_move",
        "Move cycle 2 (SCH-CYCLE2, e-signed)",
        ("course_not_active", "calendar_not_ready", "cycle2_started"),
    ),
    "v1_courses_discharge_create": ("course_discharge", "Record the discharge date (e-signed)", ()),
    "v1_courses_response_assessments_list": ("course_response_assessments_list", "List response assessments", ()),
    "v1_courses_response_assessments_create": (
        "course_response_assess",
        "Record a response assessment (e-signed)",
        ("course_not_finished",),
    ),
    "v1_courses_adverse_events_list": ("course_adverse_events_list", "List the course's adverse events", ()),
    "v1_courses_adverse_events_create": ("course_adverse_event_record", "Record an adverse event (CTCAE)", ()),
    "v1_courses_signatures_list": ("course_signatures_list", "List the course's e-signatures and their state", ()),
    "course_fhir_export": ("course_fhir_export", "The course as a FHIR R4 Bundle", ()),
    "course_calendar": ("course_calendar", "The course's dose slots as an iCalendar file", ()),
    "calendar_feed": ("calendar_feed", "A course's dose calendar through a secret subscription link", ()),
    "calendar_tokens_list": ("calendar_tokens_list", "List the caller's calendar subscription links", ()),
    "calendar_tokens_create": ("calendar_tokens_create", "Create a calendar subscription link", ()),
    "calendar_tokens_revoke": (
        "calendar_token_revoke",
        "Revoke a calendar subscription link",
        ("token_already_revoked",),
    ),
    "v1_doses_retrieve": ("dose_get", "Read a dose: status, evaluation, administration, hold, overrides", ()),
    "v1_doses_evaluate_create": ("dose_evaluate", "Evaluate the dose's hold rules now (stored)", ()),
    "v1_doses_administer_create": (
        "dose_administer",
        "Chart the dose as given, with the blind second-nurse check",
        ADMINISTER_CODES,
    ),
    "v1_doses_hold_create": ("dose_hold", "Hold the dose", OPEN_DOSE_CODES),
    "v1_doses_double_checks_create": (
        "dose_double_check_request",
        "Chart the give and ask another nurse's blind check from her own session (a pending check)",
        DOUBLE_CHECK_REQUEST_CODES,
    ),
    "v1_double_checks_list": ("double_checks_list", "List the pending double checks the caller may answer", ()),
    "v1_double_checks_retrieve": ("double_check_get", "Read a double check: the order, never the computed dose", ()),
    "v1_double_checks_accept_create": (
        "double_check_accept",
        "Accept a double check with the dose calculated independently: charts the dose when it matches",
        DOUBLE_CHECK_ACCEPT_CODES,
    ),
    "v1_double_checks_refuse_create": (
        "double_check_refuse",
        "Refuse a double check, with a reason",
        DOUBLE_CHECK_CLOSED_CODES,
    ),
    "v1_double_checks_cancel_create": (
        "double_check_cancel",
        "Withdraw one's own pending double check",
        ("double_check_closed",),
    ),
    "v1_doses_override_create": (
        "dose_override",
        "Override a hold decision for this slot (oncologist, e-signed)",
        (*OPEN_DOSE_CODES, "course_discontinued", "stop_criteria_met", "override_not_allowed", "already_overridden"),
    ),
    "v1_administrations_entered_in_error_create": (
        "administration_enter_in_error",
        "Mark an administration entered in error (e-signed)",
        ("already_entered_in_error",),
    ),
    "v1_notifications_list": ("notifications_list", "List the caller's notifications", ()),
    "v1_notifications_acknowledge_create": ("notification_acknowledge", "Acknowledge a notification", ()),
}
for _kind, _what in OBSERVATIONS.items():
    OPERATIONS[f"v1_patients_{_kind}_list"] = (f"patient_{_kind}_list", f"List {_kind}, newest first", ())
    OPERATIONS[f"v1_patients_{_kind}_create"] = (f"patient_{_kind}_record", f"Record {_what}", ())

# OpenAPI links (what a response's ids feed into), for stateful clients and schemathesis' stateful phase:
# (published id, status) → {link name: (target operation, {parameter: runtime expression}[, request body])}.
# They chain a patient → a course → its doses → evaluate / administer / hold and back to the dose, so a stateful
# client walks the ward's work as a nurse or oncologist does. A body in a link gives only the ids it carries; the
# client fills in the rest.
_ID = "$response.body#/id"
_FIRST_ID = "$response.body#/0/id"
_SAME = "$request.path.id"  # the operation's own {id}: an evaluation or a hold answers for the dose in the path
_DOSE_WORK = {
    "dose": ("dose_get", {"id": _SAME}),
    "evaluate": ("dose_evaluate", {"id": _SAME}),
    "administer": ("dose_administer", {"id": _SAME}),
    "hold": ("dose_hold", {"id": _SAME}),
}
LINKS: dict[tuple[str, str], dict[str, tuple]] = {
    ("patients_create", "201"): {
        "patient": ("patient_get", {"id": _ID}),
        "vitals": ("patient_vitals_record", {"id": _ID}),
        "weights": ("patient_weights_record", {"id": _ID}),
        "retreatment": ("patient_retreatment_check", {"id": _ID}),
        "course": ("courses_create", {}, {"patient": _ID}),
    },
    ("patient_get", "200"): {"course": ("courses_create", {}, {"patient": _ID})},
    ("courses_create", "201"): {
        "course": ("course_get", {"id": _ID}),
        "doses": ("course_doses_list", {"id": _ID}),
        "fhir": ("course_fhir_export", {"id": _ID}),
        "calendar": ("course_calendar", {"id": _ID}),
        "calendar_link": ("calendar_tokens_create", {}, {"course": _ID}),
    },
    ("course_get", "200"): {
        "doses": ("course_doses_list", {"id": _ID}),
        "signatures": ("course_signatures_list", {"id": _ID}),
    },
    ("course_doses_list", "200"): {
        "dose": ("dose_get", {"id": _FIRST_ID}),
        "evaluate": ("dose_evaluate", {"id": _FIRST_ID}),
        "administer": ("dose_administer", {"id": _FIRST_ID}),
        "hold": ("dose_hold", {"id": _FIRST_ID}),
    },
    ("dose_get", "200"): {
        "course": ("course_get", {"id": "$response.body#/course"}),
        "course_doses": ("course_doses_list", {"id": "$response.body#/course"}),
        **{name: link for name, link in _DOSE_WORK.items() if name != "dose"},
    },
    ("dose_evaluate", "200"): {name: link for name, link in _DOSE_WORK.items() if name != "evaluate"},
    ("dose_hold", "200"): {"dose": _DOSE_WORK["dose"]},
    ("dose_double_check_request", "201"): {
        "check": ("double_check_get", {"id": _ID}),
        "accept": ("double_check_accept", {"id": _ID}),
        "refuse": ("double_check_refuse", {"id": _ID}),
        "cancel": ("double_check_cancel", {"id": _ID}),
    },
    ("dose_administer", "201"): {
        "correct": ("administration_enter_in_error", {"id": "$response.body#/administration/id"}),
        "dose": _DOSE_WORK["dose"],
    },
    ("patient_vitals_record", "201"): {"correct": ("observation_enter_in_error", {"kind": "vitals", "id": _ID})},
    ("calendar_tokens_create", "201"): {"revoke": ("calendar_token_revoke", {"id": _ID})},
}

ERROR_DESCRIPTIONS = {
    "400": "Bad input; nothing is stored. `errors` names each field.",
    "401": "No session or token, or an invalid, expired or revoked token.",
    "403": "The caller's role may not do this.",
    "404": "Not found, or not visible to the caller (a nurse sees only patients on her wards).",
    "413": "The body is over the size limit (2.5 MB); nothing is stored. `errors.body` says so.",
    "415": "The request body is not `application/json`.",
    "429": "The username is locked after repeated wrong passwords (django-axes).",
    "503": "The database is unavailable: retry after `Retry-After` seconds. Nothing was stored.",
}
BODIES = {"400": "ErrorsBody", "409": "ConflictBody", "413": "ErrorsBody"}
SIGNED = {"password", "verifier_password"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(code: str) -> dict:
    content = {"application/json": {"schema": _ref(BODIES.get(code, "DetailBody"))}}
    return {"description": ERROR_DESCRIPTIONS[code], "content": content}


def _link(target: str, parameters: dict, body: dict | None = None) -> dict:
    link = {"operationId": target, "parameters": parameters}
    if body is not None:
        link["requestBody"] = body
    return link


def _request_fields(operation: dict, components: dict) -> set[str]:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    name = body.get("$ref", "").rsplit("/", 1)[-1]
    return set(components.get(name, {}).get("properties", {}))


def postprocess(result, generator, request, public):
    """Ids, summaries, the shared error bodies and each operation's error responses (see the module's docstring)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    for name, body in ERROR_COMPONENTS.items():
        components.setdefault(name, body)
    for path, methods in result.get("paths", {}).items():
        for operation in methods.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            new_id, summary, conflicts = OPERATIONS.get(operation["operationId"], (operation["operationId"], "", ()))
            operation["operationId"] = new_id
            operation.setdefault("summary", summary)
            responses = operation.setdefault("responses", {})
            # No security requirement (auth=[]) is public: say so explicitly, so no tool applies a default.
            is_public = not operation.get("security") or {} in operation["security"]
            if is_public:
                operation["security"] = []
            params = operation.get("parameters", [])
            wanted = []
            if "requestBody" in operation or any(p.get("in") == "query" for p in params):
                wanted.append("400")
            if "requestBody" in operation:
                wanted += ["413", "415"]
            if not is_public:
                wanted += ["401", "403"]
            if any(p.get("in") == "path" for p in params):
                wanted.append("404")
            if new_id == "auth_token_obtain" or SIGNED & _request_fields(operation, components):
                wanted.append("429")
            if "fhir" not in path:  # FHIR endpoints answer errors as OperationOutcome, not these bodies
                wanted.append("503")  # any operation, during a database outage (il2ward.middleware)
            for code in wanted:
                responses.setdefault(code, _error(code))
            if "503" in responses and "headers" not in responses["503"]:
                responses["503"]["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
                }
            for (source, status), links in LINKS.items():
                if source == new_id and status in responses:
                    responses[status]["links"] = {name: _link(*link) for name, link in links.items()}
            if conflicts:
                responses["409"] = {
                    "description": "The state forbids it. `code` is one of: "
                    + ", ".join(f"`{c}`" for c in conflicts)
                    + ".",
                    "content": {"application/json": {"schema": _ref("ConflictBody")}},
                }
                operation["x-conflict-codes"] = list(conflicts)
    return result
