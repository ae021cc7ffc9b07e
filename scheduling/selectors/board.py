"""The nurse's reads: the ward board, the downtime sheet and the patient chart (MAR, flowsheet, capillary-leak panel).

Every function here costs a fixed number of queries whatever the number of patients (tests/scheduling/mar/test_board.py
pins them). Times stay aware UTC; templates show them in the ward's zone (the views activate it).
"""

import dataclasses
import hashlib
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Prefetch, Value, When

from il2ward.db import Statement, table_names
from il2ward.models import Patient, StaffProfile, Ward
from il2ward.people import printed_name_of
from monitoring.domain import engine
from monitoring.domain.panels import capillary_leak_panel
from monitoring.domain.rulesets import BOARD_MARKS, comparison
from monitoring.models import RuleSetVersion, VitalSigns
from monitoring.selectors import latest_vitals_for, observations, patient_snapshot
from scheduling.domain import window as slot_window
from scheduling.domain.hold_reasons import rule_title
from scheduling.models import Administration, Course, Dose, DoseEvaluation, Hold, Override, TeachingRecord
from scheduling.selectors import preparation_for
from scheduling.selectors.courses import HISTORY_BEFORE_FIRST_DOSE, course_version, parsed_rule_set

CHARTED = (Dose.Status.GIVEN, Dose.Status.HELD, Dose.Status.MISSED)

# An evaluation's `missing` names (monitoring.domain.engine.MISSING_NAMES) in the nurse's words: the one home of these
# words, read by the dose page and the board (a test keeps it covering every name the engine can give).
MISSING_WORDS = {
    "vitals": "vitals in the last hour, with rhythm, O2 and vasopressors",
    "neuro": "a neuro check in the last hour, every question answered",
    "exam": "the bedside exam in the last 2 h",
    "weight": "a weight in the last 24 h",
    "baseline_weight": "the course's baseline weight",
    "urine_8h": "urine output for the last 8 h",
    **{
        f"labs.{name}": f"{words} result in the last 24 h"
        for name, words in (
            ("creatinine", "a creatinine"),
            ("platelets", "a platelet count"),
            ("bilirubin", "a bilirubin"),
            ("bicarbonate", "a bicarbonate"),
            ("ast", "an AST"),
            ("alt", "an ALT"),
            ("potassium", "a potassium"),
            ("troponin", "a troponin"),
            ("ck_mb", "a CK-MB"),
        )
    },
}


def missing_in_words(missing) -> list[str]:
    """ "labs.ast" → "an AST result in the last 24 h"; a name without words is shown as it is, never dropped."""
    return [MISSING_WORDS.get(name, name.replace("_", " ").replace(".", ": ")) for name in missing]


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
# The states of a slot in its pre-dose window: the evaluation's missing items are shown, old vitals are stale.
_ACTIVE = frozenset(("discontinue", "stop", "hold", "overdue", "incomplete", "due_now", "due_soon"))

# Out-of-range marks for the latest vitals: the course rule-set version's own thresholds (HOLD-RULES §3).
IRREGULAR = ("af", "svt", "brady_treated", "pvc_frequent", "bigeminy", "nsvt", "vt_sustained", "other")
VITALS_FRESH_MINUTES = 60  # HOLD-RULES §3 freshness default, for the "stale" mark


def age_text(minutes: int) -> str:
    """12 → "12 min", 135 → "2 h 15 min", 5483 → "3 d 19 h"."""
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


_COMPARE = {"<": operator.lt, "≤": operator.le, ">": operator.gt, "≥": operator.ge}


def mark_limits(thresholds: dict) -> tuple:
    """The rule set's limits for the marks, parsed once: (field, comparison, limit) for each BOARD_MARKS threshold
    the rule set has."""
    limits = []
    for field, key in BOARD_MARKS:
        limit = thresholds.get(key)
        if limit is not None:
            limits.append((field, _COMPARE[comparison(key)], Decimal(str(limit))))
    return tuple(limits)


def marks_beyond(vitals: "VitalSigns | BoardVitals | None", limits: tuple) -> frozenset[str]:
    """The fields of a vitals set that are out of range (see vitals_marks) for limits from mark_limits."""
    if vitals is None:
        return frozenset()
    marks = set()
    for field, beyond, limit in limits:
        value = getattr(vitals, field)
        if value is not None and beyond(value, limit):
            marks.add(field)
    if vitals.phenylephrine_mcg_kg_min or vitals.other_pressor not in ("", "none"):
        marks.add("phenylephrine_mcg_kg_min")  # CV-PRESSOR notifies on any pressor running
    if vitals.rhythm in IRREGULAR:
        marks.add("rhythm")
    return frozenset(marks)


def vitals_marks(vitals: "VitalSigns | BoardVitals | None", thresholds: dict) -> frozenset[str]:
    """The fields of a vitals set that are out of range for the course's rule-set version (CV-SBP, CV-HR, RS-SPO2,
    RS-RR, TP-TEMP, CV-PRESSOR, RS-O2, CV-RHYTHM): shown in bold red on the board and the flowsheet. A threshold the
    rule set does not have marks nothing: the marks are the rules', never numbers of their own."""
    return marks_beyond(vitals, mark_limits(thresholds))


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


@dataclass(frozen=True, slots=True)
class OpenSlot:
    """A course's open slot as the board reads it: values (a row of the query), not a model instance, which cost more
    to build than everything the board does with it."""

    pk: int
    cycle: int
    number: int
    due_at: datetime
    flag: str
    overridden: bool  # a standing override lifts its hold (a lapsed one does not: INV-OVR)
    findings: list | None  # its latest evaluation's, None without one
    missing: list | None


@dataclass(frozen=True, slots=True)
class LastSlot:
    """A course's last charted slot (given, held or missed) as the board reads it."""

    pk: int
    cycle: int
    number: int
    due_at: datetime
    status: str
    given_at: datetime | None  # a given slot is shown with the time it was given, not the time it was due
    hold_reason: str | None  # its standing hold's, for a held slot
    hold_rule_ids: list | None


def board_state(
    *,
    course_status: str,
    current: Dose | OpenSlot | None,
    last: Dose | LastSlot | None,
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


def course_day(course: "Course | BoardCourse", *, now: datetime, zone) -> int:
    """Day of the course in ward-local dates: day 1 is the first dose's date; cycle 2 starts on day 15 (SCH-CYCLE2)."""
    return (now.astimezone(zone).date() - course.first_dose_at.astimezone(zone).date()).days + 1


def rest_day(last: Dose | LastSlot | None, *, now: datetime, zone) -> int | None:
    """Which day of the rest between the cycles today is, in ward-local dates (the course day is not it)."""
    if last is None:
        return None
    return (now.astimezone(zone).date() - last.due_at.astimezone(zone).date()).days


@dataclass(frozen=True)
class BoardRow:
    patient: "BoardPatient"
    course: "BoardCourse"
    state: str
    current: OpenSlot | None  # the open slot: the earliest not charted whose window has not closed
    last: LastSlot | None  # the latest slot charted given, held or missed
    cycle: int | None
    day: int
    rest_day: int | None  # in the rest between cycles: day 1 is the day after cycle 1's last slot
    due_in: str
    rules: list[str]  # rule ids behind a hold (the open slot's evaluation, or the last slot's hold)
    overridden: bool
    vitals: "BoardVitals | None"
    vitals_minutes: int | None  # age of the latest vitals
    marks: frozenset[str]
    given: int
    held: int
    nurse_name: str = ""  # the assigned nurse's printed name, else her username

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
        return self.state in _ACTIVE and self.vitals_minutes is not None and self.vitals_minutes > VITALS_FRESH_MINUTES


@dataclass(frozen=True)
class RowView:
    """One board row as shown, every value formatted once here (the template only places the strings).

    `key(viewer)` fingerprints what the row shows, so the poll sends a row only when its fingerprint moved
    (scheduling/mar/views.py). The ticking texts — the countdown and the vitals' age, which move every minute — are
    not in it: the poll sends them apart as small elements of their own, so a minute passing does not re-send rows.
    """

    pk: int  # the patient's: the row's id on the page
    name: str
    mrn: str
    nurse_id: int | None
    nurse_name: str
    period: str  # "C1 · day 3", "Rest day 2 · course day 9", "Starts Wed 2 Dec"
    dose_pk: int | None
    dose_label: str  # "C1 #1 · Wed 06:20" (ward time)
    state: str
    state_label: str
    rules: tuple[tuple[str, str], ...]  # (rule id or hold reason, in words)
    overridden: bool
    missing: tuple[str, ...]  # what the open slot's evaluation still needs, in words (MISSING_WORDS)
    last: str  # "C1 #3 · given 06:12"
    vitals: tuple[tuple[tuple[str, bool], ...], ...]  # groups kept on one line, of (text, out of range)
    vitals_marked: bool
    vitals_at: str  # ISO 8601, for <time datetime>
    vitals_at_text: str  # "Wed 2 Dec 06:10"
    counts: str  # "3 / 1" given / held
    # Ticking: outside the fingerprint.
    due_in: str
    due_late: bool
    age: str
    stale: bool

    fingerprint: str = ""  # of every field above the ticking ones (row_view passes them in this order)

    def key(self, viewer_id: int | None) -> str:
        return f"{self.fingerprint}{'y' if self.nurse_id == viewer_id else 'n'}"  # "yours" is the viewer's


# Week days and months as strftime's %a and %b give them in the C locale (Python's own unless it is changed): the
# board formats a few hundred times per page, and a lookup costs a fraction of strftime.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day_text(local: datetime) -> str:
    """ "Wed 2 Dec" of a ward-local time."""
    return f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"


def _clock(local: datetime) -> str:
    """ "06:20" of a ward-local time."""
    return f"{local.hour:02d}:{local.minute:02d}"


def _vitals_groups(v: "BoardVitals", marks: frozenset[str]):
    first = ((f"BP {v.sbp}/{v.dbp}", "sbp" in marks), (f"HR {v.heart_rate}", "heart_rate" in marks))
    first += ((f"SpO2 {v.spo2}", "spo2" in marks),)
    second = [(f"RR {v.resp_rate}", "resp_rate" in marks), (f"T {v.temp_c}", "temp_c" in marks)]
    if v.phenylephrine_mcg_kg_min:
        second.append((f"pressor {v.phenylephrine_mcg_kg_min}", True))
    if v.o2_lpm:
        second.append((f"O2 {v.o2_lpm} L/min", True))
    if "rhythm" in marks:
        second.append((v.get_rhythm_display(), True))
    return (first, tuple(second))


def row_view(row: BoardRow, *, zone) -> RowView:
    """The row's display strings, in ward time (see RowView), each formatted once here."""
    patient, cur, last, v, state = row.patient, row.current, row.last, row.vitals, row.state
    if state == "rest":
        period = f"Rest day {row.rest_day or '—'} · course day {row.day}"
    elif row.day < 1:
        period = f"Starts {_day_text(row.course.first_dose_at.astimezone(zone))}"
    else:
        period = f"C{row.cycle or 1} · day {row.day}"
    last_text = ""
    if last is not None and state in ("given", "held", "missed"):
        when = f"given {_clock(last.given_at.astimezone(zone))}" if last.given_at else None
        last_text = f"C{last.cycle} #{last.number} · {when or f'due {_clock(last.due_at.astimezone(zone))}'}"
    if cur is not None:
        due = cur.due_at.astimezone(zone)
        dose_label = f"C{cur.cycle} #{cur.number} · {_WEEKDAYS[due.weekday()]} {_clock(due)}"
    else:
        dose_label = ""
    if v is not None:
        seen = v.recorded_at.astimezone(zone)
        vitals, vitals_at = _vitals_groups(v, row.marks), v.recorded_at.isoformat()
        vitals_at_text = f"{_day_text(seen)} {_clock(seen)}"
    else:
        vitals, vitals_at, vitals_at_text = (), "", ""
    needs = cur.missing if cur is not None and state in _ACTIVE else None  # None: no evaluation yet
    missing = tuple(missing_in_words(needs)) if needs is not None else ()
    # Every field of RowView above the ticking ones, in order: what the fingerprint covers.
    static = (
        patient.pk,
        patient.name,
        patient.mrn,
        patient.assigned_nurse_id,
        row.nurse_name,
        period,
        cur.pk if cur is not None else None,
        dose_label,
        state,
        row.state_label,
        tuple((rule, rule_title(rule)) for rule in row.rules),
        row.overridden,
        missing,
        last_text,
        vitals,
        bool(row.marks),
        vitals_at,
        vitals_at_text,
        f"{row.given} / {row.held}",
    )
    return RowView(
        *static,
        due_in=row.due_in,
        due_late="overdue" in row.due_in,
        age=row.vitals_age,
        stale=row.vitals_stale,
        fingerprint=hashlib.blake2b(repr(static).encode(), digest_size=6).hexdigest(),
    )


@dataclass(frozen=True)
class Board:
    ward: Ward
    rows: list[BoardRow]
    now: datetime
    views: list[RowView] = dataclasses.field(default_factory=list)  # the rows as shown, in the same order

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    @property
    def summary(self) -> list[tuple[str, str, int]]:
        return [(state, label, self.count(state)) for state, label in STATES.items() if self.count(state)]


def _open_courses(ward: Ward):
    return Course.objects.filter(patient__ward=ward, status__in=Course.OPEN_STATUSES)


@dataclass(frozen=True, slots=True)
class BoardPatient:
    pk: int
    name: str
    mrn: str
    assigned_nurse_id: int | None


@dataclass(frozen=True, slots=True)
class BoardCourse:
    pk: int
    status: str
    first_dose_at: datetime
    discontinued_at: datetime | None
    rule_set_id: int
    patient_id: int


@dataclass(frozen=True, slots=True)
class BoardVitals:
    """The latest standing vitals set as the board shows and marks it (vitals_marks reads it like a VitalSigns)."""

    recorded_at: datetime
    sbp: int
    dbp: int
    heart_rate: int
    resp_rate: int
    spo2: int
    temp_c: Decimal
    o2_lpm: Decimal | None
    fio2_pct: int | None
    rhythm: str
    phenylephrine_mcg_kg_min: Decimal | None
    other_pressor: str

    def get_rhythm_display(self) -> str:
        return str(dict(VitalSigns.Rhythm.choices).get(self.rhythm, self.rhythm))


# The board in one statement, written once (no ORM compiling on every load, no model instances): per open course of
# the ward, the ids of its open slot (the earliest not charted whose window has not closed), of its last charted slot
# and of the patient's latest standing vitals, and its given and held counts — each a correlated subquery, one probe
# of the (course, status, due_at) or (patient, recorded_at) index, so the cost follows the number of courses, not of
# their doses or history; then those rows by primary key. MATERIALIZED keeps PostgreSQL from inlining the first part
# into the joins, which would run each subquery once per join condition instead of once per course.
_OPEN_SQL = """o.id, o.cycle, o.number, o.due_at, o.flag,
  EXISTS (SELECT 1 FROM {override} x WHERE x.dose_id = o.id AND x.lapsed_at IS NULL), oe.findings, oe.missing"""
_LAST_SQL = "l.id, l.cycle, l.number, l.due_at, l.status, la.started_at, lh.reason, lh.rule_ids"
# The last slot's standing administration and hold are joined: at most one of each per dose
# (one_administration_per_dose, one_hold_per_dose).
_SLOT_JOINS = """LEFT JOIN {dose} o ON o.id = b.open_id
LEFT JOIN {evaluation} oe ON oe.id = o.latest_evaluation_id
LEFT JOIN {dose} l ON l.id = b.last_id
LEFT JOIN {administration} la ON la.dose_id = l.id AND la.entered_in_error_at IS NULL
LEFT JOIN {hold} lh ON lh.dose_id = l.id AND lh.entered_in_error_at IS NULL"""
_BOARD_SQL = """WITH b AS {materialized} (
  SELECT c.id, c.status, c.first_dose_at, c.discontinued_at, c.rule_set_id, c.patient_id,
    p.name, p.mrn, p.assigned_nurse_id,
    (SELECT d.id FROM {dose} d WHERE d.course_id = c.id AND d.status = %(scheduled)s AND d.due_at >= %(open_from)s
     ORDER BY d.due_at LIMIT 1) AS open_id,
    (SELECT d.id FROM {dose} d WHERE d.course_id = c.id AND d.status IN ({charted}) ORDER BY d.due_at DESC LIMIT 1)
     AS last_id,
    (SELECT COUNT(*) FROM {dose} d WHERE d.course_id = c.id AND d.status = %(given)s) AS given_count,
    (SELECT COUNT(*) FROM {dose} d WHERE d.course_id = c.id AND d.status = %(held)s) AS held_count,
    (SELECT v.id FROM {vitals} v WHERE v.patient_id = c.patient_id AND v.entered_in_error_at IS NULL
     AND v.recorded_at <= %(now)s ORDER BY v.recorded_at DESC, v.id DESC LIMIT 1) AS vitals_id
  FROM {course} c JOIN {patient} p ON p.id = c.patient_id
  WHERE p.ward_id = %(ward)s AND c.status IN ({open_statuses})
)
SELECT b.id, b.status, b.first_dose_at, b.discontinued_at, b.rule_set_id, b.patient_id,
  b.name, b.mrn, b.assigned_nurse_id, sp.printed_name, u.first_name, u.last_name, u.username,
  b.given_count, b.held_count,
  {open_slot},
  {last_slot},
  v.recorded_at, v.sbp, v.dbp, v.heart_rate, v.resp_rate, v.spo2, v.temp_c, v.o2_lpm, v.fio2_pct, v.rhythm,
  v.phenylephrine_mcg_kg_min, v.other_pressor
FROM b
LEFT JOIN {user} u ON u.id = b.assigned_nurse_id
LEFT JOIN {profile} sp ON sp.user_id = u.id
{slot_joins}
LEFT JOIN {vitals} v ON v.id = b.vitals_id"""

# The model field behind each column the statement returns, in order (None: a value the database gives as it is):
# their converters turn what the database sends into what the ORM would give (SQLite sends datetimes as text).
_OPEN_FIELDS = (
    *(Dose._meta.get_field(name) for name in ("id", "cycle", "number", "due_at", "flag")),
    None,  # overridden, a boolean: bool() below
    DoseEvaluation._meta.get_field("findings"),
    DoseEvaluation._meta.get_field("missing"),
)
_LAST_FIELDS = (
    *(Dose._meta.get_field(name) for name in ("id", "cycle", "number", "due_at", "status")),
    Administration._meta.get_field("started_at"),
    Hold._meta.get_field("reason"),
    Hold._meta.get_field("rule_ids"),
)
_BOARD_FIELDS = (
    *(Course._meta.get_field(n) for n in ("id", "status", "first_dose_at", "discontinued_at", "rule_set", "patient")),
    *(Patient._meta.get_field(n) for n in ("name", "mrn", "assigned_nurse")),
    StaffProfile._meta.get_field("printed_name"),
    None,  # the nurse's first name
    None,  # last name
    None,  # username
    None,  # given count
    None,  # held count
    *_OPEN_FIELDS,
    *_LAST_FIELDS,
    *(VitalSigns._meta.get_field(field.name) for field in dataclasses.fields(BoardVitals)),
)


def _build_board_sql(db) -> str:
    names = table_names(
        db,
        dose=Dose,
        course=Course,
        patient=Patient,
        vitals=VitalSigns,
        evaluation=DoseEvaluation,
        override=Override,
        administration=Administration,
        hold=Hold,
        user=Patient._meta.get_field("assigned_nurse").related_model,
        profile=StaffProfile,
    )
    return _BOARD_SQL.format(
        materialized="MATERIALIZED" if db.vendor == "postgresql" else "",
        open_statuses=", ".join(f"%({key})s" for key in _listed("open", Course.OPEN_STATUSES)),
        charted=", ".join(f"%({key})s" for key in _listed("charted", CHARTED)),
        open_slot=_OPEN_SQL.format(**names),
        last_slot=_LAST_SQL,
        slot_joins=_SLOT_JOINS.format(**names),
        **names,
    )


_BOARD = Statement(_build_board_sql, _BOARD_FIELDS)


def _build_thresholds_sql(db) -> str:
    names = table_names(db, rule_set=RuleSetVersion, course=Course, patient=Patient)
    # The database extracts the thresholds: the whole definition (every rule) is neither sent nor decoded.
    if db.vendor == "postgresql":
        extract = "r.definition -> 'thresholds'"
    else:
        extract = "json_extract(r.definition, '$.thresholds')"
    statuses = ", ".join(f"%({key})s" for key in _listed("open", Course.OPEN_STATUSES))
    return (
        f"SELECT r.id, {extract} FROM {names['rule_set']} r WHERE r.id IN (SELECT c.rule_set_id "
        f"FROM {names['course']} c JOIN {names['patient']} p ON p.id = c.patient_id "
        f"WHERE p.ward_id = %(ward)s AND c.status IN ({statuses}))"
    )


# The rule sets of the ward's open courses, each with its thresholds (the JSON field's converter decodes them).
_THRESHOLDS = Statement(_build_thresholds_sql, (None, RuleSetVersion._meta.get_field("definition")))


def _thresholds(ward: Ward) -> dict[int, dict]:
    """The thresholds of each rule set of the ward's open courses (one query)."""
    params = {"ward": ward.pk, **_listed("open", Course.OPEN_STATUSES)}
    return {pk: thresholds or {} for pk, thresholds in _THRESHOLDS.rows(params, using=Course.objects.db)}


def _listed(name: str, values) -> dict[str, str]:
    """The parameters of an IN list: {"open_0": "scheduling", ...}."""
    return {f"{name}_{i}": str(value) for i, value in enumerate(values)}


def _board_rows(ward: Ward, *, now: datetime) -> list[list]:
    """One row per open course of the ward (see _BOARD_SQL), each value as the ORM would give it."""
    params = {
        "ward": ward.pk,
        "now": now,
        "open_from": now - timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES),
        "scheduled": Dose.Status.SCHEDULED.value,
        "given": Dose.Status.GIVEN.value,
        "held": Dose.Status.HELD.value,
        **_listed("open", Course.OPEN_STATUSES),
        **_listed("charted", CHARTED),
    }
    return _BOARD.rows(params, using=Course.objects.db)


def ward_board(ward: Ward, *, now: datetime) -> Board:
    """One row per patient with an open IL-2 course (2 queries, whatever the number of patients: the board's
    statement and the rule sets' thresholds; 1 for a ward with none)."""
    fetched = _board_rows(ward, now=now)
    if not fetched:
        return Board(ward=ward, rows=[], now=now)
    limits = {pk: mark_limits(values) for pk, values in _thresholds(ward).items()}
    zone = ward.zone
    opened = 15
    last, seen = opened + len(_OPEN_FIELDS), opened + len(_OPEN_FIELDS) + len(_LAST_FIELDS)
    rows = []
    for row in fetched:
        course = BoardCourse(*row[0:6])
        patient = BoardPatient(row[5], *row[6:9])
        printed, first_name, last_name, username, given, held = row[9:opened]
        if row[opened] is not None:
            row[opened + 5] = bool(row[opened + 5])
            cur = OpenSlot(*row[opened:last])
        else:
            cur = None
        prev = LastSlot(*row[last:seen]) if row[last] is not None else None
        latest = BoardVitals(*row[seen:]) if row[seen] is not None else None
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
            rules = engine.blocking_rules(cur.findings)
        elif state == "held" and prev is not None and prev.hold_reason is not None:
            rules = list(prev.hold_rule_ids or ()) or [prev.hold_reason]
        else:
            rules = []
        rows.append(
            BoardRow(
                patient=patient,
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
                marks=marks_beyond(latest, limits.get(course.rule_set_id, ())),
                given=given,
                held=held,
                nurse_name=printed_name_of(printed, f"{first_name} {last_name}", username)
                if patient.assigned_nurse_id
                else "",
            )
        )
    order = list(STATES)
    far = now + timedelta(days=3650)
    rows.sort(key=lambda r: (order.index(r.state), r.next_due_at or far, r.patient.name, r.patient.pk))
    return Board(ward=ward, rows=rows, now=now, views=[row_view(row, zone=zone) for row in rows])


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
    thresholds = _thresholds(ward) if courses else {}
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
