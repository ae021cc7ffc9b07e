"""Adding a channel is a folder and a registry entry: a channel defined here, in the test, and registered is offered
on the preferences page with its own field, stored by name, given deliveries and sent through the outbox (retries
included) and listed in the admin, with no change to any other file and no migration."""

import pytest
from django import forms
from django.utils import timezone

from il2ward import channels
from il2ward.channels import Channel, ChannelError
from il2ward.models import Delivery, StaffProfile
from il2ward.notifications import deliver, notify
from tests.conftest import NOW
from tests.notifications.conftest import channels_of

pytestmark = pytest.mark.django_db


class Loft:
    """A pigeon loft: records what it is sent; `fail` makes the next sends fail (a temporary failure)."""

    def __init__(self):
        self.sent, self.fail = [], 0

    def send(self, message, *, delivery_id, attempt):
        if self.fail:
            self.fail -= 1
            raise ChannelError("no pigeon free")
        self.sent.append((message, delivery_id, attempt))


@pytest.fixture
def pigeon():
    loft = Loft()
    channels.register(
        Channel(
            name="pigeon",
            label="Carrier pigeon",
            preference_label="Send my notifications by pigeon",
            send=loft.send,
            reaches=lambda user, choice, patient: bool(choice.get("loft")),
            default=False,
            fields=lambda: {"loft": forms.CharField(label="My loft", required=False, max_length=20)},
        )
    )
    yield loft
    channels.unregister("pigeon")


def dose_due(patient, users, dose_id=7):
    return notify(kind="dose_due", recipients=users, dedupe=f"dose_due:dose{dose_id}", now=NOW, patient=patient,
                  course_id=3, dose_id=dose_id, details={"cycle": 1, "number": 2}, due_at=NOW)  # fmt: skip


def test_a_registered_channel_is_offered_stored_by_name_and_delivered(client, patient_a, nurse_a, nurse_a2, pigeon):
    client.force_login(nurse_a)
    html = client.get("/notifications/").content.decode()
    assert "Send my notifications by pigeon" in html and 'id="id_pigeon_loft"' in html
    response = client.post(
        "/notifications/preferences/",
        {"on_duty": "on", "notify_in_app": "on", "notify_pigeon": "on", "pigeon_loft": "north tower"},
    )
    assert response.status_code == 302
    assert StaffProfile.objects.get(user=nurse_a).channels["pigeon"] == {"on": True, "loft": "north tower"}
    # nurse_a2 never chose it (its default is off): no delivery for her, the nearest case.
    made = {n.recipient.username: n for n in dose_due(patient_a, [nurse_a, nurse_a2])}
    assert channels_of(made["nurse_a"]) == {"in_app": "delivered", "pigeon": "pending"}
    assert "pigeon" not in channels_of(made["nurse_a2"])
    delivery = Delivery.objects.get(notification=made["nurse_a"], channel="pigeon")
    pigeon.fail = 1
    assert deliver(delivery.pk) == "pending"  # the outbox's retry, as for any channel
    delivery.refresh_from_db()
    assert delivery.last_error == "no pigeon free"
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver(delivery.pk) == "delivered"
    ((message, delivery_id, attempt),) = pigeon.sent
    assert (delivery_id, attempt) == (delivery.pk, 2)
    assert message.recipient_channels["pigeon"]["loft"] == "north tower" and message.link.endswith("/doses/7/")


def test_the_admin_labels_and_filters_it_by_the_registry(admin_client, patient_a, nurse_a, pigeon):
    StaffProfile.objects.filter(user=nurse_a).update(channels={"pigeon": {"on": True, "loft": "n"}})
    dose_due(patient_a, [nurse_a])
    pigeon_id = Delivery.objects.get(channel="pigeon").pk
    listing = admin_client.get("/admin/il2ward/delivery/").content.decode()
    assert "Carrier pigeon" in listing and "?channel=pigeon" in listing  # its label and its filter
    filtered = admin_client.get("/admin/il2ward/delivery/?channel=pigeon")
    assert [d.pk for d in filtered.context["cl"].result_list] == [pigeon_id]
    assert "Carrier pigeon" in admin_client.get("/admin/il2ward/staffprofile/").content.decode()


def test_a_delivery_of_a_channel_taken_out_of_the_registry_is_dead_not_retried_for_hours(patient_a, nurse_a, pigeon):
    StaffProfile.objects.filter(user=nurse_a).update(channels={"pigeon": {"on": True, "loft": "n"}})
    (row,) = dose_due(patient_a, [nurse_a])
    channels.unregister("pigeon")
    delivery = Delivery.objects.get(notification=row, channel="pigeon")
    assert deliver(delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert delivery.last_error == "no transport for channel pigeon" and pigeon.sent == []


def test_the_built_in_channels_are_registered_in_their_order():
    assert list(channels.REGISTRY) == ["in_app", "email", "webhook", "sms"]


def test_no_channel_builds_a_page_address_by_hand():
    """Links come from page_link (reverse() of the pages' URL names): a moved page moves its links too."""
    from pathlib import Path

    root = Path(channels.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if any(page in line for page in ('"/doses/', "'/doses/", "/doses/{", '"/patients/', "/patients/{"))
    ]
    assert offenders == []
