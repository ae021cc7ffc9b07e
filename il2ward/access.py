"""Access helpers: one per entity. A patient not on the user's wards is "not found" (404), never "forbidden"."""

from django.db.models import QuerySet
from django.http import Http404

from il2ward.errors import Forbidden
from il2ward.models import NURSING_ROLES, Patient, Role, StaffProfile, Ward

WIDE_ROLES = (Role.ONCOLOGIST, Role.PHARMACIST, Role.ADMIN)  # see every ward


def roles_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_il2ward_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._il2ward_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def require_role(user, *roles: str) -> None:
    if not has_role(user, *roles):
        raise Forbidden(f"Requires one of: {', '.join(roles)}")


def is_nursing(user) -> bool:
    return has_role(user, *NURSING_ROLES)


def visible_wards(user) -> QuerySet[Ward]:
    if has_role(user, *WIDE_ROLES):
        return Ward.objects.all()
    if not user.is_authenticated:
        return Ward.objects.none()
    return Ward.objects.filter(staff__user=user)


def visible_patients(user) -> QuerySet[Patient]:
    if has_role(user, *WIDE_ROLES):
        return Patient.objects.all()
    if not user.is_authenticated:
        return Patient.objects.none()
    # The user's ward ids straight from the profile's ward list: joining the wards themselves cost every gated read
    # (patients, doses, checks) twice the planning time for no row.
    return Patient.objects.filter(
        ward_id__in=StaffProfile.wards.through.objects.filter(staffprofile__user=user).values("ward_id")
    )


def patient_for(user, patient_id) -> Patient:
    try:
        return visible_patients(user).select_related("ward").get(pk=patient_id)
    except (Patient.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such patient") from exc


def ward_for(user, code: str) -> Ward:
    try:
        return visible_wards(user).get(code=code)
    except Ward.DoesNotExist as exc:
        raise Http404("No such ward") from exc
