"""The rules table (each rule registers here) and a rule set compiled once into a plan: what to read, the numeric
checks as tuples, freshness limits as timedeltas."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from ..rulesets import RuleSet
from ..snapshot import LAB_NAMES, READING_FIELDS, PatientSnapshot, Reading
from .results import _OPS, Finding

if TYPE_CHECKING:
    from .context import _Context


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
    numeric: tuple[tuple[int, str, str, tuple[tuple[Callable, Any], ...]], ...]  # (order, rule, field, checks)
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
    unknown = [rule for rule in rule_set.rules if rule not in _RULES and rule not in _NUMERIC and rule != "AG-3REL"]
    if unknown:
        raise ValueError(f"rules without an implementation: {', '.join(unknown)}")
    thresholds, options = rule_set.thresholds, rule_set.options
    reads: list[str] = []
    numeric: list[tuple[int, str, str, tuple[tuple[Callable, Any], ...]]] = []
    custom: list[tuple[int, RuleFn]] = []
    on_events: list[tuple[int, RuleFn]] = []
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
