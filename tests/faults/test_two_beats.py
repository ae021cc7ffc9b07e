"""Two beat processes (a misconfigured deployment) with two workers, for more than five sweep intervals: the same
reminders, no duplicate notification rows, no delivery sent twice."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone

from il2ward.health import readiness_problems
from il2ward.models import Notification
from il2ward.services import patient_create
from monitoring import services as obs
from scheduling.services import course_create, course_materialise_calendar
from tests.faults.conftest import FAST, all_delivered, start_beat
from tests.notifications.conftest import NORMAL_VITALS
from tests.workers import start_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
COURSES = 6


def test_two_beats_for_five_intervals_write_no_duplicate_notifications(
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
    processes = [start_worker(tmp_path, redis_url=services, env=FAST, wait_ready=False) for _ in range(2)]
    processes += [start_beat(tmp_path, redis_url=services, interval=1) for _ in range(2)]
    try:
        for worker in processes[:2]:
            worker.wait_ready()
        started = time.monotonic()
        wait_until(lambda: Notification.objects.count() >= expected, timeout=60, message=processes[0].log)
        time.sleep(max(0.0, 6 - (time.monotonic() - started)))  # at least five intervals of both beats
        wait_until(all_delivered, timeout=60, message=processes[0].log)
        logs = [p.log(tail=10**6) for p in processes]
        # Each process writes its own heartbeat: readiness sees both workers and names both beats.
        problems = readiness_problems(timezone.now())
    finally:
        for process in processes:
            process.stop()
    assert "worker" not in problems, problems
    assert "2 beats running" in problems.get("beat", ""), problems
    assert sum(log.count("Sending due task scheduling-sweep") for log in logs[2:]) >= 10, logs[2]
    assert Notification.objects.count() == expected
    duplicates = Notification.objects.values("kind", "dose_id", "recipient_id").annotate(n=Count("pk")).filter(n__gt=1)
    assert list(duplicates) == []
    counts = webhook.delivery_counts()
    # One POST per event per endpoint, both nurses listed inside: (assessment_due, dose_due) × courses.
    assert len(counts) == expected // 2 and set(counts.values()) == {1}
    assert {tuple(h.json["recipients"]) for h in webhook.hooks} == {("nurse_a", "nurse_a2")}
    for log in logs[:2]:
        assert "IntegrityError" not in log and "Traceback" not in log, log[-3000:]
