"""CTCAE v5.0 grades (aldesleukin-reference.md §3) and their place in an evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from monitoring.domain.ctcae import creatinine_grade, platelet_grade, urine_output_grade, weight_gain_grade
from monitoring.domain.engine import evaluate
from monitoring.domain.rulesets import CONSENSUS_2014

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("gain", "grade"),
    [(None, None), (-3, 0), (D("4.99"), 0), (5, 1), (D("9.99"), 1), (10, 2), (D("19.99"), 2), (20, 3), (45, 3)],
)
def test_weight_gain_grade(gain, grade):
    assert weight_gain_grade(gain) == grade


@pytest.mark.parametrize(
    ("ml_8h", "ml_24h", "grade"),
    [(None, None, None), (80, None, 0), (79, None, 3), (79, 240, 3), (200, 239, 4), (None, 100, 4), (500, 600, 0)],
)
def test_urine_output_grade(ml_8h, ml_24h, grade):
    assert urine_output_grade(ml_8h, ml_24h) == grade


@pytest.mark.parametrize(
    ("value", "baseline", "grade"),
    [
        (None, None, None),
        (D("1.2"), None, 0),  # = ULN
        (D("1.21"), None, 1),  # > ULN
        (D("1.8"), None, 1),  # = 1.5 × ULN
        (D("1.81"), None, 2),
        (D("3.6"), None, 2),  # = 3 × ULN
        (D("3.61"), None, 3),
        (D("7.2"), None, 3),  # = 6 × ULN
        (D("7.21"), None, 4),
        (D("1.0"), D("0.6"), 2),  # > 1.5 × baseline although < ULN
        (D("1.9"), D("0.6"), 3),  # > 3 × baseline
    ],
)
def test_creatinine_grade_by_uln_and_baseline(value, baseline, grade):
    assert creatinine_grade(value, baseline=baseline) == grade


def test_creatinine_uln_is_a_parameter():
    assert creatinine_grade(D("1.3"), uln=D("1.3")) == 0
    assert creatinine_grade(D("1.3")) == 1


@pytest.mark.parametrize(
    ("value", "grade"),
    [(None, None), (150, 0), (149, 1), (75, 1), (74, 2), (50, 2), (49, 3), (25, 3), (24, 4), (0, 4)],
)
def test_platelet_grade(value, grade):
    assert platelet_grade(value) == grade


def test_grades_are_part_of_every_evaluation(snapshot):
    evaluation = evaluate(
        snapshot(NOW, weight_kg=D("88.5"), creatinine_mg_dl=D("2.0"), platelets_k_ul=60, urine_8h=70),
        rule_set=CONSENSUS_2014,
        now=NOW,
    )
    assert dict(evaluation.grades) == {"weight_gain": 2, "urine_output": 3, "creatinine": 2, "platelets": 2}
    assert evaluation.measures["weight_gain_pct"] == D("10.625")
    assert evaluation.measures["urine_8h_ml"] == 70
    assert evaluation.to_dict()["grades"]["urine_output"] == 3


def test_fl_wt_shows_the_ctcae_grade(snapshot):
    evaluation = evaluate(snapshot(NOW, weight_kg=D("96")), rule_set=CONSENSUS_2014, now=NOW)
    hold = next(f for f in evaluation.findings if f.rule == "FL-WT" and f.level == "hold")
    assert hold.value == "20 % (CTCAE grade 3)"
