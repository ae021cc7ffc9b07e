"""Rule sets as data: the catalogue, the two built-in sets, site overrides and their versions."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from monitoring.domain.engine import IMPLEMENTED_RULES, evaluate
from monitoring.domain.rulesets import (
    CONSENSUS_2014,
    CONSENSUS_TABLE_RULES,
    LABEL_ONLY,
    RULE_CATALOGUE,
    RULE_SETS,
    RuleSet,
)

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)
HOLD_RULES = Path("/work/shared/clinical/HOLD-RULES.md")

# The §3 table's ids, in order (kept here so the test runs where the spec file is absent).
TABLE_IDS = (
    "CV-SBP",
    "CV-PRESSOR",
    "CV-HR",
    "CV-RHYTHM",
    "CV-ISCHEMIA",
    "RS-SPO2",
    "RS-O2",
    "RS-EXAM",
    "RS-RR",
    "RN-UO",
    "RN-CREAT",
    "RN-HCO3",
    "FL-WT",
    "NE-RASS",
    "NE-CONF",
    "NE-CHECK",
    "NE-PERSIST",
    "GI-HEME",
    "GI-DIARRHEA",
    "GI-EXAM",
    "MS-EXAM",
    "SK-DESQ",
    "HM-PLT",
    "HP-BILI",
    "TP-TEMP",
    "HP-TRANS",
    "HP-FAIL",
    "SK-BULLOUS",
    "IN-INFECT",
    "AG-3REL",
)
LABEL_IDS = (
    "CV-SBP",
    "CV-RHYTHM",
    "CV-ISCHEMIA",
    "RS-SPO2",
    "NE-RASS",
    "NE-CONF",
    "GI-HEME",
    "HP-TRANS",
    "HP-FAIL",
    "SK-BULLOUS",
    "LB-CREAT",
    "LB-OLIG",
    "LB-SEPSIS",
    "LB-DISCONT",
)


def test_consensus_enables_every_rule_of_the_section_3_table():
    assert CONSENSUS_TABLE_RULES == TABLE_IDS
    assert set(TABLE_IDS) <= set(CONSENSUS_2014.rules)
    assert set(CONSENSUS_2014.rules) - set(TABLE_IDS) == {"LB-DISCONT"}
    assert CONSENSUS_2014.rules[-1] == "AG-3REL"  # the aggregate counts the others' holds


@pytest.mark.skipif(not HOLD_RULES.exists(), reason="HOLD-RULES.md is not on this machine")
def test_table_ids_match_the_specification_file():
    section = HOLD_RULES.read_text().split("## 3.")[1].split("## 4.")[0]
    ids = tuple(re.findall(r"^\| ([A-Z]{2}-[A-Z0-9]+) \|", section, flags=re.MULTILINE))
    assert ids == TABLE_IDS


def test_label_only_set_is_the_label_rows():
    assert LABEL_ONLY.rules == LABEL_IDS
    assert not any(key.startswith(("RN-", "IN-", "FL-", "CV-HR")) for key in LABEL_ONLY.thresholds)


def test_every_rule_has_catalogue_metadata_and_an_implementation():
    for rule_set in RULE_SETS.values():
        for rule in rule_set.rules:
            info = RULE_CATALOGUE[rule]
            assert info.title and info.input and info.source
            assert info.group in ("lethargy", "hypotension", "capillary_leak", "other")
    assert set(RULE_CATALOGUE) == IMPLEMENTED_RULES


def test_thresholds_are_ints_or_decimals_never_floats():
    for rule_set in RULE_SETS.values():
        for key, value in rule_set.thresholds.items():
            assert type(value) in (int, D), key


def test_every_threshold_key_belongs_to_an_enabled_rule_or_is_shared():
    for rule_set in RULE_SETS.values():
        for key in rule_set.thresholds:
            prefix = key.split(".")[0]
            assert prefix in rule_set.rules or prefix in ("freshness", "CTCAE"), key


def test_site_option_hr_100_changes_the_decision(snapshot):
    site = CONSENSUS_2014.with_overrides({"CV-HR.hold_above": 100}, version=2)
    assert (site.name, site.version, site.thresholds["CV-HR.hold_above"]) == ("consensus-2014", 2, 100)
    patient = snapshot(NOW, heart_rate=105)
    assert evaluate(patient, rule_set=CONSENSUS_2014, now=NOW).decision == "give"
    held = evaluate(patient, rule_set=site, now=NOW)
    assert held.decision == "hold"
    assert [(f.rule, f.threshold) for f in held.findings] == [("CV-HR", "> 100 /min")]
    assert CONSENSUS_2014.thresholds["CV-HR.hold_above"] == 120  # the built-in set is untouched


def test_an_evaluation_keeps_explaining_its_decision_after_thresholds_change(snapshot):
    patient = snapshot(NOW, sbp=88)
    before = evaluate(patient, rule_set=CONSENSUS_2014, now=NOW)
    stored = json.loads(json.dumps(before.to_dict()))
    site = CONSENSUS_2014.with_overrides({"CV-SBP.hold_below": 85}, version=3)
    after = evaluate(patient, rule_set=site, now=NOW)
    assert (before.decision, after.decision) == ("hold", "give")
    assert before.to_dict() == stored  # the stored record is not affected by the new version
    assert stored["rule_set"] == "consensus-2014" and stored["rule_set_version"] == 2
    assert stored["thresholds"]["CV-SBP.hold_below"] == 90
    assert stored["findings"][0]["threshold"] == "< 90 mmHg"
    assert after.to_dict()["rule_set_version"] == 3
    assert after.to_dict()["thresholds"]["CV-SBP.hold_below"] == 85
    # Replaying the stored definition gives the stored decision.
    replay = RuleSet.from_dict(
        {
            "name": stored["rule_set"],
            "version": stored["rule_set_version"],
            "rules": CONSENSUS_2014.rules,
            "thresholds": stored["thresholds"],
            "options": stored["options"],
        }
    )
    assert evaluate(patient, rule_set=replay, now=NOW).to_dict() == stored


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"CV-SBP.hold_belwo": 85}, "unknown", id="typo in a key"),
        pytest.param({"HM-PLT.hold_at_or_below": 50}, "unknown", id="a rule the label set does not have"),
        pytest.param({"CV-SBP.hold_below": True}, "number", id="a flag is not a number"),
        pytest.param({"CV-SBP.hold_below": "ninety"}, "not a number", id="text"),
        pytest.param({"CV-SBP.hold_below": "NaN"}, "finite", id="NaN"),
        pytest.param({"SCH-3HELD.recommend_stop": "yes"}, "shape", id="option keeps its shape"),
        pytest.param({"freshness.vitals_minutes": "59.5"}, "whole number", id="durations are whole numbers"),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    base = LABEL_ONLY if "HM-PLT" in next(iter(overrides)) else CONSENSUS_2014
    with pytest.raises(ValueError, match=message):
        base.with_overrides(overrides, version=2)


def test_an_override_cannot_invert_a_band():
    with pytest.raises(ValueError, match="must not exceed"):
        CONSENSUS_2014.with_overrides({"CV-HR.hold_above": 135}, version=2)
    with pytest.raises(ValueError, match="must not exceed"):
        CONSENSUS_2014.with_overrides({"RN-UO.stop_below_ml": 200}, version=2)


def test_json_numbers_are_read_exactly():
    site = CONSENSUS_2014.with_overrides({"CV-PRESSOR.hold_above": 0.6, "CV-PRESSOR.stop_above": "0.9"}, version=3)
    assert site.thresholds["CV-PRESSOR.hold_above"] == D("0.6")
    assert site.thresholds["CV-PRESSOR.stop_above"] == D("0.9")


def test_options_can_be_overridden_and_are_frozen():
    site = CONSENSUS_2014.with_overrides(
        {"SCH-3HELD.recommend_stop": True, "NE-CONF.levels": {"mild": None, "moderate": "hold", "severe": "stop"}},
        version=2,
    )
    assert site.options["SCH-3HELD.recommend_stop"] is True
    with pytest.raises(TypeError):
        site.options["SCH-3HELD.recommend_stop"] = False
    with pytest.raises(TypeError):
        site.thresholds["CV-SBP.hold_below"] = 80


@pytest.mark.parametrize("rule_set", list(RULE_SETS.values()), ids=lambda rs: rs.name)
def test_to_dict_round_trips_through_json(rule_set):
    data = json.loads(json.dumps(rule_set.to_dict()))
    assert RuleSet.from_dict(data) == rule_set
    assert data["thresholds"]["CV-SBP.hold_below"] == 90


def test_from_dict_refuses_an_unknown_rule():
    data = CONSENSUS_2014.to_dict() | {"rules": ["CV-SBP", "XX-NEW"]}
    with pytest.raises(ValueError, match="XX-NEW"):
        RuleSet.from_dict(data)


def test_version_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="version"):
        CONSENSUS_2014.with_overrides({}, version=0)


def test_rule_sets_are_hashable_and_compare_by_content():
    site = CONSENSUS_2014.with_overrides({"CV-SBP.hold_below": 85}, version=2)
    assert len({CONSENSUS_2014, LABEL_ONLY, site}) == 3
    assert site != CONSENSUS_2014.with_overrides({"CV-SBP.hold_below": 80}, version=2)


# --- display: where thresholds are drawn (the numbers stay the rule set's) ---------------------------------------


@pytest.mark.parametrize(
    ("key", "symbol"),
    [
        ("CV-SBP.hold_below", "<"),
        ("RS-SPO2.hold_at_or_below", "≤"),
        ("NE-RASS.hold_at_or_above", "≥"),
        ("CV-HR.hold_above", ">"),
        ("RS-O2.notify_above_lpm", ">"),
        ("RN-CREAT.hold_from", "≥"),
    ],
)
def test_a_thresholds_name_says_how_it_is_compared(key, symbol):
    from monitoring.domain.rulesets import comparison

    assert comparison(key) == symbol


def test_every_displayed_threshold_key_is_a_built_in_rule_sets():
    from monitoring.domain.rulesets import BOARD_MARKS, CONSENSUS_2014, LABEL_ONLY, PLOT_LINES

    known = set(CONSENSUS_2014.thresholds) | set(LABEL_ONLY.thresholds)
    shown = {key for _, key in BOARD_MARKS} | {key for lines in PLOT_LINES.values() for key, _ in lines}
    assert shown <= known, shown - known
