"""Properties over random patients: a worse value never gives a milder decision; the decision is the most
restrictive of stop > hold > incomplete > give, and notify never changes it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from monitoring.domain.engine import DECISION_SEVERITY, evaluate
from monitoring.domain.rulesets import CONSENSUS_2014, LABEL_ONLY
from monitoring.domain.snapshot import (
    CONFUSION_LEVELS,
    EVENT_KINDS,
    EXAM_FIELDS,
    OTHER_PRESSORS,
    RALES,
    RHYTHMS,
    Event,
    FluidPeriod,
    PatientSnapshot,
    Reading,
)

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)
RULE_SETS = [CONSENSUS_2014, LABEL_ONLY, CONSENSUS_2014.with_overrides({"CV-HR.hold_above": 100}, version=2)]


def decimals(low, high, places=1):
    return st.decimals(min_value=D(low), max_value=D(high), places=places)


# Each monotone input: its values, and whether a higher value is worse (+1) or a lower one (-1).
NUMERIC = {
    "sbp": (st.integers(60, 200), -1),
    "spo2": (st.integers(70, 100), -1),
    "bicarbonate_mmol_l": (st.integers(10, 32), -1),
    "platelets_k_ul": (st.integers(5, 300), -1),
    "heart_rate": (st.integers(40, 190), +1),
    "resp_rate": (st.integers(8, 45), +1),
    "temp_c": (decimals("35.0", "41.5"), +1),
    "o2_lpm": (decimals("0", "8"), +1),
    "fio2_pct": (st.integers(21, 100), +1),
    "phenylephrine_mcg_kg_min": (decimals("0", "1.5", 2), +1),
    "creatinine_mg_dl": (decimals("0.4", "6.0"), +1),
    "bilirubin_mg_dl": (decimals("0.2", "10"), +1),
    "ast_u_l": (st.integers(10, 400), +1),
    "alt_u_l": (st.integers(10, 400), +1),
    "potassium_mmol_l": (decimals("3.0", "6.5"), +1),
    "weight_kg": (decimals("60", "110"), +1),
}
AGES_MIN = st.sampled_from([1, 30, 60, 61, 180, 24 * 60, 25 * 60])


def readings(values):
    return st.one_of(
        st.none(),
        st.builds(lambda v, age: Reading(v, NOW - timedelta(minutes=age), f"r:{age}"), values, AGES_MIN),
    )


NORMAL = {
    "sbp": 112,
    "spo2": 97,
    "bicarbonate_mmol_l": 24,
    "platelets_k_ul": 210,
    "rass": 0,
    "heart_rate": 88,
    "resp_rate": 16,
    "temp_c": D("37.2"),
    "o2_lpm": 0,
    "fio2_pct": None,
    "phenylephrine_mcg_kg_min": 0,
    "other_pressor": "none",
    "creatinine_mg_dl": D("1.0"),
    "bilirubin_mg_dl": D("0.8"),
    "ast_u_l": 30,
    "alt_u_l": 28,
    "potassium_mmol_l": D("4.1"),
    "weight_kg": D("80"),
    "rhythm": "sinus",
    "previous_rhythm": "sinus",
    "confusion": "none",
    "neuro_check_failed": False,
    "hallucinations": False,
    "previous_creatinine": D("1.0"),
    **{name: (False if name != "rales" else "none") for name in EXAM_FIELDS},
}
OTHER = {
    "rass": st.integers(-5, 4),
    "other_pressor": st.sampled_from(OTHER_PRESSORS),
    **{name: (st.booleans() if name != "rales" else st.sampled_from(RALES)) for name in EXAM_FIELDS},
    "rhythm": st.sampled_from(RHYTHMS),
    "previous_rhythm": st.sampled_from(RHYTHMS),
    "confusion": st.sampled_from(CONFUSION_LEVELS),
    "neuro_check_failed": st.booleans(),
    "hallucinations": st.booleans(),
    "previous_creatinine": decimals("0.4", "6.0"),
}


@st.composite
def fluid_periods(draw):
    """Usually three complete 8 h shifts up to now; sometimes fewer, or ending earlier."""
    end = NOW - timedelta(minutes=draw(st.sampled_from([0, 0, 0, 0, 30, 180])))
    periods = []
    for k in range(draw(st.sampled_from([3, 3, 3, 2, 1, 0]))):
        stop, start = end - timedelta(hours=8 * k), end - timedelta(hours=8 * (k + 1))
        urine = draw(st.one_of(st.integers(300, 1200), st.integers(0, 300)))
        diarrhea = draw(st.one_of(st.just(0), st.integers(0, 1500)))
        periods.append(FluidPeriod(start, stop, urine, diarrhea, f"f:{k}"))
    return tuple(periods)


@st.composite
def snapshots(draw):
    """A normal, fresh patient with a few inputs changed (value, age or absence), so that every decision occurs."""
    values = {
        name: None if v is None else Reading(v, NOW - timedelta(minutes=10), f"{name}:1") for name, v in NORMAL.items()
    }
    for name in draw(st.sets(st.sampled_from(sorted(NORMAL)), max_size=4)):
        strategy = NUMERIC[name][0] if name in NUMERIC else OTHER[name]
        values[name] = draw(readings(strategy))
    values["creatinine_history"] = tuple(
        Reading(v, NOW - timedelta(hours=h), f"c:{h}")
        for v, h in draw(st.lists(st.tuples(decimals("0.4", "6.0"), st.integers(26, 200)), max_size=2))
    )
    values["baseline_weight_kg"] = draw(st.one_of(st.just(D("80")), st.none(), decimals("60", "100")))
    values["urine_periods"] = draw(fluid_periods())
    values["events"] = tuple(
        Event(kind, NOW - timedelta(hours=2), f"e:{kind}")
        for kind in draw(st.one_of(st.just(set()), st.sets(st.sampled_from(EVENT_KINDS), max_size=2)))
    )
    values["first_slot_of_cycle"] = draw(st.booleans())
    return PatientSnapshot(**values)


@st.composite
def worsened(draw, snapshot: PatientSnapshot) -> PatientSnapshot:
    """The same patient with one input made worse (or unchanged if that input is absent)."""
    kind = draw(
        st.sampled_from(
            [*NUMERIC, "rass", "confusion", "neuro_check_failed", "hallucinations", "urine", "diarrhea", "event"]
        )
    )
    if kind == "rass":  # worse is further from 0, either way (lethargy or agitation: NE-RASS v2)
        reading = snapshot.rass
        if reading is None:
            return snapshot
        step = draw(st.integers(0, 5))
        worse = max(-5, reading.value - step) if reading.value <= 0 else min(4, reading.value + step)
        return replace(snapshot, rass=replace(reading, value=worse))
    if kind in NUMERIC:
        reading = getattr(snapshot, kind)
        if reading is None:
            return snapshot
        direction = NUMERIC[kind][1]
        step = draw(st.integers(0, 150) if isinstance(reading.value, int) else decimals("0", "5", 2))
        return replace(snapshot, **{kind: replace(reading, value=reading.value + direction * step)})
    if kind == "confusion":
        reading = snapshot.confusion
        if reading is None:
            return snapshot
        worse = draw(st.sampled_from(CONFUSION_LEVELS[CONFUSION_LEVELS.index(reading.value) :]))
        return replace(snapshot, confusion=replace(reading, value=worse))
    if kind in ("neuro_check_failed", "hallucinations"):
        reading = getattr(snapshot, kind)
        return snapshot if reading is None else replace(snapshot, **{kind: replace(reading, value=True)})
    if kind == "urine":
        factor = draw(st.fractions(0, 1))
        return replace(
            snapshot, urine_periods=tuple(replace(p, urine_ml=int(p.urine_ml * factor)) for p in snapshot.urine_periods)
        )
    if kind == "diarrhea":
        extra = draw(st.integers(0, 1500))
        return replace(
            snapshot,
            urine_periods=tuple(replace(p, diarrhea_ml=(p.diarrhea_ml or 0) + extra) for p in snapshot.urine_periods),
        )
    added = Event(draw(st.sampled_from(EVENT_KINDS)), NOW - timedelta(hours=1), "e:new")
    return replace(snapshot, events=(*snapshot.events, added))


@settings(max_examples=400, deadline=None)
@given(data=st.data(), base=snapshots(), rule_set=st.sampled_from(RULE_SETS))
def test_a_worse_value_never_gives_a_milder_decision(data, base, rule_set):
    event(f"{rule_set.name}: {evaluate(base, rule_set=rule_set, now=NOW).decision}")
    worse = data.draw(worsened(base))
    before = evaluate(base, rule_set=rule_set, now=NOW)
    after = evaluate(worse, rule_set=rule_set, now=NOW)
    assert DECISION_SEVERITY[after.decision] >= DECISION_SEVERITY[before.decision], (before.findings, after.findings)


@settings(max_examples=300, deadline=None)
@given(base=snapshots(), rule_set=st.sampled_from(RULE_SETS))
def test_decision_is_the_most_restrictive_and_notify_never_counts(base, rule_set):
    evaluation = evaluate(base, rule_set=rule_set, now=NOW)
    levels = {f.level for f in evaluation.findings}
    expected = next(
        (d for d in ("discontinue", "stop", "hold") if d in levels), "incomplete" if evaluation.missing else "give"
    )
    assert evaluation.decision == expected
    order = ("give", "incomplete", "hold", "stop", "discontinue")
    assert set(DECISION_SEVERITY) == set(order)
    assert [DECISION_SEVERITY[d] for d in order] == [0, 1, 2, 3, 4]
    for finding in evaluation.findings:
        assert finding.rule in rule_set.rules and finding.value and finding.threshold and finding.message
    # One finding per rule, level and threshold: a rule reading several inputs (CV-PRESSOR: phenylephrine at dosing,
    # the highest since the last slot, another vasopressor) gives one per input that crosses its threshold.
    assert len({(f.rule, f.level, f.threshold) for f in evaluation.findings}) == len(evaluation.findings)
    assert not ({"hold", "stop"} <= {f.level for f in evaluation.findings if f.rule == "CV-HR"})


@settings(max_examples=200, deadline=None)
@given(base=snapshots(), rule_set=st.sampled_from(RULE_SETS))
def test_to_dict_is_json_ready(base, rule_set):
    import json

    data = evaluate(base, rule_set=rule_set, now=NOW).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["evaluated_at"].endswith("Z")


def _sweep(name: str) -> list:
    """Values of one input from best to worst: a coarse grid plus every threshold of every rule set ± a step."""
    strategy, direction = NUMERIC[name]
    low, high = _RANGES[name]
    points = {D(low) + (D(high) - D(low)) * i / 40 for i in range(41)}
    for rule_set in RULE_SETS:
        for value in rule_set.thresholds.values():
            points |= {D(value) + delta for delta in (D("-1"), D("-0.01"), 0, D("0.01"), D("1"))}
    return sorted((p for p in points if D(low) <= p <= D(high)), reverse=direction < 0)


_RANGES = {
    "sbp": (60, 200),
    "spo2": (70, 100),
    "bicarbonate_mmol_l": (10, 32),
    "platelets_k_ul": (0, 300),
    "heart_rate": (40, 190),
    "resp_rate": (8, 45),
    "temp_c": (35, 42),
    "o2_lpm": (0, 8),
    "fio2_pct": (21, 100),
    "phenylephrine_mcg_kg_min": (0, 2),
    "creatinine_mg_dl": (D("0.4"), 7),
    "bilirubin_mg_dl": (D("0.2"), 10),
    "ast_u_l": (10, 400),
    "alt_u_l": (10, 400),
    "potassium_mmol_l": (3, 7),
    "weight_kg": (60, 110),
}


def _sweep_severities(base, rule_set, name):
    at = NOW - timedelta(minutes=10)
    return [
        DECISION_SEVERITY[
            evaluate(replace(base, **{name: Reading(value, at, "sweep")}), rule_set=rule_set, now=NOW).decision
        ]
        for value in _sweep(name)
    ]


@pytest.mark.parametrize("rule_set", RULE_SETS, ids=lambda rs: f"{rs.name}-v{rs.version}")
@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_each_input_is_monotone_over_its_whole_range_for_a_normal_patient(snapshot, rule_set, name):
    severities = _sweep_severities(snapshot(NOW), rule_set, name)
    assert severities == sorted(severities)
    assert severities[0] == 0  # the best end of every range gives (the patient is otherwise normal)


@pytest.mark.parametrize("rule_set", RULE_SETS, ids=lambda rs: f"{rs.name}-v{rs.version}")
def test_rass_is_worse_further_from_zero_either_way(snapshot, rule_set):
    at = NOW - timedelta(minutes=10)

    def severity(rass):
        evaluation = evaluate(snapshot(NOW, rass=Reading(rass, at, "sweep")), rule_set=rule_set, now=NOW)
        return DECISION_SEVERITY[evaluation.decision]

    lethargy = [severity(r) for r in range(0, -6, -1)]
    agitation = [severity(r) for r in range(0, 5)]
    assert lethargy == sorted(lethargy) and agitation == sorted(agitation)
    assert lethargy[0] == 0 and lethargy[2] > 0 and agitation[2] > 0  # RASS −2 and +2 hold


@settings(max_examples=100, deadline=None)
@given(base=snapshots(), rule_set=st.sampled_from(RULE_SETS), name=st.sampled_from(sorted(NUMERIC)))
def test_each_input_is_monotone_over_its_whole_range_for_any_patient(base, rule_set, name):
    severities = _sweep_severities(base, rule_set, name)
    assert severities == sorted(severities), name
