"""Dose and preparation arithmetic (HOLD-RULES.md §1: SCH-DOSE, SCH-PREP). Exact: int and Decimal, never float."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from monitoring.domain.bounds import WEIGHT_KG
from scheduling.domain.aware import as_utc

__all__ = ["DILUENT_POLICIES", "Preparation", "dose_iu", "preparation", "reconstitution_expired"]

WEIGHT_MIN_KG, WEIGHT_MAX_KG = Decimal(WEIGHT_KG.low), Decimal(WEIGHT_KG.high)  # the one table of possible values
DILUENT_POLICIES = ("label-current", "label-fixed-50")


def _int(name: str, value: int, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _decimal(name: str, value: Decimal | str | int) -> Decimal:
    # A float has already lost exactness (42.3 is 42.2999…); refuse it rather than guess what was meant.
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"{name} must be a Decimal, str or int, got {type(value).__name__}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def dose_iu(dosing_weight_kg: Decimal | str | int, *, iu_per_kg: int = 600_000) -> int:
    """Dose in IU = 600,000 IU/kg × dosing weight (SCH-DOSE); 42.3 kg → 25,380,000, 80 kg → 48,000,000.

    Weight must be 20–350 kg inclusive. A weight given to more decimals than the product resolves is rounded
    half-up to a whole IU.
    """
    weight = _decimal("dosing_weight_kg", dosing_weight_kg)
    _int("iu_per_kg", iu_per_kg)
    if not WEIGHT_MIN_KG <= weight <= WEIGHT_MAX_KG:
        raise ValueError(f"dosing weight must be {WEIGHT_MIN_KG}–{WEIGHT_MAX_KG} kg, got {weight}")
    return int((weight * iu_per_kg).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Preparation:
    """What pharmacy/nursing prepares for one dose (SCH-PREP)."""

    dose_iu: int
    vials: int
    reconstitution_ml: Decimal
    concentration_iu_per_ml: int
    volume_ml: Decimal
    diluent: str
    diluent_ml: int
    infusion_minutes: int
    rate_ml_h: Decimal
    in_line_filter: bool
    max_hours_after_reconstitution: int


def _diluent_ml(dose: int, policy: str) -> int:
    if policy == "label-fixed-50":  # the older label; agrees with the current one for 42–100 kg
        return 50
    if policy != "label-current":
        raise ValueError(f"diluent_policy must be one of {DILUENT_POLICIES}, got {policy!r}")
    if dose <= 25_400_000:
        return 25
    if dose <= 60_000_000:
        return 50
    return 100


def preparation(
    dose_iu: int,
    *,
    vial_iu: int = 22_000_000,
    reconstitution_ml: Decimal = Decimal("1.2"),
    concentration_iu_per_ml: int = 18_000_000,
    infusion_minutes: int = 15,
    diluent_policy: str = "label-current",
    max_hours: int = 48,
) -> Preparation:
    """Preparation of one dose (SCH-PREP). 48,000,000 IU → 2.67 mL from 3 vials into 50 mL D5W over 15 min.

    - volume_ml = dose / concentration, 2 decimals, half-up;
    - vials = ceil(dose / vial_iu) (exactly 22 MIU is 1 vial);
    - D5W: ≤ 25.4 MIU → 25 mL, ≤ 60 MIU → 50 mL, > 60 MIU → 100 mL ("label-fixed-50": always 50 mL);
    - rate_ml_h = (diluent_ml + volume_ml) / infusion time, mL/h to 1 decimal, half-up. The drawn drug volume is
      included because it is added to the bag and infused with it: the pump runs the whole bag in 15 min.
    - no in-line filter; give within max_hours of reconstitution.
    """
    _int("dose_iu", dose_iu)
    _int("vial_iu", vial_iu)
    _int("concentration_iu_per_ml", concentration_iu_per_ml)
    _int("infusion_minutes", infusion_minutes)
    _int("max_hours", max_hours)
    reconstitution = _decimal("reconstitution_ml", reconstitution_ml)
    volume = (Decimal(dose_iu) / Decimal(concentration_iu_per_ml)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    diluent_ml = _diluent_ml(dose_iu, diluent_policy)
    rate = ((diluent_ml + volume) * 60 / infusion_minutes).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return Preparation(
        dose_iu=dose_iu,
        vials=-(-dose_iu // vial_iu),  # ceiling division in integers
        reconstitution_ml=reconstitution,
        concentration_iu_per_ml=concentration_iu_per_ml,
        volume_ml=volume,
        diluent="D5W",
        diluent_ml=diluent_ml,
        infusion_minutes=infusion_minutes,
        rate_ml_h=rate,
        in_line_filter=False,
        max_hours_after_reconstitution=max_hours,
    )


def reconstitution_expired(reconstituted_at: datetime, *, at: datetime, max_hours: int = 48) -> bool:
    """True when more than max_hours of elapsed time have passed since reconstitution (SCH-PREP: block after 48 h).

    Exactly 48 h is still allowed. A reconstitution time later than `at` is not "expired"; validating recorded
    times is the caller's job.
    """
    _int("max_hours", max_hours)
    age = as_utc(at, "at") - as_utc(reconstituted_at, "reconstituted_at")
    return age > timedelta(hours=max_hours)
