"""SCH-RETREAT and HOLD-RULES §4: retreatment-bar events are recorded on the course by the evaluation, and bar every
later course (409 retreatment_blocked); a new course waits until discharge + 49 days (ward-local dates)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from il2ward.errors import Conflict
from il2ward.models import AuditEvent
from monitoring.services import event_record
from scheduling import tasks
from scheduling.models import Course, RetreatmentBar
from scheduling.services import course_create, course_stop, dose_evaluate
from tests.conftest import NOW, PASSWORD
from tests.scheduling.doses.conftest import chart, first_dose, stored

pytestmark = pytest.mark.django_db


def new_course(api, oncologist, patient, first_dose_at: str):
    return api.as_user(oncologist).post(
        "/api/v1/courses/",
        {"patient": patient.pk, "first_dose_at": first_dose_at, "dosing_weight_kg": "80"},
        format="json",
    )


def test_a_sustained_vt_event_bars_retreatment_after_evaluation(api, ready, patient_a, nurse_a, oncologist):
    course = ready()
    chart(patient_a, nurse_a)
    event = event_record(
        patient=patient_a, kind="sustained_vt", recorded_at=NOW - timedelta(minutes=3), by=nurse_a, now=NOW
    )
    assert not RetreatmentBar.objects.exists()  # recorded by the evaluation, not by the observation write
    with time_machine.travel(NOW, tick=False):
        tasks.evaluate_patient(patient_a.pk)  # what monitoring's on-commit task runs
    bar = RetreatmentBar.objects.get()
    assert (bar.course, bar.kind, bar.source) == (course, "sustained_vt", event.source_id)
    dose = first_dose(course)
    dose.refresh_from_db()
    assert dose.flag == "discontinue"  # CV-RHYTHM: sustained VT discontinues (INV-DISC)
    # Recorded by the system, audited like any clinical record: the course, the kind and the source.
    (row,) = AuditEvent.objects.filter(action="retreatment_bar.record")
    assert (row.actor_id, row.object_type, row.object_id) == (None, "scheduling.course", str(course.pk))
    assert row.new == {"kind": "sustained_vt", "source": event.source_id}
    # Evaluating again records nothing twice, and audits nothing twice.
    dose_evaluate(dose_id=dose.pk, now=NOW + timedelta(minutes=1))
    assert RetreatmentBar.objects.count() == 1
    assert AuditEvent.objects.filter(action="retreatment_bar.record").count() == 1

    course_stop(course_id=course.pk, reason="Sustained VT", password=PASSWORD, by=oncologist, now=NOW)
    before = (Course.objects.count(), stored())
    with time_machine.travel(NOW, tick=False):
        response = new_course(api, oncologist, patient_a, "2027-09-01T16:00:00-05:00")
    assert response.status_code == 409 and response.json()["code"] == "retreatment_blocked"
    assert "sustained_vt" in response.json()["detail"]
    assert (Course.objects.count(), stored()) == before


def test_sustained_vt_charted_as_a_rhythm_is_a_bar_traced_to_the_vitals(ready, patient_a, nurse_a):
    course = ready()
    rows = chart(patient_a, nurse_a, vitals={"rhythm": "vt_sustained"})
    assert dose_evaluate(dose_id=first_dose(course).pk, now=NOW).decision == "discontinue"
    bar = RetreatmentBar.objects.get()
    assert (bar.course, bar.kind, bar.source) == (course, "sustained_vt", rows["vitals"].source_id)


def test_chest_pain_with_ecg_change_is_a_bar(ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a)
    event = event_record(
        patient=patient_a, kind="chest_pain_ecg", recorded_at=NOW - timedelta(minutes=1), by=nurse_a, now=NOW
    )
    assert dose_evaluate(dose_id=first_dose(course).pk, now=NOW).decision == "discontinue"  # CV-ISCHEMIA
    assert list(RetreatmentBar.objects.values_list("kind", "source")) == [("chest_pain_ecg", event.source_id)]


def test_a_bar_event_after_the_last_slot_is_still_recorded_on_the_course(ready, patient_a, nurse_a, oncologist):
    course = ready()
    course_stop(course_id=course.pk, reason="Toxicity", password=PASSWORD, by=oncologist, now=NOW)
    later = NOW + timedelta(days=2)
    event_record(patient=patient_a, kind="seizures", recorded_at=later, by=nurse_a, now=later)
    with time_machine.travel(later, tick=False):
        tasks.evaluate_patient(patient_a.pk)
    assert list(RetreatmentBar.objects.values_list("course_id", "kind")) == [(course.pk, "seizures")]


@pytest.fixture
def discharged(ready, oncologist):
    """Patient A's first course, stopped and discharged on 10 March 2027 (ward-local)."""
    from scheduling.services.decisions import course_discharge

    course = ready()
    course_stop(course_id=course.pk, reason="Completed early", password=PASSWORD, by=oncologist, now=NOW)
    course_discharge(
        course_id=course.pk,
        discharge_date=date(2027, 3, 10),
        password=PASSWORD,
        by=oncologist,
        now=NOW + timedelta(hours=8),
    )
    return course


def test_a_new_course_before_discharge_plus_49_days_is_blocked_naming_the_earliest_date(
    api, discharged, patient_a, oncologist
):
    before = Course.objects.count()
    with time_machine.travel(NOW, tick=False):
        # 27 April 23:30 in Chicago is already 28 April in UTC: the ward-local date decides.
        response = new_course(api, oncologist, patient_a, "2027-04-27T23:30:00-05:00")
    assert response.status_code == 409 and response.json()["code"] == "retreatment_blocked"
    assert "2027-04-28" in response.json()["detail"]
    assert Course.objects.count() == before


def test_a_new_course_on_discharge_plus_49_days_is_allowed(api, discharged, patient_a, oncologist):
    with time_machine.travel(NOW, tick=False):
        response = new_course(api, oncologist, patient_a, "2027-04-28T00:30:00-05:00")
    assert response.status_code == 201, response.content


def test_the_wait_is_a_setting(discharged, patient_a, oncologist, settings):
    settings.IL2WARD_RETREAT_AFTER_DISCHARGE_DAYS = 60
    with pytest.raises(Conflict) as raised:
        course_create(
            patient=patient_a,
            first_dose_at=datetime(2027, 5, 8, 21, 0, tzinfo=UTC),
            dosing_weight_kg=80,
            by=oncologist,
            now=NOW,
        )
    assert raised.value.code == "retreatment_blocked" and "2027-05-09" in raised.value.detail
