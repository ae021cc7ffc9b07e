"""May a dose be charted as given? scheduling/domain/charting.py: each 409 code of API.md and the order they are
checked in (already charted → course → eligibility → SCH-WINDOW → discontinue → stop → hold → incomplete → SCH-PREP →
double check).
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.domain.charting import REFUSAL_ORDER, administer_refusal, in_future, open_dose_refusal

DUE = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)
IU = 48_000_000

# Everything in order: this administration may be charted.
GOOD = {
    "dose_status": "scheduled",
    "course_status": "active",
    "eligibility_attested": True,
    "due_at": DUE,
    "started_at": DUE - timedelta(minutes=5),
    "window_minutes": 60,
    "decision": "give",
    "hold_overridden": False,
    "reconstituted_at": DUE - timedelta(hours=1),
    "max_hours_after_reconstitution": 48,
    "dose_iu": IU,
    "verified_dose_iu": IU,
}

# One change per refusal that makes exactly that refusal apply.
BREAKS = {
    "already_charted": {"dose_status": "given"},
    "course_not_active": {"course_status": "stopped"},
    "eligibility_not_attested": {"eligibility_attested": False},
    "outside_window": {"started_at": DUE - timedelta(minutes=61)},
    "course_discontinued": {"course_discontinued": True},
    "stop_criteria_met": {"decision": "stop"},
    "hold_criteria_met": {"decision": "hold"},
    "assessment_incomplete": {"decision": "incomplete"},
    "preparation_expired": {"reconstituted_at": DUE - timedelta(minutes=5, hours=48, seconds=1)},
    "double_check_mismatch": {"verified_dose_iu": IU - 1},
}


def refusal(**changes):
    return administer_refusal(**{**GOOD, **changes})


def test_a_dose_with_everything_in_order_may_be_charted():
    assert refusal() is None


def test_every_code_in_the_order_is_tested():
    assert tuple(BREAKS) == REFUSAL_ORDER


@pytest.mark.parametrize("code", REFUSAL_ORDER)
def test_each_refusal_alone(code):
    assert refusal(**BREAKS[code]) == code


@pytest.mark.parametrize("index", range(len(REFUSAL_ORDER)))
def test_the_first_applicable_refusal_wins(index):
    """With this refusal and every later one applying at once, this one is reported (the nurse fixes it first).

    Stop, hold and incomplete are one input (the decision), so only the first of them can apply at a time."""
    decisions = ("stop_criteria_met", "hold_criteria_met", "assessment_incomplete")  # one input: the decision
    changes = {}
    for code in REFUSAL_ORDER[index:]:
        if code in decisions and "decision" in changes:
            continue
        changes.update(BREAKS[code])
    assert refusal(**changes) == REFUSAL_ORDER[index]


@pytest.mark.parametrize("status", ["given", "held", "missed"])
def test_a_charted_slot_is_already_charted_even_when_the_course_has_ended(status):
    assert refusal(dose_status=status, course_status="completed") == "already_charted"


@pytest.mark.parametrize(
    ("dose_status", "course_status"),
    [("cancelled", "active"), ("scheduled", "stopped"), ("scheduled", "completed"), ("scheduled", "scheduling")],
)
def test_a_cancelled_slot_or_a_course_not_running_is_course_not_active(dose_status, course_status):
    assert refusal(dose_status=dose_status, course_status=course_status) == "course_not_active"


@pytest.mark.parametrize("course_status", ["planned", "active", "rest"])
def test_a_planned_active_or_resting_course_may_be_charted(course_status):
    assert refusal(course_status=course_status) is None


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=-60), None),
        (timedelta(minutes=60), None),
        (timedelta(minutes=-60, microseconds=-1), "outside_window"),
        (timedelta(minutes=60, microseconds=1), "outside_window"),
    ],
)
def test_sch_window_boundaries_are_inclusive(offset, expected):
    assert refusal(started_at=DUE + offset, reconstituted_at=None) == expected


def test_a_site_window_of_30_minutes():
    assert refusal(started_at=DUE - timedelta(minutes=31), window_minutes=30) == "outside_window"
    assert refusal(started_at=DUE - timedelta(minutes=30), window_minutes=30) is None


def test_inv_disc_a_discontinue_decision_or_a_discontinued_course_is_never_given():
    assert refusal(decision="discontinue") == "course_discontinued"
    assert refusal(decision="discontinue", hold_overridden=True) == "course_discontinued"
    assert refusal(decision="give", course_discontinued=True) == "course_discontinued"
    assert refusal(decision="give", course_discontinued=False) is None  # the nearest allowed case


def test_inv_stop_a_slot_that_recommended_stop_is_never_given_even_when_it_now_gives():
    assert refusal(decision="give", stop_recommended=True) == "stop_criteria_met"
    assert refusal(decision="give", stop_recommended=False) is None


def test_inv_ovr_an_override_never_lifts_missing_data():
    assert refusal(decision="hold", hold_overridden=True, missing=("vitals",)) == "assessment_incomplete"
    assert refusal(decision="give", missing=("exam",)) == "assessment_incomplete"
    assert refusal(decision="hold", hold_overridden=True, missing=()) is None


def test_an_overridden_hold_may_be_charted_but_an_overridden_stop_may_not():
    assert refusal(decision="hold", hold_overridden=True) is None
    assert refusal(decision="stop", hold_overridden=True) == "stop_criteria_met"
    assert refusal(decision="incomplete", hold_overridden=True) == "assessment_incomplete"


@pytest.mark.parametrize("decision", ["", "unknown", None, "GIVE"])
def test_no_or_an_unknown_decision_never_lets_a_dose_through(decision):
    assert refusal(decision=decision) == "assessment_incomplete"


def test_sch_prep_48_hours_exactly_is_allowed_one_second_more_is_not():
    started = GOOD["started_at"]
    assert refusal(reconstituted_at=started - timedelta(hours=48)) is None
    assert refusal(reconstituted_at=started - timedelta(hours=48, seconds=1)) == "preparation_expired"
    assert refusal(reconstituted_at=None) is None  # not recorded: nothing to check


def test_the_double_check_is_compared_only_when_both_doses_are_given():
    assert refusal(verified_dose_iu=None) is None
    assert refusal(dose_iu=None, verified_dose_iu=1) is None
    assert refusal(verified_dose_iu=IU + 1) == "double_check_mismatch"


def test_naive_times_are_an_error_not_a_guess():
    with pytest.raises(ValueError):
        refusal(started_at=DUE.replace(tzinfo=None))


def test_open_dose_refusal_is_the_first_two_codes():
    assert open_dose_refusal(dose_status="scheduled", course_status="active") is None
    assert open_dose_refusal(dose_status="held", course_status="active") == "already_charted"
    assert open_dose_refusal(dose_status="cancelled", course_status="active") == "course_not_active"
    assert open_dose_refusal(dose_status="scheduled", course_status="rest") is None


@pytest.mark.parametrize(("minutes", "expected"), [(0, False), (5, False), (5.0001, True), (60, True), (-600, False)])
def test_in_future_tolerates_five_minutes_of_clock_difference(minutes, expected):
    now = DUE
    assert in_future(now + timedelta(minutes=minutes), now=now) is expected


@given(
    dose_status=st.sampled_from(["scheduled", "given", "held", "missed", "cancelled"]),
    course_status=st.sampled_from(["scheduling", "planned", "active", "rest", "completed", "stopped"]),
    attested=st.booleans(),
    offset=st.integers(min_value=-120 * 60, max_value=120 * 60),
    decision=st.sampled_from(["give", "hold", "stop", "discontinue", "incomplete", ""]),
    overridden=st.booleans(),
    missing=st.sampled_from([(), ("vitals",)]),
    discontinued=st.booleans(),
    stop_recommended=st.booleans(),
    age_hours=st.integers(min_value=0, max_value=96),
    verified=st.sampled_from([IU, IU - 1, None]),
)
def test_the_refusal_is_always_the_first_condition_that_holds(
    dose_status,
    course_status,
    attested,
    offset,
    decision,
    overridden,
    missing,
    discontinued,
    stop_recommended,
    age_hours,
    verified,
):
    """Model check: each condition computed independently, the function returns the first true one in order."""
    started = DUE + timedelta(seconds=offset)
    reconstituted = started - timedelta(hours=age_hours)
    conditions = {
        "already_charted": dose_status in ("given", "held", "missed"),
        "course_not_active": dose_status == "cancelled" or course_status not in ("planned", "active", "rest"),
        "eligibility_not_attested": not attested,
        "outside_window": abs(offset) > 3600,
        "course_discontinued": discontinued or decision == "discontinue",
        "stop_criteria_met": decision == "stop" or stop_recommended,
        "hold_criteria_met": decision == "hold" and not overridden,
        "assessment_incomplete": decision not in ("give", "hold", "stop") or bool(missing),
        "preparation_expired": age_hours > 48,
        "double_check_mismatch": verified is not None and verified != IU,
    }
    expected = next((code for code in REFUSAL_ORDER if conditions[code]), None)
    assert (
        administer_refusal(
            dose_status=dose_status,
            course_status=course_status,
            eligibility_attested=attested,
            due_at=DUE,
            started_at=started,
            window_minutes=60,
            decision=decision,
            hold_overridden=overridden,
            missing=missing,
            course_discontinued=discontinued,
            stop_recommended=stop_recommended,
            reconstituted_at=reconstituted,
            max_hours_after_reconstitution=48,
            dose_iu=IU,
            verified_dose_iu=verified,
        )
        == expected
    )
