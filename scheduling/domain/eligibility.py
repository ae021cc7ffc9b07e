"""HOLD-RULES §2 eligibility: the checklist an oncologist attests (its keys are the API's) and the creatinine bound
the software checks itself."""

from decimal import Decimal

ELIGIBILITY_ITEMS = (
    "cardiac_stress_test_normal",
    "pulmonary_function_normal",
    "no_active_infection",
    "no_organ_allograft",
    "no_hypersensitivity",
    "pregnancy_test_negative_or_na",
    "baseline_labs_done",
    "antihypertensives_stopped",
)
ELIGIBILITY_CREATININE_MAX = Decimal("1.5")  # HOLD-RULES §2 (label §5)
ELIGIBILITY_CREATININE_HOURS = 72

# HOLD-RULES §2, as the oncologist reads it on the attestation form (keys: ELIGIBILITY_ITEMS).
ELIGIBILITY_LABELS = {
    "cardiac_stress_test_normal": "Normal cardiac stress test (thallium), with its date",
    "pulmonary_function_normal": "Normal pulmonary function tests, with their date",
    "no_active_infection": "No active bacterial infection (treated before start; central-line prophylaxis considered)",
    "no_organ_allograft": "No organ allograft",
    "no_hypersensitivity": "No hypersensitivity to aldesleukin",
    "pregnancy_test_negative_or_na": "Pregnancy test negative, or not applicable",
    "baseline_labs_done": "Baseline labs done (serum creatinine ≤ 1.5 mg/dL within 72 h: checked by the software)",
    "antihypertensives_stopped": "Antihypertensives stopped",
}
