"""Notifications follow the dose, not the clock: a returning hold pages again, an override ends the escalation, and
a delivery whose work was done meanwhile is dropped instead of announced late."""

from datetime import timedelta

import pytest

from il2ward.models import Delivery, Notification
from il2ward.notifications import bell_count, deliver, notification_acknowledge
from scheduling.services import dose_evaluate, dose_hold, dose_override, reminders
from tests.conftest import NOW, PASSWORD
from tests.notifications.conftest import vitals
from tests.scheduling.mar.conftest import ready_course, record_assessment

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


def flags(dose) -> list[Notification]:
    return list(Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk).order_by("created_at", "pk"))


def test_a_hold_that_returns_after_acknowledgement_and_normal_vitals_is_flagged_and_escalated_again(
    flagged, patient_a, nurse_a, charge_nurse
):
    first = Notification.objects.get(kind="hold_flagged", dose_id=flagged.pk, recipient=nurse_a)
    assert first.due_at == flagged.due_at and first.details["evaluation"] == flagged.latest_evaluation_id
    notification_acknowledge(notification_id=first.pk, by=nurse_a, now=NOW + MIN)
    vitals(patient_a, nurse_a, at=NOW + 2 * MIN)  # normal: the decision turns give
    dose_evaluate(dose_id=flagged.pk, now=NOW + 2 * MIN)
    flagged.refresh_from_db()
    assert flagged.flag not in ("hold", "stop")
    assert len({n.topic for n in flags(flagged)}) == 1  # nothing new while it is give
    vitals(patient_a, nurse_a, at=NOW + 3 * MIN, sbp=84)  # hold again
    dose_evaluate(dose_id=flagged.pk, now=NOW + 3 * MIN)
    flagged.refresh_from_db()
    topics = {n.topic for n in flags(flagged)}
    assert len(topics) == 2, "the returning hold must raise a new flag"
    (new_topic,) = topics - {first.topic}
    second = Notification.objects.get(kind="hold_flagged", recipient=nurse_a, topic=new_topic)
    assert second.acknowledged_at is None and second.details["evaluation"] == flagged.latest_evaluation_id
    # ...and it escalates, 15 min after the new flag (not after the first one), keyed by the new episode.
    assert reminders.escalate_holds(now=NOW + 17 * MIN) == 0
    assert reminders.escalate_holds(now=NOW + 18 * MIN) > 0
    escalation = Notification.objects.filter(kind="escalation", dose_id=flagged.pk).first()
    assert escalation.topic.startswith(f"escalation:{second.topic}:")


def test_a_hold_re_evaluated_as_hold_is_not_flagged_twice(flagged, patient_a, nurse_a):
    vitals(patient_a, nurse_a, at=NOW + 2 * MIN, sbp=84)
    dose_evaluate(dose_id=flagged.pk, now=NOW + 2 * MIN)
    assert len({n.topic for n in flags(flagged)}) == 1


def test_a_signed_override_ends_the_escalation_and_its_pending_pages(flagged, oncologist, charge_nurse):
    pending = Delivery.objects.get(notification__kind="hold_flagged", channel="email", status="pending")
    dose_override(dose_id=flagged.pk, reason="SBP 85 is her baseline", password=PASSWORD, by=oncologist,
                  now=NOW + 5 * MIN)  # fmt: skip
    assert reminders.escalate_holds(now=NOW + 15 * MIN) == 0
    assert reminders.escalate_holds(now=NOW + 30 * MIN) == 0
    pending.refresh_from_db()
    assert pending.status == "cancelled" and pending.last_error == "done: overridden"
    assert deliver(pending.pk) == "skipped"
    flags = Notification.objects.filter(kind="hold_flagged", dose_id=flagged.pk)
    assert {(n.resolved_reason, n.resolved_at) for n in flags} == {("overridden", NOW + 5 * MIN)}
    assert flags.count() == 2  # the nurse's and the oncologist's


def test_without_an_override_the_escalation_still_goes_out(flagged, charge_nurse):
    assert reminders.escalate_holds(now=NOW + 15 * MIN) > 0
    pending = Delivery.objects.get(notification__kind="hold_flagged", channel="email", status="pending")
    assert deliver(pending.pk) == "delivered"


def test_a_dose_due_reminder_waiting_for_a_retry_is_dropped_once_the_dose_is_held(flagged, nurse_a, mailoutbox):
    reminders.dose_reminders(now=NOW)  # due − 30 min: dose_due
    delivery = Delivery.objects.get(notification__kind="dose_due", channel="email")
    dose_hold(dose_id=flagged.pk, reason="CV-SBP", by=nurse_a, now=NOW + MIN)
    delivery.refresh_from_db()
    assert delivery.status == "cancelled" and delivery.last_error == "done: dose held"
    assert deliver(delivery.pk) == "skipped"
    assert not [m for m in mailoutbox if "Dose due" in m.subject]
    assert set(Notification.objects.filter(dose_id=flagged.pk).values_list("resolved_reason", flat=True)) == {
        "dose held"
    }
    assert bell_count(nurse_a) == 0  # nothing left for her to do about it


def test_a_pending_reminder_of_a_dose_closed_by_the_sweep_is_dropped_when_its_turn_comes(flagged, mailoutbox):
    from scheduling.services import doses_close_expired

    reminders.dose_reminders(now=NOW)
    delivery = Delivery.objects.get(notification__kind="dose_due", channel="email")
    doses_close_expired(now=flagged.due_at + timedelta(minutes=61))  # held automatically at due + W
    assert deliver(delivery.pk) == "cancelled"
    delivery.refresh_from_db()
    assert delivery.last_error == "done: dose held"
    assert not [m for m in mailoutbox if "Dose due" in m.subject]


def test_stopping_the_course_resolves_its_open_notifications_for_everyone(flagged, nurse_a, oncologist):
    from scheduling.services import course_stop

    reminders.dose_reminders(now=NOW)
    course_stop(course_id=flagged.course_id, reason="Patient declined", password=PASSWORD, by=oncologist,
                now=NOW + MIN)  # fmt: skip
    rows = Notification.objects.filter(dose_id=flagged.pk)
    assert rows.count() >= 3 and {n.resolved_reason for n in rows} == {"course stopped"}
    assert not Delivery.objects.filter(notification__in=rows, status="pending").exists()


def test_a_dose_due_reminder_for_an_open_dose_is_sent(flagged, mailoutbox):
    reminders.dose_reminders(now=NOW)
    delivery = Delivery.objects.get(notification__kind="dose_due", channel="email")
    assert deliver(delivery.pk) == "delivered"
    assert [m for m in mailoutbox if "Dose due" in m.subject]


def test_assessment_due_is_not_written_for_a_dose_already_assessed(make_course, patient_a, nurse_a, oncologist):
    dose = _ready_dose(make_course, patient_a, nurse_a, oncologist)
    record_assessment(patient_a, nurse=nurse_a, now=NOW - 3 * MIN)
    dose_evaluate(dose_id=dose.pk, now=NOW - 3 * MIN)  # complete, after the reminder's time (due − 2 h)
    dose.refresh_from_db()
    assert dose.latest_evaluation.decision == "give"
    reminders.dose_reminders(now=NOW)
    assert not Notification.objects.filter(kind="assessment_due", dose_id=dose.pk).exists()


def test_assessment_due_is_written_when_no_complete_assessment_is_charted(make_course, patient_a, nurse_a, oncologist):
    dose = _ready_dose(make_course, patient_a, nurse_a, oncologist)
    reminders.dose_reminders(now=NOW)
    assert Notification.objects.filter(kind="assessment_due", dose_id=dose.pk).exists()


def test_a_pending_assessment_due_is_dropped_once_a_complete_assessment_is_charted(
    make_course, patient_a, nurse_a, oncologist, mailoutbox
):
    nurse_a.email = "nurse@example.org"
    nurse_a.save(update_fields=["email"])
    dose = _ready_dose(make_course, patient_a, nurse_a, oncologist)
    reminders.dose_reminders(now=NOW)
    delivery = Delivery.objects.get(notification__kind="assessment_due", channel="email")
    record_assessment(patient_a, nurse=nurse_a, now=NOW + 3 * MIN)
    dose_evaluate(dose_id=dose.pk, now=NOW + 3 * MIN)
    assert deliver(delivery.pk) == "skipped"  # cancelled when the evaluation became complete
    delivery.refresh_from_db()
    assert delivery.status == "cancelled" and delivery.last_error == "done: assessment recorded"
    assert not mailoutbox


def _ready_dose(make_course, patient, nurse, oncologist):
    course = ready_course(patient, oncologist=oncologist, nurse=nurse, make_course=make_course,
                          first_dose_at=NOW + 90 * MIN, now=NOW - timedelta(hours=4))  # fmt: skip
    return course.doses.get(cycle=1, number=1)


def test_every_dose_related_kind_carries_the_dose_due_time(flagged, patient_a, nurse_a):
    from scheduling.services import doses_close_expired

    reminders.dose_reminders(now=NOW)
    doses_close_expired(now=flagged.due_at + timedelta(minutes=61))  # flagged hold not given: closed held
    rows = Notification.objects.filter(dose_id=flagged.pk).exclude(kind="assessment_due")
    assert {"hold_flagged", "dose_due"} <= {n.kind for n in rows}
    assert all(n.due_at is not None for n in rows), [(n.kind, n.due_at) for n in rows if n.due_at is None]


def test_a_missed_dose_carries_its_due_time(make_course, patient_a, nurse_a):
    from scheduling.services import doses_close_expired

    dose = make_course(patient_a, first_dose_at=NOW, now=NOW - timedelta(hours=6)).doses.get(cycle=1, number=1)
    doses_close_expired(now=NOW + timedelta(minutes=61))
    assert Notification.objects.filter(kind="dose_missed", dose_id=dose.pk).first().due_at == dose.due_at


def test_an_email_tells_the_due_time_in_ward_local_time_with_its_offset_and_in_utc(flagged, mailoutbox):
    delivery = Delivery.objects.get(notification__kind="hold_flagged", channel="email")
    assert deliver(delivery.pk) == "delivered"
    (mail,) = mailoutbox
    # Due NOW + 30 min = 12:30 UTC = 06:30 in Chicago (CST, UTC−6).
    assert "Due: Wed 10 Mar 2027 06:30 CST (UTC-06:00) = 12:30 UTC" in mail.body


def test_the_escalation_widens_step_by_step_and_an_acknowledgement_at_any_step_ends_it(
    flagged, settings, ward_a, nurse_a, charge_nurse, oncologist
):
    from il2ward.recipients import ward_set_on_call
    from tests.conftest import make_staff

    on_call = make_staff("oncall", "oncologist", [ward_a])
    make_staff("backup_doc", "oncologist", [ward_a])
    ward_set_on_call(ward_id=ward_a.pk, oncologist=on_call, by=charge_nurse, now=NOW)
    settings.IL2WARD_ESCALATION_CHAIN = (
        "charge_nurse:5,on_call_oncologist:10,course_oncologist:5,assigned_nurse+backup:5"
    )
    settings.IL2WARD_ESCALATION_BACKUP = "backup_doc"

    def paged_at(minutes):
        before = set(Notification.objects.filter(kind="escalation").values_list("pk", flat=True))
        reminders.escalate_holds(now=NOW + minutes * MIN)
        new = Notification.objects.filter(kind="escalation").exclude(pk__in=before)
        return sorted(new.values_list("recipient__username", flat=True))

    assert paged_at(4) == []
    assert paged_at(5) == ["charge_a"]
    assert paged_at(14) == []
    assert paged_at(15) == ["oncall"]
    assert paged_at(20) == ["onc"]
    step = Notification.objects.get(kind="escalation", recipient=oncologist)
    assert step.details["step"] == ["course_oncologist"] and "backup" in step.details["chain"]
    assert step.due_at == NOW + 20 * MIN
    assert paged_at(25) == ["backup_doc", "nurse_a"]
    # The course oncologist acknowledges at step 3: nobody is paged again, and everyone's rows are acknowledged.
    notification_acknowledge(notification_id=step.pk, by=oncologist, now=NOW + 26 * MIN)
    assert paged_at(30) == [] and paged_at(60) == []
    assert not Notification.objects.filter(dose_id=flagged.pk, acknowledged_at__isnull=True).exists()


def test_past_its_last_step_the_chain_pages_everyone_in_it_again(flagged, settings, charge_nurse, oncologist):
    settings.IL2WARD_ESCALATION_CHAIN = "charge_nurse:5,course_oncologist:5"
    reminders.escalate_holds(now=NOW + 5 * MIN)
    reminders.escalate_holds(now=NOW + 10 * MIN)
    reminders.escalate_holds(now=NOW + 15 * MIN)
    third = Notification.objects.filter(kind="escalation", details__escalation=3)
    assert sorted(third.values_list("recipient__username", flat=True)) == ["charge_a", "onc"]


def test_a_complete_assessment_resolves_the_open_assessment_due_for_everyone_and_cancels_its_pages(
    make_course, patient_a, nurse_a, oncologist
):
    from scheduling.services import patient_evaluate_next_dose

    nurse_a.email = "nurse@example.org"
    nurse_a.save(update_fields=["email"])
    dose = _ready_dose(make_course, patient_a, nurse_a, oncologist)
    reminders.dose_reminders(now=NOW)
    due = Notification.objects.get(kind="assessment_due", dose_id=dose.pk)
    pending = Delivery.objects.get(notification=due, channel="email", status="pending")
    record_assessment(patient_a, nurse=nurse_a, now=NOW + 3 * MIN)
    # What the worker does after each charting commits (scheduling.evaluate_patient).
    patient_evaluate_next_dose(patient_id=patient_a.pk, now=NOW + 3 * MIN)
    due.refresh_from_db()
    pending.refresh_from_db()
    assert (due.resolved_reason, due.resolved_at) == ("assessment recorded", NOW + 3 * MIN)
    assert pending.status == "cancelled" and pending.last_error == "done: assessment recorded"
    assert bell_count(nurse_a) == 0


def test_an_incomplete_assessment_leaves_assessment_due_open(make_course, patient_a, nurse_a, oncologist):
    from scheduling.services import patient_evaluate_next_dose

    dose = _ready_dose(make_course, patient_a, nurse_a, oncologist)
    reminders.dose_reminders(now=NOW)
    vitals(patient_a, nurse_a, at=NOW + 2 * MIN)  # vitals alone: no neuro, no exam
    evaluation = patient_evaluate_next_dose(patient_id=patient_a.pk, now=NOW + 3 * MIN)
    assert evaluation.decision == "incomplete"
    due = Notification.objects.get(kind="assessment_due", dose_id=dose.pk)
    assert due.resolved_at is None and bell_count(nurse_a) == 1


def test_vitals_charted_resolve_the_open_vitals_due_but_an_older_late_entry_does_not(active_course, patient_a, nurse_a):
    active_course(first=NOW - timedelta(hours=3))
    vitals(patient_a, nurse_a, at=NOW - timedelta(hours=2, minutes=1))
    assert reminders.vitals_due(now=NOW) == 1  # due at NOW − 1 min: nothing since NOW − 2 h 1 min
    due = Notification.objects.get(kind="vitals_due")
    vitals(patient_a, nurse_a, at=NOW - timedelta(hours=2, minutes=1, seconds=30))  # a late entry of an older set
    due.refresh_from_db()
    assert due.resolved_at is None
    vitals(patient_a, nurse_a, at=NOW + 2 * MIN)
    due.refresh_from_db()
    assert due.resolved_reason == "vitals recorded" and bell_count(nurse_a) == 0


def _slot(make_course, patient, *, due=NOW + 30 * MIN):
    return make_course(patient, first_dose_at=due, now=NOW - timedelta(hours=6)).doses.get(cycle=1, number=1)


def test_a_slot_whose_stop_was_recommended_gets_no_reminder_to_give_it_and_a_waiting_one_is_resolved(
    make_course, patient_a, nurse_a, mailoutbox
):
    nurse_a.email = "nurse@example.org"
    nurse_a.save(update_fields=["email"])
    dose = _slot(make_course, patient_a)
    reminders.dose_reminders(now=NOW)  # due − 30 min: dose_due, its e-mail pending
    pending = Delivery.objects.get(notification__kind="dose_due", channel="email")
    vitals(patient_a, nurse_a, at=NOW, heart_rate=135)  # CV-HR > 130: stop, the slot is never given (INV-STOP)
    dose_evaluate(dose_id=dose.pk, now=NOW + MIN)
    dose.refresh_from_db()
    assert dose.flag == "stop"
    pending.refresh_from_db()
    assert pending.status == "cancelled" and pending.last_error == "done: stop recommended"
    assert Notification.objects.get(kind="dose_due", dose_id=dose.pk).resolved_reason == "stop recommended"
    assert Notification.objects.filter(kind="stop_recommended", dose_id=dose.pk, resolved_at__isnull=True).exists()
    # Even once the stop's evaluation is superseded, the slot is never given: no dose_overdue at due + 30 min.
    vitals(patient_a, nurse_a, at=NOW + 2 * MIN)
    dose_evaluate(dose_id=dose.pk, now=NOW + 2 * MIN)
    assert reminders.dose_reminders(now=NOW + 61 * MIN) == 0
    assert not Notification.objects.filter(kind="dose_overdue", dose_id=dose.pk).exists()
    assert not [m for m in mailoutbox if "Dose due" in m.subject]


def test_a_held_slot_still_gets_its_dose_reminders(make_course, patient_a, nurse_a):
    dose = _slot(make_course, patient_a)
    vitals(patient_a, nurse_a, at=NOW, sbp=85)  # hold: an oncologist may override it, the dose may still be given
    dose_evaluate(dose_id=dose.pk, now=NOW)
    reminders.dose_reminders(now=NOW)
    assert Notification.objects.filter(kind="dose_due", dose_id=dose.pk, resolved_at__isnull=True).exists()


def test_a_discontinue_flag_is_paged_and_escalated_not_dropped_as_cleared(make_course, patient_a, nurse_a, mailoutbox):
    from il2ward.notifications import deliver

    nurse_a.email = "nurse@example.org"
    nurse_a.save(update_fields=["email"])
    dose = _slot(make_course, patient_a)
    vitals(patient_a, nurse_a, at=NOW, rhythm="vt_sustained")
    dose_evaluate(dose_id=dose.pk, now=NOW)
    dose.refresh_from_db()
    assert dose.flag == "discontinue"
    page = Delivery.objects.get(notification__kind="stop_recommended", notification__recipient=nurse_a, channel="email")
    assert reminders.work_done(page.notification) == ""
    assert deliver(page.pk) == "delivered"
    assert reminders.escalate_holds(now=NOW + 15 * MIN) > 0
