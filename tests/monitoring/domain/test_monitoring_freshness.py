"""Freshness (HOLD-RULES.md §3): missing or stale data → `incomplete` with the list; rules still read old values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from monitoring.domain.engine import MISSING_NAMES, evaluate
from monitoring.domain.rulesets import CONSENSUS_2014, LABEL_ONLY
from monitoring.domain.snapshot import Event, FluidPeriod, PatientSnapshot, Reading

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)


def ago(value, **delta):
    return Reading(value, NOW - timedelta(**delta), f"old:{value}")


def run(snapshot, rule_set=CONSENSUS_2014, **changes):
    return evaluate(snapshot(NOW, **changes), rule_set=rule_set, now=NOW)


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        pytest.param({"sbp": ago(112, minutes=60)}, (), id="vitals 60 min old are fresh"),
        pytest.param({"sbp": ago(112, minutes=61)}, ("vitals",), id="vitals 61 min old are stale"),
        pytest.param({"temp_c": None}, ("vitals",), id="a required vital missing"),
        pytest.param({"resp_rate": ago(16, hours=3)}, ("vitals",), id="one stale vital"),
        pytest.param({"rhythm": None}, ("vitals",), id="INV-EXPLICIT: rhythm left out is missing"),
        pytest.param({"o2_lpm": None}, ("vitals",), id="INV-EXPLICIT: O2 left out is missing"),
        pytest.param({"o2_lpm": None, "fio2_pct": 21}, (), id="INV-EXPLICIT: FiO2 charted instead of a flow"),
        pytest.param({"phenylephrine_mcg_kg_min": None}, ("vitals",), id="INV-EXPLICIT: phenylephrine left out"),
        pytest.param({"other_pressor": None}, ("vitals",), id="INV-EXPLICIT: other pressor left out"),
        pytest.param({"neuro_check_failed": None}, ("neuro",), id="INV-EXPLICIT: neuro check left out"),
        pytest.param({"hallucinations": None}, ("neuro",), id="INV-EXPLICIT: hallucinations left out"),
        pytest.param({"rales": None}, ("exam",), id="INV-EXPLICIT: an exam answer left out"),
        pytest.param({"intubated": ago(False, minutes=120)}, (), id="exam 2 h old is fresh"),
        pytest.param({"intubated": ago(False, minutes=121)}, ("exam",), id="exam over 2 h old is stale"),
        pytest.param({"rass": ago(0, minutes=61)}, ("neuro",), id="neuro 61 min old"),
        pytest.param({"confusion": None}, ("neuro",), id="confusion missing"),
        pytest.param({"weight_kg": ago(D("80"), hours=24)}, (), id="weight 24 h old is fresh"),
        pytest.param({"weight_kg": ago(D("80"), hours=24, seconds=1)}, ("weight",), id="weight over 24 h"),
        pytest.param({"baseline_weight_kg": None}, ("baseline_weight",), id="no baseline weight for FL-WT"),
        pytest.param({"creatinine_mg_dl": ago(D("1.0"), hours=24)}, (), id="labs 24 h old are fresh"),
        pytest.param({"creatinine_mg_dl": ago(D("1.0"), hours=25)}, ("labs.creatinine",), id="creatinine 25 h"),
        pytest.param(
            {"platelets_k_ul": None, "bicarbonate_mmol_l": None},
            ("labs.platelets", "labs.bicarbonate"),
            id="two labs missing",
        ),
        pytest.param({"ast_u_l": None, "alt_u_l": None, "potassium_mmol_l": None}, (), id="AST ALT K not required"),
        pytest.param({"urine_periods": ()}, ("urine_8h",), id="no urine recorded"),
        pytest.param(
            {"urine_periods": (FluidPeriod(NOW - timedelta(hours=8), NOW - timedelta(minutes=1), 150),)},
            ("urine_8h",),
            id="urine record ends 1 min before the evaluation",
        ),
        pytest.param(
            {
                "urine_periods": (
                    FluidPeriod(NOW - timedelta(hours=8), NOW - timedelta(hours=5), 80),
                    FluidPeriod(NOW - timedelta(hours=4), NOW, 80),
                )
            },
            ("urine_8h",),
            id="a gap in the 8 h with 160 mL charted (could still hold)",
        ),
        pytest.param(
            {
                "urine_periods": (
                    FluidPeriod(NOW - timedelta(hours=8), NOW - timedelta(hours=5), 80),
                    FluidPeriod(NOW - timedelta(hours=4), NOW, 81),
                )
            },
            (),
            id="a gap in the 8 h with 161 mL charted (above the hold band: no gap can make it hold)",
        ),
        pytest.param(
            {"urine_periods": (FluidPeriod(NOW - timedelta(hours=7), NOW, 150),)}, ("urine_8h",), id="only 7 h recorded"
        ),
        pytest.param(
            {"urine_periods": (FluidPeriod(NOW - timedelta(hours=7), NOW, 800),)}, (), id="7 h with 800 mL is enough"
        ),
        pytest.param(
            {
                "urine_periods": (
                    FluidPeriod(NOW - timedelta(hours=8), NOW - timedelta(hours=3), 500),
                    FluidPeriod(NOW - timedelta(hours=3), NOW, 300),
                )
            },
            (),
            id="two periods without a gap",
        ),
        pytest.param({"urine_periods": (), "first_slot_of_cycle": True}, (), id="urine not required at a first slot"),
    ],
)
def test_missing_or_stale_data_is_incomplete_with_the_list(snapshot, changes, missing):
    evaluation = run(snapshot, **changes)
    assert evaluation.missing == missing
    assert evaluation.decision == ("incomplete" if missing else "give")
    assert evaluation.findings == ()


def test_everything_missing_lists_every_item_in_order():
    evaluation = evaluate(PatientSnapshot(), rule_set=CONSENSUS_2014, now=NOW)
    assert evaluation.decision == "incomplete"
    assert evaluation.missing == (
        "vitals",
        "neuro",
        "exam",
        "weight",
        "baseline_weight",
        "urine_8h",
        "labs.creatinine",
        "labs.platelets",
        "labs.bilirubin",
        "labs.bicarbonate",
    )
    assert set(evaluation.missing) <= set(MISSING_NAMES)


def test_label_only_needs_no_weight_and_only_creatinine():
    evaluation = evaluate(PatientSnapshot(), rule_set=LABEL_ONLY, now=NOW)
    assert evaluation.missing == ("vitals", "neuro", "exam", "urine_8h", "labs.creatinine")


def test_sbp_85_with_labs_missing_is_hold(snapshot):
    evaluation = run(
        snapshot, sbp=85, creatinine_mg_dl=None, platelets_k_ul=None, bilirubin_mg_dl=None, bicarbonate_mmol_l=None
    )
    assert evaluation.decision == "hold"
    assert [f.rule for f in evaluation.findings] == ["CV-SBP"]
    assert evaluation.missing == ("labs.creatinine", "labs.platelets", "labs.bilirubin", "labs.bicarbonate")


def test_a_stale_bad_reading_still_holds_and_a_fresh_normal_one_replaces_it(snapshot):
    stale = run(snapshot, sbp=ago(85, hours=2))
    assert (stale.decision, stale.missing) == ("hold", ("vitals",))
    assert [f.rule for f in stale.findings] == ["CV-SBP"]
    fresh = run(snapshot, sbp=ago(104, minutes=5))
    assert (fresh.decision, fresh.findings, fresh.missing) == ("give", (), ())


def test_a_stop_outranks_missing_data(snapshot):
    evaluation = run(snapshot, heart_rate=ago(135, hours=3), rass=None)
    assert evaluation.decision == "stop"
    assert evaluation.missing == ("vitals", "neuro")


def test_a_reading_dated_after_now_is_not_yet_present(snapshot):
    future = Reading(70, NOW + timedelta(minutes=1), "vitals:future")
    evaluation = run(snapshot, sbp=future)
    assert evaluation.findings == ()
    assert (evaluation.decision, evaluation.missing) == ("incomplete", ("vitals",))
    assert "vitals:future" not in evaluation.used


def test_a_fluid_period_ending_after_now_is_ignored(snapshot):
    periods = (FluidPeriod(NOW - timedelta(hours=8), NOW + timedelta(minutes=5), 10, 0, "fluids:future"),)
    evaluation = run(snapshot, urine_periods=periods)
    assert evaluation.findings == () and evaluation.missing == ("urine_8h",)


def test_urine_charted_with_the_assessment_counts_for_an_hour(snapshot):
    """The 8 h urine charted with the pre-dose assessment (up to 60 min before) still counts at the dose."""
    periods = (FluidPeriod(NOW - timedelta(hours=8, minutes=30), NOW - timedelta(minutes=30), 800, 0, "f:1"),)
    assert run(snapshot, urine_periods=periods).decision == "give"
    late = (FluidPeriod(NOW - timedelta(hours=9, minutes=1), NOW - timedelta(minutes=61), 800, 0, "f:1"),)
    assert run(snapshot, urine_periods=late).missing == ("urine_8h",)


def test_urine_gap_tolerance_is_a_site_threshold(snapshot):
    periods = (FluidPeriod(NOW - timedelta(hours=8, minutes=30), NOW - timedelta(minutes=30), 800, 0, "f:1"),)
    strict = CONSENSUS_2014.with_overrides({"freshness.urine_end_tolerance_minutes": 0}, version=2)
    assert run(snapshot, rule_set=strict, urine_periods=periods).missing == ("urine_8h",)


def test_freshness_limits_are_thresholds(snapshot):
    relaxed = CONSENSUS_2014.with_overrides({"freshness.vitals_minutes": 120}, version=2)
    assert run(snapshot, rule_set=relaxed, sbp=ago(112, minutes=90)).decision == "give"
    assert run(snapshot, sbp=ago(112, minutes=90)).decision == "incomplete"


def test_used_lists_the_source_ids_read(snapshot):
    evaluation = run(snapshot, events=["edema"])
    assert {"sbp:1", "heart_rate:1", "rass:1", "weight_kg:1", "creatinine_mg_dl:1", "fluids:2"} <= set(evaluation.used)
    assert len(evaluation.used) == len(set(evaluation.used))
    flagged = run(snapshot, events=["infection"])
    assert "event:infection" in flagged.used


def test_naive_times_are_refused(snapshot):
    with pytest.raises(ValueError, match="aware"):
        evaluate(snapshot(NOW), rule_set=CONSENSUS_2014, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="aware"):
        Reading(90, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="aware"):
        Event("infection", NOW, resolved_at=NOW.replace(tzinfo=None))


def test_an_unknown_rhythm_or_confusion_value_fails_loudly():
    with pytest.raises(ValueError, match="rhythm"):
        PatientSnapshot(rhythm=Reading("afib", NOW))
    with pytest.raises(ValueError, match="confusion"):
        PatientSnapshot(confusion=Reading("a bit", NOW))


def test_first_slot_still_reads_a_recorded_low_urine(snapshot):
    # Not required is not ignored: a short-but-complete low record of this cycle still counts.
    periods = (FluidPeriod(NOW - timedelta(hours=8), NOW, 50, 0, "f:1"),)
    evaluation = run(snapshot, urine_periods=periods, first_slot_of_cycle=True)
    assert evaluation.decision == "stop"
    assert [f.rule for f in evaluation.findings] == ["RN-UO"]


def test_evaluated_at_and_to_dict_times_are_utc_z(snapshot):
    local = NOW.astimezone(ZoneInfo("America/Chicago"))
    evaluation = evaluate(snapshot(NOW), rule_set=CONSENSUS_2014, now=local)
    assert evaluation.to_dict()["evaluated_at"] == "2027-03-12T16:00:00Z"
