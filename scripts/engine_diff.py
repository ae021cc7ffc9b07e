"""Differential check of the hold-rule engine against an earlier version of it, on random inputs.

    .venv/bin/python scripts/engine_diff.py --against REV [--examples N] [--seed S]

REV is any git revision whose ``monitoring/domain/`` holds the engine to compare with (its files are read with
``git show``, so the working tree is not touched). Both engines evaluate the same random patients under their own
built-in rule sets (consensus-2014 and label-only), at one evaluation time. The inputs are the ones both versions
read; the inputs only the current version reads are filled in as charted and normal (other vasopressor none, every
neuro answer no, a normal bedside exam), so a difference comes from a change of a rule, never from an input the earlier
engine did not have.

Every difference is attributed to the rule ids whose findings differ and to the inputs that became required; each must
be one the specification asked for (``EXPECTED`` below, from the rows HOLD-RULES marks as changed and its invariants).
Prints a table of differences by rule and exits 1 when any difference has no expected cause, or when the earlier engine
cannot be loaded.
"""

from __future__ import annotations

import argparse
import importlib
import random
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitoring.domain import engine as current_engine  # noqa: E402
from monitoring.domain import rulesets as current_rulesets  # noqa: E402
from monitoring.domain import snapshot as current_snapshot  # noqa: E402

# HOLD-RULES version 2: the §3 rows marked (v2), the label-only rows it changed, and the rule that counts holds (its
# count changes whenever another hold rule's does).
EXPECTED_RULES = frozenset(
    {
        "CV-PRESSOR",
        "CV-RHYTHM",
        "CV-ISCHEMIA",
        "RS-SPO2",
        "RS-O2",
        "RS-EXAM",
        "NE-RASS",
        "NE-CONF",
        "NE-CHECK",
        "NE-PERSIST",
        "GI-EXAM",
        "MS-EXAM",
        "SK-DESQ",
        "HP-TRANS",
        "HP-FAIL",
        "IN-INFECT",
        "LB-DISCONT",
        "LB-SEPSIS",
        "AG-3REL",
    }
)
DERIVED_RULES = frozenset({"AG-3REL"})  # expected only together with another expected rule's change
NOTIFY_ONLY = frozenset({"INV-CONFLICT"})

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
V1_RHYTHMS = ("sinus", "af", "svt", "brady_treated", "vt_sustained", "other")
CONFUSION = ("none", "mild", "moderate", "severe")


def load_engine(revision: str, into: Path):
    """Import ``monitoring/domain`` of `revision` as the package ``engine_at_revision``."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", f"{revision}:monitoring/domain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    package = into / "engine_at_revision"
    package.mkdir()
    for name in listing:
        if name.endswith(".py"):
            source = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{revision}:monitoring/domain/{name}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            (package / name).parent.mkdir(parents=True, exist_ok=True)  # the engine became a package later
            (package / name).write_text(source)
    for loaded in [name for name in sys.modules if name.split(".")[0] == package.name]:
        del sys.modules[loaded]  # a second comparison in one process reads its own revision
    sys.path.insert(0, str(into))
    try:
        return tuple(importlib.import_module(f"{package.name}.{name}") for name in ("engine", "rulesets", "snapshot"))
    finally:
        sys.path.remove(str(into))


# ----------------------------------------------------------------------------------------------- random patients


def _maybe(rng: random.Random, value, *, absent: float = 0.08):
    return None if rng.random() < absent else value


def _minutes_ago(rng: random.Random, most: int) -> datetime:
    return NOW - timedelta(minutes=rng.randint(0, most))


def _pick(rng: random.Random, normal, abnormal, *, odds: float = 0.15):
    """Mostly a normal value, sometimes one from a range that straddles the rules' thresholds."""
    return abnormal() if rng.random() < odds else normal


def random_inputs(rng: random.Random) -> dict:
    """One patient, as plain values: {field: (value, at) or None}, plus the history fields."""
    vitals_at = _minutes_ago(rng, 80)
    neuro_at = _minutes_ago(rng, 80)
    labs_at = _minutes_ago(rng, 30 * 60)

    def vital(normal, abnormal):
        return _maybe(rng, (_pick(rng, normal, abnormal), vitals_at))

    def neuro(normal, abnormal):
        return _maybe(rng, (_pick(rng, normal, abnormal), neuro_at))

    def lab(normal, abnormal):
        return _maybe(rng, (_pick(rng, normal, abnormal), labs_at))

    def tenths(low, high):
        return lambda: Decimal(rng.randint(low, high)) / 10

    def whole(low, high):
        return lambda: rng.randint(low, high)

    inputs = {
        "sbp": vital(118, whole(70, 100)),
        "dbp": vital(72, whole(40, 60)),
        "heart_rate": vital(88, whole(95, 150)),
        "resp_rate": vital(18, whole(24, 36)),
        "spo2": vital(97, whole(85, 96)),
        "temp_c": vital(Decimal("37.2"), tenths(380, 412)),
        "o2_lpm": vital(0, lambda: Decimal(rng.randint(1, 12)) / 2),
        "fio2_pct": _maybe(rng, (rng.choice((28, 35, 40, 50)), vitals_at), absent=0.85),
        "rhythm": vital("sinus", lambda: rng.choice(V1_RHYTHMS)),
        "phenylephrine_mcg_kg_min": vital(0, lambda: rng.choice((Decimal("0.3"), Decimal("0.5"), Decimal("0.9")))),
        "rass": neuro(0, lambda: rng.choice((-3, -2, -1, 1, 2, 3))),
        "confusion": neuro("none", lambda: rng.choice(CONFUSION)),
        "neuro_check_failed": neuro(False, lambda: True),
        "hallucinations": neuro(False, lambda: True),
        "weight_kg": _maybe(rng, (_pick(rng, Decimal("81.0"), tenths(700, 980)), _minutes_ago(rng, 30 * 60))),
        "creatinine_mg_dl": lab(Decimal("1.0"), tenths(14, 50)),
        "platelets_k_ul": lab(180, whole(10, 60)),
        "bilirubin_mg_dl": lab(Decimal("0.8"), tenths(20, 90)),
        "bicarbonate_mmol_l": lab(24, whole(14, 22)),
        "ast_u_l": lab(30, whole(40, 260)),
        "alt_u_l": lab(30, whole(40, 260)),
        "potassium_mmol_l": lab(Decimal("4.1"), tenths(30, 60)),
        "baseline_weight_kg": Decimal("80.0"),
        "previous_rhythm": _maybe(rng, (rng.choice(V1_RHYTHMS), vitals_at - timedelta(hours=2)), absent=0.5),
        "previous_creatinine": _maybe(rng, (Decimal(rng.randint(6, 40)) / 10, labs_at - timedelta(days=1)), absent=0.3),
        "first_slot_of_cycle": rng.random() < 0.15,
    }
    periods = []
    end = NOW - timedelta(minutes=rng.choice((0, 0, 0, 30, 120)))
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        hours = rng.choice((4, 8))
        start = end - timedelta(hours=hours)
        urine = _pick(rng, rng.randint(300, 700), whole(0, 300), odds=0.3)
        periods.append((start, end, urine, rng.choice((None, 0, 0, 400, 1100))))
        end = start - timedelta(minutes=rng.choice((0, 0, 0, 60)))
    inputs["urine_periods"] = periods
    events = []
    for _ in range(rng.choice((0, 0, 0, 0, 0, 1, 2))):
        kind = rng.choice(rng.choice((V1_CLINICAL_EVENTS, V1_BAR_EVENTS)))
        at = NOW - timedelta(hours=rng.randint(1, 40))
        resolved = at + timedelta(hours=rng.randint(1, 48)) if rng.random() < 0.3 else None
        events.append((kind, at, resolved))
    inputs["events"] = events
    return inputs


V1_CLINICAL_EVENTS = (
    "heme_positive",
    "frank_bleeding",
    "infection",
    "chest_pain_ecg",
    "edema",
    "liver_pain",
    "hepatic_failure",
    "bullous_dermatitis",
    "sepsis_unstable",
    "volume_overload",
    "new_irregular_rhythm",
)
V1_BAR_EVENTS = (
    "sustained_vt",
    "uncontrolled_arrhythmia",
    "cardiac_tamponade",
    "intubation_over_72h",
    "dialysis_over_72h",
    "coma_or_psychosis_over_48h",
    "seizures",
    "bowel_ischemia_perforation",
    "gi_bleed_surgery",
)


def build_snapshot(module, inputs: dict, *, complete_new_inputs: bool):
    """The `module`'s PatientSnapshot from `inputs`; fields the module does not have are left out."""
    names = {f.name for f in module.fields(module.PatientSnapshot)}
    values: dict = {}
    for name, item in inputs.items():
        if name not in names:
            continue
        if name in ("baseline_weight_kg", "first_slot_of_cycle"):
            values[name] = item
        elif name == "urine_periods":
            values[name] = tuple(
                module.FluidPeriod(start=s, end=e, urine_ml=u, diarrhea_ml=d, source_id=f"fluid:{i}")
                for i, (s, e, u, d) in enumerate(item)
            )
        elif name == "events":
            values[name] = tuple(
                module.Event(kind=k, at=at, resolved_at=r, source_id=f"event:{i}") for i, (k, at, r) in enumerate(item)
            )
        elif item is not None:
            values[name] = module.Reading(value=item[0], at=item[1], source_id=f"{name}:1")
    if complete_new_inputs:
        vitals_at = next((inputs[n][1] for n in ("sbp", "heart_rate", "spo2") if inputs[n]), NOW)
        neuro = [inputs[n] for n in ("rass", "confusion", "neuro_check_failed", "hallucinations")]
        neuro_at = next((item[1] for item in neuro if item), NOW)
        new = {name for name in names} - set(inputs)
        for name in new:
            if name == "other_pressor":
                values[name] = module.Reading(value="none", at=vitals_at, source_id="vitals:1")
            elif name == "phenylephrine_max_interval" and inputs["phenylephrine_mcg_kg_min"]:
                value, at = inputs["phenylephrine_mcg_kg_min"]
                values[name] = module.Reading(value=value, at=at, source_id="vitals:1")
            elif name in ("vivid_dreams_or_anxiety", "persistent_crying"):
                values[name] = module.Reading(value=False, at=neuro_at, source_id="neuro:1")
            elif name == "rales":
                values[name] = module.Reading(value="none", at=NOW - timedelta(minutes=30), source_id="exam:1")
            elif name in module.EXAM_FLAGS:
                values[name] = module.Reading(value=False, at=NOW - timedelta(minutes=30), source_id="exam:1")
            elif name == "neuro_history" and inputs["rass"] and inputs["confusion"]:
                values[name] = (
                    module.NeuroSet(
                        at=neuro_at,
                        rass=inputs["rass"][0],
                        confusion=inputs["confusion"][0],
                        neuro_check_failed=(inputs["neuro_check_failed"] or (None,))[0],
                        source_id="neuro:1",
                    ),
                )
    return module.PatientSnapshot(**values)


# ------------------------------------------------------------------------------------------------- comparison


def _levels_by_rule(evaluation) -> dict[str, frozenset[str]]:
    levels: dict[str, set[str]] = {}
    for finding in evaluation.findings:
        if finding.rule not in NOTIFY_ONLY:
            levels.setdefault(finding.rule, set()).add(finding.level)
    return {rule: frozenset(found) for rule, found in levels.items()}


def _newly_required(inputs: dict) -> set[str]:
    """The missing groups the current engine may add for this patient under INV-EXPLICIT."""
    added = set()
    if inputs["rhythm"] is None or inputs["phenylephrine_mcg_kg_min"] is None:
        added.add("vitals")
    if inputs["o2_lpm"] is None and inputs["fio2_pct"] is None:
        added.add("vitals")
    if inputs["neuro_check_failed"] is None or inputs["hallucinations"] is None:
        added.add("neuro")
    return added


def explain(before, after, inputs: dict) -> tuple[list[str], list[str]]:
    """(expected causes, unexpected causes) of the differences between two evaluations of one patient."""
    expected: list[str] = []
    unexpected: list[str] = []
    old, new = _levels_by_rule(before), _levels_by_rule(after)
    changed = sorted(rule for rule in set(old) | set(new) if old.get(rule) != new.get(rule))
    primary = [rule for rule in changed if rule not in DERIVED_RULES]
    for rule in changed:
        if rule in EXPECTED_RULES and (rule not in DERIVED_RULES or any(r in EXPECTED_RULES for r in primary)):
            expected.append(rule)
        else:
            unexpected.append(f"{rule} {sorted(old.get(rule, ()))} -> {sorted(new.get(rule, ()))}")
    gained = set(after.missing) - set(before.missing)
    lost = set(before.missing) - set(after.missing)
    for group in sorted(gained):
        (expected if group in _newly_required(inputs) else unexpected).append(f"INV-EXPLICIT +{group}")
    for group in sorted(lost):
        # The urine window need not be fully covered when the urine charted in it already exceeds the hold band.
        (expected if group == "urine_8h" else unexpected).append(f"RN-UO -{group}")
    if before.decision != after.decision and not (expected or unexpected):
        unexpected.append(f"decision {before.decision} -> {after.decision} with no rule or input changed")
    return expected, unexpected


def run(revision: str, examples: int, seed: int, *, current_sets=None) -> int:
    """Compare; `current_sets` (consensus, label-only) replaces the working tree's built-in sets (a test plants a
    change there to see the comparison fail)."""
    consensus, label_only = current_sets or (current_rulesets.CONSENSUS_2014, current_rulesets.LABEL_ONLY)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            old_engine, old_rulesets, old_snapshot = load_engine(revision, Path(scratch))
        except (subprocess.CalledProcessError, ImportError) as error:
            print(f"cannot load the engine at {revision}: {error}", file=sys.stderr)
            return 1
        rng = random.Random(seed)
        pairs = (
            ("consensus-2014", old_rulesets.CONSENSUS_2014, consensus),
            ("label-only", old_rulesets.LABEL_ONLY, label_only),
        )
        causes: Counter[tuple[str, str]] = Counter()
        transitions: Counter[tuple[str, str, str]] = Counter()
        unexplained: list[str] = []
        same = 0
        for index in range(examples):
            inputs = random_inputs(rng)
            before_snapshot = build_snapshot(old_snapshot, inputs, complete_new_inputs=False)
            after_snapshot = build_snapshot(current_snapshot, inputs, complete_new_inputs=True)
            for name, old_set, new_set in pairs:
                before = old_engine.evaluate(before_snapshot, rule_set=old_set, now=NOW)
                after = current_engine.evaluate(after_snapshot, rule_set=new_set, now=NOW)
                expected, unexpected = explain(before, after, inputs)
                if before.decision == after.decision and not expected and not unexpected:
                    same += 1
                    continue
                if before.decision != after.decision:
                    transitions[(name, before.decision, after.decision)] += 1
                for cause in expected:
                    causes[(name, cause)] += 1
                for cause in unexpected:
                    unexplained.append(f"example {index} ({name}, seed {seed}): {cause}")
        total = examples * len(pairs)
        print(f"engine at {revision} vs working tree: {examples} random patients x {len(pairs)} rule sets")
        print(f"  identical: {same} of {total}")
        print("  decision changes (rule set, before -> after: count):")
        for (name, old_decision, new_decision), count in sorted(transitions.items()):
            print(f"    {name:15} {old_decision:>11} -> {new_decision:<11} {count}")
        print("  differences by expected cause (rule set, cause: count):")
        for (name, cause), count in sorted(causes.items()):
            print(f"    {name:15} {cause:24} {count}")
        print(f"  unexpected: {len(unexplained)}")
        for line in unexplained[:20]:
            print(f"    {line}")
        return 1 if unexplained else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="git revision of the earlier engine")
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    return run(args.against, args.examples, args.seed)


if __name__ == "__main__":
    sys.exit(main())
