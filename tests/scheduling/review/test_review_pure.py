"""The review's pure pieces: SVG plots, threshold labels from rule-set keys, interaction warnings, where a course
stands. No database."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.domain import rulesets
from monitoring.domain.rulesets import CONSENSUS_2014, LABEL_ONLY
from scheduling.domain.eligibility import ELIGIBILITY_ITEMS, ELIGIBILITY_LABELS
from scheduling.domain.interactions import interaction_warnings
from scheduling.review import plots
from scheduling.review.plots import threshold_label
from scheduling.selectors.review import course_position

CHICAGO = ZoneInfo("America/Chicago")
T0 = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)


def axis(*hours):
    return plots.TimeAxis(((T0, T0 + timedelta(hours=hours[0])),) + tuple(
        (T0 + timedelta(hours=a), T0 + timedelta(hours=b)) for a, b in zip(hours[1::2], hours[2::2], strict=True)
    ), CHICAGO)  # fmt: skip


def test_a_plot_draws_points_thresholds_and_dose_marks():
    svg = plots.trend_plot(
        title="Heart rate",
        axis=axis(48),
        series=[plots.Series("HR", "#b02a37", tuple((T0 + timedelta(hours=h), 90 + h) for h in range(0, 48, 8)))],
        thresholds=[plots.Threshold(120, "CV-HR hold > 120", "hold")],
        doses=[plots.DoseMark(T0, "given", "C1 #1"), plots.DoseMark(T0 + timedelta(hours=8), "held", "C1 #2")],
        now=T0 + timedelta(hours=20),
    )
    assert svg.startswith('<svg class="trend"') and svg.endswith("</svg>")
    assert svg.count("<circle") == 6 and svg.count("<polyline") == 1
    assert "CV-HR hold &gt; 120" in svg and 'stroke-dasharray="6 4"' in svg
    assert 'stroke="#198754"' in svg and ">H</text>" in svg  # given mark, held mark labelled H
    assert ">now</text>" in svg


def test_a_right_axis_threshold_is_drawn_beside_its_axis_not_across_the_left_axis_values():
    import re

    svg = plots.trend_plot(
        title="BP and pressor",
        axis=axis(24),
        series=[
            plots.Series("SBP", "#000", ((T0 + timedelta(hours=1), 110.0),)),
            plots.Series("Phenylephrine", "#6f42c1", ((T0 + timedelta(hours=1), 0.4),), axis="right"),
        ],
        thresholds=[
            plots.Threshold(90, "CV-SBP hold < 90", "hold"),
            plots.Threshold(0.5, "CV-PRESSOR hold > 0.5", "hold", "right"),
        ],
        right_unit="µg/kg/min",
    )
    lines = re.findall(
        r'<line x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)" y2="[\d.]+" stroke="[^"]+" stroke-width="1.2"', svg
    )
    (sbp_x1, sbp_x2), (pressor_x1, pressor_x2) = [(float(a), float(b)) for a, b in lines]
    plot_w = plots.WIDTH - plots.LEFT - plots.RIGHT
    assert sbp_x1 == plots.LEFT and sbp_x2 == plots.LEFT + plot_w  # across the plot
    assert pressor_x1 >= plots.LEFT + plot_w * 0.7 and pressor_x2 == plots.LEFT + plot_w  # only beside its axis
    assert "CV-PRESSOR hold &gt; 0.5 →" in svg


def test_points_outside_the_axis_are_left_out_and_lines_break_between_segments():
    points = tuple((T0 + timedelta(hours=h), 100.0) for h in (1, 2, 30, 200, 201))
    svg = plots.trend_plot(title="SBP", axis=axis(24, 199, 210), series=[plots.Series("SBP", "#000", points)])
    assert svg.count("<circle") == 4  # hour 30 falls in the rest days between the segments
    assert svg.count("<polyline") == 2 and "rest days" in svg


def test_text_is_escaped():
    svg = plots.trend_plot(title="<b>&", axis=axis(8), series=[plots.Series("a<b", "#000")])
    assert "<b>&" not in svg and "&lt;b&gt;&amp;" in svg and "No values recorded" in svg


def test_day_ticks_are_ward_local_midnights_across_dst():
    svg = plots.trend_plot(title="x", axis=axis(24 * 4), series=[])  # Fri 12 – Tue 16 Mar 2027, clocks forward on 14th
    assert re.findall(r">(\w{3} \d\d \w{3})</text>", svg) == ["Sat 13 Mar", "Sun 14 Mar", "Mon 15 Mar", "Tue 16 Mar"]
    xs = [float(x) for x in re.findall(r'<line x1="([\d.]+)" y1="30" x2="[\d.]+" y2="[\d.]+" stroke="#e9ecef"/>', svg)]
    assert round((xs[2] - xs[1]) / (xs[1] - xs[0]) * 24, 1) == 23.0  # Sunday 14 March has 23 hours in Chicago


@given(st.floats(-1000, 1000), st.floats(0.001, 1000))
def test_nice_ticks_cover_the_range_in_order(low, span):
    ticks = plots.nice_ticks(low, low + span)
    assert ticks == sorted(ticks) and ticks[0] >= low - 1e-6 and ticks[-1] <= low + span + 1e-6
    assert 1 <= len(ticks) <= 12


@pytest.mark.parametrize(
    "key,value,label,level",
    [
        ("CV-SBP.hold_below", 90, "CV-SBP hold < 90", "hold"),
        ("RN-UO.hold_at_or_below_ml", 160, "RN-UO hold ≤ 160", "hold"),
        ("CV-HR.stop_above", 130, "CV-HR stop > 130", "stop"),
        ("RN-CREAT.stop_from", "3.0", "RN-CREAT stop ≥ 3.0", "stop"),
        ("RS-O2.hold_from_lpm", 3, "RS-O2 hold ≥ 3", "hold"),
        ("NE-RASS.notify_at_or_below", -1, "NE-RASS notify ≤ -1", "notify"),
    ],
)
def test_threshold_labels_read_the_comparison_from_the_key(key, value, label, level):
    assert threshold_label(key, value) == (label, level)


def test_every_plotted_threshold_key_exists_in_a_built_in_rule_set():
    known = set(CONSENSUS_2014.thresholds) | set(LABEL_ONLY.thresholds)
    keys = {key for pairs in rulesets.PLOT_LINES.values() for key, _ in pairs}
    assert keys <= known, keys - known


def test_interaction_warnings_follow_hold_rules_section_2():
    names = ["Gentamicin IV", "Amlodipine 5 mg", "prednisone", "Doxorubicin", "Paracetamol", "Methotrexate"]
    found = {(w.medication, w.drug_class) for w in interaction_warnings(names)}
    assert found == {
        ("Gentamicin IV", "aminoglycosides"),
        ("Amlodipine 5 mg", "antihypertensives"),
        ("prednisone", "glucocorticoids"),
        ("Doxorubicin", "doxorubicin"),
        ("Methotrexate", "methotrexate"),
    }


def test_the_checklist_labels_cover_the_api_keys():
    assert list(ELIGIBILITY_LABELS) == list(ELIGIBILITY_ITEMS)


@pytest.mark.parametrize(
    "now,expected",
    [
        (T0 - timedelta(days=1), "Planned · first dose Fri 12 Mar 16:00"),
        (T0 + timedelta(hours=33), "Cycle 1 · day 3"),  # Sun 14 Mar 01:00 CST
        (T0 + timedelta(days=8), "Rest day 3 · course day 9 · cycle 2 from Fri 26 Mar"),  # last slot Wed 17 01:00
        (datetime(2027, 3, 26, 21, 30, tzinfo=UTC), "Cycle 2 · day 1"),
    ],
)
def test_course_position_counts_ward_local_days(now, expected):
    cycles = {
        1: (T0, T0 + timedelta(hours=104)),
        2: (datetime(2027, 3, 26, 21, 0, tzinfo=UTC), datetime(2027, 3, 31, 5, 0, tzinfo=UTC)),
    }
    assert course_position("active", cycles, zone=CHICAGO, now=now) == expected
