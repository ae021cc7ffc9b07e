"""The pre-dose rule engine (HOLD-RULES.md §3): one pure function, ``evaluate(snapshot, rule_set=..., now=...)``.

Semantics:

* Every rule reads its input's **latest** value whatever its age; freshness only decides whether ``give`` is allowed.
  A reading, event or fluid period dated after ``now`` does not exist yet and is ignored.
* The decision is the most restrictive that applies: ``stop`` > ``hold`` > ``incomplete`` > ``give``.
  ``notify`` findings never change it.
* Within one rule each level (stop, hold, notify) is checked on its own against its threshold, except that a rule's
  ``hold`` is dropped when the same rule already says ``stop`` (so a band like "hold 2.5–2.9, stop ≥ 3.0" reads as
  "hold ≥ 2.5 unless ≥ 3.0", and AG-3REL counts only real holds).
* Numbers are compared exactly (``Fraction``), never as binary floats.
* Urine output and diarrhoea are read from fluid periods over windows that end at the end of the latest period
  recorded at or before ``now`` (its "latest value"). A period partly inside a window counts pro rata; where
  periods overlap, the lower urine rate and the higher diarrhoea rate are used (the safer reading of a charting
  error). Urine output needs the window fully covered; diarrhoea counts what is charted (a lower bound).

The rule set supplies every number (``rulesets.py``); this module holds no clinical thresholds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from types import MappingProxyType

from . import ctcae
from .rulesets import RuleSet, json_ready
from .snapshot import LAB_NAMES, Event, FluidPeriod, PatientSnapshot, Reading

# Mildest first; the decision is the most severe that applies.
DECISIONS = ("give", "incomplete", "hold", "stop")
DECISION_SEVERITY: Mapping[str, int] = MappingProxyType({d: i for i, d in enumerate(DECISIONS)})
_LEVELS_SEVERE_FIRST = ("stop", "hold", "notify")  # order of one rule's findings

# Names that can appear in Evaluation.missing ("labs.<name>" for each required lab, see snapshot.LAB_NAMES).
MISSING_NAMES = ("vitals", "neuro", "weight", "baseline_weight", "urine_8h") + tuple(
    f"labs.{name}" for name in LAB_NAMES.values()
)

_ACTIONS = {
    "stop": "hold this dose and recommend stopping the cycle (an oncologist confirms stop or continue)",
    "hold": "hold this dose and reassess at the next slot",
    "notify": "notify the physician",
}

_OPS: dict[str, tuple[Callable[[Fraction, Fraction], bool], str]] = {
    "<": (operator.lt, "<"),
    "<=": (operator.le, "≤"),
    ">": (operator.gt, ">"),
    ">=": (operator.ge, "≥"),
}


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Finding:
    """One rule's verdict: rule id, level ("hold" | "stop" | "notify"), the value seen and the threshold crossed,
    both as display strings ("85 mmHg", "< 90 mmHg"), and a sentence for the nurse."""

    rule: str
    level: str
    value: str
    threshold: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "level": self.level,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True)
class Evaluation:
    """The result for one slot, with everything needed to explain it later: the rule set's name, version,
    thresholds and options as they were, and the source ids of the observations read."""

    decision: str  # give | hold | stop | incomplete
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    grades: Mapping[str, int | None]  # CTCAE v5: weight_gain, urine_output, creatinine, platelets
    used: tuple[str, ...]
    rule_set: str
    rule_set_version: int
    evaluated_at: datetime
    thresholds: Mapping[str, int | Decimal] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    # Derived values for display (exact when short, else to 0.1): weight_gain_pct, urine_8h_ml, urine_24h_ml.
    measures: Mapping[str, Decimal | None] = field(default_factory=dict)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Rule ids behind a hold or stop (e.g. for a held dose's statusReason)."""
        return tuple(dict.fromkeys(f.rule for f in self.findings if f.level in ("hold", "stop")))

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


_EXACT_TYPES = (int, Decimal)  # compared with each other exactly by Python itself, no Fraction needed


def _compare(op: str, value: object, threshold: object, exact: Fraction) -> bool:
    """`value <op> threshold`, exactly: ints and Decimals directly, anything else through Fraction."""
    if type(value) in _EXACT_TYPES and type(threshold) in _EXACT_TYPES:
        return _OPS[op][0](value, threshold)
    return _OPS[op][0](as_fraction(value), exact)


# Thresholds as Fractions, computed once per rule set (a RuleSet is immutable and hashable). Bounded: rule sets
# are few (one per name and version), but a long-lived process should not grow without limit.
_THRESHOLD_CACHE: dict[RuleSet, Mapping[str, Fraction]] = {}
_THRESHOLD_CACHE_SIZE = 64


def _fraction_thresholds(rule_set: RuleSet) -> Mapping[str, Fraction]:
    cached = _THRESHOLD_CACHE.get(rule_set)
    if cached is None:
        if len(_THRESHOLD_CACHE) >= _THRESHOLD_CACHE_SIZE:
            _THRESHOLD_CACHE.clear()
        cached = _THRESHOLD_CACHE[rule_set] = {key: as_fraction(v) for key, v in rule_set.thresholds.items()}
    return cached


def fmt(value: object) -> str:
    """A number for display: ints and Decimals as written, derived fractions exactly when short, else to 0.1."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    exact = as_fraction(value)
    for places in range(4):
        scaled = exact * 10**places
        if scaled.denominator == 1:
            return format(Decimal(scaled.numerator).scaleb(-places), "f")
    return format(_rounded(exact), "f")


def _rounded(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.1"), ROUND_HALF_EVEN)


def _with_unit(value: object, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


# --------------------------------------------------------------------------------------------------- context


class _Context:
    """What one evaluation reads, remembering the source id of everything it reads (Evaluation.used)."""

    def __init__(self, snapshot: PatientSnapshot, rule_set: RuleSet, now: datetime) -> None:
        self.snapshot = snapshot
        self.rule_set = rule_set
        self.now = now
        self.used: dict[str, None] = {}
        self.measures: dict[str, Fraction | None] = {}
        # Fluid periods that exist at `now`; windows end at the latest of them (the "latest value").
        self.periods = [p for p in snapshot.urine_periods if p.start < p.end <= now]
        self.fluid_end = max((p.end for p in self.periods), default=None)
        self.fractions = _fraction_thresholds(rule_set)
        self._fluid_cache: dict[tuple[int, int, bool], Fraction | None] = {}
        self.cache: dict[str, Fraction | None] = {}  # derived values read by more than one rule

    def use(self, source_id: str | None) -> None:
        if source_id:
            self.used.setdefault(source_id, None)

    def present(self, reading: Reading | None) -> Reading | None:
        """The reading if it exists at `now` (recorded at or before it, with a value)."""
        if reading is None or reading.value is None or reading.at > self.now:
            return None
        self.use(reading.source_id)
        return reading

    def reading(self, name: str) -> Reading | None:
        return self.present(getattr(self.snapshot, name))

    def value(self, name: str) -> object | None:
        reading = self.reading(name)
        return None if reading is None else reading.value

    def number(self, name: str) -> Fraction | None:
        value = self.value(name)
        return None if value is None else as_fraction(value)

    def threshold(self, key: str) -> Fraction:
        return self.fractions[key]

    def raw_threshold(self, key: str) -> int | Decimal:
        return self.rule_set.thresholds[key]

    def option(self, key: str) -> object:
        return self.rule_set.options[key]

    def events(self, kinds: Iterable[str]) -> list[Event]:
        """Active events of these kinds (recorded at or before now, not resolved by now)."""
        wanted = set(kinds)
        found = [e for e in self.snapshot.events if e.kind in wanted and e.active_at(self.now)]
        for event in found:
            self.use(event.source_id)
        return found

    def fluid(self, hours_back_from: int, hours_back_to: int, *, urine: bool) -> Fraction | None:
        """Urine (or diarrhoea) in the window [E − from h, E − to h], E = end of the latest fluid period.

        Urine: None unless the window is fully covered (a gap could hide any amount). Diarrhoea: what is charted.
        """
        if self.fluid_end is None:
            return None
        # Several rules and grades read the same windows; the answer (and the periods it uses) does not change.
        key = (hours_back_from, hours_back_to, urine)
        if key not in self._fluid_cache:
            start = self.fluid_end - timedelta(hours=hours_back_from)
            end = self.fluid_end - timedelta(hours=hours_back_to)
            self._fluid_cache[key] = self._window(start, end, urine=urine)
        return self._fluid_cache[key]

    def _window(self, start: datetime, end: datetime, *, urine: bool) -> Fraction | None:
        inside = [p for p in self.periods if p.start < end and p.end > start]
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
        for period in inside:
            self.use(period.source_id)
        return total


def _rate(period: FluidPeriod, *, urine: bool) -> Fraction:
    amount = period.urine_ml if urine else period.diarrhea_ml
    return as_fraction(amount or 0) / _microseconds(period.end - period.start)


# --------------------------------------------------------------------------------------------------- building


def _finding(rule: str, level: str, label: str, value: str, threshold: str) -> Finding:
    return Finding(rule, level, value, threshold, f"{label}: {value} ({level} if {threshold}): {_ACTIONS[level]}.")


def _threshold_text(ctx: _Context, op: str, key: str, unit: str) -> str:
    return f"{_OPS[op][1]} {_with_unit(ctx.raw_threshold(key), unit)}"


def _levels(
    ctx: _Context, rule: str, label: str, value: object, shown: str, checks: Iterable[tuple[str, str, str]], unit: str
) -> list[Finding]:
    """Compare one number with (level, op, threshold key) checks, stop first; a stop drops the same rule's hold."""
    found: list[Finding] = []
    for level, op, key in checks:
        if not _compare(op, value, ctx.raw_threshold(key), ctx.threshold(key)):
            continue
        if level == "hold" and any(f.level == "stop" for f in found):
            continue
        found.append(_finding(rule, level, label, shown, _threshold_text(ctx, op, key, unit)))
    return found


RuleFn = Callable[[_Context], list[Finding]]
_RULES: dict[str, RuleFn] = {}


def _rule(rule_id: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        _RULES[rule_id] = fn
        return fn

    return register


# Rules that compare one charted number: rule id → (input field, label, unit, checks). Checks list stop first.
_NUMERIC: dict[str, tuple[str, str, str, tuple[tuple[str, str, str], ...]]] = {
    "CV-SBP": ("sbp", "Systolic BP", "mmHg", (("hold", "<", "CV-SBP.hold_below"),)),
    "CV-PRESSOR": (
        "phenylephrine_mcg_kg_min",
        "Phenylephrine",
        "µg/kg/min",
        (
            ("stop", ">", "CV-PRESSOR.stop_above"),
            ("hold", ">", "CV-PRESSOR.hold_above"),
            ("notify", ">", "CV-PRESSOR.notify_above"),
        ),
    ),
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
    "RS-SPO2": ("spo2", "SpO2", "%", (("hold", "<", "RS-SPO2.hold_below"),)),
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
            ("notify", "<=", "NE-RASS.notify_at_or_below"),
        ),
    ),
}


def _numeric_rule(rule_id: str) -> RuleFn:
    name, label, unit, checks = _NUMERIC[rule_id]

    def check(ctx: _Context) -> list[Finding]:
        reading = ctx.reading(name)
        if reading is None:
            return []
        return _levels(ctx, rule_id, label, reading.value, _with_unit(reading.value, unit), checks, unit)

    check.__doc__ = f"{rule_id}: {label} ({name})."
    return check


for _rule_id in _NUMERIC:
    _RULES[_rule_id] = _numeric_rule(_rule_id)


def _kind(event: Event) -> str:
    return event.kind.replace("_", " ")


def _event_finding(ctx: _Context, rule: str, level: str, label: str, kinds: Iterable[str]) -> list[Finding]:
    active = ctx.events(kinds)
    if not active:
        return []
    names = ", ".join(dict.fromkeys(_kind(e) for e in active))
    return [_finding(rule, level, label, names, "present")]


# --------------------------------------------------------------------------------------------------- rules


@_rule("CV-RHYTHM")
def _cv_rhythm(ctx: _Context) -> list[Finding]:
    """CV-RHYTHM: AF, SVT, bradycardia needing treatment → hold; sustained VT (rhythm or event) → stop;
    a new irregular rhythm (changed since the previous vitals set, or the event) → notify."""
    found: list[Finding] = []
    rhythm = ctx.value("rhythm")
    stop_events = ctx.events(["sustained_vt"])
    vt_rhythm = [str(rhythm)] if rhythm in ctx.option("CV-RHYTHM.stop_rhythms") else []
    if vt_rhythm or stop_events:
        shown = ", ".join(vt_rhythm + [_kind(e) for e in stop_events])
        found.append(_finding("CV-RHYTHM", "stop", "Rhythm", shown, "sustained VT (≥ 5 beats)"))
    elif rhythm in ctx.option("CV-RHYTHM.hold_rhythms"):
        found.append(
            _finding("CV-RHYTHM", "hold", "Rhythm", str(rhythm), " / ".join(ctx.option("CV-RHYTHM.hold_rhythms")))
        )
    previous = ctx.present(ctx.snapshot.previous_rhythm)
    changed = rhythm in ctx.option("CV-RHYTHM.irregular_rhythms") and (previous is None or previous.value != rhythm)
    new_events = ctx.events(["new_irregular_rhythm"])
    if changed or new_events:
        shown = str(rhythm) if changed else _kind(new_events[0])
        found.append(_finding("CV-RHYTHM", "notify", "Rhythm", shown, "new irregular rhythm"))
    return found


@_rule("CV-ISCHEMIA")
def _cv_ischemia(ctx: _Context) -> list[Finding]:
    """CV-ISCHEMIA: chest pain with ECG ischaemia / raised troponin → stop (also a retreatment bar)."""
    return _event_finding(ctx, "CV-ISCHEMIA", "stop", "Chest pain with ischaemia", ["chest_pain_ecg"])


@_rule("RS-O2")
def _rs_o2(ctx: _Context) -> list[Finding]:
    """RS-O2: 3–4 L/min nasal → hold; > 4 L/min or FiO2 ≥ 40 % → stop; on any O2 → notify."""
    lpm, fio2 = ctx.number("o2_lpm"), ctx.number("fio2_pct")
    if lpm is None and fio2 is None:
        return []
    parts = ([_with_unit(ctx.value("o2_lpm"), "L/min")] if lpm is not None else []) + (
        [f"FiO2 {_with_unit(ctx.value('fio2_pct'), '%')}"] if fio2 is not None else []
    )
    shown = ", ".join(parts)
    found: list[Finding] = []
    stop = (lpm is not None and lpm > ctx.threshold("RS-O2.stop_above_lpm")) or (
        fio2 is not None and fio2 >= ctx.threshold("RS-O2.stop_from_fio2_pct")
    )
    if stop:
        threshold = (
            f"{_threshold_text(ctx, '>', 'RS-O2.stop_above_lpm', 'L/min')} or FiO2 "
            f"{_threshold_text(ctx, '>=', 'RS-O2.stop_from_fio2_pct', '%')}"
        )
        found.append(_finding("RS-O2", "stop", "Oxygen", shown, threshold))
    elif lpm is not None and lpm >= ctx.threshold("RS-O2.hold_from_lpm"):
        found.append(
            _finding("RS-O2", "hold", "Oxygen", shown, _threshold_text(ctx, ">=", "RS-O2.hold_from_lpm", "L/min"))
        )
    on_oxygen = (lpm is not None and lpm > ctx.threshold("RS-O2.notify_above_lpm")) or (
        fio2 is not None and fio2 > ctx.threshold("RS-O2.notify_above_fio2_pct")
    )
    if on_oxygen:
        found.append(_finding("RS-O2", "notify", "Oxygen", shown, "on any O2"))
    return found


@_rule("RN-UO")
def _rn_uo(ctx: _Context) -> list[Finding]:
    """RN-UO: urine over the latest 8 h window: ≤ 160 mL → hold (80–160 inclusive), < 80 mL → stop."""
    hours = int(ctx.raw_threshold("RN-UO.window_hours"))
    urine = ctx.fluid(hours, 0, urine=True)
    if urine is None:
        return []
    unit = f"mL in {hours} h"
    return _levels(
        ctx,
        "RN-UO",
        "Urine output",
        urine,
        _with_unit(urine, unit),
        (
            ("stop", "<", "RN-UO.stop_below_ml"),
            ("hold", "<=", "RN-UO.hold_at_or_below_ml"),
        ),
        unit,
    )


@_rule("FL-WT")
def _fl_wt(ctx: _Context) -> list[Finding]:
    """FL-WT: weight gain over the course's baseline > 15 % → hold; CTCAE grade ≥ 1 (5 %, 10 %, 20 %) → notify."""
    gain = _weight_gain_pct(ctx)
    if gain is None:
        return []
    grade = ctcae.weight_gain_grade(gain)
    shown = f"{fmt(gain)} % (CTCAE grade {grade})"
    found = _levels(ctx, "FL-WT", "Weight gain", gain, shown, (("hold", ">", "FL-WT.hold_above_pct"),), "%")
    if grade >= ctx.threshold("FL-WT.notify_from_grade"):
        found.append(
            _finding(
                "FL-WT",
                "notify",
                "Weight gain",
                shown,
                f"CTCAE grade ≥ {fmt(ctx.raw_threshold('FL-WT.notify_from_grade'))}",
            )
        )
    return found


def _weight_gain_pct(ctx: _Context) -> Fraction | None:
    # Read by FL-WT and by the grades; the second read finds the same value (and marks nothing new as used).
    if "weight_gain_pct" not in ctx.cache:
        ctx.cache["weight_gain_pct"] = _compute_weight_gain_pct(ctx)
    return ctx.cache["weight_gain_pct"]


def _compute_weight_gain_pct(ctx: _Context) -> Fraction | None:
    weight = ctx.number("weight_kg")
    baseline = ctx.snapshot.baseline_weight_kg
    if weight is None or baseline is None or as_fraction(baseline) <= 0:
        return None
    base = as_fraction(baseline)
    return (weight - base) / base * 100


@_rule("NE-CONF")
def _ne_conf(ctx: _Context) -> list[Finding]:
    """NE-CONF: confusion/agitation — level per the rule set (consensus: mild notify, moderate hold, severe stop)."""
    confusion = ctx.value("confusion")
    level = ctx.option("NE-CONF.levels").get(confusion)
    if level is None:
        return []
    return [_finding("NE-CONF", level, "Confusion/agitation", str(confusion), f"{confusion} → {level}")]


@_rule("NE-CHECK")
def _ne_check(ctx: _Context) -> list[Finding]:
    """NE-CHECK: fails serial 7s or "WORLD" backward, or hallucinations → stop."""
    signs = [
        text
        for name, text in (
            ("neuro_check_failed", "failed serial 7s / WORLD backward"),
            ("hallucinations", "hallucinations"),
        )
        if bool(ctx.value(name))
    ]
    if not signs:
        return []
    return [_finding("NE-CHECK", "stop", "Neuro check", "; ".join(signs), "present")]


@_rule("GI-HEME")
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
    hours = int(ctx.raw_threshold("GI-DIARRHEA.shift_hours"))
    shifts = int(ctx.raw_threshold("GI-DIARRHEA.stop_consecutive_shifts"))
    limit = ctx.threshold("GI-DIARRHEA.hold_from_ml")
    amounts = [ctx.fluid((k + 1) * hours, k * hours, urine=False) for k in range(max(shifts, 1))]
    if amounts[0] is None or amounts[0] < limit:
        return []
    unit = f"mL per {hours} h shift"
    threshold = _threshold_text(ctx, ">=", "GI-DIARRHEA.hold_from_ml", unit)
    if all(a is not None and a >= limit for a in amounts):
        shown = " then ".join(_with_unit(a, "mL") for a in reversed(amounts))
        return [_finding("GI-DIARRHEA", "stop", "Diarrhoea", shown, f"{threshold} on {shifts} consecutive shifts")]
    return [_finding("GI-DIARRHEA", "hold", "Diarrhoea", _with_unit(amounts[0], unit), threshold)]


@_rule("HP-TRANS")
def _hp_trans(ctx: _Context) -> list[Finding]:
    """HP-TRANS: AST or ALT > 5 × ULN (CTCAE grade 3), or liver pain → stop (withhold the rest of the course)."""
    uln = ctx.threshold("HP-TRANS.uln_u_l")
    limit = uln * ctx.threshold("HP-TRANS.stop_above_uln_x")
    signs = [
        f"{label} {_with_unit(ctx.value(name), 'U/L')}"
        for name, label in (("ast_u_l", "AST"), ("alt_u_l", "ALT"))
        if (value := ctx.number(name)) is not None and value > limit
    ]
    signs += [_kind(e) for e in ctx.events(["liver_pain"])]
    if not signs:
        return []
    times, uln_shown = fmt(ctx.raw_threshold("HP-TRANS.stop_above_uln_x")), fmt(ctx.raw_threshold("HP-TRANS.uln_u_l"))
    threshold = f"> {_with_unit(limit, 'U/L')} ({times} × ULN {uln_shown} U/L), or liver pain"
    return [_finding("HP-TRANS", "stop", "Liver", "; ".join(signs), threshold)]


@_rule("HP-FAIL")
def _hp_fail(ctx: _Context) -> list[Finding]:
    """HP-FAIL: hepatic failure (encephalopathy, increasing ascites) → stop (discontinue)."""
    return _event_finding(ctx, "HP-FAIL", "stop", "Hepatic failure", ["hepatic_failure"])


@_rule("SK-BULLOUS")
def _sk_bullous(ctx: _Context) -> list[Finding]:
    """SK-BULLOUS: bullous dermatitis or marked flare of a skin condition → hold until resolved."""
    return _event_finding(ctx, "SK-BULLOUS", "hold", "Skin", ["bullous_dermatitis"])


@_rule("IN-INFECT")
def _in_infect(ctx: _Context) -> list[Finding]:
    """IN-INFECT: documented or strongly suspected infection → stop."""
    return _event_finding(ctx, "IN-INFECT", "stop", "Infection", ["infection"])


@_rule("LB-CREAT")
def _lb_creat(ctx: _Context) -> list[Finding]:
    """LB-CREAT (label): creatinine > 4.5, or ≥ 4 with volume overload (event), acidosis (bicarbonate below the
    threshold) or hyperkalaemia (potassium above it) → hold, and keep holding until a result < 1.5.

    The "until" latch follows results > 4.5 only: whether an earlier ≥ 4 result had its conditions is not known.
    """
    reading = ctx.reading("creatinine_mg_dl")
    if reading is None:
        return []
    creatinine = as_fraction(reading.value)
    conditions = [_kind(e) for e in ctx.events(["volume_overload"])]
    bicarbonate, potassium = ctx.number("bicarbonate_mmol_l"), ctx.number("potassium_mmol_l")
    if bicarbonate is not None and bicarbonate < ctx.threshold("LB-CREAT.acidosis_bicarbonate_below"):
        conditions.append("acidosis")
    if potassium is not None and potassium > ctx.threshold("LB-CREAT.hyperkalaemia_potassium_above"):
        conditions.append("hyperkalaemia")
    above = ctx.threshold("LB-CREAT.hold_above")
    shown = _with_unit(reading.value, "mg/dL")
    if creatinine > above:
        pass
    elif creatinine >= ctx.threshold("LB-CREAT.hold_from_with_condition") and conditions:
        shown += f" with {', '.join(conditions)}"
    else:
        latch = _creatinine_latch(ctx, reading)
        if latch is None:
            return []
        shown += f" (held since {_with_unit(latch.value, 'mg/dL')} at {iso_z(latch.at)})"
    threshold = (
        f"> {_with_unit(ctx.raw_threshold('LB-CREAT.hold_above'), 'mg/dL')}, or "
        f"≥ {fmt(ctx.raw_threshold('LB-CREAT.hold_from_with_condition'))} with volume overload, acidosis "
        f"or hyperkalaemia; hold until < {fmt(ctx.raw_threshold('LB-CREAT.resume_below'))}"
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
        value = as_fraction(result.value)
        if value > above:
            trigger = result
        elif value < resume:
            trigger = None
    return trigger


@_rule("LB-OLIG")
def _lb_olig(ctx: _Context) -> list[Finding]:
    """LB-OLIG (label): urine < 10 mL/h over the latest 16 h (average) with a rising creatinine → hold."""
    hours = int(ctx.raw_threshold("LB-OLIG.hours"))
    urine = ctx.fluid(hours, 0, urine=True)
    latest, previous = ctx.number("creatinine_mg_dl"), ctx.present(ctx.snapshot.previous_creatinine)
    if urine is None or latest is None or previous is None:
        return []
    per_hour = urine / hours
    if per_hour >= ctx.threshold("LB-OLIG.below_ml_per_h") or latest <= as_fraction(previous.value):
        return []
    shown = (
        f"{_with_unit(per_hour, 'mL/h')} over {hours} h; creatinine {fmt(previous.value)} → "
        f"{_with_unit(ctx.value('creatinine_mg_dl'), 'mg/dL')}"
    )
    threshold = f"< {_with_unit(ctx.raw_threshold('LB-OLIG.below_ml_per_h'), 'mL/h')} for {hours} h, rising creatinine"
    return [_finding("LB-OLIG", "hold", "Oliguria", shown, threshold)]


@_rule("LB-SEPSIS")
def _lb_sepsis(ctx: _Context) -> list[Finding]:
    """LB-SEPSIS (label): sepsis with a clinically unstable patient → hold until resolved."""
    return _event_finding(ctx, "LB-SEPSIS", "hold", "Sepsis, unstable", ["sepsis_unstable"])


@_rule("LB-DISCONT")
def _lb_discont(ctx: _Context) -> list[Finding]:
    """LB-DISCONT: a permanent-discontinuation (retreatment-bar) event not read by another rule → stop."""
    return _event_finding(ctx, "LB-DISCONT", "stop", "Discontinuation event", ctx.option("LB-DISCONT.events"))


def _ag_3rel(ctx: _Context, findings: list[Finding]) -> list[Finding]:
    """AG-3REL: three or more rules at `hold` in one evaluation → stop."""
    holding = list(dict.fromkeys(f.rule for f in findings if f.level == "hold"))
    if len(holding) < ctx.threshold("AG-3REL.min_holds"):
        return []
    shown = f"{len(holding)} hold criteria ({', '.join(holding)})"
    threshold = f"≥ {fmt(ctx.raw_threshold('AG-3REL.min_holds'))} hold criteria"
    return [_finding("AG-3REL", "stop", "Hold criteria", shown, threshold)]


_AGGREGATES = {"AG-3REL": _ag_3rel}
IMPLEMENTED_RULES = frozenset(_RULES) | frozenset(_AGGREGATES)


# --------------------------------------------------------------------------------------------------- freshness


def _fresh(ctx: _Context, name: str, limit: timedelta) -> bool:
    reading = ctx.reading(name)
    return reading is not None and ctx.now - reading.at <= limit


def _missing(ctx: _Context) -> list[str]:
    """Required data absent or older than the rule set's freshness limits (inclusive: exactly 60 min is fresh)."""
    required = ctx.option("freshness.required")
    missing: list[str] = []
    for group in ("vitals", "neuro"):
        if group in required:
            limit = timedelta(minutes=int(ctx.raw_threshold(f"freshness.{group}_minutes")))
            # Check every field (no short-circuit) so all of them are recorded as used.
            if not all([_fresh(ctx, name, limit) for name in ctx.option(f"freshness.{group}_fields")]):
                missing.append(group)
    if "weight" in required:
        if not _fresh(ctx, "weight_kg", timedelta(hours=int(ctx.raw_threshold("freshness.weight_hours")))):
            missing.append("weight")
        if "FL-WT" in ctx.rule_set.rules and ctx.snapshot.baseline_weight_kg is None:
            missing.append("baseline_weight")
    if "urine_8h" in required and not ctx.snapshot.first_slot_of_cycle and not _urine_recorded(ctx):
        missing.append("urine_8h")
    if "labs" in required:
        limit = timedelta(hours=int(ctx.raw_threshold("freshness.labs_hours")))
        for name in ctx.option("freshness.labs_fields"):
            if not _fresh(ctx, name, limit):
                missing.append(f"labs.{LAB_NAMES[name]}")
    return missing


def _urine_recorded(ctx: _Context) -> bool:
    """Urine output recorded without gaps for the 8 h before the evaluation (the record may end up to the
    site's tolerance before `now`; default 0: right up to it)."""
    if ctx.fluid_end is None:
        return False
    tolerance = timedelta(minutes=int(ctx.raw_threshold("freshness.urine_end_tolerance_minutes")))
    if ctx.now - ctx.fluid_end > tolerance:
        return False
    return ctx.fluid(int(ctx.raw_threshold("freshness.urine_hours")), 0, urine=True) is not None


# --------------------------------------------------------------------------------------------------- evaluate


def _grades(ctx: _Context) -> dict[str, int | None]:
    """CTCAE v5 grades shown with every evaluation, whatever rules are enabled."""
    gain = _weight_gain_pct(ctx)
    urine_8h = ctx.fluid(ctcae.OLIGURIA_HOURS, 0, urine=True)
    urine_24h = ctx.fluid(ctcae.ANURIA_HOURS, 0, urine=True)
    ctx.measures.update(weight_gain_pct=gain, urine_8h_ml=urine_8h, urine_24h_ml=urine_24h)
    baseline = ctx.snapshot.baseline_creatinine_mg_dl
    return {
        "weight_gain": ctcae.weight_gain_grade(gain),
        "urine_output": ctcae.urine_output_grade(urine_8h, urine_24h),
        "creatinine": ctcae.creatinine_grade(
            ctx.number("creatinine_mg_dl"),
            uln=ctx.threshold("CTCAE.creatinine_uln_mg_dl"),
            baseline=None if baseline is None else as_fraction(baseline),
        ),
        "platelets": ctcae.platelet_grade(ctx.number("platelets_k_ul"), lln=ctx.threshold("CTCAE.platelets_lln_k_ul")),
    }


def evaluate(snapshot: PatientSnapshot, *, rule_set: RuleSet, now: datetime) -> Evaluation:
    """Evaluate the pre-dose rules of ``rule_set`` on ``snapshot`` at ``now`` (aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    unknown = [rule for rule in rule_set.rules if rule not in IMPLEMENTED_RULES]
    if unknown:
        raise ValueError(f"rules without an implementation: {', '.join(unknown)}")
    ctx = _Context(snapshot, rule_set, now)
    findings: list[Finding] = []
    for rule in rule_set.rules:
        if rule in _RULES:
            findings += _RULES[rule](ctx)
    for rule in rule_set.rules:
        if rule in _AGGREGATES:
            findings += _AGGREGATES[rule](ctx, findings)
    missing = _missing(ctx)
    grades = _grades(ctx)
    levels = {f.level for f in findings}
    if "stop" in levels:
        decision = "stop"
    elif "hold" in levels:
        decision = "hold"
    elif missing:
        decision = "incomplete"
    else:
        decision = "give"
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
        measures=MappingProxyType({k: None if v is None else Decimal(fmt(v)) for k, v in ctx.measures.items()}),
    )
