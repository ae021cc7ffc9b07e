"""The SMS channel against a local HTTP gateway: one JSON POST per text, the patient kept out of it, and delivery
through the outbox like every other channel (5xx, 429 and no answer retried with backoff, then dead-lettered; any
other 4xx dead at once and shown by /readyz); the number is E.164, opted into on the notifications page, audited."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from il2ward.channels import wants
from il2ward.models import AuditEvent, Delivery, StaffProfile
from il2ward.notifications import deliver, deliveries_resend, notify
from tests.conftest import NOW
from tests.notifications.conftest import channels_of, published_tasks

pytestmark = pytest.mark.django_db

PHONE = "+14155552671"


def opt_in(user, phone=PHONE, on=True):
    StaffProfile.objects.filter(user=user).update(channels={"sms": {"on": on, "phone": phone}})


def hold(patient, users, *, dose_id=41):
    return notify(
        kind="hold_flagged",
        recipients=users,
        dedupe=f"hold_flagged:dose{dose_id}",
        now=NOW,
        patient=patient,
        course_id=9,
        dose_id=dose_id,
        details={"rules": ["CV-SBP", "RN-UO"], "cycle": 1, "number": 5},
    )


def sms_of(row) -> Delivery:
    return Delivery.objects.get(notification=row, channel="sms")


def make_due(delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_text_is_one_json_post_that_says_what_and_where_never_who(patient_a, nurse_a, sms_gateway, settings):
    settings.IL2WARD_BASE_URL = "https://ward.example.org"
    opt_in(nurse_a)
    (row,) = hold(patient_a, [nurse_a])
    delivery = sms_of(row)
    assert deliver(delivery.pk) == "delivered"
    (post,) = sms_gateway.hooks
    body = post.json
    assert body == {
        "to": PHONE,
        "from": "IL2Ward",
        "reference": f"il2ward-delivery-{delivery.pk}",
        "text": "IL2Ward: Hold criteria met. ward onc-a. cycle 1 dose 5. rules CV-SBP RN-UO. "
        f"Open https://ward.example.org{reverse('dose', args=[41])}",
    }
    assert post.headers["Authorization"] == "Bearer gw-token-1"
    assert post.headers["Idempotency-Key"] == f"il2ward-delivery-{delivery.pk}"
    assert post.headers["Content-Type"] == "application/json"
    # Nothing that says who: name, MRN, birth date, initials, patient id.
    for secret in ("Pat", "Alpha", "A-0001", "1970", "P.A.", f"patient {patient_a.pk}", "/patients/"):
        assert secret not in post.body.decode(), secret
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.last_error == ""


def test_a_patient_level_reminder_links_the_patient_page_by_its_url_name(patient_a, nurse_a, sms_gateway):
    opt_in(nurse_a)
    (row,) = notify(kind="vitals_due", recipients=[nurse_a], dedupe="vitals_due:p", now=NOW, patient=patient_a)
    assert deliver(sms_of(row).pk) == "delivered"
    assert sms_gateway.hooks[0].json["text"].endswith(reverse("patient", args=[patient_a.pk]))


def test_only_users_who_opted_in_with_a_number_get_texts_and_only_with_a_gateway(
    patient_a, nurse_a, nurse_a2, charge_nurse, oncologist, sms_gateway, settings
):
    opt_in(nurse_a)  # the nearest allowed case
    opt_in(nurse_a2, phone="")  # ticked, no number (the form refuses it; a stored one is still not attempted)
    opt_in(charge_nurse, on=False)  # a number, not ticked
    # oncologist: never chose (SMS is opt-in)
    made = {n.recipient.username: n for n in hold(patient_a, [nurse_a, nurse_a2, charge_nurse, oncologist])}
    assert channels_of(made["nurse_a"])["sms"] == "pending"
    assert [u for u, n in made.items() if "sms" in channels_of(n)] == ["nurse_a"]
    settings.IL2WARD_SMS_GATEWAY_URL = ""  # no gateway: the channel is off, nothing is queued for it
    (row,) = hold(patient_a, [nurse_a], dose_id=42)
    assert "sms" not in channels_of(row)


def test_a_gateway_5xx_is_retried_with_backoff_then_delivered(patient_a, nurse_a, sms_gateway):
    opt_in(nurse_a)
    sms_gateway.statuses = [503, 500]
    delivery = sms_of(hold(patient_a, [nurse_a])[0])
    for attempt, status in ((1, 503), (2, 500)):
        assert deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and delivery.last_error == f"HTTP {status}"
        assert deliver(delivery.pk) == "skipped"  # not before its backoff
        make_due(delivery)
    assert deliver(delivery.pk) == "delivered"
    assert [h.status for h in sms_gateway.hooks] == [503, 500, 200]
    assert {h.json["reference"] for h in sms_gateway.hooks} == {f"il2ward-delivery-{delivery.pk}"}  # one text


def test_a_gateway_that_is_down_loses_nothing_the_sweep_sends_it_when_it_is_back(patient_a, nurse_a, settings):
    from tests.notifications.sinks import WebhookSink

    opt_in(nurse_a)
    with WebhookSink() as probe:  # a port nobody listens on once the probe is closed
        url = probe.url
    settings.IL2WARD_SMS_GATEWAY_URL = url
    delivery = sms_of(hold(patient_a, [nurse_a])[0])
    assert deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_error == "URLError"  # refused: retried, content-free
    with WebhookSink() as gateway:
        settings.IL2WARD_SMS_GATEWAY_URL = gateway.url
        make_due(delivery)
        with published_tasks() as sent:
            assert deliveries_resend(now=timezone.now())["resent"] == 1
        assert sent == [("il2ward.deliver", (delivery.pk,))]  # ids only
        assert deliver(delivery.pk) == "delivered"
        assert len(gateway.hooks) == 1


def test_too_many_5xx_is_dead_lettered_like_any_channel(patient_a, nurse_a, sms_gateway, settings):
    settings.IL2WARD_DELIVERY_MAX_ATTEMPTS = 2
    opt_in(nurse_a)
    sms_gateway.down = True
    delivery = sms_of(hold(patient_a, [nurse_a])[0])
    assert deliver(delivery.pk) == "pending"
    make_due(delivery)
    assert deliver(delivery.pk) == "dead"


def test_a_4xx_is_dead_at_once_and_visible_in_readyz_but_429_is_retried(patient_a, nurse_a, sms_gateway, admin_client):
    from il2ward.heartbeats import beat_beats, process_beats

    beat_beats(now=timezone.now())
    process_beats(name="worker:celery@ward", now=timezone.now())
    opt_in(nurse_a)
    sms_gateway.statuses = [429, 400]
    delivery = sms_of(hold(patient_a, [nurse_a])[0])
    assert deliver(delivery.pk) == "pending"  # rate-limited: the nearest case that must be retried
    make_due(delivery)
    assert deliver(delivery.pk) == "dead"  # the gateway refused the request itself: retrying cannot help
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.last_error == "HTTP 400"
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"]["deliveries"].startswith("1 dead-lettered (sms 1)")
    listing = admin_client.get("/admin/il2ward/delivery/?status__exact=dead").content.decode()
    assert "HTTP 400" in listing and "SMS" in listing


def test_a_text_to_a_user_whose_number_was_removed_since_is_dead_not_retried(patient_a, nurse_a, sms_gateway):
    opt_in(nurse_a)
    delivery = sms_of(hold(patient_a, [nurse_a])[0])
    opt_in(nurse_a, phone="")
    assert deliver(delivery.pk) == "dead" and sms_gateway.hooks == []
    delivery.refresh_from_db()
    assert delivery.last_error == "no phone number"


# --- The number, on the preferences page -------------------------------------------------------------------------


def prefs(client, **data):
    return client.post("/notifications/preferences/", {"on_duty": "on", "notify_in_app": "on", **data})


def test_the_number_is_offered_only_with_a_gateway(client, nurse_a, settings):
    client.force_login(nurse_a)
    settings.IL2WARD_SMS_GATEWAY_URL = ""
    assert 'id="id_sms_phone"' not in client.get("/notifications/").content.decode()
    settings.IL2WARD_SMS_GATEWAY_URL = "http://127.0.0.1:9/sms"
    html = client.get("/notifications/").content.decode()
    assert 'id="id_notify_sms"' in html and 'id="id_sms_phone"' in html


def test_a_valid_number_is_stored_in_e164_and_audited(client, nurse_a, sms_gateway):
    client.force_login(nurse_a)
    assert prefs(client, notify_sms="on", sms_phone="+1 415-555-2671").status_code == 302
    profile = StaffProfile.objects.get(user=nurse_a)
    assert profile.channels["sms"] == {"on": True, "phone": PHONE}
    assert wants(profile, "sms") and wants(profile, "in_app") and not wants(profile, "email")
    event = AuditEvent.objects.get(action="staff_profile.notifications")
    assert event.actor == nurse_a and event.object_id == str(profile.pk)
    assert event.old["channels"]["sms"] is None and event.new["channels"]["sms"] == {"on": True, "phone": PHONE}
    # Saved again unchanged: nothing to audit.
    assert prefs(client, notify_sms="on", sms_phone=PHONE).status_code == 302
    assert AuditEvent.objects.filter(action="staff_profile.notifications").count() == 1


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("04155552671", "Start with + and the country code"),  # no country code: not guessed
        ("+1415555267", "Not a valid phone number"),  # too short for its country
        ("+1 phone", "Not a phone number"),
        ("", "A mobile number is needed"),  # ticked without a number
    ],
)
def test_a_bad_number_is_a_400_naming_the_field_and_nothing_is_stored(client, nurse_a, sms_gateway, phone, why):
    client.force_login(nurse_a)
    before = StaffProfile.objects.get(user=nurse_a).channels
    response = prefs(client, notify_sms="on", sms_phone=phone)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["sms_phone"] and why in errors["sms_phone"][0]
    assert StaffProfile.objects.get(user=nurse_a).channels == before
    assert not AuditEvent.objects.filter(action="staff_profile.notifications").exists()


def test_a_number_can_be_kept_with_texts_switched_off(client, nurse_a, sms_gateway):
    client.force_login(nurse_a)
    assert prefs(client, sms_phone=PHONE).status_code == 302  # the nearest allowed case to "ticked, no number"
    assert StaffProfile.objects.get(user=nurse_a).channels["sms"] == {"on": False, "phone": PHONE}
