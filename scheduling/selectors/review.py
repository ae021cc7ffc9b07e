"""Reads for the oncologist's course review: the course list, the course page and the printed summary.

Query counts are flat: the list is one query whatever the number of courses, and the course page reads each table
once whatever the number of doses and observations (tests/scheduling/review/test_review_queries.py pins both).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Prefetch, Q
from django.http import Http404

from il2ward import timefmt
from il2ward.audit import record_hash
from il2ward.models import Medication, Signature
from il2ward.people import initials, printed_name
from monitoring.domain import engine
from monitoring.models import FluidBalance, LabResult, NeuroAssessment, VitalSigns, WeightMeasurement
from scheduling import selectors
from scheduling.domain import calendar, signed_records
from scheduling.domain.eligibility import ELIGIBILITY_CREATININE_HOURS, ELIGIBILITY_LABELS
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

# --- Where a course stands --------------------------------------------------------------------------------------------


def course_position(status: str, cycles: dict[int, tuple[datetime, datetime]], *, zone: ZoneInfo, now: datetime) -> str:
    """ "Cycle 1 · day 3", "Rest day 4 · course day 9 · cycle 2 from Fri 26 Mar", "Planned · first dose …" (pure).

    Days are ward-local calendar days: a cycle's day from its first slot, a rest day from the previous cycle's last
    slot, the course day from the course's first dose (day 15 is cycle 2's default start).
    """
    if status == Course.Status.SCHEDULING:
        return "Calendar being written"
    if status in (Course.Status.COMPLETED, Course.Status.STOPPED) or not cycles:
        return Course.Status(status).label
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    start_day = cycles[min(cycles)][0].astimezone(zone).date()
    course_day = (now.astimezone(zone).date() - start_day).days + 1
    for cycle in sorted(cycles):
        first, last = cycles[cycle]
        if now < first - window:
            if cycle == min(cycles):
                return f"Planned · first dose {first.astimezone(zone):%a %d %b %H:%M}"
            rest = (now.astimezone(zone).date() - cycles[cycle - 1][1].astimezone(zone).date()).days
            return f"Rest day {rest} · course day {course_day} · cycle {cycle} from {first.astimezone(zone):%a %d %b}"
        if now <= last + window:
            cycle_day = (now.astimezone(zone).date() - first.astimezone(zone).date()).days + 1
            return f"Cycle {cycle} · day {cycle_day}"
    return f"After the last dose · day {course_day}"


@dataclass(frozen=True)
class Need:
    """Something waiting for the oncologist, most urgent first: level danger, warning or info."""

    level: str
    text: str
    anchor: str = ""


LEVEL_ORDER = {"danger": 0, "warning": 1, "info": 2}


# --- The course list --------------------------------------------------------------------------------------------------

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


# --- The course page --------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    given: int = 0
    held: int = 0
    missed: int = 0
    scheduled: int = 0
    cancelled: int = 0
    early: int = 0
    on_time: int = 0
    late: int = 0
    dose_iu: int = 0

    def add(self, cell: Cell) -> None:
        setattr(self, cell.dose.status, getattr(self, cell.dose.status) + 1)
        if cell.administration is not None:
            setattr(self, cell.administration.timing, getattr(self, cell.administration.timing) + 1)
            self.dose_iu += cell.administration.dose_iu


@dataclass
class SignatureRow:
    signature: Signature
    signed_local: datetime
    subject: str
    state: str  # valid | changed | superseded | unchecked
    anchor: str = ""

    @property
    def state_text(self) -> str:
        return {
            "valid": "Matches the record",
            "changed": "Changed after signing",
            "superseded": "Superseded by a later signature",
            "unchecked": "Not checked here",
        }[self.state]


@dataclass
class Cell:
    dose: Dose
    local: datetime
    administration: object | None = None
    hold: Hold | None = None
    overrides: list = field(default_factory=list)
    decision: CycleDecision | None = None
    adverse_events: list = field(default_factory=list)
    signatures: list = field(default_factory=list)  # SignatureRow of its overrides and cycle decision
    is_next: bool = False
    form: object | None = None  # the page's signed form for an open hold or a stop recommendation

    # Computed once per cell (the grid and the dose log both print them): cached, and plain strings, because the
    # template engine's filters (date, join) on 28 cells × two tables cost more than the page's queries.

    @cached_property
    def status_short(self) -> str:
        return {"scheduled": "Open", "cancelled": "Cancel'd"}.get(self.dose.status, self.dose.get_status_display())

    @cached_property
    def day(self) -> str:
        return f"{self.local:%a} {self.local.day}"

    @cached_property
    def time(self) -> str:
        return f"{self.local:%H:%M}"

    @cached_property
    def when(self) -> str:
        """ "Wed 25 Nov 2026 10:40 CST": the ward-local due time with its zone."""
        return timefmt.local_text(self.local, self.local.tzinfo, timefmt.PRINTED)

    @cached_property
    def css(self) -> str:
        classes = [f"cell-{self.dose.status}"]
        if self.dose.flag and self.dose.status == Dose.Status.SCHEDULED:
            classes.append(f"cell-flag-{self.dose.flag}")
        if self.is_next:
            classes.append("cell-next")
        return " ".join(classes)

    @cached_property
    def rules_text(self) -> str:
        return " ".join(self.rules)

    @cached_property
    def given_text(self) -> str:
        """ "10:36 · on time · 43,440,000 IU" for an administration."""
        adm = self.administration
        if adm is None:
            return ""
        started = adm.started_at.astimezone(self.local.tzinfo)
        return f"{started:%H:%M} · {adm.get_timing_display().lower()}"

    @cached_property
    def charted_by(self) -> str:
        adm = self.administration
        if adm is not None:
            return f"{printed_name(adm.given_by)} · checked by {printed_name(adm.verified_by)}"
        if self.hold is not None:
            held_at = f"{self.hold.at.astimezone(self.local.tzinfo):%a %H:%M}"
            who = f"held by {printed_name(self.hold.by)}" if self.hold.by else "recorded held at due + W (automatic)"
            return f"{who}, {held_at}"
        return ""

    @cached_property
    def override_by(self) -> str:
        """Initials of who signed this slot's override(s)."""
        return " ".join(dict.fromkeys(initials(printed_name(o.by)) for o in self.overrides))

    @cached_property
    def charted_short(self) -> str:
        adm = self.administration
        if adm is not None:
            short = f"{initials(printed_name(adm.given_by))}/{initials(printed_name(adm.verified_by))}"
            return short if adm.timing == "on_time" else f"{short} · {adm.get_timing_display().lower()}"
        if self.hold is not None:
            return initials(printed_name(self.hold.by)) if self.hold.by else "auto"
        return ""

    @cached_property
    def rules(self) -> list[str]:
        """Rule ids behind this slot's hold, or behind its open hold/stop flag."""
        if self.hold is not None:
            return list(self.hold.rule_ids) or [self.hold.reason]
        evaluation = self.dose.latest_evaluation
        if self.dose.flag in engine.BLOCKING_LEVELS and evaluation is not None:
            return engine.blocking_rules(evaluation.findings)
        return []

    @cached_property
    def findings(self) -> list[dict]:
        """The hold and stop findings that explain this slot (from the hold's evaluation, else the latest one)."""
        evaluation = self.hold.evaluation if self.hold is not None and self.hold.evaluation else None
        evaluation = evaluation or self.dose.latest_evaluation
        if evaluation is None or (self.hold is None and not self.dose.flag):
            return []
        return [f for f in evaluation.findings if f["level"] in engine.BLOCKING_LEVELS]


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
    signatures = _signatures(course, doses, overrides, decisions, responses, zone=zone)
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


# --- Signatures: what each signed, and whether the record still matches -----------------------------------------------


def _signatures(course, doses, overrides, cycle_decisions, responses, *, zone) -> list[SignatureRow]:
    """Every signature on the course or its doses, each compared with the hash of its record rebuilt now."""
    dose_ids = [str(d.pk) for d in doses]
    labels = {d.pk: d.label for d in doses}
    rows = list(
        Signature.objects.filter(
            Q(object_type="scheduling.course", object_id=str(course.pk))
            | Q(object_type="scheduling.dose", object_id__in=dose_ids)
        ).order_by("signed_at", "pk")
    )
    by_override = {o.signature_id: o for o in overrides}
    by_decision = {d.signature_id: d for d in cycle_decisions}
    by_response = {r.signature_id: r for r in responses}
    latest_course_sig = {}
    for sig in rows:
        if sig.object_type == "scheduling.course":
            latest_course_sig[sig.meaning] = sig.pk
    out = []
    for sig in rows:
        subject, record, anchor = sig.meaning, None, ""
        if sig.pk == course.eligibility_signature_id:
            subject, record, anchor = "Eligibility (HOLD-RULES §2)", _eligibility_record(course, sig), "eligibility"
        elif sig.pk in by_override:
            o = by_override[sig.pk]
            record = signed_records.record_override(
                dose_id=o.dose_id, evaluation_id=o.evaluation_id, covers=o.covers, reason=o.reason
            )
            subject, anchor = f"Override · {labels.get(o.dose_id, '')}", f"dose-{o.dose_id}"
        elif sig.pk in by_decision:
            d = by_decision[sig.pk]
            subject = f"Cycle {d.cycle} {d.get_choice_display().lower()} · after {labels.get(d.dose_id, '')}"
            record, anchor = signed_records.record_cycle_decision(d), f"dose-{d.dose_id}"
        elif sig.pk in by_response:
            record, subject, anchor = (
                signed_records.record_response(by_response[sig.pk]),
                "Response assessment",
                "response",
            )
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.COURSE_STOP:
            record, subject = {"course": course.pk, "reason": course.stop_reason}, "Course stopped"
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.CYCLE2_MOVE:
            record, subject, anchor = signed_records.record_cycle2(course), "Cycle 2 start", "cycle2"
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.DISCHARGE:
            record, subject, anchor = signed_records.record_discharge(course), "Discharge date", "discharge"
        if record is None:
            state = "unchecked"
        elif record_hash(record) == sig.record_hash:
            state = "valid"
        elif sig.object_type == "scheduling.course" and latest_course_sig.get(sig.meaning) != sig.pk:
            state = "superseded"  # a later signature of the same decision replaced this one
        else:
            state = "changed"
        out.append(SignatureRow(sig, sig.signed_at.astimezone(zone), subject, state, anchor))
    return out


def _eligibility_record(course: Course, signature: Signature) -> dict:
    """services.course_attest_eligibility's record, rebuilt: the creatinine it read is the latest standing result of
    the 72 h before signing that existed then (one query)."""
    creatinine = (
        LabResult.objects.filter(
            patient_id=course.patient_id,
            creatinine_mg_dl__isnull=False,
            entered_in_error_at__isnull=True,
            recorded_at__gte=signature.signed_at - timedelta(hours=ELIGIBILITY_CREATININE_HOURS),
            recorded_at__lte=signature.signed_at,
            created_at__lte=signature.signed_at,
        )
        .order_by("-recorded_at", "-pk")
        .values_list("creatinine_mg_dl", flat=True)
        .first()
    )
    return {
        "course": course.pk,
        "patient": course.patient_id,
        "items": course.eligibility_items,
        "creatinine_mg_dl": creatinine,
    }


# --- Trend data ---------------------------------------------------------------------------------------------------

MARGIN = timedelta(hours=8)  # shown before a cycle's first slot and after its last


@dataclass(frozen=True)
class TrendData:
    """What the trend plots show (review/plots.py draws them): the time segments, the dose marks and the charted rows
    inside them, read as named tuples (no model objects)."""

    segments: tuple[tuple[datetime, datetime], ...]
    marks: tuple[tuple[datetime, str, str], ...]  # (due at, status, "C1 #4")
    vitals: list
    neuro: list
    weights: list
    fluids: list
    labs: list


def trend_data(course, doses, bounds, *, now) -> TrendData | None:
    """Cycle 1, and cycle 2 once it is near or has begun, on one time axis; 5 queries."""
    if 1 not in bounds:
        return None
    segments = [(bounds[1][0] - MARGIN, bounds[1][1] + MARGIN)]
    cycle2_doses = [d for d in doses if d.cycle == 2]
    if 2 in bounds and (
        now >= bounds[2][0] - timedelta(hours=24) or any(d.status != Dose.Status.SCHEDULED for d in cycle2_doses)
    ):
        segments.append((bounds[2][0] - MARGIN, bounds[2][1] + MARGIN))
    low, high = segments[0][0], min(segments[-1][1], now)
    patient = course.patient_id

    def rows(model, *fields, time_field="recorded_at", extra=None):
        qs = model.objects.filter(
            patient_id=patient,
            entered_in_error_at__isnull=True,
            **{f"{time_field}__gte": low, f"{time_field}__lte": high},
        )
        if extra:
            qs = qs.filter(**extra)
        return list(qs.order_by(time_field, "pk").values_list(time_field, *fields, named=True))  # no model objects

    return TrendData(
        segments=tuple(segments),
        marks=tuple((d.due_at, d.status, f"C{d.cycle} #{d.number}") for d in doses),
        vitals=rows(VitalSigns, "sbp", "dbp", "heart_rate", "spo2", "o2_lpm", "phenylephrine_mcg_kg_min"),
        neuro=rows(NeuroAssessment, "rass"),
        weights=rows(WeightMeasurement, "weight_kg"),
        fluids=rows(FluidBalance, "period_start", "urine_ml", time_field="period_end"),
        labs=rows(LabResult, "creatinine_mg_dl", extra={"creatinine_mg_dl__isnull": False}),
    )
