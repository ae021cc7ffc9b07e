"""Who is notified (il2ward.recipients): the assigned nurse, else the ward's nurses on duty; the course's oncologist;
the charge nurse and the on-call oncologist for escalations. And the audited writes that set assignments and on-call."""

import pytest

from il2ward.errors import Invalid
from il2ward.models import AuditEvent, Patient, StaffProfile
from il2ward.recipients import Directory, patient_assign_nurse, ward_set_on_call
from tests.conftest import NOW, make_staff

pytestmark = pytest.mark.django_db


def recipients(kind: str, *, patient, oncologist=None) -> list:
    """Who hears about one notification on this patient, as a sweep asks it (Directory.for_kind)."""
    return Directory([patient.ward_id]).for_kind(kind, patient=patient, oncologist=oncologist)


def names(users) -> list[str]:
    return sorted(u.username for u in users)


def fresh(patient) -> Patient:
    return Patient.objects.select_related("ward__on_call_oncologist__profile", "assigned_nurse__profile").get(
        pk=patient.pk
    )


def off_duty(*users):
    StaffProfile.objects.filter(user__in=users).update(on_duty=False)


def test_without_an_assigned_nurse_nursing_reminders_go_to_the_wards_nurses_on_duty(
    patient_a, nurse_a, nurse_a2, nurse_b, charge_nurse, oncologist
):
    assert names(recipients("dose_due", patient=fresh(patient_a), oncologist=oncologist)) == ["nurse_a", "nurse_a2"]
    off_duty(nurse_a2)
    assert names(recipients("vitals_due", patient=fresh(patient_a))) == ["nurse_a"]


def test_the_assigned_nurse_on_duty_is_the_only_nursing_recipient(patient_a, nurse_a, nurse_a2, charge_nurse):
    patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_a2, by=charge_nurse, now=NOW)
    assert names(recipients("assessment_due", patient=fresh(patient_a))) == ["nurse_a2"]
    off_duty(nurse_a2)  # her shift ended: back to the ward's nurses on duty
    assert names(recipients("assessment_due", patient=fresh(patient_a))) == ["nurse_a"]


def test_with_no_nurse_on_duty_the_charge_nurse_gets_the_reminder(patient_a, nurse_a, nurse_a2, charge_nurse):
    off_duty(nurse_a, nurse_a2)
    assert names(recipients("dose_overdue", patient=fresh(patient_a))) == ["charge_a"]
    off_duty(charge_nurse)  # nobody on duty at all: never nobody
    assert names(recipients("dose_overdue", patient=fresh(patient_a))) == ["charge_a"]


def test_holds_and_missed_doses_also_go_to_the_courses_oncologist(patient_a, nurse_a, charge_nurse, oncologist):
    for kind in ("hold_flagged", "stop_recommended", "dose_missed"):
        assert names(recipients(kind, patient=fresh(patient_a), oncologist=oncologist)) == ["nurse_a", "onc"], kind


def test_escalation_goes_to_the_charge_nurse_and_the_on_call_oncologist(
    patient_a, nurse_a, charge_nurse, oncologist, ward_a
):
    on_call = make_staff("oncall", "oncologist", [ward_a])
    # No on-call oncologist set: the course's oncologist stands in.
    assert names(recipients("escalation", patient=fresh(patient_a), oncologist=oncologist)) == ["charge_a", "onc"]
    ward_set_on_call(ward_id=ward_a.pk, oncologist=on_call, by=charge_nurse, now=NOW)
    assert names(recipients("escalation", patient=fresh(patient_a), oncologist=oncologist)) == ["charge_a", "oncall"]
    # SCH-3HELD: the course's oncologist and the on-call.
    assert names(recipients("third_hold", patient=fresh(patient_a), oncologist=oncologist)) == ["onc", "oncall"]


def test_the_directory_costs_one_query_whatever_the_number_of_patients(
    django_assert_num_queries, ward_a, ward_b, nurse_a, nurse_b, oncologist
):
    from il2ward.services import patient_create

    patients = [
        patient_create(mrn=f"D-{i}", name=f"P {i}", birth_date=NOW.date(), ward=ward, by=oncologist, now=NOW)
        for i, ward in enumerate([ward_a, ward_b] * 5)
    ]
    patients = list(
        Patient.objects.filter(pk__in=[p.pk for p in patients]).select_related(
            "ward__on_call_oncologist__profile", "assigned_nurse__profile"
        )
    )
    with django_assert_num_queries(1):
        directory = Directory({p.ward_id for p in patients})
        got = {p.pk: names(directory.for_kind("dose_due", patient=p)) for p in patients}
    assert {tuple(v) for v in got.values()} == {("nurse_a",), ("nurse_b",)}


def test_assigning_a_nurse_is_audited_and_only_a_nurse_of_the_patients_ward(patient_a, nurse_a, nurse_b, charge_nurse):
    with pytest.raises(Invalid) as raised:
        patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_b, by=charge_nurse, now=NOW)
    assert "assigned_nurse" in raised.value.errors
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse is None
    patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_a, by=charge_nurse, now=NOW)
    assert Patient.objects.get(pk=patient_a.pk).assigned_nurse == nurse_a
    event = AuditEvent.objects.get(action="patient.assign_nurse")
    assert event.actor == charge_nurse and event.new == {"nurse": nurse_a.pk} and event.old == {"nurse": None}


def test_only_an_oncologist_can_be_on_call(ward_a, nurse_a, charge_nurse):
    with pytest.raises(Invalid) as raised:
        ward_set_on_call(ward_id=ward_a.pk, oncologist=nurse_a, by=charge_nurse, now=NOW)
    assert "on_call_oncologist" in raised.value.errors
    assert not AuditEvent.objects.filter(action="ward.on_call").exists()


def test_a_hold_flagged_by_an_evaluation_goes_to_the_assigned_nurse_and_the_courses_oncologist(
    make_course, patient_a, nurse_a, nurse_a2, charge_nurse, oncologist
):
    from datetime import timedelta

    from scheduling.services import dose_evaluate
    from tests.notifications.conftest import rows, vitals

    patient_assign_nurse(patient_id=patient_a.pk, nurse=nurse_a2, by=charge_nurse, now=NOW)
    course = make_course(patient_a, first_dose_at=NOW + timedelta(minutes=30), now=NOW - timedelta(hours=6))
    vitals(patient_a, nurse_a, at=NOW - timedelta(minutes=5), sbp=85)  # CV-SBP: hold
    dose_evaluate(dose_id=course.doses.get(cycle=1, number=1).pk, now=NOW)
    assert rows(kind="hold_flagged") == [("hold_flagged", "nurse_a2"), ("hold_flagged", "onc")]
