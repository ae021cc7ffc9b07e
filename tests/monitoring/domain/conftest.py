"""Snapshot builder for the pure rule-engine tests (no Django, no database).

``snapshot(now, **changes)`` returns a patient whose every reading is normal and 10 minutes old, so the consensus
and label-only sets both say ``give``; each test changes only what it is about. Change keys:

* any Reading field of PatientSnapshot: a raw value (wrapped in a Reading 10 min before ``now``), a Reading, or None;
* ``events``: event kinds (active since 1 h ago) or Event objects;
* ``urine_8h``: urine in the 8 h before ``now`` (one period; the shift before has 800 mL);
* ``urine_16h``: one 16 h period ending at ``now`` with this much urine;
* ``diarrhea``: (previous shift, latest shift) diarrhoea in mL;
* any other PatientSnapshot field, as is.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from decimal import Decimal

import pytest

from monitoring.domain.snapshot import Event, FluidPeriod, PatientSnapshot, Reading
from tests.charting import EXPLICIT_NEURO, NORMAL_EXAM

NORMAL = {
    "sbp": 112,
    "dbp": 70,
    "heart_rate": 88,
    "resp_rate": 16,
    "spo2": 97,
    "temp_c": Decimal("37.2"),
    "rhythm": "sinus",
    "o2_lpm": 0,  # room air, charted (INV-EXPLICIT)
    "phenylephrine_mcg_kg_min": 0,
    "other_pressor": "none",
    "rass": 0,
    "confusion": "none",
    **EXPLICIT_NEURO,
    **NORMAL_EXAM,  # a normal bedside exam
    "weight_kg": Decimal("80.0"),
    "creatinine_mg_dl": Decimal("1.0"),
    "platelets_k_ul": 210,
    "bilirubin_mg_dl": Decimal("0.8"),
    "bicarbonate_mmol_l": 24,
    "ast_u_l": 30,
    "alt_u_l": 28,
    "potassium_mmol_l": Decimal("4.1"),
}
READINGS = {f.name for f in fields(PatientSnapshot) if f.type == "Reading | None"}


def build_snapshot(now, **changes) -> PatientSnapshot:
    at = now - timedelta(minutes=10)
    values: dict[str, object] = {name: Reading(value, at, f"{name}:1") for name, value in NORMAL.items()}
    values["previous_rhythm"] = Reading("sinus", now - timedelta(hours=2), "vitals:0")
    values["baseline_weight_kg"] = Decimal("80.0")
    shift = timedelta(hours=8)
    values["urine_periods"] = (
        FluidPeriod(now - 2 * shift, now - shift, 800, 0, "fluids:1"),
        FluidPeriod(now - shift, now, 800, 0, "fluids:2"),
    )
    for key, value in changes.items():
        if key in READINGS:
            values[key] = value if value is None or isinstance(value, Reading) else Reading(value, at, f"{key}:2")
        elif key == "events":
            values["events"] = tuple(
                e if isinstance(e, Event) else Event(e, now - timedelta(hours=1), f"event:{e}") for e in value
            )
        elif key == "urine_8h":
            values["urine_periods"] = (
                FluidPeriod(now - 2 * shift, now - shift, 800, 0, "fluids:1"),
                FluidPeriod(now - shift, now, value, 0, "fluids:2"),
            )
        elif key == "urine_16h":
            values["urine_periods"] = (FluidPeriod(now - 2 * shift, now, value, 0, "fluids:16h"),)
        elif key == "diarrhea":
            previous, latest = value
            values["urine_periods"] = (
                FluidPeriod(now - 2 * shift, now - shift, 800, previous, "fluids:1"),
                FluidPeriod(now - shift, now, 800, latest, "fluids:2"),
            )
        else:
            values[key] = value
    return PatientSnapshot(**values)


@pytest.fixture(scope="session")
def snapshot():
    """The builder (session-scoped so hypothesis tests may use it)."""
    return build_snapshot
