"""Writes for courses and doses: one function per state change, each audited, side effects after commit."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min

from il2ward.audit import audit
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient
from il2ward.tasking import enqueue_on_commit, send_task_safely
from monitoring.services import rule_set_current
from scheduling.domain import calendar, dosing, progress
from scheduling.models import Course, Dose

WEIGHT_RANGE_KG = (Decimal(20), Decimal(350))


@transaction.atomic
def course_create(
    *,
    patient: Patient,
    first_dose_at: datetime,
    dosing_weight_kg: Decimal,
    dosing_weight_source: str = Course.WeightSource.ACTUAL,
    baseline_weight_kg: Decimal | None = None,
    rule_set_name: str | None = None,
    by,
    now: datetime,
) -> Course:
    """Create a course (status `scheduling`); its calendar is written by a Celery task after commit."""
    if first_dose_at.tzinfo is None:
        raise Invalid({"first_dose_at": ["Give the time with its UTC offset."]})
    for field, weight in (("dosing_weight_kg", dosing_weight_kg), ("baseline_weight_kg", baseline_weight_kg)):
        if weight is not None and not WEIGHT_RANGE_KG[0] <= weight <= WEIGHT_RANGE_KG[1]:
            raise Invalid({field: ["Weight must be between 20 and 350 kg."]})
    Patient.objects.select_for_update().get(pk=patient.pk)  # serialise course creation per patient
    if Course.objects.filter(patient=patient, status__in=Course.OPEN_STATUSES).exists():
        raise Conflict("active_course_exists", "This patient already has an open course.")
    rule_set = rule_set_current(rule_set_name or settings.IL2WARD_DEFAULT_RULE_SET, now=now)
    zone = patient.ward.zone
    first_utc = first_dose_at.astimezone(calendar.UTC)
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
        },
    )
    enqueue_on_commit("scheduling.generate_calendar", course.pk)
    return course


def course_materialise_calendar(*, course_id: int, now: datetime) -> int:
    """Write the course's slots (SCH-SLOTS, SCH-CYCLE2) in one bulk insert. Idempotent: returns slots written."""
    with transaction.atomic():
        course = Course.objects.select_for_update().select_related("patient__ward").get(pk=course_id)
        if course.status != Course.Status.SCHEDULING:
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
        send_task_safely("scheduling.generate_calendar", course_id)
    return ids


def courses_advance_status(*, now: datetime) -> int:
    """Sweep: planned → active → rest → active → completed, from the slots' due times and the window.

    A course is active from the opening of its first slot's window in a cycle until the window of that cycle's last
    slot closes, then rest (after cycle 1) or completed (after cycle 2). Set-based: a constant number of queries.
    """
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    bounds = (
        Dose.objects.filter(course__status__in=[Course.Status.PLANNED, Course.Status.ACTIVE, Course.Status.REST])
        .values("course_id", "cycle")
        .annotate(first=Min("due_at"), last=Max("due_at"))
    )
    by_course: dict[int, dict[int, tuple[datetime, datetime]]] = {}
    for row in bounds:
        by_course.setdefault(row["course_id"], {})[row["cycle"]] = (row["first"], row["last"])
    targets: dict[str, list[int]] = {}
    for course_id, cycles in by_course.items():
        targets.setdefault(progress.course_phase(cycles, now=now, window=window), []).append(course_id)
    changed = 0
    for status, ids in targets.items():
        movable = Course.objects.filter(
            pk__in=ids, status__in=[Course.Status.PLANNED, Course.Status.ACTIVE, Course.Status.REST]
        ).exclude(status=status)
        for course_id, old in movable.values_list("pk", "status"):
            if Course.objects.filter(pk=course_id, status=old).update(status=status) == 1:
                changed += 1
                audit(
                    actor=None,
                    action="course.status",
                    obj=("scheduling.course", course_id),
                    at=now,
                    old={"status": old},
                    new={"status": status},
                )
    return changed
