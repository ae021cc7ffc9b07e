"""One evaluation's context: the snapshot's readings looked up once, fluid windows, weight gain, what was used."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .. import ctcae
from ..rulesets import RuleSet
from ..snapshot import Event, FluidPeriod, PatientSnapshot, Reading
from .numbers import _microseconds, _Ratio, as_fraction, exact
from .plan import _NOT_YET, _hours, _Plan

# --------------------------------------------------------------------------------------------------- context


class _Context:
    """What one evaluation reads, remembering the source id of everything it reads (Evaluation.used)."""

    __slots__ = (
        "snapshot",
        "rule_set",
        "thresholds",
        "plan",
        "now",
        "readings",
        "used",
        "active_events",
        "periods",
        "fluid_end",
        "_fluid_cache",
        "_weight_gain",
    )

    def __init__(self, snapshot: PatientSnapshot, rule_set: RuleSet, plan: _Plan, now: datetime) -> None:
        self.snapshot = snapshot
        self.rule_set = rule_set
        self.plan = plan
        self.now = now
        self.thresholds = rule_set.thresholds
        used: dict[str, None] = {}
        readings: dict[str, Reading | None] = {}
        # Each input once: present (recorded at or before now, with a value) or None.
        for name, reading in zip(plan.fields, plan.read_fields(snapshot), strict=True):
            if reading is None or reading.value is None or reading.at > now:
                readings[name] = None
            else:
                readings[name] = reading
                if reading.source_id:
                    used[reading.source_id] = None
        self.readings = readings
        self.used = used
        self.active_events = [e for e in snapshot.events if e.active_at(now)] if snapshot.events else []
        # Fluid periods that exist at `now`; windows end at the latest of them (the "latest value").
        periods, fluid_end = [], None
        for period in snapshot.urine_periods:
            if period.start < period.end <= now:
                periods.append(period)
                if fluid_end is None or period.end > fluid_end:
                    fluid_end = period.end
        self.periods, self.fluid_end = periods, fluid_end
        self._fluid_cache: dict[tuple[int, int], tuple] = {}
        self._weight_gain: tuple[_Ratio | None, int | None] | Any = _NOT_YET

    def use(self, source_id: str | None) -> None:
        if source_id:
            self.used[source_id] = None

    def present(self, reading: Reading | None) -> Reading | None:
        """A reading outside the plan's fields (history) if it exists at `now`, marked as used."""
        if reading is None or reading.value is None or reading.at > self.now:
            return None
        self.use(reading.source_id)
        return reading

    def reading(self, name: str) -> Reading | None:
        return self.readings[name]  # KeyError: a rule read a field it did not declare in @_rule(reads=...)

    def value(self, name: str) -> Any | None:
        reading = self.readings[name]
        return None if reading is None else reading.value

    def number(self, name: str) -> Any | None:
        reading = self.readings[name]
        return None if reading is None else exact(reading.value)

    def threshold(self, key: str) -> int | Decimal:
        return self.thresholds[key]

    def option(self, key: str) -> Any:
        return self.rule_set.options[key]

    def events(self, kinds: Iterable[str]) -> list[Event]:
        """Active events of these kinds (recorded at or before now, not resolved by now)."""
        if not self.active_events:
            return []
        wanted = set(kinds)
        found = [e for e in self.active_events if e.kind in wanted]
        for event in found:
            self.use(event.source_id)
        return found

    def fluid(self, hours_back_from: int, hours_back_to: int, *, urine: bool) -> int | Fraction | None:
        """Urine (or diarrhoea) in the window [E − from h, E − to h], E = end of the latest fluid period.

        Urine: None unless the window is fully covered (a gap could hide any amount). Diarrhoea: what is charted.
        """
        if self.fluid_end is None:
            return None
        # Several rules and grades read the same windows; the answer (and the periods it uses) does not change.
        key = (hours_back_from, hours_back_to)
        totals = self._fluid_cache.get(key)
        if totals is None:
            totals = self._fluid_cache[key] = self._window(
                self.fluid_end - _hours(hours_back_from), self.fluid_end - _hours(hours_back_to)
            )
        return totals[0] if urine else totals[1]

    def _window(self, start: datetime, end: datetime) -> tuple[int | Fraction | None, int | Fraction | None]:
        """(urine, diarrhoea) in [start, end]."""
        inside = [p for p in self.periods if p.start < end and p.end > start]
        for period in inside:
            self.use(period.source_id)
        if len(inside) > 1:
            inside.sort(key=_START)
        # The usual chart: whole shifts back to back inside the window, whole millilitres: the amounts add up.
        urine: int | None = 0
        diarrhoea, edge = 0, start
        for period in inside:
            if (
                period.start < edge  # overlaps the one before, or starts before the window
                or period.end > end
                or type(period.urine_ml) is not int
                or (type(period.diarrhea_ml) is not int and period.diarrhea_ml is not None)
            ):
                return _pro_rata(inside, start, end, urine=True), _pro_rata(inside, start, end, urine=False)
            if period.start != edge:
                urine = None  # a gap: any amount could be missing
            if urine is not None:
                urine += period.urine_ml
            diarrhoea += period.diarrhea_ml or 0
            edge = period.end
        return (urine if edge == end else None), diarrhoea

    def weight_gain(self) -> tuple[_Ratio | None, int | None]:
        """% over the course's baseline and its CTCAE grade (FL-WT and the grades read them; computed once)."""
        if self._weight_gain is _NOT_YET:
            gain = _compute_weight_gain(self)
            self._weight_gain = gain, ctcae.weight_gain_grade(gain)
        return self._weight_gain


_START = operator.attrgetter("start")
_FIRST = operator.itemgetter(0)


def _pro_rata(inside: list[FluidPeriod], start: datetime, end: datetime, *, urine: bool) -> Fraction | None:
    """Any chart: split the window at every period edge, each piece at the covering periods' safer rate."""
    cuts = sorted({start, end, *(t for p in inside for t in (p.start, p.end) if start < t < end)})
    total = Fraction(0)
    for low, high in zip(cuts, cuts[1:], strict=False):
        covering = [p for p in inside if p.start <= low and p.end >= high]
        if not covering:
            if urine:
                return None
            continue
        rates = [_rate(p, urine=urine) for p in covering]
        # Overlapping records: take the safer one (less urine, more diarrhoea).
        total += (min(rates) if urine else max(rates)) * _microseconds(high - low)
    return total


def _rate(period: FluidPeriod, *, urine: bool) -> Fraction:
    amount = period.urine_ml if urine else period.diarrhea_ml
    return as_fraction(amount or 0) / _microseconds(period.end - period.start)


def _compute_weight_gain(ctx: _Context) -> _Ratio | None:
    reading = ctx.readings["weight_kg"]
    baseline = ctx.snapshot.baseline_weight_kg
    if reading is None or baseline is None:
        return None
    weight_num, weight_den = exact(reading.value).as_integer_ratio()
    base_num, base_den = exact(baseline).as_integer_ratio()
    if base_num <= 0:
        return None
    # (w − b) / b × 100 with w = wn/wd, b = bn/bd: (wn·bd − bn·wd) · 100 / (wd · bn)
    return _Ratio((weight_num * base_den - base_num * weight_den) * 100, weight_den * base_num)
