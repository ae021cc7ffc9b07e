"""Values that are possible but unlikely enough to be a typing slip (HOLD-RULES §3a INV-PLAUSIBLE).

The services, serializers and forms all ask here. The bounds are settings (``IL2WARD_PLAUSIBLE_<NAME>``, defaults in
il2ward/settings.py); a value beyond a bound is stored only when the nurse confirms it with a reason. What is not
possible at all (a 400 whatever the confirmation) is monitoring/domain/bounds.py's table.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from monitoring.models import WeightMeasurement


def bound(name: str):
    return getattr(settings, f"IL2WARD_PLAUSIBLE_{name}")


def latest_weight_kg(patient, *, at: datetime, within: timedelta) -> Decimal | None:
    """The latest standing weight measured in the `within` before `at` (what a new weight is compared with)."""
    return (
        WeightMeasurement.objects.filter(
            patient=patient, entered_in_error_at__isnull=True, recorded_at__lte=at, recorded_at__gte=at - within
        )
        .order_by("-recorded_at", "-pk")
        .values_list("weight_kg", flat=True)
        .first()
    )


def _weight_beyond(weight_kg: Decimal, reference_kg: Decimal, reference: str, hint: str = "") -> str | None:
    fraction = Decimal(bound("WEIGHT_CHANGE_FRACTION"))
    if abs(weight_kg - reference_kg) <= fraction * reference_kg:
        return None
    return (
        f"{weight_kg} kg is more than {fraction * 100:.0f} % from {reference} {reference_kg} kg{hint}; "
        "check it, or confirm it with a reason."
    )


def weight_change_message(weight_kg: Decimal, previous_kg: Decimal) -> str | None:
    """Why `weight_kg` is implausible next to the previous weight, or None when it is not."""
    return _weight_beyond(weight_kg, previous_kg, "the previous weight")


def urine_rate_message(urine_ml: int, period: timedelta) -> str | None:
    limit = bound("URINE_ML_PER_HOUR")
    hours = Decimal(period.total_seconds()) / 3600
    if hours <= 0 or urine_ml <= limit * hours:
        return None
    return f"{urine_ml} mL in {hours:.1f} h is faster than {limit} mL/h; check it, or confirm it with a reason."


def period_length_message(period: timedelta) -> str | None:
    """A fluid balance period shorter than 30 min or longer than 24 h is more likely a wrong time than a record."""
    shortest, longest = bound("FLUID_PERIOD_MIN"), bound("FLUID_PERIOD_MAX")
    if period < shortest:
        minutes = int(shortest.total_seconds() // 60)
        return f"A fluid balance period shorter than {minutes} minutes; check the times, or confirm them with a reason."
    if period > longest:
        hours = int(longest.total_seconds() // 3600)
        return f"A fluid balance period longer than {hours} hours; check the times, or confirm them with a reason."
    return None


def course_weight_message(weight_kg: Decimal, measured_kg: Decimal) -> str | None:
    """A dosing or baseline weight far from the latest measured weight (176 typed for an 80 kg patient: lb for kg)."""
    return _weight_beyond(weight_kg, measured_kg, "the latest measured weight", " (pounds for kilograms?)")
