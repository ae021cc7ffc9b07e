"""Pre-dose rule sets as data (HOLD-RULES.md §3).

A rule set names the rules it enables and holds every number they use in one flat mapping of named thresholds
(``"CV-SBP.hold_below": 90``). A threshold's name says how it is compared (``_below`` is ``<``, ``_at_or_below`` is
``<=``, ``_above`` is ``>``, ``_from`` is ``>=``), so the boundary choices are visible in the data. A site changes the
numbers with :meth:`RuleSet.with_overrides`, which returns a new *version*; the engine copies the rule set's name,
version, thresholds and options into every evaluation, so a stored decision can always be explained.

Standard library only (ARCHITECTURE.md: domain packages are pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from .snapshot import EXAM_FIELDS

Number = int | Decimal

_VITALS_REQUIRED = (
    "sbp",
    "heart_rate",
    "resp_rate",
    "spo2",
    "temp_c",
    "rhythm",
    "phenylephrine_mcg_kg_min",
    "other_pressor",
)
_NEURO_REQUIRED = ("rass", "confusion", "neuro_check_failed", "hallucinations")

D = Decimal  # short alias for the data tables below


@dataclass(frozen=True)
class RuleInfo:
    """Display metadata for one rule id (the rule's behaviour lives in engine.py, its numbers in a RuleSet)."""

    id: str
    title: str
    input: str
    source: str
    group: str  # flag group on the design card: lethargy | hypotension | capillary_leak | other


FLAG_GROUP_NAMES = ("lethargy", "hypotension", "capillary_leak", "other")

_CATALOGUE = (
    RuleInfo("CV-SBP", "Systolic blood pressure", "systolic BP (mmHg)", "S1 Table 2", "hypotension"),
    RuleInfo(
        "CV-PRESSOR",
        "Vasopressors",
        "phenylephrine at dosing and the highest since the previous dose (µg/kg/min); any other vasopressor",
        "S11 T3, S13",
        "hypotension",
    ),
    RuleInfo(
        "CV-HR",
        "Heart rate",
        "heart rate at dosing, charted after correcting fever/BP (/min)",
        "S13, S14, S11, S12",
        "other",
    ),
    RuleInfo("CV-RHYTHM", "Cardiac rhythm", "rhythm; sustained VT event; new irregular rhythm", "S1, S5, S11", "other"),
    RuleInfo(
        "CV-ISCHEMIA",
        "Chest pain / myocardial ischaemia",
        "events chest_pain, chest_pain_ecg (ECG ischaemia / MI); troponin, CK-MB against the site's ULN",
        "S1, S5, S11",
        "other",
    ),
    RuleInfo("RS-SPO2", "Oxygen saturation", "SpO2 (%)", "S1 Table 2", "capillary_leak"),
    RuleInfo(
        "RS-O2",
        "Oxygen needed",
        "O2 flow (L/min nasal) or FiO2 (%) needed to keep SpO2 ≥ 95 %",
        "S11, S12",
        "capillary_leak",
    ),
    RuleInfo(
        "RS-EXAM",
        "Respiratory exam",
        "bedside exam: dyspnoea at rest, rales (none, up to ⅓, ½ or more), intubated",
        "S11 T3",
        "other",
    ),
    RuleInfo("RS-RR", "Respiratory rate", "respiratory rate (/min)", "S12", "other"),
    RuleInfo(
        "RN-UO",
        "Urine output",
        "urine output over the 8 h before the evaluation (mL)",
        "S11, CTCAE G3",
        "capillary_leak",
    ),
    RuleInfo("RN-CREAT", "Creatinine", "serum creatinine (mg/dL)", "S11, S13", "other"),
    RuleInfo("RN-HCO3", "Bicarbonate", "serum bicarbonate (mmol/L)", "S11, S12", "other"),
    RuleInfo("FL-WT", "Weight gain", "weight gain over the course's baseline weight (%)", "S11, S19", "capillary_leak"),
    RuleInfo(
        "NE-RASS",
        "Sedation (RASS)",
        "Richmond Agitation-Sedation Scale",
        "S9 boxed warning; RASS mapping is this product's choice",
        "lethargy",
    ),
    RuleInfo(
        "NE-CONF", "Confusion / agitation", "confusion: none, mild, moderate, severe", "S1 Table 2, S11", "lethargy"
    ),
    RuleInfo(
        "NE-CHECK",
        "Neuro check",
        "fails serial 7s or 'WORLD' backward; hallucinations; persistent crying",
        "S11",
        "other",
    ),
    RuleInfo(
        "NE-PERSIST",
        "Persisting mental-status change",
        "neuro sets ≥ 2 h apart with confusion, RASS ≠ 0 or a failed check, no normal set between",
        "S11 T3",
        "other",
    ),
    RuleInfo("GI-HEME", "Bleeding", "events heme_positive (stool, emesis, sputum), frank_bleeding", "S1, S11", "other"),
    RuleInfo("GI-DIARRHEA", "Diarrhoea", "diarrhoea per 8 h shift (mL)", "S11, S14", "other"),
    RuleInfo(
        "GI-EXAM",
        "Abdominal exam",
        "bedside exam: ileus or distension; refractory vomiting; distension affecting breathing; severe pain",
        "S11 T3",
        "other",
    ),
    RuleInfo(
        "MS-EXAM", "Musculoskeletal exam", "bedside exam: extreme tightness; extreme paraesthesias", "S11 T3", "other"
    ),
    RuleInfo("SK-DESQ", "Moist desquamation", "bedside exam: moist desquamation", "S11 T3", "other"),
    RuleInfo("HM-PLT", "Platelets", "platelets (×10³/µL)", "S11, S12", "other"),
    RuleInfo("HP-BILI", "Bilirubin", "total bilirubin (mg/dL)", "S11", "other"),
    RuleInfo("TP-TEMP", "Temperature", "temperature (°C)", "S12, CTCAE", "other"),
    RuleInfo(
        "HP-TRANS",
        "Transaminases",
        "AST or ALT (U/L) against the ULN; event liver_pain",
        "Proleukin PLR label 2023, Table 2",
        "other",
    ),
    RuleInfo(
        "HP-FAIL",
        "Hepatic failure",
        "events hepatic_failure (encephalopathy, increasing ascites), hypoglycemia",
        "label 2023 Table 2",
        "other",
    ),
    RuleInfo(
        "SK-BULLOUS",
        "Bullous dermatitis",
        "event bullous_dermatitis (or marked flare of a skin condition)",
        "label 2023 Table 2",
        "other",
    ),
    RuleInfo(
        "IN-INFECT",
        "Infection",
        "events infection (documented or strongly suspected), sepsis_unstable",
        "S11, boxed warning",
        "other",
    ),
    RuleInfo("AG-3REL", "Three or more hold criteria", "count of hold findings in this evaluation", "S13", "other"),
    # Label-only rows (HOLD-RULES.md §3, under the table) and the label's permanent-discontinuation events (§4).
    RuleInfo(
        "LB-CREAT",
        "Creatinine (label)",
        "creatinine; event volume_overload, bicarbonate (acidosis), potassium (hyperkalaemia); earlier results",
        "label 2023 PLR Table 2 (older label §1.3)",
        "other",
    ),
    RuleInfo(
        "LB-OLIG",
        "Persistent oliguria (label)",
        "urine output over 16 h (mL/h) and a rising creatinine",
        "label 2023 PLR Table 2 (older label §1.3)",
        "other",
    ),
    RuleInfo(
        "LB-SEPSIS",
        "Sepsis, clinically unstable (label)",
        "event sepsis_unstable",
        "label 2023 PLR Table 2, boxed warning",
        "other",
    ),
    RuleInfo(
        "LB-DISCONT",
        "Permanent-discontinuation event",
        "retreatment-bar events of HOLD-RULES.md §4",
        "label 2023 PLR Table 2; S5",
        "other",
    ),
)

RULE_CATALOGUE: Mapping[str, RuleInfo] = MappingProxyType({info.id: info for info in _CATALOGUE})

# The §3 table, in its order. CONSENSUS_2014 enables all of these plus LB-DISCONT (see below).
CONSENSUS_TABLE_RULES = (
    "CV-SBP",
    "CV-PRESSOR",
    "CV-HR",
    "CV-RHYTHM",
    "CV-ISCHEMIA",
    "RS-SPO2",
    "RS-O2",
    "RS-EXAM",
    "RS-RR",
    "RN-UO",
    "RN-CREAT",
    "RN-HCO3",
    "FL-WT",
    "NE-RASS",
    "NE-CONF",
    "NE-CHECK",
    "NE-PERSIST",
    "GI-HEME",
    "GI-DIARRHEA",
    "GI-EXAM",
    "MS-EXAM",
    "SK-DESQ",
    "HM-PLT",
    "HP-BILI",
    "TP-TEMP",
    "HP-TRANS",
    "HP-FAIL",
    "SK-BULLOUS",
    "IN-INFECT",
    "AG-3REL",
)

# Every number the rules use. Each rule set takes the keys of the rules it enables (prefix "<rule id>.") plus the
# shared "freshness." and "CTCAE." keys.
_THRESHOLDS: dict[str, Number] = {
    "CV-SBP.hold_below": 90,  # mmHg
    "CV-PRESSOR.hold_above": D("0.5"),  # µg/kg/min phenylephrine at dosing
    "CV-PRESSOR.stop_above": D("0.8"),
    "CV-PRESSOR.interval_hold_from": D("1.0"),  # the highest phenylephrine since the previous slot: 1.0–1.5 hold
    "CV-PRESSOR.interval_stop_above": D("1.5"),
    "CV-PRESSOR.dopamine_hold_at_or_below": 5,  # used only with the site option low_dose_dopamine_holds
    "CV-ISCHEMIA.troponin_uln_ng_l": 14,  # site ULN of its assay
    "CV-ISCHEMIA.ck_mb_uln_ng_ml": 5,
    "CV-HR.hold_above": 120,  # /min (site option: 100)
    "CV-HR.stop_above": 130,
    "CV-HR.notify_above": 140,
    "RS-SPO2.hold_at_or_below": 90,  # %: the label resumes only above 90 %
    "RS-O2.target_spo2_from": 95,  # % kept on the charted O2; below it the patient needs more than is charted
    "RS-O2.notify_above_lpm": 0,  # L/min: on any O2
    "RS-O2.hold_from_lpm": 3,  # 3–4 L/min nasal → hold (4 inclusive: stop is "> 4")
    "RS-O2.stop_above_lpm": 4,
    "RS-O2.stop_from_fio2_pct": 40,  # "≥ 40 % mask"
    "RS-O2.notify_above_fio2_pct": 21,  # FiO2 above room air = on O2
    "RS-RR.notify_above": 30,  # /min
    "RN-UO.window_hours": 8,  # the table's thresholds are per 8 h (CTCAE G3: < 80 mL in 8 h)
    "RN-UO.hold_at_or_below_ml": 160,  # "80–160 mL" read inclusively: 160 mL holds
    "RN-UO.stop_below_ml": 80,
    "RN-CREAT.hold_from": D("2.5"),  # mg/dL; 2.5–2.9 hold, and 2.9 < c < 3.0 holds too
    "RN-CREAT.stop_from": D("3.0"),
    "RN-HCO3.stop_at_or_below": 18,  # mmol/L
    "RN-HCO3.notify_below": 20,
    "FL-WT.hold_above_pct": 15,  # % over the course's baseline weight
    "FL-WT.notify_from_grade": 1,  # CTCAE weight-gain grade that raises a notify finding
    "NE-RASS.hold_at_or_below": -2,
    "NE-RASS.notify_at_or_below": -1,
    "NE-RASS.hold_at_or_above": 2,  # agitation: the label withholds for agitation
    "NE-RASS.notify_at_or_above": 1,
    "NE-PERSIST.min_hours": 2,
    "GI-DIARRHEA.shift_hours": 8,
    "GI-DIARRHEA.hold_from_ml": 1000,  # per shift
    "GI-DIARRHEA.stop_consecutive_shifts": 2,
    "HM-PLT.hold_at_or_below": 50,  # ×10³/µL; "30–50" read inclusively: 50 holds
    "HM-PLT.stop_below": 30,
    "HM-PLT.notify_below": 20,
    "HP-BILI.hold_above": 7,  # mg/dL
    "TP-TEMP.notify_above": D("40.0"),  # °C
    "HP-TRANS.uln_u_l": 40,  # site setting
    "HP-TRANS.stop_above_uln_x": 5,  # > 5 × ULN (CTCAE grade 3)
    "AG-3REL.min_holds": 3,
    "LB-CREAT.hold_above": D("4.5"),  # mg/dL
    "LB-CREAT.hold_from_with_condition": 4,  # ≥ 4 with volume overload, acidosis or hyperkalaemia
    "LB-CREAT.acidosis_bicarbonate_below": 20,  # mmol/L (S12 notify threshold "CO2 < 20")
    "LB-CREAT.hyperkalaemia_potassium_above": D("5.5"),  # mmol/L (S12 "K > 5.5")
    "LB-CREAT.resume_below": D("1.5"),  # "hold until < 1.5"
    "LB-OLIG.below_ml_per_h": 10,
    "LB-OLIG.hours": 16,
    "freshness.vitals_minutes": 60,
    "freshness.neuro_minutes": 60,
    "freshness.exam_minutes": 120,
    "freshness.weight_hours": 24,
    "freshness.urine_hours": 8,
    # How long before the evaluation the urine record may end. The urine is measured with the pre-dose assessment,
    # which may be charted up to an hour before the dose (the same 60 min as vitals); 0 would make every dose
    # `incomplete` between the assessment and the infusion. A site that wants the 8 h to run right up to the
    # evaluation sets 0.
    "freshness.urine_end_tolerance_minutes": 60,
    "freshness.labs_hours": 24,
    "CTCAE.creatinine_uln_mg_dl": D("1.2"),
    "CTCAE.platelets_lln_k_ul": 150,
}

# Pairs (a, b) that must satisfy a <= b in any rule set, so an override cannot invert a band.
_ORDERED = (
    ("CV-PRESSOR.hold_above", "CV-PRESSOR.stop_above"),
    ("CV-PRESSOR.interval_hold_from", "CV-PRESSOR.interval_stop_above"),
    ("CV-HR.hold_above", "CV-HR.stop_above"),
    ("RS-O2.notify_above_lpm", "RS-O2.hold_from_lpm"),
    ("RS-O2.hold_from_lpm", "RS-O2.stop_above_lpm"),
    ("RN-UO.stop_below_ml", "RN-UO.hold_at_or_below_ml"),
    ("RN-CREAT.hold_from", "RN-CREAT.stop_from"),
    ("RN-HCO3.stop_at_or_below", "RN-HCO3.notify_below"),
    ("NE-RASS.hold_at_or_below", "NE-RASS.notify_at_or_below"),
    ("NE-RASS.notify_at_or_above", "NE-RASS.hold_at_or_above"),
    ("HM-PLT.stop_below", "HM-PLT.hold_at_or_below"),
    ("LB-CREAT.hold_from_with_condition", "LB-CREAT.hold_above"),
    ("LB-CREAT.resume_below", "LB-CREAT.hold_from_with_condition"),
)

# Durations, counts and grades are whole numbers (a window of 7.5 h is not supported).
_WHOLE_NUMBER_KEYS = ("_hours", "_minutes", "_shifts", ".min_holds", ".hours", "_grade")

# §4 retreatment-bar events that no other rule already reads (sustained_vt → CV-RHYTHM, chest_pain_ecg → CV-ISCHEMIA).
_DISCONTINUATION_EVENTS = (
    "uncontrolled_arrhythmia",
    "cardiac_tamponade",
    "intubation_over_72h",
    "dialysis_over_72h",
    "coma_or_psychosis_over_48h",
    "seizures",
    "bowel_ischemia_perforation",
    "gi_bleed_surgery",
)

_COMMON_OPTIONS: dict[str, Any] = {
    # Which freshness groups must be present and recent for `give` (missing names: engine.MISSING_NAMES).
    "freshness.required": ("vitals", "neuro", "exam", "weight", "urine_8h", "labs"),
    # INV-EXPLICIT: rhythm, O2 and pressors in every vitals set; RASS, confusion, the neuro check and
    # hallucinations in every neuro set; the whole bedside exam. These are invariants, not options a site turns off:
    # RuleSet refuses a definition that leaves any of them out.
    "freshness.vitals_fields": _VITALS_REQUIRED,
    "freshness.vitals_one_of": ("o2_lpm", "fio2_pct"),
    "freshness.neuro_fields": _NEURO_REQUIRED,
    "freshness.exam_fields": EXAM_FIELDS,
    "freshness.labs_fields": ("creatinine_mg_dl", "platelets_k_ul", "bilirubin_mg_dl", "bicarbonate_mmol_l"),
    "CV-RHYTHM.hold_rhythms": ("brady_treated",),
    "CV-RHYTHM.stop_rhythms": ("af", "svt", "pvc_frequent", "bigeminy", "nsvt"),
    "CV-RHYTHM.discontinue_rhythms": ("vt_sustained",),
    "CV-RHYTHM.irregular_rhythms": ("af", "svt", "pvc_frequent", "bigeminy", "nsvt", "vt_sustained", "other"),
    "CV-ISCHEMIA.levels": {"chest_pain": "stop", "chest_pain_ecg": "discontinue"},
    "CV-ISCHEMIA.markers": True,
    "CV-PRESSOR.low_dose_dopamine_holds": False,  # site option: dopamine ≤ 5 µg/kg/min → hold instead of stop
    "NE-CONF.levels": {"mild": "notify", "moderate": "hold", "severe": "stop"},
    "NE-CONF.vivid_dreams_level": "hold",
    "GI-HEME.levels": {"heme_positive": "hold", "frank_bleeding": "stop"},
    "LB-DISCONT.events": _DISCONTINUATION_EVENTS,
    "SCH-3HELD.recommend_stop": False,  # read by scheduling: recommend stop when a cycle's 3rd slot is held
}

LEVELS = ("notify", "hold", "stop", "discontinue")


def json_ready(value: Any) -> Any:
    """JSON-ready copy: Decimal → exact string, tuple → list, mapping → dict."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [json_ready(v) for v in value]
    if isinstance(value, Mapping):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def _freeze(value: Any) -> Any:
    """Immutable copy of an option value: list → tuple, dict → read-only mapping."""
    if isinstance(value, tuple | list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


def to_number(value: Any, *, key: str = "value") -> Number:
    """A threshold as int or Decimal. Floats (from JSON) go through their shortest repr: 0.6 → Decimal('0.6')."""
    if isinstance(value, bool):
        raise ValueError(f"{key}: a number is required, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, Decimal | str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{key}: {value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{key}: {value!r} is not a finite number")
        return int(number) if number == number.to_integral_value() and "." not in str(value) else number
    raise ValueError(f"{key}: a number is required, not {value!r}")


@dataclass(frozen=True)
class RuleSet:
    """A named, versioned set of enabled rules and the thresholds and options they read."""

    name: str
    version: int
    rules: tuple[str, ...]
    thresholds: Mapping[str, Number] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    spec: int = 2  # the HOLD-RULES.md version its rules follow (SPEC_VERSION for the built-in sets)

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version must be a positive integer, not {self.version!r}")
        unknown = [rule for rule in self.rules if rule not in RULE_CATALOGUE]
        if unknown:
            raise ValueError(f"unknown rule ids: {', '.join(unknown)}")
        thresholds = {key: to_number(value, key=key) for key, value in self.thresholds.items()}
        for key, value in thresholds.items():
            if key.endswith(_WHOLE_NUMBER_KEYS) and not isinstance(value, int):
                raise ValueError(f"{key} must be a whole number, not {value}")
        for low, high in _ORDERED:
            if low in thresholds and high in thresholds and thresholds[low] > thresholds[high]:
                raise ValueError(f"{low} ({thresholds[low]}) must not exceed {high} ({thresholds[high]})")
        if self.spec >= 2:
            _check_invariants(self.options)
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "thresholds", MappingProxyType(thresholds))
        object.__setattr__(self, "options", _freeze(dict(self.options)))

    def __hash__(self) -> int:
        # The mappings are not hashable; name, version and rules identify a rule set well enough for a cache key.
        return hash((self.name, self.version, self.rules))

    def with_overrides(self, overrides: Mapping[str, Any], *, version: int) -> RuleSet:
        """A new version with some thresholds or options replaced. An unknown key or a bad value → ValueError."""
        thresholds = dict(self.thresholds)
        options = dict(self.options)
        for key, value in overrides.items():
            if key in thresholds:
                thresholds[key] = to_number(value, key=key)
            elif key in options:
                options[key] = _checked_option(key, options[key], value)
            else:
                raise ValueError(f"unknown threshold or option for rule set {self.name!r}: {key!r}")
        return RuleSet(self.name, version, self.rules, thresholds, options, self.spec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings (exact), tuples as lists."""
        return {
            "name": self.name,
            "version": self.version,
            "rules": list(self.rules),
            "thresholds": json_ready(self.thresholds),
            "options": json_ready(self.options),
            "spec": self.spec,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Inverse of :meth:`to_dict` (also validates, so a corrupt stored definition fails loudly)."""
        return cls(
            name=str(data["name"]),
            version=data["version"],
            rules=tuple(data["rules"]),
            thresholds=dict(data.get("thresholds", {})),
            options=dict(data.get("options", {})),
            spec=int(data.get("spec", 1)),
        )


def _check_invariants(options: Mapping[str, Any]) -> None:
    """HOLD-RULES §3a: a site may change every number, never switch an invariant off (INV-EXPLICIT)."""
    if "freshness.required" not in options:
        return  # a partial definition (tests of one rule): the engine reads no freshness
    required = set(options["freshness.required"])
    for group, fields in (("vitals", _VITALS_REQUIRED), ("neuro", _NEURO_REQUIRED), ("exam", EXAM_FIELDS)):
        if group not in required:
            raise ValueError(f"freshness.required must include {group!r} (HOLD-RULES §3a INV-EXPLICIT)")
        left_out = set(fields) - set(options.get(f"freshness.{group}_fields", ()))
        if left_out:
            raise ValueError(f"freshness.{group}_fields must include {', '.join(sorted(left_out))} (INV-EXPLICIT)")
    if set(options.get("freshness.vitals_one_of", ())) != {"o2_lpm", "fio2_pct"}:
        raise ValueError("freshness.vitals_one_of must be o2_lpm, fio2_pct (INV-EXPLICIT)")


def _checked_option(key: str, current: Any, value: Any) -> Any:
    """An option override must keep the option's shape (a flag stays a flag, a list stays a list)."""
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, tuple):
        ok = isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
    elif isinstance(current, Mapping):
        ok = isinstance(value, Mapping) and all(v is None or v in LEVELS for v in value.values())
    else:
        ok = type(value) is type(current)
    if not ok:
        raise ValueError(f"{key}: {value!r} does not have the shape of {json_ready(current)!r}")
    return value


def _thresholds_for(rules: tuple[str, ...]) -> dict[str, Number]:
    prefixes = tuple(f"{rule}." for rule in rules) + ("freshness.", "CTCAE.")
    return {key: value for key, value in _THRESHOLDS.items() if key.startswith(prefixes)}


_CONSENSUS_RULES = CONSENSUS_TABLE_RULES[:-1] + ("LB-DISCONT", "AG-3REL")

# The HOLD-RULES.md version the built-in sets follow; their first stored version carries this number, so a database
# whose courses started under version 1 keeps those rows and a new course gets the version-2 definition.
SPEC_VERSION = 2

CONSENSUS_2014 = RuleSet(
    name="consensus-2014",
    version=SPEC_VERSION,
    # The whole §3 table. LB-DISCONT is added so a recorded retreatment-bar event (intubation > 72 h, dialysis,
    # seizures, ...) stops dosing under the default set too; the label requires permanent discontinuation.
    rules=_CONSENSUS_RULES,
    thresholds=_thresholds_for(_CONSENSUS_RULES),
    options=_COMMON_OPTIONS,
)

_LABEL_RULES = (
    "CV-SBP",
    "CV-RHYTHM",
    "CV-ISCHEMIA",
    "RS-SPO2",
    "NE-RASS",
    "NE-CONF",
    "GI-HEME",
    "HP-TRANS",
    "HP-FAIL",
    "SK-BULLOUS",
    "LB-CREAT",
    "LB-OLIG",
    "LB-SEPSIS",
    "LB-DISCONT",
)

LABEL_ONLY = RuleSet(
    name="label-only",
    version=SPEC_VERSION,
    rules=_LABEL_RULES,
    thresholds=_thresholds_for(_LABEL_RULES),
    options={
        **_COMMON_OPTIONS,
        # Only what a label-only rule reads is required: no weight rule, and creatinine is the only lab it uses
        # on every evaluation (bicarbonate and potassium only matter when creatinine is already ≥ 4).
        "freshness.required": ("vitals", "neuro", "exam", "urine_8h", "labs"),
        "freshness.labs_fields": ("creatinine_mg_dl",),
        # Label: AF, SVT, bradycardia needing treatment → withhold; sustained VT → permanently discontinue.
        "CV-RHYTHM.hold_rhythms": ("af", "svt", "brady_treated"),
        "CV-RHYTHM.stop_rhythms": (),
        # Label: ECG changes of ischaemia / MI, or angina / chest pain → permanently discontinue; no marker row.
        "CV-ISCHEMIA.levels": {"chest_pain": "discontinue", "chest_pain_ecg": "discontinue"},
        "CV-ISCHEMIA.markers": False,
        "NE-CONF.vivid_dreams_level": None,
        # Label: "mental-status change, including moderate confusion" → withhold; severe is at least that.
        "NE-CONF.levels": {"mild": "notify", "moderate": "hold", "severe": "hold"},
        # Label: FIT/FOBT positive → withhold; only GI bleeding needing surgery discontinues (LB-DISCONT), so frank
        # blood, which is at least heme-positive, holds.
        "GI-HEME.levels": {"heme_positive": "hold", "frank_bleeding": "hold"},
    },
)

RULE_SETS: Mapping[str, RuleSet] = MappingProxyType({CONSENSUS_2014.name: CONSENSUS_2014, LABEL_ONLY.name: LABEL_ONLY})
