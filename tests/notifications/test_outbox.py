"""The outbox: rows written with the change, unique dedupe keys, one delivery per channel wanted, delivery tasks
enqueued after commit with ids only, claims by conditional update, backoff, dead letters and the resend sweep."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from il2ward import notifications
from il2ward.models import AuditEvent, Delivery, Notification, StaffProfile
from il2ward.notifications import claim, deliver, deliveries_resend, notify
from tests.conftest import NOW
from tests.notifications.conftest import channels_of, published_tasks

pytestmark = pytest.mark.django_db


def dose_due(patient, users, *, dose_id=7, now=NOW, dedupe="dose_due:dose7"):
    return notify(
        kind="dose_due",
        recipients=users,
        dedupe=dedupe,
        now=now,
        patient=patient,
        course_id=3,
        dose_id=dose_id,
        details={"cycle": 1, "number": 2},
        due_at=now,
    )


def test_notify_writes_one_row_per_recipient_with_a_unique_key_and_a_repeat_writes_nothing(
    patient_a, nurse_a, nurse_a2
):
    made = dose_due(patient_a, [nurse_a, nurse_a2, nurse_a])
    assert sorted(n.dedupe_key for n in made) == [f"dose_due:dose7:u{nurse_a.pk}", f"dose_due:dose7:u{nurse_a2.pk}"]
    assert {n.topic for n in made} == {"dose_due:dose7"} and {n.created_at for n in made} == {NOW}
    assert dose_due(patient_a, [nurse_a, nurse_a2], now=NOW + timedelta(seconds=30)) == []
    assert Notification.objects.count() == 2 and Delivery.objects.count() == 2


def test_each_recipient_gets_the_channels_she_wants(patient_a, nurse_a, nurse_a2, oncologist, webhook):
    nurse_a.email = "a@ward.example"
    nurse_a.save()
    StaffProfile.objects.filter(user=nurse_a2).update(channels={"in_app": {"on": False}, "webhook": {"on": False}})
    StaffProfile.objects.filter(user=oncologist).update(
        channels={"in_app": {"on": False}, "email": {"on": False}, "webhook": {"on": False}}
    )
    made = {n.recipient.username: n for n in dose_due(patient_a, [nurse_a, nurse_a2, oncologist])}
    # In-app is delivered as the row commits; e-mail only with an address; webhook only where the ward has one.
    assert channels_of(made["nurse_a"]) == {"in_app": "delivered", "email": "pending", "webhook": "pending"}
    assert channels_of(made["nurse_a2"]) == {}
    assert channels_of(made["onc"]) == {}


def test_delivery_tasks_are_published_after_commit_with_delivery_ids_only(
    patient_a, nurse_a, webhook, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        (row,) = dose_due(patient_a, [nurse_a])
    pending = list(Delivery.objects.filter(notification=row, status="pending").values_list("pk", flat=True))
    assert len(pending) == 1 and len(callbacks) == 1  # the webhook; in-app needs no task
    with published_tasks() as sent:
        callbacks[0]()
    assert sent == [("il2ward.deliver", tuple(pending))]


def test_a_rolled_back_change_leaves_no_notification_and_publishes_nothing(
    patient_a, nurse_a, webhook, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            dose_due(patient_a, [nurse_a])
            raise RuntimeError("the change failed")
    assert not Notification.objects.exists() and not Delivery.objects.exists() and callbacks == []


def test_a_delivery_is_claimed_by_exactly_one_worker(patient_a, nurse_a, webhook):
    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    assert claim(delivery.pk, now=NOW) is True
    assert claim(delivery.pk, now=NOW) is False
    delivery.refresh_from_db()
    assert delivery.status == "sending" and delivery.attempts == 1 and delivery.claimed_at == NOW


def test_the_webhook_task_delivers_and_a_second_run_sends_nothing(patient_a, nurse_a, webhook):
    from il2ward.tasks import deliver as deliver_task

    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    assert deliver_task(delivery.pk) == {"delivered": 1}
    assert deliver_task(delivery.pk) == {"skipped": 1}  # a duplicate message: the claim fails
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.delivered_at is not None and delivery.attempts == 1
    assert len(webhook.hooks) == 1


def test_failures_back_off_exponentially_and_the_eighth_is_dead_lettered(patient_a, nurse_a, webhook, client):
    webhook.statuses = [503] * 8
    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    delays = []
    for attempt in range(1, 8):
        assert deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and delivery.last_error == "HTTP 503"
        delays.append(round((delivery.next_attempt_at - delivery.claimed_at).total_seconds()))
        # Not before its time, even if a stale message for it turns up.
        assert deliver(delivery.pk) == "skipped"
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert delays == [30, 60, 120, 240, 480, 960, 1920]
    assert deliver(delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 8 and len(webhook.hooks) == 8


def test_readyz_names_dead_lettered_deliveries_until_an_administrator_retries_or_dismisses_them(
    patient_a, nurse_a, webhook, client, admin_client, settings
):
    from il2ward.heartbeats import beat_beats, process_beats

    beat_beats(now=timezone.now())
    process_beats(name="worker:celery@ward", now=timezone.now())
    settings.IL2WARD_DELIVERY_MAX_ATTEMPTS = 1
    webhook.statuses = [500]
    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    assert deliver(delivery.pk) == "dead"
    response = admin_client.get("/readyz")  # which check failed is for staff
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["deliveries"]
    assert response.json()["failed"]["deliveries"].startswith("1 dead-lettered (webhook 1)")
    # The admin's retry puts it back in the queue; it is delivered and /readyz is fine again.
    response = admin_client.post(
        "/admin/il2ward/delivery/", {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert deliver(delivery.pk) == "delivered"
    assert client.get("/readyz").status_code == 200
    assert AuditEvent.objects.filter(action="delivery.retry").exists()


def test_dismissing_a_dead_letter_clears_readyz(patient_a, nurse_a, webhook, client, admin_client, settings):
    from il2ward.heartbeats import beat_beats, process_beats

    beat_beats(now=timezone.now())
    process_beats(name="worker:celery@ward", now=timezone.now())
    settings.IL2WARD_DELIVERY_MAX_ATTEMPTS = 1
    webhook.statuses = [500]
    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    deliver(delivery.pk)
    assert client.get("/readyz").status_code == 503
    admin_client.post("/admin/il2ward/delivery/", {"action": "dismiss", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "dismissed"
    assert client.get("/readyz").status_code == 200


def test_the_resend_sweep_sends_pending_rows_whose_time_has_come_and_takes_back_lost_claims(
    patient_a, nurse_a, webhook, settings
):
    settings.IL2WARD_RESEND_AFTER_SECONDS = 60
    settings.IL2WARD_DELIVERY_LEASE_SECONDS = 120
    now = timezone.now()
    first = Delivery.objects.get(notification=dose_due(patient_a, [nurse_a], now=now)[0], channel="webhook")
    lost = Delivery.objects.get(
        notification=dose_due(patient_a, [nurse_a], now=now, dose_id=8, dedupe="dose_due:dose8")[0], channel="webhook"
    )
    assert claim(lost.pk, now=now)  # a worker claimed it and died
    with published_tasks() as sent:
        assert deliveries_resend(now=now + timedelta(seconds=59)) == {"reclaimed": 0, "dead_lettered": 0, "resent": 0}
    assert sent == []  # the on-commit task is expected to deliver within the minute
    with published_tasks() as sent:
        result = deliveries_resend(now=now + timedelta(seconds=121))
    assert result == {"reclaimed": 1, "dead_lettered": 0, "resent": 2}
    assert sent == [("il2ward.deliver", (first.pk, lost.pk))]
    # What the worker does with that message, a moment later:
    from il2ward.tasks import deliver as deliver_task

    with time_machine.travel(now + timedelta(seconds=122), tick=False):
        assert deliver_task(*sent[0][1]) == {"delivered": 2}
    assert webhook.delivery_counts() == {first.pk: 1, lost.pk: 1}


def test_acknowledged_before_sending_means_not_sent(patient_a, nurse_a, webhook):
    (row,) = dose_due(patient_a, [nurse_a])
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    Notification.objects.filter(pk=row.pk).update(acknowledged_at=NOW)  # acknowledged in the app meanwhile
    assert deliver(delivery.pk) == "cancelled"
    assert webhook.hooks == []


def test_dead_letters_counts_by_channel(patient_a, nurse_a):
    assert notifications.dead_letters() == {}


def test_one_beat_runs_the_sweep_and_the_resend_sweep_every_interval(settings):
    from il2ward.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule == {
        "scheduling.sweep": settings.SWEEP_INTERVAL_SECONDS,
        "il2ward.deliveries_sweep": settings.SWEEP_INTERVAL_SECONDS,
        "il2ward.audit_checkpoint": settings.IL2WARD_AUDIT_CHECKPOINT_SECONDS,
        "il2ward.api_tokens_purge": settings.IL2WARD_API_TOKEN_PURGE_SECONDS,
    }


def test_the_resend_sweep_does_not_republish_a_backlog_every_interval(patient_a, nurse_a, webhook, settings):
    settings.IL2WARD_RESEND_AFTER_SECONDS = 60
    now = timezone.now()
    (row,) = dose_due(patient_a, [nurse_a], now=now)  # its task was published on commit (nudged now)
    resent = [deliveries_resend(now=now + timedelta(seconds=s))["resent"] for s in (30, 61, 62, 90, 122)]
    assert resent == [0, 1, 0, 0, 1]  # once a minute while it stays pending, not every 30 s sweep


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_taken_by_a_concurrent_writer_mid_write_is_skipped_and_the_rest_written(
    transactional_db, patient_a, nurse_a, nurse_a2
):
    """notify_many reads the taken keys, then inserts: a writer that takes one of the keys in between (committed
    after the read) makes the bulk insert fail; the rows are then written one by one and only that key is skipped."""
    import threading

    from django.db import connections

    from tests.workers import require_postgres

    require_postgres()
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_writer():
        try:
            with transaction.atomic():
                dose_due(patient_a, [nurse_a])  # takes dose_due:dose7:u<nurse_a>, uncommitted until released
                holding.set()
                release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert holding.wait(timeout=30)
    threading.Timer(1.0, release.set).start()  # commits while this insert waits on the unique key
    with transaction.atomic():
        made = dose_due(patient_a, [nurse_a, nurse_a2])
    writer.join(timeout=30)
    assert not errors, errors
    assert [n.recipient_id for n in made] == [nurse_a2.pk]
    assert Notification.objects.filter(dedupe_key__startswith="dose_due:dose7:").count() == 2
    # Each row got its deliveries once: from the writer that wrote it.
    per_row = [Delivery.objects.filter(notification=n).count() for n in Notification.objects.all()]
    assert per_row[0] == per_row[1] > 0
