"""What an export reads, loaded in a fixed number of queries whatever the course's size (tests pin the counts)."""

from datetime import timedelta

from django.db.models import Case, CharField, OuterRef, Q, Subquery, When
from django.db.models.functions import Cast
from django.http import Http404

from il2ward.models import AuditEvent, Signature
from monitoring.models import BedsideExam, FluidBalance, LabResult, NeuroAssessment, VitalSigns, WeightMeasurement
from scheduling import selectors
from scheduling.export.fhir import CourseRecord
from scheduling.export.ics import Slot
from scheduling.models import Administration, Course, Dose, Hold, Override

# Observations exported with a course: from 72 h before it was set up (the baseline labs that eligibility reads,
# HOLD-RULES §2) to a day after its last slot. Courses of one patient are at least 7 weeks apart (SCH-RETREAT).
LOOKBACK = timedelta(hours=72)
TAIL = timedelta(hours=24)
OBSERVATION_MODELS = {
    "vitals": VitalSigns,
    "neuro": NeuroAssessment,
    "exam": BedsideExam,
    "weights": WeightMeasurement,
    "fluids": FluidBalance,
    "labs": LabResult,
}


def export_course_for(user, course_id) -> Course:
    """The course if the user may see its patient (404 otherwise, like every other read): one query."""
    try:
        return (
            selectors.visible_courses(user)
            .select_related("patient", "rule_set", "oncologist__profile")
            .get(pk=course_id)
        )
    except (Course.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such course") from exc


def correction_hash(model, action: str) -> Case:
    """An annotation: the hash of the audit row that marked a row entered in error (il2ward/audit.py's chain), for
    its Provenance; null on rows never corrected. The CASE keeps the lookup (by the audit table's object index) to
    the corrected rows, inside the query that loads them: no query more."""
    row = AuditEvent.objects.filter(
        object_type=model._meta.label_lower,
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
        action=action,
    ).order_by("-pk")
    return Case(
        When(entered_in_error_at__isnull=False, then=Subquery(row.values("hash")[:1])),
        default=None,
        output_field=CharField(),
    )


def course_record(course: Course) -> CourseRecord:
    """Everything fhir.build_bundle reads, in 11 queries: doses, administrations, holds, overrides, signatures and
    the six observation tables."""
    doses = list(Dose.objects.filter(course=course).order_by("cycle", "number"))
    staff = ("given_by__profile", "verified_by__profile", "entered_in_error_by__profile", "evaluation__rule_set")
    administrations = list(
        Administration.objects.filter(dose__course=course)
        .select_related(*staff)
        .annotate(correction_hash=correction_hash(Administration, "administration.entered_in_error"))
        .order_by("started_at", "pk")
    )
    holds = list(
        Hold.objects.filter(dose__course=course)
        .select_related("by__profile", "evaluation__rule_set", "entered_in_error_by__profile")
        .annotate(correction_hash=correction_hash(Hold, "hold.entered_in_error"))
        .order_by("at", "pk")
    )
    overrides = list(
        Override.objects.filter(dose__course=course)
        .select_related("by__profile", "evaluation__rule_set")
        .order_by("at", "pk")
    )
    signatures = list(
        Signature.objects.filter(
            Q(object_type="scheduling.course", object_id=str(course.pk))
            | Q(object_type="scheduling.dose", object_id__in=[str(d.pk) for d in doses])
        )
        .select_related("signer__profile")
        .order_by("signed_at", "pk")
    )
    window = Q(recorded_at__gte=min(course.created_at, course.first_dose_at) - LOOKBACK)
    if course.status not in Course.OPEN_STATUSES and doses:
        window &= Q(recorded_at__lte=max(d.due_at for d in doses) + TAIL)
    observations = {
        kind: list(
            model.objects.filter(window, patient_id=course.patient_id)
            .select_related("recorded_by__profile", "entered_in_error_by__profile")
            .annotate(correction_hash=correction_hash(model, f"{model.KIND}.entered_in_error"))
            .order_by("recorded_at", "pk")
        )
        for kind, model in OBSERVATION_MODELS.items()
    }
    return CourseRecord(
        course=course,
        doses=doses,
        administrations=administrations,
        holds=holds,
        overrides=overrides,
        signatures=signatures,
        observations=observations,
        rate_ml_h=selectors.preparation_for(course).rate_ml_h,
    )


def calendar_slots(course: Course) -> list[Slot]:
    """Every slot of the course, in order: one query."""
    return [
        Slot(
            dose_id=d.pk,
            cycle=d.cycle,
            number=d.number,
            due_at=d.due_at,
            status=d.status,
            changed_at=d.status_changed_at,
        )
        for d in Dose.objects.filter(course=course).order_by("cycle", "number")
    ]
