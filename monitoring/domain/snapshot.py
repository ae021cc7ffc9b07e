"""The rule engine's input: the patient's latest observations, as the database layer finds them.

How the selector should fill it (the engine relies on this):

* Each ``Reading`` field holds the **latest** value of that input recorded at or before the evaluation time, whatever
  its age; ``None`` when there is none. The engine ignores a reading dated after ``now`` (treated as not yet present),
  so pick "latest at or before now" rather than "latest".
* Every vitals field comes from the **latest vitals set**, every neuro field from the latest neuro set and every exam
  field from the latest bedside exam; a field that set left out is ``None`` (missing: HOLD-RULES §3a INV-EXPLICIT),
  never carried forward from an earlier set. Rhythm, O2 (``o2_lpm`` or ``fio2_pct``; 0 L/min = room air) and
  pressors (phenylephrine 0, other pressor "none" = none) must be charted in every set.
* ``heart_rate`` is the rate as charted; the nurse charts the rate at dosing after fever and BP are corrected (CV-HR).
* ``urine_periods``: the fluid periods of the **current cycle** (at least the last 24 h of them). An earlier cycle's
  periods must not be passed: at the first slot of cycle 2 they would be days old and would still be read.
* ``events``: the course's clinical events; the engine counts an event while it is active (recorded at or before
  ``now`` and not resolved by then).
* ``previous_creatinine``: the creatinine result before the latest one (LB-OLIG "rising creatinine").
* ``creatinine_history``: this course's earlier creatinine results (LB-CREAT "hold until < 1.5").
* ``previous_rhythm``: the rhythm charted in the vitals set before the latest one (CV-RHYTHM "new irregular rhythm").

All datetimes must be timezone-aware (naive → ValueError). Numbers should be ``int`` or ``Decimal``; a float is read
through its shortest repr (0.8 → Decimal("0.8")) so a threshold boundary is never crossed by binary rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

RHYTHMS = ("sinus", "af", "svt", "brady_treated", "pvc_frequent", "bigeminy", "nsvt", "vt_sustained", "other")
CONFUSION_LEVELS = ("none", "mild", "moderate", "severe")
OTHER_PRESSORS = ("none", "dopamine", "norepinephrine", "vasopressin", "epinephrine")
RALES = ("none", "lower_third", "half_or_more")
# The bedside exam of HOLD-RULES §3 (RS-EXAM, GI-EXAM, MS-EXAM, SK-DESQ): rales is a choice, the rest yes/no.
EXAM_FIELDS = (
    "resting_dyspnea",
    "rales",
    "intubated",
    "ileus_distension",
    "vomiting_refractory",
    "distension_affects_breathing",
    "abdominal_pain_severe",
    "extreme_tightness",
    "extreme_paresthesias",
    "moist_desquamation",
)
EXAM_FLAGS = tuple(name for name in EXAM_FIELDS if name != "rales")  # the yes/no findings of the exam

# Event kinds (API.md "Observations"), plus volume_overload (LB-CREAT) and new_irregular_rhythm (CV-RHYTHM notify).
CLINICAL_EVENTS = (
    "heme_positive",
    "frank_bleeding",
    "infection",
    "chest_pain",
    "chest_pain_ecg",
    "edema",
    "liver_pain",
    "hepatic_failure",
    "hypoglycemia",
    "bullous_dermatitis",
    "sepsis_unstable",
    "volume_overload",
    "new_irregular_rhythm",
)
RETREATMENT_BAR_EVENTS = (
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
EVENT_KINDS = CLINICAL_EVENTS + RETREATMENT_BAR_EVENTS

# Lab field → the name used in an evaluation's `missing` list ("labs.creatinine").
LAB_NAMES = {
    "creatinine_mg_dl": "creatinine",
    "platelets_k_ul": "platelets",
    "bilirubin_mg_dl": "bilirubin",
    "bicarbonate_mmol_l": "bicarbonate",
    "ast_u_l": "ast",
    "alt_u_l": "alt",
    "potassium_mmol_l": "potassium",
    "troponin_ng_l": "troponin",
    "ck_mb_ng_ml": "ck_mb",
}


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class Reading:
    """One observed value, when it was recorded, and the id of the row it came from (e.g. ``"vitals:12"``)."""

    value: object
    at: datetime
    source_id: str | None = None

    def __post_init__(self) -> None:
        _require_aware("Reading.at", self.at)


@dataclass(frozen=True)
class FluidPeriod:
    """An intake/output record covering ``[start, end]`` (usually one 8 h shift)."""

    start: datetime
    end: datetime
    urine_ml: int | Decimal
    diarrhea_ml: int | Decimal | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        _require_aware("FluidPeriod.start", self.start)
        _require_aware("FluidPeriod.end", self.end)


@dataclass(frozen=True)
class Event:
    """A clinical flag (``kind`` in EVENT_KINDS) recorded at ``at``; active until ``resolved_at`` (None: still on)."""

    kind: str
    at: datetime
    source_id: str | None = None
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware("Event.at", self.at)
        _require_aware("Event.resolved_at", self.resolved_at)

    def active_at(self, now: datetime) -> bool:
        return self.at <= now and (self.resolved_at is None or self.resolved_at > now)


@dataclass(frozen=True)
class NeuroSet:
    """One neuro set of the recent history (NE-PERSIST reads whether a mental-status change persists)."""

    at: datetime
    rass: int
    confusion: str
    neuro_check_failed: bool | None
    source_id: str | None = None

    def __post_init__(self) -> None:
        _require_aware("NeuroSet.at", self.at)


@dataclass(frozen=True)
class PatientSnapshot:
    """The latest value of every input the pre-dose rules read (see the module docstring for how to fill it)."""

    # vitals
    sbp: Reading | None = None
    dbp: Reading | None = None
    heart_rate: Reading | None = None
    resp_rate: Reading | None = None
    spo2: Reading | None = None
    temp_c: Reading | None = None
    o2_lpm: Reading | None = None
    fio2_pct: Reading | None = None
    rhythm: Reading | None = None  # value in RHYTHMS
    phenylephrine_mcg_kg_min: Reading | None = None  # 0 = none; None = not charted (missing)
    other_pressor: Reading | None = None  # value in OTHER_PRESSORS; "none" = none; None = not charted (missing)
    other_pressor_mcg_kg_min: Reading | None = None
    # The highest phenylephrine rate charted since the previous slot (SnapshotRequest.interval_since), at its time.
    phenylephrine_max_interval: Reading | None = None
    # neuro
    rass: Reading | None = None  # -5..4
    confusion: Reading | None = None  # value in CONFUSION_LEVELS
    neuro_check_failed: Reading | None = None  # bool: cannot do serial 7s or spell "WORLD" backward
    hallucinations: Reading | None = None  # bool
    vivid_dreams_or_anxiety: Reading | None = None  # bool
    persistent_crying: Reading | None = None  # bool
    # bedside exam (the latest exam; each field a Reading, bool except rales in RALES)
    resting_dyspnea: Reading | None = None
    rales: Reading | None = None
    intubated: Reading | None = None
    ileus_distension: Reading | None = None
    vomiting_refractory: Reading | None = None
    distension_affects_breathing: Reading | None = None
    abdominal_pain_severe: Reading | None = None
    extreme_tightness: Reading | None = None
    extreme_paresthesias: Reading | None = None
    moist_desquamation: Reading | None = None
    # weight
    weight_kg: Reading | None = None
    baseline_weight_kg: Decimal | int | None = None  # the course's baseline weight
    # labs
    creatinine_mg_dl: Reading | None = None
    platelets_k_ul: Reading | None = None
    bilirubin_mg_dl: Reading | None = None
    bicarbonate_mmol_l: Reading | None = None
    ast_u_l: Reading | None = None
    alt_u_l: Reading | None = None
    potassium_mmol_l: Reading | None = None
    troponin_ng_l: Reading | None = None
    ck_mb_ng_ml: Reading | None = None
    # history and context
    urine_periods: tuple[FluidPeriod, ...] = ()
    events: tuple[Event, ...] = ()
    previous_creatinine: Reading | None = None
    creatinine_history: tuple[Reading, ...] = ()
    baseline_creatinine_mg_dl: Decimal | int | None = None  # for the CTCAE "× baseline" creatinine grade
    first_slot_of_cycle: bool = False
    previous_rhythm: Reading | None = None
    # The neuro sets of the last 24 h, oldest first (NE-PERSIST).
    neuro_history: tuple[NeuroSet, ...] = ()
    # INV-CONFLICT: (field, reading) for every other reading of a field recorded at the same clinical time as the one
    # passed in that field, from another row (a row that left the field out does not conflict). The engine evaluates
    # each alternative and lets the most restrictive count.
    conflicts: tuple[tuple[str, Reading], ...] = ()

    def __post_init__(self) -> None:
        # A value outside the API's choices means the selector mapped something wrong: fail loudly, never guess.
        for name, allowed in (
            ("rhythm", RHYTHMS),
            ("previous_rhythm", RHYTHMS),
            ("confusion", CONFUSION_LEVELS),
            ("other_pressor", OTHER_PRESSORS),
            ("rales", RALES),
        ):
            reading = getattr(self, name)
            if reading is not None and reading.value is not None and reading.value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {reading.value!r}")
        object.__setattr__(self, "urine_periods", tuple(self.urine_periods))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "creatinine_history", tuple(self.creatinine_history))
        object.__setattr__(self, "neuro_history", tuple(self.neuro_history))
        object.__setattr__(self, "conflicts", tuple(self.conflicts))
        for name, _ in self.conflicts:
            if name not in READING_FIELDS:
                raise ValueError(f"conflicts name an unknown field {name!r}")


READING_FIELDS = tuple(f.name for f in fields(PatientSnapshot) if f.type == "Reading | None")
