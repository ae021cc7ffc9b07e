"""The flowsheet says where an interfaced value came from: "from LAB", "from monitor"; typed values name the nurse."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from inbound.services import message_receive
from monitoring.services import labs_record
from tests.conftest import NOW
from tests.inbound.messages import MONITOR_VITALS, oru


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_flowsheet_shows_the_source_of_interfaced_values(frozen, client, nurse_a, patient_a):
    at = NOW - timedelta(minutes=30)
    assert message_receive(raw=oru("L-1", [("2160-0", "1.3", "mg/dL")], at=at), now=NOW).code == "AA"
    assert message_receive(raw=oru("M-1", MONITOR_VITALS, at=at, app="MONITOR"), now=NOW).code == "AA"
    labs_record(patient=patient_a, recorded_at=at - timedelta(hours=1), creatinine_mg_dl=Decimal("1.2"), by=nurse_a,
                now=NOW)  # fmt: skip
    client.force_login(nurse_a)
    html = client.get(f"/patients/{patient_a.pk}/").content.decode()
    assert html.count("from LAB") == 1
    assert html.count("from monitor") == 1
