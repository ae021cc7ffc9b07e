"""The oncologist's decisions on a course: cycle decisions, cycle 2, discharge, response, adverse events.

Each decision is one service: `@transaction.atomic`, keyword-only, validate → e-sign (password re-entered,
`il2ward.audit.sign`) → write → `audit()`. What is signed is a small record; the `record_*` functions below build it,
both when signing and when the course page rebuilds it later to show a record "changed after signing".

Eligibility attestation, hold override and stopping the course are in courses.py and doses.py; SCH-RETREAT's check is
a read (selectors/courses.py); the signed records are pure (domain/signed_records.py).
"""

from datetime import date, datetime

from django.conf import settings
from django.db import transaction

from il2ward.audit import audit, sign
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from scheduling.domain import calendar
from scheduling.domain.aware import as_utc
from scheduling.domain.signed_records import (
    iso_utc,
    local_date,
    record_cycle2,
    record_cycle_decision,
    record_discharge,
    record_response,
)
from scheduling.models import AdverseEvent, Course, CycleDecision, Dose, DoseEvaluation, ResponseAssessment

# Signature meanings: shown on screen and in print, and how the review page tells what a signature signed.
MEANING_CYCLE_CONTINUE = "Cycle continued after a stop recommendation"
MEANING_CYCLE_STOP = "Cycle stopped after a stop recommendation"
MEANING_CYCLE2_MOVE = "Cycle 2 start moved"
MEANING_DISCHARGE = "Discharge date recorded"
MEANING_RESPONSE = "Response assessment recorded"


# --- Services ---------------------------------------------------------------------------------------------------------


def _locked_course(course_id: int) -> Course:
    try:
        # FOR NO KEY UPDATE, the parent-row lock of il2ward.db's lock order (patient → course → dose → audit chain).
        return (
            Course.objects.select_for_update(of=("self",), no_key=True)
            .select_related("patient__ward")
            .get(pk=course_id)
        )
    except Course.DoesNotExist as exc:
        raise Invalid({"course": ["No such course."]}) from exc


def _reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({field: ["Give the reason."]})
    return reason


@retry_transaction
@transaction.atomic
def cycle_decide(*, dose_id: int, choice: str, reason: str, password: str, by, now: datetime) -> CycleDecision:
    """After a `stop` recommendation the oncologist continues or stops the cycle (HOLD-RULES §3), e-signed.

    "stop" cancels the cycle's remaining open slots (the recommending slot too, if still open); "continue" leaves the
    calendar as it is and applies from the next slot, evaluated afresh: the recommending slot itself is never given
    (HOLD-RULES §3a INV-STOP).
    """
    if choice not in CycleDecision.Choice.values:
        raise Invalid({"choice": [f"Choose one of: {', '.join(CycleDecision.Choice.values)}."]})
    reason = _reason(reason)
    found = Dose.objects.filter(pk=dose_id).values_list("course_id", "cycle").first()
    if found is None:
        raise Invalid({"dose": ["No such dose."]})
    course_id, cycle = found
    # The course before its doses (il2ward.db's lock order): one decision at a time per course. Every slot of the
    # cycle is locked now, before the signature takes the audit chain's lock, because "stop" cancels them after it.
    course = Course.objects.select_for_update(of=("self",), no_key=True).get(pk=course_id)
    list(
        Dose.objects.select_for_update(of=("self",), no_key=True)
        .filter(course_id=course_id, cycle=cycle)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    dose = (
        Dose.objects.select_for_update(of=("self",), no_key=True)
        .select_related("course", "latest_evaluation")
        .get(pk=dose_id)
    )
    # The recommendation stands once made (INV-STOP), even when a later evaluation of the slot says otherwise.
    evaluation = (
        DoseEvaluation.objects.filter(dose=dose, decision=DoseEvaluation.Decision.STOP).order_by("-evaluated_at", "-pk")
    ).first()
    if evaluation is None:
        raise Conflict("no_stop_recommendation", "This dose has no stop recommendation to decide on.")
    if course.status not in Course.OPEN_STATUSES:
        raise Conflict("course_not_active", "The course is already completed or stopped.")
    if course.discontinued_at is not None and choice == CycleDecision.Choice.CONTINUE:
        # INV-DISC: "continue" never lifts a discontinue finding; the oncologist's one action is to stop the course.
        raise Conflict("course_discontinued", "A discontinue finding blocks the rest of this course: stop the course.")
    if CycleDecision.objects.filter(dose=dose).exists():
        raise Conflict("already_decided", "The cycle decision for this stop recommendation is already recorded.")
    decision = CycleDecision(
        course=course, cycle=dose.cycle, dose=dose, evaluation=evaluation, choice=choice, reason=reason, by=by, at=now
    )
    meaning = MEANING_CYCLE_STOP if choice == CycleDecision.Choice.STOP else MEANING_CYCLE_CONTINUE
    decision.signature = sign(
        signer=by, password=password, meaning=meaning, obj=dose, record=record_cycle_decision(decision), at=now
    )
    decision.save()
    cancelled = 0
    if choice == CycleDecision.Choice.STOP:
        cancelled = Dose.objects.filter(course=course, cycle=dose.cycle, status=Dose.Status.SCHEDULED).update(
            status=Dose.Status.CANCELLED, status_changed_at=now
        )
    audit(
        actor=by,
        action="cycle.decide",
        obj=decision,
        at=now,
        new={
            "course": course.pk,
            "cycle": dose.cycle,
            "dose": dose.pk,
            "evaluation": evaluation.pk,
            "choice": choice,
            "cancelled": cancelled,
            "signature": decision.signature_id,
        },
        reason=reason,
    )
    return decision


@retry_transaction
@transaction.atomic
def cycle2_move(*, course_id: int, first_at: datetime, reason: str, password: str, by, now: datetime) -> Course:
    """Move cycle 2 (SCH-CYCLE2): not earlier than 9 full rest days after cycle 1's last slot; e-signed.

    The calendar is regenerated by moving the due times of cycle 2's slots, which must all still be scheduled; a
    slot's stale evaluation flag is cleared (the sweep evaluates it again in its new pre-dose window).
    """
    if first_at is None or first_at.tzinfo is None:
        raise Invalid({"first_at": ["Give the date and time of cycle 2's first dose."]})
    reason = _reason(reason)
    course = _locked_course(course_id)
    if course.status not in Course.OPEN_STATUSES:
        raise Conflict("course_not_active", "The course is already completed or stopped.")
    doses = list(Dose.objects.select_for_update(no_key=True).filter(course=course).order_by("cycle", "number"))
    cycle1 = [d for d in doses if d.cycle == 1]
    cycle2 = [d for d in doses if d.cycle == 2]
    if not cycle1 or not cycle2:
        raise Conflict("calendar_not_ready", "The course's calendar is not written yet.")
    if any(d.status != Dose.Status.SCHEDULED for d in cycle2):
        raise Conflict("cycle2_started", "Cycle 2 has started: its slots can no longer move.")
    zone = course.patient.ward.zone
    first_at = as_utc(first_at, "first_at")
    earliest = calendar.earliest_cycle2_start(
        cycle1[-1].due_at, zone=zone, min_rest_days=settings.IL2WARD_MIN_REST_DAYS
    )
    if first_at < earliest:
        raise Invalid(
            {
                "first_at": [
                    f"Cycle 2 may not start before {earliest.astimezone(zone):%a %d %b %Y %H:%M %Z} "
                    f"({settings.IL2WARD_MIN_REST_DAYS} full rest days after cycle 1, SCH-CYCLE2)."
                ]
            }
        )
    if first_at <= now:
        raise Invalid({"first_at": ["Cycle 2 cannot be moved into the past."]})
    if first_at == course.cycle2_first_at:
        raise Invalid({"first_at": ["Cycle 2 already starts then."]})
    old = {"cycle2_first_at": iso_utc(course.cycle2_first_at)}
    course.cycle2_first_at = first_at
    signature = sign(
        signer=by, password=password, meaning=MEANING_CYCLE2_MOVE, obj=course, record=record_cycle2(course), at=now
    )
    slots = {s.number: s.due_at for s in calendar.cycle_slots(first_at, cycle=2, per_cycle=len(cycle2))}
    for dose in cycle2:
        dose.due_at, dose.flag = slots[dose.number], Dose.Flag.NONE
    Dose.objects.bulk_update(cycle2, ["due_at", "flag"])
    course.save(update_fields=["cycle2_first_at"])
    audit(
        actor=by,
        action="course.cycle2_move",
        obj=course,
        at=now,
        old=old,
        new={**record_cycle2(course), "slots": len(cycle2), "signature": signature.pk},
        reason=reason,
    )
    return course


@retry_transaction
@transaction.atomic
def course_discharge(*, course_id: int, discharge_date: date, password: str, by, now: datetime) -> Course:
    """Record (or correct) the discharge date the retreatment interval counts from (SCH-RETREAT), e-signed."""
    if not isinstance(discharge_date, date) or isinstance(discharge_date, datetime):
        raise Invalid({"discharge_date": ["Give the discharge date."]})
    course = _locked_course(course_id)
    zone = course.patient.ward.zone
    if discharge_date < local_date(course.first_dose_at, zone):
        raise Invalid({"discharge_date": ["The discharge date is before the course's first dose."]})
    if discharge_date > local_date(now, zone):
        raise Invalid({"discharge_date": ["The discharge date is in the future."]})
    if discharge_date == course.discharge_date:
        raise Invalid({"discharge_date": ["This discharge date is already recorded."]})
    old = record_discharge(course)
    course.discharge_date = discharge_date
    signature = sign(
        signer=by, password=password, meaning=MEANING_DISCHARGE, obj=course, record=record_discharge(course), at=now
    )
    course.save(update_fields=["discharge_date"])
    audit(
        actor=by,
        action="course.discharge",
        obj=course,
        at=now,
        old=old,
        new={**record_discharge(course), "signature": signature.pk},
    )
    return course


@retry_transaction
@transaction.atomic
def response_assess(
    *, course_id: int, assessed_on: date, response: str, note: str = "", password: str, by, now: datetime
) -> ResponseAssessment:
    """The response assessment after a course (SCH-RETREAT: due ~28 days after it ends), e-signed."""
    course = _locked_course(course_id)
    errors = {}
    if response not in ResponseAssessment.Response.values:
        errors["response"] = [f"Choose one of: {', '.join(ResponseAssessment.Response.values)}."]
    zone = course.patient.ward.zone
    if not isinstance(assessed_on, date):
        errors["assessed_on"] = ["Give the date of the assessment."]
    elif assessed_on > local_date(now, zone):
        errors["assessed_on"] = ["The assessment date is in the future."]
    elif assessed_on < local_date(course.first_dose_at, zone):
        errors["assessed_on"] = ["The assessment date is before the course's first dose."]
    if errors:
        raise Invalid(errors)
    if course.status in Course.OPEN_STATUSES:
        raise Conflict("course_not_finished", "The response is assessed after the course has ended.")
    assessment = ResponseAssessment(
        course=course, assessed_on=assessed_on, response=response, note=(note or "").strip(), by=by, at=now
    )
    assessment.signature = sign(
        signer=by, password=password, meaning=MEANING_RESPONSE, obj=course, record=record_response(assessment), at=now
    )
    assessment.save()
    audit(
        actor=by,
        action="course.response_assess",
        obj=assessment,
        at=now,
        new={**record_response(assessment), "signature": assessment.signature_id},
    )
    return assessment


@retry_transaction
@transaction.atomic
def adverse_event_record(
    *,
    course_id: int,
    category: str,
    term: str,
    grade: int,
    onset_at: datetime,
    resolved_at: datetime | None = None,
    note: str = "",
    held_dose_ids=(),
    by,
    now: datetime,
) -> AdverseEvent:
    """Log an adverse event with its CTCAE term and grade, linked to the doses it caused to be held."""
    errors: dict[str, list[str]] = {}
    term = (term or "").strip()
    if category not in AdverseEvent.Category.values:
        errors["category"] = [f"Choose one of: {', '.join(AdverseEvent.Category.values)}."]
    if not term or len(term) > 200:
        errors["term"] = ["Give the CTCAE term (at most 200 characters)."]
    if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= 5:
        errors["grade"] = ["CTCAE grade 1 to 5."]
    if onset_at is None or onset_at.tzinfo is None:
        errors["onset_at"] = ["Give the onset time."]
    elif onset_at > now:
        errors["onset_at"] = ["The onset is in the future."]
    if resolved_at is not None:
        if resolved_at.tzinfo is None:
            errors["resolved_at"] = ["Give the time with its zone."]
        elif resolved_at > now:
            errors["resolved_at"] = ["The resolution is in the future."]
        elif "onset_at" not in errors and resolved_at < onset_at:
            errors["resolved_at"] = ["Resolved before its onset?"]
    if errors:
        raise Invalid(errors)
    course = _locked_course(course_id)
    ids = sorted({int(i) for i in held_dose_ids})
    held = list(Dose.objects.filter(course=course, pk__in=ids, status=Dose.Status.HELD))
    if len(held) != len(ids):
        raise Invalid({"held_doses": ["Link only held doses of this course."]})
    event = AdverseEvent.objects.create(
        course=course,
        category=category,
        term=term,
        grade=grade,
        onset_at=onset_at,
        resolved_at=resolved_at,
        note=(note or "").strip(),
        by=by,
        at=now,
    )
    event.held_doses.set(held)
    audit(
        actor=by,
        action="adverse_event.record",
        obj=event,
        at=now,
        new={
            "course": course.pk,
            "category": category,
            "term": term,
            "grade": grade,
            "onset_at": onset_at,
            "resolved_at": resolved_at,
            "held_doses": ids,
        },
        reason=event.note,
    )
    return event


@retry_transaction
@transaction.atomic
def adverse_event_enter_in_error(*, event_id: int, reason: str, by, now: datetime) -> AdverseEvent:
    """Mark an adverse event entered in error: it stays in the log, shown struck through (nothing is deleted)."""
    reason = _reason(reason)
    try:
        event = AdverseEvent.objects.select_for_update(no_key=True).get(pk=event_id)
    except AdverseEvent.DoesNotExist as exc:
        raise Invalid({"event": ["No such adverse event."]}) from exc
    if event.entered_in_error_at is not None:
        raise Conflict("already_entered_in_error", "This adverse event is already marked entered in error.")
    event.entered_in_error_at = now
    event.save(update_fields=["entered_in_error_at"])
    audit(
        actor=by,
        action="adverse_event.entered_in_error",
        obj=event,
        at=now,
        old={"entered_in_error_at": None},
        new={"entered_in_error_at": now},
        reason=reason,
    )
    return event
