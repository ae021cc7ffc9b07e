"""Helpers for the hold-rules consequences: a course ready to chart, a patient's data charted through the
monitoring services, a frozen clock, and counters of what a refusal must leave untouched.

The ward clock: NOW = 2027-03-10 12:00 UTC (06:00 in Chicago, ward A). A `ready` course was created two hours
earlier, its eligibility is attested, and its first dose is due at NOW + 30 min (window 11:30–13:30 UTC).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from il2ward.models import AuditEvent, Notification, Signature
from scheduling.models import Administration, Dose, DoseEvaluation, Hold, Override
from tests.charting import NORMAL_EXAM, NORMAL_NEURO, NORMAL_VITALS
from tests.conftest import NOW, PASSWORD

FIRST = NOW + timedelta(minutes=30)
DATA_AT = NOW - timedelta(minutes=10)
ELIGIBILITY = {
    key: True
    for key in (
        "cardiac_stress_test_normal",
        "pulmonary_function_normal",
        "no_active_infection",
        "no_organ_allograft",
        "no_hypersensitivity",
        "pregnancy_test_negative_or_na",
        "baseline_labs_done",
        "antihypertensives_stopped",
    )
}

NORMAL = {
    "vitals": dict(NORMAL_VITALS),
    "neuro": dict(NORMAL_NEURO),
    "exam": dict(NORMAL_EXAM),
    "weight": {"weight_kg": Decimal("80.5")},
    "labs": {
        "creatinine_mg_dl": Decimal("1.10"),
        "platelets_k_ul": Decimal("210"),
        "bilirubin_mg_dl": Decimal("0.8"),
        "bicarbonate_mmol_l": Decimal("24"),
        "ast_u_l": 30,
        "alt_u_l": 28,
        "potassium_mmol_l": Decimal("4.1"),
    },
    "fluids": {"urine_ml": 900, "intake_ml": 1500, "diarrhea_ml": 0},
}


def chart(patient, by, *, at=DATA_AT, now=NOW, skip=(), **changes) -> dict:
    """Chart a complete, normal pre-dose assessment through the monitoring services, changed by `changes`
    (e.g. vitals={"sbp": 85}); kinds in `skip` are left out. Returns the rows by kind."""
    from monitoring import services

    recorders = {
        "vitals": lambda v: services.vitals_record(patient=patient, recorded_at=at, by=by, now=now, **v),
        "neuro": lambda v: services.neuro_record(patient=patient, recorded_at=at, by=by, now=now, **v),
        "exam": lambda v: services.exam_record(patient=patient, recorded_at=at, by=by, now=now, **v),
        "weight": lambda v: services.weight_record(patient=patient, recorded_at=at, by=by, now=now, **v),
        "labs": lambda v: services.labs_record(patient=patient, recorded_at=at, by=by, now=now, **v),
        "fluids": lambda v: services.fluids_record(
            patient=patient, period_start=at - timedelta(hours=8), period_end=at, by=by, now=now, **v
        ),
    }
    return {
        kind: record({**NORMAL[kind], **changes.get(kind, {})})
        for kind, record in recorders.items()
        if kind not in skip
    }


def attest(course, oncologist, *, now=NOW):
    from scheduling.services import course_attest_eligibility

    return course_attest_eligibility(
        course_id=course.pk, items=dict(ELIGIBILITY), password=PASSWORD, by=oncologist, now=now
    )


def first_dose(course) -> Dose:
    return Dose.objects.get(course=course, cycle=1, number=1)


def stored() -> dict[str, int]:
    """Counts of everything a refused request must leave as it was (evaluations are counted apart)."""
    return {
        "administrations": Administration.objects.count(),
        "holds": Hold.objects.count(),
        "overrides": Override.objects.count(),
        "signatures": Signature.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def evaluations() -> int:
    return DoseEvaluation.objects.count()


def notifications(kind: str) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


@pytest.fixture
def frozen():
    """The wall clock stopped at NOW (the API reads timezone.now())."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ready(patient_a, oncologist, nurse_a, nurse_a2, make_course):
    """Patient A's course: created at NOW − 2 h, first dose due at NOW + 30 min, baseline labs charted, eligibility
    attested. No pre-dose data yet beyond the labs (tests chart what they need). nurse_a2 is there to double-check."""

    def _ready(patient=None, *, attested=True, first=FIRST, **kwargs):
        from monitoring.services import labs_record

        patient = patient or patient_a
        course = make_course(patient, first_dose_at=first, now=NOW - timedelta(hours=2), **kwargs)
        if attested:
            labs_record(
                patient=patient,
                recorded_at=NOW - timedelta(hours=3),
                by=nurse_a,
                now=NOW,
                creatinine_mg_dl=Decimal("1.0"),
            )
            attest(course, oncologist)
        course.refresh_from_db()
        return course

    return _ready
