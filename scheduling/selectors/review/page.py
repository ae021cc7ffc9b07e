"""The course page and the printed summary: everything they show, each table read once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Prefetch
from django.http import Http404

from il2ward.models import Medication
from scheduling import selectors
from scheduling.domain import calendar, signed_records
from scheduling.domain.eligibility import ELIGIBILITY_LABELS
from scheduling.domain.interactions import Interaction, interaction_warnings
from scheduling.models import (
    Administration,
    AdverseEvent,
    Course,
    CycleDecision,
    Dose,
    DoseEvaluation,
    Hold,
    Override,
    ResponseAssessment,
    RetreatmentBar,
)
from scheduling.selectors.courses import course_retreatment_check
from scheduling.selectors.review.cells import Cell, Counts
from scheduling.selectors.review.position import LEVEL_ORDER, Need, course_position
from scheduling.selectors.review.signatures import SignatureRow, signature_rows
from scheduling.selectors.review.trends import TrendData, trend_data


@dataclass
class Retreatment:
    allowed: bool
    earliest: date | None
    reasons: list[str]
    course_end: date | None
    response_due: date | None


@dataclass
class CourseReview:
    course: Course
    zone: ZoneInfo
    now: datetime
    position: str
    cycles: list[list[Cell]]
    cycle_counts: dict[int, Counts]
    total: Counts
    holds: list[Cell]
    open_holds: list[Cell]
    stop_pending: list[Cell]
    decisions: list[CycleDecision]
    adverse_events: list[AdverseEvent]
    responses: list[ResponseAssessment]
    bars: list[RetreatmentBar]
    signatures: list[SignatureRow]
    trends: TrendData | None
    medications: list[Medication]
    interactions: list[Interaction]
    retreatment: Retreatment
    cycle2_earliest: datetime | None
    cycle2_movable: bool
    needs: list[Need]
    rule_set: dict
    eligibility_signature: SignatureRow | None = None
    plots: list = field(default_factory=list)  # drawn from `trends` by the page (review/plots.py course_plots)

    @property
    def is_open(self) -> bool:
        return self.course.status in Course.OPEN_STATUSES

    @property
    def held_doses(self) -> list[Dose]:
        return [c.dose for c in self.holds]

    @property
    def overrides(self) -> list[tuple[Cell, Override, SignatureRow | None]]:
        rows = self.signature_of
        return [(c, o, rows.get(o.signature_id)) for cycle in self.cycles for c in cycle for o in c.overrides]

    @property
    def signature_of(self) -> dict[int, SignatureRow]:
        return {row.signature.pk: row for row in self.signatures}

    @property
    def eligibility_checklist(self) -> list[tuple[str, bool]]:
        items = self.course.eligibility_items or {}
        return [(label, items.get(key) is True) for key, label in ELIGIBILITY_LABELS.items()]

    @property
    def dose_numbers(self) -> range:
        return range(1, max((len(c) for c in self.cycles), default=0) + 1)

    @property
    def cycle_count_rows(self) -> list[tuple[int, Counts]]:
        return sorted(self.cycle_counts.items())

    @property
    def window_minutes(self) -> int:
        return settings.IL2WARD_WINDOW_MINUTES

    @property
    def on_time_minutes(self) -> int:
        return settings.IL2WARD_ON_TIME_MINUTES


def course_for(user, course_id) -> Course:
    """The course if the user may see it (else 404), with what every review page prints about it (one query)."""
    try:
        return (
            selectors.visible_courses(user)
            .select_related("patient__ward", "rule_set", "eligibility_signature", "oncologist__profile")
            .get(pk=course_id)
        )
    except (Course.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such course") from exc


def course_review(course: Course, *, now: datetime) -> CourseReview:
    """Everything the course page and the summary show, for a course from `course_for`. A fixed number of queries:
    each table is read once (doses, administrations, holds, overrides, decisions, adverse events and their doses,
    responses, signatures, the eligibility creatinine, retreatment, bars, medications, five observation tables)."""
    zone = course.patient.ward.zone
    is_open = course.status in Course.OPEN_STATUSES
    doses = _course_doses(course)
    cells = {d.pk: Cell(d, d.due_at.astimezone(zone), selectors.standing_administration(d)) for d in doses}
    holds, overrides, decisions, adverse_events = _attach_records(course, cells)
    responses = list(ResponseAssessment.objects.filter(course=course).select_related("by__profile"))
    signatures = signature_rows(course, doses, overrides, decisions, responses, zone=zone)
    signature_of = _link_signatures(signatures, cells, responses, decisions)
    cycles, counts, total = _by_cycle(doses, cells)
    bounds = {n: (c[0].dose.due_at, c[-1].dose.due_at) for n, c in cycles.items()}
    _mark_next(cells, now=now, is_open=is_open)
    bars = list(RetreatmentBar.objects.filter(course=course).order_by("at", "pk"))
    medications = list(Medication.objects.filter(patient_id=course.patient_id, active=True).order_by("name", "pk"))
    retreatment = _retreatment(course, doses, responses, zone=zone, now=now)
    cycle2_earliest, cycle2_movable = _cycle2_start(cycles, bounds, zone=zone, is_open=is_open)
    review = CourseReview(
        course=course,
        zone=zone,
        now=now,
        position=course_position(course.status, bounds, zone=zone, now=now),
        cycles=[cycles[n] for n in sorted(cycles)],
        cycle_counts=dict(counts),
        total=total,
        holds=[cells[h.dose_id] for h in holds],
        open_holds=_open_holds(cells) if is_open else [],
        stop_pending=_stop_pending(cells, decisions) if is_open else [],
        decisions=decisions,
        adverse_events=adverse_events,
        responses=responses,
        bars=bars,
        signatures=signatures,
        trends=trend_data(course, doses, bounds, now=now),
        medications=medications,
        interactions=interaction_warnings([m.name for m in medications]),
        retreatment=retreatment,
        cycle2_earliest=cycle2_earliest,
        cycle2_movable=cycle2_movable,
        needs=[],
        rule_set=course.rule_set.definition,
        eligibility_signature=signature_of.get(course.eligibility_signature_id),
    )
    review.needs = _page_needs(review)
    return review


def _course_doses(course: Course) -> list[Dose]:
    """The course's doses in cycle order, each with its latest evaluation and its standing administrations (two
    queries: the doses, then their administrations)."""
    return list(
        Dose.objects.filter(course=course)
        .select_related("latest_evaluation")
        .prefetch_related(
            Prefetch(
                "administrations",
                queryset=Administration.objects.filter(entered_in_error_at__isnull=True).select_related(
                    "given_by__profile", "verified_by__profile"
                ),
                to_attr="standing_administrations",
            )
        )
        .order_by("cycle", "number")
    )


def _attach_records(
    course: Course, cells: dict[int, Cell]
) -> tuple[list[Hold], list[Override], list[CycleDecision], list[AdverseEvent]]:
    """The course's standing holds, its overrides, cycle decisions and adverse events (one query each, the events'
    doses one more), each also put on the cell of the dose it is about; an event entered in error is on no cell."""
    holds = list(
        Hold.objects.filter(dose__course=course, entered_in_error_at__isnull=True)
        .select_related("by__profile", "evaluation")
        .order_by("at", "pk")
    )
    for hold in holds:
        cells[hold.dose_id].hold = hold
    overrides = list(
        Override.objects.filter(dose__course=course).select_related("by__profile", "evaluation").order_by("at", "pk")
    )
    for override in overrides:
        cells[override.dose_id].overrides.append(override)
    decisions = list(
        CycleDecision.objects.filter(course=course).select_related("by__profile", "dose").order_by("at", "pk")
    )
    for decision in decisions:
        cells[decision.dose_id].decision = decision
    adverse_events = list(
        AdverseEvent.objects.filter(course=course)
        .select_related("by__profile")
        .prefetch_related("held_doses")
        .order_by("onset_at", "pk")
    )
    for event in adverse_events:
        if event.entered_in_error_at is None:
            for dose in event.held_doses.all():
                cells[dose.pk].adverse_events.append(event)
    return holds, overrides, decisions, adverse_events


def _link_signatures(
    signatures: list[SignatureRow], cells: dict[int, Cell], responses: list, decisions: list[CycleDecision]
) -> dict[int, SignatureRow]:
    """Give each cell the rows of its overrides' and cycle decision's signatures, and each response assessment and
    cycle decision its own row; returns the rows by signature id."""
    signature_of = {row.signature.pk: row for row in signatures}
    for cell in cells.values():
        cell.signatures = [signature_of[o.signature_id] for o in cell.overrides if o.signature_id in signature_of]
        if cell.decision is not None and cell.decision.signature_id in signature_of:
            cell.signatures.append(signature_of[cell.decision.signature_id])
    for assessment in responses:
        assessment.signature_row = signature_of.get(assessment.signature_id)
    for decision in decisions:
        decision.signature_row = signature_of.get(decision.signature_id)
    return signature_of


def _by_cycle(doses: list[Dose], cells: dict[int, Cell]) -> tuple[dict[int, list[Cell]], dict[int, Counts], Counts]:
    """The cells of each cycle in dose order, the counts of each cycle and the course's total."""
    cycles: dict[int, list[Cell]] = defaultdict(list)
    counts: dict[int, Counts] = defaultdict(Counts)
    total = Counts()
    for dose in doses:
        cell = cells[dose.pk]
        cycles[dose.cycle].append(cell)
        counts[dose.cycle].add(cell)
        total.add(cell)
    return cycles, counts, total


def _mark_next(cells: dict[int, Cell], *, now: datetime, is_open: bool) -> None:
    """On an open course, mark the earliest scheduled slot not yet past its window as the next dose."""
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    upcoming = [c for c in cells.values() if c.dose.status == Dose.Status.SCHEDULED and c.dose.due_at >= now - window]
    if upcoming and is_open:
        min(upcoming, key=lambda c: c.dose.due_at).is_next = True


def _open_holds(cells: dict[int, Cell]) -> list[Cell]:
    """Scheduled slots flagged hold that no override has cleared yet."""
    return [
        c
        for c in cells.values()
        if c.dose.status == Dose.Status.SCHEDULED and c.dose.flag == Dose.Flag.HOLD and not c.overrides
    ]


def _stop_pending(cells: dict[int, Cell], decisions: list[CycleDecision]) -> list[Cell]:
    """Slots whose latest evaluation recommends stopping and that no cycle decision has answered yet."""
    decided = {d.dose_id for d in decisions}
    return [
        c
        for c in cells.values()
        if c.dose.latest_evaluation is not None
        and c.dose.latest_evaluation.decision == DoseEvaluation.Decision.STOP
        and c.dose.pk not in decided
    ]


def _cycle2_start(
    cycles: dict[int, list[Cell]], bounds: dict[int, tuple[datetime, datetime]], *, zone: ZoneInfo, is_open: bool
) -> tuple[datetime | None, bool]:
    """Cycle 2's earliest start after cycle 1's last slot and the minimum rest, and whether it may still be moved
    (an open course whose cycle 2 has not begun)."""
    if 1 not in bounds or 2 not in bounds:
        return None, False
    earliest = calendar.earliest_cycle2_start(bounds[1][1], zone=zone, min_rest_days=settings.IL2WARD_MIN_REST_DAYS)
    return earliest, is_open and all(c.dose.status == Dose.Status.SCHEDULED for c in cycles[2])


def _page_needs(review: CourseReview) -> list[Need]:
    course = review.course
    needs = [
        Need("danger", f"Stop recommended at {c.dose.label}: continue or stop the cycle", "stop")
        for c in review.stop_pending
    ]
    if review.is_open and not course.eligibility_attested and course.status != Course.Status.SCHEDULING:
        needs.append(Need("danger", "Eligibility not attested: no dose can be given", "eligibility"))
    needs += [
        Need("warning", f"Hold flagged at {c.dose.label}: review, override if appropriate", "holds")
        for c in review.open_holds
    ]
    if not review.is_open:
        ret = review.retreatment
        if ret.response_due and not review.responses:
            level = (
                "warning"
                if review.now.astimezone(review.zone).date() >= ret.response_due - timedelta(days=7)
                else "info"
            )
            needs.append(Need(level, f"Response assessment due {ret.response_due:%a %d %b %Y}", "response"))
        if course.discharge_date is None:
            needs.append(Need("info", "Discharge date not recorded (SCH-RETREAT counts from it)", "discharge"))
    changed = [s for s in review.signatures if s.state == "changed"]
    if changed:
        needs.append(Need("danger", f"{len(changed)} signed record(s) changed after signing", "signatures"))
    return sorted(needs, key=lambda n: LEVEL_ORDER[n.level])


def _retreatment(course, doses, responses, *, zone, now) -> Retreatment:
    done = [d.due_at for d in doses if d.status in (Dose.Status.GIVEN, Dose.Status.HELD, Dose.Status.MISSED)]
    course_end = max(done).astimezone(zone).date() if done and course.status not in Course.OPEN_STATUSES else None
    if course.status in Course.OPEN_STATUSES:  # SCH-RETREAT only counts once this course has ended
        allowed, earliest, reasons = False, None, [f"SCH-RETREAT: course {course.pk} is still open."]
    else:
        allowed, earliest, reasons = course_retreatment_check(course.patient, now, now)
    return Retreatment(
        allowed=allowed,
        earliest=earliest,
        reasons=reasons,
        course_end=course_end,
        response_due=signed_records.response_due_on(course_end) if course_end else None,
    )
