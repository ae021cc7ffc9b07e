"""One ORU^R01 with several orders (OBR groups, each at its own time), withdrawals (OBX-11 W and D) and message order
per order (MSH-7): a result sent earlier but arriving later never overtakes a later one or its correction. Through
inbound.services.message_receive on the test database; the listener tests send the same over real connections."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from il2ward.models import AuditEvent
from inbound.models import InboundMessage
from inbound.services import _oru_patient_orm, _oru_patient_postgres, message_receive
from monitoring.models import LAB_FIELDS, LabResult, VitalSigns
from monitoring.selectors import patient_snapshot
from tests.conftest import NOW
from tests.inbound.messages import hl7_time, oru

AT = NOW - timedelta(minutes=30)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def receive(raw):
    return message_receive(raw=raw, now=NOW)


def err(ack: str) -> list[str]:
    return next(line.split("|") for line in ack.split("\r") if line.startswith("ERR"))


def message(control_id: str, groups: list[tuple[str, object, list[str]]], *, sent=AT, app="LAB") -> str:
    """groups: (order, OBR-7 time or None, OBX segments without their set id)."""
    segments = [
        f"MSH|^~\\&|{app}|HOSP|IL2WARD|WARD|{hl7_time(sent)}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        "PID|1||A-0001^^^IL2WARD^MR||Alpha^Pat||19700501|F",
    ]
    for n, (order, at, results) in enumerate(groups, start=1):
        segments.append(f"OBR|{n}||{order}|PANEL^Panel^L|||{hl7_time(at) if at else ''}")
        segments += [f"OBX|{i}|{r}" for i, r in enumerate(results, start=1)]  # set ids restart in each group
    return "\r".join(segments) + "\r"


def current():
    return LabResult.objects.filter(entered_in_error_at__isnull=True)


# ------------------------------------------------------------------------------------------------- OBR groups


def test_each_obr_group_is_its_own_order_at_its_own_time(patient_a):
    early, late = AT - timedelta(hours=6), AT
    raw = message("GRP-1", [
        ("ORD-A", early, ["NM|2160-0^^LN||1.1|mg/dL|||||F", "NM|777-3^^LN||150|10*3/uL|||||F"]),
        ("ORD-B", late, ["NM|2160-0^^LN||1.6|mg/dL|||||F"]),
    ])  # fmt: skip
    receipt = receive(raw)
    assert receipt.code == "AA", receipt.ack
    first, second = LabResult.objects.order_by("recorded_at")
    assert (first.recorded_at, first.source_order, first.creatinine_mg_dl, first.platelets_k_ul) == (
        early, "ORD-A", Decimal("1.10"), Decimal("150.0"))  # fmt: skip
    assert (second.recorded_at, second.source_order, second.creatinine_mg_dl, second.platelets_k_ul) == (
        late, "ORD-B", Decimal("1.60"), None)  # fmt: skip
    assert InboundMessage.objects.get().stored == [first.source_id, second.source_id]


def test_a_group_without_obr_7_takes_its_first_obx_14(patient_a):
    obx_time = hl7_time(AT - timedelta(hours=2))
    raw = message("GRP-2", [
        ("ORD-A", AT, ["NM|2823-3^^LN||4.1|mmol/L|||||F"]),
        ("ORD-B", None, [f"NM|2823-3^^LN||4.4|mmol/L|||||F|||{obx_time}"]),
    ])  # fmt: skip
    assert receive(raw).code == "AA"
    assert sorted(LabResult.objects.values_list("recorded_at", flat=True)) == [AT - timedelta(hours=2), AT]


def test_a_refusal_in_the_second_group_stores_nothing_of_the_first_and_names_its_obx(patient_a):
    raw = message("GRP-3", [
        ("ORD-A", AT, ["NM|2160-0^^LN||1.1|mg/dL|||||F"]),
        ("ORD-B", AT, ["NM|2823-3^^LN||4.1|mmol/L|||||F", "NM|777-3^^LN||-5|10*3/uL|||||F"]),
    ])  # fmt: skip
    receipt = receive(raw)
    assert receipt.code == "AE"
    assert err(receipt.ack)[2] == "OBX^3^5"  # the third OBX of the message (its set id in group 2 is 2)
    assert not LabResult.objects.exists()
    assert not AuditEvent.objects.filter(action="labs.record").exists()
    assert InboundMessage.objects.get().error_code == "impossible_value"


def test_a_group_without_a_time_is_refused_naming_its_obr(patient_a):
    raw = message("GRP-4", [("ORD-A", AT, ["NM|2160-0^^LN||1.1|mg/dL|||||F"]),
                            ("ORD-B", None, ["NM|2823-3^^LN||4.1|mmol/L|||||F"])])  # fmt: skip
    receipt = receive(raw)
    assert (receipt.code, err(receipt.ack)[2]) == ("AE", "OBR^2^7")
    assert not LabResult.objects.exists()


def test_the_same_field_in_two_groups_is_two_results(patient_a):
    """Only within one order is a second value of a field refused (duplicate_field)."""
    raw = message("GRP-5", [("ORD-A", AT - timedelta(hours=1), ["NM|2160-0^^LN||1.1|mg/dL|||||F"]),
                            ("ORD-B", AT, ["NM|2160-0^^LN||1.2|mg/dL|||||F"])])  # fmt: skip
    assert receive(raw).code == "AA"
    assert LabResult.objects.count() == 2
    twice = message("GRP-6", [("ORD-C", AT, ["NM|2160-0^^LN||1.1|mg/dL|||||F", "NM|2160-0^^LN||1.2|mg/dL|||||F"])])
    assert receive(twice).refusal.code == "duplicate_field"


# ------------------------------------------------------------------------------------------------ withdrawals


@pytest.mark.parametrize("status", ["W", "D"])
def test_w_and_d_withdraw_the_orders_earlier_result_keeping_it(patient_a, status):
    assert receive(oru("WD-1", [("2160-0", "2.4", "mg/dL")], at=AT, order="ORD-9")).code == "AA"
    assert receive(oru("WD-0", [("2160-0", "1.0", "mg/dL")], at=AT, order="ORD-10")).code == "AA"
    receipt = receive(oru("WD-2", [("2160-0", "2.4", "mg/dL")], at=AT + timedelta(minutes=1), order="ORD-9",
                          status=status))  # fmt: skip
    assert receipt.code == "AA", receipt.ack
    withdrawn = LabResult.objects.get(source_order="ORD-9")  # kept: nothing is deleted, nothing new stored
    assert withdrawn.entered_in_error_at == NOW and "Withdrawn by message WD-2" in withdrawn.entered_in_error_reason
    assert AuditEvent.objects.filter(action="labs.entered_in_error", object_id=str(withdrawn.pk)).exists()
    assert list(current().values_list("source_order", flat=True)) == ["ORD-10"]  # another order is left alone
    assert InboundMessage.objects.get(control_id="WD-2").stored == []


def test_a_withdrawal_of_nothing_is_refused_and_changes_nothing(patient_a):
    assert receive(oru("WD-3", [("2160-0", "1.0", "mg/dL")], at=AT, order="ORD-11")).code == "AA"
    receipt = receive(oru("WD-4", [("2160-0", "", "mg/dL")], at=AT, order="ORD-12", status="W"))
    assert (receipt.code, receipt.refusal.code, err(receipt.ack)[2]) == ("AE", "unknown_result", "OBX^1^11")
    assert current().count() == 1
    # Withdrawn twice: the second finds nothing left.
    assert receive(oru("WD-5", [("2160-0", "", "mg/dL")], at=AT, order="ORD-11", status="W")).code == "AA"
    assert receive(oru("WD-6", [("2160-0", "", "mg/dL")], at=AT, order="ORD-11", status="D")).code == "AE"
    assert LabResult.objects.count() == 1


def test_a_withdrawal_without_an_order_is_refused(patient_a):
    assert receive(oru("WD-7", [("2160-0", "1.0", "mg/dL")], at=AT, order="")).code == "AA"
    receipt = receive(oru("WD-8", [("2160-0", "", "mg/dL")], at=AT, order="", status="D"))
    assert (receipt.code, receipt.refusal.code) == ("AE", "missing_field")
    assert current().count() == 1


def test_a_withdrawal_beside_a_final_result_of_the_order_replaces_it(patient_a):
    """W on one test and F on another in one order: the earlier result goes, the new one is current."""
    assert receive(oru("WD-9", [("2160-0", "2.4", "mg/dL")], at=AT, order="ORD-13")).code == "AA"
    raw = oru("WD-10", [("2160-0", "", "mg/dL", "LN", "W"), ("2823-3", "4.0", "mmol/L", "LN", "F")], at=AT,
              order="ORD-13")  # fmt: skip
    assert receive(raw).code == "AA"
    (now_current,) = current()
    assert (now_current.creatinine_mg_dl, now_current.potassium_mmol_l) == (None, Decimal("4.00"))


PANEL = ["NM|2160-0^^LN||1.1|mg/dL|||||F", "NM|777-3^^LN||150|10*3/uL|||||F", "NM|2823-3^^LN||4.1|mmol/L|||||F"]


def test_a_withdrawal_of_one_test_keeps_the_panels_other_tests_current(patient_a):
    assert receive(message("ONE-1", [("ORD-30", AT, PANEL)])).code == "AA"
    original = LabResult.objects.get()
    receipt = receive(message("ONE-2", [("ORD-30", None, ["NM|777-3^^LN|||10*3/uL|||||W"])], sent=AT + timedelta(
        minutes=2)))  # fmt: skip
    assert receipt.code == "AA", receipt.ack
    (kept,) = current()
    assert (kept.creatinine_mg_dl, kept.platelets_k_ul, kept.potassium_mmol_l) == (Decimal("1.10"), None,
                                                                                    Decimal("4.10"))  # fmt: skip
    assert (kept.recorded_at, kept.source_message_id, kept.source_order) == (AT, "ONE-1", "ORD-30")  # as sent
    original.refresh_from_db()
    assert original.in_error and original.platelets_k_ul == Decimal("150.0")  # kept for the history
    assert original.entered_in_error_reason == f"Withdrawn by message ONE-2 (777-3); the other results kept as " \
                                               f"{kept.source_id}"  # fmt: skip
    assert InboundMessage.objects.get(control_id="ONE-2").stored == [kept.source_id]
    assert AuditEvent.objects.filter(action="labs.entered_in_error", object_id=str(original.pk)).exists()
    assert AuditEvent.objects.filter(action="labs.record", object_id=str(kept.pk)).exists()


def test_withdrawing_every_test_of_the_panel_leaves_nothing_current(patient_a):
    """The nearest case: all three tests withdrawn, so none is carried."""
    assert receive(message("ONE-3", [("ORD-31", AT, PANEL)])).code == "AA"
    withdraw_all = [r.replace("||1.1|", "|||").replace("||150|", "|||").replace("||4.1|", "|||")[:-1] + "D"
                    for r in PANEL]  # fmt: skip
    assert receive(message("ONE-4", [("ORD-31", None, withdraw_all)], sent=AT + timedelta(minutes=2))).code == "AA"
    assert not current().exists()
    assert LabResult.objects.count() == 1
    assert InboundMessage.objects.get(control_id="ONE-4").stored == []


def test_a_withdrawal_with_a_sub_id_takes_only_the_result_sent_under_it(patient_a):
    """Two results of one code in one order, told apart by OBX-4: W with sub-id 2 takes that one only."""
    first = message("SUB-1", [("ORD-32", AT - timedelta(minutes=10), ["NM|2160-0^^LN|1|1.1|mg/dL|||||F"])],
                    sent=AT - timedelta(minutes=10))  # fmt: skip
    second = message("SUB-2", [("ORD-32", AT, ["NM|2160-0^^LN|2|1.4|mg/dL|||||F"])])
    assert receive(first).code == "AA" and receive(second).code == "AA"
    withdraw = message("SUB-3", [("ORD-32", None, ["NM|2160-0^^LN|2||mg/dL|||||W"])], sent=AT + timedelta(minutes=2))
    assert receive(withdraw).code == "AA"
    (left,) = current()
    assert (left.source_message_id, left.creatinine_mg_dl) == ("SUB-1", Decimal("1.10"))


def test_a_withdrawal_with_a_sub_id_never_sent_is_refused_and_changes_nothing(patient_a):
    first = message("SUB-4", [("ORD-33", AT, ["NM|2160-0^^LN|1|1.1|mg/dL|||||F"])], sent=AT - timedelta(minutes=1))
    assert receive(first).code == "AA"
    receipt = receive(message("SUB-5", [("ORD-33", None, ["NM|2160-0^^LN|3||mg/dL|||||W"])]))
    assert (receipt.code, receipt.refusal.code, err(receipt.ack)[2]) == ("AE", "unknown_result", "OBX^1^11")
    assert current().count() == 1
    # Without a sub-id the code alone decides: the result goes.
    assert receive(message("SUB-6", [("ORD-33", None, ["NM|2160-0^^LN|||mg/dL|||||W"])])).code == "AA"
    assert not current().exists()


def test_a_withdrawn_vital_takes_its_whole_set(patient_a):
    """vitals_record needs all six measured values: a set without its SpO2 is not a set."""
    obx = ["NM|150021^^MDC||118|mm[Hg]|||||F", "NM|150022^^MDC||72|mm[Hg]|||||F", "NM|147842^^MDC||88|/min|||||F",
           "NM|151562^^MDC||16|/min|||||F", "NM|150456^^MDC||97|%|||||F", "NM|150344^^MDC||37.2|Cel|||||F"]  # fmt: skip
    assert receive(message("VW-1", [("M-30", AT, obx)], app="MONITOR")).code == "AA"
    raw = message("VW-2", [("M-30", None, ["NM|150456^^MDC|||%|||||W"])], sent=AT + timedelta(minutes=1),
                  app="MONITOR")  # fmt: skip
    assert receive(raw).code == "AA"
    assert not VitalSigns.objects.filter(entered_in_error_at__isnull=True).exists()
    assert "Withdrawn by message VW-2 (150456)" in VitalSigns.objects.get().entered_in_error_reason


# ------------------------------------------------------------------------------------------------- corrections

VITALS = ["NM|150021^^MDC||118|mm[Hg]|||||F", "NM|150022^^MDC||72|mm[Hg]|||||F", "NM|147842^^MDC||88|/min|||||F",
          "NM|151562^^MDC||16|/min|||||F", "NM|150456^^MDC||97|%|||||F", "NM|150344^^MDC||37.2|Cel|||||F"]  # fmt: skip


def test_a_correction_of_one_test_keeps_the_panels_other_tests_current(patient_a):
    """A lab that resends only the corrected OBX: the panel's other tests are carried to the corrected row."""
    assert receive(message("COR-1", [("ORD-40", AT, PANEL)])).code == "AA"
    original = LabResult.objects.get()
    receipt = receive(message("COR-2", [("ORD-40", AT, ["NM|2160-0^^LN||2.4|mg/dL|||||C"])], sent=AT + timedelta(
        minutes=5)))  # fmt: skip
    assert receipt.code == "AA", receipt.ack
    (corrected,) = current()
    assert (corrected.creatinine_mg_dl, corrected.platelets_k_ul, corrected.potassium_mmol_l) == (
        Decimal("2.40"), Decimal("150.0"), Decimal("4.10"))  # fmt: skip
    assert (corrected.recorded_at, corrected.source_message_id, corrected.source_order) == (AT, "COR-2", "ORD-40")
    assert InboundMessage.objects.get(control_id="COR-2").stored == [corrected.source_id]
    original.refresh_from_db()
    assert original.in_error and original.entered_in_error_reason == "Corrected by message COR-2"
    assert original.creatinine_mg_dl == Decimal("1.10")  # kept for the history
    assert AuditEvent.objects.filter(action="labs.entered_in_error", object_id=str(original.pk)).exists()
    record = AuditEvent.objects.get(action="labs.record", object_id=str(corrected.pk))
    assert record.new["platelets_k_ul"] == "150.0"  # the carried values are audited with the new row


def test_a_correction_that_resends_the_whole_panel_is_that_panel(patient_a):
    assert receive(message("COR-3", [("ORD-41", AT, PANEL)])).code == "AA"
    resent = [r.replace("||1.1|", "||1.3|").replace("||150|", "||90|").replace("||4.1|", "||3.2|")[:-1] + "C"
              for r in PANEL]  # fmt: skip
    assert receive(message("COR-4", [("ORD-41", AT, resent)], sent=AT + timedelta(minutes=5))).code == "AA"
    (corrected,) = current()
    values = {name: getattr(corrected, name) for name in LAB_FIELDS if getattr(corrected, name) is not None}
    assert values == {"creatinine_mg_dl": Decimal("1.30"), "platelets_k_ul": Decimal("90.0"),
                      "potassium_mmol_l": Decimal("3.20")}  # fmt: skip


def test_a_correction_for_an_order_with_no_earlier_result_stores_what_it_sends(patient_a):
    """The nearest allowed case: nothing to carry, nothing to supersede."""
    assert receive(message("COR-5", [("ORD-42", AT, ["NM|2160-0^^LN||2.4|mg/dL|||||C"])])).code == "AA"
    (stored,) = LabResult.objects.all()
    assert (stored.in_error, stored.creatinine_mg_dl, stored.platelets_k_ul) == (False, Decimal("2.40"), None)


def test_a_correction_merges_two_earlier_rows_of_the_order_the_later_winning(patient_a):
    first = message("COR-6", [("ORD-43", AT, ["NM|2160-0^^LN||1.1|mg/dL|||||F", "NM|777-3^^LN||150|10*3/uL|||||F"])],
                    sent=AT - timedelta(minutes=10))  # fmt: skip
    second = message("COR-7", [("ORD-43", AT, ["NM|777-3^^LN||120|10*3/uL|||||F", "NM|2823-3^^LN||4.1|mmol/L|||||F"])])
    assert receive(first).code == "AA" and receive(second).code == "AA"
    correction = message("COR-8", [("ORD-43", AT, ["NM|2823-3^^LN||5.9|mmol/L|||||A"])], sent=AT + timedelta(minutes=5))
    assert receive(correction).code == "AA"
    (corrected,) = current()
    assert (corrected.creatinine_mg_dl, corrected.platelets_k_ul, corrected.potassium_mmol_l) == (
        Decimal("1.10"), Decimal("120.0"), Decimal("5.90"))  # fmt: skip
    assert LabResult.objects.filter(entered_in_error_reason="Corrected by message COR-8").count() == 2


def test_the_hold_engine_sees_the_corrected_value_and_the_carried_ones(patient_a):
    assert receive(message("COR-9", [("ORD-44", AT, PANEL)])).code == "AA"
    correction = message("COR-10", [("ORD-44", AT, ["NM|777-3^^LN||40|10*3/uL|||||C"])], sent=AT + timedelta(minutes=5))
    assert receive(correction).code == "AA"
    (corrected,) = current()
    snapshot = patient_snapshot(patient_a.pk, now=NOW)
    assert (snapshot.platelets_k_ul.value, snapshot.creatinine_mg_dl.value, snapshot.potassium_mmol_l.value) == (
        Decimal("40.0"), Decimal("1.10"), Decimal("4.10"))  # fmt: skip
    assert {snapshot.platelets_k_ul.source_id, snapshot.creatinine_mg_dl.source_id,
            snapshot.potassium_mmol_l.source_id} == {corrected.source_id}  # fmt: skip


def test_a_correction_of_one_vital_keeps_its_set(patient_a):
    """A set is charted whole: a corrected SpO2 alone keeps the other five (and the choices) with it."""
    assert receive(message("VC-1", [("M-40", AT, VITALS)], app="MONITOR")).code == "AA"
    VitalSigns.objects.update(rhythm="sinus")  # as a nurse's chart would have it; no OBX carries it here
    raw = message("VC-2", [("M-40", AT, ["NM|150456^^MDC||91|%|||||C"])], sent=AT + timedelta(minutes=1),
                  app="MONITOR")  # fmt: skip
    assert receive(raw).code == "AA", receive(raw).ack
    (corrected,) = VitalSigns.objects.filter(entered_in_error_at__isnull=True)
    assert (corrected.sbp, corrected.dbp, corrected.heart_rate, corrected.resp_rate, corrected.spo2,
            corrected.temp_c, corrected.rhythm) == (118, 72, 88, 16, 91, Decimal("37.2"), "sinus")  # fmt: skip


# ----------------------------------------------------------------------------------------------- message order


def test_an_original_arriving_after_its_correction_never_overtakes_it(patient_a):
    original = oru("ORD-M1", [("2160-0", "1.1", "mg/dL")], at=AT, order="ORD-20")
    correction = oru("ORD-M2", [("2160-0", "2.4", "mg/dL")], at=AT + timedelta(minutes=10), order="ORD-20",
                     status="C")  # fmt: skip
    assert receive(correction).code == "AA"
    receipt = receive(original)  # sent first, arrived last (another connection, a resend)
    assert receipt.code == "AA"  # acknowledged: the sender must not resend it forever
    (shown,) = current()
    assert shown.creatinine_mg_dl == Decimal("2.40")
    late = LabResult.objects.get(source_message_id="ORD-M1")
    assert late.in_error and "ORD-M2" in late.entered_in_error_reason  # kept for the history
    assert AuditEvent.objects.filter(action="labs.entered_in_error", object_id=str(late.pk)).exists()


def test_in_message_order_the_correction_replaces_the_original(patient_a):
    """The nearest allowed case: the same two messages in the order they were sent."""
    assert receive(oru("ORD-M3", [("2160-0", "1.1", "mg/dL")], at=AT, order="ORD-21")).code == "AA"
    assert receive(oru("ORD-M4", [("2160-0", "2.4", "mg/dL")], at=AT + timedelta(minutes=10), order="ORD-21",
                       status="C")).code == "AA"  # fmt: skip
    (shown,) = current()
    assert shown.source_message_id == "ORD-M4"


def test_a_withdrawal_is_not_undone_by_the_original_arriving_late(patient_a):
    assert receive(oru("ORD-M5", [("2160-0", "1.1", "mg/dL")], at=AT, order="ORD-22")).code == "AA"
    assert receive(oru("ORD-M6", [("2160-0", "", "mg/dL")], at=AT + timedelta(minutes=5), order="ORD-22",
                       status="W")).code == "AA"  # fmt: skip
    resent_original = oru("ORD-M7", [("2160-0", "1.1", "mg/dL")], at=AT, order="ORD-22")  # sent before the W
    assert receive(resent_original).code == "AA"
    assert not current().exists()


def test_vitals_of_two_monitor_orders_sent_out_of_order_are_both_current_at_their_times(patient_a):
    """Different orders do not overtake each other: each is shown at its own observation time."""
    obx = ["NM|150021^^MDC||118|mm[Hg]|||||F", "NM|150022^^MDC||72|mm[Hg]|||||F", "NM|147842^^MDC||88|/min|||||F",
           "NM|151562^^MDC||16|/min|||||F", "NM|150456^^MDC||97|%|||||F", "NM|150344^^MDC||37.2|Cel|||||F"]  # fmt: skip
    later = message("MON-9", [("M-2", AT, obx)], sent=AT, app="MONITOR")
    earlier = message("MON-8", [("M-1", AT - timedelta(minutes=15), obx)], sent=AT - timedelta(minutes=15),
                      app="MONITOR")  # fmt: skip
    assert receive(later).code == "AA" and receive(earlier).code == "AA"
    assert VitalSigns.objects.filter(entered_in_error_at__isnull=True).count() == 2
    assert VitalSigns.objects.latest().source_message_id == "MON-9"


# ----------------------------------------------------------------------------------------------------- queries


@pytest.mark.parametrize("tests", [1, 4])
def test_an_oru_costs_the_same_queries_however_many_tests(patient_a, tests, django_assert_num_queries):
    """The mapping version and the interface account come with the patient; the log row is inserted last. On
    PostgreSQL: savepoint, patient, order upsert, insert (labs_record, no savepoint of its own), audit (lock and
    head in one round trip, insert), log insert, release = 8 (the outer test transaction's savepoints stand for
    BEGIN/COMMIT). SQLite: no lock, and the order is a read and a write = 9."""
    results = [("2160-0", "97", "umol/L"), ("777-3", "210", "10*3/uL"), ("2823-3", "4.1", "mmol/L"),
               ("1963-8", "24", "mmol/L")][:tests]  # fmt: skip
    assert receive(oru("Q-0", results, at=AT - timedelta(minutes=5), order="Q-0")).code == "AA"  # warm: caches
    with django_assert_num_queries(8 if connection.vendor == "postgresql" else 9):
        assert receive(oru("Q-1", results, at=AT, order="Q-1")).code == "AA"


def test_the_written_patient_read_gives_what_the_orm_read_gives(patient_a):
    """PostgreSQL reads the ORU's patient with one hand-written statement: the same patient, ward and ids."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the written statement is PostgreSQL's)")
    assert receive(oru("PR-1", [("2160-0", "1.1", "mg/dL")], at=AT, order="PR-1")).code == "AA"  # the account
    orm, written = _oru_patient_orm(patient_a.mrn), _oru_patient_postgres(patient_a.mrn)
    assert orm is not None and written is not None and None not in orm[1:]
    fields = [f.attname for f in type(patient_a)._meta.concrete_fields]
    ward_fields = [f.attname for f in type(patient_a.ward)._meta.concrete_fields]
    assert [getattr(written[0], f) for f in fields] == [getattr(orm[0], f) for f in fields]
    assert [getattr(written[0].ward, f) for f in ward_fields] == [getattr(orm[0].ward, f) for f in ward_fields]
    assert written[1:] == orm[1:]
    assert _oru_patient_postgres("NO-SUCH-MRN") is None
