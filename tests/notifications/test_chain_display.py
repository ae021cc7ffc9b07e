"""The escalation chain is visible: where a hold's row stands in it (step, roles, next step due) on the notification
page and in the admin, and the chain as configured shown read-only above the admin's notification list."""

from datetime import timedelta

import pytest

from il2ward.models import Notification
from il2ward.notifications import notification_acknowledge
from il2ward.recipients import chain_position_of, chain_text, parse_chain
from scheduling.services import reminders
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)
CHAIN = "charge_nurse+on_call_oncologist:15,course_oncologist:10,assigned_nurse+backup:5"


def row(kind, *, step=None, roles=(), created=NOW, due=None, acknowledged=None) -> Notification:
    details = {"escalation": step, "step": list(roles)} if step else {}
    return Notification(kind=kind, details=details, created_at=created, due_at=due, acknowledged_at=acknowledged)


def test_a_flag_is_step_0_and_its_next_step_is_the_first_after_its_delay():
    chain = parse_chain(CHAIN)
    position = chain_position_of(row("hold_flagged"), chain)
    assert (position.step, position.steps, position.next_step) == (0, 3, 1)
    assert position.next_roles == ("charge_nurse", "on_call_oncologist") and position.next_due_at == NOW + 15 * MIN


def test_an_escalation_step_names_its_roles_and_the_next_steps_time_from_its_own():
    chain = parse_chain(CHAIN)
    position = chain_position_of(row("escalation", step=2, roles=["course_oncologist"], due=NOW + 25 * MIN), chain)
    assert position.label == "step 2 of 3: course oncologist"
    assert position.next_roles == ("assigned_nurse", "backup") and position.next_due_at == NOW + 30 * MIN
    last = chain_position_of(row("escalation", step=3, roles=["assigned_nurse", "backup"], due=NOW + 30 * MIN), chain)
    assert last.next_step == 4 and last.next_due_at == NOW + 35 * MIN  # past the last step: everyone again
    assert set(last.next_roles) == {"charge_nurse", "on_call_oncologist", "course_oncologist", "assigned_nurse",
                                    "backup"}  # fmt: skip


def test_an_acknowledged_hold_has_no_next_step_and_other_kinds_no_position():
    chain = parse_chain(CHAIN)
    done = chain_position_of(row("escalation", step=1, roles=["charge_nurse"], due=NOW, acknowledged=NOW), chain)
    assert done.step == 1 and done.next_due_at is None and done.next_step is None
    assert chain_position_of(row("dose_due"), chain) is None


def test_the_chain_reads_as_text():
    assert chain_text(parse_chain(CHAIN)) == (
        "charge nurse + on-call oncologist after 15 min → course oncologist +10 min → assigned nurse + backup +5 min;"
        " then everyone in it every 5 min"
    )


def test_the_notification_page_shows_the_step_and_when_the_next_one_is_due(
    client,
    flagged,
    settings,
    charge_nurse,
):
    settings.IL2WARD_ESCALATION_CHAIN = CHAIN
    assert reminders.escalate_holds(now=NOW + 15 * MIN) > 0
    client.force_login(charge_nurse)
    html = client.get("/notifications/").content.decode()
    # Step 1 at NOW + 15 min; step 2 at NOW + 25 min = 12:25 UTC = 06:25 in Chicago.
    assert (
        "Escalation: step 1 of 3: charge nurse + on-call oncologist · next: step 2, course oncologist at 06:25" in html
    )


def test_the_nurses_flag_shows_the_chain_until_she_acknowledges_it(client, flagged, settings, nurse_a):
    settings.IL2WARD_ESCALATION_CHAIN = CHAIN
    client.force_login(nurse_a)
    html = client.get("/notifications/").content.decode()
    assert "Escalation: flag (chain of 3 steps) · next: step 1, charge nurse + on-call oncologist at 06:15" in html
    mine = Notification.objects.get(kind="hold_flagged", recipient=nurse_a)
    notification_acknowledge(notification_id=mine.pk, by=nurse_a, now=NOW + MIN)
    html = client.get("/notifications/").content.decode()
    assert "Escalation: flag (chain of 3 steps)" in html and "next: step 1" not in html


def test_the_admin_shows_the_configured_chain_and_each_rows_step(admin_client, flagged, settings):
    settings.IL2WARD_ESCALATION_CHAIN = CHAIN
    settings.IL2WARD_ESCALATION_BACKUP = "backup_doc"
    reminders.escalate_holds(now=NOW + 15 * MIN)
    html = admin_client.get("/admin/il2ward/notification/").content.decode()
    assert 'id="escalation-chain"' in html and chain_text(parse_chain(CHAIN)) in html and "backup_doc" in html
    assert "step 1 of 3: charge nurse + on-call oncologist" in html
    assert "2027-03-10 06:25 CST: step 2, course oncologist" in html
    step = Notification.objects.filter(kind="escalation").first()
    detail = admin_client.get(f"/admin/il2ward/notification/{step.pk}/change/").content.decode()
    assert "step 1 of 3: charge nurse + on-call oncologist" in detail and chain_text(parse_chain(CHAIN)) in detail


def test_the_admin_lists_notifications_even_with_a_chain_the_check_refuses(admin_client, flagged, settings):
    settings.IL2WARD_ESCALATION_CHAIN = "matron:5"
    html = admin_client.get("/admin/il2ward/notification/").content.decode()
    assert "not valid: IL2WARD_ESCALATION_CHAIN" in html and "Hold criteria met" in html
