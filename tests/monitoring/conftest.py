"""Helpers for the monitoring data-layer tests: a valid payload per observation kind and a recorder of publishes."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.charting import NORMAL_EXAM
from tests.conftest import NOW

KINDS = ("vitals", "neuro", "exam", "weights", "fluids", "labs", "events")

# A normal, complete observation of each kind (JSON-shaped; the services accept the same values).
VALID = {
    "vitals": {"sbp": 120, "dbp": 70, "heart_rate": 88, "resp_rate": 16, "spo2": 97, "temp_c": "37.2"},
    "neuro": {"rass": 0, "confusion": "none"},
    "exam": dict(NORMAL_EXAM),
    "weights": {"weight_kg": "80.5"},
    "fluids": {"urine_ml": 900, "intake_ml": 1500, "diarrhea_ml": 0},
    "labs": {
        "creatinine_mg_dl": "1.10",
        "platelets_k_ul": 210,
        "bilirubin_mg_dl": "0.8",
        "bicarbonate_mmol_l": 24,
        "ast_u_l": 30,
        "alt_u_l": 28,
        "potassium_mmol_l": "4.1",
    },
    "events": {"kind": "infection"},
}


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def payload(kind: str, at=None, /, **changes) -> dict:
    """A valid POST body for `kind`, observed at `at` (default 10 minutes before NOW)."""
    at = at or NOW - timedelta(minutes=10)
    body = dict(VALID[kind])
    if kind == "fluids":
        body.update(period_start=iso(at - timedelta(hours=8)), period_end=iso(at))
    else:
        body["recorded_at"] = iso(at)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


TEXT_KEYS = ("kind", "confusion", "rhythm", "note", "rales", "other_pressor", "confirm_reason")


def service_values(kind: str, at=None, /, **changes) -> dict:
    """The same observation as keyword arguments for the kind's service (Python values)."""
    from datetime import datetime

    values = {}
    for key, value in payload(kind, at, **changes).items():
        if key in ("recorded_at", "period_start", "period_end"):
            values[key] = datetime.fromisoformat(value) if isinstance(value, str) else value
        elif isinstance(value, str) and key not in (
            "kind",
            "confusion",
            "rhythm",
            "note",
            "rales",
            "other_pressor",
            "confirm_reason",
        ):
            values[key] = Decimal(value)
        else:
            values[key] = value
    return values


def record(kind: str, patient, by, /, *, at=None, now=NOW, **changes):
    """Record one observation through its service."""
    from monitoring import services

    service = {
        "vitals": services.vitals_record,
        "neuro": services.neuro_record,
        "exam": services.exam_record,
        "weights": services.weight_record,
        "fluids": services.fluids_record,
        "labs": services.labs_record,
        "events": services.event_record,
    }[kind]
    return service(patient=patient, **service_values(kind, at, **changes), by=by, now=now)


@pytest.fixture
def frozen():
    """The wall clock stopped at NOW (the API reads timezone.now())."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def published(monkeypatch):
    """Tasks the on-commit callbacks publish (the broker is not touched: il2ward.tasking.send_task_safely recorded)."""
    sent = []
    monkeypatch.setattr("il2ward.tasking.send_task_safely", lambda name, *args: sent.append((name, *args)) or True)
    return sent


@pytest.fixture
def fast_password_hashing(settings):
    """The personas' passwords hashed with a fast hasher (PBKDF2 makes each persona cost ~0.3 s). Not autouse here,
    so the pure domain tests below this directory are untouched; each test module here opts in."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
