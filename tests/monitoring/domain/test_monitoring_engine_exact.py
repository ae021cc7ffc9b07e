"""The engine's fast paths give exactly what the plain exact arithmetic gives (HOLD-RULES.md §3: thresholds are
compared exactly; RN-UO, GI-DIARRHEA, FL-WT read derived values).

The engine sums whole shifts directly, compares a weight gain by cross-multiplication (``_Ratio``) and formats
quotients with integer arithmetic; each is checked here against the general Fraction computation on random input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.domain import engine
from monitoring.domain.engine import context as engine_context
from monitoring.domain.engine import numbers, plan
from monitoring.domain.rulesets import CONSENSUS_2014
from monitoring.domain.snapshot import FluidPeriod, PatientSnapshot

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)
WINDOWS = [(8, 0), (16, 8), (16, 0), (24, 0)]


@st.composite
def charts(draw):
    """Fluid periods as wards chart them: mostly whole shifts back to back, sometimes cut, overlapping, with gaps,
    out of order, or without a diarrhoea figure."""
    periods = []
    end = NOW - timedelta(minutes=draw(st.sampled_from([0, 0, 30, 240])))
    for k in range(draw(st.integers(0, 4))):
        length = draw(st.sampled_from([8, 8, 8, 4, 6, 12])) * 60
        shift = draw(st.sampled_from([0, 0, 0, 0, 30, -45, 120]))  # minutes: back to back, or a gap / an overlap
        stop = end + timedelta(minutes=shift)
        start = stop - timedelta(minutes=length)
        urine = draw(st.integers(0, 1500))
        diarrhoea = draw(st.one_of(st.none(), st.integers(0, 1500)))
        periods.append(FluidPeriod(start, stop, urine, diarrhoea, f"fluids:{k}"))
        end = start
    return draw(st.permutations(periods))


def context(periods) -> engine_context._Context:
    return engine_context._Context(
        PatientSnapshot(urine_periods=tuple(periods)), CONSENSUS_2014, plan._plan(CONSENSUS_2014), NOW
    )


@settings(max_examples=500, deadline=None)
@given(periods=charts())
def test_window_totals_equal_the_pro_rata_computation(periods):
    ctx = context(periods)
    for hours_from, hours_to in WINDOWS:
        urine = ctx.fluid(hours_from, hours_to, urine=True)
        diarrhoea = ctx.fluid(hours_from, hours_to, urine=False)
        if ctx.fluid_end is None:
            assert urine is None and diarrhoea is None
            continue
        start, end = ctx.fluid_end - timedelta(hours=hours_from), ctx.fluid_end - timedelta(hours=hours_to)
        inside = [p for p in ctx.periods if p.start < end and p.end > start]
        assert urine == engine_context._pro_rata(inside, start, end, urine=True)
        assert diarrhoea == engine_context._pro_rata(inside, start, end, urine=False)


def test_a_gap_in_the_urine_chart_leaves_the_window_unknown_but_diarrhoea_counts():
    shift = timedelta(hours=8)
    ctx = context(
        [
            FluidPeriod(NOW - shift, NOW, 500, 100, "fluids:2"),
            FluidPeriod(NOW - 3 * shift, NOW - 2 * shift, 500, 200, "fluids:1"),  # the shift between is not charted
        ]
    )
    assert ctx.fluid(8, 0, urine=True) == 500
    assert ctx.fluid(24, 0, urine=True) is None
    assert ctx.fluid(24, 0, urine=False) == 300


THRESHOLDS = st.one_of(
    st.integers(-50, 50),
    st.decimals(min_value=-50, max_value=50, places=2),
    st.fractions(min_value=-50, max_value=50, max_denominator=97),
)


@settings(max_examples=1000, deadline=None)
@given(num=st.integers(-(10**6), 10**6), den=st.integers(1, 10**5), other=THRESHOLDS)
def test_ratio_compares_like_the_fraction(num, den, other):
    ratio, exact = numbers._Ratio(num, den), Fraction(num, den)
    assert (ratio < other) == (exact < other)
    assert (ratio <= other) == (exact <= other)
    assert (ratio > other) == (exact > other)
    assert (ratio >= other) == (exact >= other)
    assert (ratio == other) == (exact == other)


@settings(max_examples=1000, deadline=None)
@given(num=st.integers(-(10**7), 10**7), den=st.integers(1, 10**5))
def test_a_quotient_is_shown_exactly_when_short_else_to_one_decimal_half_even(num, den):
    exact = Fraction(num, den)
    shown = numbers.fmt(numbers._Ratio(num, den))
    assert shown == numbers.fmt(exact)
    if (exact * 1000).denominator == 1:
        assert Fraction(Decimal(shown)) == exact
    else:
        assert Decimal(shown) == Decimal(round(exact * 10)) / 10  # round() on a Fraction: exact, half to even
        assert len(shown.partition(".")[2]) == 1


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Fraction(1, 8), "0.125"), (Fraction(1, 16), "0.1"), (Fraction(3, 16), "0.2"), (Fraction(-1, 3), "-0.3"),
     (Fraction(5, 100), "0.05"), (Fraction(25, 1000), "0.025"), (Fraction(1, 20000), "0.0"), (7, "7"),
     (Decimal("1.50"), "1.50")],
)  # fmt: skip
def test_fmt_examples(value, shown):
    assert numbers.fmt(value) == shown


def test_weight_gain_is_exact_at_the_fl_wt_boundary(snapshot):
    """FL-WT: 15 % over a 73.3 kg baseline is 84.295 kg exactly; one gram more is over it."""
    at_limit = snapshot(NOW, weight_kg=Decimal("84.295"), baseline_weight_kg=Decimal("73.3"))
    over = snapshot(NOW, weight_kg=Decimal("84.296"), baseline_weight_kg=Decimal("73.3"))
    rule_set = CONSENSUS_2014
    assert not [f for f in engine.evaluate(at_limit, rule_set=rule_set, now=NOW).findings if f.level == "hold"]
    held = [f for f in engine.evaluate(over, rule_set=rule_set, now=NOW).findings if f.level == "hold"]
    assert [f.rule for f in held] == ["FL-WT"]
    assert held[0].value == "15.0 % (CTCAE grade 2)"
