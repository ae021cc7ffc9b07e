"""CTCAE v5.0 grades for the monitored toxicities (aldesleukin-reference.md §3, source S19).

Each function returns the grade (0 = below grade 1) or ``None`` when the value is unknown. The cut points are the
CTCAE definitions themselves; a lab's reference limits (ULN, LLN) are parameters, passed by the engine from the rule
set ("CTCAE.creatinine_uln_mg_dl", "CTCAE.platelets_lln_k_ul").
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Protocol

Num = int | Decimal | Fraction


class Comparable(Protocol):
    """Any number that compares with ints and Decimals: the engine's exact ratios as well as Num."""

    def __ge__(self, other: Any, /) -> bool: ...


# Weight gain (Investigations): G1 5–<10 %, G2 10–<20 %, G3 ≥ 20 % from baseline.
_WEIGHT_GAIN_PCT = ((20, 3), (10, 2), (5, 1))
# Urine output decreased: G3 adult oliguria < 80 mL in 8 h; G4 anuria < 240 mL in 24 h.
OLIGURIA_HOURS, _OLIGURIA_ML = 8, 80
ANURIA_HOURS, _ANURIA_ML = 24, 240
# Creatinine increased: G1 > ULN–1.5 × ULN; G2 > 1.5–3.0 × baseline or ULN; G3 > 3.0 × baseline, > 3.0–6.0 × ULN;
# G4 > 6.0 × ULN.
_CREATININE_X_ULN = ((6, 4), (3, 3), (Decimal("1.5"), 2), (1, 1))
_CREATININE_X_BASELINE = ((3, 3), (Decimal("1.5"), 2))
# Platelet count decreased (×10³/µL): G1 < LLN–75, G2 < 75–50, G3 < 50–25, G4 < 25.
_PLATELETS = ((25, 4), (50, 3), (75, 2))

DEFAULT_CREATININE_ULN_MG_DL = Decimal("1.2")
DEFAULT_PLATELETS_LLN_K_UL = 150

# Comparisons are exact: ints, Decimals and Fractions compare exactly with each other in Python, and a factor times
# a limit is computed exactly (as a Fraction when the limit is one; Decimal × Fraction is not defined).


def _times(factor: int | Decimal, limit: Num) -> Num:
    return Fraction(factor) * limit if isinstance(limit, Fraction) else factor * limit


def weight_gain_grade(gain_pct: Num | Comparable | None) -> int | None:
    """Grade of a weight gain given in % over baseline (a loss is grade 0)."""
    if gain_pct is None:
        return None
    for low, grade in _WEIGHT_GAIN_PCT:
        if gain_pct >= low:
            return grade
    return 0


def urine_output_grade(ml_8h: Num | None, ml_24h: Num | None = None) -> int | None:
    """Oliguria/anuria grade from the urine of the last 8 h and, when known, the last 24 h.

    CTCAE defines only grade 3 (< 80 mL in 8 h) and grade 4 (< 240 mL in 24 h); otherwise the grade is 0.
    """
    if ml_24h is not None and ml_24h < _ANURIA_ML:
        return 4
    if ml_8h is None:
        return None
    return 3 if ml_8h < _OLIGURIA_ML else 0


def creatinine_grade(
    value: Num | None, *, uln: Num = DEFAULT_CREATININE_ULN_MG_DL, baseline: Num | None = None
) -> int | None:
    """The higher of the grade by multiples of the ULN and, when a baseline is known, by multiples of baseline."""
    if value is None:
        return None
    grade = 0
    for limit, uln_grade in _limits(_CREATININE_X_ULN, uln):
        if value > limit:
            grade = uln_grade
            break
    if baseline is not None and baseline > 0:
        for limit, baseline_grade in _limits(_CREATININE_X_BASELINE, baseline):
            if value > limit:
                return max(grade, baseline_grade)
    return grade


@lru_cache(maxsize=256)
def _limits(multiples: tuple[tuple[int | Decimal, int], ...], reference: Num) -> tuple[tuple[Num, int], ...]:
    """(factor × reference, grade) for each multiple, exactly; few distinct references (a site's ULN, a patient's
    baseline), so worked out once each."""
    return tuple((_times(factor, reference), grade) for factor, grade in multiples)


def platelet_grade(value_k_ul: Num | None, *, lln: Num = DEFAULT_PLATELETS_LLN_K_UL) -> int | None:
    """Grade of a platelet count in ×10³/µL."""
    if value_k_ul is None:
        return None
    if value_k_ul >= lln:
        return 0
    for below, grade in _PLATELETS:
        if value_k_ul < below:
            return grade
    return 1
