"""Reads of the pending double checks (scheduling.services.double_checks): the ones a nurse may answer, one check,
and a dose's open check. What the second nurse is shown is the order, never the computed dose (ISMP blind check)."""

import inspect
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from il2ward import access
from scheduling.domain import dosing
from scheduling.models import Dose, DoubleCheck

_RELATED = ("dose__course__patient__ward", "requested_by__profile", "decided_by__profile")


def _visible(user) -> QuerySet[DoubleCheck]:
    return DoubleCheck.objects.filter(dose__course__patient__in=access.visible_patients(user)).select_related(*_RELATED)


def checks_to_answer(user, *, now, ward=None) -> list[DoubleCheck]:
    """Pending, unexpired checks that she may answer (not her own), oldest first, one query: on the user's wards, or
    on `ward` only, a ward the caller has already found she may see (access.ward_for, access.visible_wards). The
    board asks at every load: its query joins only what the board shows (no access subquery, about a third of the
    planning time)."""
    if not access.is_nursing(user):
        return []
    if ward is None:
        checks = _visible(user)
    else:
        checks = DoubleCheck.objects.filter(dose__course__patient__ward=ward).select_related(
            "dose__course__patient", "requested_by__profile"
        )
    pending = checks.filter(status=DoubleCheck.Status.PENDING, expires_at__gte=now, dose__status=Dose.Status.SCHEDULED)
    return list(pending.exclude(requested_by=user).order_by("requested_at", "pk"))


def check_for(user, check_id) -> DoubleCheck:
    try:
        return _visible(user).get(pk=check_id)
    except (DoubleCheck.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such double check") from exc


def visible_check_id(user, check_id) -> int:
    """The check's id when the user may see it (one query, nothing fetched); else 404."""
    try:
        found = DoubleCheck.objects.filter(pk=check_id, dose__course__patient__in=access.visible_patients(user))
        return found.values_list("pk", flat=True).get()
    except (DoubleCheck.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such double check") from exc


def open_check(dose: Dose, *, now) -> DoubleCheck | None:
    """The dose's pending, unexpired check, if any."""
    return (
        DoubleCheck.objects.filter(dose=dose, status=DoubleCheck.Status.PENDING, expires_at__gte=now)
        .select_related("requested_by__profile")
        .first()
    )


def latest_check(dose: Dose) -> DoubleCheck | None:
    """The dose's latest check (pending, or refused: the first nurse sees why). One query."""
    return (
        DoubleCheck.objects.filter(dose=dose)
        .select_related("requested_by__profile", "decided_by__profile")
        .order_by("-requested_at", "-pk")
        .first()
    )


def state_of(check: DoubleCheck, *, now) -> str:
    """The status, with `expired` for a pending check past its dose's window."""
    if check.status == DoubleCheck.Status.PENDING and now > check.expires_at:
        return "expired"
    return check.status


@dataclass(frozen=True)
class Order:
    """What the second nurse calculates from: the order and the preparation's rules, not their result."""

    dosing_weight_kg: Decimal
    dosing_weight_source: str
    iu_per_kg: int
    vial_iu: int
    reconstitution_ml: Decimal
    concentration_iu_per_ml: int


def sees_computed_dose(user) -> bool:
    """The blind double check made coherent (ISMP independent double check): a nurse or charge nurse, any of whom
    may be a dose's second checker, is shown the order (weight, IU/kg, the preparation's rules) and never the
    computed dose of a course, anywhere (patient, course and summary pages, the downtime sheet, the API), except the
    nurse charting a dose on its dose page (scheduling.mar.views, `preparation`). Doses already given show their
    recorded amounts to everyone (the history). Oncologists, pharmacists and administrators see everything."""
    return not access.is_nursing(user)


def order_of(course) -> Order:
    return Order(
        dosing_weight_kg=course.dosing_weight_kg,
        dosing_weight_source=course.dosing_weight_source,
        iu_per_kg=settings.IL2WARD_DOSE_IU_PER_KG,
        vial_iu=_PREP_DEFAULTS["vial_iu"].default,
        reconstitution_ml=_PREP_DEFAULTS["reconstitution_ml"].default,
        concentration_iu_per_ml=_PREP_DEFAULTS["concentration_iu_per_ml"].default,
    )


def order_representation(order: Order) -> dict:
    """The order as the API carries it (a double check's `order`, a course's `order`)."""
    return {
        "dosing_weight_kg": str(order.dosing_weight_kg),
        "dosing_weight_source": order.dosing_weight_source,
        "iu_per_kg": order.iu_per_kg,
        "vial_iu": order.vial_iu,
        "reconstitution_ml": str(order.reconstitution_ml),
        "concentration_iu_per_ml": order.concentration_iu_per_ml,
    }


# SCH-PREP's constants as the preparation function declares them (one home for the numbers).
_PREP_DEFAULTS = inspect.signature(dosing.preparation).parameters
