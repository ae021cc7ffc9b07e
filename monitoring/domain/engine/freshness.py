"""INV-EXPLICIT freshness: what is missing for a dose to be given."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from ..snapshot import FluidPeriod
from .context import _Context, _rate
from .numbers import _microseconds
from .plan import _hours

# --------------------------------------------------------------------------------------------------- freshness


def _missing(ctx: _Context) -> list[str]:
    """Required data absent or older than the rule set's freshness limits (inclusive: exactly 60 min is fresh)."""
    plan, readings, now = ctx.plan, ctx.readings, ctx.now
    missing: list[str] = []
    for group, names, limit in plan.freshness_groups:
        oldest_fresh = now - limit
        for name in names:
            reading = readings[name]
            if reading is None or reading.at < oldest_fresh:
                missing.append(group)
                break
        else:
            if group == "vitals" and plan.vitals_one_of and all(readings[n] is None for n in plan.vitals_one_of):
                missing.append(group)  # INV-EXPLICIT: neither an O2 flow (0 = room air) nor an FiO2 charted
    if plan.weight_limit is not None:
        reading = readings["weight_kg"]
        if reading is None or reading.at < now - plan.weight_limit:
            missing.append("weight")
        if plan.needs_baseline_weight and ctx.snapshot.baseline_weight_kg is None:
            missing.append("baseline_weight")
    if (
        plan.urine_hours is not None
        and not ctx.snapshot.first_slot_of_cycle
        and not _urine_recorded(ctx, plan.urine_hours)
    ):
        missing.append("urine_8h")
    if plan.labs:
        oldest_fresh = now - plan.labs_limit
        for name, missing_name in plan.labs:
            reading = readings[name]
            if reading is None or reading.at < oldest_fresh:
                missing.append(missing_name)
    return missing


def _urine_recorded(ctx: _Context, hours: int) -> bool:
    """Urine output recorded without gaps for the 8 h before the evaluation (the record may end up to the
    site's tolerance before `now`; default 0: right up to it)."""
    if ctx.fluid_end is None or ctx.now - ctx.fluid_end > ctx.plan.urine_tolerance:
        return False
    if ctx.fluid(hours, 0, urine=True) is not None:
        return True
    # A gap, but the urine charted inside the window already exceeds the hold band: no gap can make it hold.
    band = ctx.thresholds.get("RN-UO.hold_at_or_below_ml")
    if band is None:
        return False
    end = ctx.fluid_end
    charted = _charted_urine(ctx.periods, end - _hours(hours), end)
    return charted > band


def _charted_urine(periods: list[FluidPeriod], start: datetime, end: datetime) -> Fraction:
    """The urine charted inside [start, end] (pro rata, the lower rate where periods overlap), gaps counting 0."""
    inside = [p for p in periods if p.start < end and p.end > start]
    cuts = sorted({start, end, *(t for p in inside for t in (p.start, p.end) if start < t < end)})
    total = Fraction(0)
    for low, high in zip(cuts, cuts[1:], strict=False):
        covering = [p for p in inside if p.start <= low and p.end >= high]
        if covering:
            total += min(_rate(p, urine=True) for p in covering) * _microseconds(high - low)
    return total
