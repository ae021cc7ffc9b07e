"""The course list: open and recent courses, one query whatever their number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, Max, Min, OuterRef, Q

from monitoring.domain import engine
from scheduling import selectors
from scheduling.domain import signed_records
from scheduling.models import Course, CycleDecision, Dose, DoseEvaluation, Override, ResponseAssessment
from scheduling.selectors.review.position import LEVEL_ORDER, Need, course_position

RECENT_DAYS = 180  # closed courses started within this many days stay on the list (response assessment, retreatment)


@dataclass
class CourseRow:
    course: Course
    position: str
    needs: list[Need]

    @property
    def urgency(self) -> int:
        return min((LEVEL_ORDER[n.level] for n in self.needs), default=3)


def course_list_rows(user, *, now: datetime, limit: int = 200) -> list[CourseRow]:
    """Open and recent courses visible to the user with counts and what needs a decision first. One query."""
    decided = CycleDecision.objects.values("dose_id")
    overridden = Override.objects.values("dose_id")
    given, held, missed = Dose.Status.GIVEN, Dose.Status.HELD, Dose.Status.MISSED
    courses = (
        selectors.visible_courses(user)
        .filter(Q(status__in=Course.OPEN_STATUSES) | Q(first_dose_at__gte=now - timedelta(days=RECENT_DAYS)))
        .select_related("patient__ward")
        .annotate(
            given=Count("doses", filter=Q(doses__status=given)),
            held=Count("doses", filter=Q(doses__status=held)),
            missed=Count("doses", filter=Q(doses__status=missed)),
            cancelled=Count("doses", filter=Q(doses__status=Dose.Status.CANCELLED)),
            flagged=Count(
                "doses", filter=Q(doses__status=Dose.Status.SCHEDULED, doses__flag__in=engine.BLOCKING_LEVELS)
            ),
            stop_pending=Count(
                "doses",
                filter=Q(doses__latest_evaluation__decision=DoseEvaluation.Decision.STOP) & ~Q(doses__pk__in=decided),
            ),
            holds_open=Count(
                "doses",
                filter=Q(doses__status=Dose.Status.SCHEDULED, doses__flag=Dose.Flag.HOLD)
                & ~Q(doses__pk__in=overridden),
            ),
            c1_first=Min("doses__due_at", filter=Q(doses__cycle=1)),
            c1_last=Max("doses__due_at", filter=Q(doses__cycle=1)),
            c2_first=Min("doses__due_at", filter=Q(doses__cycle=2)),
            c2_last=Max("doses__due_at", filter=Q(doses__cycle=2)),
            last_done=Max("doses__due_at", filter=Q(doses__status__in=[given, held, missed])),
            assessed=Exists(ResponseAssessment.objects.filter(course=OuterRef("pk"))),
        )
        .order_by("-first_dose_at", "pk")[:limit]
    )
    rows = []
    for course in courses:
        zone = course.patient.ward.zone
        cycles = {}
        if course.c1_first:
            cycles[1] = (course.c1_first, course.c1_last)
        if course.c2_first:
            cycles[2] = (course.c2_first, course.c2_last)
        rows.append(
            CourseRow(course, course_position(course.status, cycles, zone=zone, now=now), _list_needs(course, now=now))
        )
    rows.sort(key=lambda r: (r.urgency, r.course.status not in Course.OPEN_STATUSES))  # stable: newest first within
    return rows


def _list_needs(course: Course, *, now: datetime) -> list[Need]:
    zone = course.patient.ward.zone
    needs = []
    is_open = course.status in Course.OPEN_STATUSES
    if course.stop_pending and is_open:
        needs.append(Need("danger", f"Stop recommended: continue or stop the cycle ({course.stop_pending})", "stop"))
    if is_open and course.eligibility_signature_id is None and course.status != Course.Status.SCHEDULING:
        soon = course.first_dose_at - now < timedelta(hours=24)
        needs.append(Need("danger" if soon else "warning", "Eligibility not attested", "eligibility"))
    if course.holds_open and is_open:
        needs.append(Need("warning", f"Hold flagged on an open dose: review ({course.holds_open})", "holds"))
    if not is_open:
        needs += _after_course_needs(course.last_done, course.assessed, course.discharge_date, zone=zone, now=now)
    return needs


def _after_course_needs(last_done, assessed: bool, discharge: date | None, *, zone, now) -> list[Need]:
    needs = []
    if last_done and not assessed:
        due = signed_records.response_due_on(last_done.astimezone(zone).date())
        today = now.astimezone(zone).date()
        level = "warning" if today >= due - timedelta(days=7) else "info"
        needs.append(Need(level, f"Response assessment due {due:%a %d %b %Y}", "response"))
    if discharge is None:
        needs.append(Need("info", "Discharge date not recorded (SCH-RETREAT counts from it)", "discharge"))
    return needs
