"""How a pending double check (scheduling.services.double_checks) reaches the second nurses and how it closes: in
their bell (in-app only) while it waits, cleared by whatever closes it; closed as refused after
IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES doses typed that do not match (a security event); marked `expired` in the
database by the sweep once its dose's window has closed (due + W, SCH-WINDOW). Each refusal beside its nearest
allowed case.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from il2ward.models import AuditEvent, Delivery, Notification, SecurityEvent
from il2ward.notifications import bell_count
from scheduling.models import Administration, DoubleCheck
from scheduling.services import double_checks_expire
from tests.scheduling.doses.conftest import chart, first_dose
from tests.scheduling.doses.test_double_check import DOSE_IU, accept, ask

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
WRONG = 4_800_000
BELL = "double_check_requested"


@pytest.fixture
def charted(ready, patient_a, nurse_a, nurse_a2):
    course = ready()
    chart(patient_a, nurse_a)
    return course


def _bell(user):
    return Notification.objects.filter(kind=BELL, recipient=user, resolved_at__isnull=True)


# --- Wrong figures are limited -----------------------------------------------------------------------------------


def test_two_wrong_doses_then_the_right_one_is_accepted(api, charted, nurse_a, nurse_a2):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    for _ in range(2):
        wrong = accept(api, nurse_a2, check_id, dose_iu=WRONG)
        assert wrong.status_code == 409 and wrong.json()["code"] == "double_check_mismatch"
    assert DoubleCheck.objects.get(pk=check_id).status == "pending"
    assert accept(api, nurse_a2, check_id).status_code == 201
    check = DoubleCheck.objects.get(pk=check_id)
    assert (check.status, check.mismatches) == ("accepted", 2)
    assert not SecurityEvent.objects.filter(kind="double_check_closed").exists()


def test_three_wrong_doses_close_the_check_and_the_first_nurse_asks_again(api, charted, nurse_a, nurse_a2):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    codes = [accept(api, nurse_a2, check_id, dose_iu=WRONG).json()["code"] for _ in range(3)]
    assert codes == ["double_check_mismatch", "double_check_mismatch", "double_check_closed"]
    check = DoubleCheck.objects.get(pk=check_id)
    assert (check.status, check.mismatches, check.decided_by) == ("refused", 3, nurse_a2)
    assert "did not match" in check.refused_reason
    event = SecurityEvent.objects.get(kind="double_check_closed")
    assert event.user == nurse_a2 and event.detail == {"double_check": check_id, "dose": dose.pk, "mismatches": 3}
    assert str(DOSE_IU) not in str(event.detail)
    # The right dose now is too late for this check: nothing is charted from it.
    late = accept(api, nurse_a2, check_id)
    assert late.status_code == 409 and late.json()["code"] == "double_check_closed"
    assert not Administration.objects.exists()
    assert not _bell(nurse_a2).exists()
    again = ask(api, nurse_a, dose)
    assert again.status_code == 201
    assert accept(api, nurse_a2, again.json()["id"]).status_code == 201


def test_the_number_of_wrong_doses_is_a_site_setting(api, charted, nurse_a, nurse_a2, settings):
    settings.IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES = 1
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert accept(api, nurse_a2, check_id, dose_iu=WRONG).json()["code"] == "double_check_closed"
    assert DoubleCheck.objects.get(pk=check_id).status == "refused"


# --- The bell ----------------------------------------------------------------------------------------------------


def test_asking_rings_the_other_nurses_of_the_ward_in_the_app_only(
    api, charted, nurse_a, nurse_a2, charge_nurse, nurse_b
):
    dose = first_dose(charted)
    check_id = ask(api, nurse_a, dose).json()["id"]
    rows = Notification.objects.filter(kind=BELL)
    assert {n.recipient for n in rows} == {nurse_a2, charge_nurse}  # not the nurse who asked, not another ward
    assert bell_count(nurse_a2) == 1 and bell_count(nurse_a) == 0 and bell_count(nurse_b) == 0
    assert set(Delivery.objects.filter(notification__in=rows).values_list("channel", flat=True)) == {"in_app"}
    row = rows.get(recipient=nurse_a2)
    assert (row.dose_id, row.patient_id) == (dose.pk, charted.patient_id)
    assert row.details == {"cycle": dose.cycle, "number": dose.number, "double_check": check_id}  # codes only
    listed = api.as_user(nurse_a2).get("/api/v1/notifications/").json()
    assert [n["kind"] for n in listed if n["kind"] == BELL] == [BELL]
    assert str(DOSE_IU) not in str(listed)


def test_a_nurse_who_wants_e_mail_still_gets_the_check_only_in_the_bell(api, charted, nurse_a, nurse_a2):
    profile = nurse_a2.profile
    profile.channels = {"in_app": {"on": True}, "email": {"on": True}}
    profile.save()
    nurse_a2.email = "a2@example.org"
    nurse_a2.save()
    ask(api, nurse_a, first_dose(charted))
    assert set(Delivery.objects.filter(notification__kind=BELL).values_list("channel", flat=True)) == {"in_app"}
    # Her other notifications still reach her e-mail (the restriction is of this kind only).
    from il2ward.notifications import notify

    notify(kind="dose_due", recipients=[nurse_a2], dedupe="t:dose_due", now=charted.created_at)
    assert set(Delivery.objects.filter(notification__kind="dose_due").values_list("channel", flat=True)) == {
        "in_app",
        "email",
    }


def _close_by(how, api, nurse_a, nurse_a2, check_id):
    if how == "accept":
        assert accept(api, nurse_a2, check_id).status_code == 201
    elif how == "refuse":
        url = f"/api/v1/double-checks/{check_id}/refuse/"
        assert api.as_user(nurse_a2).post(url, {"reason": "wrong bag"}, format="json").status_code == 200
    elif how == "cancel":
        assert api.as_user(nurse_a).post(f"/api/v1/double-checks/{check_id}/cancel/").status_code == 200
    elif how == "expire":
        check = DoubleCheck.objects.get(pk=check_id)
        assert double_checks_expire(now=check.expires_at + timedelta(seconds=1)) == {"double_checks_expired": 1}


@pytest.mark.parametrize("how", ["accept", "refuse", "cancel", "expire"])
def test_whatever_closes_the_check_clears_the_bell(api, charted, nurse_a, nurse_a2, charge_nurse, how):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert _bell(nurse_a2).count() == 1 and _bell(charge_nurse).count() == 1
    _close_by(how, api, nurse_a, nurse_a2, check_id)
    assert not _bell(nurse_a2).exists() and not _bell(charge_nurse).exists()
    assert bell_count(nurse_a2) == 0


def test_a_wrong_dose_leaves_the_bell_ringing(api, charted, nurse_a, nurse_a2):
    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    assert accept(api, nurse_a2, check_id, dose_iu=WRONG).status_code == 409
    assert _bell(nurse_a2).count() == 1


# --- Expiry in the database ------------------------------------------------------------------------------------


def test_the_sweep_marks_a_check_past_its_window_expired_and_not_one_still_open(api, charted, nurse_a, nurse_a2):
    from scheduling.tasks import sweep_at

    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    expires_at = DoubleCheck.objects.get(pk=check_id).expires_at
    assert sweep_at(now=expires_at)["double_checks_expired"] == 0  # the last minute of the window: still open
    assert DoubleCheck.objects.get(pk=check_id).status == "pending"
    result = sweep_at(now=expires_at + timedelta(seconds=1))
    assert result["double_checks_expired"] == 1 and "failed" not in result
    check = DoubleCheck.objects.get(pk=check_id)
    assert (check.status, check.decided_at) == ("expired", expires_at + timedelta(seconds=1))
    assert AuditEvent.objects.filter(action="double_check.expire", object_id=str(check_id)).count() == 1
    assert api.as_user(nurse_a2).get(f"/api/v1/double-checks/{check_id}/").json()["status"] == "expired"
    assert double_checks_expire(now=expires_at + timedelta(minutes=5)) == {"double_checks_expired": 0}  # once


def _pending_checks(course, nurse, count):
    doses = list(course.doses.order_by("due_at")[:count])
    for dose in doses:
        DoubleCheck.objects.create(
            dose=dose,
            requested_by=nurse,
            requested_at=course.created_at,
            expires_at=dose.due_at + timedelta(minutes=60),
            started_at=dose.due_at,
        )
    return doses[-1].due_at + timedelta(minutes=61)


def _expire_queries(now) -> int:
    with CaptureQueriesContext(connection) as captured:
        double_checks_expire(now=now)
    return len(captured)


def test_expiring_checks_takes_a_constant_number_of_queries(ready, nurse_a):
    course = ready()
    one = _expire_queries(_pending_checks(course, nurse_a, 1))
    assert DoubleCheck.objects.filter(status="expired").count() == 1
    many = _expire_queries(_pending_checks(course, nurse_a, 6))
    assert DoubleCheck.objects.filter(status="expired").count() == 1 + 6
    assert one == many


# --- The admin -------------------------------------------------------------------------------------------------


def test_the_admin_shows_a_check_but_never_adds_changes_or_deletes_one(api, charted, nurse_a, client):
    from tests.conftest import make_staff

    check_id = ask(api, nurse_a, first_dose(charted)).json()["id"]
    client.force_login(make_staff("site_admin", "admin"))
    base = "/admin/scheduling/doublecheck/"
    listing = client.get(base)
    assert listing.status_code == 200 and f"{base}{check_id}/change/" in listing.content.decode()
    shown = client.get(f"{base}{check_id}/change/")
    assert shown.status_code == 200 and 'name="_save"' not in shown.content.decode()  # read-only view
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{check_id}/change/", {"status": "accepted"}).status_code == 403
    assert client.post(f"{base}{check_id}/delete/", {"post": "yes"}).status_code == 403
    actions = client.post(base, {"action": "delete_selected", "_selected_action": [check_id], "post": "yes"})
    assert actions.status_code in (200, 302)
    assert DoubleCheck.objects.get(pk=check_id).status == "pending"
