"""Two beat processes with two workers for a compressed "minute" (1 s sweeps, 1 s heartbeats, a 3 s beat lease):
one beat holds the lease and sends every sweep, the other waits; sweeps run once per interval, not twice; readiness
names the holder and the standby; the same reminders, no duplicate notification rows, no delivery sent twice.
Then the holder is SIGKILLed: the standby takes the lease over within its expiry and the sweeps go on."""

import re
import socket
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone

from il2ward.health import beat_lease, readiness_problems
from il2ward.heartbeats import BEAT
from il2ward.lease import lease_current
from il2ward.models import Heartbeat, Notification
from il2ward.services import patient_create
from monitoring import services as obs
from scheduling.services import course_create, course_materialise_calendar
from tests.faults.conftest import FAST, all_delivered, start_beat
from tests.notifications.conftest import NORMAL_VITALS
from tests.workers import start_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
COURSES = 6
INTERVAL = 1  # seconds between sweeps
LEASE = 3  # IL2WARD_BEAT_LEASE_SECONDS: 3 heartbeats of FAST's 1 s
WATCH = 6  # seconds both beats run side by side


def sweeps_run(worker_logs: list[str]) -> int:
    """Sweeps that did their work (not skipped as a standby's), from the workers' task-succeeded lines."""
    lines = [line for log in worker_logs for line in log.splitlines()]
    return sum(1 for line in lines if re.search(r"scheduling\.sweep\[.*\] succeeded", line) and "skipped" not in line)


def sent(beat_log: str) -> int:
    return beat_log.count("Sending due task scheduling-sweep")


def test_two_beats_one_holds_the_lease_and_the_other_takes_over_when_it_dies(
    services, tmp_path, webhook_on, ward_a, nurse_a, nurse_a2, oncologist
):
    webhook = webhook_on()
    now = timezone.now()
    for i in range(COURSES):
        patient = patient_create(
            mrn=f"TB-{i}", name=f"Two Beats {i}", birth_date=now.date(), ward=ward_a, by=oncologist, now=now
        )
        course = course_create(
            patient=patient,
            first_dose_at=now + timedelta(minutes=20),  # assessment_due and dose_due are both due at once
            dosing_weight_kg=Decimal(80),
            by=oncologist,
            now=now,
        )
        course_materialise_calendar(course_id=course.pk, now=now)
        # Vitals, weight and labs just charted: no vitals_due / weight_due / labs_due whatever the wall clock.
        obs.vitals_record(patient=patient, recorded_at=now, by=nurse_a, now=now, **NORMAL_VITALS)
        obs.weight_record(patient=patient, recorded_at=now, weight_kg=Decimal(80), by=nurse_a, now=now)
        obs.labs_record(patient=patient, recorded_at=now, creatinine_mg_dl=Decimal("1.0"), by=nurse_a, now=now)
    expected = COURSES * 2 * 2  # (assessment_due, dose_due) × (nurse_a, nurse_a2)
    assert FAST["IL2WARD_HEARTBEAT_SECONDS"] == "1"
    workers = [start_worker(tmp_path, redis_url=services, env=FAST, wait_ready=False) for _ in range(2)]
    beats = [start_beat(tmp_path, redis_url=services, interval=INTERVAL) for _ in range(2)]
    processes = workers + beats
    names = {f"{socket.gethostname()}:{beat.process.pid}": beat for beat in beats}
    try:
        for worker in workers:
            worker.wait_ready()
        wait_until(lambda: lease_current("beat") is not None, timeout=30, message=beats[0].log)
        holder_name = lease_current("beat").holder
        holder = names[holder_name]
        (standby_name,) = set(names) - {holder_name}
        standby = names[standby_name]
        wait_until(lambda: Notification.objects.count() >= expected, timeout=60, message=workers[0].log)
        # The compressed minute: both beats alive, counted from the moment both have written a heartbeat.
        wait_until(lambda: len(beat_lease(timezone.now())["standby"]) == 1, timeout=30, message=standby.log)
        sent_before = {name: sent(beat.log(tail=10**7)) for name, beat in names.items()}
        run_before = sweeps_run([w.log(tail=10**7) for w in workers])
        time.sleep(WATCH)
        sent_during = {name: sent(beat.log(tail=10**7)) - sent_before[name] for name, beat in names.items()}
        run_during = sweeps_run([w.log(tail=10**7) for w in workers]) - run_before
        lease_seen = beat_lease(timezone.now())
        problems = readiness_problems(timezone.now())
        wait_until(all_delivered, timeout=60, message=workers[0].log)

        # The holder dies without a goodbye: its lease is not released, it expires.
        killed_at = timezone.now()
        holder.kill()
        wait_until(lambda: lease_current("beat").holder == standby_name, timeout=LEASE + 15, message=standby.log)
        took_over = (lease_current("beat").acquired_at - killed_at).total_seconds()
        wait_until(
            lambda: Heartbeat.objects.get(name=BEAT).at > lease_current("beat").acquired_at,
            timeout=15,
            message=lambda: standby.log() + workers[0].log(),
        )
        after = beat_lease(timezone.now())
        logs = [p.log(tail=10**7) for p in processes]
    finally:
        for process in processes:
            process.stop()
    counts = webhook.delivery_counts()
    print(
        f"\ntwo beats for {WATCH} s at {INTERVAL} s: sweeps sent {sent_during} (holder {holder_name}), "
        f"sweeps run {run_during}; notifications {Notification.objects.count()} due {expected}, webhook POSTs "
        f"{sum(counts.values())} for {len(counts)} events; holder killed, standby took over after {took_over:.1f} s"
    )
    assert "beat" not in problems and "worker" not in problems, problems
    assert lease_seen["holder"] == holder_name and lease_seen["standby"] == [standby_name], lease_seen
    assert after["holder"] == standby_name and after["standby"] == [], after
    assert sent_during[standby_name] == 0, logs[3][-3000:]
    # Once per interval, not twice: at most the intervals watched (+1 for a boundary), at least half of them on a
    # busy machine.
    assert WATCH // (2 * INTERVAL) <= sent_during[holder_name] <= WATCH // INTERVAL + 1, sent_during
    assert WATCH // (2 * INTERVAL) <= run_during <= WATCH // INTERVAL + 2, run_during
    assert 0 < took_over <= LEASE + 2 * int(FAST["IL2WARD_HEARTBEAT_SECONDS"]) + 1, took_over
    assert "beat lease taken" in logs[2 + beats.index(standby)]
    assert Notification.objects.count() == expected
    duplicates = Notification.objects.values("kind", "dose_id", "recipient_id").annotate(n=Count("pk")).filter(n__gt=1)
    assert list(duplicates) == []
    # One POST per event per endpoint, both nurses listed inside: (assessment_due, dose_due) × courses.
    assert len(counts) == expected // 2 and set(counts.values()) == {1}
    assert {tuple(h.json["recipients"]) for h in webhook.hooks} == {("nurse_a", "nurse_a2")}
    for log in logs[:2]:
        assert "IntegrityError" not in log and "Traceback" not in log, log[-3000:]
