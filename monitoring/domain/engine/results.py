"""What an evaluation answers: the decisions and levels, a finding, the evaluation itself."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from common.timefmt import iso_z

from ..rulesets import json_ready
from ..snapshot import LAB_NAMES

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

_OPS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
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
    options: Mapping[str, Any] = _EMPTY
    # Derived values for display (exact when short, else to 0.1): weight_gain_pct, urine_8h_ml, urine_24h_ml.
    measures: Mapping[str, Decimal | None] = _EMPTY

    @property
    def reasons(self) -> tuple[str, ...]:
        """Rule ids behind a hold, stop or discontinue (e.g. for a held dose's statusReason)."""
        return tuple(dict.fromkeys(f.rule for f in self.findings if f.level in _BLOCKING_LEVELS))

    def to_dict(self) -> dict[str, Any]:
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
