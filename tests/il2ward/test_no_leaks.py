"""No oracles, no secrets in logs: feed secrets and query strings redacted from Django's and gunicorn's log lines;
the MRN check does not say whose or where a hidden patient is, and such a probe is in the security log."""

import io
import logging
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from il2ward import feeds
from il2ward.logredact import GunicornLogger, RedactFilter, redact
from il2ward.models import Patient, SecurityEvent
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /api/v1/calendar/s3cr3t-Tok_x/courses/4.ics", "GET /api/v1/calendar/[redacted]/courses/4.ics"),
        ("GET /admin/il2ward/patient/?q=Pat+Alpha HTTP/1.1", "GET /admin/il2ward/patient/?[redacted] HTTP/1.1"),
        ('"https://ward.example.org/admin/?q=Smith&o=1"', '"https://ward.example.org/admin/?[redacted]"'),
        ("GET /api/v1/patients/?ward=onc-a HTTP/1.1", "GET /api/v1/patients/?[redacted] HTTP/1.1"),
        ("GET /wards/onc-a/ HTTP/1.1", "GET /wards/onc-a/ HTTP/1.1"),  # nothing to hide: unchanged
        ("Is the broker up?", "Is the broker up?"),
    ],
)  # fmt: skip
def test_redact(line, expected):
    assert redact(line) == expected


@pytest.fixture
def console():
    """What the configured console handler (with the redacting filter) writes."""
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactFilter) for f in h.filters))
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        yield handler.stream
    finally:
        handler.stream = stream


def test_a_feed_secret_never_reaches_the_warning_log(client, console, nurse_a):
    _, secret = feeds.calendar_token_create(user=nurse_a, now=NOW)
    assert client.get(f"/api/v1/calendar/{secret}/courses/999999.ics?x=Pat+Alpha").status_code == 404
    written = console.getvalue()
    assert "Not Found" in written and "/api/v1/calendar/[redacted]/courses/999999.ics" in written
    assert secret not in written and "Pat+Alpha" not in written


def test_gunicorns_access_log_is_redacted():
    from gunicorn.config import Config

    logger = GunicornLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/admin/il2ward/patient/?q=Pat+Alpha",
        "PATH_INFO": "/api/v1/calendar/s3cr3t/courses/1.ics",
        "QUERY_STRING": "q=Pat+Alpha",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": "https://ward/admin/il2ward/patient/?q=Pat+Alpha",
        "REMOTE_ADDR": "10.0.0.1",
    }
    resp = SimpleNamespace(status="200 OK", headers=[], sent=12)
    req = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    atoms = logger.atoms(resp, req, environ, timedelta(milliseconds=5))
    line = logger.cfg.access_log_format % atoms + " " + atoms["U"] + " " + atoms["q"] + " " + atoms["{referer}i"]
    assert "Pat+Alpha" not in line and "s3cr3t" not in line
    assert "GET /admin/il2ward/patient/?[redacted] HTTP/1.1" in line


# --- the MRN check --------------------------------------------------------------------------------------------------


def _create(api, user, mrn, ward="onc-a"):
    body = {"mrn": mrn, "name": "Someone New", "birth_date": "1970-01-01", "ward": ward}
    return api.as_user(user).post("/api/v1/patients/", body, format="json")


def test_an_mrn_on_another_ward_answers_exactly_like_one_on_hers(api, nurse_a, patient_a, patient_b):
    hidden, visible = _create(api, nurse_a, patient_b.mrn), _create(api, nurse_a, patient_a.mrn)
    assert hidden.status_code == visible.status_code == 409
    assert hidden.json() == visible.json() == {"code": "duplicate_mrn", "detail": hidden.json()["detail"]}
    for text in (patient_b.name, "onc-b", str(patient_b.pk), "Berlin"):
        assert text not in hidden.content.decode()
    assert Patient.objects.filter(mrn=patient_b.mrn).get() == patient_b  # nothing changed


def test_a_hidden_mrn_conflict_is_in_the_security_log_without_the_mrn(api, nurse_a, patient_a, patient_b):
    _create(api, nurse_a, patient_a.mrn)  # her own ward's patient: an ordinary duplicate, not a probe
    assert not SecurityEvent.objects.filter(kind="mrn_conflict").exists()
    _create(api, nurse_a, patient_b.mrn)
    event = SecurityEvent.objects.get(kind="mrn_conflict")
    assert (event.user, event.detail) == (nurse_a, {"patient": patient_b.pk})
    assert patient_b.mrn not in str(event.detail) and patient_b.name not in str(event.detail)


def test_a_new_mrn_is_still_created(api, nurse_a, ward_a):
    response = _create(api, nurse_a, "A-NEW-1")
    assert response.status_code == 201
    assert Patient.objects.get(mrn="A-NEW-1").birth_date == date(1970, 1, 1)
