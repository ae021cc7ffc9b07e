"""Reads for courses and doses, with their queries pinned (tests assert the counts)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Prefetch, Q
from django.http import Http404

from il2ward import access
from monitoring.domain.rulesets import RULE_SETS, RuleSet
from monitoring.models import RuleSetVersion
from scheduling.domain import dosing
from scheduling.domain.aware import as_utc
from scheduling.domain.signed_records import local_date
from scheduling.models import Administration, Course, Dose, DoseEvaluation, Hold, Override

# History read for a slot starts 48 h before the course's first dose (HOLD-RULES §3: observations charted before the
# course row was created count like any other). SCH-RETREAT keeps a new course at least 7 weeks after the previous
# one, so this bound is always later than the previous course's end.
HISTORY_BEFORE_FIRST_DOSE = timedelta(hours=48)

# Parsing a definition costs more than comparing it, so the parsed rule set is kept per row. The definition is
# compared on every use: an id can come back with other content (a rolled-back row on SQLite, a test database).
_PARSED: dict[int, tuple[dict, RuleSet]] = {}


def parsed_rule_set(version: RuleSetVersion) -> RuleSet:
    cached = _PARSED.get(version.pk)
    if cached is None or cached[0] != version.definition:
        cached = _PARSED[version.pk] = (version.definition, RuleSet.from_dict(version.definition))
    return cached[1]


def course_version(course: Course) -> RuleSetVersion:
    """The rule-set version a course is evaluated under: the one it started with, unless that one predates the
    HOLD-RULES.md version the software follows (then the current version of the same rule set)."""
    version = course.rule_set
    builtin = RULE_SETS.get(version.base)
    if builtin is not None and version.definition.get("spec", 1) < builtin.spec:
        from monitoring.services import rule_set_current

        return rule_set_current(version.name, now=course.created_at)
    return version


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


def latest_evaluation_of(dose: Dose) -> DoseEvaluation | None:
    """The dose's latest evaluation with its rule set (one query; none when it has none)."""
    if dose.latest_evaluation_id is None:
        return None
    return DoseEvaluation.objects.select_related("rule_set").get(pk=dose.latest_evaluation_id)


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


# SCH-RETREAT


def course_retreatment_check(patient, first_dose_at: datetime | None, now: datetime) -> tuple[bool, date | None, list]:
    """May a new course for `patient` start at `first_dose_at` (default: now)? The one place SCH-RETREAT is decided.

    Returns (allowed, earliest_date, reasons). Every earlier course must be closed with its discharge date recorded;
    the first dose's ward-local date must be at least discharge + 49 days (IL2WARD_RETREAT_AFTER_DISCHARGE_DAYS) after
    each; a retreatment-bar event (HOLD-RULES §4) on any earlier course blocks for good (earliest_date None).
    Two queries, whatever the number of earlier courses.
    """
    from scheduling.models import RetreatmentBar

    first = as_utc(first_dose_at or now, "first_dose_at")
    zone = patient.ward.zone
    wait = timedelta(days=settings.IL2WARD_RETREAT_AFTER_DISCHARGE_DAYS)
    reasons: list[str] = []
    earliest: date | None = None
    latest_discharge: Course | None = None
    courses = list(Course.objects.filter(patient=patient, first_dose_at__lt=first).order_by("first_dose_at", "pk"))
    for course in courses:
        if course.status in Course.OPEN_STATUSES:
            reasons.append(f"SCH-RETREAT: course {course.pk} is still open.")
        elif course.discharge_date is None:
            reasons.append(f"SCH-RETREAT: course {course.pk} has no discharge date recorded (the wait counts from it).")
        elif earliest is None or course.discharge_date + wait > earliest:
            earliest, latest_discharge = course.discharge_date + wait, course
    if earliest is not None and local_date(first, zone) < earliest:
        reasons.append(
            f"SCH-RETREAT: not before {earliest.isoformat()} (discharge {latest_discharge.discharge_date.isoformat()} "
            f"+ {wait.days} days, course {latest_discharge.pk})."
        )
    bars = list(
        RetreatmentBar.objects.filter(course__patient=patient, course__first_dose_at__lt=first).order_by("at", "pk")
    )
    for bar in bars:
        reasons.append(f"SCH-RETREAT: course {bar.course_id} recorded a retreatment-bar event ({bar.kind}).")
    if bars:
        earliest = None
    return (not reasons, earliest, reasons)
