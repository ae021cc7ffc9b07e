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
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from .. import ctcae
from ..rulesets import RuleSet
from ..snapshot import PatientSnapshot
from .context import _FIRST, _Context
from .freshness import _missing
from .numbers import _EXACT_TYPES, as_fraction, exact, fmt
from .plan import _plan
from .results import (
    BLOCKING_LEVELS,
    DECISION_SEVERITY,
    DECISIONS,
    MISSING_NAMES,
    Evaluation,
    Finding,
    blocking_rules,
)
from .rules import IMPLEMENTED_RULES, _ag_3rel, _finding, _numeric_findings

__all__ = [
    "BLOCKING_LEVELS",
    "DECISIONS",
    "DECISION_SEVERITY",
    "IMPLEMENTED_RULES",
    "MISSING_NAMES",
    "Evaluation",
    "Finding",
    "as_fraction",
    "blocking_rules",
    "evaluate",
    "exact",
    "fmt",
]


# --------------------------------------------------------------------------------------------------- evaluate


def _grades(ctx: _Context, measures: dict[str, Any]) -> dict[str, int | None]:
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


def _measure(value: Any) -> Decimal | None:
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
    alternatives: list[dict[str, Any]] = [{name: reading} for name, reading in conflicts]
    results = [_evaluate(base, rule_set, now)] + [
        _evaluate(dataclasses.replace(base, **alternative), rule_set, now) for alternative in alternatives
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
    measures: dict[str, Any] = {}
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
