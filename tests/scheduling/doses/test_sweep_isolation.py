"""A bad row stops neither the sweep nor its step: a step that fails leaves the later steps to run, and within a step
one item that fails is rolled back, logged by kind and id (never patient data), pushed back for the next sweep and
counted, while the step's other items complete. /readyz names a step that has not run clean for three intervals,
with the items that keep failing in it (to staff only)."""

import logging
from datetime import date, timedelta

import pytest
from django.conf import settings

from il2ward.health import readiness_problems
from il2ward.heartbeats import STEP_PREFIX, beat_beats, process_beats
from il2ward.models import AuditEvent, Heartbeat, Notification
from il2ward.services import patient_create
from monitoring.models import RuleSetVersion
from scheduling.models import Course, Dose, DoseEvaluation, Hold
from scheduling.services import courses as course_services
from scheduling.services import doses as dose_services
from scheduling.services import evaluation, isolation, reminders
from scheduling.tasks import SWEEP_STEPS, sweep_at
from tests.conftest import NOW
from tests.scheduling.doses.conftest import chart, first_dose

pytestmark = pytest.mark.django_db
INTERVAL = timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)
STALE = timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS + 31)


def _break_rule_set(course) -> None:
    """A rule-set row whose definition no longer parses (a hand edit in the database): evaluating fails."""
    RuleSetVersion.objects.filter(pk=course.rule_set_id).update(definition={"name": "consensus-2014", "spec": 2})


@pytest.fixture
def two_courses(ready, ward_a, oncologist, nurse_a):
    """Two patients of ward A, each with a course whose first dose is due in 90 min and complete normal data."""
    other = patient_create(
        mrn="A-0002", name="Quentin Secondpatient", birth_date=date(1971, 2, 3), ward=ward_a, by=oncologist, now=NOW
    )
    courses = [
        ready(first=NOW + timedelta(hours=1, minutes=30)),
        ready(other, first=NOW + timedelta(hours=1, minutes=30)),
    ]
    for course in courses:
        chart(course.patient, nurse_a)
    return courses


def _fail_for(monkeypatch, module, name, bad_id, *, id_of):
    """Make module.name raise for the item whose id is `bad_id` (the planted bad row); returns the calls' ids."""
    real = getattr(module, name)
    calls: list[int] = []

    def planted(*args, **kwargs):
        item_id = id_of(*args, **kwargs)
        calls.append(item_id)
        if item_id == bad_id:
            raise ValueError(f"planted failure for {args!r}")  # the text quotes the row: it must not be logged
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, planted)
    return calls


def _evaluated(dose) -> bool:
    return DoseEvaluation.objects.filter(dose=dose).exists()


def test_a_failing_item_is_pushed_back_and_the_others_are_evaluated(two_courses, monkeypatch, caplog):
    good, bad = (first_dose(course) for course in two_courses)
    calls = _fail_for(monkeypatch, evaluation, "_evaluation_row", bad.pk, id_of=lambda dose, *a, **k: dose.pk)
    with caplog.at_level(logging.WARNING):
        result = sweep_at(now=NOW)
    assert "failed" not in result and result["pushed_back"] == {"evaluate": 1} and result["evaluated"] == 1
    assert _evaluated(good) and not _evaluated(bad)  # the bad one's transaction rolled back
    assert Dose.objects.get(pk=bad.pk).latest_evaluation_id is None
    # The later steps ran and ran clean.
    assert {"dose_reminders", "escalations"} <= result.keys()
    assert Heartbeat.objects.get(name=f"{STEP_PREFIX}reminders").failed_items == []
    row = Heartbeat.objects.get(name=f"{STEP_PREFIX}evaluate")
    assert row.failed_items == [f"dose {bad.pk}"] and row.at == NOW  # its first run: counted from here
    message = " ".join(record.getMessage() for record in caplog.records)
    assert f"sweep step evaluate: dose {bad.pk} failed (ValueError), left for the next sweep" in message
    for course in two_courses:
        assert course.patient.name not in message and course.patient.mrn not in message
    assert "planted failure" not in message
    # The batch first, then each alone: the bad dose twice, the good one twice (the batch's write was rolled back).
    assert sorted(calls) == sorted([good.pk, bad.pk, good.pk, bad.pk])

    # The next sweep takes it again (it is still not evaluated) and pushes it back again.
    calls.clear()
    result = sweep_at(now=NOW + INTERVAL)
    assert result["pushed_back"] == {"evaluate": 1} and result["evaluated"] == 0
    assert calls == [bad.pk, bad.pk]  # the good one is not a candidate any more
    assert Heartbeat.objects.get(name=f"{STEP_PREFIX}evaluate").at == NOW  # not clean: its last clean run stands

    # Once the row is mended, the next sweep evaluates it and the step runs clean.
    monkeypatch.undo()
    result = sweep_at(now=NOW + 2 * INTERVAL)
    assert "pushed_back" not in result and result["evaluated"] == 1
    assert _evaluated(bad)
    row = Heartbeat.objects.get(name=f"{STEP_PREFIX}evaluate")
    assert row.failed_items == [] and row.at == NOW + 2 * INTERVAL


def test_a_healthy_batch_is_evaluated_once_each(two_courses, monkeypatch):
    """The nearest allowed case: nothing fails, each dose's row is built once (the batch, no item alone)."""
    calls = _fail_for(monkeypatch, evaluation, "_evaluation_row", -1, id_of=lambda dose, *a, **k: dose.pk)
    result = sweep_at(now=NOW)
    assert "pushed_back" not in result and "failed" not in result and result["evaluated"] == 2
    assert sorted(calls) == sorted(first_dose(course).pk for course in two_courses)
    stamped = Heartbeat.objects.filter(name__startswith=STEP_PREFIX)
    assert {row.name for row in stamped} == {f"{STEP_PREFIX}{step}" for step, _ in SWEEP_STEPS}
    assert all(row.at == NOW and row.failed_items == [] for row in stamped)


def test_a_broken_rule_set_pushes_back_its_dose_not_the_step(two_courses):
    good, bad = two_courses
    _break_rule_set(bad)  # both courses share the rule set: both doses are pushed back, and no step fails
    result = sweep_at(now=NOW)
    assert "failed" not in result and result["pushed_back"] == {"evaluate": 2}
    assert sorted(Heartbeat.objects.get(name=f"{STEP_PREFIX}evaluate").failed_items) == sorted(
        f"dose {first_dose(course).pk}" for course in two_courses
    )


def test_a_step_that_fails_before_its_items_does_not_stop_the_later_ones(two_courses, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("the candidates' query failed")

    monkeypatch.setattr("scheduling.services.courses_advance_status", broken)
    with caplog.at_level(logging.ERROR, logger="scheduling.tasks"):
        result = sweep_at(now=NOW)
    assert result["failed"] == ["status"] and result["evaluated"] == 2
    assert "sweep step status failed: RuntimeError" in caplog.text
    assert Heartbeat.objects.get(name=f"{STEP_PREFIX}status").at == NOW  # its first failure
    assert Heartbeat.objects.filter(name=f"{STEP_PREFIX}reminders", at=NOW).exists()
    # A step that fails entirely is not retried item by item: nothing was taken.
    assert "pushed_back" not in result


def test_readyz_names_the_step_and_the_items_that_keep_failing(two_courses, monkeypatch):
    bad = first_dose(two_courses[1])
    _fail_for(monkeypatch, evaluation, "_evaluation_row", bad.pk, id_of=lambda dose, *a, **k: dose.pk)
    sweep_at(now=NOW)
    later = NOW + STALE
    sweep_at(now=later)
    beat_beats(now=later)
    process_beats(name="worker:test@host", now=later)
    problems = readiness_problems(later)
    assert (
        "sweep" in problems
        and f"evaluate {STALE.seconds} s ago (done with 1 failed items: dose {bad.pk})" in (problems["sweep"])
    )
    assert "reminders" not in problems["sweep"]


def test_readyz_is_quiet_when_a_failed_item_succeeds_at_the_next_sweep(two_courses, monkeypatch):
    """The nearest allowed case: one failure (a lock, a race) that the next sweep mends raises nothing."""
    bad = first_dose(two_courses[1])
    _fail_for(monkeypatch, evaluation, "_evaluation_row", bad.pk, id_of=lambda dose, *a, **k: dose.pk)
    sweep_at(now=NOW)
    monkeypatch.undo()
    sweep_at(now=NOW + INTERVAL)
    later = NOW + STALE
    beat_beats(now=later)
    process_beats(name="worker:test@host", now=later)
    assert "sweep" not in readiness_problems(later)


def test_readyz_shows_the_failing_items_to_staff_only(two_courses, monkeypatch, client, admin_user, settings):
    bad = first_dose(two_courses[1])
    _fail_for(monkeypatch, evaluation, "_evaluation_row", bad.pk, id_of=lambda dose, *a, **k: dose.pk)
    sweep_at(now=NOW - STALE)
    sweep_at(now=NOW)
    import time_machine

    with time_machine.travel(NOW, tick=False):
        beat_beats(now=NOW)
        process_beats(name="worker:test@host", now=NOW)
        anonymous = client.get("/readyz")
        client.force_login(admin_user)
        staff = client.get("/readyz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "unavailable"}
    assert staff.status_code == 503 and f"dose {bad.pk}" in staff.json()["failed"]["sweep"]


def test_a_slot_that_cannot_be_closed_is_pushed_back_and_the_others_close(two_courses, monkeypatch):
    good, bad = (first_dose(course) for course in two_courses)
    Dose.objects.filter(pk__in=[good.pk, bad.pk]).update(flag=Dose.Flag.HOLD)  # flagged hold: recorded held
    _fail_for(monkeypatch, dose_services, "_automatic_hold", bad.pk, id_of=lambda dose, **k: dose.pk)
    after = good.due_at + timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES, seconds=1)
    with isolation.collecting("close") as pushed:
        assert dose_services.doses_close_expired(now=after) == {"held": 1, "missed": 0}
    assert pushed.items == [f"dose {bad.pk}"]
    assert Dose.objects.get(pk=good.pk).status == Dose.Status.HELD and Hold.objects.filter(dose=good).exists()
    assert Dose.objects.get(pk=bad.pk).status == Dose.Status.SCHEDULED and not Hold.objects.filter(dose=bad).exists()
    assert not AuditEvent.objects.filter(action="dose.held", object_id=str(bad.pk)).exists()
    monkeypatch.undo()
    with isolation.collecting("close") as pushed:
        assert dose_services.doses_close_expired(now=after + INTERVAL) == {"held": 1, "missed": 0}
    assert pushed.items == [] and Dose.objects.get(pk=bad.pk).status == Dose.Status.HELD


def test_a_course_whose_status_cannot_change_is_pushed_back_and_the_others_move(two_courses, monkeypatch):
    good, bad = two_courses
    real = course_services.audit

    def planted(**kwargs):
        if kwargs["obj"] == ("scheduling.course", bad.pk):
            raise ValueError("planted")
        return real(**kwargs)

    monkeypatch.setattr(course_services, "audit", planted)
    opens = good.first_dose_at - timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    with isolation.collecting("status") as pushed:
        assert course_services.courses_advance_status(now=opens) == 1
    assert pushed.items == [f"course {bad.pk}"]
    assert Course.objects.get(pk=good.pk).status == Course.Status.ACTIVE
    assert Course.objects.get(pk=bad.pk).status == Course.Status.PLANNED  # its update rolled back with the audit
    monkeypatch.undo()
    with isolation.collecting("status") as pushed:
        assert course_services.courses_advance_status(now=opens + INTERVAL) == 1
    assert pushed.items == [] and Course.objects.get(pk=bad.pk).status == Course.Status.ACTIVE


def test_a_reminder_that_cannot_be_written_is_pushed_back_and_the_others_are(two_courses, monkeypatch):
    good, bad = (first_dose(course) for course in two_courses)
    real = reminders.notify_many

    def planted(outgoing, **kwargs):
        if any(item.dose_id == bad.pk for item in outgoing):
            raise ValueError("planted")
        return real(outgoing, **kwargs)

    monkeypatch.setattr(reminders, "notify_many", planted)
    due_soon = good.due_at - timedelta(minutes=settings.IL2WARD_DOSE_DUE_MINUTES)
    with isolation.collecting("reminders") as pushed:
        reminders.dose_reminders(now=due_soon)
    assert pushed.items == [f"dose {bad.pk}"]
    assert Notification.objects.filter(kind="dose_due", dose_id=good.pk).exists()
    assert not Notification.objects.filter(dose_id=bad.pk).exists()
    monkeypatch.undo()
    with isolation.collecting("reminders") as pushed:
        reminders.dose_reminders(now=due_soon + INTERVAL)
    assert pushed.items == [] and Notification.objects.filter(kind="dose_due", dose_id=bad.pk).exists()
