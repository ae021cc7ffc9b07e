"""The rule engine's input: the patient's latest observations, as the database layer finds them.

How the selector should fill it (the engine relies on this):

* Each ``Reading`` field holds the **latest** value of that input recorded at or before the evaluation time, whatever
  its age; ``None`` when there is none. The engine ignores a reading dated after ``now`` (treated as not yet present),
  so pick "latest at or before now" rather than "latest".
* ``o2_lpm``, ``fio2_pct``, ``phenylephrine_mcg_kg_min`` and ``rhythm`` come from the **latest vitals set**; when that
  set leaves them out (room air, no pressor) pass ``None``, so an old value is not carried forward.
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

RHYTHMS = ("sinus", "af", "svt", "brady_treated", "vt_sustained", "other")
CONFUSION_LEVELS = ("none", "mild", "moderate", "severe")

# Event kinds (API.md "Observations"), plus volume_overload (LB-CREAT) and new_irregular_rhythm (CV-RHYTHM notify).
CLINICAL_EVENTS = (
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
    phenylephrine_mcg_kg_min: Reading | None = None  # any value > 0 = pressor running
    # neuro
    rass: Reading | None = None  # -5..4
    confusion: Reading | None = None  # value in CONFUSION_LEVELS
    neuro_check_failed: Reading | None = None  # bool: cannot do serial 7s or spell "WORLD" backward
    hallucinations: Reading | None = None  # bool
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
    # history and context
    urine_periods: tuple[FluidPeriod, ...] = ()
    events: tuple[Event, ...] = ()
    previous_creatinine: Reading | None = None
    creatinine_history: tuple[Reading, ...] = ()
    baseline_creatinine_mg_dl: Decimal | int | None = None  # for the CTCAE "× baseline" creatinine grade
    first_slot_of_cycle: bool = False
    previous_rhythm: Reading | None = None

    def __post_init__(self) -> None:
        # A value outside the API's choices means the selector mapped something wrong: fail loudly, never guess.
        for name, allowed in (("rhythm", RHYTHMS), ("previous_rhythm", RHYTHMS), ("confusion", CONFUSION_LEVELS)):
            reading = getattr(self, name)
            if reading is not None and reading.value is not None and reading.value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {reading.value!r}")
        object.__setattr__(self, "urine_periods", tuple(self.urine_periods))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "creatinine_history", tuple(self.creatinine_history))


READING_FIELDS = tuple(f.name for f in fields(PatientSnapshot) if f.type == "Reading | None")
