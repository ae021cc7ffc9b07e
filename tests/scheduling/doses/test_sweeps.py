"""The beat's sweeps for pre-dose evaluation (ARCHITECTURE.md: state in the database, work claimed conditionally).

doses_evaluate_entering_window evaluates each open slot once, when it enters its 2 h pre-dose window; after that new
data (the evaluate_patient task) and charting re-evaluate it, so a second sweep adds nothing. Its query count does not
grow with the number of patients. doses_close_expired closes a slot at due + W: held (with its rule ids, an automatic
Hold) when flagged hold or stop, else missed (with a dose_missed notification); two sweeps never both close one.
"""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from il2ward.models import AuditEvent, Notification
from il2ward.recipients import patient_assign_nurse, ward_set_on_call
from il2ward.services import patient_create
from scheduling.models import Dose, DoseEvaluation, Hold
from scheduling.services import dose_evaluate, doses_close_expired, doses_evaluate_entering_window
from tests.conftest import NOW
from tests.scheduling.doses.conftest import chart, first_dose, notifications
from tests.workers import require_postgres

pytestmark = pytest.mark.django_db
W = timedelta(minutes=60)


def test_a_slot_entering_its_pre_dose_window_is_evaluated_once(ready, patient_a, nurse_a):
    course = ready(first=NOW + timedelta(hours=2, minutes=1))
    chart(patient_a, nurse_a)
    dose = first_dose(course)
    assert doses_evaluate_entering_window(now=NOW) == 0  # due in 2 h 1 min: not yet in the window
    assert doses_evaluate_entering_window(now=NOW + timedelta(minutes=1)) == 1  # due − 2 h exactly
    evaluation = DoseEvaluation.objects.get(dose=dose)
    assert evaluation.trigger == "sweep" and evaluation.decision == "give"
    # The next sweeps add nothing, even with new data: the evaluate_patient task handles new data.
    chart(patient_a, nurse_a, at=NOW + timedelta(minutes=5), now=NOW + timedelta(minutes=5), vitals={"sbp": 85})
    assert doses_evaluate_entering_window(now=NOW + timedelta(minutes=6)) == 0
    assert DoseEvaluation.objects.filter(dose=dose).count() == 1
    # The second slot, 8 h later, is not touched.
    assert not DoseEvaluation.objects.filter(dose__course=course, dose__number=2).exists()


def test_an_evaluation_made_before_the_window_does_not_count(ready, patient_a, nurse_a):
    course = ready(first=NOW + timedelta(hours=3))
    chart(patient_a, nurse_a)
    dose_evaluate(dose_id=first_dose(course).pk, now=NOW)  # 3 h before due: outside the window
    assert doses_evaluate_entering_window(now=NOW + timedelta(hours=1, minutes=1)) == 1
    assert DoseEvaluation.objects.filter(dose_id=first_dose(course).pk).count() == 2


def ward_of(n: int, ward, nurse, make_course):
    """n patients on the ward, each with a course whose first dose is due in 90 minutes and complete normal data."""
    for i in range(n):
        patient = patient_create(
            mrn=f"Q-{i:04d}", name=f"Patient {i}", birth_date=date(1970, 1, 1), ward=ward, by=nurse, now=NOW
        )
        make_course(patient, first_dose_at=NOW + timedelta(minutes=90), now=NOW - timedelta(hours=2))
        chart(patient, nurse)


@pytest.mark.parametrize("patients", [3, 30])
def test_the_window_sweeps_query_count_does_not_grow_with_patients(
    patients, ward_a, nurse_a, oncologist, make_course, django_assert_num_queries
):
    ward_of(patients, ward_a, nurse_a, make_course)
    # 1 candidates + 7 snapshots + insert + update + the open assessment_due reminders to resolve, and the savepoint
    # the evaluation takes inside the test's transaction (SAVEPOINT, RELEASE: a failing batch rolls back alone and
    # its slots are evaluated one at a time; outside a transaction it is the BEGIN and COMMIT evaluating wrote anyway).
    with django_assert_num_queries(13):
        assert doses_evaluate_entering_window(now=NOW) == patients
    assert DoseEvaluation.objects.filter(trigger="sweep", decision="give").count() == patients


# Both sweeps cost the same queries for 1 and for 5 slots: who hears about a newly flagged or missed dose is read once
# (il2ward.recipients.Directory: one query for the nursing staff of every ward involved, the patients' assigned nurses
# and on-call oncologists selected with the doses), and the notifications and audit events are written together
# (notify_many, audit_many).


def patients_with_assigned_nurses(n, tag, wards_and_nurses, by, make_course, *, first) -> list:
    """n patients alternating over the wards, each with an assigned nurse and a course with slot 1 due at `first`."""
    courses = []
    for i in range(n):
        ward, nurse = wards_and_nurses[i % len(wards_and_nurses)]
        patient = patient_create(
            mrn=f"{tag}-{i:04d}", name=f"Patient {tag}{i}", birth_date=date(1970, 1, 1), ward=ward, by=by, now=NOW
        )
        patient_assign_nurse(patient_id=patient.pk, nurse=nurse, by=by, now=NOW)
        courses.append(make_course(patient, first_dose_at=first, now=NOW - timedelta(hours=2)))
    return courses


@pytest.fixture
def two_wards(ward_a, ward_b, nurse_a, nurse_b, oncologist):
    for ward in (ward_a, ward_b):
        ward_set_on_call(ward_id=ward.pk, oncologist=oncologist, by=oncologist, now=NOW)
    return [(ward_a, nurse_a), (ward_b, nurse_b)]


def test_the_window_sweep_costs_the_same_queries_for_any_number_of_new_flags(two_wards, oncologist, make_course):
    """1 then 5 slots newly flagged hold (CV-SBP) on two wards: the same queries, the right people told."""
    reads = {}
    for n, tag in ((1, "ONE"), (5, "FIVE")):
        courses = patients_with_assigned_nurses(n, tag, two_wards, oncologist, make_course, first=NOW + W + W // 2)
        for course in courses:
            chart(course.patient, course.patient.assigned_nurse, vitals={"sbp": 85, "dbp": 50})
        with CaptureQueriesContext(connection) as captured:
            assert doses_evaluate_entering_window(now=NOW) == n
        reads[n] = [q["sql"] for q in captured]
        for course in courses:
            told = Notification.objects.filter(kind="hold_flagged", dose_id=first_dose(course).pk)
            assert sorted(told.values_list("recipient__username", flat=True)) == sorted(
                [course.patient.assigned_nurse.username, "onc"]
            )
    assert len(reads[5]) == len(reads[1]), "\n".join(reads[5])


def test_the_window_edge_sweep_costs_the_same_queries_for_any_number_of_missed_slots(
    two_wards, oncologist, make_course
):
    """1 then 5 slots closed missed at due + W (SCH-WINDOW) on two wards: the same queries, the right people told."""
    reads = {}
    for n, tag, first in ((1, "ONE", NOW + W), (5, "FIVE", NOW + 2 * W)):
        courses = patients_with_assigned_nurses(n, tag, two_wards, oncologist, make_course, first=first)
        with CaptureQueriesContext(connection) as captured:
            assert doses_close_expired(now=first + W + timedelta(seconds=1)) == {"held": 0, "missed": n}
        reads[n] = [q["sql"] for q in captured]
        for course in courses:
            told = Notification.objects.filter(kind="dose_missed", dose_id=first_dose(course).pk)
            assert sorted(told.values_list("recipient__username", flat=True)) == sorted(
                [course.patient.assigned_nurse.username, "onc"]
            )
    assert len(reads[5]) == len(reads[1]), "\n".join(reads[5])


def test_close_expired_holds_a_flagged_slot_and_misses_an_unflagged_one(
    ready, patient_a, patient_c, nurse_a, oncologist
):
    held_course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    flagged = first_dose(held_course)
    dose_evaluate(dose_id=flagged.pk, now=NOW)
    missed_course = ready(patient_c)
    unflagged = first_dose(missed_course)
    due = flagged.due_at

    assert doses_close_expired(now=due + W) == {"held": 0, "missed": 0}  # at due + W it is still chartable
    assert doses_close_expired(now=due + W + timedelta(seconds=1)) == {"held": 1, "missed": 1}

    flagged.refresh_from_db()
    unflagged.refresh_from_db()
    assert flagged.status == Dose.Status.HELD and unflagged.status == Dose.Status.MISSED
    hold = Hold.objects.get(dose=flagged)
    assert (hold.automatic, hold.by, hold.reason, hold.rule_ids) == (True, None, "CV-SBP", ["CV-SBP"])
    assert hold.evaluation == flagged.latest_evaluation
    assert not Hold.objects.filter(dose=unflagged).exists()
    assert AuditEvent.objects.get(action="dose.hold", object_id=str(flagged.pk)).new["automatic"] is True
    assert AuditEvent.objects.filter(action="dose.missed", object_id=str(unflagged.pk), actor=None).count() == 1
    missed = notifications("dose_missed")
    assert {n.dose_id for n in missed} == {unflagged.pk}
    assert {n.recipient.username for n in missed} >= {"onc", "nurse_a"}
    assert missed[0].details["rule"] == "SCH-WINDOW"
    # A second sweep closes nothing more.
    assert doses_close_expired(now=due + W + timedelta(minutes=5)) == {"held": 0, "missed": 0}
    assert Hold.objects.count() == 1 and len(notifications("dose_missed")) == len(missed)


def test_an_incomplete_flag_is_missed_not_held(ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a, skip=("neuro",))
    dose = first_dose(course)
    assert dose_evaluate(dose_id=dose.pk, now=NOW).decision == "incomplete"
    doses_close_expired(now=dose.due_at + W + timedelta(seconds=1))
    dose.refresh_from_db()
    assert dose.status == Dose.Status.MISSED


def test_the_sweep_records_the_third_hold_of_a_cycle(ready, patient_a, nurse_a, oncologist):
    """SCH-3HELD through the sweep: three flagged slots closed at due + W notify the oncologist once."""
    course = ready(first=NOW - timedelta(hours=24))
    chart(patient_a, nurse_a, at=NOW - timedelta(hours=24, minutes=10), vitals={"sbp": 85, "dbp": 50})
    doses = list(Dose.objects.filter(course=course, cycle=1).order_by("number")[:4])
    for dose in doses:
        dose_evaluate(dose_id=dose.pk, now=dose.due_at - timedelta(minutes=5))
    assert doses_close_expired(now=doses[2].due_at + W + timedelta(seconds=1)) == {"held": 3, "missed": 0}
    assert [n.recipient.username for n in notifications("third_hold")] == ["onc"]
    doses_close_expired(now=doses[3].due_at + W + timedelta(seconds=1))
    assert len(notifications("third_hold")) == 1


@pytest.fixture
def patient_c(ward_a, oncologist):
    return patient_create(
        mrn="A-0003", name="Pat Gamma", birth_date=date(1975, 3, 3), ward=ward_a, by=oncologist, now=NOW
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_never_close_a_slot_twice(transactional_db, ward_a, nurse_a, oncologist, make_course):
    require_postgres()
    ward_of(6, ward_a, nurse_a, make_course)
    firsts = Dose.objects.filter(cycle=1, number=1)
    flagged = list(firsts.order_by("pk"))[:3]
    for dose in flagged:  # half held at due + W, half missed
        chart(dose.course.patient, nurse_a, at=NOW - timedelta(minutes=5), vitals={"sbp": 85, "dbp": 50})
        dose_evaluate(dose_id=dose.pk, now=NOW)
    later = NOW + timedelta(minutes=90) + W + timedelta(seconds=1)
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def sweep():
        try:
            barrier.wait(timeout=10)
            results.append(doses_close_expired(now=later))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    assert sum(r["held"] for r in results) == 3 and sum(r["missed"] for r in results) == 3
    assert Hold.objects.count() == 3
    closed = AuditEvent.objects.filter(action__in=["dose.hold", "dose.missed"])
    assert sorted(closed.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in firsts.values_list("pk", flat=True)
    )
    missed = notifications("dose_missed")  # the oncologist and the ward's nurse, once per missed slot
    assert len(missed) == 3 * 2 and len({n.dose_id for n in missed}) == 3


@pytest.mark.django_db(transaction=True)
def test_the_window_edge_sweep_leaves_a_slot_being_charted_to_the_next_sweep(
    transactional_db, ward_a, nurse_a, oncologist, make_course
):
    """SCH-WINDOW on PostgreSQL: a slot whose row a nurse's charting holds locked is skipped (SKIP LOCKED), not
    waited for; the others close; the next sweep closes it if she did not chart it."""
    from django.db import connections, transaction

    require_postgres()
    ward_of(2, ward_a, nurse_a, make_course)
    busy, other = list(Dose.objects.filter(cycle=1, number=1).order_by("pk"))
    later = busy.due_at + W + timedelta(seconds=1)
    locked, release = threading.Event(), threading.Event()

    def nurse_charting():
        try:
            with transaction.atomic():
                Dose.objects.select_for_update().get(pk=busy.pk)  # as scheduling.services._locked_dose does
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    nurse = threading.Thread(target=nurse_charting)
    nurse.start()
    try:
        assert locked.wait(timeout=30)
        assert doses_close_expired(now=later) == {"held": 0, "missed": 1}
    finally:
        release.set()
        nurse.join(timeout=30)
    assert Dose.objects.get(pk=other.pk).status == Dose.Status.MISSED
    assert Dose.objects.get(pk=busy.pk).status == Dose.Status.SCHEDULED
    assert doses_close_expired(now=later + timedelta(seconds=30)) == {"held": 0, "missed": 1}
    assert Dose.objects.get(pk=busy.pk).status == Dose.Status.MISSED
