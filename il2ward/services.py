"""Writes for wards, staff and patients. One function per state change; each writes its audit row."""

from datetime import date, datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from il2ward.audit import audit
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient, Role, StaffProfile, Ward, validate_zone

User = get_user_model()


@transaction.atomic
def ward_upsert(*, code: str, name: str, tz: str, by=None, now: datetime) -> Ward:
    errors = {}
    try:
        validate_slug(code)  # the code is in page addresses (/wards/{code}/)
    except ValidationError:
        errors["code"] = ["Use letters, digits, hyphens and underscores only."]
    if len(code) > Ward._meta.get_field("code").max_length:
        errors["code"] = [f"At most {Ward._meta.get_field('code').max_length} characters."]
    if not name.strip() or len(name) > Ward._meta.get_field("name").max_length:
        errors["name"] = [f"A ward needs a name of 1 to {Ward._meta.get_field('name').max_length} characters."]
    try:
        validate_zone(tz)
    except ValidationError:
        errors["tz"] = [f"Unknown time zone {tz!r}"]
    if errors:
        raise Invalid(errors)
    ward = Ward.objects.select_for_update(no_key=True).filter(code=code).first()  # a parent row (il2ward.db)
    if ward is None:
        ward = Ward.objects.create(code=code, name=name, tz=tz)
        audit(actor=by, action="ward.create", obj=ward, at=now, new={"code": code, "name": name, "tz": tz})
    elif (ward.name, ward.tz) != (name, tz):
        old = {"name": ward.name, "tz": ward.tz}
        ward.name, ward.tz = name, tz
        ward.save(update_fields=["name", "tz"])
        audit(actor=by, action="ward.update", obj=ward, at=now, old=old, new={"name": name, "tz": tz})
    return ward


@transaction.atomic
def staff_upsert(
    *,
    username: str,
    role: str,
    password: str,
    ward_codes: list[str],
    email: str = "",
    printed_name: str = "",
    by=None,
    now: datetime,
):
    username_field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        username_field.run_validators(username)
        if not username:
            raise ValidationError("empty")
    except ValidationError as exc:
        raise Invalid({"username": [f"Not a valid username: {username!r}"]}) from exc
    if role not in Role.values:
        raise Invalid({"role": [f"Unknown role {role!r}; one of {', '.join(Role.values)}"]})
    wards = list(Ward.objects.filter(code__in=ward_codes))
    unknown = sorted(set(ward_codes) - {w.code for w in wards})
    if unknown:
        raise Invalid({"ward": [f"Unknown ward {', '.join(unknown)}"]})
    user, created = User.objects.get_or_create(username=username)
    if email:
        user.email = email
    if password:
        user.set_password(password)
    # The Django admin is for administrators only, and they may do everything there (it audits clinical changes).
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save()
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.set([group])
    profile, _ = StaffProfile.objects.get_or_create(user=user)
    profile.printed_name = printed_name or profile.printed_name or username
    profile.save()
    profile.wards.set(wards)
    audit(
        actor=by,
        action="staff.create" if created else "staff.update",
        obj=user,
        at=now,
        new={"username": username, "role": role, "wards": sorted(ward_codes), "email_set": bool(email)},
    )
    return user


@retry_transaction
@transaction.atomic
def patient_create(*, mrn: str, name: str, birth_date: date, ward: Ward, sex: str = "unknown", by, now: datetime):
    if Patient.objects.filter(mrn=mrn).exists():
        raise Conflict("duplicate_mrn", "A patient with this MRN already exists.")
    try:
        with transaction.atomic():
            patient = Patient.objects.create(mrn=mrn, name=name, birth_date=birth_date, ward=ward, sex=sex)
    except IntegrityError as exc:  # a concurrent create with the same MRN
        raise Conflict("duplicate_mrn", "A patient with this MRN already exists.") from exc
    audit(
        actor=by,
        action="patient.create",
        obj=patient,
        at=now,
        new={"mrn": mrn, "name": name, "birth_date": birth_date, "ward": ward.code, "sex": sex},
    )
    return patient


PATIENT_IDENTITY_FIELDS = ("mrn", "name", "birth_date", "sex", "ward")


@retry_transaction
@transaction.atomic
def patient_update(*, patient_id: int, changes: dict, by, now: datetime) -> Patient:
    """Change a patient's identity (MRN, name, birth date, sex) or ward (which decides who may see the patient);
    audited `patient.update` with the old and new value of each changed field (the ward by its code)."""
    unknown = set(changes) - set(PATIENT_IDENTITY_FIELDS)
    if unknown:
        raise Invalid({name: ["Not a field that can be changed here."] for name in sorted(unknown)})
    patient = Patient.objects.select_for_update().select_related("ward").get(pk=patient_id)

    def shown(field, value):
        return value.code if field == "ward" else value

    old, new = {}, {}
    for field, value in changes.items():
        current = getattr(patient, field)
        if (current.pk if field == "ward" else current) != (value.pk if field == "ward" else value):
            old[field], new[field] = shown(field, current), shown(field, value)
    if not new:
        return patient
    if "mrn" in new and Patient.objects.filter(mrn=new["mrn"]).exclude(pk=patient.pk).exists():
        raise Conflict("duplicate_mrn", "A patient with this MRN already exists.")
    for field in new:
        setattr(patient, field, changes[field])
    try:
        with transaction.atomic():
            patient.save(update_fields=list(new))
    except IntegrityError as exc:  # a concurrent change to the same MRN
        raise Conflict("duplicate_mrn", "A patient with this MRN already exists.") from exc
    audit(actor=by, action="patient.update", obj=patient, at=now, old=old, new=new)
    return patient
