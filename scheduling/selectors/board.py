"""The nurse's reads: the ward board, the downtime sheet and the patient chart (MAR, flowsheet, capillary-leak panel).

Every function here costs a fixed number of queries whatever the number of patients (tests/scheduling/mar/test_board.py
pins them). Times stay aware UTC; templates show them in the ward's zone (the views activate it).
"""

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, Q, Subquery, Value, When, Window
from django.db.models.functions import RowNumber

from il2ward.models import Patient, Ward
from monitoring.domain import engine
from monitoring.domain.panels import capillary_leak_panel
from monitoring.models import RuleSetVersion, VitalSigns
from monitoring.selectors import latest_vitals_for, observations, patient_snapshot
from scheduling.domain import window as slot_window
from scheduling.models import Administration, Course, Dose, Hold, Override, TeachingRecord
from scheduling.selectors import preparation_for
from scheduling.selectors.courses import HISTORY_BEFORE_FIRST_DOSE, course_version, parsed_rule_set

CHARTED = (Dose.Status.GIVEN, Dose.Status.HELD, Dose.Status.MISSED)

# An evaluation's `missing` names, in words (the rest are lab names: "creatinine" ...).
MISSING_WORDS = {
    "vitals": "vitals in the last hour, with rhythm, O2 and vasopressors",
    "neuro": "a neuro check in the last hour, every question answered",
    "exam": "the bedside exam in the last 2 h",
    "weight": "a weight in the last 24 h",
    "baseline_weight": "the course's baseline weight",
    "urine_8h": "urine output for the last 8 h",
}


def missing_in_words(missing) -> list[str]:
    return [MISSING_WORDS.get(name, f"{name.replace('_', ' ')} result in the last 24 h") for name in missing]


# Board states: what the nurse must do next for the patient, most urgent first (the board sorts by it).
STATES = {
    "discontinue": "Discontinue — oncologist to stop the course",
    "stop": "Stop",
    "hold": "Hold",
    "overdue": "Overdue",
    "incomplete": "Incomplete",
    "due_now": "Due now",
    "due_soon": "Due soon",
    "given": "Given",
    "held": "Held",
    "missed": "Missed",
    "upcoming": "Upcoming",
    "rest": "Rest days",
    "scheduling": "Scheduling",
    "done": "No slot left",
}

# Out-of-range marks for the latest vitals: the rule set's own thresholds (HOLD-RULES §3), these as fallback.
IRREGULAR = ("af", "svt", "brady_treated", "pvc_frequent", "bigeminy", "nsvt", "vt_sustained", "other")
VITALS_FRESH_MINUTES = 60  # HOLD-RULES §3 freshness default, for the "stale" mark


def age_text(minutes: int) -> str:
    """12 → "12 min", 135 → "2 h 15 min", 5483 → "3 d 19 h"."""
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


_MARKS = (
    ("sbp", "CV-SBP.hold_below", operator.lt),
    ("heart_rate", "CV-HR.hold_above", operator.gt),
    ("spo2", "RS-SPO2.hold_at_or_below", operator.le),
    ("resp_rate", "RS-RR.notify_above", operator.gt),
    ("temp_c", "TP-TEMP.notify_above", operator.gt),
    ("o2_lpm", "RS-O2.notify_above_lpm", operator.gt),
    ("fio2_pct", "RS-O2.notify_above_fio2_pct", operator.gt),
)


def vitals_marks(vitals: VitalSigns | None, thresholds: dict) -> frozenset[str]:
    """The fields of a vitals set that are out of range for the course's rule-set version (CV-SBP, CV-HR, RS-SPO2,
    RS-RR, TP-TEMP, CV-PRESSOR, RS-O2, CV-RHYTHM): shown in bold red on the board and the flowsheet. A threshold the
    rule set does not have marks nothing: the marks are the rules', never numbers of their own."""
    if vitals is None:
        return frozenset()

    def beyond(value, key, compare) -> bool:
        limit = thresholds.get(key)
        return value is not None and limit is not None and compare(value, Decimal(str(limit)))

    marks = set()
    for field, key, compare in _MARKS:
        if beyond(getattr(vitals, field), key, compare):
            marks.add(field)
    if vitals.phenylephrine_mcg_kg_min or vitals.other_pressor not in ("", "none"):
        marks.add("phenylephrine_mcg_kg_min")  # CV-PRESSOR notifies on any pressor running
    if vitals.rhythm in IRREGULAR:
        marks.add("rhythm")
    return frozenset(marks)


def time_to_due(due_at: datetime | None, *, now: datetime) -> str:
    """ "in 38 min", "in 2 h 05 min", "12 min overdue", "in 3 d 4 h" — to the whole minute."""
    if due_at is None:
        return ""
    minutes = int((due_at - now).total_seconds() // 60)
    late = minutes < 0
    minutes = abs(minutes)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {mins:02d} min"
    else:
        text = f"{mins} min"
    return f"{text} overdue" if late else f"in {text}"


def hold_rules(evaluation) -> list[str]:
    """Rule ids behind a hold or stop decision, in the evaluation's order, without repeats."""
    if evaluation is None:
        return []
    return engine.blocking_rules(evaluation.findings)


def board_state(
    *,
    course_status: str,
    current: Dose | None,
    last: Dose | None,
    now: datetime,
    overridden: bool = False,
    discontinued: bool = False,
) -> str:
    """The board's state for one patient (see STATES). Pure: everything comes in as arguments.

    The open slot's own evaluation comes first (stop, hold — unless an oncologist overrode it), then, inside the
    pre-dose window (due − 2 h … due + W), incomplete or the timing (due soon, due now, overdue); before that window
    the patient shows what happened at the last slot (given, held, missed).
    """
    if course_status == Course.Status.SCHEDULING:
        return "scheduling"
    if course_status == Course.Status.REST:
        return "rest"
    if discontinued and course_status in Course.OPEN_STATUSES:
        return "discontinue"  # INV-DISC: every later slot is blocked until the oncologist stops the course
    if current is None:
        return last.status if last is not None else "done"
    if current.flag == Dose.Flag.DISCONTINUE:
        return "discontinue"
    if current.flag == Dose.Flag.STOP:
        return "stop"
    if current.flag == Dose.Flag.HOLD and not overridden:
        return "hold"
    timing = slot_window.window_state(
        current.due_at,
        now=now,
        window_minutes=settings.IL2WARD_WINDOW_MINUTES,
        due_soon_minutes=settings.IL2WARD_PRE_DOSE_HOURS * 60,
        due_now_minutes=settings.IL2WARD_ON_TIME_MINUTES,
    )
    if timing in (slot_window.DUE_SOON, slot_window.DUE_NOW, slot_window.OVERDUE, slot_window.MISSED):
        if current.flag == Dose.Flag.INCOMPLETE:
            return "incomplete"
        return "overdue" if timing == slot_window.MISSED else timing
    if last is not None:
        return last.status
    return "upcoming"


def course_day(course: Course, *, now: datetime, zone) -> int:
    """Day of the course in ward-local dates: day 1 is the first dose's date; cycle 2 starts on day 15 (SCH-CYCLE2)."""
    return (now.astimezone(zone).date() - course.first_dose_at.astimezone(zone).date()).days + 1


def rest_day(last: Dose | None, *, now: datetime, zone) -> int | None:
    """Which day of the rest between the cycles today is, in ward-local dates (the course day is not it)."""
    if last is None:
        return None
    return (now.astimezone(zone).date() - last.due_at.astimezone(zone).date()).days


@dataclass(frozen=True)
class BoardRow:
    patient: Patient
    course: Course
    state: str
    current: Dose | None  # the open slot: the earliest not charted whose window has not closed
    last: Dose | None  # the latest slot charted given, held or missed
    cycle: int | None
    day: int
    rest_day: int | None  # in the rest between cycles: day 1 is the day after cycle 1's last slot
    due_in: str
    rules: list[str]  # rule ids behind a hold (the open slot's evaluation, or the last slot's hold)
    overridden: bool
    vitals: VitalSigns | None
    vitals_minutes: int | None  # age of the latest vitals
    marks: frozenset[str]
    given: int
    held: int

    @property
    def state_label(self) -> str:
        return STATES.get(self.state, self.state)

    @property
    def next_due_at(self) -> datetime | None:
        return self.current.due_at if self.current else None

    @property
    def vitals_age(self) -> str:
        return "" if self.vitals_minutes is None else age_text(self.vitals_minutes)

    @property
    def vitals_stale(self) -> bool:
        """Older than the vitals freshness limit while the slot is in its pre-dose window (HOLD-RULES §3)."""
        active = self.state in ("discontinue", "stop", "hold", "overdue", "incomplete", "due_now", "due_soon")
        return active and self.vitals_minutes is not None and self.vitals_minutes > VITALS_FRESH_MINUTES


@dataclass(frozen=True)
class Board:
    ward: Ward
    rows: list[BoardRow]
    now: datetime

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    @property
    def summary(self) -> list[tuple[str, str, int]]:
        return [(state, label, self.count(state)) for state, label in STATES.items() if self.count(state)]


def _open_courses(ward: Ward):
    return Course.objects.filter(patient__ward=ward, status__in=Course.OPEN_STATUSES)


def _thresholds(rule_set_ids) -> dict[int, dict]:
    """Each rule set's thresholds (one query)."""
    rows = RuleSetVersion.objects.filter(pk__in=set(rule_set_ids)).values_list("pk", "definition")
    return {pk: (definition or {}).get("thresholds", {}) for pk, definition in rows}


def _current_and_last(course_ids, *, now: datetime) -> tuple[dict[int, Dose], dict[int, Dose]]:
    """Per course: the open slot and the last charted slot, in one windowed query (+ one for the last holds)."""
    w = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    open_q = Q(status=Dose.Status.SCHEDULED, due_at__gte=now - w)
    charted_q = Q(status__in=CHARTED)
    doses = (
        Dose.objects.filter(course_id__in=course_ids)
        .filter(open_q | charted_q)
        .annotate(
            rn_open=Window(
                RowNumber(),
                partition_by=[F("course_id")],
                order_by=[Case(When(open_q, then=Value(0)), default=Value(1)), F("due_at").asc()],
            ),
            rn_last=Window(
                RowNumber(),
                partition_by=[F("course_id")],
                order_by=[Case(When(charted_q, then=Value(0)), default=Value(1)), F("due_at").desc()],
            ),
            # An override that has lapsed (INV-OVR) no longer counts: the dose shows as held again.
            overridden=Exists(Override.objects.filter(dose=OuterRef("pk"), lapsed_at__isnull=True)),
            # A given dose is shown with the time it was given, not the time it was due.
            given_at=Subquery(
                Administration.objects.filter(dose=OuterRef("pk"), entered_in_error_at__isnull=True).values(
                    "started_at"
                )[:1]
            ),
        )
        .filter((Q(rn_open=1) & open_q) | (Q(rn_last=1) & charted_q))
        .select_related("latest_evaluation")
        .prefetch_related(
            Prefetch("holds", queryset=Hold.objects.filter(entered_in_error_at__isnull=True), to_attr="standing_holds")
        )
        .order_by()
    )
    current, last = {}, {}
    for dose in doses:
        if dose.rn_open == 1 and dose.status == Dose.Status.SCHEDULED:
            current[dose.course_id] = dose
        if dose.rn_last == 1 and dose.status in CHARTED:
            last[dose.course_id] = dose
    return current, last


def ward_board(ward: Ward, *, now: datetime) -> Board:
    """One row per patient with an open IL-2 course (5 queries, whatever the number of patients)."""
    courses = list(
        _open_courses(ward)
        .select_related("patient__assigned_nurse__profile")
        .annotate(
            given_count=Count("doses", filter=Q(doses__status=Dose.Status.GIVEN)),
            held_count=Count("doses", filter=Q(doses__status=Dose.Status.HELD)),
        )
        .order_by("patient__name", "patient_id")
    )
    current, last = _current_and_last([c.pk for c in courses], now=now)
    vitals = latest_vitals_for([c.patient_id for c in courses], now=now)
    thresholds = _thresholds(c.rule_set_id for c in courses) if courses else {}
    zone = ward.zone
    rows = []
    for course in courses:
        cur, prev = current.get(course.pk), last.get(course.pk)
        overridden = bool(cur is not None and cur.overridden)
        state = board_state(
            course_status=course.status,
            current=cur,
            last=prev,
            now=now,
            overridden=overridden,
            discontinued=course.discontinued_at is not None,
        )
        if cur is not None and cur.flag in engine.BLOCKING_LEVELS:
            rules = hold_rules(cur.latest_evaluation)
        elif state == "held" and prev is not None and prev.standing_holds:
            hold = prev.standing_holds[0]
            rules = list(hold.rule_ids) or [hold.reason]
        else:
            rules = []
        latest = vitals.get(course.patient_id)
        rows.append(
            BoardRow(
                patient=course.patient,
                course=course,
                state=state,
                current=cur,
                last=prev,
                cycle=(cur or prev).cycle if (cur or prev) else None,
                day=course_day(course, now=now, zone=zone),
                rest_day=rest_day(prev, now=now, zone=zone) if state == "rest" else None,
                due_in=time_to_due(cur.due_at if cur else None, now=now),
                rules=rules,
                overridden=overridden,
                vitals=latest,
                vitals_minutes=None if latest is None else int((now - latest.recorded_at).total_seconds() // 60),
                marks=vitals_marks(latest, thresholds.get(course.rule_set_id, {})),
                given=course.given_count,
                held=course.held_count,
            )
        )
    order = list(STATES)
    far = now + timedelta(days=3650)
    rows.sort(key=lambda r: (order.index(r.state), r.next_due_at or far, r.patient.name, r.patient.pk))
    return Board(ward=ward, rows=rows, now=now)


# --- Downtime sheet --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DowntimeEntry:
    patient: Patient
    course: Course
    preparation: object
    doses: list[Dose]
    vitals: VitalSigns | None
    marks: frozenset[str]


def downtime_sheet(ward: Ward, *, now: datetime, hours: int = 24) -> list[DowntimeEntry]:
    """Every open slot due from now − W to now + 24 h per patient on IL-2, flags and last vitals (4 queries)."""
    w = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    courses = list(_open_courses(ward).select_related("patient").order_by("patient__name", "patient_id"))
    doses: dict[int, list[Dose]] = {}
    for dose in (
        Dose.objects.filter(
            course__in=[c.pk for c in courses],
            status=Dose.Status.SCHEDULED,
            due_at__gte=now - w,
            due_at__lte=now + timedelta(hours=hours),
        )
        .select_related("latest_evaluation")
        .order_by("due_at")
    ):
        doses.setdefault(dose.course_id, []).append(dose)
    vitals = latest_vitals_for([c.patient_id for c in courses], now=now)
    thresholds = _thresholds(c.rule_set_id for c in courses) if courses else {}
    return [
        DowntimeEntry(
            patient=c.patient,
            course=c,
            preparation=preparation_for(c),
            doses=doses.get(c.pk, []),
            vitals=vitals.get(c.patient_id),
            marks=vitals_marks(vitals.get(c.patient_id), thresholds.get(c.rule_set_id, {})),
        )
        for c in courses
    ]


# --- Patient chart ---------------------------------------------------------------------------------------------------


def patient_course(patient: Patient) -> Course | None:
    """The open course, else the latest one."""
    return (
        Course.objects.filter(patient=patient)
        .select_related("rule_set", "eligibility_signature", "oncologist")
        .order_by(Case(When(status__in=Course.OPEN_STATUSES, then=Value(0)), default=Value(1)), "-first_dose_at")
        .first()
    )


def mar(course: Course) -> list[Dose]:
    """The course's slots with their whole history: administrations (entered-in-error too), holds, overrides."""
    return list(
        Dose.objects.filter(course=course)
        .select_related("latest_evaluation")
        .prefetch_related(
            Prefetch(
                "administrations",
                queryset=Administration.objects.select_related(
                    "given_by__profile", "verified_by__profile", "entered_in_error_by__profile"
                ).order_by("charted_at", "pk"),
                to_attr="history",
            ),
            Prefetch("holds", queryset=Hold.objects.select_related("by__profile"), to_attr="hold_history"),
            Prefetch("overrides", queryset=Override.objects.select_related("by__profile"), to_attr="override_history"),
        )
        .order_by("cycle", "number")
    )


def next_open_dose(course: Course | None, *, now: datetime) -> Dose | None:
    if course is None or course.status not in Course.OPEN_STATUSES:
        return None
    w = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    return (
        Dose.objects.filter(course=course, status=Dose.Status.SCHEDULED, due_at__gte=now - w)
        .select_related("latest_evaluation")
        .order_by("due_at")
        .first()
    )


def live_panel(patient: Patient, course: Course | None, dose: Dose | None, *, now: datetime):
    """The capillary-leak panel (monitoring.domain.panels) from the patient's data now, on the course's rule set.

    A read: the engine runs on a fresh snapshot without storing an evaluation (7 queries)."""
    if course is None:
        return None
    snapshot = patient_snapshot(
        patient.pk,
        now=now,
        baseline_weight_kg=course.baseline_weight_kg,
        first_slot_of_cycle=dose is not None and dose.number == 1,
        since=course.first_dose_at - HISTORY_BEFORE_FIRST_DOSE,
    )
    # The same rule set version the dose evaluations use (the course's own), parsed once.
    result = engine.evaluate(snapshot, rule_set=parsed_rule_set(course_version(course)), now=now)
    return capillary_leak_panel(snapshot, result)


@dataclass(frozen=True)
class Spark:
    """A server-rendered SVG sparkline: polyline points in a width × height box, and a threshold line."""

    label: str
    unit: str
    field: str
    points: str
    threshold_y: float | None
    first: object
    last: object
    low: object
    high: object
    width: int = 160
    height: int = 40


SPARK_FIELDS = (
    ("sbp", "Systolic BP", "mmHg", "CV-SBP.hold_below"),
    ("heart_rate", "Heart rate", "/min", "CV-HR.hold_above"),
    ("spo2", "SpO2", "%", "RS-SPO2.hold_at_or_below"),
    ("resp_rate", "Resp. rate", "/min", "RS-RR.notify_above"),
    ("temp_c", "Temperature", "°C", "TP-TEMP.notify_above"),
)


def sparklines(vitals: list[VitalSigns], thresholds: dict, *, width: int = 160, height: int = 40) -> list[Spark]:
    """Trend lines of the standing vitals (oldest → newest), each scaled to its own range and its threshold."""
    rows = sorted((v for v in vitals if v.entered_in_error_at is None), key=lambda v: (v.recorded_at, v.pk))
    if len(rows) < 2:
        return []
    start, span = rows[0].recorded_at, (rows[-1].recorded_at - rows[0].recorded_at).total_seconds() or 1
    out = []
    for field, label, unit, key in SPARK_FIELDS:
        values = [float(getattr(v, field)) for v in rows]
        limit = float(thresholds[key]) if key in thresholds else None
        bounds = [*values, limit] if limit is not None else values
        low, high = min(bounds), max(bounds)
        pad = (high - low) * 0.1 or 1

        def y(value, low=low - pad, high=high + pad):
            return round(height - (value - low) / (high - low) * height, 1)

        points = " ".join(
            f"{round((v.recorded_at - start).total_seconds() / span * width, 1)},{y(value)}"
            for v, value in zip(rows, values, strict=True)
        )
        out.append(
            Spark(
                label,
                unit,
                field,
                points,
                None if limit is None else y(limit),
                getattr(rows[0], field),
                getattr(rows[-1], field),
                min(getattr(v, field) for v in rows),
                max(getattr(v, field) for v in rows),
                width,
                height,
            )
        )
    return out


@dataclass(frozen=True)
class Flowsheet:
    vitals: list[tuple[VitalSigns, frozenset[str]]]
    sparks: list[Spark]
    neuro: list
    weights: list
    fluids: list
    labs: list
    events: list


def flowsheet(patient: Patient, course: Course | None, *, limit: int = 40) -> Flowsheet:
    """The patient's observations, newest first, entered-in-error rows included and shown as such (6 queries)."""
    thresholds = (course.rule_set.definition or {}).get("thresholds", {}) if course else {}
    vitals = observations(patient, "vitals", limit=limit)
    return Flowsheet(
        vitals=[(v, vitals_marks(v, thresholds)) for v in vitals],
        sparks=sparklines(vitals, thresholds),
        neuro=observations(patient, "neuro", limit=limit),
        weights=observations(patient, "weights", limit=limit),
        fluids=observations(patient, "fluids", limit=limit),
        labs=observations(patient, "labs", limit=limit),
        events=observations(patient, "events", limit=limit),
    )


def latest_teaching(course: Course | None) -> TeachingRecord | None:
    if course is None:
        return None
    return TeachingRecord.objects.filter(course=course).select_related("by__profile").first()
