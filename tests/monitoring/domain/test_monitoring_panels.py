"""The capillary-leak panel and the design card's three flags (HOLD-RULES.md §3, last paragraph)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from monitoring.domain.engine import evaluate
from monitoring.domain.panels import FLAG_GROUPS, capillary_leak_panel, flag_levels
from monitoring.domain.rulesets import CONSENSUS_2014, RULE_CATALOGUE

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)


def test_flag_groups_map_as_specified_and_match_the_catalogue():
    assert dict(FLAG_GROUPS) == {
        "lethargy": ("NE-RASS", "NE-CONF"),
        "hypotension": ("CV-SBP", "CV-PRESSOR"),
        "capillary_leak": ("FL-WT", "RN-UO", "RS-SPO2", "RS-O2"),
    }
    for group, rules in FLAG_GROUPS.items():
        assert {r for r, info in RULE_CATALOGUE.items() if info.group == group} == set(rules)


def test_panel_lines_up_the_capillary_leak_signs(snapshot):
    patient = snapshot(
        NOW,
        sbp=86,
        phenylephrine_mcg_kg_min=D("0.3"),
        weight_kg=D("90"),
        urine_8h=120,
        spo2=93,
        o2_lpm=2,
        events=["edema"],
    )
    evaluation = evaluate(patient, rule_set=CONSENSUS_2014, now=NOW)
    panel = {item.key: item for item in capillary_leak_panel(patient, evaluation)}
    assert list(panel) == ["sbp", "pressor", "weight_gain", "urine_8h", "spo2", "o2", "edema"]
    assert (panel["sbp"].value, panel["sbp"].level) == ("86 mmHg", "hold")
    assert (panel["pressor"].value, panel["pressor"].level) == ("0.3 µg/kg/min", "notify")
    assert (panel["weight_gain"].value, panel["weight_gain"].level) == ("12.5 % (CTCAE grade 2)", "notify")
    assert (panel["urine_8h"].value, panel["urine_8h"].level) == ("120 mL", "hold")
    assert (panel["spo2"].value, panel["spo2"].level) == ("93 %", None)
    assert (panel["o2"].value, panel["o2"].level) == ("2 L/min", "hold")  # SpO2 93 on 2 L/min needs 3 (RS-O2 v2)
    assert panel["edema"].value == "present"


def test_panel_of_a_normal_patient_has_no_levels(snapshot):
    patient = snapshot(NOW)
    evaluation = evaluate(patient, rule_set=CONSENSUS_2014, now=NOW)
    panel = capillary_leak_panel(patient, evaluation)
    assert all(item.level is None for item in panel)
    assert {item.key: item.value for item in panel}["edema"] is None


def test_flag_levels_take_the_most_severe_finding_of_each_group(snapshot):
    evaluation = evaluate(snapshot(NOW, rass=-1, confusion="moderate", sbp=85), rule_set=CONSENSUS_2014, now=NOW)
    assert flag_levels(evaluation) == {"lethargy": "hold", "hypotension": "hold", "capillary_leak": None}
