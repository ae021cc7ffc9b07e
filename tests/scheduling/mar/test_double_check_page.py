"""The own-session double check on the dose page and the board: the first nurse asks, another nurse of the ward sees
the order but not the computed dose, accepts or refuses there; the first nurse sees the outcome."""

import re

import pytest

from scheduling.models import Administration, DoubleCheck
from tests.conftest import NOW
from tests.scheduling.mar.conftest import record_assessment
from tests.scheduling.mar.test_dose_page import give

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def ask(client, dose):
    data = {k: v for k, v in give(dose).items() if not k.startswith(("give-verifier", "give-verified"))}
    return client.post(f"/doses/{dose.pk}/", {**data, "action": "request_check"}, follow=True)


def test_the_first_nurse_asks_and_waits(client, dose_now, nurse_a):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    html = text(ask(client, dose_now))
    assert "waiting for a second nurse" in html.lower() and 'id="cancel-check-button"' in html
    assert DoubleCheck.objects.get().status == "pending" and not Administration.objects.exists()
    assert 'id="give-button"' not in html  # the check card is the action now


def test_the_second_nurse_sees_the_order_not_the_dose_and_accepts(client, dose_now, nurse_a, nurse_a2):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    ask(client, dose_now)
    client.force_login(nurse_a2)
    board = text(client.get(f"/wards/{dose_now.course.patient.ward.code}/"))
    assert "Double checks waiting for you" in board and "Alice Nurse RN" in board
    page = text(client.get(f"/doses/{dose_now.pk}/"))
    dose_iu = dose_now.course.dose_iu
    assert "80.0 kg" in page and "600,000 IU/kg" in page
    assert f"{dose_iu:,}" not in page and str(dose_iu) not in page and 'id="prep-h"' not in page
    check = DoubleCheck.objects.get()
    wrong = client.post(
        f"/doses/{dose_now.pk}/", {"action": "accept_check", "check": check.pk, "check-verified_dose_iu": "4800000"}
    )
    assert wrong.status_code == 409 and "does not match" in text(wrong) and f"{dose_iu:,}" not in text(wrong)
    done = client.post(
        f"/doses/{dose_now.pk}/",
        {"action": "accept_check", "check": check.pk, "check-verified_dose_iu": f"{dose_iu:,}"},
        follow=True,
    )
    assert "charted as given" in text(done)
    adm = Administration.objects.get()
    assert (adm.given_by, adm.verified_by) == (nurse_a, nurse_a2)


def test_the_first_nurse_cannot_accept_on_her_page_and_sees_a_refusal(client, dose_now, nurse_a, nurse_a2):
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    ask(client, dose_now)
    check = DoubleCheck.objects.get()
    own = client.post(
        f"/doses/{dose_now.pk}/",
        {"action": "accept_check", "check": check.pk, "check-verified_dose_iu": f"{dose_now.course.dose_iu}"},
    )
    assert own.status_code == 400 and "different nurse" in text(own)
    assert not Administration.objects.exists()
    client.force_login(nurse_a2)
    refused = client.post(
        f"/doses/{dose_now.pk}/", {"action": "refuse_check", "check": check.pk, "refuse-reason": "wrong label"}
    )
    assert refused.status_code == 302
    client.force_login(nurse_a)
    page = text(client.get(f"/doses/{dose_now.pk}/"))
    assert "Double check refused" in page and "wrong label" in page and 'id="give-button"' in page


def test_a_board_lists_only_the_checks_of_its_own_ward(client, dose_now, nurse_a, ward_a, ward_b):
    from tests.conftest import make_staff

    floater = make_staff("floater", "nurse", [ward_a, ward_b], "Flo Floater RN")
    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    client.force_login(nurse_a)
    ask(client, dose_now)
    client.force_login(floater)
    assert "Double checks waiting for you" in text(client.get(f"/wards/{ward_a.code}/"))
    assert "Double checks waiting for you" not in text(client.get(f"/wards/{ward_b.code}/"))


def test_the_boards_list_of_checks_reads_what_it_shows_in_its_one_query(client, dose_now, nurse_a, nurse_a2):
    """The checks waiting are one read of the columns the board shows (scheduling.selectors.double_checks
    .waiting_on_ward): a check costs no query of its own, and the list names the patient, the slot and the nurse."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    record_assessment(dose_now.course.patient, nurse=nurse_a, now=NOW)
    board_url = f"/wards/{dose_now.course.patient.ward.code}/"
    client.force_login(nurse_a2)
    client.get(board_url)
    with CaptureQueriesContext(connection) as none_waiting:
        assert "Double checks waiting for you" not in text(client.get(board_url))
    client.force_login(nurse_a)
    ask(client, dose_now)
    client.force_login(nurse_a2)
    client.get(board_url)
    with CaptureQueriesContext(connection) as one_waiting:
        board = text(client.get(board_url))
    patient = dose_now.course.patient.name
    assert f"{patient} · C1 #{dose_now.number}</a> — given by Alice Nurse RN" in board
    assert len(one_waiting) == len(none_waiting)
