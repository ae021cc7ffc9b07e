"""Redis killed and restarted (this test's own redis-server, never the shared one), with and without persistence,
while doses are charted and reminders are due, under a real worker and a real beat.

Before the kill, courses' reminders are due and delivered. While Redis is down nurses chart vitals and hold a dose
and the oncologist creates courses: every request succeeds (charting never waits for the broker), the publishes are
dropped. The worker and the beat keep retrying instead of exiting, reconnect by themselves once Redis is back, and
the beat's sweeps find what the lost messages would have done: the new courses' calendars are generated and their
reminders delivered. Counted and asserted: requests made, 5xx (0), reminders due vs delivered (0 lost, 0 twice),
calendars generated, charting lost (0)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from il2ward.models import Delivery
from il2ward.services import patient_create
from monitoring import services as obs
from monitoring.models import VitalSigns
from scheduling.models import Course
from scheduling.services import course_create, course_materialise_calendar
from tests.charting import NORMAL_VITALS
from tests.faults.conftest import FAST, start_beat
from tests.faults.own_services import OwnRedis
from tests.notifications.test_broker_down import broker_at
from tests.workers import start_worker, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
BEFORE, DURING = 2, 2  # courses whose reminders are due before the kill, courses created while Redis is down
DONE = ("delivered", "cancelled")  # cancelled: its work was done while it waited (a held dose), never sent


def chart_normal_day(patient, nurse, now):
    """Vitals, weight and labs just charted: no vitals_due / weight_due / labs_due, only the dose's reminders."""
    obs.vitals_record(patient=patient, recorded_at=now, by=nurse, now=now, **NORMAL_VITALS)
    obs.weight_record(patient=patient, recorded_at=now, weight_kg=Decimal(80), by=nurse, now=now)
    obs.labs_record(patient=patient, recorded_at=now, creatinine_mg_dl=Decimal("1.0"), by=nurse, now=now)


def settled() -> bool:
    return not Delivery.objects.exclude(status__in=DONE).exists()


@pytest.mark.parametrize("persistent", [False, True], ids=["no-persistence", "appendonly"])
def test_redis_restarted_while_doses_are_charted_and_reminders_are_due(
    services, tmp_path, webhook_on, api, ward_a, nurse_a, nurse_a2, oncologist, persistent
):
    webhook = webhook_on()
    now = timezone.now()
    patients = []
    for i in range(BEFORE + DURING):
        patient = patient_create(
            mrn=f"RR-{i}", name=f"Redis Restart {i}", birth_date=now.date(), ward=ward_a, by=oncologist, now=now
        )
        chart_normal_day(patient, nurse_a, now)
        patients.append(patient)
    for patient in patients[:BEFORE]:
        course = course_create(
            patient=patient,
            first_dose_at=now + timedelta(minutes=20),  # assessment_due and dose_due are both due at once
            dosing_weight_kg=Decimal(80),
            by=oncologist,
            now=now,
        )
        course_materialise_calendar(course_id=course.pk, now=now)
    statuses: list[int] = []
    charted: list[int] = []
    with OwnRedis(tmp_path / "redis", persistent=persistent) as redis_server, broker_at(redis_server.url):
        # A course still `scheduling` after 2 s (not 60) is picked up by the sweep: its calendar message was lost.
        worker = start_worker(
            tmp_path, redis_url=redis_server.url, env={**FAST, "IL2WARD_SCHEDULING_PICKUP_SECONDS": "2"}
        )
        beat = start_beat(tmp_path, redis_url=redis_server.url, interval=1)
        try:
            wait_until(
                lambda: Delivery.objects.filter(channel="webhook").count() >= 2 * BEFORE and settled(),
                timeout=60,
                message=worker.log,
            )
            delivered_before = len(webhook.delivery_counts())

            redis_server.kill()
            # While Redis is down: charting, a dose held, courses created (their calendar messages are dropped).
            nurse = api.as_user(nurse_a)
            for patient in patients:
                response = nurse.post(
                    f"/api/v1/patients/{patient.pk}/vitals/",
                    {**NORMAL_VITALS, "temp_c": "37.3", "recorded_at": timezone.now().isoformat()},
                    format="json",
                )
                statuses.append(response.status_code)
                if response.status_code == 201:
                    charted.append(response.json()["id"])
            dose = Course.objects.get(patient=patients[0]).doses.get(cycle=1, number=1)
            response = nurse.post(f"/api/v1/doses/{dose.pk}/hold/", {"reason": "CV-SBP"}, format="json")
            statuses.append(response.status_code)
            onc = api.as_user(oncologist)
            for patient in patients[BEFORE:]:
                response = onc.post(
                    "/api/v1/courses/",
                    {"patient": patient.pk, "first_dose_at": (now + timedelta(minutes=20)).isoformat(),
                     "dosing_weight_kg": "80"},
                    format="json",
                )  # fmt: skip
                statuses.append(response.status_code)
            wait_until(lambda: "Trying again" in worker.log(tail=10**6), timeout=30, message=worker.log)
            assert worker.process.poll() is None, f"the worker exited when Redis went away:\n{worker.log()}"
            assert beat.process.poll() is None, f"the beat exited when Redis went away:\n{beat.log()}"
            assert Course.objects.filter(status="scheduling").count() == DURING  # their messages were dropped

            redis_server.start()
            wait_until(
                lambda: worker.log(tail=10**6).count("Connected to redis://") >= 2, timeout=60, message=worker.log
            )
            # The beat's sweeps: the courses are picked up and their reminders written and delivered.
            wait_until(
                lambda: (
                    not Course.objects.filter(status="scheduling").exists()
                    and Delivery.objects.filter(channel="webhook").count() >= 2 * (BEFORE + DURING)
                    and settled()
                ),
                timeout=90,
                message=lambda: worker.log() + beat.log(),
            )
            logs = worker.log(tail=10**7), beat.log(tail=10**7)
        finally:
            worker.stop()
            beat.stop()
    counts = webhook.delivery_counts()
    due = set(Delivery.objects.filter(channel="webhook").values_list("pk", flat=True))
    sent_due = set(Delivery.objects.filter(channel="webhook", status="delivered").values_list("pk", flat=True))
    calendars = Course.objects.exclude(status="scheduling").count()
    lost_charting = set(charted) - set(VitalSigns.objects.values_list("pk", flat=True))
    print(
        f"\nredis restart (persistent={persistent}): requests {len(statuses)}, 5xx "
        f"{sum(s >= 500 for s in statuses)}; webhook deliveries due {len(due)} (delivered before the kill "
        f"{delivered_before}), delivered {len(sent_due)}, cancelled as done "
        f"{Delivery.objects.filter(channel='webhook', status='cancelled').count()}, received {len(counts)}, "
        f"received twice {sum(n > 1 for n in counts.values())}; calendars generated {calendars} of "
        f"{BEFORE + DURING}; charting lost {len(lost_charting)}"
    )
    assert statuses == [201] * len(patients) + [200] + [201] * DURING, statuses
    assert calendars == BEFORE + DURING
    assert lost_charting == set() and len(charted) == len(patients)
    assert set(counts) == sent_due and sent_due <= due  # every delivered one received, nothing unknown
    assert set(counts.values()) == {1}  # none twice
    assert not Delivery.objects.exclude(status__in=DONE).exists()  # none lost (pending, stuck or dead)
    # Each course's assessment_due and dose_due, one POST per event (the held dose's were sent before it was held).
    assert len(sent_due) >= 2 * (BEFORE + DURING)
    for log in logs:
        # Celery logs a traceback for the ack it could not send when Redis died (the message is redelivered: the
        # at-least-once case the idempotent tasks are for); no task may fail and no process may give up.
        assert "Unrecoverable error" not in log and "raised unexpected" not in log, log[-3000:]
