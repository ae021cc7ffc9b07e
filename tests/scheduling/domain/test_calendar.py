"""Calendar: SCH-SLOTS, SCH-CYCLE2, SCH-NOMAKEUP (HOLD-RULES.md §1). Pure: no Django, no database."""

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from scheduling.domain.calendar import (
    Slot,
    course_slots,
    cycle2_default_start,
    cycle2_start_allowed,
    cycle_slots,
    earliest_cycle2_start,
    given_cap_reached,
    slots_to_json,
    to_local_aware,
)

CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
EIGHT_HOURS = timedelta(hours=8)


def at(iso: str) -> datetime:
    """An aware datetime from ISO text with an offset or a trailing Z."""
    value = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    assert value.tzinfo is not None
    return value


def local_times(slots: list[Slot], zone: ZoneInfo) -> list[str]:
    return [row["due_local"] for row in slots_to_json(slots, zone)]


# --- to_local_aware ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "expected"),
    [
        (CHICAGO, datetime(2027, 3, 14, 2, 30), "2027-03-14T03:30:00-05:00"),  # gap: forward by 1 h
        (CHICAGO, datetime(2027, 11, 7, 1, 30), "2027-11-07T01:30:00-05:00"),  # overlap: first occurrence (CDT)
        (BERLIN, datetime(2027, 3, 28, 2, 30), "2027-03-28T03:30:00+02:00"),
        (BERLIN, datetime(2027, 10, 31, 2, 30), "2027-10-31T02:30:00+02:00"),
        (LORD_HOWE, datetime(2027, 10, 3, 2, 15), "2027-10-03T02:45:00+11:00"),  # 30-minute gap
        (LORD_HOWE, datetime(2027, 4, 4, 1, 45), "2027-04-04T01:45:00+11:00"),  # 30-minute overlap, first
        (CHICAGO, datetime(2027, 7, 1, 9, 0), "2027-07-01T09:00:00-05:00"),  # ordinary time unchanged
    ],
)
def test_sch_cycle2_to_local_aware_gap_forward_overlap_first(zone, wall, expected):
    assert to_local_aware(wall, zone).isoformat() == expected


def test_to_local_aware_refuses_aware_input():
    with pytest.raises(ValueError):
        to_local_aware(at("2027-03-14T02:30:00Z"), CHICAGO)


# --- SCH-SLOTS across DST -----------------------------------------------------------------------------------------


def test_sch_slots_chicago_spring_forward_later_slots_move_one_hour_later():
    slots = course_slots(at("2027-03-12T22:00:00Z"), zone=CHICAGO)  # Fri 16:00 CST; clocks go forward Sun 02:00
    assert local_times(slots[:14], CHICAGO) == [
        "2027-03-12T16:00:00-06:00",
        "2027-03-13T00:00:00-06:00",
        "2027-03-13T08:00:00-06:00",
        "2027-03-13T16:00:00-06:00",
        "2027-03-14T00:00:00-06:00",
        "2027-03-14T09:00:00-05:00",  # 8 h elapsed, but the local clock reads 9 h later
        "2027-03-14T17:00:00-05:00",
        "2027-03-15T01:00:00-05:00",
        "2027-03-15T09:00:00-05:00",
        "2027-03-15T17:00:00-05:00",
        "2027-03-16T01:00:00-05:00",
        "2027-03-16T09:00:00-05:00",
        "2027-03-16T17:00:00-05:00",
        "2027-03-17T01:00:00-05:00",  # a 16:00 start ends cycle 1 just after midnight on local day 6
    ]
    assert all(b.due_at - a.due_at == EIGHT_HOURS for a, b in zip(slots[:13], slots[1:14], strict=True))
    assert slots[14].due_at == at("2027-03-26T16:00:00-05:00")  # day 15 at the same wall time, now CDT


def test_sch_slots_chicago_fall_back_later_slots_move_one_hour_earlier():
    slots = course_slots(at("2027-11-05T08:00:00-05:00"), zone=CHICAGO)  # clocks go back Sun 2027-11-07 02:00
    assert local_times(slots[4:9], CHICAGO) == [
        "2027-11-06T16:00:00-05:00",
        "2027-11-07T00:00:00-05:00",
        "2027-11-07T07:00:00-06:00",
        "2027-11-07T15:00:00-06:00",
        "2027-11-07T23:00:00-06:00",
    ]
    assert slots[13].due_at == at("2027-11-09T21:00:00Z")  # 104 h elapsed, whatever the clocks did
    assert slots[14].due_at == at("2027-11-19T08:00:00-06:00")  # day 15 at 08:00 local, now CST


def test_sch_slots_berlin_spring_forward():
    slots = course_slots(at("2027-03-26T10:00:00+01:00"), zone=BERLIN)  # clocks go forward Sun 2027-03-28 02:00
    assert local_times(slots[4:8], BERLIN) == [
        "2027-03-27T18:00:00+01:00",
        "2027-03-28T03:00:00+02:00",  # due at the very instant of the change (01:00Z)
        "2027-03-28T11:00:00+02:00",
        "2027-03-28T19:00:00+02:00",
    ]
    assert slots[14].due_at == at("2027-04-09T10:00:00+02:00")


def test_sch_slots_berlin_fall_back():
    slots = course_slots(at("2027-10-29T14:00:00+02:00"), zone=BERLIN)  # clocks go back Sun 2027-10-31 03:00
    assert local_times(slots[4:7], BERLIN) == [
        "2027-10-30T22:00:00+02:00",
        "2027-10-31T05:00:00+01:00",
        "2027-10-31T13:00:00+01:00",
    ]
    assert slots[14].due_at == at("2027-11-12T14:00:00+01:00")


def test_sch_slots_lord_howe_half_hour_spring_forward():
    slots = course_slots(at("2027-10-01T10:00:00+10:30"), zone=LORD_HOWE)  # 2027-10-03 02:00 → 02:30
    assert local_times(slots[4:8], LORD_HOWE) == [
        "2027-10-02T18:00:00+10:30",
        "2027-10-03T02:30:00+11:00",
        "2027-10-03T10:30:00+11:00",  # later slots move by 30 minutes
        "2027-10-03T18:30:00+11:00",
    ]
    assert slots[14].due_at == at("2027-10-15T10:00:00+11:00")


def test_sch_slots_lord_howe_half_hour_fall_back():
    slots = course_slots(at("2027-04-02T10:00:00+11:00"), zone=LORD_HOWE)  # 2027-04-04 02:00 → 01:30
    assert local_times(slots[4:7], LORD_HOWE) == [
        "2027-04-03T18:00:00+11:00",
        "2027-04-04T01:30:00+10:30",
        "2027-04-04T09:30:00+10:30",
    ]
    assert slots[14].due_at == at("2027-04-16T10:00:00+10:30")


# --- SCH-CYCLE2: day 15 in gaps and overlaps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first", "expected_cycle2"),
    [
        # the day-15 wall time does not exist: moves forward by the gap
        (CHICAGO, "2027-02-28T02:30:00-06:00", "2027-03-14T03:30:00-05:00"),
        (BERLIN, "2027-03-14T02:30:00+01:00", "2027-03-28T03:30:00+02:00"),
        (LORD_HOWE, "2027-09-19T02:15:00+10:30", "2027-10-03T02:45:00+11:00"),
        # the day-15 wall time happens twice: first occurrence
        (CHICAGO, "2027-10-24T01:30:00-05:00", "2027-11-07T01:30:00-05:00"),
        (BERLIN, "2027-10-17T02:30:00+02:00", "2027-10-31T02:30:00+02:00"),
        (LORD_HOWE, "2027-03-21T01:45:00+11:00", "2027-04-04T01:45:00+11:00"),
    ],
)
def test_sch_cycle2_day15_wall_time_in_gap_or_overlap(zone, first, expected_cycle2):
    start = cycle2_default_start(at(first), zone=zone)
    assert start == at(expected_cycle2)
    assert start.astimezone(zone).isoformat() == expected_cycle2
    assert start.tzinfo is UTC
    slots = course_slots(at(first), zone=zone)
    assert slots[14] == Slot(2, 1, start)
    assert slots[15].due_at - slots[14].due_at == EIGHT_HOURS


def test_sch_cycle2_first_dose_in_second_occurrence_keeps_wall_time():
    first = at("2027-11-07T01:30:00-06:00")  # the second 01:30 (CST)
    assert cycle2_default_start(first, zone=CHICAGO) == at("2027-11-21T01:30:00-06:00")


# --- SCH-CYCLE2: the oncologist's later start and the 9-rest-day floor ------------------------------------------------


def test_sch_cycle2_earliest_is_nine_local_days_after_cycle1_last_slot():
    last = at("2027-03-17T01:00:00-05:00")  # slot 14 of the 16:00 CST start above
    assert earliest_cycle2_start(last, zone=CHICAGO) == at("2027-03-26T01:00:00-05:00")
    assert cycle2_start_allowed(at("2027-03-26T01:00:00-05:00"), cycle1_last_due=last, zone=CHICAGO)
    assert not cycle2_start_allowed(at("2027-03-26T00:59:59-05:00"), cycle1_last_due=last, zone=CHICAGO)


def test_sch_cycle2_floor_counts_local_days_across_dst():
    last = at("2027-03-10T09:00:00-06:00")  # 9 local days later is after spring forward: 215 h elapsed
    assert earliest_cycle2_start(last, zone=CHICAGO) == at("2027-03-19T09:00:00-05:00")


def test_sch_cycle2_default_day15_allowed_even_when_cycle1_ends_on_local_day6():
    """A 16:00 start puts slot 14 at 01:00 on day 6; day 15 must still be allowed: why the floor is not dates."""
    first = at("2027-03-12T16:00:00-06:00")
    slots = course_slots(first, zone=CHICAGO)
    day6 = first.astimezone(CHICAGO).date() + timedelta(days=5)
    assert slots[13].due_at.astimezone(CHICAGO).date() == day6
    assert cycle2_start_allowed(slots[14].due_at, cycle1_last_due=slots[13].due_at, zone=CHICAGO)


def test_sch_cycle2_oncologist_may_move_later():
    first = at("2027-03-12T16:00:00-06:00")
    later = at("2027-03-29T10:00:00-05:00")
    slots = course_slots(first, zone=CHICAGO, cycle2_first_at=later)
    assert [s.due_at for s in slots[14:16]] == [later, later + EIGHT_HOURS]
    assert slots[:14] == course_slots(first, zone=CHICAGO)[:14]


def test_sch_cycle2_never_earlier_than_nine_rest_days():
    first = at("2027-03-12T16:00:00-06:00")
    with pytest.raises(ValueError):
        course_slots(first, zone=CHICAGO, cycle2_first_at=at("2027-03-25T16:00:00-05:00"))


# --- shape, validation, JSON, caps ----------------------------------------------------------------------------------


def test_sch_slots_course_has_28_slots_numbered_per_cycle():
    slots = course_slots(at("2027-06-01T09:00:00+02:00"), zone=BERLIN)
    assert [(s.cycle, s.number) for s in slots] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert all(s.due_at.tzinfo is UTC for s in slots)


def test_sch_slots_one_cycle_course_and_cycle_slots():
    first = at("2027-06-01T07:00:00Z")
    assert course_slots(first, zone=BERLIN, cycles=1) == cycle_slots(first, cycle=1)
    assert cycle_slots(first, cycle=2, per_cycle=3) == [
        Slot(2, 1, first),
        Slot(2, 2, first + EIGHT_HOURS),
        Slot(2, 3, first + 2 * EIGHT_HOURS),
    ]


@pytest.mark.parametrize("kwargs", [{"cycles": 3}, {"cycles": 0}, {"per_cycle": 0}, {"interval_hours": 0}])
def test_course_slots_rejects_bad_shape(kwargs):
    with pytest.raises(ValueError):
        course_slots(at("2027-06-01T07:00:00Z"), zone=BERLIN, **kwargs)


def test_course_slots_rejects_naive_datetimes():
    with pytest.raises(ValueError):
        course_slots(datetime(2027, 6, 1, 9, 0), zone=BERLIN)
    with pytest.raises(ValueError):
        course_slots(at("2027-06-01T07:00:00Z"), zone=BERLIN, cycle2_first_at=datetime(2027, 6, 20, 9, 0))
    with pytest.raises(ValueError):
        cycle2_default_start(datetime(2027, 6, 1, 9, 0), zone=BERLIN)


def test_slot_is_frozen():
    slot = Slot(1, 1, at("2027-06-01T07:00:00Z"))
    with pytest.raises(FrozenInstanceError):
        slot.number = 2


def test_slots_to_json_public_format():
    rows = slots_to_json(course_slots(at("2027-03-12T22:00:00Z"), zone=CHICAGO), CHICAGO)
    assert len(rows) == 28
    assert rows[0] == {
        "cycle": 1,
        "number": 1,
        "due_at": "2027-03-12T22:00:00Z",
        "due_local": "2027-03-12T16:00:00-06:00",
    }
    assert rows[14] == {
        "cycle": 2,
        "number": 1,
        "due_at": "2027-03-26T21:00:00Z",
        "due_local": "2027-03-26T16:00:00-05:00",
    }


def test_sch_nomakeup_slots_are_anchored_to_the_first_dose():
    """Nothing about held or missed slots is an input: slot k is always first + (k−1) × 8 h (SCH-NOMAKEUP)."""
    first = at("2027-03-12T22:00:00Z")
    slots = course_slots(first, zone=CHICAGO)
    assert [s.due_at for s in slots[:14]] == [first + k * EIGHT_HOURS for k in range(14)]


@pytest.mark.parametrize(
    ("in_cycle", "in_course", "reached"),
    [(0, 0, False), (13, 27, False), (14, 14, True), (5, 28, True), (13, 13, False), (14, 28, True)],
)
def test_sch_nomakeup_given_caps(in_cycle, in_course, reached):
    assert given_cap_reached(in_cycle, in_course) is reached


def test_sch_nomakeup_given_caps_reject_negative_counts():
    with pytest.raises(ValueError):
        given_cap_reached(-1, 0)


# --- properties over many zones -------------------------------------------------------------------------------------

ZONES = st.sampled_from(sorted(available_timezones()))
FIRST_DOSES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2037, 11, 1), timezones=st.just(UTC))
PROPERTY_SETTINGS = settings(max_examples=1000, deadline=None, database=None)


def _offset_swing(first: datetime, zone: ZoneInfo) -> timedelta:
    """Largest change of the zone's UTC offset over the 20 days from the first dose."""
    offsets = [(first + k * EIGHT_HOURS).astimezone(zone).utcoffset() for k in range(61)]
    return max(offsets) - min(offsets)


def _check_course(first: datetime, zone: ZoneInfo) -> None:
    slots = course_slots(first, zone=zone)
    # 14 slots per cycle, aware UTC, strictly increasing, exactly 8 h elapsed within a cycle (SCH-SLOTS)
    assert [(s.cycle, s.number) for s in slots] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert all(s.due_at.tzinfo is UTC for s in slots)
    assert slots[0].due_at == first
    assert all(a.due_at < b.due_at for a, b in zip(slots, slots[1:], strict=False))
    for a, b in zip(slots, slots[1:], strict=False):
        if a.cycle == b.cycle:
            assert b.due_at - a.due_at == EIGHT_HOURS
            # the local clock moves by 8 h plus whatever shift happened in between
            la, lb = a.due_at.astimezone(zone), b.due_at.astimezone(zone)
            assert lb.replace(tzinfo=None) - la.replace(tzinfo=None) == EIGHT_HOURS + lb.utcoffset() - la.utcoffset()

    # cycle 2 slot 1: local date of C1S1 + 14 days at C1S1's wall time; gap → forward by the gap; overlap → first
    start_local = first.astimezone(zone)
    wall = datetime.combine(start_local.date() + timedelta(days=14), start_local.time().replace(fold=0))
    before, after = (wall.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1))  # PEP 495: in a gap before < after
    c2 = slots[14].due_at.astimezone(zone)
    expected_wall = wall + (after - before) if before < after else wall
    event("day-15 wall time: " + ("gap" if before < after else "overlap" if before > after else "ordinary"))
    assert c2.replace(tzinfo=None) == expected_wall
    if before > after:
        assert c2.utcoffset() == before
    assert cycle2_start_allowed(slots[14].due_at, cycle1_last_due=slots[13].due_at, zone=zone)

    # rest days 6–14: nothing on days 7–14; day 6 only holds the last slots of cycle 1, for starts late in the day
    # (C1S14 from 16:00; C1S13 too when a spring-forward shift pushes a 23:00 start past midnight, as in
    # America/Tegucigalpa on 1988-05-01)
    day = {s: (s.due_at.astimezone(zone).date() - start_local.date()).days + 1 for s in slots}
    assert all(1 <= day[s] <= 6 for s in slots[:14])
    assert all(day[s] >= 15 for s in slots[14:])
    assert all(s in slots[12:14] for s in slots if day[s] == 6)
    if start_local.time() < time(14, 0):  # 104 h + a shift of at most 2 h stays within day 5
        assert all(day[s] <= 5 for s in slots[:14])


@PROPERTY_SETTINGS
@given(zone_name=ZONES, first=FIRST_DOSES)
@example(zone_name="America/Tegucigalpa", first=datetime(1988, 5, 1, 5, 0, tzinfo=UTC))  # found by hypothesis in CI
def test_sch_slots_and_cycle2_properties_any_zone(zone_name, first):
    zone = ZoneInfo(zone_name)
    assume(_offset_swing(first, zone) <= timedelta(hours=2))  # excludes date-line day skips such as Samoa 2011
    _check_course(first, zone)


@cache
def _transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """UTC instants (to the minute) at which the zone's offset changes during `year`."""
    zone = ZoneInfo(zone_name)
    found = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    while t.year == year:
        if t.astimezone(zone).utcoffset() != (t + step).astimezone(zone).utcoffset():
            lo, hi = t, t + step
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset() else (lo, mid)
            found.append(hi)
        t += step
    return tuple(found)


DST_ZONES = sorted(
    name
    for name in available_timezones()
    if len({datetime(2027, month, 1, tzinfo=UTC).astimezone(ZoneInfo(name)).utcoffset() for month in (1, 7)}) == 2
)


@PROPERTY_SETTINGS
@given(
    data=st.data(), zone_name=st.sampled_from(DST_ZONES), year=st.integers(2000, 2037), minutes=st.integers(-90, 150)
)
def test_sch_cycle2_properties_when_day15_is_near_a_dst_change(data, zone_name, year, minutes):
    """Aim cycle 2 slot 1 at ±2 h around a real offset change, so gaps and overlaps are exercised in many zones."""
    changes = _transitions(zone_name, year)
    assume(changes)
    change = data.draw(st.sampled_from(changes))
    zone = ZoneInfo(zone_name)
    change_wall = (change - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None) + timedelta(minutes=1)
    first = to_local_aware(change_wall + timedelta(minutes=minutes) - timedelta(days=14), zone).astimezone(UTC)
    assume(_offset_swing(first, zone) <= timedelta(hours=2))
    _check_course(first, zone)


@PROPERTY_SETTINGS
@given(zone_name=ZONES, wall=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2037, 12, 31)))
def test_to_local_aware_keeps_wall_time_except_in_gaps(zone_name, wall):
    zone = ZoneInfo(zone_name)
    result = to_local_aware(wall, zone)
    before, after = (wall.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1))
    assert result.replace(tzinfo=None) == (wall + (after - before) if before < after else wall)
    assert result.utcoffset() == (after if before < after else before)
