"""The oncologist's decisions (scheduling/services/decisions.py): the row, signature, audit row, what is refused.

Every decision is e-signed (password re-entered) and audited; bad input is a 400 naming the field with nothing stored.
"""

from datetime import UTC, date, datetime, timedelta

import pytest

from il2ward.audit import record_hash
from il2ward.errors import Conflict, Invalid
from il2ward.models import AuditEvent, Signature
from scheduling import services
from scheduling.domain import calendar, signed_records
from scheduling.models import AdverseEvent, Course, CycleDecision, Dose, ResponseAssessment, RetreatmentBar
from scheduling.selectors import course_retreatment_check
from scheduling.services import decisions
from tests.conftest import NOW, PASSWORD
from tests.scheduling.review.builders import build_course, flag_next

pytestmark = [pytest.mark.django_db]


def stop_flagged(patient_a, staff):
    """A course mid cycle 1 whose next slot has a `stop` recommendation (CV-HR: heart rate 135 > 130)."""
    course = build_course(patient_a, staff, charted=4)
    dose = flag_next(course, staff, now=NOW, heart_rate=135)
    assert dose.latest_evaluation.decision == "stop"
    return course, dose


def test_cycle_stop_cancels_the_cycles_remaining_open_slots_and_is_signed(patient_a, staff):
    course, dose = stop_flagged(patient_a, staff)
    decision = decisions.cycle_decide(
        dose_id=dose.pk, choice="stop", reason="HR 135 despite fluids", password=PASSWORD, by=staff.oncologist, now=NOW
    )
    cycle1 = Dose.objects.filter(course=course, cycle=1)
    assert set(cycle1.filter(number__gte=dose.number).values_list("status", flat=True)) == {"cancelled"}
    assert cycle1.filter(number__lt=dose.number, status__in=["given", "held"]).count() == dose.number - 1
    assert not Dose.objects.filter(course=course, cycle=2).exclude(status="scheduled").exists()  # cycle 2 untouched
    signature = decision.signature
    assert signature.meaning == decisions.MEANING_CYCLE_STOP
    assert signature.printed_name == "Dr Olga Oncologist" and signature.signed_at == NOW
    assert signature.record_hash == record_hash(signed_records.record_cycle_decision(decision))
    event = AuditEvent.objects.get(action="cycle.decide")
    assert event.new["cancelled"] == 14 - dose.number + 1 and event.reason == "HR 135 despite fluids"


def test_cycle_continue_keeps_the_calendar_and_the_stop_slot_stays_unoverridable(patient_a, staff):
    course, dose = stop_flagged(patient_a, staff)
    decisions.cycle_decide(
        dose_id=dose.pk, choice="continue", reason="Rate controlled", password=PASSWORD, by=staff.oncologist, now=NOW
    )
    assert not Dose.objects.filter(course=course, status="cancelled").exists()
    with pytest.raises(Conflict) as exc:  # HOLD-RULES §3: a stop is never overridden for its slot
        services.dose_override(dose_id=dose.pk, reason="x", password=PASSWORD, by=staff.oncologist, now=NOW)
    assert exc.value.code == "stop_criteria_met"


def test_cycle_decision_with_a_wrong_password_stores_nothing(patient_a, staff):
    course, dose = stop_flagged(patient_a, staff)
    signatures = Signature.objects.count()
    with pytest.raises(Invalid) as exc:
        decisions.cycle_decide(
            dose_id=dose.pk, choice="stop", reason="r", password="nope", by=staff.oncologist, now=NOW
        )
    assert "password" in exc.value.errors
    assert not CycleDecision.objects.exists() and Signature.objects.count() == signatures
    assert not Dose.objects.filter(course=course, status="cancelled").exists()


def test_cycle_decision_needs_a_stop_recommendation_and_is_made_once(patient_a, staff):
    course = build_course(patient_a, staff, charted=4)
    hold = flag_next(course, staff, now=NOW, sbp=85)
    with pytest.raises(Conflict) as exc:
        decisions.cycle_decide(
            dose_id=hold.pk, choice="stop", reason="r", password=PASSWORD, by=staff.oncologist, now=NOW
        )
    assert exc.value.code == "no_stop_recommendation"
    dose = flag_next(course, staff, now=NOW + timedelta(minutes=20), heart_rate=135)
    decisions.cycle_decide(
        dose_id=dose.pk, choice="continue", reason="r", password=PASSWORD, by=staff.oncologist, now=NOW
    )
    with pytest.raises(Conflict) as exc:
        decisions.cycle_decide(
            dose_id=dose.pk, choice="stop", reason="r", password=PASSWORD, by=staff.oncologist, now=NOW
        )
    assert exc.value.code == "already_decided"


@pytest.mark.parametrize("field,kwargs", [("choice", {"choice": "pause"}), ("reason", {"reason": "  "})])
def test_cycle_decision_bad_input_names_the_field(patient_a, staff, field, kwargs):
    _, dose = stop_flagged(patient_a, staff)
    values = {"choice": "stop", "reason": "r", **kwargs}
    with pytest.raises(Invalid) as exc:
        decisions.cycle_decide(dose_id=dose.pk, password=PASSWORD, by=staff.oncologist, now=NOW, **values)
    assert field in exc.value.errors and not CycleDecision.objects.exists()


# --- Move cycle 2 (SCH-CYCLE2) ----------------------------------------------------------------------------------------


def test_cycle2_moves_to_the_earliest_allowed_start_and_its_slots_follow(make_course, patient_a, oncologist):
    course = make_course(patient_a)  # first dose Fri 12 Mar 2027 16:00 CST; the US clocks go forward on 14 Mar
    zone = patient_a.ward.zone
    last1 = Dose.objects.get(course=course, cycle=1, number=14).due_at
    earliest = calendar.earliest_cycle2_start(last1, zone=zone)
    assert earliest.astimezone(zone).strftime("%a %d %b %H:%M %Z") == "Fri 26 Mar 01:00 CDT"
    moved = decisions.cycle2_move(
        course_id=course.pk, first_at=earliest, reason="Rest longer", password=PASSWORD, by=oncologist, now=NOW
    )
    assert moved.cycle2_first_at == earliest
    due = list(Dose.objects.filter(course=course, cycle=2).order_by("number").values_list("due_at", flat=True))
    assert due == [earliest + k * timedelta(hours=8) for k in range(14)]
    sig = Signature.objects.get(meaning=decisions.MEANING_CYCLE2_MOVE)
    assert sig.record_hash == record_hash(signed_records.record_cycle2(moved))
    event = AuditEvent.objects.get(action="course.cycle2_move")
    assert (
        event.old == {"cycle2_first_at": "2027-03-26T21:00:00Z"}
        and event.new["cycle2_first_at"] == "2027-03-26T06:00:00Z"
    )


def test_cycle2_one_minute_before_nine_rest_days_is_refused_naming_the_field(make_course, patient_a, oncologist):
    course = make_course(patient_a)
    last1 = Dose.objects.get(course=course, cycle=1, number=14).due_at
    too_early = calendar.earliest_cycle2_start(last1, zone=patient_a.ward.zone) - timedelta(minutes=1)
    before = list(Dose.objects.filter(course=course, cycle=2).values_list("due_at", flat=True))
    with pytest.raises(Invalid) as exc:
        decisions.cycle2_move(
            course_id=course.pk, first_at=too_early, reason="r", password=PASSWORD, by=oncologist, now=NOW
        )
    assert "SCH-CYCLE2" in exc.value.errors["first_at"][0]
    assert list(Dose.objects.filter(course=course, cycle=2).values_list("due_at", flat=True)) == before
    assert not Signature.objects.filter(meaning=decisions.MEANING_CYCLE2_MOVE).exists()


def test_cycle2_cannot_move_once_it_has_started(make_course, patient_a, oncologist):
    course = make_course(patient_a)
    Dose.objects.filter(course=course, cycle=2, number=1).update(status=Dose.Status.HELD)
    with pytest.raises(Conflict) as exc:
        decisions.cycle2_move(
            course_id=course.pk,
            first_at=course.cycle2_first_at + timedelta(days=2),
            reason="r",
            password=PASSWORD,
            by=oncologist,
            now=NOW,
        )
    assert exc.value.code == "cycle2_started"


# --- Discharge, response ----------------------------------------------------------------------------------------------


def test_discharge_date_is_signed_audited_and_checked(make_course, patient_a, oncologist):
    course = make_course(patient_a, first_dose_at=datetime(2027, 1, 4, 15, 0, tzinfo=UTC))
    now = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    for bad in (date(2027, 2, 2), date(2027, 1, 3)):  # future; before the first dose
        with pytest.raises(Invalid) as exc:
            decisions.course_discharge(
                course_id=course.pk, discharge_date=bad, password=PASSWORD, by=oncologist, now=now
            )
        assert "discharge_date" in exc.value.errors
    decisions.course_discharge(
        course_id=course.pk, discharge_date=date(2027, 1, 30), password=PASSWORD, by=oncologist, now=now
    )
    course.refresh_from_db()
    assert course.discharge_date == date(2027, 1, 30)
    assert AuditEvent.objects.get(action="course.discharge").new["discharge_date"] == "2027-01-30"
    assert Signature.objects.get(meaning=decisions.MEANING_DISCHARGE).record_hash == record_hash(
        signed_records.record_discharge(course)
    )


def test_response_assessment_waits_for_the_end_of_the_course(make_course, patient_a, oncologist):
    course = make_course(patient_a)
    later = NOW + timedelta(days=40)
    with pytest.raises(Conflict) as exc:
        decisions.response_assess(
            course_id=course.pk, assessed_on=later.date(), response="PR", password=PASSWORD, by=oncologist, now=later
        )
    assert exc.value.code == "course_not_finished"
    services.course_stop(course_id=course.pk, reason="Toxicity", password=PASSWORD, by=oncologist, now=NOW)
    assessment = decisions.response_assess(
        course_id=course.pk,
        assessed_on=later.date(),
        response="PR",
        note="CT: 40 % smaller",
        password=PASSWORD,
        by=oncologist,
        now=later,
    )
    assert assessment.signature.meaning == decisions.MEANING_RESPONSE
    assert ResponseAssessment.objects.get().note == "CT: 40 % smaller"
    with pytest.raises(Invalid) as exc:
        decisions.response_assess(
            course_id=course.pk, assessed_on=later.date(), response="XX", password=PASSWORD, by=oncologist, now=later
        )
    assert "response" in exc.value.errors


# --- Adverse events ---------------------------------------------------------------------------------------------------


def test_adverse_event_is_linked_to_the_doses_it_caused_to_be_held(patient_a, staff):
    course = build_course(patient_a, staff, charted=6, abnormal={4: {"sbp": 84}})
    held = Dose.objects.get(course=course, status="held")
    event = decisions.adverse_event_record(
        course_id=course.pk,
        category="cardiovascular",
        term="Hypotension",
        grade=2,
        onset_at=held.due_at - timedelta(hours=1),
        held_dose_ids=[held.pk],
        by=staff.oncologist,
        now=NOW,
    )
    assert list(event.held_doses.all()) == [held]
    assert AuditEvent.objects.get(action="adverse_event.record").new["held_doses"] == [held.pk]
    decisions.adverse_event_enter_in_error(event_id=event.pk, reason="Wrong patient", by=staff.oncologist, now=NOW)
    assert AdverseEvent.objects.get(pk=event.pk).entered_in_error_at == NOW  # kept, marked


@pytest.mark.parametrize(
    "field,changes",
    [
        ("held_doses", {"held_dose_ids": "given"}),
        ("grade", {"grade": 6}),
        ("category", {"category": "general"}),
        ("term", {"term": " "}),
        ("onset_at", {"onset_at": NOW + timedelta(hours=1)}),
    ],
)
def test_adverse_event_bad_input_names_the_field_and_stores_nothing(patient_a, staff, field, changes):
    course = build_course(patient_a, staff, charted=3)
    given = Dose.objects.filter(course=course, status="given").first()
    values = {"category": "renal", "term": "Acute kidney injury", "grade": 2, "onset_at": NOW - timedelta(hours=2)}
    values.update(changes)
    if values.get("held_dose_ids") == "given":
        values["held_dose_ids"] = [given.pk]  # not a held dose
    with pytest.raises(Invalid) as exc:
        decisions.adverse_event_record(course_id=course.pk, by=staff.oncologist, now=NOW, **values)
    assert field in exc.value.errors and not AdverseEvent.objects.exists()


# --- SCH-RETREAT ------------------------------------------------------------------------------------------------------


@pytest.fixture
def finished(make_course, patient_a, oncologist):
    """A course in January, stopped, discharged on Sat 30 Jan 2027."""
    course = make_course(patient_a, first_dose_at=datetime(2027, 1, 4, 15, 0, tzinfo=UTC))
    services.course_stop(course_id=course.pk, reason="Done", password=PASSWORD, by=oncologist, now=NOW)
    Course.objects.filter(pk=course.pk).update(discharge_date=date(2027, 1, 30))
    return course


def local(y, m, d, hh, mm, zone):
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(zone))


def test_retreatment_without_an_earlier_course_is_allowed(patient_a):
    assert course_retreatment_check(patient_a, NOW, NOW) == (True, None, [])


def test_retreatment_counts_49_days_from_discharge_in_ward_local_dates(finished, patient_a):
    earliest = date(2027, 3, 20)  # 30 Jan + 49 days
    # 23:30 on 19 Mar in Chicago is already 20 Mar in UTC: still a day too early on the ward's calendar.
    allowed, when, reasons = course_retreatment_check(patient_a, local(2027, 3, 19, 23, 30, "America/Chicago"), NOW)
    assert (allowed, when) == (False, earliest) and "SCH-RETREAT" in reasons[0]
    assert course_retreatment_check(patient_a, local(2027, 3, 20, 0, 30, "America/Chicago"), NOW) == (
        True,
        earliest,
        [],
    )


def test_retreatment_needs_the_earlier_course_closed_and_discharged(make_course, patient_a, oncologist):
    course = make_course(patient_a)
    allowed, _, reasons = course_retreatment_check(patient_a, NOW + timedelta(days=200), NOW)
    assert not allowed and "still open" in reasons[0]
    services.course_stop(course_id=course.pk, reason="Done", password=PASSWORD, by=oncologist, now=NOW)
    allowed, earliest, reasons = course_retreatment_check(patient_a, NOW + timedelta(days=200), NOW)
    assert (allowed, earliest) == (False, None) and "no discharge date" in reasons[0]


def test_a_retreatment_bar_blocks_every_later_course_for_good(finished, patient_a):
    RetreatmentBar.objects.create(course=finished, kind="sustained_vt", source="vitals:1", at=NOW)
    allowed, earliest, reasons = course_retreatment_check(patient_a, NOW + timedelta(days=400), NOW)
    assert (allowed, earliest) == (False, None)
    assert any("sustained_vt" in r for r in reasons)


def test_course_create_refuses_a_barred_retreatment(finished, patient_a, oncologist):
    RetreatmentBar.objects.create(course=finished, kind="seizures", source="event:1", at=NOW)
    with pytest.raises(Conflict) as exc:
        services.course_create(
            patient=patient_a,
            first_dose_at=NOW + timedelta(days=300),
            dosing_weight_kg=finished.dosing_weight_kg,
            by=oncologist,
            now=NOW,
        )
    assert exc.value.code == "retreatment_blocked"


def test_course_create_refuses_a_retreatment_too_soon_after_discharge(finished, patient_a, oncologist):
    """services.course_create enforces SCH-RETREAT (409 retreatment_blocked); course_retreatment_check agrees."""
    first = local(2027, 3, 19, 16, 0, "America/Chicago")
    assert course_retreatment_check(patient_a, first, NOW)[0] is False
    with pytest.raises(Conflict) as exc:
        services.course_create(
            patient=patient_a, first_dose_at=first, dosing_weight_kg=finished.dosing_weight_kg, by=oncologist, now=NOW
        )
    assert exc.value.code == "retreatment_blocked"
