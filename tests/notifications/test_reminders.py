"""Reminder sweeps (scheduling/services/reminders.py, HOLD-RULES §5 and SCH-WINDOW): each kind at its time, once, to
the right people; escalation of unacknowledged holds every 15 min; a constant number of queries when nothing is due."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from il2ward.models import Notification
from il2ward.notifications import notification_acknowledge
from il2ward.recipients import ward_set_on_call
from scheduling.models import Dose
from scheduling.services import courses_advance_status, dose_evaluate, reminders
from scheduling.tasks import sweep_at
from tests.conftest import NOW, make_staff
from tests.notifications.conftest import rows, vitals

pytestmark = pytest.mark.django_db
FIRST = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)  # make_course's slot 1 (16:00 in Chicago)


def slot1(course) -> Dose:
    return course.doses.get(cycle=1, number=1)


def kinds_for(dose) -> list[str]:
    return sorted(set(Notification.objects.filter(dose_id=dose.pk).values_list("kind", flat=True)))


# --- assessment_due, dose_due, dose_overdue -------------------------------------------------------------------------


def test_dose_reminders_fire_at_due_minus_2h_minus_30min_and_plus_30min_each_once(
    make_course, patient_a, nurse_a, nurse_a2, charge_nurse
):
    dose = slot1(make_course(patient_a))
    moments = [
        (FIRST - timedelta(hours=2, seconds=1), []),
        (FIRST - timedelta(hours=2), ["assessment_due"]),
        (FIRST - timedelta(minutes=31), ["assessment_due"]),
        (FIRST - timedelta(minutes=30), ["assessment_due", "dose_due"]),
        (FIRST + timedelta(minutes=29), ["assessment_due", "dose_due"]),
        (FIRST + timedelta(minutes=30), ["assessment_due", "dose_due", "dose_overdue"]),
        (FIRST + timedelta(minutes=59), ["assessment_due", "dose_due", "dose_overdue"]),
    ]
    for now, expected in moments:
        reminders.dose_reminders(now=now)
        reminders.dose_reminders(now=now)  # a second sweep at the same moment writes nothing more
        assert kinds_for(dose) == expected, now
    # The ward's nurses on duty (no assigned nurse), once each; not the charge nurse.
    assert rows(dose_id=dose.pk) == [
        (kind, nurse) for kind in ("assessment_due", "dose_due", "dose_overdue") for nurse in ("nurse_a", "nurse_a2")
    ]
    due = dict(Notification.objects.filter(dose_id=dose.pk).values_list("kind", "due_at"))
    assert due == {
        "assessment_due": FIRST - timedelta(hours=2),
        "dose_due": FIRST - timedelta(minutes=30),
        "dose_overdue": FIRST + timedelta(minutes=30),
    }
    assert Notification.objects.get(dose_id=dose.pk, kind="dose_due", recipient=nurse_a).details == {
        "cycle": 1,
        "number": 1,
    }


def test_a_sweep_after_an_outage_sends_only_what_is_still_useful(make_course, patient_a, nurse_a):
    dose = slot1(make_course(patient_a))
    reminders.dose_reminders(now=FIRST + timedelta(minutes=40))  # the beat was down until then
    assert kinds_for(dose) == ["dose_overdue"]


def test_past_the_window_the_slot_is_missed_and_no_overdue_reminder_follows(
    make_course, patient_a, nurse_a, oncologist
):
    dose = slot1(make_course(patient_a))
    sweep_at(now=FIRST + timedelta(minutes=61))  # SCH-WINDOW: W = 60 min
    dose.refresh_from_db()
    assert dose.status == "missed"
    assert kinds_for(dose) == ["dose_missed"]


def test_a_given_dose_gets_no_due_or_overdue_reminder(make_course, patient_a, nurse_a):
    dose = slot1(make_course(patient_a))
    reminders.dose_reminders(now=FIRST - timedelta(hours=1))
    Dose.objects.filter(pk=dose.pk).update(status="given")
    reminders.dose_reminders(now=FIRST - timedelta(minutes=30))
    reminders.dose_reminders(now=FIRST + timedelta(minutes=30))
    assert kinds_for(dose) == ["assessment_due"]


def test_the_assigned_nurse_alone_gets_her_patients_reminders(make_course, patient_a, nurse_a, nurse_a2, charge_nurse):
    from il2ward.recipients import patient_assign_nurse

    patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_a2, by=charge_nurse, now=NOW)
    dose = slot1(make_course(patient_a))
    reminders.dose_reminders(now=FIRST - timedelta(minutes=30))
    assert rows(dose_id=dose.pk) == [("assessment_due", "nurse_a2"), ("dose_due", "nurse_a2")]


def test_timings_are_site_settings(make_course, patient_a, nurse_a, settings):
    settings.IL2WARD_DOSE_DUE_MINUTES = 45
    dose = slot1(make_course(patient_a))
    reminders.dose_reminders(now=FIRST - timedelta(minutes=45))
    assert "dose_due" in kinds_for(dose)


# --- vitals_due ---------------------------------------------------------------------------------------------------


def test_vitals_due_after_2h_without_vitals_in_an_active_cycle_and_every_2h_after(active_course, patient_a, nurse_a):
    course = active_course(first=NOW - timedelta(hours=3))  # the cycle's first window opened at NOW − 4 h
    assert course.status == "active"
    vitals(patient_a, nurse_a, at=NOW - timedelta(hours=2, minutes=1))
    assert reminders.vitals_due(now=NOW - timedelta(minutes=2)) == 0  # 1 h 59 min without vitals
    assert reminders.vitals_due(now=NOW) == 1
    assert reminders.vitals_due(now=NOW + timedelta(minutes=30)) == 0  # already reminded for this period
    assert reminders.vitals_due(now=NOW + timedelta(hours=1, minutes=59)) == 1  # still none: the next period
    due = sorted(Notification.objects.filter(kind="vitals_due").values_list("due_at", flat=True))
    assert due == [NOW - timedelta(minutes=1), NOW + timedelta(hours=1, minutes=59)]
    # Vitals charted: the clock starts again from them.
    vitals(patient_a, nurse_a, at=NOW + timedelta(hours=2, minutes=10))
    assert reminders.vitals_due(now=NOW + timedelta(hours=4, minutes=9)) == 0
    assert reminders.vitals_due(now=NOW + timedelta(hours=4, minutes=10)) == 1
    assert rows(kind="vitals_due") == [("vitals_due", "nurse_a")] * 3


def test_vitals_entered_in_error_do_not_count(active_course, patient_a, nurse_a):
    active_course()
    row = vitals(patient_a, nurse_a, at=NOW - timedelta(minutes=30))
    type(row).objects.filter(pk=row.pk).update(entered_in_error_at=NOW)
    assert reminders.vitals_due(now=NOW) == 1  # the cycle's window opened at NOW − 2 h and nothing standing since


def test_no_vitals_reminder_outside_an_active_cycle(make_course, patient_a, nurse_a):
    make_course(patient_a)  # planned: first dose in two days
    assert reminders.vitals_due(now=NOW) == 0


# --- weight_due and labs_due at 06:00 ward-local -----------------------------------------------------------------


def record(kind, patient, by, at):
    from decimal import Decimal

    from monitoring import services

    if kind == "weight_due":
        return services.weight_record(patient=patient, recorded_at=at, weight_kg=Decimal("80.2"), by=by, now=at)
    return services.labs_record(patient=patient, recorded_at=at, creatinine_mg_dl=Decimal("1.0"), by=by, now=at)


@pytest.mark.parametrize("kind", ["weight_due", "labs_due"])
def test_daily_weight_and_labs_are_due_at_06_00_ward_local(kind, active_course, patient_a, patient_b, nurse_a, nurse_b):
    active_course(patient_a)
    active_course(patient_b)
    other = "labs_due" if kind == "weight_due" else "weight_due"
    # NOW is 06:00 in Chicago (ward A) and 13:00 in Berlin (ward B). Berlin's from 07:00 local count for today.
    record(kind, patient_b, nurse_b, NOW - timedelta(hours=6))
    record(other, patient_b, nurse_b, NOW - timedelta(hours=6))
    record(kind, patient_a, nurse_a, NOW - timedelta(hours=6, minutes=1))  # 23:59 yesterday in Chicago: not today's
    record(other, patient_a, nurse_a, NOW - timedelta(minutes=30))
    assert reminders.daily_due(now=NOW - timedelta(seconds=1)) == 0  # 05:59:59 in Chicago
    reminders.daily_due(now=NOW)
    reminders.daily_due(now=NOW + timedelta(minutes=1))  # once a day
    assert rows(kind=kind) == [(kind, "nurse_a")]
    row = Notification.objects.get(kind=kind)
    assert row.due_at == NOW and row.details["day"] == "2027-03-10"


def test_a_weight_taken_before_06_00_means_no_reminder(active_course, patient_a, nurse_a):
    active_course(patient_a)
    record("weight_due", patient_a, nurse_a, NOW - timedelta(minutes=30))  # 05:30 Chicago
    reminders.daily_due(now=NOW)
    assert rows(kind="weight_due") == [] and rows(kind="labs_due") == [("labs_due", "nurse_a")]


def test_daily_weight_follows_the_ward_clock_across_the_dst_change(make_course, patient_a, nurse_a):
    # Chicago moves to CDT on Sunday 2027-03-14: 06:00 that morning is 11:00 UTC, no longer 12:00.
    course = make_course(patient_a, first_dose_at=datetime(2027, 3, 14, 3, 0, tzinfo=UTC))
    courses_advance_status(now=datetime(2027, 3, 14, 10, 0, tzinfo=UTC))
    course.refresh_from_db()
    assert course.status == "active"
    assert reminders.daily_due(now=datetime(2027, 3, 14, 10, 59, tzinfo=UTC)) == 0
    reminders.daily_due(now=datetime(2027, 3, 14, 11, 0, tzinfo=UTC))
    assert Notification.objects.get(kind="weight_due").details["day"] == "2027-03-14"


# --- escalation ---------------------------------------------------------------------------------------------------


@pytest.fixture
def flagged(make_course, patient_a, nurse_a, oncologist):
    """Slot 1 due at NOW + 30 min with SBP 85: evaluated at NOW → flagged hold (CV-SBP), hold_flagged written."""

    def _make():
        course = make_course(patient_a, first_dose_at=NOW + timedelta(minutes=30), now=NOW - timedelta(hours=6))
        vitals(patient_a, nurse_a, at=NOW - timedelta(minutes=5), sbp=85)
        dose = slot1(course)
        dose_evaluate(dose_id=dose.pk, now=NOW)
        dose.refresh_from_db()
        assert dose.flag == "hold" and Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk).exists()
        return dose

    return _make


def escalations(dose) -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(kind="escalation", dose_id=dose.pk).values_list("dedupe_key", "recipient__username")
    )


def test_an_unacknowledged_hold_escalates_at_15_min_and_every_15_min_until_acknowledged(
    flagged, ward_a, nurse_a, charge_nurse, oncologist
):
    on_call = make_staff("oncall", "oncologist", [ward_a])
    ward_set_on_call(ward_id=ward_a.pk, oncologist=on_call, by=charge_nurse, now=NOW)
    dose = flagged()
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=14, seconds=59)) == 0
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=15)) == 2
    flag = Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk).first()
    assert escalations(dose) == sorted(
        [
            (f"escalation:{flag.topic}:n1:u{charge_nurse.pk}", "charge_a"),
            (f"escalation:{flag.topic}:n1:u{on_call.pk}", "oncall"),
        ]
    )
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=29)) == 0
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=30)) == 1  # n2: the course's oncologist
    escalation = Notification.objects.get(kind="escalation", recipient=charge_nurse, dedupe_key__contains=":n1:")
    assert escalation.details["rules"] == ["CV-SBP"] and escalation.due_at == NOW + timedelta(minutes=15)
    # The nurse acknowledges her hold_flagged: escalation stops, for everyone.
    mine = Notification.objects.get(kind="hold_flagged", dose_id=dose.pk, recipient=nurse_a)
    notification_acknowledge(notification_id=mine.pk, by=nurse_a, now=NOW + timedelta(minutes=31))
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=45)) == 0
    assert not Notification.objects.filter(dose_id=dose.pk, acknowledged_at__isnull=True).exists()


def test_acknowledging_the_escalation_stops_it_too(flagged, ward_a, nurse_a, charge_nurse, oncologist):
    dose = flagged()
    reminders.escalate_holds(now=NOW + timedelta(minutes=15))
    # No on-call oncologist on the ward: the course's oncologist is paged.
    assert sorted(u for _, u in escalations(dose)) == ["charge_a", "onc"]
    mine = Notification.objects.get(kind="escalation", recipient=charge_nurse)
    notification_acknowledge(notification_id=mine.pk, by=charge_nurse, now=NOW + timedelta(minutes=16))
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=30)) == 0


def test_a_closed_dose_does_not_escalate(flagged, nurse_a, charge_nurse):
    from scheduling.services import dose_hold

    dose = flagged()
    dose_hold(dose_id=dose.pk, reason="CV-SBP", by=nurse_a, now=NOW + timedelta(minutes=5))
    assert reminders.escalate_holds(now=NOW + timedelta(minutes=15)) == 0


# --- the sweep as a whole -----------------------------------------------------------------------------------------


def build_quiet_courses(count: int, *, start: int, ward, nurse, oncologist):
    """Active courses with nothing due at NOW: slot 1 given 3 h ago, slot 2 in 5 h, vitals 30 min ago, weight and
    labs after local midnight."""
    from il2ward.services import patient_create
    from scheduling.services import course_create, course_materialise_calendar

    first = NOW - timedelta(hours=3)
    for i in range(start, start + count):
        patient = patient_create(
            mrn=f"Q-{i:04d}", name=f"Quiet {i}", birth_date=NOW.date(), ward=ward, by=oncologist, now=NOW
        )
        from decimal import Decimal

        course = course_create(
            patient=patient, first_dose_at=first, dosing_weight_kg=Decimal(80), by=oncologist, now=first
        )
        course_materialise_calendar(course_id=course.pk, now=first)
        Dose.objects.filter(course=course, cycle=1, number=1).update(status="given")
        vitals(patient, nurse, at=NOW - timedelta(minutes=30))
        record("weight_due", patient, nurse, NOW - timedelta(minutes=30))
        record("labs_due", patient, nurse, NOW - timedelta(minutes=30))
    courses_advance_status(now=NOW)


def count_queries(run) -> int:
    with CaptureQueriesContext(connection) as captured:
        result = run(now=NOW)
    assert not any(result.values()), result  # nothing was due
    return len(captured)


def test_a_sweep_with_nothing_due_costs_the_same_queries_for_10_and_100_active_courses(ward_a, nurse_a, oncologist):
    from scheduling.models import Course

    build_quiet_courses(10, start=0, ward=ward_a, nurse=nurse_a, oncologist=oncologist)
    small = (count_queries(sweep_at), count_queries(reminders.reminders_sweep))
    build_quiet_courses(90, start=10, ward=ward_a, nurse=nurse_a, oncologist=oncologist)
    assert Course.objects.filter(status="active").count() == 100
    assert (count_queries(sweep_at), count_queries(reminders.reminders_sweep)) == small
    # The reminder sweeps: dose reminders 1, vitals 1, wards 1 + weight 1 + labs 1, escalation 1.
    assert small[1] == 6
    assert not Notification.objects.exists()


def test_a_sweep_writes_3_or_12_reminders_in_the_same_number_of_queries(
    ward_a, nurse_a, nurse_a2, oncologist, make_course
):
    """The outbox rows of a sweep are written together (notify_many): the keys taken, the rows, the recipients'
    channel preferences and the deliveries, per chunk of reminders, not per reminder."""
    from il2ward.services import patient_create

    def due_patients(n, start):
        for i in range(start, start + n):
            patient = patient_create(
                mrn=f"D-{i:04d}", name=f"Due {i}", birth_date=NOW.date(), ward=ward_a, by=oncologist, now=NOW
            )
            make_course(patient)

    def sweep() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            written = reminders.dose_reminders(now=FIRST - timedelta(hours=2))  # assessment_due for each slot 1
        return written, len(captured)

    due_patients(3, start=0)
    small = sweep()
    due_patients(12, start=3)
    large = sweep()  # the first 3 are already sent: this one writes the 12 new ones
    assert (small[0], large[0]) == (3 * 2, 12 * 2)  # nurse_a and nurse_a2, on duty
    assert large[1] == small[1], "queries grew with the number of reminders"
    assert Notification.objects.filter(kind="assessment_due").count() == 15 * 2
