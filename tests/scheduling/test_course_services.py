"""Course services and their tasks: the row, the audit row and the task enqueued after commit (ARCHITECTURE.md, Tests).

Published tasks are observed with Celery's `before_task_publish` signal while the message really goes to the
configured broker (Redis, or the filesystem transport of the demo): nothing is stubbed.
"""

from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from celery.signals import before_task_publish
from django.db import connection
from django.test.utils import CaptureQueriesContext

from il2ward.errors import Conflict, Invalid
from il2ward.models import AuditEvent
from il2ward.services import patient_create
from scheduling.models import Course, Dose
from scheduling.services import (
    course_create,
    course_materialise_calendar,
    courses_advance_status,
    courses_pickup_unscheduled,
)
from tests.conftest import NOW

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]
FIRST = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)  # 16:00 in Chicago (ward A)


@contextmanager
def published_tasks():
    """Collect (task name, args) of every message published while the block runs."""
    sent: list[tuple[str, tuple]] = []

    def record(sender=None, body=None, **kwargs):
        sent.append((sender, tuple(body[0])))

    before_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(record)


def create(patient, oncologist, *, now=NOW, first=FIRST, weight="80", **kwargs) -> Course:
    return course_create(
        patient=patient, first_dose_at=first, dosing_weight_kg=Decimal(weight), by=oncologist, now=now, **kwargs
    )


@pytest.fixture
def patient_c(ward_a, oncologist):
    return patient_create(
        mrn="A-0003", name="Pat Gamma", birth_date=date(1975, 3, 3), ward=ward_a, by=oncologist, now=NOW
    )


def dose_inserts(queries) -> list[str]:
    return [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("INSERT") and '"scheduling_dose"' in q["sql"]
    ]


# --- course_create ----------------------------------------------------------------------------------------------


def test_course_create_writes_the_course_its_audit_row_and_enqueues_the_calendar_on_commit(
    patient_a, oncologist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        course = create(patient_a, oncologist)
    course.refresh_from_db()
    assert course.status == Course.Status.SCHEDULING and not course.doses.exists()
    assert course.dose_iu == 48_000_000 and course.first_dose_at == FIRST
    assert course.cycle2_first_at == datetime(2027, 3, 26, 21, 0, tzinfo=UTC)  # day 15, 16:00 CDT
    assert course.created_at == NOW and course.oncologist == oncologist
    event = AuditEvent.objects.get(action="course.create", object_id=str(course.pk))
    assert event.object_type == "scheduling.course" and event.actor == oncologist and event.at == NOW
    assert event.new["patient"] == patient_a.pk and event.new["dose_iu"] == 48_000_000
    assert event.new["first_dose_at"] == "2027-03-12T22:00:00+00:00"
    # Nothing is published inside the transaction; on commit exactly the calendar task, with the id only.
    assert len(callbacks) == 1
    with published_tasks() as sent:
        callbacks[0]()
    assert sent == [("scheduling.generate_calendar", (course.pk,))]


def test_a_refused_course_create_enqueues_nothing_and_stores_nothing(
    patient_a, oncologist, django_capture_on_commit_callbacks
):
    create(patient_a, oncologist)
    before = (Course.objects.count(), AuditEvent.objects.count())
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(Conflict) as raised:
        create(patient_a, oncologist, first=FIRST + timedelta(days=60))
    assert raised.value.code == "active_course_exists"
    assert callbacks == []
    assert (Course.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"first": datetime(2027, 3, 12, 16, 0)}, "first_dose_at"),  # naive
        ({"weight": "19.9"}, "dosing_weight_kg"),
        ({"weight": "350.1"}, "dosing_weight_kg"),
        ({"baseline_weight_kg": Decimal("10")}, "baseline_weight_kg"),
    ],
)
def test_course_create_refuses_bad_input_naming_the_field(patient_a, oncologist, kwargs, field):
    before = (Course.objects.count(), AuditEvent.objects.count())
    with pytest.raises(Invalid) as raised:
        create(patient_a, oncologist, **kwargs)
    assert list(raised.value.errors) == [field]
    assert (Course.objects.count(), AuditEvent.objects.count()) == before


def test_a_closed_course_does_not_block_a_new_one(patient_a, oncologist, make_course):
    course = make_course(patient_a)
    Course.objects.filter(pk=course.pk).update(
        status=Course.Status.COMPLETED, discharge_date=(FIRST + timedelta(days=20)).date()
    )
    assert create(patient_a, oncologist, first=FIRST + timedelta(days=90)).status == Course.Status.SCHEDULING


# --- course_materialise_calendar --------------------------------------------------------------------------------


def test_materialise_writes_28_slots_with_one_insert(patient_a, oncologist):
    course = create(patient_a, oncologist)
    later = NOW + timedelta(seconds=5)
    with CaptureQueriesContext(connection) as queries:
        written = course_materialise_calendar(course_id=course.pk, now=later)
    assert written == 28
    assert len(dose_inserts(queries.captured_queries)) == 1
    course.refresh_from_db()
    assert course.status == Course.Status.PLANNED and course.scheduled_at == later
    doses = list(course.doses.order_by("cycle", "number"))
    assert [(d.cycle, d.number) for d in doses] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert {d.status for d in doses} == {Dose.Status.SCHEDULED}
    assert doses[0].due_at == FIRST and doses[13].due_at == FIRST + timedelta(hours=104)
    assert doses[14].due_at == course.cycle2_first_at
    event = AuditEvent.objects.get(action="course.schedule", object_id=str(course.pk))
    assert event.actor is None and event.at == later
    assert (event.old, event.new) == ({"status": "scheduling"}, {"status": "planned", "slots": 28})


def test_materialise_is_idempotent(patient_a, oncologist):
    course = create(patient_a, oncologist)
    assert course_materialise_calendar(course_id=course.pk, now=NOW) == 28
    with CaptureQueriesContext(connection) as queries:
        assert course_materialise_calendar(course_id=course.pk, now=NOW + timedelta(minutes=1)) == 0
    assert dose_inserts(queries.captured_queries) == []
    assert Dose.objects.filter(course=course).count() == 28
    assert AuditEvent.objects.filter(action="course.schedule", object_id=str(course.pk)).count() == 1
    course.refresh_from_db()
    assert course.scheduled_at == NOW


def test_the_calendar_task_writes_the_slots(patient_a, oncologist):
    from scheduling.tasks import generate_calendar

    course = create(patient_a, oncologist)
    assert generate_calendar.apply(args=[course.pk]).get() == 28
    assert generate_calendar.apply(args=[course.pk]).get() == 0  # a redelivered message is harmless
    assert Dose.objects.filter(course=course).count() == 28


# --- courses_pickup_unscheduled ---------------------------------------------------------------------------------


def test_pickup_resends_only_courses_still_scheduling_after_a_minute(
    settings, oncologist, patient_a, patient_b, patient_c, make_course
):
    settings.IL2WARD_SCHEDULING_PICKUP_SECONDS = 60
    lost = create(patient_a, oncologist, now=NOW - timedelta(seconds=61))
    create(patient_b, oncologist, now=NOW - timedelta(seconds=60))  # exactly a minute: not older than a minute
    make_course(patient_c, now=NOW - timedelta(hours=1))  # long ago, but already planned
    with published_tasks() as sent:
        picked = courses_pickup_unscheduled(now=NOW)
    assert picked == [lost.pk]
    assert sent == [("scheduling.generate_calendar", (lost.pk,))]


def test_the_sweep_picks_up_a_lost_calendar_task(oncologist, patient_a):
    from django.utils import timezone

    from scheduling.tasks import sweep

    lost = create(patient_a, oncologist, now=timezone.now() - timedelta(minutes=5))
    with published_tasks() as sent:
        result = sweep.apply().get()
    assert result["picked_up"] == 1
    assert ("scheduling.generate_calendar", (lost.pk,)) in sent


# --- courses_advance_status -------------------------------------------------------------------------------------


def test_status_moves_planned_active_rest_active_completed_at_the_window_edges(settings, patient_a, make_course):
    settings.IL2WARD_WINDOW_MINUTES = 60
    window, tick = timedelta(minutes=60), timedelta(seconds=1)
    course = make_course(patient_a)
    c1_first, c1_last = FIRST, FIRST + timedelta(hours=104)
    c2_first = datetime(2027, 3, 26, 21, 0, tzinfo=UTC)
    c2_last = c2_first + timedelta(hours=104)
    steps = [
        (c1_first - window - tick, "planned", 0),
        (c1_first - window, "active", 1),  # the first window opens
        (c1_last + window, "active", 0),  # the last window of cycle 1 is still open
        (c1_last + window + tick, "rest", 1),
        (c2_first - window - tick, "rest", 0),
        (c2_first - window, "active", 1),
        (c2_last + window, "active", 0),
        (c2_last + window + tick, "completed", 1),
        (c2_last + timedelta(days=30), "completed", 0),
    ]
    for now, status, changed in steps:
        assert courses_advance_status(now=now) == changed, now
        course.refresh_from_db()
        assert course.status == status, now
    moves = AuditEvent.objects.filter(action="course.status", object_id=str(course.pk)).order_by("pk")
    assert [(e.old["status"], e.new["status"]) for e in moves] == [
        ("planned", "active"),
        ("active", "rest"),
        ("rest", "active"),
        ("active", "completed"),
    ]
    assert moves.first().at == c1_first - window


def test_status_sweep_leaves_stopped_and_scheduling_courses_alone(patient_a, patient_b, oncologist, make_course):
    stopped = make_course(patient_a)
    Course.objects.filter(pk=stopped.pk).update(status=Course.Status.STOPPED)
    scheduling = create(patient_b, oncologist)
    assert courses_advance_status(now=FIRST + timedelta(hours=1)) == 0
    assert Course.objects.get(pk=stopped.pk).status == Course.Status.STOPPED
    assert Course.objects.get(pk=scheduling.pk).status == Course.Status.SCHEDULING
