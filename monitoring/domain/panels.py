"""Display groupings of an evaluation: the "capillary leak signs" panel and the design card's three flags.

Capillary leak is not one number (HOLD-RULES.md §3): the panel lines up the signs that together suggest it — systolic
BP, pressor, weight gain, urine output, SpO2 and oxygen, and oedema — each with the level its rule reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from .engine import Evaluation, fmt
from .snapshot import PatientSnapshot, Reading

# The design card's flags → the rules that raise them (HOLD-RULES.md §3, last paragraph).
FLAG_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "lethargy": ("NE-RASS", "NE-CONF"),
        "hypotension": ("CV-SBP", "CV-PRESSOR"),
        "capillary_leak": ("FL-WT", "RN-UO", "RS-SPO2", "RS-O2"),
    }
)

_LEVEL_ORDER = ("notify", "hold", "stop")  # mildest first


@dataclass(frozen=True)
class PanelItem:
    """One line of a panel: what is shown, from which rules, and the most severe level those rules reached."""

    key: str
    label: str
    rules: tuple[str, ...]
    value: str | None  # None: nothing recorded
    at: datetime | None
    level: str | None  # "stop" | "hold" | "notify" | None


def worst_level(evaluation: Evaluation, rules: tuple[str, ...]) -> str | None:
    """The most severe finding level of these rules in the evaluation (None when none of them fired)."""
    levels = [f.level for f in evaluation.findings if f.rule in rules]
    return max(levels, key=_LEVEL_ORDER.index, default=None)


def flag_levels(evaluation: Evaluation) -> dict[str, str | None]:
    """The design card's three flags: each flag's most severe level, or None."""
    return {flag: worst_level(evaluation, rules) for flag, rules in FLAG_GROUPS.items()}


def capillary_leak_panel(snapshot: PatientSnapshot, evaluation: Evaluation) -> list[PanelItem]:
    """The capillary-leak signs, read as of the evaluation's time (later readings are not shown)."""
    now = evaluation.evaluated_at

    def reading(name: str) -> Reading | None:
        found = getattr(snapshot, name)
        return found if found is not None and found.value is not None and found.at <= now else None

    def item(key: str, label: str, rules: tuple[str, ...], name: str, unit: str) -> PanelItem:
        found = reading(name)
        value = None if found is None else f"{fmt(found.value)} {unit}"
        return PanelItem(key, label, rules, value, None if found is None else found.at, worst_level(evaluation, rules))

    gain = evaluation.measures.get("weight_gain_pct")
    weight = reading("weight_kg")
    grade = evaluation.grades.get("weight_gain")
    urine = evaluation.measures.get("urine_8h_ml")
    lpm, fio2 = reading("o2_lpm"), reading("fio2_pct")
    oxygen = [f"{fmt(lpm.value)} L/min"] if lpm else []
    oxygen += [f"FiO2 {fmt(fio2.value)} %"] if fio2 else []
    oedema = [e for e in snapshot.events if e.kind == "edema" and e.active_at(now)]
    return [
        item("sbp", "Systolic BP", ("CV-SBP",), "sbp", "mmHg"),
        item("pressor", "Phenylephrine", ("CV-PRESSOR",), "phenylephrine_mcg_kg_min", "µg/kg/min"),
        PanelItem(
            "weight_gain",
            "Weight gain over baseline",
            ("FL-WT",),
            None if gain is None else f"{fmt(gain)} % (CTCAE grade {grade})",
            None if weight is None else weight.at,
            worst_level(evaluation, ("FL-WT",)),
        ),
        PanelItem(
            "urine_8h",
            "Urine output, 8 h",
            ("RN-UO",),
            None if urine is None else f"{fmt(urine)} mL",
            None,
            worst_level(evaluation, ("RN-UO",)),
        ),
        item("spo2", "SpO2", ("RS-SPO2",), "spo2", "%"),
        PanelItem(
            "o2",
            "Oxygen",
            ("RS-O2",),
            ", ".join(oxygen) or None,
            o2_reading.at if (o2_reading := lpm or fio2) else None,
            worst_level(evaluation, ("RS-O2",)),
        ),
        PanelItem(
            "edema", "Oedema", (), "present" if oedema else None, max((e.at for e in oedema), default=None), None
        ),
    ]
