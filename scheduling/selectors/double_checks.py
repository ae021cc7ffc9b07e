"""Reads of the pending double checks (scheduling.services.double_checks): the ones a nurse may answer, one check,
and a dose's open check. What the second nurse is shown is the order, never the computed dose (ISMP blind check)."""

import inspect
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from il2ward import access
from il2ward.db import Statement, table_names
from il2ward.models import Patient, StaffProfile
from il2ward.people import printed_name_of
from scheduling.domain import dosing
from scheduling.models import Course, Dose, DoubleCheck

_RELATED = ("dose__course__patient__ward", "requested_by__profile", "decided_by__profile")


def _visible(user) -> QuerySet[DoubleCheck]:
    return DoubleCheck.objects.filter(dose__course__patient__in=access.visible_patients(user)).select_related(*_RELATED)


def checks_to_answer(user, *, now) -> list[DoubleCheck]:
    """Pending, unexpired checks on the user's wards that she may answer (not her own), oldest first, one query."""
    if not access.is_nursing(user):
        return []
    pending = _visible(user).filter(
        status=DoubleCheck.Status.PENDING, expires_at__gte=now, dose__status=Dose.Status.SCHEDULED
    )
    return list(pending.exclude(requested_by=user).order_by("requested_at", "pk"))


@dataclass(frozen=True, slots=True)
class WaitingCheck:
    """A check waiting on the ward board: what its list shows."""

    pk: int
    dose_id: int
    patient_name: str
    cycle: int
    number: int
    requested_by_name: str
    started_at: datetime
    expires_at: datetime


def _build_waiting_sql(db) -> str:
    names = table_names(
        db,
        check=DoubleCheck,
        dose=Dose,
        course=Course,
        patient=Patient,
        user=DoubleCheck._meta.get_field("requested_by").related_model,
        profile=StaffProfile,
    )
    return """SELECT dc.id, dc.dose_id, p.name, d.cycle, d.number, sp.printed_name, u.first_name, u.last_name,
  u.username, dc.started_at, dc.expires_at
FROM {check} dc
JOIN {dose} d ON d.id = dc.dose_id
JOIN {course} c ON c.id = d.course_id
JOIN {patient} p ON p.id = c.patient_id
JOIN {user} u ON u.id = dc.requested_by_id
LEFT JOIN {profile} sp ON sp.user_id = u.id
WHERE p.ward_id = %(ward)s AND dc.status = %(pending)s AND dc.expires_at >= %(now)s AND d.status = %(scheduled)s
  AND dc.requested_by_id <> %(user)s
ORDER BY dc.requested_at, dc.id""".format(**names)


_WAITING = Statement(
    _build_waiting_sql,
    (
        *(DoubleCheck._meta.get_field(name) for name in ("id", "dose")),
        Patient._meta.get_field("name"),
        *(Dose._meta.get_field(name) for name in ("cycle", "number")),
        StaffProfile._meta.get_field("printed_name"),
        None,  # first name
        None,  # last name
        None,  # username
        *(DoubleCheck._meta.get_field(name) for name in ("started_at", "expires_at")),
    ),
)


def waiting_on_ward(user, *, ward, now) -> list[WaitingCheck]:
    """The checks on `ward` (a ward the caller has already found she may see: access.ward_for, visible_wards) that
    she may answer, as checks_to_answer gives them: the ward board asks at every load, so one statement written once
    (il2ward.db.Statement), no model instances."""
    if not access.is_nursing(user):
        return []
    params = {
        "ward": ward.pk,
        "pending": DoubleCheck.Status.PENDING.value,
        "now": now,
        "scheduled": Dose.Status.SCHEDULED.value,
        "user": user.pk,
    }
    return [
        WaitingCheck(pk, dose_id, patient, cycle, number, printed_name_of(printed, f"{first} {last}", username),
                     started_at, expires_at)
        for pk, dose_id, patient, cycle, number, printed, first, last, username, started_at, expires_at
        in _WAITING.rows(params, using=DoubleCheck.objects.db)
    ]  # fmt: skip


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
