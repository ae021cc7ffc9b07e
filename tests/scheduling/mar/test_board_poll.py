"""The ward board's poll: 304 while nothing it shows has changed, otherwise only the rows that changed (htmx
out-of-band swaps), with rows added and removed; the ward's change counter (il2ward/board_version.py) behind it."""

import re
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from il2ward import board_version
from il2ward.models import Ward
from monitoring.domain import engine
from scheduling.selectors import board
from tests.charting import EXPLICIT_VITALS
from tests.conftest import NOW, PASSWORD
from tests.scheduling.mar.builders import populate_ward

pytestmark = pytest.mark.django_db
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_X_IL2WARD_POLL": "1"}
ROW = re.compile(r'<tr id="board-row-(\d+)"[^>]*data-v="(\w+)"')


@contextmanager
def committed():
    """Run the board's after-commit bump as the commit would (the test's transaction never commits; the other
    after-commit work, task publishing, is left out)."""
    yield
    board_version._flush()


class Screen:
    """A board page as the browser holds it: its ETag and its rows' fingerprints, updated by each poll."""

    def __init__(self, client, url="/wards/onc-a/"):
        self.client, self.url = client, url
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        self.etag = page["ETag"]
        assert f'data-etag="{self.etag}"' in html.replace("&quot;", '"')
        self.rows = dict(ROW.findall(html))

    def poll(self):
        header = " ".join(f"{pk}:{key}" for pk, key in self.rows.items())
        response = self.client.get(self.url, HTTP_IF_NONE_MATCH=self.etag, HTTP_X_IL2WARD_ROWS=header, **POLL)
        self.etag = response["ETag"]
        if response.status_code == 200:
            html = response.content.decode()
            self.rows.update(ROW.findall(html))
            for pk in re.findall(r'<tr id="board-row-(\d+)" hx-swap-oob="delete">', html):
                self.rows.pop(pk)
        return response


def swapped_rows(response) -> list[str]:
    return re.findall(r'<tr id="board-row-(\d+)"[^>]*hx-swap-oob="true"', response.content.decode())


def added_rows(response) -> list[str]:
    html = response.content.decode()
    block = re.search(r'<tbody hx-swap-oob="beforeend:#board-rows">(.*?)</tbody>', html, re.S)
    return re.findall(r'<tr id="board-row-(\d+)"', block.group(1)) if block else []


@pytest.fixture
def ward_30(ward_a, oncologist, nurse_a):
    return populate_ward(ward_a, patients=30, now=NOW, oncologist=oncologist, nurse=nurse_a)


@pytest.fixture
def screen(client, clock, ward_30, nurse_a):
    board_version._flush()  # what the fixtures' writes left pending (a test's transaction never commits)
    client.force_login(nurse_a)
    return Screen(client)


def test_an_unchanged_poll_is_304_with_a_constant_small_number_of_queries(client, clock, ward_a, oncologist, nurse_a):
    client.force_login(nurse_a)
    counts = []
    start = 0
    for size in (5, 40):
        populate_ward(ward_a, patients=size - start, now=NOW, oncologist=oncologist, nurse=nurse_a, start=start)
        start = size
        Ward.objects.filter(pk=ward_a.pk).update(board_version=size)  # bulk rows bypass the services
        screen = Screen(client)
        with CaptureQueriesContext(connection) as queries:
            response = screen.poll()
        assert response.status_code == 304 and response.content == b""
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 4, counts  # session, user, ward (the nearest 200 costs the board's 5 more)


def test_a_poll_without_the_etag_gets_the_board(screen, client):
    response = client.get(screen.url, **POLL)  # the same minute, the same ward, but no ETag sent
    assert response.status_code == 200
    assert 'id="board-rows" hx-swap-oob="true"' in response.content.decode()  # no fingerprints: every row


def test_charting_one_patients_vitals_sends_only_that_row(screen, ward_30, nurse_a):
    from monitoring.services import vitals_record

    patient = ward_30[4].patient
    with committed():
        vitals_record(
            patient=patient,
            recorded_at=NOW - timedelta(minutes=1),
            sbp=80,
            dbp=50,
            heart_rate=130,
            resp_rate=18,
            spo2=97,
            temp_c=Decimal("37.0"),
            **EXPLICIT_VITALS,
            by=nurse_a,
            now=NOW,
        )
    response = screen.poll()
    html = response.content.decode()
    assert response.status_code == 200
    assert swapped_rows(response) == [str(patient.pk)] and not added_rows(response)
    assert '<span class="out-of-range">BP 80/50</span>' in html
    assert len(html) < 4000  # the row, the summary and the order: not the board (the same minute: no countdowns)
    again = screen.poll()
    assert again.status_code == 304, (swapped_rows(again), again["ETag"])  # and then nothing again


def test_the_nearest_allowed_case_a_change_on_another_ward_keeps_this_board_304(
    screen, patient_b, nurse_b, oncologist, make_course
):
    with committed():
        make_course(patient_b, first_dose_at=NOW + timedelta(hours=3), now=NOW)
    assert screen.poll().status_code == 304


def test_a_new_patient_is_added_and_a_finished_course_is_removed(screen, ward_a, ward_30, oncologist, make_course):
    from il2ward.services import patient_create
    from scheduling.services import course_stop

    with committed():
        patient = patient_create(mrn="A-0100", name="New Arrival", birth_date=NOW.date(), ward=ward_a, by=oncologist,
                                 now=NOW)  # fmt: skip
        make_course(patient, first_dose_at=NOW + timedelta(hours=3), now=NOW)
    response = screen.poll()
    assert added_rows(response) == [str(patient.pk)] and swapped_rows(response) == []
    order = re.search(r'data-order="([\d ]+)"', response.content.decode()).group(1).split()
    assert str(patient.pk) in order and len(order) == 31

    stopped = ward_30[2]
    with committed():
        course_stop(course_id=stopped.pk, reason="progression", password=PASSWORD, by=oncologist, now=NOW)
    response = screen.poll()
    html = response.content.decode()
    assert f'<tr id="board-row-{stopped.patient_id}" hx-swap-oob="delete">' in html
    assert swapped_rows(response) == [] and added_rows(response) == []
    assert str(stopped.patient_id) not in screen.rows and len(screen.rows) == 30


def test_time_passing_across_the_due_boundary_changes_that_row(screen, ward_30):
    soon = {r.patient.pk: r for r in board.ward_board(ward_30[0].patient.ward, now=NOW).rows if r.state == "due_soon"}
    # populate_ward: patient 1's next slot is due 90 min from NOW (due soon); at due − 30 min it is due now.
    row = next(r for r in soon.values() if r.current.due_at == NOW + timedelta(minutes=90))
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        assert screen.poll().status_code == 304  # the same minute
    with time_machine.travel(NOW + timedelta(minutes=60), tick=False):
        screen.client.force_login(get_user_model().objects.get(pk=row.patient.assigned_nurse_id))
        response = screen.poll()
    html = response.content.decode()
    assert response.status_code == 200
    assert str(row.patient.pk) in swapped_rows(response)
    assert re.search(rf'<tr id="board-row-{row.patient.pk}"[^>]*data-state="due_now"', html)
    # The others' countdowns move without their rows: the small ticking elements only.
    assert f'id="due-{row.patient.pk}"' in html and len(swapped_rows(response)) < len(screen.rows)


def test_a_malformed_rows_header_gets_every_row_not_an_error(screen, client):
    response = client.get(screen.url, HTTP_IF_NONE_MATCH='W/"old"', HTTP_X_IL2WARD_ROWS="12:ab; DROP", **POLL)
    assert response.status_code == 200 and 'id="board-rows" hx-swap-oob="true"' in response.content.decode()


# --- The counter -----------------------------------------------------------------------------------------------


def version(ward) -> int:
    return Ward.objects.values_list("board_version", flat=True).get(pk=ward.pk)


def flushes() -> int:
    return sum(1 for _, func, _ in connection.run_on_commit if func is board_version._flush)


def test_the_counter_moves_after_commit_only_on_the_changed_ward_and_never_for_a_rollback(
    ward_a, ward_b, patient_a, patient_b
):
    board_version._flush()  # what the fixtures' writes left pending
    a, b = version(ward_a), version(ward_b)
    before = flushes()
    board_version.changed(patients=[patient_a.pk])
    board_version.changed(patients=[patient_a.pk])  # twice in one transaction: one UPDATE after the commit
    assert version(ward_a) == a and flushes() == before + 1  # not before the commit
    board_version._flush()
    assert (version(ward_a), version(ward_b)) == (a + 1, b)
    before = flushes()
    with pytest.raises(RuntimeError), transaction.atomic():
        board_version.changed(patients=[patient_b.pk])
        assert flushes() == before + 1
        raise RuntimeError
    assert flushes() == before  # the rolled-back savepoint took its bump with it
    board_version.changed(patients=[patient_b.pk])  # and the next change registers afresh
    board_version._flush()
    assert (version(ward_a), version(ward_b)) == (a + 1, b + 1)


def test_audited_objects_map_to_their_ward(ward_a, ward_b, patient_a, nurse_a, dose_now):
    from il2ward.models import Patient
    from scheduling.models import Hold

    hold = Hold(dose=dose_now, reason="no_iv_access", at=NOW)  # unsaved: only its dose id is read
    Patient.objects.filter(pk=patient_a.pk).update(assigned_nurse=nurse_a)  # a nurse: the wards of her patients
    for obj in (ward_a, patient_a, dose_now.course, dose_now, hold, nurse_a):
        board_version._flush()  # what the fixtures' writes left pending
        a, b = version(ward_a), version(ward_b)
        with committed():
            board_version.changed_objects([obj])
        assert (version(ward_a), version(ward_b)) == (a + 1, b), obj


def test_every_missing_name_the_engine_gives_has_words_shown_on_the_board(client, clock, ward_30, nurse_a):
    assert set(engine.MISSING_NAMES) <= set(board.MISSING_WORDS)
    assert board.missing_in_words(["labs.ast", "neuro"]) == [
        "an AST result in the last 24 h",
        "a neuro check in the last hour, every question answered",
    ]
    client.force_login(nurse_a)
    html = client.get("/wards/onc-a/").content.decode()
    # populate_ward: every fifth patient's open slot is incomplete for want of a creatinine.
    assert "Still needed:</strong> a creatinine result in the last 24 h" in html and "labs.creatinine" not in html


def test_a_nurses_hold_reason_is_shown_in_words_with_the_code_beside_it():
    from monitoring.domain.rulesets import RULE_CATALOGUE
    from scheduling.domain.hold_reasons import rule_title

    assert rule_title("no_iv_access") == "No IV access"
    assert rule_title("CV-SBP") == RULE_CATALOGUE["CV-SBP"].title
    assert rule_title("something_new") == "something new"  # never dropped
