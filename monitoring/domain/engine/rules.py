"""The rules of HOLD-RULES.md §3, one function each (the numeric ones are rows of plan._NUMERIC), and how their
findings are built."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from common.timefmt import iso_z

from ..snapshot import Event, Reading
from .context import _Context
from .numbers import _microseconds, _Ratio, _with_unit, as_fraction, exact, fmt
from .plan import _NUMERIC, _RULES, RuleFn, _hours, _rule
from .results import _ACTIONS, _BLOCKING_LEVELS, _LEVELS_SEVERE_FIRST, _OPS, DECISION_SEVERITY, Finding

# --------------------------------------------------------------------------------------------------- building


def _finding(rule: str, level: str, label: str, value: str, threshold: str) -> Finding:
    return Finding(rule, level, value, threshold, f"{label}: {value} ({level} if {threshold}): {_ACTIONS[level]}.")


def _threshold_text(ctx: _Context, op: str, key: str, unit: str) -> str:
    return f"{_OPS[op][1]} {_with_unit(ctx.threshold(key), unit)}"


def _levels(
    ctx: _Context,
    rule: str,
    label: str,
    value: Any,
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


def _numeric_findings(ctx: _Context, rule: str, reading: Reading, value: Any) -> list[Finding]:
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
    if grade is not None and grade >= notify_from:  # a gain always has a grade
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


def _exam_rule(rule: str, label: str, signs: tuple[tuple[str, Any, str, str], ...]) -> RuleFn:
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
