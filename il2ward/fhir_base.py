"""The FHIR version this server speaks, and the resources every FHIR endpoint may answer with (no Django).

One version, declared the same way everywhere: the export Bundle's meta tag, the `fhirVersion` parameter of the
content type (MEDIA_TYPE) and the README. The tests validate with fhir.resources' R4B models (4.3.0; the package ships
no R4 one): the resources and elements the export uses are unchanged between R4 and R4B.
"""

import html

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"

ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 406: "not-supported", 429: "throttled"}


def operation_outcome(status_code: int, text: str) -> dict:
    """An error at a FHIR endpoint, as FHIR: one issue, its code from the HTTP status."""
    code = ISSUE_CODES.get(status_code, "invalid" if status_code < 500 else "exception")
    return {
        "resourceType": "OperationOutcome",
        "text": narrative(text),
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def narrative(text: str) -> dict:
    """A resource's human-readable summary (FHIR Narrative, status `generated`): escaped text in one XHTML div."""
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>'}
