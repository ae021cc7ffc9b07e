"""The demo ward (fixtures/demo.py) makes reminders arrive: in the bell of its nurse, and by (console) e-mail."""

from datetime import timedelta

import pytest
from django.core import mail

from fixtures import demo
from il2ward.models import Delivery, Notification
from il2ward.notifications import deliver
from scheduling.services.reminders import escalate_holds
from scheduling.tasks import sweep_at
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def test_the_demo_sends_reminders_a_hold_and_after_15_min_an_escalation():
    demo.load(now=NOW)
    sweep_at(now=NOW)
    kinds = set(Notification.objects.filter(recipient__username="nurse").values_list("kind", flat=True))
    assert {"assessment_due", "dose_due", "hold_flagged"} <= kinds
    # The hold on Priya's next dose is not acknowledged: the charge nurse and the on-call oncologist are paged.
    escalate_holds(now=NOW + timedelta(minutes=15))
    assert set(Notification.objects.filter(kind="escalation").values_list("recipient__username", flat=True)) == {
        "charge",
        "onc",
    }
    # Everyone in the demo has an address: the e-mail goes out (the console backend in the demo's worker log).
    emails = Delivery.objects.filter(channel="email", notification__kind="dose_due")
    assert emails.exists()
    for delivery in emails:
        assert deliver(delivery.pk) == "delivered"
    assert any("Dose due" in message.subject for message in mail.outbox)
