"""The ward board (/wards/{code}/): states, rule ids, vitals marks, counts, access, the htmx poll, query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling.models import Course, Dose
from scheduling.selectors import board
from tests.conftest import NOW
from tests.scheduling.mar.builders import populate_ward
from tests.scheduling.mar.conftest import record_assessment

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- board_state: pure -------------------------------------------------------------------------------------------


def slot(due_in_minutes: int, flag: str = "", status: str = "scheduled") -> Dose:
    return Dose(cycle=1, number=3, due_at=NOW + timedelta(minutes=due_in_minutes), flag=flag, status=status)


@pytest.mark.parametrize(
    ("course_status", "current", "last", "overridden", "expected"),
    [
        ("active", slot(30, "stop"), None, False, "stop"),
        ("active", slot(300, "hold"), None, False, "hold"),  # a hold shows whenever the slot is flagged
        ("active", slot(30, "hold"), None, True, "due_now"),  # an oncologist's override lifts it for the slot
        ("active", slot(30, "stop"), None, True, "stop"),  # a stop is never overridden
        ("active", slot(30, "incomplete"), None, False, "incomplete"),
        ("active", slot(300, "incomplete"), slot(-180, status="given"), False, "given"),  # not yet in its window
        ("active", slot(90), None, False, "due_soon"),  # due − 2 h … due − W
        ("active", slot(60), None, False, "due_soon"),  # inside the window but not yet on time: soon
        ("active", slot(31), None, False, "due_soon"),
        ("active", slot(30), None, False, "due_now"),  # due − the on-time margin (inclusive): given now is on time
        ("active", slot(0), None, False, "due_now"),
        ("active", slot(-1), None, False, "overdue"),  # after due, still chartable until due + W
        ("active", slot(-61), None, False, "overdue"),  # past due + W: overdue until the sweep marks it missed
        ("active", slot(121), slot(-360, status="given"), False, "given"),
        ("active", slot(121), slot(-360, status="held"), False, "held"),
        ("active", slot(121), slot(-360, status="missed"), False, "missed"),
        ("planned", slot(600), None, False, "upcoming"),
        ("rest", None, slot(-2000, status="given"), False, "rest"),
        ("scheduling", None, None, False, "scheduling"),
        ("active", None, slot(-30, status="given"), False, "given"),
    ],
)
def test_board_state(course_status, current, last, overridden, expected):
    state = board.board_state(course_status=course_status, current=current, last=last, now=NOW, overridden=overridden)
    assert state == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(38, "in 38 min"), (125, "in 2 h 05 min"), (-12, "12 min overdue"), (60 * 24 * 3 + 4 * 60, "in 3 d 4 h")],
)
def test_time_to_due(minutes, expected):
    assert board.time_to_due(NOW + timedelta(minutes=minutes), now=NOW) == expected


def test_vitals_marks_use_the_rule_set_thresholds():
    from monitoring.domain.rulesets import CONSENSUS_2014
    from monitoring.models import VitalSigns

    thresholds = dict(CONSENSUS_2014.thresholds)
    vitals = VitalSigns(
        sbp=89, dbp=50, heart_rate=121, resp_rate=31, spo2=90, temp_c=Decimal("40.1"), rhythm="af", o2_lpm=Decimal(2)
    )
    marks = {"sbp", "heart_rate", "resp_rate", "spo2", "temp_c", "rhythm", "o2_lpm"}
    assert board.vitals_marks(vitals, thresholds) == marks  # SpO2 90 holds (RS-SPO2 v2: ≤ 90)
    normal = VitalSigns(sbp=90, dbp=50, heart_rate=120, resp_rate=30, spo2=91, temp_c=Decimal("40.0"), rhythm="sinus")
    assert board.vitals_marks(normal, thresholds) == frozenset()
    # A site that holds at HR > 100 (CV-HR site option) sees 101 marked.
    normal.heart_rate = 101
    assert board.vitals_marks(normal, {**thresholds, "CV-HR.hold_above": 100}) == {"heart_rate"}
    # No number of its own: a rule set without the threshold marks nothing.
    assert board.vitals_marks(vitals, {}) == {"rhythm"}


# --- The board page ------------------------------------------------------------------------------------------------


@pytest.fixture
def ward_with_states(clock, ward_a, patient_a, oncologist, nurse_a, make_course):
    """Patient A: SBP 85 before a dose due in 20 min (hold, CV-SBP). Patient C: due in 40 min, normal vitals."""
    from il2ward.services import patient_create
    from scheduling.services import dose_evaluate
    from tests.scheduling.mar.conftest import ready_course

    patient_c = patient_create(
        mrn="A-0003", name="Cy Gamma", birth_date=NOW.date().replace(year=1960), ward=ward_a, by=oncologist, now=NOW
    )
    held = ready_course(
        patient_a,
        oncologist=oncologist,
        nurse=nurse_a,
        make_course=make_course,
        first_dose_at=NOW + timedelta(minutes=20),
        now=NOW,
    )
    due = ready_course(
        patient_c,
        oncologist=oncologist,
        nurse=nurse_a,
        make_course=make_course,
        first_dose_at=NOW + timedelta(minutes=40),
        now=NOW,
    )
    record_assessment(patient_a, nurse=nurse_a, now=NOW, sbp=85)
    record_assessment(patient_c, nurse=nurse_a, now=NOW, sbp=121)
    for course in (held, due):
        dose_evaluate(dose_id=course.doses.get(cycle=1, number=1).pk, now=NOW)
    return {"held": held, "due": due, "patient_c": patient_c}


def test_board_rows_show_state_rule_ids_vitals_and_counts(ward_with_states, ward_a):
    rows = {row.patient.mrn: row for row in board.ward_board(ward_a, now=NOW).rows}
    held, due = rows["A-0001"], rows["A-0003"]
    assert (held.state, held.rules, held.marks) == ("hold", ["CV-SBP"], frozenset({"sbp"}))
    assert (due.state, due.rules, due.marks) == ("due_soon", [], frozenset())  # 40 min: not yet on time
    assert held.due_in == "in 20 min" and due.due_in == "in 40 min"
    assert (held.cycle, held.day, held.given, held.held) == (1, 1, 0, 0)
    assert held.vitals.sbp == 85 and held.vitals_minutes == 5


def test_board_page_renders_the_rows_in_ward_time(client, ward_with_states, nurse_a):
    client.force_login(nurse_a)
    html = text(client.get("/wards/onc-a/"))
    assert 'data-state="hold"' in html and 'data-state="due_soon"' in html
    assert "CV-SBP" in html
    assert re.search(r'<span class="out-of-range">BP 85/62</span>', html)
    # Dose 1 due NOW + 20 min = 12:20 UTC = 06:20 in Chicago (CST).
    assert "C1 #1 · Wed 06:20" in html and "in 20 min" in html
    assert "12:20" not in html


def test_board_shows_a_given_dose_and_the_counts(client, clock, ward_with_states, nurse_a, nurse_a2):
    from scheduling.services import dose_administer

    dose = ward_with_states["due"].doses.get(cycle=1, number=1)
    dose_administer(
        dose_id=dose.pk,
        by=nurse_a,
        started_at=NOW,
        ended_at=None,
        verifier_username="nurse_a2",
        verifier_password="correct-horse-battery",
        verified_dose_iu=dose.course.dose_iu,
        early_reason="given with the 06:00 round",
        now=NOW,
    )
    ward_a = dose.course.patient.ward
    rows = {row.patient.mrn: row for row in board.ward_board(ward_a, now=NOW).rows}
    row = rows["A-0003"]
    assert (row.state, row.given, row.held) == ("given", 1, 0)
    assert row.current.number == 2 and row.last.number == 1
    # The board's own statement gives the times the ORM gives: the same instants, aware UTC.
    assert (row.last.due_at, row.last.given_at) == (dose.due_at, NOW) and row.last.given_at.utcoffset() == timedelta(0)
    assert row.current.due_at == dose.course.doses.get(cycle=1, number=2).due_at
    assert row.vitals.recorded_at.utcoffset() == timedelta(0)
    client.force_login(nurse_a)
    assert 'data-state="given"' in text(client.get(f"/wards/{ward_a.code}/"))


def test_board_lists_only_patients_on_il2(client, ward_with_states, ward_a, nurse_a, oncologist):
    from il2ward.services import patient_create

    patient_create(mrn="A-0009", name="No Course", birth_date=NOW.date(), ward=ward_a, by=oncologist, now=NOW)
    client.force_login(nurse_a)
    html = text(client.get("/wards/onc-a/"))
    assert "Pat Alpha" in html and "No Course" not in html


def test_another_wards_board_is_404(client, ward_with_states, nurse_b, ward_b):
    client.force_login(nurse_b)
    response = client.get("/wards/onc-a/")
    assert response.status_code == 404
    assert "Pat Alpha" not in response.content.decode()


def test_board_needs_login(client, ward_a):
    response = client.get("/wards/onc-a/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_home_sends_a_nurse_to_her_board(client, nurse_b, ward_b):
    client.force_login(nurse_b)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/wards/onc-b/"


def test_board_polls_every_30s_while_visible_with_the_poll_header(client, ward_with_states, nurse_a):
    client.force_login(nurse_a)
    html = client.get("/wards/onc-a/").content.decode()
    # While the tab is hidden il2ward.js cancels the poll (htmx's [filter] syntax needs eval, which the CSP refuses)
    # and asks for the board again when it is shown.
    assert 'hx-trigger="every 30s, il2ward:visible from:document" data-poll-when-visible' in html
    assert '"X-IL2Ward-Poll": "1"' in html or "&quot;X-IL2Ward-Poll&quot;: &quot;1&quot;" in html


def test_the_poll_returns_the_board_alone(client, ward_with_states, nurse_a):
    client.force_login(nurse_a)
    response = client.get("/wards/onc-a/", HTTP_HX_REQUEST="true", HTTP_X_IL2WARD_POLL="1")
    html = response.content.decode()
    assert response.status_code == 200
    # No ETag held: the summary and every row, as out-of-band swaps (test_board_poll.py: only what changed).
    assert html.lstrip().startswith('<div id="board-summary"') and "<html" not in html
    assert 'id="board-rows" hx-swap-oob="true"' in html and "CV-SBP" in html


# --- Query counts: flat in the number of patients ------------------------------------------------------------------

BOARD_QUERIES = 2  # the board statement (courses, their slots and counts, latest vitals); rule sets' thresholds


@pytest.mark.parametrize("patients", [5, 30, 120])
def test_ward_board_query_count_is_flat(patients, ward_a, oncologist, nurse_a, django_assert_num_queries):
    populate_ward(ward_a, patients=patients, now=NOW, oncologist=oncologist, nurse=nurse_a)
    with django_assert_num_queries(BOARD_QUERIES):
        result = board.ward_board(ward_a, now=NOW)
    assert len(result.rows) == patients
    states = {row.state for row in result.rows}
    assert "hold" in states and states & {"due_now", "due_soon", "given", "held", "incomplete"}
    assert patients < 7 or "rest" in states


def test_the_board_page_costs_the_same_queries_for_5_30_and_120_patients(client, ward_a, oncologist, nurse_a):
    client.force_login(nurse_a)
    counts = []
    start = 0
    for size in (5, 30, 120):
        populate_ward(ward_a, patients=size - start, now=NOW, oncologist=oncologist, nurse=nurse_a, start=start)
        start = size
        for poll in (False, True):
            headers = {"HTTP_HX_REQUEST": "true", "HTTP_X_IL2WARD_POLL": "1"} if poll else {}
            with CaptureQueriesContext(connection) as queries:
                response = client.get("/wards/onc-a/", **headers)
            assert response.status_code == 200
            assert response.content.decode().count('class="board-row') == size
            counts.append((poll, len(queries)))
    full = {n for poll, n in counts if not poll}
    polled = {n for poll, n in counts if poll}
    assert len(full) == 1 and len(polled) == 1, counts


def test_rest_and_held_rows_in_the_bulk_ward(ward_a, oncologist, nurse_a):
    populate_ward(ward_a, patients=14, now=NOW, oncologist=oncologist, nurse=nurse_a)
    rows = board.ward_board(ward_a, now=NOW).rows
    rest = [r for r in rows if r.course.status == Course.Status.REST]
    assert rest and all(r.state == "rest" for r in rest)
    held = [r for r in rows if r.state == "held"]
    assert all(r.rules == ["CV-SBP"] for r in held)


def test_a_charge_nurse_gets_the_assignments_link(client, ward_a, charge_nurse, nurse_a):
    client.force_login(charge_nurse)
    assert "/wards/onc-a/assignments/" in client.get("/wards/onc-a/").content.decode()
    client.force_login(nurse_a)
    assert "/wards/onc-a/assignments/" not in client.get("/wards/onc-a/").content.decode()


def test_bulk_ward_rows_show_the_given_time_and_only_standing_holds(ward_a, oncologist, nurse_a, nurse_a2):
    """The last slot's columns read with it: the time a dose was given (its due time once that administration is
    entered in error), and the rules of a hold still standing (none once the hold is entered in error)."""
    from scheduling.models import Administration, Hold

    populate_ward(ward_a, patients=14, now=NOW, oncologist=oncologist, nurse=nurse_a)

    def row(patient_pk=None, state="given"):
        result = board.ward_board(ward_a, now=NOW)
        pairs = zip(result.rows, result.views, strict=True)
        return next((r, v) for r, v in pairs if r.patient.pk == patient_pk or patient_pk is None and r.state == state)

    given, view = row()
    patient, due = given.patient.pk, given.last.due_at.astimezone(ward_a.zone)
    assert view.last.endswith(f"· due {due:%H:%M}")  # no administration charted in the bulk ward
    dose = Dose.objects.get(pk=given.last.pk)
    administration = Administration.objects.create(
        dose=dose, started_at=dose.due_at + timedelta(minutes=7), dose_iu=dose.course.dose_iu,
        dosing_weight_kg=Decimal("80.0"), dosing_weight_source="actual", given_by=nurse_a, verified_by=nurse_a2,
        timing="on_time", charted_at=dose.due_at + timedelta(minutes=8),
    )  # fmt: skip
    assert row(patient)[1].last.endswith(f"· given {due + timedelta(minutes=7):%H:%M}")
    Administration.objects.filter(pk=administration.pk).update(entered_in_error_at=NOW)
    assert row(patient)[1].last.endswith(f"· due {due:%H:%M}")

    Dose.objects.filter(pk=dose.pk).update(status=Dose.Status.HELD)
    Hold.objects.create(dose=dose, reason="CV-SBP", rule_ids=["CV-SBP", "TP-TEMP"], by=nurse_a, at=dose.due_at)
    held, view = row(patient)
    assert held.state == "held" and held.rules == ["CV-SBP", "TP-TEMP"] and view.rules[0][0] == "CV-SBP"
    Hold.objects.filter(dose=dose).update(entered_in_error_at=NOW)
    held, view = row(patient)
    assert held.state == "held" and held.rules == [] and view.rules == ()
