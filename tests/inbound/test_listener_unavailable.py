"""The listener's per-message step when the database is unreachable: AE "resend", nothing stored, and the next
message (database back) is stored on a fresh connection."""

from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError

from inbound import listener
from monitoring.models import LabResult
from tests.conftest import NOW
from tests.inbound.messages import oru

pytestmark = pytest.mark.django_db(transaction=True)  # the listener closes a broken connection


def test_database_unavailable_is_ae_resend_then_the_resend_is_stored(monkeypatch, patient_a):
    raw = oru("UNAV-1", [("2160-0", "1.1", "mg/dL")], at=NOW - timedelta(minutes=10)).encode()

    def down(**kwargs):
        raise OperationalError("connection refused")

    with time_machine.travel(NOW, tick=False):
        monkeypatch.setattr(listener, "message_receive", down)
        ack, code = listener.process_block(raw)
        assert code == "AE"
        assert b"MSA|AE|UNAV-1" in ack and b"resend" in ack
        assert not LabResult.objects.exists()
        monkeypatch.undo()
        ack, code = listener.process_block(raw)
    assert code == "AA", ack
    assert LabResult.objects.count() == 1
