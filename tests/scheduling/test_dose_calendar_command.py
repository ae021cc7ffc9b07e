"""`manage.py dose_calendar` (API.md: Dose calendar without a database): exact slots across both DST changes.

No database mark: the command must work without one (pytest-django refuses any query here).
"""

import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def dose_calendar(*args) -> str:
    out = StringIO()
    call_command("dose_calendar", *args, stdout=out)
    return out.getvalue()


def as_json(*args) -> list[dict]:
    return json.loads(dose_calendar(*args, "--json"))


def by_slot(entries: list[dict]) -> dict[tuple[int, int], tuple[str, str]]:
    return {(e["cycle"], e["number"]): (e["due_at"], e["due_local"]) for e in entries}


def test_json_has_28_slots_two_cycles_of_14():
    entries = as_json("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago")
    assert len(entries) == 28
    assert [(e["cycle"], e["number"]) for e in entries] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert all(set(e) == {"cycle", "number", "due_at", "due_local"} for e in entries)


@pytest.mark.parametrize(
    ("slot", "due_at", "due_local"),
    [
        ((1, 1), "2027-03-12T22:00:00Z", "2027-03-12T16:00:00-06:00"),
        ((1, 5), "2027-03-14T06:00:00Z", "2027-03-14T00:00:00-06:00"),  # last slot before the 02:00 spring-forward
        ((1, 6), "2027-03-14T14:00:00Z", "2027-03-14T09:00:00-05:00"),  # 8 h elapsed, 9 h on the wall clock
        ((1, 14), "2027-03-17T06:00:00Z", "2027-03-17T01:00:00-05:00"),
        ((2, 1), "2027-03-26T21:00:00Z", "2027-03-26T16:00:00-05:00"),  # day 15 at the first dose's wall time
        ((2, 14), "2027-03-31T05:00:00Z", "2027-03-31T00:00:00-05:00"),
    ],
)
def test_chicago_across_the_march_2027_dst_change(slot, due_at, due_local):
    slots = by_slot(as_json("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago"))
    assert slots[slot] == (due_at, due_local)


@pytest.mark.parametrize(
    ("slot", "due_at", "due_local"),
    [
        ((1, 1), "2027-10-30T14:00:00Z", "2027-10-30T16:00:00+02:00"),
        ((1, 2), "2027-10-30T22:00:00Z", "2027-10-31T00:00:00+02:00"),  # last slot before the 03:00 fall-back
        ((1, 3), "2027-10-31T06:00:00Z", "2027-10-31T07:00:00+01:00"),  # 8 h elapsed, 7 h on the wall clock
        ((2, 1), "2027-11-13T15:00:00Z", "2027-11-13T16:00:00+01:00"),
    ],
)
def test_berlin_across_the_october_2027_dst_change(slot, due_at, due_local):
    slots = by_slot(as_json("--first-dose", "2027-10-30T16:00", "--tz", "Europe/Berlin"))
    assert slots[slot] == (due_at, due_local)


def test_slots_within_a_cycle_are_8_hours_of_elapsed_time_apart():
    entries = as_json("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago")
    for cycle in (1, 2):
        times = [datetime.fromisoformat(e["due_at"]) for e in entries if e["cycle"] == cycle]
        assert {b - a for a, b in zip(times, times[1:], strict=False)} == {timedelta(hours=8)}


def test_a_first_dose_with_an_offset_is_the_same_instant():
    local = as_json("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago")
    assert as_json("--first-dose", "2027-03-12T22:00:00Z", "--tz", "America/Chicago") == local
    assert as_json("--first-dose", "2027-03-12T17:00:00-05:00", "--tz", "America/Chicago") == local


def test_a_wall_time_in_the_spring_gap_moves_forward():
    first = as_json("--first-dose", "2027-03-14T02:30", "--tz", "America/Chicago")[0]
    assert (first["due_at"], first["due_local"]) == ("2027-03-14T08:30:00Z", "2027-03-14T03:30:00-05:00")


def test_one_cycle():
    entries = as_json("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago", "--cycles", "1")
    assert [e["number"] for e in entries] == list(range(1, 15)) and {e["cycle"] for e in entries} == {1}


def test_plain_output_lists_the_28_slots_in_ward_time():
    lines = dose_calendar("--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago").splitlines()
    assert len(lines) == 28
    assert lines[0] == "C1 # 1  Fri 2027-03-12 16:00 CST  (2027-03-12T22:00Z)"
    assert lines[5] == "C1 # 6  Sun 2027-03-14 09:00 CDT  (2027-03-14T14:00Z)"
    assert lines[14] == "C2 # 1  Fri 2027-03-26 16:00 CDT  (2027-03-26T21:00Z)"
    assert lines[27] == "C2 #14  Wed 2027-03-31 00:00 CDT  (2027-03-31T05:00Z)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--first-dose", "2027-03-12T16:00", "--tz", "Mars/Olympus"], "time zone"),
        (["--first-dose", "2027-03-12T16:00", "--tz", "America"], "time zone"),  # a directory, not a zone
        (["--first-dose", "2027-03-12T16:00", "--tz", "../../etc/passwd"], "time zone"),
        (["--first-dose", "next friday", "--tz", "America/Chicago"], "first-dose"),
        (["--first-dose", "2027-03-12T16:00", "--tz", "America/Chicago", "--cycles", "3"], "cycles"),
        (["--tz", "America/Chicago"], "first-dose"),
    ],
)
def test_bad_arguments_are_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        dose_calendar(*args)
