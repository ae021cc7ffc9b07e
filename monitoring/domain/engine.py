"""The pre-dose rule engine (HOLD-RULES.md §3): one pure function, ``evaluate(snapshot, rule_set=..., now=...)``.

Semantics:

* Every rule reads its input's **latest** value whatever its age; freshness only decides whether ``give`` is allowed.
  A reading, event or fluid period dated after ``now`` does not exist yet and is ignored.
* The decision is the most restrictive that applies: ``discontinue`` > ``stop`` > ``hold`` > ``incomplete`` >
  ``give``. ``notify`` findings never change it.
* Two readings of one input at the same clinical time (``snapshot.conflicts``): every alternative is evaluated and
  the most restrictive counts (the findings of all of them, the missing data of all of them), with an
  ``INV-CONFLICT`` notify finding naming the inputs that conflict (HOLD-RULES §3a INV-CONFLICT).
* Within one rule each level (stop, hold, notify) is checked on its own against its threshold, except that a rule's
  ``hold`` is dropped when the same rule already says ``stop`` (so a band like "hold 2.5–2.9, stop ≥ 3.0" reads as
  "hold ≥ 2.5 unless ≥ 3.0", and AG-3REL counts only real holds).
* Numbers are compared exactly, never as binary floats: charted values and thresholds are ints and Decimals, which
  Python compares exactly; a float reading is read through its shortest repr; derived values (weight gain, urine
  over a window) are exact quotients (``_Ratio``, ``Fraction``) compared by cross-multiplication.
* Urine output and diarrhoea are read from fluid periods over windows that end at the end of the latest period
  recorded at or before ``now`` (its "latest value"). A period partly inside a window counts pro rata; where
  periods overlap, the lower urine rate and the higher diarrhoea rate are used (the safer reading of a charting
  error). Urine output needs the window fully covered; diarrhoea counts what is charted (a lower bound).
* ``used`` lists the source ids of every observation the rule set reads that exists at ``now``: the present
  readings of the enabled rules' inputs, of the freshness fields and of the CTCAE grades, the fluid periods inside
  the windows read, the active events of the kinds read, and the earlier results a rule looked back at.

Speed: the engine runs before every dose, on every new observation and in sweeps over the ward, so the common case
(nothing fires) is kept cheap: a rule set is compiled once into a ``_Plan`` (which fields to read, numeric checks as
tuples, freshness limits as timedeltas), each reading is looked up once, and a finding's text is only built when a
rule fires. ``bench/evaluation.py`` measures it.

The rule set supplies every number (``rulesets.py``); this module holds no clinical thresholds.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from types import MappingProxyType
from typing import NamedTuple

from . import ctcae
from .rulesets import RuleSet, json_ready
from .snapshot import LAB_NAMES, READING_FIELDS, Event, FluidPeriod, PatientSnapshot, Reading

# Mildest first; the decision is the most severe that applies.
DECISIONS = ("give", "incomplete", "hold", "stop", "discontinue")
DECISION_SEVERITY: Mapping[str, int] = MappingProxyType({d: i for i, d in enumerate(DECISIONS)})
_LEVELS_SEVERE_FIRST = ("discontinue", "stop", "hold", "notify")  # order of one rule's findings
_BLOCKING_LEVELS = frozenset({"discontinue", "stop", "hold"})
BLOCKING_LEVELS = tuple(sorted(_BLOCKING_LEVELS))  # the levels that keep a dose from being given


def blocking_rules(findings: Iterable[Mapping] | None, levels: Iterable[str] = _BLOCKING_LEVELS) -> list[str]:
    """The rule ids behind a hold, stop or discontinue (or the findings of `levels`), in finding order, once each.

    The one answer to "which rules hold this dose" for the board, the dose page, holds, overrides, refusals and
    escalations. Stored findings are dicts; None (no evaluation yet) has no rules."""
    wanted = frozenset(levels)
    return list(dict.fromkeys(f["rule"] for f in findings or () if f["level"] in wanted))


# Names that can appear in Evaluation.missing ("labs.<name>" for each required lab, see snapshot.LAB_NAMES).
MISSING_NAMES = ("vitals", "neuro", "exam", "weight", "baseline_weight", "urine_8h") + tuple(
    f"labs.{name}" for name in LAB_NAMES.values()
)

_ACTIONS = {
    "discontinue": "hold this dose and every later dose of the course (permanently discontinue; the oncologist "
    "stops the course)",
    "stop": "hold this dose and recommend stopping the cycle (an oncologist confirms stop or continue)",
    "hold": "hold this dose and reassess at the next slot",
    "notify": "notify the physician",
}

_OPS: dict[str, tuple[Callable[[object, object], bool], str]] = {
    "<": (operator.lt, "<"),
    "<=": (operator.le, "≤"),
    ">": (operator.gt, ">"),
    ">=": (operator.ge, "≥"),
}


# --------------------------------------------------------------------------------------------------- results

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Finding:
    """One rule's verdict: rule id, level ("discontinue" | "stop" | "hold" | "notify"), the value seen and the
    threshold crossed, both as display strings ("85 mmHg", "< 90 mmHg"), and a sentence for the nurse.

    For a rule that compares one number, ``measure`` is that number exactly (a string) and ``worse`` says which way
    is worse ("lower" | "higher"): an override covers the same rule at the same or a less severe measure (INV-OVR).
    """

    rule: str
    level: str
    value: str
    threshold: str
    message: str
    measure: str | None = None
    worse: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "rule": self.rule,
            "level": self.level,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "measure": self.measure,
            "worse": self.worse,
        }


class Evaluation(NamedTuple):
    """The result for one slot, with everything needed to explain it later: the rule set's name, version,
    thresholds and options as they were, and the source ids of the observations read.

    Immutable; a NamedTuple rather than a frozen dataclass because it is built on every evaluation and a frozen
    dataclass costs three times as much to build."""

    decision: str  # give | incomplete | hold | stop | discontinue
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    grades: Mapping[str, int | None]  # CTCAE v5: weight_gain, urine_output, creatinine, platelets
    used: tuple[str, ...]
    rule_set: str
    rule_set_version: int
    evaluated_at: datetime
    thresholds: Mapping[str, int | Decimal] = _EMPTY
    options: Mapping[str, object] = _EMPTY
    # Derived values for display (exact when short, else to 0.1): weight_gain_pct, urine_8h_ml, urine_24h_ml.
    measures: Mapping[str, Decimal | None] = _EMPTY

    @property
    def reasons(self) -> tuple[str, ...]:
        """Rule ids behind a hold, stop or discontinue (e.g. for a held dose's statusReason)."""
        return tuple(dict.fromkeys(f.rule for f in self.findings if f.level in _BLOCKING_LEVELS))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; times in UTC with a Z, Decimals as exact strings."""
        return {
            "decision": self.decision,
            "findings": [f.to_dict() for f in self.findings],
            "missing": list(self.missing),
            "grades": dict(self.grades),
            "used": list(self.used),
            "rule_set": self.rule_set,
            "rule_set_version": self.rule_set_version,
            "thresholds": json_ready(self.thresholds),
            "options": json_ready(self.options),
            "measures": json_ready(self.measures),
            "evaluated_at": iso_z(self.evaluated_at),
        }


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------- numbers


def as_fraction(value: object) -> Fraction:
    """Exact value of an int, Decimal, Fraction, numeric string or float (a float through its shortest repr)."""
    if isinstance(value, bool):
        raise TypeError(f"a number is required, not {value!r}")
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        return Fraction(Decimal(value))
    return Fraction(value)


_EXACT_TYPES = frozenset({int, Decimal})  # compared with each other exactly by Python itself


def exact(value: object) -> object:
    """A charted number in a form that compares exactly with int and Decimal thresholds: ints and Decimals as they
    are (the common case, and the fastest), anything else as a Fraction."""
    return value if type(value) in _EXACT_TYPES else as_fraction(value)


class _Ratio:
    """The exact quotient ``num / den`` of two ints (den > 0), compared with ints and Decimals by
    cross-multiplication: ``q < t`` ⟺ ``num < t × den``, exact because an int times an int or a short Decimal is
    exact. A Fraction without its normalising gcd and Python-level arithmetic, for derived values on the hot path."""

    __slots__ = ("num", "den")

    def __init__(self, num: int, den: int) -> None:
        self.num, self.den = num, den

    def fraction(self) -> Fraction:
        return Fraction(self.num, self.den)

    # Each comparison: cross-multiplied when the other side is an int or a Decimal (thresholds always are), else
    # through Fraction. Written out rather than shared through a helper: these run on every evaluation.
    def __lt__(self, other: object) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num < other * self.den
        return self.fraction() < other

    def __le__(self, other: object) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num <= other * self.den
        return self.fraction() <= other

    def __gt__(self, other: object) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num > other * self.den
        return self.fraction() > other

    def __ge__(self, other: object) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num >= other * self.den
        return self.fraction() >= other

    def __eq__(self, other: object) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num == other * self.den
        return self.fraction() == (other.fraction() if isinstance(other, _Ratio) else other)

    __hash__ = None  # equal to ints, Decimals and Fractions of other hashes: not a dict key

    def __repr__(self) -> str:
        return f"_Ratio({self.num}, {self.den})"


def fmt(value: object) -> str:
    """A number for display: ints and Decimals as written, derived quotients exactly when short, else to 0.1."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is Decimal:
        return format(value, "f")
    if kind is _Ratio:
        return _quotient_text(value.num, value.den)
    exact_value = as_fraction(value)
    return _quotient_text(exact_value.numerator, exact_value.denominator)


def _quotient_text(num: int, den: int) -> str:
    """num / den (den > 0) written exactly when it has at most 3 decimals, else rounded half-even to 0.1."""
    if num * 1000 % den == 0:  # short: write it with as few places as it needs
        for places, scale in enumerate((1, 10, 100, 1000)):
            if num * scale % den == 0:
                return format(Decimal(num * scale // den).scaleb(-places), "f")
    tenths, remainder = divmod(num * 10, den)  # floor division: value × 10 = tenths + remainder / den
    if 2 * remainder > den or (2 * remainder == den and tenths % 2):
        tenths += 1
    return format(Decimal(tenths).scaleb(-1), "f")


def _with_unit(value: object, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


# --------------------------------------------------------------------------------------------------- rules table

RuleFn = Callable[["_Context"], list[Finding]]


@dataclass(frozen=True)
class _RuleDef:
    fn: RuleFn
    reads: tuple[str, ...]  # the snapshot Reading fields the rule reads
    events_only: bool  # fires only on an active event: skipped when the patient has none


_RULES: dict[str, _RuleDef] = {}


def _rule(rule_id: str, *, reads: tuple[str, ...] = (), events_only: bool = False) -> Callable[[RuleFn], RuleFn]:
    unknown = set(reads) - set(READING_FIELDS)
    if unknown:
        raise ValueError(f"{rule_id} reads unknown fields {sorted(unknown)}")

    def register(fn: RuleFn) -> RuleFn:
        _RULES[rule_id] = _RuleDef(fn, reads, events_only)
        return fn

    return register


# Rules that compare one charted number: rule id → (input field, label, unit, checks). Checks list stop first.
_NUMERIC: dict[str, tuple[str, str, str, tuple[tuple[str, str, str], ...]]] = {
    "CV-SBP": ("sbp", "Systolic BP", "mmHg", (("hold", "<", "CV-SBP.hold_below"),)),
    "CV-HR": (
        "heart_rate",
        "Heart rate",
        "/min",
        (
            ("stop", ">", "CV-HR.stop_above"),
            ("hold", ">", "CV-HR.hold_above"),
            ("notify", ">", "CV-HR.notify_above"),
        ),
    ),
    "RS-SPO2": ("spo2", "SpO2", "%", (("hold", "<=", "RS-SPO2.hold_at_or_below"),)),
    "RS-RR": ("resp_rate", "Respiratory rate", "/min", (("notify", ">", "RS-RR.notify_above"),)),
    "RN-CREAT": (
        "creatinine_mg_dl",
        "Creatinine",
        "mg/dL",
        (
            ("stop", ">=", "RN-CREAT.stop_from"),
            ("hold", ">=", "RN-CREAT.hold_from"),
        ),
    ),
    "RN-HCO3": (
        "bicarbonate_mmol_l",
        "Bicarbonate",
        "mmol/L",
        (
            ("stop", "<=", "RN-HCO3.stop_at_or_below"),
            ("notify", "<", "RN-HCO3.notify_below"),
        ),
    ),
    "HM-PLT": (
        "platelets_k_ul",
        "Platelets",
        "×10³/µL",
        (
            ("stop", "<", "HM-PLT.stop_below"),
            ("hold", "<=", "HM-PLT.hold_at_or_below"),
            ("notify", "<", "HM-PLT.notify_below"),
        ),
    ),
    "HP-BILI": ("bilirubin_mg_dl", "Bilirubin", "mg/dL", (("hold", ">", "HP-BILI.hold_above"),)),
    "TP-TEMP": ("temp_c", "Temperature", "°C", (("notify", ">", "TP-TEMP.notify_above"),)),
    "NE-RASS": (
        "rass",
        "RASS",
        "",
        (
            ("hold", "<=", "NE-RASS.hold_at_or_below"),
            ("hold", ">=", "NE-RASS.hold_at_or_above"),
            ("notify", "<=", "NE-RASS.notify_at_or_below"),
            ("notify", ">=", "NE-RASS.notify_at_or_above"),
        ),
    ),
}

# What the CTCAE grades read on every evaluation, whatever rules are enabled.
_GRADE_FIELDS = ("weight_kg", "creatinine_mg_dl", "platelets_k_ul")


# --------------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Plan:
    """A rule set compiled for evaluation: what to read and what to compare, worked out once per rule set."""

    fields: tuple[str, ...]  # Reading fields read (and listed as used when present), in reading order
    read_fields: Callable[[PatientSnapshot], tuple[Reading | None, ...]]  # those fields of a snapshot, at once
    numeric: tuple[tuple[int, str, str, tuple[tuple[Callable, object], ...]], ...]  # (order, rule, field, checks)
    custom: tuple[tuple[int, RuleFn], ...]  # (order, rule) for rules read on every evaluation
    on_events: tuple[tuple[int, RuleFn], ...]  # (order, rule) for rules that only read active events
    aggregate_3rel: bool
    freshness_groups: tuple[tuple[str, tuple[str, ...], timedelta], ...]  # vitals, neuro, exam: (name, fields, limit)
    vitals_one_of: tuple[str, ...]  # at least one of these in the (fresh) latest vitals set: O2 flow or FiO2
    weight_limit: timedelta | None
    needs_baseline_weight: bool
    urine_hours: int | None  # None: urine_8h not required
    urine_tolerance: timedelta
    labs: tuple[tuple[str, str], ...]  # (field, missing name)
    labs_limit: timedelta


def _minutes(value: int | Decimal) -> timedelta:
    return timedelta(minutes=int(value))


def _compile(rule_set: RuleSet) -> _Plan:
    unknown = [rule for rule in rule_set.rules if rule not in IMPLEMENTED_RULES]
    if unknown:
        raise ValueError(f"rules without an implementation: {', '.join(unknown)}")
    thresholds, options = rule_set.thresholds, rule_set.options
    reads: list[str] = []
    numeric, custom, on_events = [], [], []
    for order, rule in enumerate(rule_set.rules):
        if rule in _NUMERIC:
            name, _, _, checks = _NUMERIC[rule]
            reads.append(name)
            numeric.append((order, rule, name, tuple((_OPS[op][0], thresholds[key]) for _, op, key in checks)))
        elif rule in _RULES:
            definition = _RULES[rule]
            reads += definition.reads
            (on_events if definition.events_only else custom).append((order, definition.fn))
    required = options["freshness.required"]
    groups = tuple(
        (group, tuple(options[f"freshness.{group}_fields"]), _minutes(thresholds[f"freshness.{group}_minutes"]))
        for group in ("vitals", "neuro", "exam")
        if group in required
    )
    for _, names, _ in groups:
        reads += names
    one_of = tuple(options.get("freshness.vitals_one_of", ())) if "vitals" in required else ()
    reads += one_of
    labs_fields = options["freshness.labs_fields"] if "labs" in required else ()
    labs = tuple((name, f"labs.{LAB_NAMES[name]}") for name in labs_fields)
    reads += [name for name, _ in labs]
    if "weight" in required:
        reads.append("weight_kg")
    reads += _GRADE_FIELDS
    fields = tuple(dict.fromkeys(reads))
    return _Plan(
        fields=fields,
        read_fields=operator.attrgetter(*fields),  # ≥ 2 names (the grades'): a tuple
        numeric=tuple(numeric),
        custom=tuple(custom),
        on_events=tuple(on_events),
        aggregate_3rel="AG-3REL" in rule_set.rules,
        freshness_groups=groups,
        vitals_one_of=one_of,
        weight_limit=timedelta(hours=int(thresholds["freshness.weight_hours"])) if "weight" in required else None,
        needs_baseline_weight="weight" in required and "FL-WT" in rule_set.rules,
        urine_hours=int(thresholds["freshness.urine_hours"]) if "urine_8h" in required else None,
        urine_tolerance=timedelta(minutes=int(thresholds["freshness.urine_end_tolerance_minutes"])),
        labs=labs,
        labs_limit=timedelta(hours=int(thresholds["freshness.labs_hours"])) if labs else timedelta(0),
    )


# Plans by rule set. A RuleSet is immutable; the entry keeps it alive, so its id cannot be reused while cached.
# Bounded: rule sets are few (one per name and version), but a long-lived process should not grow without limit.
_PLANS: dict[int, tuple[RuleSet, _Plan]] = {}
_PLANS_SIZE = 64


def _plan(rule_set: RuleSet) -> _Plan:
    entry = _PLANS.get(id(rule_set))
    if entry is not None and entry[0] is rule_set:
        return entry[1]
    plan = _compile(rule_set)
    if len(_PLANS) >= _PLANS_SIZE:
        _PLANS.clear()
    _PLANS[id(rule_set)] = (rule_set, plan)
    return plan


@cache
def _hours(hours: int) -> timedelta:
    return timedelta(hours=hours)


_NOT_YET = object()


# --------------------------------------------------------------------------------------------------- context


class _Context:
    """What one evaluation reads, remembering the source id of everything it reads (Evaluation.used)."""

    __slots__ = (
        "snapshot",
        "rule_set",
        "thresholds",
        "plan",
        "now",
        "readings",
        "used",
        "active_events",
        "periods",
        "fluid_end",
        "_fluid_cache",
        "_weight_gain",
    )

    def __init__(self, snapshot: PatientSnapshot, rule_set: RuleSet, plan: _Plan, now: datetime) -> None:
        self.snapshot = snapshot
        self.rule_set = rule_set
        self.plan = plan
        self.now = now
        self.thresholds = rule_set.thresholds
        used: dict[str, None] = {}
        readings: dict[str, Reading | None] = {}
        # Each input once: present (recorded at or before now, with a value) or None.
        for name, reading in zip(plan.fields, plan.read_fields(snapshot), strict=True):
            if reading is None or reading.value is None or reading.at > now:
                readings[name] = None
            else:
                readings[name] = reading
                if reading.source_id:
                    used[reading.source_id] = None
        self.readings = readings
        self.used = used
        self.active_events = [e for e in snapshot.events if e.active_at(now)] if snapshot.events else []
        # Fluid periods that exist at `now`; windows end at the latest of them (the "latest value").
        periods, fluid_end = [], None
        for period in snapshot.urine_periods:
            if period.start < period.end <= now:
                periods.append(period)
                if fluid_end is None or period.end > fluid_end:
                    fluid_end = period.end
        self.periods, self.fluid_end = periods, fluid_end
        self._fluid_cache: dict[tuple[int, int], tuple] = {}
        self._weight_gain: tuple[_Ratio | None, int | None] | object = _NOT_YET

    def use(self, source_id: str | None) -> None:
        if source_id:
            self.used[source_id] = None

    def present(self, reading: Reading | None) -> Reading | None:
        """A reading outside the plan's fields (history) if it exists at `now`, marked as used."""
        if reading is None or reading.value is None or reading.at > self.now:
            return None
        self.use(reading.source_id)
        return reading

    def reading(self, name: str) -> Reading | None:
        return self.readings[name]  # KeyError: a rule read a field it did not declare in @_rule(reads=...)

    def value(self, name: str) -> object | None:
        reading = self.readings[name]
        return None if reading is None else reading.value

    def number(self, name: str) -> object | None:
        reading = self.readings[name]
        return None if reading is None else exact(reading.value)

    def threshold(self, key: str) -> int | Decimal:
        return self.thresholds[key]

    def option(self, key: str) -> object:
        return self.rule_set.options[key]

    def events(self, kinds: Iterable[str]) -> list[Event]:
        """Active events of these kinds (recorded at or before now, not resolved by now)."""
        if not self.active_events:
            return []
        wanted = set(kinds)
        found = [e for e in self.active_events if e.kind in wanted]
        for event in found:
            self.use(event.source_id)
        return found

    def fluid(self, hours_back_from: int, hours_back_to: int, *, urine: bool) -> int | Fraction | None:
        """Urine (or diarrhoea) in the window [E − from h, E − to h], E = end of the latest fluid period.

        Urine: None unless the window is fully covered (a gap could hide any amount). Diarrhoea: what is charted.
        """
        if self.fluid_end is None:
            return None
        # Several rules and grades read the same windows; the answer (and the periods it uses) does not change.
        key = (hours_back_from, hours_back_to)
        totals = self._fluid_cache.get(key)
        if totals is None:
            totals = self._fluid_cache[key] = self._window(
                self.fluid_end - _hours(hours_back_from), self.fluid_end - _hours(hours_back_to)
            )
        return totals[0] if urine else totals[1]

    def _window(self, start: datetime, end: datetime) -> tuple[int | Fraction | None, int | Fraction]:
        """(urine, diarrhoea) in [start, end]."""
        inside = [p for p in self.periods if p.start < end and p.end > start]
        for period in inside:
            self.use(period.source_id)
        if len(inside) > 1:
            inside.sort(key=_START)
        # The usual chart: whole shifts back to back inside the window, whole millilitres: the amounts add up.
        urine, diarrhoea, edge = 0, 0, start
        for period in inside:
            if (
                period.start < edge  # overlaps the one before, or starts before the window
                or period.end > end
                or type(period.urine_ml) is not int
                or (type(period.diarrhea_ml) is not int and period.diarrhea_ml is not None)
            ):
                return _pro_rata(inside, start, end, urine=True), _pro_rata(inside, start, end, urine=False)
            if period.start != edge:
                urine = None  # a gap: any amount could be missing
            if urine is not None:
                urine += period.urine_ml
            diarrhoea += period.diarrhea_ml or 0
            edge = period.end
        return (urine if edge == end else None), diarrhoea

    def weight_gain(self) -> tuple[_Ratio | None, int | None]:
        """% over the course's baseline and its CTCAE grade (FL-WT and the grades read them; computed once)."""
        if self._weight_gain is _NOT_YET:
            gain = _compute_weight_gain(self)
            self._weight_gain = gain, ctcae.weight_gain_grade(gain)
        return self._weight_gain


_START = operator.attrgetter("start")
_FIRST = operator.itemgetter(0)


def _pro_rata(inside: list[FluidPeriod], start: datetime, end: datetime, *, urine: bool) -> Fraction | None:
    """Any chart: split the window at every period edge, each piece at the covering periods' safer rate."""
    cuts = sorted({start, end, *(t for p in inside for t in (p.start, p.end) if start < t < end)})
    total = Fraction(0)
    for low, high in zip(cuts, cuts[1:], strict=False):
        covering = [p for p in inside if p.start <= low and p.end >= high]
        if not covering:
            if urine:
                return None
            continue
        rates = [_rate(p, urine=urine) for p in covering]
        # Overlapping records: take the safer one (less urine, more diarrhoea).
        total += (min(rates) if urine else max(rates)) * _microseconds(high - low)
    return total


def _rate(period: FluidPeriod, *, urine: bool) -> Fraction:
    amount = period.urine_ml if urine else period.diarrhea_ml
    return as_fraction(amount or 0) / _microseconds(period.end - period.start)


def _compute_weight_gain(ctx: _Context) -> _Ratio | None:
    reading = ctx.readings["weight_kg"]
    baseline = ctx.snapshot.baseline_weight_kg
    if reading is None or baseline is None:
        return None
    weight_num, weight_den = exact(reading.value).as_integer_ratio()
    base_num, base_den = exact(baseline).as_integer_ratio()
    if base_num <= 0:
        return None
    # (w − b) / b × 100 with w = wn/wd, b = bn/bd: (wn·bd − bn·wd) · 100 / (wd · bn)
    return _Ratio((weight_num * base_den - base_num * weight_den) * 100, weight_den * base_num)


# --------------------------------------------------------------------------------------------------- building


def _finding(rule: str, level: str, label: str, value: str, threshold: str) -> Finding:
    return Finding(rule, level, value, threshold, f"{label}: {value} ({level} if {threshold}): {_ACTIONS[level]}.")


def _threshold_text(ctx: _Context, op: str, key: str, unit: str) -> str:
    return f"{_OPS[op][1]} {_with_unit(ctx.threshold(key), unit)}"


def _levels(
    ctx: _Context,
    rule: str,
    label: str,
    value: object,
    shown: Callable[[], str],
    checks: Iterable[tuple[str, str, str]],
    unit: str,
) -> list[Finding]:
    """Compare one number with (level, op, threshold key) checks, stop first; a stop drops the same rule's hold.
    ``shown`` (the value as displayed) is only called when a check fires."""
    found: list[Finding] = []
    thresholds = ctx.thresholds
    for level, op, key in checks:
        if not _OPS[op][0](value, thresholds[key]):
            continue
        if level == "hold" and any(f.level in ("stop", "discontinue") for f in found):
            continue
        finding = _finding(rule, level, label, shown(), _threshold_text(ctx, op, key, unit))
        if level == "hold":  # what an override compares with (INV-OVR)
            finding = dataclasses.replace(finding, measure=fmt(value), worse="lower" if op in ("<", "<=") else "higher")
        found.append(finding)
    return found


def _numeric_findings(ctx: _Context, rule: str, reading: Reading, value: object) -> list[Finding]:
    _, label, unit, checks = _NUMERIC[rule]
    return _levels(ctx, rule, label, value, lambda: _with_unit(reading.value, unit), checks, unit)


def _kind(event: Event) -> str:
    return event.kind.replace("_", " ")


def _event_finding(ctx: _Context, rule: str, level: str, label: str, kinds: Iterable[str]) -> list[Finding]:
    active = ctx.events(kinds)
    if not active:
        return []
    names = ", ".join(dict.fromkeys(_kind(e) for e in active))
    return [_finding(rule, level, label, names, "present")]


# --------------------------------------------------------------------------------------------------- rules


@_rule("CV-RHYTHM", reads=("rhythm", "previous_rhythm"))
def _cv_rhythm(ctx: _Context) -> list[Finding]:
    """CV-RHYTHM (v2): bradycardia needing treatment → hold; AF, SVT, frequent PVCs, bigeminy, non-sustained VT →
    stop (Dutcher T3 absolute; the label-only set holds AF/SVT); sustained VT (rhythm or event) → discontinue;
    a new irregular rhythm (changed since the previous vitals set, or the event) → notify."""
    rhythm = ctx.value("rhythm")
    discontinue_rhythms = ctx.option("CV-RHYTHM.discontinue_rhythms")
    stop_rhythms, hold_rhythms = ctx.option("CV-RHYTHM.stop_rhythms"), ctx.option("CV-RHYTHM.hold_rhythms")
    irregular = ctx.option("CV-RHYTHM.irregular_rhythms")
    if (
        not ctx.active_events
        and rhythm not in discontinue_rhythms
        and rhythm not in stop_rhythms
        and rhythm not in hold_rhythms
        and rhythm not in irregular
    ):
        return []  # the usual case: a regular rhythm and no rhythm event
    found: list[Finding] = []
    vt_events = ctx.events(["sustained_vt"])
    vt_rhythm = [str(rhythm)] if rhythm in discontinue_rhythms else []
    if vt_rhythm or vt_events:
        shown = ", ".join(vt_rhythm + [_kind(e) for e in vt_events])
        found.append(_finding("CV-RHYTHM", "discontinue", "Rhythm", shown, "sustained VT (≥ 5 beats)"))
    elif rhythm in stop_rhythms:
        found.append(_finding("CV-RHYTHM", "stop", "Rhythm", str(rhythm), " / ".join(stop_rhythms)))
    elif rhythm in hold_rhythms:
        found.append(_finding("CV-RHYTHM", "hold", "Rhythm", str(rhythm), " / ".join(hold_rhythms)))
    previous = ctx.reading("previous_rhythm")
    changed = rhythm in irregular and (previous is None or previous.value != rhythm)
    new_events = ctx.events(["new_irregular_rhythm"])
    if changed or new_events:
        shown = str(rhythm) if changed else _kind(new_events[0])
        found.append(_finding("CV-RHYTHM", "notify", "Rhythm", shown, "new irregular rhythm"))
    return found


_CARDIAC_MARKERS = (
    ("troponin_ng_l", "Troponin", "ng/L", "CV-ISCHEMIA.troponin_uln_ng_l"),
    ("ck_mb_ng_ml", "CK-MB", "ng/mL", "CV-ISCHEMIA.ck_mb_uln_ng_ml"),
)


@_rule("CV-ISCHEMIA", reads=tuple(name for name, _, _, _ in _CARDIAC_MARKERS))
def _cv_ischemia(ctx: _Context) -> list[Finding]:
    """CV-ISCHEMIA (v2): chest pain, or troponin / CK-MB above the site's ULN → stop; chest pain with ECG
    ischaemia / MI → discontinue (and a retreatment bar). Levels per event kind and whether the markers are read
    are rule-set options (the label-only set discontinues for chest pain and reads no marker)."""
    found: list[Finding] = []
    if ctx.active_events:  # the usual case has none: skip the per-level look-ups
        levels: Mapping[str, str | None] = ctx.option("CV-ISCHEMIA.levels")
        for level in _LEVELS_SEVERE_FIRST:
            kinds = [kind for kind, kind_level in levels.items() if kind_level == level]
            found += _event_finding(ctx, "CV-ISCHEMIA", level, "Chest pain / ischaemia", kinds)
    if ctx.rule_set.options["CV-ISCHEMIA.markers"]:
        raised = None
        for name, label, unit, key in _CARDIAC_MARKERS:
            reading = ctx.readings[name]
            if reading is None:
                continue
            uln = ctx.thresholds[key]
            if exact(reading.value) > uln:
                raised = raised or []
                raised.append(f"{label} {_with_unit(reading.value, unit)} (ULN {_with_unit(uln, unit)})")
        if raised:
            found.append(_finding("CV-ISCHEMIA", "stop", "Cardiac markers", "; ".join(raised), "> ULN"))
    return _most_severe_only(found) if found else found


def _most_severe_only(found: list[Finding]) -> list[Finding]:
    """One rule's blocking findings at its most severe level only (its notify findings kept)."""
    blocking = [f.level for f in found if f.level in _BLOCKING_LEVELS]
    if not blocking:
        return found
    worst = max(blocking, key=DECISION_SEVERITY.__getitem__)
    return [f for f in found if f.level == worst or f.level == "notify"]


@_rule(
    "CV-PRESSOR",
    reads=("phenylephrine_mcg_kg_min", "phenylephrine_max_interval", "other_pressor", "other_pressor_mcg_kg_min"),
)
def _cv_pressor(ctx: _Context) -> list[Finding]:
    """CV-PRESSOR (v2): phenylephrine at dosing > 0.5 → hold, > 0.8 → stop; the highest phenylephrine charted since
    the previous slot 1.0–1.5 → hold, > 1.5 → stop; any other vasopressor running → stop (site option: dopamine at
    or below a low rate → hold); any pressor running → notify."""
    at_dosing, highest = ctx.number("phenylephrine_mcg_kg_min"), ctx.number("phenylephrine_max_interval")
    other = ctx.value("other_pressor")
    running = (at_dosing is not None and at_dosing > 0) or (other not in (None, "none"))
    if not running and (highest is None or highest < ctx.threshold("CV-PRESSOR.interval_hold_from")):
        return []
    found: list[Finding] = []
    if at_dosing is not None:
        found += _levels(
            ctx,
            "CV-PRESSOR",
            "Phenylephrine at dosing",
            at_dosing,
            lambda: _with_unit(ctx.value("phenylephrine_mcg_kg_min"), "µg/kg/min"),
            (("stop", ">", "CV-PRESSOR.stop_above"), ("hold", ">", "CV-PRESSOR.hold_above")),
            "µg/kg/min",
        )
    if highest is not None:
        found += _levels(
            ctx,
            "CV-PRESSOR",
            "Highest phenylephrine since the previous dose",
            highest,
            lambda: _with_unit(ctx.value("phenylephrine_max_interval"), "µg/kg/min"),
            (("stop", ">", "CV-PRESSOR.interval_stop_above"), ("hold", ">=", "CV-PRESSOR.interval_hold_from")),
            "µg/kg/min",
        )
    if other not in (None, "none"):
        rate = ctx.number("other_pressor_mcg_kg_min")
        low_dopamine = (
            other == "dopamine"
            and ctx.option("CV-PRESSOR.low_dose_dopamine_holds")
            and rate is not None
            and rate <= ctx.threshold("CV-PRESSOR.dopamine_hold_at_or_below")
        )
        shown = str(other) + (f" {_with_unit(ctx.value('other_pressor_mcg_kg_min'), 'µg/kg/min')}" if rate else "")
        level = "hold" if low_dopamine else "stop"
        found.append(_finding("CV-PRESSOR", level, "Vasopressor", shown, "any vasopressor other than phenylephrine"))
    if running:
        found.append(_finding("CV-PRESSOR", "notify", "Vasopressor", "running", "any pressor running"))
    return _most_severe_only(found)


@_rule("RS-O2", reads=("o2_lpm", "fio2_pct", "spo2"))
def _rs_o2(ctx: _Context) -> list[Finding]:
    """RS-O2 (v2), on the O2 *needed* to keep SpO2 ≥ 95 %: the charted flow when SpO2 ≥ 95 %, else more than it
    (the next whole L/min; FiO2 the next whole %): 3–4 L/min nasal → hold; > 4 L/min or FiO2 ≥ 40 % → stop; on any
    O2 → notify. Room air (0 L/min) with SpO2 < 95 % needs 1 L/min."""
    lpm, fio2 = ctx.number("o2_lpm"), ctx.number("fio2_pct")
    if lpm is None and fio2 is None:
        return []
    spo2 = ctx.number("spo2")
    short = spo2 is not None and spo2 < ctx.threshold("RS-O2.target_spo2_from")
    charted_lpm, charted_fio2 = lpm, fio2
    if short:
        if lpm is not None:
            lpm = int(lpm) + 1  # more than the charted flow: the next whole L/min
        if fio2 is not None:
            fio2 = int(fio2) + 1
    stop = (lpm is not None and lpm > ctx.threshold("RS-O2.stop_above_lpm")) or (
        fio2 is not None and fio2 >= ctx.threshold("RS-O2.stop_from_fio2_pct")
    )
    hold = not stop and lpm is not None and lpm >= ctx.threshold("RS-O2.hold_from_lpm")
    on_oxygen = (lpm is not None and lpm > ctx.threshold("RS-O2.notify_above_lpm")) or (
        fio2 is not None and fio2 > ctx.threshold("RS-O2.notify_above_fio2_pct")
    )
    if not (stop or hold or on_oxygen):
        return []  # the usual case (room air, SpO2 ≥ 95 %): no text built
    parts = ([_with_unit(ctx.value("o2_lpm"), "L/min")] if charted_lpm is not None else []) + (
        [f"FiO2 {_with_unit(ctx.value('fio2_pct'), '%')}"] if charted_fio2 is not None else []
    )
    if short:
        parts.append(f"SpO2 {_with_unit(ctx.value('spo2'), '%')} on it: needs more")
    shown = ", ".join(parts)
    found: list[Finding] = []
    if stop:
        threshold = (
            f"{_threshold_text(ctx, '>', 'RS-O2.stop_above_lpm', 'L/min')} or FiO2 "
            f"{_threshold_text(ctx, '>=', 'RS-O2.stop_from_fio2_pct', '%')}"
        )
        found.append(_finding("RS-O2", "stop", "Oxygen", shown, threshold))
    elif hold:
        found.append(
            _finding("RS-O2", "hold", "Oxygen", shown, _threshold_text(ctx, ">=", "RS-O2.hold_from_lpm", "L/min"))
        )
    if on_oxygen:
        found.append(_finding("RS-O2", "notify", "Oxygen", shown, "on any O2"))
    return found


_UO_CHECKS = (("stop", "<", "RN-UO.stop_below_ml"), ("hold", "<=", "RN-UO.hold_at_or_below_ml"))


@_rule("RN-UO")
def _rn_uo(ctx: _Context) -> list[Finding]:
    """RN-UO: urine over the latest 8 h window: ≤ 160 mL → hold (80–160 inclusive), < 80 mL → stop."""
    hours = int(ctx.threshold("RN-UO.window_hours"))
    urine = ctx.fluid(hours, 0, urine=True)
    if urine is None:
        return []
    unit = f"mL in {hours} h"
    return _levels(ctx, "RN-UO", "Urine output", urine, lambda: _with_unit(urine, unit), _UO_CHECKS, unit)


_WT_CHECKS = (("hold", ">", "FL-WT.hold_above_pct"),)


@_rule("FL-WT", reads=("weight_kg",))
def _fl_wt(ctx: _Context) -> list[Finding]:
    """FL-WT: weight gain over the course's baseline > 15 % → hold; CTCAE grade ≥ 1 (5 %, 10 %, 20 %) → notify."""
    gain, grade = ctx.weight_gain()
    if gain is None:
        return []

    def shown() -> str:
        return f"{fmt(gain)} % (CTCAE grade {grade})"

    found = _levels(ctx, "FL-WT", "Weight gain", gain, shown, _WT_CHECKS, "%")
    notify_from = ctx.threshold("FL-WT.notify_from_grade")
    if grade >= notify_from:
        found.append(_finding("FL-WT", "notify", "Weight gain", shown(), f"CTCAE grade ≥ {fmt(notify_from)}"))
    return found


@_rule("NE-CONF", reads=("confusion", "vivid_dreams_or_anxiety"))
def _ne_conf(ctx: _Context) -> list[Finding]:
    """NE-CONF: confusion/agitation — level per the rule set (consensus: mild notify, moderate hold, severe stop);
    vivid dreams or mild anxiety → the rule set's level for it (consensus v2: hold, Dutcher relative)."""
    confusion = ctx.value("confusion")
    found = []
    level = ctx.option("NE-CONF.levels").get(confusion)
    if level is not None:
        found.append(_finding("NE-CONF", level, "Confusion/agitation", str(confusion), f"{confusion} → {level}"))
    dreams_level = ctx.option("NE-CONF.vivid_dreams_level")
    if dreams_level and ctx.value("vivid_dreams_or_anxiety"):
        found.append(_finding("NE-CONF", dreams_level, "Neuro", "vivid dreams or mild anxiety", "present"))
    return _most_severe_only(found)


_NEURO_SIGNS = (
    ("neuro_check_failed", "failed serial 7s / WORLD backward"),
    ("hallucinations", "hallucinations"),
    ("persistent_crying", "persistent crying"),
)


@_rule("NE-CHECK", reads=tuple(name for name, _ in _NEURO_SIGNS))
def _ne_check(ctx: _Context) -> list[Finding]:
    """NE-CHECK: fails serial 7s or "WORLD" backward, hallucinations, or persistent crying (v2) → stop."""
    signs = [text for name, text in _NEURO_SIGNS if ctx.value(name)]
    if not signs:
        return []
    return [_finding("NE-CHECK", "stop", "Neuro check", "; ".join(signs), "present")]


def _mental_status_changed(neuro) -> bool:
    return neuro.confusion != "none" or neuro.rass != 0 or bool(neuro.neuro_check_failed)


@_rule("NE-PERSIST")
def _ne_persist(ctx: _Context) -> list[Finding]:
    """NE-PERSIST (v2): a mental-status change (confusion ≥ mild, RASS ≠ 0, or a failed neuro check) on neuro sets
    ≥ 2 h apart with no normal set between → stop (not reversible within 2 h)."""
    sets = [n for n in ctx.snapshot.neuro_history if n.at <= ctx.now]
    if not sets or not _mental_status_changed(sets[-1]):
        return []
    first = sets[-1]
    for neuro in reversed(sets):
        if not _mental_status_changed(neuro):
            break
        first = neuro
    hours = ctx.threshold("NE-PERSIST.min_hours")
    if sets[-1].at - first.at < _hours(int(hours)):
        return []
    ctx.use(first.source_id)
    ctx.use(sets[-1].source_id)
    shown = f"changed since {iso_z(first.at)} ({fmt(_Ratio(_microseconds(sets[-1].at - first.at), 3_600_000_000))} h)"
    return [_finding("NE-PERSIST", "stop", "Mental-status change", shown, f"persists ≥ {fmt(hours)} h")]


def _exam_rule(rule: str, label: str, signs: tuple[tuple[str, object, str, str], ...]) -> RuleFn:
    """A bedside-exam rule: (field, the answer that fires, level, text) per sign; the most severe level counts."""

    def evaluate_exam(ctx: _Context) -> list[Finding]:
        readings = ctx.readings  # read directly: this runs for every sign of every exam rule of every evaluation
        found: dict[str, list[str]] = {}
        for name, answer, level, text in signs:
            reading = readings[name]
            if reading is not None and reading.value == answer:
                found.setdefault(level, []).append(text)
        if not found:
            return []
        for level in _LEVELS_SEVERE_FIRST:
            if level in found:
                return [_finding(rule, level, label, "; ".join(found[level]), "present")]
        return []

    evaluate_exam.__doc__ = f"{rule} (v2): bedside exam, " + "; ".join(f"{t} → {lv}" for _, _, lv, t in signs)
    _rule(rule, reads=tuple(dict.fromkeys(name for name, _, _, _ in signs)))(evaluate_exam)
    return evaluate_exam


_exam_rule(
    "RS-EXAM",
    "Respiratory exam",
    (
        ("rales", "half_or_more", "stop", "moist rales ½ of the chest or more"),
        ("intubated", True, "stop", "intubated"),
        ("resting_dyspnea", True, "hold", "dyspnoea at rest"),
        ("rales", "lower_third", "hold", "rales up to ⅓ of the chest"),
    ),
)
_exam_rule(
    "GI-EXAM",
    "Abdominal exam",
    (
        ("vomiting_refractory", True, "stop", "vomiting not responding to drugs"),
        ("distension_affects_breathing", True, "stop", "distension affecting breathing"),
        ("abdominal_pain_severe", True, "stop", "severe unrelenting abdominal pain"),
        ("ileus_distension", True, "hold", "ileus or distension"),
    ),
)
_exam_rule(
    "MS-EXAM",
    "Musculoskeletal exam",
    (
        ("extreme_paresthesias", True, "stop", "extreme paraesthesias"),
        ("extreme_tightness", True, "hold", "extreme tightness"),
    ),
)
_exam_rule("SK-DESQ", "Skin exam", (("moist_desquamation", True, "stop", "moist desquamation"),))


@_rule("GI-HEME", events_only=True)
def _gi_heme(ctx: _Context) -> list[Finding]:
    """GI-HEME: heme-positive stool/emesis/sputum → hold; frank bleeding → stop (label-only set: hold)."""
    levels: Mapping[str, str | None] = ctx.option("GI-HEME.levels")
    found: list[Finding] = []
    for level in _LEVELS_SEVERE_FIRST:
        kinds = [kind for kind, kind_level in levels.items() if kind_level == level]
        found += _event_finding(ctx, "GI-HEME", level, "Bleeding", kinds)
    return [f for f in found if not (f.level == "hold" and any(g.level == "stop" for g in found))]


@_rule("GI-DIARRHEA")
def _gi_diarrhea(ctx: _Context) -> list[Finding]:
    """GI-DIARRHEA: ≥ 1,000 mL in the latest 8 h shift → hold; on 2 consecutive shifts → stop."""
    hours = int(ctx.threshold("GI-DIARRHEA.shift_hours"))
    shifts = int(ctx.threshold("GI-DIARRHEA.stop_consecutive_shifts"))
    limit = ctx.threshold("GI-DIARRHEA.hold_from_ml")
    latest = ctx.fluid(hours, 0, urine=False)
    if latest is None or latest < limit:
        return []
    amounts = [latest] + [ctx.fluid((k + 1) * hours, k * hours, urine=False) for k in range(1, shifts)]
    unit = f"mL per {hours} h shift"
    threshold = _threshold_text(ctx, ">=", "GI-DIARRHEA.hold_from_ml", unit)
    if all(a is not None and a >= limit for a in amounts):
        shown = " then ".join(_with_unit(a, "mL") for a in reversed(amounts))
        return [_finding("GI-DIARRHEA", "stop", "Diarrhoea", shown, f"{threshold} on {shifts} consecutive shifts")]
    return [_finding("GI-DIARRHEA", "hold", "Diarrhoea", _with_unit(amounts[0], unit), threshold)]


_TRANSAMINASES = (("ast_u_l", "AST"), ("alt_u_l", "ALT"))


@_rule("HP-TRANS", reads=tuple(name for name, _ in _TRANSAMINASES))
def _hp_trans(ctx: _Context) -> list[Finding]:
    """HP-TRANS (v2): AST or ALT > 5 × ULN (CTCAE grade 3), or liver pain → discontinue (withhold the rest of the
    course; no retreatment bar)."""
    uln, times = ctx.threshold("HP-TRANS.uln_u_l"), ctx.threshold("HP-TRANS.stop_above_uln_x")
    limit = uln * times  # ints and short Decimals: exact
    signs = []
    for name, label in _TRANSAMINASES:
        value = ctx.number(name)
        if value is not None and value > limit:
            signs.append(f"{label} {_with_unit(ctx.value(name), 'U/L')}")
    signs += [_kind(e) for e in ctx.events(["liver_pain"])]
    if not signs:
        return []
    shown_limit = _with_unit(as_fraction(uln) * as_fraction(times), "U/L")
    threshold = f"> {shown_limit} ({fmt(times)} × ULN {fmt(uln)} U/L), or liver pain"
    return [_finding("HP-TRANS", "discontinue", "Liver", "; ".join(signs), threshold)]


@_rule("HP-FAIL", events_only=True)
def _hp_fail(ctx: _Context) -> list[Finding]:
    """HP-FAIL (v2): hepatic failure (encephalopathy, increasing ascites; hypoglycaemia) → discontinue."""
    return _event_finding(ctx, "HP-FAIL", "discontinue", "Hepatic failure", ["hepatic_failure", "hypoglycemia"])


@_rule("SK-BULLOUS", events_only=True)
def _sk_bullous(ctx: _Context) -> list[Finding]:
    """SK-BULLOUS: bullous dermatitis or marked flare of a skin condition → hold until resolved."""
    return _event_finding(ctx, "SK-BULLOUS", "hold", "Skin", ["bullous_dermatitis"])


@_rule("IN-INFECT", events_only=True)
def _in_infect(ctx: _Context) -> list[Finding]:
    """IN-INFECT (v2): documented or strongly suspected infection, or sepsis with an unstable patient → stop."""
    return _event_finding(ctx, "IN-INFECT", "stop", "Infection", ["infection", "sepsis_unstable"])


@_rule("LB-CREAT", reads=("creatinine_mg_dl", "bicarbonate_mmol_l", "potassium_mmol_l"))
def _lb_creat(ctx: _Context) -> list[Finding]:
    """LB-CREAT (label): creatinine > 4.5, or ≥ 4 with volume overload (event), acidosis (bicarbonate below the
    threshold) or hyperkalaemia (potassium above it) → hold, and keep holding until a result < 1.5.

    The "until" latch follows results > 4.5 only: whether an earlier ≥ 4 result had its conditions is not known.
    """
    reading = ctx.reading("creatinine_mg_dl")
    if reading is None:
        return []
    creatinine = exact(reading.value)
    conditions = [_kind(e) for e in ctx.events(["volume_overload"])]
    bicarbonate, potassium = ctx.number("bicarbonate_mmol_l"), ctx.number("potassium_mmol_l")
    if bicarbonate is not None and bicarbonate < ctx.threshold("LB-CREAT.acidosis_bicarbonate_below"):
        conditions.append("acidosis")
    if potassium is not None and potassium > ctx.threshold("LB-CREAT.hyperkalaemia_potassium_above"):
        conditions.append("hyperkalaemia")
    shown = _with_unit(reading.value, "mg/dL")
    if creatinine > ctx.threshold("LB-CREAT.hold_above"):
        pass
    elif creatinine >= ctx.threshold("LB-CREAT.hold_from_with_condition") and conditions:
        shown += f" with {', '.join(conditions)}"
    else:
        latch = _creatinine_latch(ctx, reading)
        if latch is None:
            return []
        shown += f" (held since {_with_unit(latch.value, 'mg/dL')} at {iso_z(latch.at)})"
    threshold = (
        f"> {_with_unit(ctx.threshold('LB-CREAT.hold_above'), 'mg/dL')}, or "
        f"≥ {fmt(ctx.threshold('LB-CREAT.hold_from_with_condition'))} with volume overload, acidosis "
        f"or hyperkalaemia; hold until < {fmt(ctx.threshold('LB-CREAT.resume_below'))}"
    )
    return [_finding("LB-CREAT", "hold", "Creatinine", shown, threshold)]


def _creatinine_latch(ctx: _Context, latest: Reading) -> Reading | None:
    """The last result > the hold threshold if no result since has fallen below the resume threshold."""
    results = sorted(
        {id(r): r for r in (*ctx.snapshot.creatinine_history, latest) if ctx.present(r) is not None}.values(),
        key=lambda r: r.at,
    )
    above, resume = ctx.threshold("LB-CREAT.hold_above"), ctx.threshold("LB-CREAT.resume_below")
    trigger = None
    for result in results:
        value = exact(result.value)
        if value > above:
            trigger = result
        elif value < resume:
            trigger = None
    return trigger


@_rule("LB-OLIG", reads=("creatinine_mg_dl", "previous_creatinine"))
def _lb_olig(ctx: _Context) -> list[Finding]:
    """LB-OLIG (label): urine < 10 mL/h over the latest 16 h (average) with a rising creatinine → hold."""
    hours = int(ctx.threshold("LB-OLIG.hours"))
    urine = ctx.fluid(hours, 0, urine=True)
    latest, previous = ctx.number("creatinine_mg_dl"), ctx.reading("previous_creatinine")
    if urine is None or latest is None or previous is None:
        return []
    # urine / hours < limit, compared as urine < limit × hours (exact)
    if urine >= ctx.threshold("LB-OLIG.below_ml_per_h") * hours or latest <= exact(previous.value):
        return []
    shown = (
        f"{_with_unit(as_fraction(urine) / hours, 'mL/h')} over {hours} h; creatinine {fmt(previous.value)} → "
        f"{_with_unit(ctx.value('creatinine_mg_dl'), 'mg/dL')}"
    )
    threshold = f"< {_with_unit(ctx.threshold('LB-OLIG.below_ml_per_h'), 'mL/h')} for {hours} h, rising creatinine"
    return [_finding("LB-OLIG", "hold", "Oliguria", shown, threshold)]


@_rule("LB-SEPSIS", events_only=True)
def _lb_sepsis(ctx: _Context) -> list[Finding]:
    """LB-SEPSIS (label): sepsis with a clinically unstable patient → hold until resolved."""
    return _event_finding(ctx, "LB-SEPSIS", "hold", "Sepsis, unstable", ["sepsis_unstable"])


@_rule("LB-DISCONT", events_only=True)
def _lb_discont(ctx: _Context) -> list[Finding]:
    """LB-DISCONT: a permanent-discontinuation (retreatment-bar) event not read by another rule → discontinue."""
    return _event_finding(ctx, "LB-DISCONT", "discontinue", "Discontinuation event", ctx.option("LB-DISCONT.events"))


def _ag_3rel(ctx: _Context, findings: list[Finding]) -> list[Finding]:
    """AG-3REL: three or more rules at `hold` in one evaluation → stop."""
    holding = list(dict.fromkeys(f.rule for f in findings if f.level == "hold"))
    if len(holding) < ctx.threshold("AG-3REL.min_holds"):
        return []
    shown = f"{len(holding)} hold criteria ({', '.join(holding)})"
    threshold = f"≥ {fmt(ctx.threshold('AG-3REL.min_holds'))} hold criteria"
    return [_finding("AG-3REL", "stop", "Hold criteria", shown, threshold)]


IMPLEMENTED_RULES = frozenset(_RULES) | frozenset(_NUMERIC) | {"AG-3REL"}


# --------------------------------------------------------------------------------------------------- freshness


def _missing(ctx: _Context) -> list[str]:
    """Required data absent or older than the rule set's freshness limits (inclusive: exactly 60 min is fresh)."""
    plan, readings, now = ctx.plan, ctx.readings, ctx.now
    missing: list[str] = []
    for group, names, limit in plan.freshness_groups:
        oldest_fresh = now - limit
        for name in names:
            reading = readings[name]
            if reading is None or reading.at < oldest_fresh:
                missing.append(group)
                break
        else:
            if group == "vitals" and plan.vitals_one_of and all(readings[n] is None for n in plan.vitals_one_of):
                missing.append(group)  # INV-EXPLICIT: neither an O2 flow (0 = room air) nor an FiO2 charted
    if plan.weight_limit is not None:
        reading = readings["weight_kg"]
        if reading is None or reading.at < now - plan.weight_limit:
            missing.append("weight")
        if plan.needs_baseline_weight and ctx.snapshot.baseline_weight_kg is None:
            missing.append("baseline_weight")
    if plan.urine_hours is not None and not ctx.snapshot.first_slot_of_cycle and not _urine_recorded(ctx):
        missing.append("urine_8h")
    if plan.labs:
        oldest_fresh = now - plan.labs_limit
        for name, missing_name in plan.labs:
            reading = readings[name]
            if reading is None or reading.at < oldest_fresh:
                missing.append(missing_name)
    return missing


def _urine_recorded(ctx: _Context) -> bool:
    """Urine output recorded without gaps for the 8 h before the evaluation (the record may end up to the
    site's tolerance before `now`; default 0: right up to it)."""
    if ctx.fluid_end is None or ctx.now - ctx.fluid_end > ctx.plan.urine_tolerance:
        return False
    if ctx.fluid(ctx.plan.urine_hours, 0, urine=True) is not None:
        return True
    # A gap, but the urine charted inside the window already exceeds the hold band: no gap can make it hold.
    band = ctx.thresholds.get("RN-UO.hold_at_or_below_ml")
    if band is None:
        return False
    end = ctx.fluid_end
    charted = _charted_urine(ctx.periods, end - _hours(ctx.plan.urine_hours), end)
    return charted > band


def _charted_urine(periods: list[FluidPeriod], start: datetime, end: datetime) -> Fraction:
    """The urine charted inside [start, end] (pro rata, the lower rate where periods overlap), gaps counting 0."""
    inside = [p for p in periods if p.start < end and p.end > start]
    cuts = sorted({start, end, *(t for p in inside for t in (p.start, p.end) if start < t < end)})
    total = Fraction(0)
    for low, high in zip(cuts, cuts[1:], strict=False):
        covering = [p for p in inside if p.start <= low and p.end >= high]
        if covering:
            total += min(_rate(p, urine=True) for p in covering) * _microseconds(high - low)
    return total


# --------------------------------------------------------------------------------------------------- evaluate


def _grades(ctx: _Context, measures: dict[str, object]) -> dict[str, int | None]:
    """CTCAE v5 grades shown with every evaluation, whatever rules are enabled."""
    gain, gain_grade = ctx.weight_gain()
    urine_8h = ctx.fluid(ctcae.OLIGURIA_HOURS, 0, urine=True)
    urine_24h = ctx.fluid(ctcae.ANURIA_HOURS, 0, urine=True)
    measures.update(weight_gain_pct=gain, urine_8h_ml=urine_8h, urine_24h_ml=urine_24h)
    baseline = ctx.snapshot.baseline_creatinine_mg_dl
    thresholds = ctx.rule_set.thresholds
    return {
        "weight_gain": gain_grade,
        "urine_output": ctcae.urine_output_grade(urine_8h, urine_24h),
        "creatinine": ctcae.creatinine_grade(
            ctx.number("creatinine_mg_dl"),
            uln=thresholds["CTCAE.creatinine_uln_mg_dl"],
            baseline=None if baseline is None else exact(baseline),
        ),
        "platelets": ctcae.platelet_grade(ctx.number("platelets_k_ul"), lln=thresholds["CTCAE.platelets_lln_k_ul"]),
    }


def _measure(value: object) -> Decimal | None:
    """A derived value as shown (fmt), as a Decimal."""
    if value is None:
        return None
    kind = type(value)
    if kind is int or kind is Decimal:
        return Decimal(value)
    return Decimal(fmt(value))


def evaluate(snapshot: PatientSnapshot, *, rule_set: RuleSet, now: datetime) -> Evaluation:
    """Evaluate the pre-dose rules of ``rule_set`` on ``snapshot`` at ``now`` (aware): the clinical time evaluated
    for (the infusion's start when charting, HOLD-RULES §3a INV-START); nothing dated after it is read."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    conflicts = [(name, r) for name, r in snapshot.conflicts if r.at <= now]
    if not conflicts:
        return _evaluate(snapshot, rule_set, now)
    base = dataclasses.replace(snapshot, conflicts=())
    results = [_evaluate(base, rule_set, now)] + [
        _evaluate(dataclasses.replace(base, **{name: reading}), rule_set, now) for name, reading in conflicts
    ]
    return _most_restrictive(results, conflicts, rule_set)


def _most_restrictive(results: list[Evaluation], conflicts, rule_set: RuleSet) -> Evaluation:
    """INV-CONFLICT: every finding and every missing item of any alternative counts, AG-3REL over them all."""
    findings: dict[tuple, Finding] = {}
    for result in results:
        for finding in result.findings:
            if finding.rule != "AG-3REL":
                findings.setdefault((finding.rule, finding.level, finding.value), finding)
    merged = list(findings.values())
    if "AG-3REL" in rule_set.rules:
        holding = list(dict.fromkeys(f.rule for f in merged if f.level == "hold"))
        if len(holding) >= rule_set.thresholds["AG-3REL.min_holds"]:
            merged.append(
                _finding(
                    "AG-3REL",
                    "stop",
                    "Hold criteria",
                    f"{len(holding)} hold criteria ({', '.join(holding)})",
                    f"≥ {fmt(rule_set.thresholds['AG-3REL.min_holds'])} hold criteria",
                )
            )
    names = ", ".join(dict.fromkeys(name for name, _ in conflicts))
    merged.append(
        _finding("INV-CONFLICT", "notify", "Conflicting readings", names, "two readings at the same clinical time")
    )
    missing = tuple(dict.fromkeys(m for r in results for m in r.missing))
    levels = {f.level for f in merged}
    decision = next((d for d in ("discontinue", "stop", "hold") if d in levels), "incomplete" if missing else "give")
    used = tuple(dict.fromkeys(u for r in results for u in r.used))
    return results[0]._replace(decision=decision, findings=tuple(merged), missing=missing, used=used)


def _evaluate(snapshot: PatientSnapshot, rule_set: RuleSet, now: datetime) -> Evaluation:
    plan = _plan(rule_set)
    ctx = _Context(snapshot, rule_set, plan, now)
    fired: list[tuple[int, list[Finding]]] = []  # (the rule's place in the rule set, its findings)
    readings = ctx.readings
    for order, rule, name, checks in plan.numeric:
        reading = readings[name]
        if reading is None:
            continue
        value = reading.value
        if type(value) not in _EXACT_TYPES:
            value = as_fraction(value)
        for compare, threshold in checks:
            if compare(value, threshold):
                fired.append((order, _numeric_findings(ctx, rule, reading, value)))
                break
    for order, rule_fn in plan.custom:
        found = rule_fn(ctx)
        if found:
            fired.append((order, found))
    if ctx.active_events:
        for order, rule_fn in plan.on_events:
            found = rule_fn(ctx)
            if found:
                fired.append((order, found))
    findings: list[Finding] = []
    if fired:
        if len(fired) > 1:
            fired.sort(key=_FIRST)  # the rule set's order, as written
        findings = [f for _, found in fired for f in found]
        if plan.aggregate_3rel:
            findings += _ag_3rel(ctx, findings)
    missing = _missing(ctx)
    measures: dict[str, object] = {}
    grades = _grades(ctx, measures)
    if not findings:
        decision = "incomplete" if missing else "give"
    else:
        levels = {f.level for f in findings}
        decision = next(
            (d for d in ("discontinue", "stop", "hold") if d in levels), "incomplete" if missing else "give"
        )
    return Evaluation(
        decision=decision,
        findings=tuple(findings),
        missing=tuple(missing),
        grades=MappingProxyType(grades),
        used=tuple(ctx.used),
        rule_set=rule_set.name,
        rule_set_version=rule_set.version,
        evaluated_at=now,
        thresholds=rule_set.thresholds,
        options=rule_set.options,
        measures=MappingProxyType({key: _measure(value) for key, value in measures.items()}),
    )
