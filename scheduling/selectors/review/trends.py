"""The course page's trend data: what the plots (review/plots.py) draw, read as named tuples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitoring.models import FluidBalance, LabResult, NeuroAssessment, VitalSigns, WeightMeasurement
from scheduling.models import Dose

MARGIN = timedelta(hours=8)  # shown before a cycle's first slot and after its last


@dataclass(frozen=True)
class TrendData:
    """What the trend plots show (review/plots.py draws them): the time segments, the dose marks and the charted rows
    inside them, read as named tuples (no model objects)."""

    segments: tuple[tuple[datetime, datetime], ...]
    marks: tuple[tuple[datetime, str, str], ...]  # (due at, status, "C1 #4")
    vitals: list
    neuro: list
    weights: list
    fluids: list
    labs: list


def trend_data(course, doses, bounds, *, now) -> TrendData | None:
    """Cycle 1, and cycle 2 once it is near or has begun, on one time axis; 5 queries."""
    if 1 not in bounds:
        return None
    segments = [(bounds[1][0] - MARGIN, bounds[1][1] + MARGIN)]
    cycle2_doses = [d for d in doses if d.cycle == 2]
    if 2 in bounds and (
        now >= bounds[2][0] - timedelta(hours=24) or any(d.status != Dose.Status.SCHEDULED for d in cycle2_doses)
    ):
        segments.append((bounds[2][0] - MARGIN, bounds[2][1] + MARGIN))
    low, high = segments[0][0], min(segments[-1][1], now)
    patient = course.patient_id

    def rows(model, *fields, time_field="recorded_at", extra=None):
        qs = model.objects.filter(
            patient_id=patient,
            entered_in_error_at__isnull=True,
            **{f"{time_field}__gte": low, f"{time_field}__lte": high},
        )
        if extra:
            qs = qs.filter(**extra)
        return list(qs.order_by(time_field, "pk").values_list(time_field, *fields, named=True))  # no model objects

    return TrendData(
        segments=tuple(segments),
        marks=tuple((d.due_at, d.status, f"C{d.cycle} #{d.number}") for d in doses),
        vitals=rows(VitalSigns, "sbp", "dbp", "heart_rate", "spo2", "o2_lpm", "phenylephrine_mcg_kg_min"),
        neuro=rows(NeuroAssessment, "rass"),
        weights=rows(WeightMeasurement, "weight_kg"),
        fluids=rows(FluidBalance, "period_start", "urine_ml", time_field="period_end"),
        labs=rows(LabResult, "creatinine_mg_dl", extra={"creatinine_mg_dl__isnull": False}),
    )
