"""Reminders that follow the dose, on the real chain: one compressed scenario with a Celery worker and a beat sweeping
every second (separate processes), PostgreSQL, Redis, a local SMTP server and a local webhook receiver per ward.

Timings are compressed by environment variables given to the worker: dose_due 1 min before the slot, assessment_due
2 min before, back-off from 1 s, and an escalation chain of 1-minute steps (charge nurse → on-call oncologist →
course oncologist → assigned nurse + backup). The chain is walked without waiting a minute per step: the flag's
created_at is moved back so that the next step falls due now, and the beat's next sweep sends it (the step's due_at is
that moment, so its timing error is measured as for any other reminder). Everything else happens as on a ward:
observations are charted through the services, the worker re-evaluates the dose after each commit, a nurse
acknowledges, an oncologist signs an override, a nurse gives a dose.

What it checks, one way reminders used to follow the clock instead of the dose each:
1. a hold that returns after an acknowledgement and normal vitals raises a new flag, delivered and escalated;
2. a signed override ends the escalation (no further step, the flag resolved "overridden");
3. done work is not announced: a dose_due whose receivers were down is dropped once the dose is given (the receivers
   come back, receive nothing); assessment_due is not written for a dose already assessed, and one written before
   the assessment is resolved "assessment recorded" when it is charted; a slot whose stop was recommended (and
   acknowledged) gets no dose_overdue, while an open slot beside it does;
4. the escalation widens step by step through the configured chain, and an acknowledgement at the last step ends it
   for everyone;
5. webhooks: one POST per event per endpoint with its recipients inside, a stable event id, a signature over timestamp
   and body (a replay outside the window fails verification), nothing sent to a ward without a secret;
6. times: e-mails give the due time in ward-local time with its offset and in UTC, webhooks UTC and local, every
   dose-related kind carries due_at, the API lists *_local times;
and, from the same run, per kind the timing error (delivered − due) and the duplicate count (bench.reminders_e2e
prints them; IL2WARD_E2E_FIGURES=<path> writes them as JSON). 7, settings that silence a kind, is `manage.py check`
in a subprocess below.
"""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bench.reminders_e2e import BAR_ERROR_SECONDS, SCHEDULED, figures, table
from il2ward.channels.webhook import verify
from il2ward.models import Delivery, Notification, Ward
from il2ward.notifications import notification_acknowledge, webhook_problems
from il2ward.recipients import patient_assign_nurse, ward_set_on_call
from il2ward.services import patient_create
from scheduling.models import Dose
from scheduling.services import dose_administer, dose_override
from tests.conftest import PASSWORD, make_staff
from tests.faults.conftest import FAST, services, start_beat  # noqa: F401 - fixture
from tests.notifications.conftest import vitals
from tests.notifications.sinks import SmtpSink, WebhookSink
from tests.scheduling.mar.conftest import ready_course, record_assessment
from tests.workers import ROOT, celery_worker, wait_until

MINUTE = timedelta(minutes=1)
CHAIN = "charge_nurse:1,on_call_oncologist:1,course_oncologist:1,assigned_nurse+backup:1"
SECRETS = {"onc-a": "a-secret", "onc-b": "b-secret"}
DOSE_KINDS = {"assessment_due", "dose_due", "dose_overdue", "dose_missed", "hold_flagged", "stop_recommended",
              "escalation"}  # fmt: skip
LOCAL_TIME = re.compile(r"Due: \w{3} \d{1,2} \w{3} \d{4} \d\d:\d\d \w+ \(UTC[+-]\d\d:\d\d\) = \d\d:\d\d UTC")


def settled(**filters) -> bool:
    """Every e-mail and webhook delivery of the matching notifications has been tried and is no longer waiting."""
    rows = Delivery.objects.filter(**{f"notification__{k}": v for k, v in filters.items()})
    return rows.exists() and not rows.filter(status__in=["pending", "sending"]).exists()


def flag_topics(dose) -> list[str]:
    rows = Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk).order_by("pk")
    return list(dict.fromkeys(rows.values_list("topic", flat=True)))


def step_due_now(topic: str, step: int) -> datetime:
    """Compress the chain: the flag was raised `step` minutes ago, so that step is due at this moment."""
    at = timezone.now()
    Notification.objects.filter(topic=topic).update(created_at=at - step * MINUTE)
    return at


def paged(topic: str, step: int) -> list[str]:
    return sorted(
        Notification.objects.filter(kind="escalation", topic=f"escalation:{topic}:n{step}").values_list(
            "recipient__username", flat=True
        )
    )


def sweeps_pass(n: int = 2) -> None:
    """Wait until n whole sweeps have run since now, before asserting that nothing happened: each sweep writes the
    beat's heartbeat as it starts, and the worker (one process, --pool=solo) runs one task at a time, so a sweep that
    started after another one's start means that one has finished."""
    from il2ward.heartbeats import BEAT
    from il2ward.models import Heartbeat

    since = timezone.now()
    for _ in range(n + 1):
        wait_until(lambda t=since: Heartbeat.objects.filter(name=BEAT, at__gt=t).exists(), timeout=30, interval=0.1)
        since = Heartbeat.objects.get(name=BEAT).at


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_scenario_reminders_follow_the_dose_on_the_real_chain(  # noqa: PLR0915 - one scenario, one worker start
    services,  # noqa: F811
    tmp_path,
    settings,
    api,
    ward_a,
    ward_b,
    nurse_a,
    nurse_a2,
    nurse_b,
    charge_nurse,
    oncologist,
    patient_a,
    patient_b,
    make_course,
):
    users = get_user_model()
    on_call = make_staff("oncall", "oncologist", [ward_a])
    backup = make_staff("backup_doc", "oncologist", [ward_a])
    nurse_b2 = make_staff("nurse_b2", "nurse", [ward_b])
    for user in users.objects.all():
        users.objects.filter(pk=user.pk).update(email=f"{user.username}@example.org")
    ward_c = Ward.objects.create(code="onc-c", name="Oncology C", tz="Asia/Tokyo")
    now = timezone.now()
    ward_set_on_call(ward_id=ward_a.pk, oncologist=on_call, by=charge_nurse, now=now)
    patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_a, by=charge_nurse, now=now)
    p2 = patient_create(mrn="A-0002", name="Pia Second", birth_date=datetime(1971, 2, 3).date(), ward=ward_a,
                        by=oncologist, now=now)  # fmt: skip
    p4 = patient_create(mrn="A-0004", name="Paul Fourth", birth_date=datetime(1972, 3, 4).date(), ward=ward_a,
                        by=oncologist, now=now)  # fmt: skip
    p5 = patient_create(mrn="A-0005", name="Pam Fifth", birth_date=datetime(1973, 4, 5).date(), ward=ward_a,
                        by=oncologist, now=now)  # fmt: skip
    p7 = patient_create(mrn="A-0007", name="Pia Seventh", birth_date=datetime(1975, 6, 7).date(), ward=ward_a,
                        by=oncologist, now=now)  # fmt: skip
    p8 = patient_create(mrn="A-0008", name="Per Eighth", birth_date=datetime(1976, 7, 8).date(), ward=ward_a,
                        by=oncologist, now=now)  # fmt: skip
    p6 = patient_create(mrn="C-0006", name="Pete Sixth", birth_date=datetime(1974, 5, 6).date(), ward=ward_c,
                        by=oncologist, now=now)  # fmt: skip
    env = {
        **FAST,
        "IL2WARD_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "IL2WARD_EMAIL_HOST": "127.0.0.1",
        "IL2WARD_DOSE_DUE_MINUTES": "1",
        "IL2WARD_DOSE_OVERDUE_MINUTES": "1",
        "IL2WARD_ASSESSMENT_DUE_MINUTES": "2",
        "IL2WARD_ESCALATION_CHAIN": CHAIN,
        "IL2WARD_ESCALATION_BACKUP": "backup_doc",
    }
    settings.IL2WARD_DOSE_DUE_MINUTES, settings.IL2WARD_ASSESSMENT_DUE_MINUTES = 1, 2
    settings.IL2WARD_DOSE_OVERDUE_MINUTES = 1
    settings.IL2WARD_ESCALATION_CHAIN, settings.IL2WARD_ESCALATION_BACKUP = CHAIN, "backup_doc"

    with SmtpSink() as smtp, WebhookSink() as hook_a, WebhookSink() as hook_b, WebhookSink() as hook_c:
        for ward, sink in ((ward_a, hook_a), (ward_b, hook_b)):
            Ward.objects.filter(pk=ward.pk).update(webhook_url=sink.url, webhook_secret=SECRETS[ward.code])
        # A ward configured before secrets were required: a URL, no secret (the admin refuses this now).
        Ward.objects.filter(pk=ward_c.pk).update(webhook_url=hook_c.url, webhook_secret="")
        env["IL2WARD_EMAIL_PORT"] = str(smtp.port)
        hook_b.down = True  # ward B's paging system and its nurse's mailbox are down when its dose_due goes out
        smtp.down_for = {"nurse_b@example.org", "nurse_b2@example.org"}

        with celery_worker(tmp_path, redis_url=services, env=env) as worker:
            beat = start_beat(tmp_path, redis_url=services)
            logs = lambda: worker.log() + beat.log()  # noqa: E731
            try:
                now = run_started = timezone.now()
                # P1, P2, P6: slot 1 in 30 min, then SBP 85 charted: the worker evaluates after each commit → hold.
                held = {}
                for patient in (patient_a, p2, p6):
                    course = make_course(patient, first_dose_at=now + 30 * MINUTE, now=now)
                    held[patient.pk] = course.doses.get(cycle=1, number=1)
                d1, d2, d6 = held[patient_a.pk], held[p2.pk], held[p6.pk]
                # P3 (ward B) and P4: assessed before their course exists, dose due in 75 s → dose_due in ~15 s.
                # P5: not assessed, dose due in 135 s → assessment_due in ~15 s.
                ready = {}
                for patient, nurse, ahead, assessed in ((patient_b, nurse_b, 75, True), (p4, nurse_a2, 75, True),
                                                        (p5, nurse_a2, 135, False)):  # fmt: skip
                    at = timezone.now()
                    if assessed:
                        record_assessment(patient, nurse=nurse, now=at)
                    course = ready_course(patient, oncologist=oncologist, nurse=nurse, make_course=make_course,
                                          first_dose_at=at + timedelta(seconds=ahead), now=at)  # fmt: skip
                    ready[patient.pk] = course.doses.get(cycle=1, number=1)
                d3, d4, d5 = ready[patient_b.pk], ready[p4.pk], ready[p5.pk]
                # P7 (assessed) and P8 (heart rate 135: stop, the slot is never given), due 50 s ago: dose_overdue
                # (due + 1 min) in ~10 s for P7; nothing telling anyone to give P8's dose.
                vitals(p8, nurse_a2, at=timezone.now() - 2 * MINUTE, heart_rate=135)
                record_assessment(p7, nurse=nurse_a2, now=timezone.now())
                past = {}
                for patient in (p7, p8):
                    at = timezone.now()
                    course = ready_course(patient, oncologist=oncologist, nurse=nurse_a2, make_course=make_course,
                                          first_dose_at=at - timedelta(seconds=50), now=at)  # fmt: skip
                    past[patient.pk] = course.doses.get(cycle=1, number=1)
                d7, d8 = past[p7.pk], past[p8.pk]
                for patient, by in ((patient_a, nurse_a), (p2, nurse_a2), (p6, nurse_a)):
                    vitals(patient, by, at=timezone.now() - 4 * MINUTE, sbp=85)
                wait_until(lambda: all(flag_topics(d) for d in (d1, d2, d6)), timeout=30, message=logs)
                wait_until(lambda: all(settled(kind="hold_flagged", dose_id=d.pk) for d in (d1, d2, d6)),
                           timeout=30, message=logs)  # fmt: skip

                # --- 1. A hold that returns after an acknowledgement is a new flag, delivered and escalated.
                (first_topic,) = flag_topics(d1)
                mine = Notification.objects.get(topic=first_topic, recipient=nurse_a)
                notification_acknowledge(notification_id=mine.pk, by=nurse_a, now=timezone.now())
                vitals(patient_a, nurse_a, at=timezone.now() - 3 * MINUTE)  # normal: no longer a hold
                wait_until(lambda: Dose.objects.get(pk=d1.pk).flag not in ("hold", "stop"), timeout=30, message=logs)
                assert flag_topics(d1) == [first_topic]
                vitals(patient_a, nurse_a, at=timezone.now() - 2 * MINUTE, sbp=84)  # hold again
                wait_until(lambda: len(flag_topics(d1)) == 2, timeout=30, message=logs)
                topic = flag_topics(d1)[1]
                wait_until(lambda: settled(topic=topic), timeout=30, message=logs)
                second = Notification.objects.filter(topic=topic)
                assert sorted(second.values_list("recipient__username", flat=True)) == ["nurse_a", "onc"]
                assert not second.filter(acknowledged_at__isnull=False).exists()
                assert set(Delivery.objects.filter(notification__in=second).values_list("channel", "status")) == {
                    ("in_app", "delivered"),
                    ("email", "delivered"),
                    ("webhook", "delivered"),
                }

                # --- 2. A signed override ends the escalation of P2's hold.
                (p2_topic,) = flag_topics(d2)
                step_due_now(p2_topic, 1)
                wait_until(lambda: paged(p2_topic, 1) and settled(topic=f"escalation:{p2_topic}:n1"), timeout=30,
                           message=logs)  # fmt: skip
                assert paged(p2_topic, 1) == ["charge_a"]
                dose_override(dose_id=d2.pk, reason="SBP 85 is her baseline", password=PASSWORD, by=oncologist,
                              now=timezone.now())  # fmt: skip
                step_due_now(p2_topic, 2)
                sweeps_pass()
                step_due_now(p2_topic, 3)
                sweeps_pass()
                assert not Notification.objects.filter(kind="escalation", dose_id=d2.pk, details__escalation__gt=1)
                p2_rows = Notification.objects.filter(dose_id=d2.pk, kind__in=["hold_flagged", "escalation"])
                assert set(p2_rows.values_list("resolved_reason", flat=True)) == {"overridden"}

                # --- 3a. P3's dose_due (to both ward B nurses: two e-mails, one page) failed at both receivers, which
                # are down; the dose is given; they come back: nothing is sent.
                wait_until(
                    lambda: Delivery.objects.filter(notification__kind="dose_due", notification__dose_id=d3.pk,
                                                    attempts__gte=2, status="pending").count() == 3,
                    timeout=60, message=logs,
                )  # fmt: skip
                started = timezone.now()
                dose_administer(dose_id=d3.pk, by=nurse_b, started_at=started, ended_at=None,
                                verifier_username=nurse_b2.username, verifier_password=PASSWORD,
                                verified_dose_iu=d3.course.dose_iu, now=started)  # fmt: skip
                refused_before = (smtp.refused, len(hook_b.hooks))
                hook_b.down = False
                smtp.down_for = set()
                sweeps_pass()
                late = Delivery.objects.filter(notification__dose_id=d3.pk, notification__kind="dose_due")
                assert set(late.exclude(channel="in_app").values_list("status", "last_error")) == {
                    ("cancelled", "done: dose given")
                }
                assert (smtp.refused, len(hook_b.hooks)) == refused_before  # not even tried again
                assert not [
                    m for m in smtp.mails if set(m.recipients) & {"nurse_b@example.org", "nurse_b2@example.org"}
                ]
                assert not [h for h in hook_b.hooks if h.status == 200]

                # --- 3b. No assessment_due for the doses assessed beforehand; P5's is resolved by its assessment.
                wait_until(lambda: settled(kind="dose_due", dose_id=d4.pk), timeout=60, message=logs)
                wait_until(lambda: settled(kind="assessment_due", dose_id=d5.pk), timeout=60, message=logs)
                assert not Notification.objects.filter(kind="assessment_due", dose_id__in=[d3.pk, d4.pk]).exists()
                record_assessment(p5, nurse=nurse_a2, now=timezone.now())
                wait_until(
                    lambda: set(Notification.objects.filter(kind="assessment_due", dose_id=d5.pk)
                                .values_list("resolved_reason", flat=True)) == {"assessment recorded"},
                    timeout=30, message=logs,
                )  # fmt: skip
                assert not [m for m in smtp.mails if "Dose due" in m.message["Subject"] and f"patient {p5.pk} " in
                            m.message["Subject"]]  # fmt: skip

                # --- 3c. P8's stop is acknowledged; P7 gets its dose_overdue, P8 none (nor any dose_due by e-mail).
                wait_until(lambda: Notification.objects.filter(kind="stop_recommended", dose_id=d8.pk).exists(),
                           timeout=30, message=logs)  # fmt: skip
                stop = Notification.objects.filter(kind="stop_recommended", dose_id=d8.pk).first()
                notification_acknowledge(notification_id=stop.pk, by=stop.recipient, now=timezone.now())
                wait_until(lambda: settled(kind="dose_overdue", dose_id=d7.pk), timeout=60, message=logs)
                sweeps_pass(1)
                assert not Notification.objects.filter(kind="dose_overdue", dose_id=d8.pk).exists()
                assert not Delivery.objects.filter(notification__dose_id=d8.pk, notification__kind="dose_due",
                                                   channel="email", status="delivered").exists()  # fmt: skip

                # --- 4. P1's new hold goes up the chain, one step at a time, widening; the backup acknowledges.
                expected = {1: ["charge_a"], 2: ["oncall"], 3: ["onc"], 4: ["backup_doc", "nurse_a"]}
                for step, people in expected.items():
                    step_due_now(topic, step)
                    wait_until(lambda s=step: paged(topic, s) and settled(topic=f"escalation:{topic}:n{s}"),
                               timeout=30, message=logs)  # fmt: skip
                    assert paged(topic, step) == people, step
                last = Notification.objects.get(topic=f"escalation:{topic}:n4", recipient=backup)
                assert last.details["step"] == ["assigned_nurse", "backup"] and last.due_at is not None
                notification_acknowledge(notification_id=last.pk, by=backup, now=timezone.now())
                step_due_now(topic, 5)  # past the last step everyone would be paged again: not after the ack
                sweeps_pass()
                assert paged(topic, 5) == []
                assert not Notification.objects.filter(dose_id=d1.pk, kind__in=["hold_flagged", "escalation"],
                                                       acknowledged_at__isnull=True).exists()  # fmt: skip
                sweeps_pass(1)
                wait_until(lambda: not Delivery.objects.filter(status__in=["pending", "sending"]).exists(),
                           timeout=30, message=logs)  # fmt: skip
            finally:
                beat.stop()

    # --- 5. Webhooks an integration engine can trust.
    assert hook_a.hooks and not hook_c.hooks  # ward C has no secret: nothing sent
    assert "onc-c" in (webhook_problems() or "")
    assert not Delivery.objects.filter(channel="webhook", notification__patient=p6).exists()
    assert Delivery.objects.filter(channel="email", notification__patient=p6, status="delivered").exists()
    events = {}
    for hook in hook_a.hooks + hook_b.hooks:
        body, secret = hook.json, SECRETS[hook.json["ward"]]
        stamp = hook.headers["X-IL2Ward-Timestamp"]
        signed = hook.headers["X-IL2Ward-Signature"]
        assert verify(secret, body=hook.body, timestamp=stamp, signed=signed, now=time.time())
        assert not verify(secret, body=hook.body, timestamp=stamp, signed=signed, now=int(stamp) + 301)  # replayed
        assert not verify("another", body=hook.body, timestamp=stamp, signed=signed, now=time.time())
        assert hook.headers["X-IL2Ward-Event-Id"] == body["event"]
        assert str(body["delivery"]) == hook.headers["X-IL2Ward-Delivery"]
        if hook.status == 200:
            assert body["event"] not in events, "one accepted POST per event per endpoint"
            events[body["event"]] = body
    flag = next(b for b in events.values() if b["kind"] == "hold_flagged" and b["dose"]["id"] == d1.pk)
    assert flag["recipients"] == ["nurse_a", "onc"]
    per_topic = Delivery.objects.filter(channel="webhook").values_list("notification__topic", flat=True)
    assert len(per_topic) == len(set(per_topic)), "one webhook delivery per event"

    # --- 6. Times a person can read.
    for body in events.values():
        assert body["time_zone"] == "America/Chicago"
        if body["kind"] in DOSE_KINDS:
            due, local = datetime.fromisoformat(body["due_at"]), datetime.fromisoformat(body["due_at_local"])
            assert due.tzinfo == UTC and local == due and local.utcoffset() == timedelta(hours=-6)
    dose_mails = list(smtp.mails)
    assert dose_mails
    for mail in dose_mails:
        kind = Notification.objects.get(pk=int(mail.message["X-IL2Ward-Notification"])).kind
        if kind in DOSE_KINDS:
            assert LOCAL_TIME.search(mail.message.get_content()), mail.message.get_content()
    assert not Notification.objects.filter(kind__in=DOSE_KINDS, due_at__isnull=True).exists()
    listed = api.as_user(nurse_a).get("/api/v1/notifications/").json()
    assert listed and all(row["created_at_local"] and row["time_zone"] == "America/Chicago" for row in listed)
    assert all(row["due_at_local"] for row in listed if row["kind"] in DOSE_KINDS)

    # --- Per kind: timing error and duplicates from this run.
    result = figures(
        since_id=0, started=run_started, mails=smtp.mails, hooks=hook_a.hooks + hook_b.hooks + hook_c.hooks
    )
    print("\n" + table(result))
    if os.environ.get("IL2WARD_E2E_FIGURES"):
        with open(os.environ["IL2WARD_E2E_FIGURES"], "w") as out:
            json.dump(result, out, indent=2)
    assert {"hold_flagged", "stop_recommended", "escalation", "dose_due", "dose_overdue", "assessment_due"} <= set(
        result
    )
    for kind, row in result.items():
        assert row["duplicates"] == 0, (kind, row)
        if kind in SCHEDULED and row["max_error_s"] is not None:
            assert row["max_error_s"] <= BAR_ERROR_SECONDS, (kind, row)
    mrns_and_names = ("A-0001", "A-0002", "A-0004", "A-0005", "A-0007", "A-0008", "B-0001", "C-0006", "Pat Alpha",
                      "Pat Beta", "Pia Second", "Pam Fifth", "Per Eighth")  # fmt: skip
    sent = [m.data.decode(errors="replace") for m in smtp.mails] + [h.body.decode() for h in hook_a.hooks]
    assert not [text for text in sent if any(secret in text for secret in mrns_and_names)]


# --- 7. Settings that would silence a kind or crash the sweep are refused at start-up, naming the setting ---------


def check(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("IL2WARD_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_check_refuses_a_time_critical_window_with_the_default_overdue_offset_and_a_zero_escalation():
    silenced = check(IL2WARD_WINDOW_MINUTES="30")
    assert silenced.returncode != 0 and "IL2WARD_DOSE_OVERDUE_MINUTES" in silenced.stderr, silenced.stderr
    zero = check(IL2WARD_ESCALATE_AFTER_MINUTES="0")
    assert zero.returncode != 0 and "IL2WARD_ESCALATE_AFTER_MINUTES" in zero.stderr, zero.stderr
    allowed = check(IL2WARD_WINDOW_MINUTES="30", IL2WARD_DOSE_OVERDUE_MINUTES="15", IL2WARD_ESCALATE_AFTER_MINUTES="1")
    assert allowed.returncode == 0, allowed.stderr
