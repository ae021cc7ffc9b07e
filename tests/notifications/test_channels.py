"""E-mail through a real SMTP conversation and the webhook through a real HTTP POST, both to local servers started by
the test. Outside messages carry kind, ward, patient id and initials, dose cycle/number, rule ids and a link: never the
patient's name or MRN."""

import hashlib
import hmac
import json

import pytest
from django.core.exceptions import ValidationError

from il2ward.channels import message_for
from il2ward.channels import webhook as webhook_channel
from il2ward.models import Delivery, Notification, Ward
from il2ward.notifications import deliver, notify
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def hold_for(patient, user):
    (row,) = notify(
        kind="hold_flagged",
        recipients=[user],
        dedupe="hold_flagged:dose41",
        now=NOW,
        patient=patient,
        course_id=9,
        dose_id=41,
        details={"rules": ["CV-SBP", "RN-UO"], "cycle": 1, "number": 5},
    )
    return row


def body_event(row) -> str:
    return message_for(Notification.objects.select_related("recipient", "patient__ward").get(pk=row.pk)).event_id


@pytest.fixture
def nurse_with_email(nurse_a):
    nurse_a.email = "alice@ward.example"
    nurse_a.save()
    return nurse_a


def test_an_email_goes_over_smtp_with_ids_initials_rules_and_a_link_only(patient_a, nurse_with_email, smtp, settings):
    settings.IL2WARD_BASE_URL = "https://ward.example.org"
    row = hold_for(patient_a, nurse_with_email)
    delivery = Delivery.objects.get(notification=row, channel="email")
    assert deliver(delivery.pk) == "delivered"
    (mail,) = smtp.mails
    assert mail.recipients == ["alice@ward.example"]
    message = mail.message
    subject, body = message["Subject"], message.get_content()
    assert subject == f"[IL2Ward] Hold criteria met | ward onc-a | patient {patient_a.pk} (PA) | cycle 1 dose 5"
    assert "CV-SBP, RN-UO" in body and "https://ward.example.org/doses/41/" in body
    assert message["X-IL2Ward-Delivery"] == str(delivery.pk)
    for secret in ("Pat Alpha", "Alpha", "A-0001", "1970"):  # name, MRN, birth date
        assert secret not in subject + body, secret


def test_an_smtp_refusal_is_a_failed_attempt_retried_later(patient_a, nurse_with_email, smtp):
    smtp.reject = 1
    delivery = Delivery.objects.get(notification=hold_for(patient_a, nurse_with_email), channel="email")
    assert deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_error == "SMTPDataError" and smtp.mails == []


def test_a_webhook_is_a_json_post_signed_with_hmac_sha256_of_the_body(patient_a, nurse_a, webhook):
    row = hold_for(patient_a, nurse_a)
    delivery = Delivery.objects.get(notification=row, channel="webhook")
    assert deliver(delivery.pk) == "delivered"
    (hook,) = webhook.hooks
    stamp = hook.headers["X-IL2Ward-Timestamp"]
    expected = "sha256=" + hmac.new(b"s3cret-key", stamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-IL2Ward-Signature"] == expected
    assert hook.headers["X-IL2Ward-Event-Id"] == body_event(row)
    assert hook.headers["Content-Type"] == "application/json"
    assert hook.headers["X-IL2Ward-Delivery"] == str(delivery.pk)
    body = hook.json
    assert body == {
        "id": row.pk,
        "event": body_event(row),
        "recipients": ["nurse_a"],
        "kind": "hold_flagged",
        "ward": "onc-a",
        "patient": {"id": patient_a.pk, "initials": "PA"},
        "dose": {"id": 41, "cycle": 1, "number": 5},
        "rules": ["CV-SBP", "RN-UO"],
        "created_at": "2027-03-10T12:00:00Z",
        "created_at_local": "2027-03-10T06:00:00-06:00",
        "due_at": None,
        "due_at_local": None,
        "time_zone": "America/Chicago",
        "link": "http://127.0.0.1:8000/doses/41/",
        "delivery": delivery.pk,
        "attempt": 1,
    }
    assert "Pat Alpha" not in hook.body.decode() and "A-0001" not in hook.body.decode()


def test_a_tampered_body_does_not_match_the_signature(patient_a, nurse_a, webhook):
    deliver(Delivery.objects.get(notification=hold_for(patient_a, nurse_a), channel="webhook").pk)
    (hook,) = webhook.hooks
    forged = json.dumps({**hook.json, "kind": "dose_due"}, sort_keys=True).encode()
    headers = hook.headers
    stamp, signed = headers["X-IL2Ward-Timestamp"], headers["X-IL2Ward-Signature"]
    now = int(stamp)
    assert webhook_channel.verify("s3cret-key", body=hook.body, timestamp=stamp, signed=signed, now=now)
    assert not webhook_channel.verify("s3cret-key", body=forged, timestamp=stamp, signed=signed, now=now)
    assert not webhook_channel.verify("other-key", body=hook.body, timestamp=stamp, signed=signed, now=now)
    # A replay: the same request later than the window is refused; at the edge of the window it is accepted.
    assert webhook_channel.verify("s3cret-key", body=hook.body, timestamp=stamp, signed=signed, now=now + 300)
    assert not webhook_channel.verify("s3cret-key", body=hook.body, timestamp=stamp, signed=signed, now=now + 301)
    # A re-dated replay does not match the signature.
    assert not webhook_channel.verify("s3cret-key", body=hook.body, timestamp=str(now + 301), signed=signed,
                                      now=now + 301)  # fmt: skip


def test_a_webhook_nobody_listens_on_is_a_failed_attempt(patient_a, nurse_a, ward_a):
    Ward.objects.filter(pk=ward_a.pk).update(
        webhook_url="http://127.0.0.1:9/hook", webhook_secret="k"
    )  # discard port: refused
    patient_a.ward.refresh_from_db()
    delivery = Delivery.objects.get(notification=hold_for(patient_a, nurse_a), channel="webhook")
    assert deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.last_error == "URLError" and delivery.attempts == 1


def test_a_redirect_is_not_followed(patient_a, nurse_a, webhook):
    webhook.statuses = [302]
    delivery = Delivery.objects.get(notification=hold_for(patient_a, nurse_a), channel="webhook")
    assert deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.last_error == "HTTP 302" and len(webhook.hooks) == 1


def test_a_ward_webhook_without_a_secret_gets_no_delivery_and_is_reported(patient_a, nurse_a, ward_a, client):
    from il2ward.health import readiness_problems

    Ward.objects.filter(pk=ward_a.pk).update(webhook_url="http://127.0.0.1:9/hook", webhook_secret="")
    patient_a.ward.refresh_from_db()
    row = hold_for(patient_a, nurse_a)
    assert not Delivery.objects.filter(notification=row, channel="webhook").exists()
    assert "onc-a" in readiness_problems(NOW)["webhooks"]
    ward_a.refresh_from_db()
    with pytest.raises(ValidationError, match="secret"):
        ward_a.full_clean()
    ward_a.webhook_secret = "k"  # the nearest allowed: with a secret it is valid, sent and not reported
    ward_a.full_clean()
    ward_a.save()
    assert "webhooks" not in readiness_problems(NOW)


def test_one_post_per_event_per_endpoint_with_every_recipient_inside(patient_a, nurse_a, nurse_a2, webhook):
    rows = notify(kind="hold_flagged", recipients=[nurse_a, nurse_a2], dedupe="hold_flagged:dose42", now=NOW,
                  patient=patient_a, course_id=9, dose_id=42, details={"cycle": 1, "number": 2})  # fmt: skip
    hooks = Delivery.objects.filter(notification__in=rows, channel="webhook")
    assert hooks.count() == 1
    assert deliver(hooks.get().pk) == "delivered"
    (hook,) = webhook.hooks
    assert hook.json["recipients"] == ["nurse_a", "nurse_a2"]
    assert Delivery.objects.filter(notification__in=rows, channel="in_app").count() == 2  # each still gets the bell
