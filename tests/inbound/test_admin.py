"""The integration analyst's admin: search the message log, re-process a dead letter, change the mapping."""

from datetime import timedelta

import pytest
import time_machine

from il2ward.models import AuditEvent
from inbound.models import CodeMapping, InboundMessage, MappingVersion
from inbound.services import message_receive
from monitoring.models import LabResult
from tests.conftest import NOW, make_staff
from tests.inbound.messages import oru

AT = NOW - timedelta(minutes=30)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def admin_client_(frozen, client, db):
    client.force_login(make_staff("site_admin", "admin"))
    return client


def test_search_the_log_and_reprocess_a_dead_letter_after_the_mapping_is_changed(admin_client_, patient_a):
    receipt = message_receive(raw=oru("DL-1", [("2345-7", "5.4", "mmol/L")], at=AT), now=NOW)
    assert receipt.code == "AE"
    page = admin_client_.get("/admin/inbound/inboundmessage/", {"q": "DL-1", "status__exact": "refused"})
    assert page.status_code == 200 and b"DL-1" in page.content and b"unknown_code" in page.content
    assert b"Pat Alpha" not in page.content
    added = admin_client_.post(
        "/admin/inbound/codemapping/add/",
        {"system": "LN", "code": "2345-7", "display": "Glucose", "unit": "mmol/L", "target": "ignore", "field": "",
         "factor": "1", "divisor": "1", "offset": "0"},
    )  # fmt: skip
    assert added.status_code == 302, added.content[:2000]
    assert MappingVersion.objects.order_by("-number").first().number == 2
    assert CodeMapping.objects.filter(version__number=2, code="2345-7").exists()
    assert not CodeMapping.objects.filter(version__number=1, code="2345-7").exists()  # version 1 as it was
    # Nothing to store for an ignored code alone: still refused, now for "no result IL2Ward stores".
    done = admin_client_.post(
        "/admin/inbound/inboundmessage/", {"action": "reprocess", "index": 0, "_selected_action": [receipt.message.pk]},
        follow=True,
    )  # fmt: skip
    assert b"1 refused" in done.content
    row = InboundMessage.objects.get(pk=receipt.message.pk)
    assert (row.status, row.error_code) == ("refused", "missing_field")
    assert AuditEvent.objects.filter(action="inbound.reprocess").count() == 1
    assert not LabResult.objects.exists()


def test_a_mapping_row_with_an_unknown_field_is_refused(admin_client_):
    response = admin_client_.post(
        "/admin/inbound/codemapping/add/",
        {"system": "LN", "code": "1-1", "unit": "mg/dL", "target": "labs", "field": "glucose_mg_dl", "factor": "1",
         "divisor": "1", "offset": "0"},
        follow=True,
    )  # fmt: skip
    assert b"Not changed" in response.content
    assert MappingVersion.objects.count() == 1
