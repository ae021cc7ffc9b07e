"""A complete, normal pre-dose assessment, stated explicitly the way the pre-dose rules require it.

Rhythm, O2, both pressors and every yes/no neuro answer are charted (never left out to mean "none"), and a normal
bedside exam goes with each assessment.
"""

from decimal import Decimal

NORMAL_VITALS = {
    "sbp": 120,
    "dbp": 70,
    "heart_rate": 88,
    "resp_rate": 16,
    "spo2": 97,
    "temp_c": Decimal("37.2"),
    "rhythm": "sinus",
    "o2_lpm": Decimal("0.0"),
    "phenylephrine_mcg_kg_min": Decimal("0.00"),
    "other_pressor": "none",
}
# The explicit answers alone, for builders that choose their own numbers.
EXPLICIT_VITALS = {k: NORMAL_VITALS[k] for k in ("rhythm", "o2_lpm", "phenylephrine_mcg_kg_min", "other_pressor")}
EXPLICIT_NEURO = {
    "neuro_check_failed": False,
    "hallucinations": False,
    "vivid_dreams_or_anxiety": False,
    "persistent_crying": False,
}
NORMAL_NEURO = {"rass": 0, "confusion": "none", **EXPLICIT_NEURO}
NORMAL_EXAM = {
    "resting_dyspnea": False,
    "rales": "none",
    "intubated": False,
    "ileus_distension": False,
    "vomiting_refractory": False,
    "distension_affects_breathing": False,
    "abdominal_pain_severe": False,
    "extreme_tightness": False,
    "extreme_paresthesias": False,
    "moist_desquamation": False,
}


def normal_exam(patient, by, *, at, now=None, **changes):
    from monitoring.services import exam_record

    return exam_record(patient=patient, recorded_at=at, by=by, now=now or at, **{**NORMAL_EXAM, **changes})
