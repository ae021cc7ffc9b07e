"""Writes for wards, staff and patients. One function per state change; each writes its audit row."""

from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from il2ward.audit import audit
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Medication, Patient, Role, StaffProfile, Ward, validate_zone


def _max_length(model, name: str) -> int:
    """A text column's length, as the model declares it (every column read here has one)."""
    return getattr(model._meta.get_field(name), "max_length")  # noqa: B009 - a field or a relation to mypy


User = get_user_model()


@transaction.atomic
def ward_upsert(*, code: str, name: str, tz: str, by=None, now: datetime) -> Ward:
    errors = {}
    try:
        validate_slug(code)  # the code is in page addresses (/wards/{code}/)
    except ValidationError:
        errors["code"] = ["Use letters, digits, hyphens and underscores only."]
    if len(code) > _max_length(Ward, "code"):
        errors["code"] = [f"At most {_max_length(Ward, 'code')} characters."]
    if not name.strip() or len(name) > _max_length(Ward, "name"):
        errors["name"] = [f"A ward needs a name of 1 to {_max_length(Ward, 'name')} characters."]
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
    username_field = getattr(User, User.USERNAME_FIELD).field
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

# Admissions, transfers, discharges and demographic updates: what the patient administration system sends (ADT).
# Each locks the patient row and writes one audit row naming what changed; nothing is deleted.

PATIENT_DEMOGRAPHICS = ("name", "birth_date", "sex")


def _validate_demographics(*, name: str | None, birth_date: date | None, sex: str | None, now: datetime) -> None:
    errors = {}
    if name is not None and (not name.strip() or len(name) > _max_length(Patient, "name")):
        errors["name"] = [f"A name of 1 to {_max_length(Patient, 'name')} characters."]
    if birth_date is not None and birth_date > now.date():
        errors["birth_date"] = ["In the future."]
    if sex is not None and sex not in Patient.Sex.values:
        errors["sex"] = [f"{sex!r} is not one of: {', '.join(Patient.Sex.values)}."]
    if errors:
        raise Invalid(errors)


@retry_transaction
@transaction.atomic
def patient_update(*, patient_id: int, changes: dict, by, now: datetime) -> Patient:
    """Change a patient's identity (MRN, name, birth date, sex) or ward (which decides who may see the patient);
    audited `patient.update` with the old and new value of each changed field (the ward by its code)."""
    unknown = set(changes) - set(PATIENT_IDENTITY_FIELDS)
    if unknown:
        raise Invalid({name: ["Not a field that can be changed here."] for name in sorted(unknown)})
    _validate_demographics(**{f: changes.get(f) for f in PATIENT_DEMOGRAPHICS}, now=now)
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


@retry_transaction
@transaction.atomic
def patient_admit(
    *, mrn: str, name: str, birth_date: date, sex: str = "unknown", ward: Ward, admitted_at: datetime, by, now
) -> Patient:
    """Admit to a ward: a new patient is created; a known MRN is re-admitted (ward set, discharge cleared; the
    demographics are the ones already held, an update changes them)."""
    _validate_demographics(name=name, birth_date=birth_date, sex=sex, now=now)
    patient = Patient.objects.select_for_update(of=("self",), no_key=True).filter(mrn=mrn).first()
    if patient is None:
        patient = patient_create(mrn=mrn, name=name, birth_date=birth_date, ward=ward, sex=sex, by=by, now=now)
        audit(actor=by, action="patient.admit", obj=patient, at=now, new={"ward": ward.code, "at": admitted_at})
        return patient
    old = {"ward": patient.ward.code, "discharged_at": patient.discharged_at}
    patient.ward, patient.discharged_at = ward, None
    patient.save(update_fields=["ward", "discharged_at"])
    audit(actor=by, action="patient.admit", obj=patient, at=now, old=old, new={"ward": ward.code, "at": admitted_at})
    return patient


@retry_transaction
@transaction.atomic
def patient_transfer(*, patient: Patient, ward: Ward, transferred_at: datetime, by, now: datetime) -> Patient:
    patient = Patient.objects.select_for_update(of=("self",), no_key=True).select_related("ward").get(pk=patient.pk)
    if patient.discharged_at is not None:
        raise Conflict("patient_discharged", "The patient is discharged; admit them first.")
    old = {"ward": patient.ward.code}
    patient.ward = ward
    patient.save(update_fields=["ward"])
    audit(
        actor=by, action="patient.transfer", obj=patient, at=now, old=old, new={"ward": ward.code, "at": transferred_at}
    )
    return patient


@retry_transaction
@transaction.atomic
def patient_discharge(*, patient: Patient, discharged_at: datetime, by, now: datetime) -> Patient:
    patient = Patient.objects.select_for_update(of=("self",), no_key=True).get(pk=patient.pk)
    if patient.discharged_at is not None:
        raise Conflict("patient_discharged", "The patient is already discharged.")
    if discharged_at > now + timedelta(minutes=5):
        raise Invalid({"discharged_at": ["More than 5 minutes in the future."]})
    patient.discharged_at = discharged_at
    patient.save(update_fields=["discharged_at"])
    audit(actor=by, action="patient.discharge", obj=patient, at=now, old={"discharged_at": None},
          new={"discharged_at": discharged_at})  # fmt: skip
    return patient


@retry_transaction
@transaction.atomic
def patient_update_demographics(
    *, patient: Patient, name: str | None = None, birth_date: date | None = None, sex: str | None = None, by, now
) -> Patient:
    """Change what the patient administration system corrected (ADT^A08); an unchanged value writes nothing."""
    given = {"name": name, "birth_date": birth_date, "sex": sex}
    return patient_update(
        patient_id=patient.pk, changes={k: v for k, v in given.items() if v is not None}, by=by, now=now
    )


@retry_transaction
@transaction.atomic
def medication_record(*, patient: Patient, name: str, active: bool = True, by, now: datetime) -> Medication:
    """A medication on the patient's list (read by the HOLD-RULES §2 interaction warnings); audited."""
    name = (name or "").strip()
    if not name or len(name) > _max_length(Medication, "name"):
        raise Invalid({"name": [f"A medication name of 1 to {_max_length(Medication, 'name')} characters."]})
    medication = Medication.objects.create(patient=patient, name=name, active=active, recorded_at=now, recorded_by=by)
    audit(actor=by, action="medication.create", obj=medication, at=now,
          new={"patient": patient.pk, "name": name, "active": active})  # fmt: skip
    return medication


@retry_transaction
@transaction.atomic
def medication_update(*, medication_id: int, changes: dict, by, now: datetime) -> Medication:
    """Rename or (in)activate a medication list entry, with its old and new values audited. An entry is made
    inactive, never deleted."""
    unknown = sorted(set(changes) - {"name", "active"})
    if unknown:
        raise Invalid({field: ["Not a field a medication entry changes."] for field in unknown})
    medication = Medication.objects.select_for_update().get(pk=medication_id)
    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name or len(name) > _max_length(Medication, "name"):
            raise Invalid({"name": [f"A medication name of 1 to {_max_length(Medication, 'name')} characters."]})
        changes = {**changes, "name": name}
    changed = {field: value for field, value in changes.items() if getattr(medication, field) != value}
    if not changed:
        return medication
    old = {field: getattr(medication, field) for field in changed}
    for field, value in changed.items():
        setattr(medication, field, value)
    medication.save(update_fields=list(changed))
    audit(actor=by, action="medication.update", obj=medication, at=now, old=old,
          new={"patient": medication.patient_id, **changed})  # fmt: skip
    return medication


@retry_transaction
@transaction.atomic
def ward_set_webhook(*, ward_id: int, url: str, secret: str, by, now: datetime) -> Ward:
    """Set or clear the ward's paging webhook. Audited with the address before and after; of the secret only whether
    it was set, changed or cleared (a key in the audit trail would be readable by every auditor)."""
    if url and not secret:
        raise Invalid({"webhook_secret": ["A webhook needs a secret: nothing is sent unsigned."]})
    ward = Ward.objects.select_for_update(no_key=True).get(pk=ward_id)  # a parent row (il2ward.db)
    if (ward.webhook_url, ward.webhook_secret) == (url, secret):
        return ward
    if secret == ward.webhook_secret:
        secret_change = "unchanged"
    else:
        secret_change = "cleared" if not secret else ("changed" if ward.webhook_secret else "set")
    old = {"webhook_url": ward.webhook_url}
    ward.webhook_url, ward.webhook_secret = url, secret
    ward.save(update_fields=["webhook_url", "webhook_secret"])
    audit(actor=by, action="ward.webhook", obj=ward, at=now, old=old,
          new={"webhook_url": url, "webhook_secret": secret_change})  # fmt: skip
    return ward


@retry_transaction
@transaction.atomic
def staff_profile_update(*, profile_id: int, changes: dict, by, now: datetime) -> StaffProfile:
    """An administrator changes a person's printed name, duty, notification choices or wards (which decide whose
    patients she sees). Audited with the old and new values, wards by code."""
    simple = [f.name for f in StaffProfile._meta.concrete_fields if f.name not in ("id", "user")]
    unknown = sorted(set(changes) - {*simple, "wards"})
    if unknown:
        raise Invalid({field: ["Not a field changed here."] for field in unknown})
    profile = StaffProfile.objects.select_for_update().select_related("user").get(pk=profile_id)
    if len(changes.get("printed_name", "")) > _max_length(StaffProfile, "printed_name"):
        raise Invalid({"printed_name": [f"At most {_max_length(StaffProfile, 'printed_name')} characters."]})
    old, new = {}, {}
    for field in simple:
        if field in changes and changes[field] != getattr(profile, field):
            old[field], new[field] = getattr(profile, field), changes[field]
            setattr(profile, field, changes[field])
    if new:
        profile.save(update_fields=list(new))
    if "wards" in changes:
        wanted = sorted(ward.code for ward in changes["wards"])
        current = sorted(profile.wards.values_list("code", flat=True))
        if wanted != current:
            profile.wards.set(list(changes["wards"]))
            old["wards"], new["wards"] = current, wanted
    if new:
        audit(actor=by, action="staff.update", obj=profile.user, at=now, old=old, new=new)
    return profile
