"""The demo ward (fixtures/demo.py) on the nurse's board: due, held and given doses read at a glance."""

import re

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_demo_ward_shows_due_hold_incomplete_rest_and_given_counts(client):
    from django.contrib.auth import get_user_model

    from fixtures import demo

    demo.load(now=timezone.now())
    client.force_login(get_user_model().objects.get(username="nurse"))
    html = re.sub(r"\s+", " ", client.get("/wards/onc4/").content.decode())
    rows = {}
    for row in html.split('<tr class="board-row')[1:]:
        row = row.split("</tr>")[0]
        name = re.search(r'<a class="fw-semibold[^"]*" href="/patients/\d+/">([^<]+)</a>', row).group(1)
        rows[name] = (re.search(r'data-state="(\w+)"', row).group(1), row)
    states = {name: state for name, (state, _) in rows.items()}
    assert states["Maria Lopez"] == "due_now"
    assert states["Priya Shah"] == "hold"
    assert states["Wei Chen"] == "incomplete"
    assert states["Tom Becker"] == "upcoming"
    assert states["James Okafor"] == "rest"
    assert states.get("Ana Silva", "given") == "given"  # no course yet, or dose 1 given (see the report)
    assert "CV-SBP" in rows["Priya Shah"][1] and '<span class="out-of-range">BP 85/' in rows["Priya Shah"][1]
    assert ">6 / 1<" in rows["Maria Lopez"][1]  # given / held this course
    assert ">12 / 2<" in rows["James Okafor"][1]
