"""The dosing window: SCH-WINDOW (HOLD-RULES.md §1). W = 60 min by default, 30 as a site option."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.domain.window import Timing, chartable, is_missed, timing_class, window_state

DUE = datetime.fromisoformat("2027-03-14T14:00:00+00:00")
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-60 * MINUTE - SECOND, False),
        (-60 * MINUTE, True),
        (timedelta(0), True),
        (60 * MINUTE, True),
        (60 * MINUTE + SECOND, False),
    ],
)
def test_sch_window_chartable_from_due_minus_w_to_due_plus_w(offset, expected):
    assert chartable(DUE, at=DUE + offset) is expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-30 * MINUTE - SECOND, False), (-30 * MINUTE, True), (30 * MINUTE, True), (30 * MINUTE + SECOND, False)],
)
def test_sch_window_time_critical_site_w30(offset, expected):
    assert chartable(DUE, at=DUE + offset, window_minutes=30) is expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), False),
        (60 * MINUTE - SECOND, False),
        (60 * MINUTE, False),  # at due + W the dose may still be charted
        (60 * MINUTE + timedelta(microseconds=1), True),
        (60 * MINUTE + SECOND, True),
    ],
)
def test_sch_window_missed_strictly_after_due_plus_w(offset, expected):
    assert is_missed(DUE, now=DUE + offset) is expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-60 * MINUTE, Timing.EARLY),
        (-30 * MINUTE - SECOND, Timing.EARLY),
        (-30 * MINUTE, Timing.ON_TIME),
        (timedelta(0), Timing.ON_TIME),
        (30 * MINUTE, Timing.ON_TIME),
        (30 * MINUTE + SECOND, Timing.LATE),
        (60 * MINUTE, Timing.LATE),
    ],
)
def test_sch_window_timing_class_on_time_within_30_min(offset, expected):
    assert timing_class(DUE, at=DUE + offset) is expected


def test_sch_window_timing_values_are_the_stored_strings():
    assert [t.value for t in Timing] == ["early", "on_time", "late"]
    assert Timing.ON_TIME == "on_time"


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (-120 * MINUTE - SECOND, "upcoming"),
        (-120 * MINUTE, "due_soon"),
        (-60 * MINUTE - SECOND, "due_soon"),
        (-60 * MINUTE, "due_now"),
        (timedelta(0), "due_now"),
        (SECOND, "overdue"),
        (60 * MINUTE, "overdue"),
        (60 * MINUTE + SECOND, "missed"),
    ],
)
def test_sch_window_board_states(offset, state):
    assert window_state(DUE, now=DUE + offset) == state


def test_sch_window_compares_instants_not_wall_clocks():
    chicago = ZoneInfo("America/Chicago")
    due = datetime(2027, 3, 14, 9, 0, tzinfo=chicago)  # 14:00Z, just after spring forward
    at = datetime(2027, 3, 14, 1, 30, tzinfo=chicago)  # 07:30Z: 6.5 h before, though the wall clocks differ by 7.5 h
    assert window_state(due, now=at) == "upcoming"
    assert chartable(due, at=due.astimezone(UTC) - 60 * MINUTE)


@pytest.mark.parametrize("fn", [chartable, timing_class])
def test_sch_window_refuses_naive_datetimes(fn):
    with pytest.raises(ValueError):
        fn(DUE, at=datetime(2027, 3, 14, 14, 0))


def test_sch_window_refuses_negative_window():
    with pytest.raises(ValueError):
        is_missed(DUE, now=DUE, window_minutes=-1)


@settings(max_examples=500, database=None)
@given(seconds=st.integers(-4 * 3600, 4 * 3600), w=st.sampled_from([30, 60]))
def test_sch_window_every_instant_is_exactly_one_of_early_chartable_missed(seconds, w):
    now = DUE + timedelta(seconds=seconds)
    too_early = now < DUE - timedelta(minutes=w)
    states = [too_early, chartable(DUE, at=now, window_minutes=w), is_missed(DUE, now=now, window_minutes=w)]
    assert states.count(True) == 1
    assert (window_state(DUE, now=now, window_minutes=w) == "missed") is is_missed(DUE, now=now, window_minutes=w)


def test_due_now_can_start_at_the_on_time_margin_rather_than_the_window():
    assert window_state(DUE, now=DUE - 31 * MINUTE, due_now_minutes=30) == "due_soon"
    assert window_state(DUE, now=DUE - 30 * MINUTE, due_now_minutes=30) == "due_now"
    assert window_state(DUE, now=DUE - 60 * MINUTE, due_now_minutes=90) == "due_now"  # never wider than W
    assert window_state(DUE, now=DUE - 61 * MINUTE, due_now_minutes=90) == "due_soon"
