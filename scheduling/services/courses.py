"""Writes for courses: creation, calendar, status, eligibility and stop; one function per state change, audited."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from il2ward.audit import audit, sign
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient, Signature
from il2ward.notifications import notifications_resolve
from il2ward.tasking import enqueue_on_commit, send_task_safely
from monitoring import plausibility
from monitoring.domain.bounds import WEIGHT_KG
from monitoring.models import LabResult
from monitoring.services import rule_set_current
from scheduling.domain import calendar, dosing, progress
from scheduling.domain.eligibility import ELIGIBILITY_CREATININE_HOURS, ELIGIBILITY_CREATININE_MAX, ELIGIBILITY_ITEMS
from scheduling.models import Course, Dose, RetreatmentBar
from scheduling.selectors.courses import course_retreatment_check
from scheduling.services import isolation
from scheduling.services.reminders import DOSE_WORK
from scheduling.task_names import GENERATE_CALENDAR

COURSE_START_PAST = timedelta(days=1)
COURSE_START_AHEAD = timedelta(days=365)


@retry_transaction
@transaction.atomic
def course_create(
    *,
    patient: Patient,
    first_dose_at: datetime,
    dosing_weight_kg: Decimal,
    dosing_weight_source: str = Course.WeightSource.ACTUAL,
    baseline_weight_kg: Decimal | None = None,
    rule_set_name: str | None = None,
    confirm: bool = False,
    confirm_reason: str = "",
    by,
    now: datetime,
) -> Course:
    """Create a course (status `scheduling`); its calendar is written by a Celery task after commit.

    A dosing or baseline weight more than 10 % from the latest weight measured in the last 7 days is refused unless
    confirmed with a reason (HOLD-RULES §3a INV-PLAUSIBLE: the dose is 600,000 IU per kg of it)."""
    if first_dose_at.tzinfo is None:
        raise Invalid({"first_dose_at": ["Give the time with its UTC offset."]})
    # A course starting years ago would be born with every slot missed (and alert on each); year 9999 overflows.
    if not now - COURSE_START_PAST <= first_dose_at <= now + COURSE_START_AHEAD:
        raise Invalid({"first_dose_at": ["Must be no more than 1 day in the past and no more than 1 year ahead."]})
    for field, weight in (("dosing_weight_kg", dosing_weight_kg), ("baseline_weight_kg", baseline_weight_kg)):
        if weight is not None and not Decimal(WEIGHT_KG.low) <= weight <= Decimal(WEIGHT_KG.high):
            raise Invalid({field: [f"Weight must be between {WEIGHT_KG.low} and {WEIGHT_KG.high} kg."]})
    confirmed_reason = _course_weights_plausible(
        patient,
        {"dosing_weight_kg": dosing_weight_kg, "baseline_weight_kg": baseline_weight_kg},
        confirm=confirm,
        reason=confirm_reason,
        now=now,
    )
    # Serialise course creation per patient. Lock order and NO KEY UPDATE: il2ward.db.
    Patient.objects.select_for_update(of=("self",), no_key=True).get(pk=patient.pk)
    if Course.objects.filter(patient=patient, status__in=Course.OPEN_STATUSES).exists():
        raise Conflict("active_course_exists", "This patient already has an open course.")
    zone = patient.ward.zone
    first_utc = first_dose_at.astimezone(calendar.UTC)
    allowed, _, reasons = course_retreatment_check(patient, first_utc, now)
    if not allowed:
        raise Conflict("retreatment_blocked", " ".join(reasons))
    rule_set = rule_set_current(rule_set_name or settings.IL2WARD_DEFAULT_RULE_SET, now=now)
    dose_iu = dosing.dose_iu(dosing_weight_kg, iu_per_kg=settings.IL2WARD_DOSE_IU_PER_KG)
    try:
        with transaction.atomic():
            course = Course.objects.create(
                patient=patient,
                status=Course.Status.SCHEDULING,
                dosing_weight_kg=dosing_weight_kg,
                dosing_weight_source=dosing_weight_source,
                baseline_weight_kg=baseline_weight_kg if baseline_weight_kg is not None else dosing_weight_kg,
                dose_iu=dose_iu,
                first_dose_at=first_utc,
                cycle2_first_at=calendar.cycle2_default_start(first_utc, zone=zone),
                rule_set=rule_set,
                oncologist=by,
                weight_confirmed_reason=confirmed_reason,
                created_at=now,
            )
    except IntegrityError as exc:  # the partial unique index caught a concurrent create
        raise Conflict("active_course_exists", "This patient already has an open course.") from exc
    audit(
        actor=by,
        action="course.create",
        obj=course,
        at=now,
        new={
            "patient": patient.pk,
            "first_dose_at": first_utc,
            "dosing_weight_kg": dosing_weight_kg,
            "dosing_weight_source": dosing_weight_source,
            "baseline_weight_kg": course.baseline_weight_kg,
            "dose_iu": dose_iu,
            "rule_set": str(rule_set),
            "weight_confirmed_reason": confirmed_reason,
        },
    )
    enqueue_on_commit(GENERATE_CALENDAR, course.pk)
    return course


def _course_weights_plausible(patient, weights: dict, *, confirm: bool, reason: str, now: datetime) -> str:
    """INV-PLAUSIBLE for a course's weights against the latest weight measured in the last 7 days: the confirmation
    reason to store ("" when nothing needed confirming); Invalid naming each implausible field otherwise."""
    measured = plausibility.latest_weight_kg(patient, at=now, within=plausibility.bound("COURSE_WEIGHT_LOOKBACK"))
    if measured is None:
        return ""
    errors = {
        field: [message]
        for field, weight in weights.items()
        if weight is not None and (message := plausibility.course_weight_message(weight, measured))
    }
    if not errors:
        return ""
    reason = (reason or "").strip()
    if confirm and reason:
        return reason
    if confirm:
        raise Invalid({"confirm_reason": ["Say why the weight is right."]}, confirmable=set(errors))
    raise Invalid(errors, confirmable=set(errors))


def course_materialise_calendar(*, course_id: int, now: datetime) -> int:
    """Write the course's slots (SCH-SLOTS, SCH-CYCLE2) in one bulk insert. Idempotent: returns slots written."""
    with transaction.atomic():
        course = (
            Course.objects.select_for_update(of=("self",), no_key=True)
            .select_related("patient__ward")
            .filter(pk=course_id)
            .first()
        )
        if course is None or course.status != Course.Status.SCHEDULING:
            return 0
        slots = calendar.course_slots(
            course.first_dose_at, zone=course.patient.ward.zone, cycle2_first_at=course.cycle2_first_at
        )
        Dose.objects.bulk_create(
            [Dose(course=course, cycle=s.cycle, number=s.number, due_at=s.due_at) for s in slots],
            ignore_conflicts=True,  # unique(course, cycle, number): a repeat writes nothing
        )
        Course.objects.filter(pk=course.pk).update(status=Course.Status.PLANNED, scheduled_at=now)
        audit(
            actor=None,
            action="course.schedule",
            obj=course,
            at=now,
            old={"status": Course.Status.SCHEDULING},
            new={"status": Course.Status.PLANNED, "slots": len(slots)},
        )
        return len(slots)


def courses_pickup_unscheduled(*, now: datetime, limit: int = 200) -> list[int]:
    """Sweep: re-enqueue the calendar task for courses still `scheduling` after a minute (its message was lost)."""
    cutoff = now - timedelta(seconds=settings.IL2WARD_SCHEDULING_PICKUP_SECONDS)
    ids = list(
        Course.objects.filter(status=Course.Status.SCHEDULING, created_at__lt=cutoff).values_list("pk", flat=True)[
            :limit
        ]
    )
    for course_id in ids:
        send_task_safely(GENERATE_CALENDAR, course_id)
    return ids


def courses_advance_status(*, now: datetime) -> int:
    """Sweep: planned → active → rest → active → completed, at the window edges of each cycle.

    A course is active from the opening of its first slot's window in a cycle until the window of that cycle's last
    slot closes, then rest (after cycle 1) or completed (after cycle 2). A cycle's first and last slots follow from
    the course's own fields (SCH-SLOTS: 14 slots, 8 h elapsed), so the query picks only the courses at an edge:
    a quiet sweep reads no rows, whatever the number of courses.
    """
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    span = calendar.CYCLE_SPAN
    S = Course.Status
    due = Course.objects.filter(
        Q(status=S.PLANNED, first_dose_at__lte=now + window)
        | Q(status=S.ACTIVE, first_dose_at__lt=now - span - window, cycle2_first_at__gt=now + window)
        | Q(status=S.ACTIVE, cycle2_first_at__lt=now - span - window)
        | Q(status=S.REST, cycle2_first_at__lte=now + window)
    ).values_list("pk", "first_dose_at", "cycle2_first_at")
    targets: dict[str, list[int]] = {}
    for course_id, first, second in due:
        cycles = {1: (first, first + span), 2: (second, second + span)}
        targets.setdefault(progress.course_phase(cycles, now=now, window=window), []).append(course_id)
    moves: list[tuple[int, str, str]] = []  # (course, from, to)
    for status, ids in targets.items():
        movable = Course.objects.filter(
            pk__in=ids, status__in=[Course.Status.PLANNED, Course.Status.ACTIVE, Course.Status.REST]
        ).exclude(status=status)
        moves += [(course_id, old, status) for course_id, old in movable.values_list("pk", "status")]
    done = isolation.each_alone(
        moves, lambda move: _course_set_status(*move, now=now), name=lambda move: f"course {move[0]}"
    )
    return sum(done)


def _course_set_status(course_id: int, old: str, new: str, *, now: datetime) -> int:
    """One course's status change and its audit row, in a transaction of their own (a failing one is pushed back,
    isolation): 1 if it changed."""
    with transaction.atomic():
        if Course.objects.filter(pk=course_id, status=old).update(status=new) != 1:
            return 0
        audit(
            actor=None,
            action="course.status",
            obj=("scheduling.course", course_id),
            at=now,
            old={"status": old},
            new={"status": new},
        )
    return 1


# --- Eligibility, stop ---------------------------------------------------------------------------------------------


@retry_transaction
@transaction.atomic
def course_attest_eligibility(*, course_id: int, items: dict, password: str, by, now: datetime) -> Course:
    """HOLD-RULES §2: every checklist item true, no earlier retreatment bar, creatinine ≤ 1.5 within 72 h; e-signed."""
    # Only the course row, NO KEY UPDATE: vitals committed meanwhile need KEY SHARE on the patient (il2ward.db).
    course = Course.objects.select_for_update(of=("self",), no_key=True).select_related("patient").get(pk=course_id)
    if course.eligibility_attested:
        raise Conflict("already_attested", "Eligibility for this course is already attested.")
    if course.status not in Course.OPEN_STATUSES:
        raise Conflict("course_not_active", "The course is not open.")
    unknown = sorted(set(items) - set(ELIGIBILITY_ITEMS))
    if unknown:
        raise Invalid({"items": [f"Unknown checklist item(s): {', '.join(unknown)}"]})
    missing = [key for key in ELIGIBILITY_ITEMS if items.get(key) is not True]
    if missing:
        raise Invalid({"items": [f"Every item must be confirmed; not confirmed: {', '.join(missing)}"]})
    if _barred(course.patient_id, exclude_course=course.pk):
        raise Conflict("retreatment_blocked", "An earlier course recorded a retreatment-bar event (SCH-RETREAT).")
    creatinine = (
        LabResult.objects.filter(
            patient_id=course.patient_id,
            creatinine_mg_dl__isnull=False,
            entered_in_error_at__isnull=True,
            recorded_at__gte=now - timedelta(hours=ELIGIBILITY_CREATININE_HOURS),
            recorded_at__lte=now,
        )
        .order_by("-recorded_at", "-pk")
        .values_list("creatinine_mg_dl", flat=True)
        .first()
    )
    if creatinine is None:
        raise Conflict("baseline_creatinine_missing", "No serum creatinine in the last 72 h.")
    if creatinine > ELIGIBILITY_CREATININE_MAX:
        raise Conflict("baseline_creatinine_high", f"Serum creatinine {creatinine} mg/dL is above 1.5 mg/dL.")
    record = {"course": course.pk, "patient": course.patient_id, "items": items, "creatinine_mg_dl": creatinine}
    signature = sign(
        signer=by,
        password=password,
        meaning=Signature.Meaning.ELIGIBILITY,
        obj=course,
        record=record,
        at=now,
    )
    course.eligibility_items = items
    course.eligibility_signature = signature
    course.save(update_fields=["eligibility_items", "eligibility_signature"])
    audit(actor=by, action="course.attest_eligibility", obj=course, at=now, new=record)
    return course


@retry_transaction
@transaction.atomic
def course_stop(*, course_id: int, reason: str, password: str, by, now: datetime) -> Course:
    """Stop the course (e-signed): every open slot becomes cancelled."""
    course = Course.objects.select_for_update(of=("self",), no_key=True).get(pk=course_id)
    if course.status not in Course.OPEN_STATUSES:
        raise Conflict("course_not_active", "The course is already completed or stopped.")
    if not reason.strip():
        raise Invalid({"reason": ["Give the reason for stopping."]})
    signature = sign(
        signer=by,
        password=password,
        meaning=Signature.Meaning.COURSE_STOP,
        obj=course,
        record={"course": course.pk, "reason": reason},
        at=now,
    )
    cancelled = Dose.objects.filter(course=course, status=Dose.Status.SCHEDULED).update(
        status=Dose.Status.CANCELLED, status_changed_at=now
    )
    notifications_resolve(course_id=course.pk, kinds=DOSE_WORK, reason="course stopped", by=by, now=now)
    old = course.status
    course.status, course.stop_reason = Course.Status.STOPPED, reason
    course.save(update_fields=["status", "stop_reason"])
    audit(
        actor=by,
        action="course.stop",
        obj=course,
        at=now,
        old={"status": old},
        new={"status": course.status, "cancelled": cancelled, "signature": signature.pk},
        reason=reason,
    )
    return course


def _barred(patient_id: int, *, exclude_course: int | None = None) -> bool:
    bars = RetreatmentBar.objects.filter(course__patient_id=patient_id)
    if exclude_course is not None:
        bars = bars.exclude(course_id=exclude_course)
    return bars.exists()
