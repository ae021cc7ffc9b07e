"""Reads for courses and doses, with their queries pinned (tests assert the counts)."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Max, Min, Prefetch, Q
from django.http import Http404

from il2ward import access
from scheduling.domain import dosing
from scheduling.models import Administration, Course, Dose, Hold, Override


@dataclass(frozen=True)
class CycleBounds:
    number: int
    first_due_at: datetime
    last_due_at: datetime


@dataclass(frozen=True)
class CourseSummary:
    cycles: list[CycleBounds]
    counts: dict[str, int]
    preparation: dosing.Preparation


def visible_courses(user):
    return Course.objects.filter(patient__in=access.visible_patients(user))


def course_for(user, course_id) -> Course:
    try:
        return (
            visible_courses(user)
            .select_related("patient__ward", "rule_set", "eligibility_signature", "oncologist")
            .get(pk=course_id)
        )
    except (Course.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such course") from exc


def preparation_for(course: Course) -> dosing.Preparation:
    return preparation_of(course.dose_iu)


def preparation_of(dose_iu: int) -> dosing.Preparation:
    """SCH-PREP with the site's settings (diluent policy, reconstitution limit)."""
    return dosing.preparation(
        dose_iu,
        diluent_policy=settings.IL2WARD_DILUENT_POLICY,
        max_hours=settings.IL2WARD_RECONSTITUTION_MAX_HOURS,
    )


def course_summary(course: Course) -> CourseSummary:
    """Cycle bounds and status counts in one aggregate query."""
    rows = (
        Dose.objects.filter(course=course)
        .values("cycle")
        .annotate(
            first=Min("due_at"),
            last=Max("due_at"),
            **{s: Count("pk", filter=Q(status=s)) for s in Dose.Status.values},
        )
        .order_by("cycle")
    )
    counts = dict.fromkeys(Dose.Status.values, 0)
    cycles = []
    for row in rows:
        cycles.append(CycleBounds(row["cycle"], row["first"], row["last"]))
        for s in Dose.Status.values:
            counts[s] += row[s]
    return CourseSummary(cycles=cycles, counts=counts, preparation=preparation_for(course))


def _standing_administrations():
    return Prefetch(
        "administrations",
        queryset=Administration.objects.filter(entered_in_error_at__isnull=True).select_related(
            "given_by", "verified_by"
        ),
        to_attr="standing_administrations",
    )


def doses_with_details():
    return Dose.objects.select_related("latest_evaluation__rule_set").prefetch_related(_standing_administrations())


def course_doses(course: Course) -> list[Dose]:
    return list(doses_with_details().filter(course=course).order_by("cycle", "number"))


def standing_administration(dose: Dose) -> Administration | None:
    standing = getattr(dose, "standing_administrations", None)
    if standing is None:
        standing = list(dose.administrations.filter(entered_in_error_at__isnull=True))
    return standing[0] if standing else None


def dose_for(user, dose_id) -> Dose:
    try:
        return (
            doses_with_details()
            .select_related("course__patient__ward", "course__rule_set")
            .get(pk=dose_id, course__patient__in=access.visible_patients(user))
        )
    except (Dose.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such dose") from exc


def visible_dose_id(user, dose_id) -> int:
    """The dose's id when the user may see it (one query, nothing fetched); else 404."""
    try:
        found = Dose.objects.filter(pk=dose_id, course__patient__in=access.visible_patients(user)).values_list(
            "pk", flat=True
        )
        return found.get()
    except (Dose.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such dose") from exc


def standing_hold(dose: Dose) -> Hold | None:
    return Hold.objects.filter(dose=dose, entered_in_error_at__isnull=True).select_related("by").first()


def dose_overrides(dose: Dose) -> list[Override]:
    return list(Override.objects.filter(dose=dose).select_related("signature").order_by("at", "pk"))


def administration_for(user, administration_id) -> Administration:
    try:
        return Administration.objects.select_related("dose").get(
            pk=administration_id, dose__course__patient__in=access.visible_patients(user)
        )
    except (Administration.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such administration") from exc
