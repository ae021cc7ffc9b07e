"""HL7 v2 messages through inbound.services.message_receive: what is stored, what is refused (with its ACK naming
the field, and nothing stored), idempotency on the control id, corrections, admissions."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from il2ward.models import AuditEvent, Patient
from inbound.models import InboundMessage
from inbound.services import mapping_change, message_receive, message_reprocess
from monitoring.models import LabResult, VitalSigns
from tests.conftest import NOW
from tests.inbound.messages import MONITOR_VITALS, adt, oru

AT = NOW - timedelta(minutes=30)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def receive(raw):
    return message_receive(raw=raw, now=NOW)


def segments(ack: str) -> dict[str, list[str]]:
    return {line.split("|")[0]: line.split("|") for line in ack.strip("\r").split("\r")}


def test_creatinine_in_umol_per_litre_is_stored_in_mg_dl_with_its_source(patient_a):
    receipt = receive(oru("LAB-1", [("2160-0", "150", "umol/L"), ("777-3", "80", "10*3/uL")], at=AT))
    assert receipt.code == "AA", receipt.ack
    assert segments(receipt.ack)["MSA"][1:3] == ["AA", "LAB-1"]
    labs = LabResult.objects.get(patient=patient_a)
    assert labs.creatinine_mg_dl == Decimal("1.70")  # 150 / 88.42 = 1.696
    assert labs.platelets_k_ul == Decimal("80.0")
    assert (labs.source_system, labs.source_message_id, labs.source_order) == ("LAB", "LAB-1", "ORD-1")
    assert labs.source_label == "from LAB"
    assert labs.recorded_at == AT
    assert labs.recorded_by.username == "interface"
    row = InboundMessage.objects.get()
    assert (row.status, row.patient, row.message_type, row.stored) == (
        "accepted",
        patient_a,
        "ORU^R01",
        [labs.source_id],
    )
    assert AuditEvent.objects.filter(action="labs.record", object_id=str(labs.pk)).exists()


def test_a_resent_message_is_acknowledged_and_stored_once(patient_a):
    raw = oru("LAB-2", [("2823-3", "4.1", "mmol/L")], at=AT)
    assert receive(raw).code == "AA"
    again = receive(raw)
    assert (again.code, again.duplicate) == ("AA", True)
    assert LabResult.objects.count() == 1
    assert InboundMessage.objects.get().times_received == 2


def test_the_same_control_id_with_other_content_is_refused(patient_a):
    assert receive(oru("LAB-3", [("2823-3", "4.1", "mmol/L")], at=AT)).code == "AA"
    other = receive(oru("LAB-3", [("2823-3", "5.9", "mmol/L")], at=AT))
    assert other.code == "AR"
    assert LabResult.objects.get().potassium_mmol_l == Decimal("4.10")


def test_monitor_vitals_by_mdc_are_stored_incomplete_without_rhythm_o2_and_pressors(patient_a):
    receipt = receive(oru("MON-1", MONITOR_VITALS, at=AT, app="MONITOR"))
    assert receipt.code == "AA", receipt.ack
    vitals = VitalSigns.objects.get()
    assert (vitals.sbp, vitals.dbp, vitals.heart_rate, vitals.resp_rate, vitals.spo2) == (118, 72, 88, 16, 97)
    assert vitals.temp_c == Decimal("37.2")
    # Not sent, so not charted: INV-EXPLICIT reads them as missing, never as "none".
    assert (vitals.rhythm, vitals.other_pressor, vitals.o2_lpm, vitals.phenylephrine_mcg_kg_min) == ("", "", None, None)
    assert vitals.source_label == "from monitor"


def test_temperature_in_fahrenheit_is_converted(patient_a):
    vitals = [*MONITOR_VITALS[:5], ("8310-5", "100.4", "[degF]", "LN")]
    assert receive(oru("MON-2", vitals, at=AT, app="MONITOR")).code == "AA"
    assert VitalSigns.objects.get().temp_c == Decimal("38.0")


REFUSALS = [
    # (why, message, ERR location, error code)
    ("unknown patient", dict(mrn="NOPE-1"), "PID^1^3", "unknown_patient"),
    ("MRN under another authority", dict(authority="OTHER"), "PID^1^3", "unknown_patient"),
    ("unknown code", dict(results=[("9999-9", "1", "mg/dL")]), "OBX^1^3", "unknown_code"),
    ("unit that cannot be converted", dict(results=[("2160-0", "1.2", "g/L")]), "OBX^1^6", "unit_not_convertible"),
    ("impossible value", dict(results=[("2160-0", "95", "mg/dL")]), "OBX^1^5", "impossible_value"),
    ("not a number", dict(results=[("2160-0", "<0.1", "mg/dL")]), "OBX^1^5", "impossible_value"),
    ("timed in the future", dict(at=NOW + timedelta(hours=1)), "OBR^1^7", "future_time"),
    ("result status not accepted", dict(status="X"), "OBX^1^11", "unsupported_status"),
    (
        "impossible second result",
        dict(results=[("2823-3", "4", "mmol/L"), ("777-3", "-5", "10*3/uL")]),
        "OBX^2^5",
        "impossible_value",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("why", "change", "location", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_answer_ae_naming_the_field_and_store_nothing(patient_a, why, change, code, location):
    kwargs = {"results": [("2160-0", "1.1", "mg/dL")], "at": AT, **change}
    receipt = receive(oru("BAD-1", kwargs.pop("results"), **kwargs))
    ack = segments(receipt.ack)
    assert ack["MSA"][1:3] == ["AE", "BAD-1"], receipt.ack
    assert ack["ERR"][2] == location, receipt.ack
    assert ack["ERR"][4] == "E"
    assert not LabResult.objects.exists()
    assert not AuditEvent.objects.filter(action="labs.record").exists()
    row = InboundMessage.objects.get()
    assert (row.status, row.error_code) == ("refused", code)
    assert "Alpha" not in row.error_text  # patient data stays out of the error text


def test_the_nearest_allowed_cases_are_stored(patient_a):
    """Next to each refusal above: the highest possible creatinine, a time just inside the clock tolerance."""
    assert receive(oru("OK-1", [("2160-0", "20", "mg/dL")], at=AT)).code == "AA"
    assert receive(oru("OK-2", [("2160-0", "1.0", "mg/dL")], at=NOW + timedelta(minutes=4))).code == "AA"
    assert LabResult.objects.count() == 2


def test_unsupported_message_type_and_broken_message_are_rejected_ar(patient_a):
    raw = oru("X-1", [("2160-0", "1.1", "mg/dL")], at=AT).replace("ORU^R01^ORU_R01", "ORM^O01")
    assert segments(receive(raw).ack)["MSA"][1] == "AR"
    broken = receive("hello\rworld")
    assert broken.code == "AR" and segments(broken.ack)["ERR"][2] == "MSH^1^1"
    assert InboundMessage.objects.filter(status="refused").count() == 2
    assert not LabResult.objects.exists()


def test_a_corrected_result_replaces_the_earlier_one_keeping_history(patient_a):
    assert receive(oru("LAB-10", [("2160-0", "1.1", "mg/dL")], at=AT, order="ORD-7")).code == "AA"
    assert receive(oru("LAB-11", [("2160-0", "2.4", "mg/dL")], at=AT, order="ORD-7", status="C")).code == "AA"
    old, new = LabResult.objects.order_by("pk")
    assert old.entered_in_error_at is not None and "LAB-11" in old.entered_in_error_reason
    assert new.entered_in_error_at is None and new.creatinine_mg_dl == Decimal("2.40")
    assert AuditEvent.objects.filter(action="labs.entered_in_error", object_id=str(old.pk)).exists()
    # A final result of another order leaves the first alone.
    assert receive(oru("LAB-12", [("2160-0", "1.3", "mg/dL")], at=AT, order="ORD-8")).code == "AA"
    assert LabResult.objects.filter(entered_in_error_at__isnull=True).count() == 2


def test_refused_for_an_unknown_code_then_reprocessed_after_the_mapping_is_fixed(patient_a, oncologist):
    receipt = receive(oru("LAB-20", [("2160-0", "1.1", "mg/dL"), ("1234-5", "7", "mg/dL")], at=AT))
    assert receipt.code == "AE"
    mapping_change(add=[{"system": "LN", "code": "1234-5", "target": "ignore", "unit": "mg/dL"}],
                   reason="Glucose: known, not used", by=oncologist, now=NOW)  # fmt: skip
    row = message_reprocess(message_id=receipt.message.pk, by=oncologist, now=NOW)
    assert row.status == "reprocessed"
    assert LabResult.objects.get().creatinine_mg_dl == Decimal("1.10")
    assert AuditEvent.objects.filter(action="inbound.reprocess").exists()
    assert AuditEvent.objects.filter(action="inbound.mapping_change").exists()


def test_a_resend_after_the_patient_was_admitted_is_processed(ward_a, oncologist):
    raw = oru("LAB-30", [("2160-0", "1.1", "mg/dL")], at=AT, mrn="A-0009")
    assert receive(raw).code == "AE"
    assert receive(adt("PAS-1", "A01", at=AT)).code == "AA"
    assert receive(raw).code == "AA"
    assert LabResult.objects.get().patient.mrn == "A-0009"


def test_adt_admit_transfer_update_discharge(ward_a, ward_b):
    assert receive(adt("PAS-10", "A01", at=AT)).code == "AA"
    patient = Patient.objects.get(mrn="A-0009")
    assert (patient.name, str(patient.birth_date), patient.sex, patient.ward) == (
        "Gus Gamma",
        "1980-01-01",
        "male",
        ward_a,
    )
    assert receive(adt("PAS-11", "A02", at=AT, ward="ONC-B")).code == "AA"
    assert receive(adt("PAS-12", "A08", at=AT, ward="onc-b", family="Gamma-Smith")).code == "AA"
    assert receive(adt("PAS-13", "A03", at=AT, ward="onc-b")).code == "AA"
    patient.refresh_from_db()
    assert (patient.ward, patient.name, patient.discharged_at) == (ward_b, "Gus Gamma-Smith", AT)
    actions = list(AuditEvent.objects.filter(action__startswith="patient.").values_list("action", flat=True))
    assert {"patient.create", "patient.admit", "patient.transfer", "patient.update", "patient.discharge"} <= set(
        actions
    )


def test_adt_refusals_name_the_field(ward_a):
    unknown_ward = segments(receive(adt("PAS-20", "A01", at=AT, ward="nowhere")).ack)
    assert (unknown_ward["MSA"][1], unknown_ward["ERR"][2]) == ("AE", "PV1^1^3")
    unknown_patient = segments(receive(adt("PAS-21", "A03", at=AT, mrn="A-7777")).ack)
    assert unknown_patient["ERR"][2] == "PID^1^3"
    assert not Patient.objects.exists()
