"""A bad row stops one step of the sweep, not the sweep: the later steps run, the failure is logged by step name
without the row's content, and /readyz names the step once it has not succeeded for three intervals."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings

from il2ward.health import readiness_problems
from il2ward.heartbeats import STEP_PREFIX, beat_beats, process_beats
from il2ward.models import Heartbeat
from monitoring.models import RuleSetVersion
from scheduling.models import Dose
from scheduling.tasks import SWEEP_STEPS, sweep_at
from tests.conftest import NOW
from tests.scheduling.doses.conftest import chart, first_dose

pytestmark = pytest.mark.django_db


def _break_rule_set(course) -> None:
    """A rule-set row whose definition no longer parses (a hand edit in the database): evaluating fails."""
    RuleSetVersion.objects.filter(pk=course.rule_set_id).update(definition={"name": "consensus-2014", "spec": 2})


def test_a_failing_step_does_not_stop_the_later_ones(ready, patient_a, nurse_a, caplog):
    course = ready(first=NOW + timedelta(hours=1, minutes=30))
    chart(patient_a, nurse_a)
    _break_rule_set(course)
    with caplog.at_level(logging.ERROR, logger="scheduling.tasks"):
        result = sweep_at(now=NOW)
    assert result["failed"] == ["evaluate"]
    # The steps after it ran: closing and the reminders answered with their counts.
    assert "missed" in result or "held" in result or any(key.startswith("dose") for key in result)
    assert {"picked_up", "status_changes"} <= result.keys()
    message = " ".join(record.getMessage() for record in caplog.records)
    assert "sweep step evaluate failed" in message
    assert patient_a.name not in message and patient_a.mrn not in message
    # Its row counts from the first failure; a success would have moved it.
    assert Heartbeat.objects.get(name=f"{STEP_PREFIX}evaluate").at == NOW
    assert Heartbeat.objects.filter(name=f"{STEP_PREFIX}reminders", at=NOW).exists()


def test_a_healthy_sweep_stamps_every_step(ready, patient_a, nurse_a):
    course = ready(first=NOW + timedelta(hours=1, minutes=30))
    chart(patient_a, nurse_a)
    result = sweep_at(now=NOW)
    assert "failed" not in result and result["evaluated"] == 1
    assert Dose.objects.get(pk=first_dose(course).pk).latest_evaluation_id is not None
    stamped = set(Heartbeat.objects.filter(name__startswith=STEP_PREFIX).values_list("name", flat=True))
    assert stamped == {f"{STEP_PREFIX}{step}" for step, _ in SWEEP_STEPS}


def test_readyz_names_a_step_that_keeps_failing(ready, patient_a, nurse_a):
    course = ready(first=NOW + timedelta(hours=1, minutes=30))
    chart(patient_a, nurse_a)
    _break_rule_set(course)
    sweep_at(now=NOW)
    later = NOW + timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS + 31)
    sweep_at(now=later)
    beat_beats(now=later)
    process_beats(name="worker:test@host", now=later)
    problems = readiness_problems(later)
    assert "sweep" in problems and "evaluate" in problems["sweep"]
    assert "reminders" not in problems["sweep"]


def test_readyz_is_quiet_when_each_step_succeeded_within_three_intervals(ready, patient_a, nurse_a):
    ready(first=NOW + timedelta(hours=1, minutes=30))
    chart(patient_a, nurse_a)
    sweep_at(now=NOW)
    later = NOW + timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS + 29)
    beat_beats(now=later)
    process_beats(name="worker:test@host", now=later)
    assert "sweep" not in readiness_problems(later)
