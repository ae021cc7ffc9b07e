"""Work gathered after commits (il2ward.deferral), as the HL7 listener does it: published once per patient per window
after the answers, the ward board bumped once, nothing for a rolled-back write, and with the broker down the
re-evaluation run in this process instead of lost."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction

from il2ward import deferral, tasking
from il2ward.models import Ward
from inbound.listener import flush_after_ack
from monitoring.services import labs_record
from scheduling.task_names import EVALUATE_PATIENT
from tests.conftest import NOW


@pytest.fixture
def broker(monkeypatch):
    """What reached the broker, and whether it is up (send_task_safely answers False when down)."""
    state = {"up": True, "sent": [], "offered": 0, "run_here": []}

    def send(name, *args):
        state["offered"] += 1
        if state["up"]:
            state["sent"].append((name, *args))
        return state["up"]

    monkeypatch.setattr("il2ward.tasking.send_task_safely", send)
    monkeypatch.setattr("il2ward.tasking.run_here", lambda name, *args: state["run_here"].append((name, *args)))
    return state


def record(patient, user, minutes: int, *, fail: bool = False):
    with transaction.atomic():
        labs_record(patient=patient, recorded_at=NOW - timedelta(minutes=minutes), creatinine_mg_dl="1.1", by=user,
                    now=NOW)  # fmt: skip
        if fail:
            raise RuntimeError("rolled back")


def board(ward) -> int:
    return Ward.objects.get(pk=ward.pk).board_version


@pytest.mark.django_db(transaction=True)
def test_gathered_work_waits_for_the_flush_and_is_done_once_per_patient(patient_a, oncologist, broker):
    gathered = deferral.Deferred()
    version = board(patient_a.ward)
    with deferral.collecting(gathered):
        record(patient_a, oncologist, 30)
        record(patient_a, oncologist, 20)
        with pytest.raises(RuntimeError):
            record(patient_a, oncologist, 10, fail=True)
    assert broker["sent"] == [] and board(patient_a.ward) == version  # nothing before the flush
    assert tasking.flush_deferred(gathered) == 2  # one board UPDATE, one publish
    assert broker["sent"] == [(EVALUATE_PATIENT, patient_a.pk)]
    assert board(patient_a.ward) == version + 1
    assert tasking.flush_deferred(gathered) == 0  # forgotten once done


@pytest.mark.django_db(transaction=True)
def test_without_gathering_each_commit_publishes_and_bumps_at_once(patient_a, oncologist, broker):
    """The nearest case: a nurse's request (no Deferred active) keeps publishing on commit."""
    version = board(patient_a.ward)
    record(patient_a, oncologist, 30)
    record(patient_a, oncologist, 20)
    assert broker["sent"] == [(EVALUATE_PATIENT, patient_a.pk)] * 2
    assert board(patient_a.ward) == version + 2


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_reevaluation_runs_here(patient_a, patient_b, oncologist, broker):
    broker["up"] = False
    gathered = deferral.Deferred()
    with deferral.collecting(gathered):
        record(patient_a, oncologist, 30)
        record(patient_b, oncologist, 30)
        tasking.enqueue_on_commit("il2ward.not_registered", 7)  # autocommit: "committed" at once
    tasking.flush_deferred(gathered)
    assert broker["run_here"] == [(EVALUATE_PATIENT, patient_a.pk), (EVALUATE_PATIENT, patient_b.pk)]
    assert broker["offered"] == 1  # after the first refusal the window's other publishes do not wait for it
    # The broker back: the next window publishes again.
    broker["up"] = True
    with deferral.collecting(gathered):
        record(patient_a, oncologist, 20)
    tasking.flush_deferred(gathered)
    assert broker["sent"] == [(EVALUATE_PATIENT, patient_a.pk)]


@pytest.mark.django_db(transaction=True)
def test_run_here_evaluates_the_patients_open_slot(patient_a, make_course):
    """The fallback is the worker's own task, run in this process: the open slot gets an evaluation."""
    from scheduling.models import DoseEvaluation

    make_course(patient_a)
    before = DoseEvaluation.objects.count()
    with time_machine.travel(NOW, tick=False):
        tasking.run_here(EVALUATE_PATIENT, patient_a.pk)
    assert DoseEvaluation.objects.count() == before + 1


def test_the_listener_flushes_its_own_gathered_work(monkeypatch):
    gathered = deferral.Deferred()  # not the process's AFTER_ACK, which other tests' blocks may have fed
    monkeypatch.setattr("inbound.listener.AFTER_ACK", gathered)
    calls = []
    gathered.call(("x",), lambda: calls.append(1))
    gathered.call(("x",), lambda: calls.append(2))  # the same key in one window: once
    monkeypatch.setattr("inbound.listener.drop_broken_connections", lambda: None)
    assert flush_after_ack() == 1 and calls == [1]
