"""The physiologically possible range of every number a person types (API.md: "physiologically impossible values
are 400"): one table that the services, serializers and forms all read. Outside a range is a typing error, not a
patient; inside it, monitoring/plausibility.py may still ask for a confirmation (INV-PLAUSIBLE).

Pure (standard library only), so the domain packages read it too (scheduling.domain.dosing: SCH-DOSE's 20-350 kg).
"""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, init=False)
class Bound:
    """The physiologically possible range of one input (inclusive) and the decimal places it may carry."""

    low: Decimal
    high: Decimal
    places: int = 0
    unit: str = ""

    def __init__(self, low: Decimal | int | str, high: Decimal | int | str, places: int = 0, unit: str = "") -> None:
        # Written as the table reads (40, "0.5"), kept as Decimals so every reader compares numbers with numbers.
        object.__setattr__(self, "low", Decimal(str(low)))
        object.__setattr__(self, "high", Decimal(str(high)))
        object.__setattr__(self, "places", places)
        object.__setattr__(self, "unit", unit)


VITALS_BOUNDS = {
    "sbp": Bound(40, 300, unit="mmHg"),
    "dbp": Bound(20, 200, unit="mmHg"),
    "heart_rate": Bound(20, 250, unit="/min"),
    "resp_rate": Bound(4, 80, unit="/min"),
    "spo2": Bound(50, 100, unit="%"),
    "temp_c": Bound(30, 45, 1, "°C"),
    "o2_lpm": Bound(0, 15, 1, "L/min"),
    "fio2_pct": Bound(21, 100, unit="%"),
    "phenylephrine_mcg_kg_min": Bound(0, 10, 2, "µg/kg/min"),
    "other_pressor_mcg_kg_min": Bound(0, 50, 2, "µg/kg/min"),
}
NEURO_BOUNDS = {"rass": Bound(-5, 4)}
WEIGHT_KG = Bound(20, 350, 1, "kg")  # a measured, dosing or baseline weight (SCH-DOSE)
WEIGHT_BOUNDS = {"weight_kg": WEIGHT_KG}
FLUID_BOUNDS = {
    "urine_ml": Bound(0, 10_000, unit="mL"),
    "intake_ml": Bound(0, 20_000, unit="mL"),
    "diarrhea_ml": Bound(0, 10_000, unit="mL"),
}
# Wide enough for any real result (including critical values), narrow enough to catch a unit or decimal-point slip.
LAB_BOUNDS = {
    "creatinine_mg_dl": Bound("0.1", 20, 2, "mg/dL"),
    "platelets_k_ul": Bound(0, 2000, 1, "×10³/µL"),
    "bilirubin_mg_dl": Bound(0, 50, 2, "mg/dL"),
    "bicarbonate_mmol_l": Bound(5, 50, 1, "mmol/L"),
    "ast_u_l": Bound(0, 20_000, unit="U/L"),
    "alt_u_l": Bound(0, 20_000, unit="U/L"),
    "albumin_g_dl": Bound("0.5", 8, 1, "g/dL"),
    "potassium_mmol_l": Bound("1.5", 10, 2, "mmol/L"),
    "magnesium_mg_dl": Bound("0.3", 10, 2, "mg/dL"),
    "phosphate_mg_dl": Bound("0.3", 20, 2, "mg/dL"),
    "sodium_mmol_l": Bound(90, 200, 1, "mmol/L"),
    "hemoglobin_g_dl": Bound(1, 25, 1, "g/dL"),
    "wbc_k_ul": Bound(0, 500, 2, "×10³/µL"),
    "troponin_ng_l": Bound(0, 100_000, 1, "ng/L"),
    "ck_mb_ng_ml": Bound(0, 5_000, 1, "ng/mL"),
}
