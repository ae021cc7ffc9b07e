"""Writes for monitoring: rule-set versions and observations (vitals, neuro, weights, fluids, labs, events)."""

from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from il2ward.audit import audit, check_password_again
from il2ward.db import insert, retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Patient
from il2ward.notifications import notifications_resolve
from monitoring import plausibility
from monitoring.domain.bounds import FLUID_BOUNDS, LAB_BOUNDS, NEURO_BOUNDS, VITALS_BOUNDS, WEIGHT_BOUNDS, Bound
from monitoring.domain.rulesets import RULE_SETS
from monitoring.domain.snapshot import EVENT_KINDS, EXAM_FLAGS
from monitoring.models import (
    LAB_FIELDS,
    BedsideExam,
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    Observation,
    RuleSetVersion,
    VitalSigns,
    WeightMeasurement,
)
from monitoring.signals import patient_observations_changed


def rule_set_current(name: str, *, now: datetime) -> RuleSetVersion:
    """The newest version of a rule set, as new courses take it.

    The first stored version is written from the built-in definition. When the built-in set follows a newer
    HOLD-RULES.md version than the newest stored one (the software was upgraded), the next version is written from
    the new built-in definition with the site's overrides carried over (those the new definition still has; the
    rest are named in the audit row), so a site's numbers survive and the new rules apply to new courses.
    """
    if name not in RULE_SETS:
        raise Invalid({"rule_set": [f"Unknown rule set {name!r}; one of {', '.join(sorted(RULE_SETS))}"]})
    latest = RuleSetVersion.objects.filter(name=name).order_by("-version").first()
    builtin = RULE_SETS[name]
    if latest is not None and latest.definition.get("spec", 1) >= builtin.spec:
        return latest
    try:
        with transaction.atomic():
            if latest is None:
                number, overrides, dropped = builtin.version, {}, []
            else:
                number = max(latest.version + 1, builtin.version)
                known = {**builtin.thresholds, **builtin.options}
                overrides = {k: v for k, v in latest.overrides.items() if k in known}
                dropped = sorted(set(latest.overrides) - set(overrides))
            definition = builtin.with_overrides(overrides, version=number).to_dict()
            version = RuleSetVersion.objects.create(
                name=name, version=number, base=name, overrides=overrides, definition=definition, created_at=now
            )
            audit(
                actor=None,
                action="ruleset.create" if latest is None else "ruleset.upgrade",
                obj=version,
                at=now,
                old=None if latest is None else {"version": latest.version, "spec": latest.definition.get("spec", 1)},
                new={"name": name, "version": number, "spec": builtin.spec, "overrides_dropped": dropped},
            )
            return version
    except IntegrityError:  # created concurrently
        return RuleSetVersion.objects.filter(name=name).latest("version")  # the one the other request wrote


@transaction.atomic
def rule_set_override(*, name: str, overrides: dict, reason: str = "", by, now: datetime) -> RuleSetVersion:
    """A site's change of thresholds or options: a new version of the rule set, never an edit of an old one.

    Courses already running stay on the version they started with; new courses take the new one. An invariant of
    HOLD-RULES §3a cannot be switched off (the RuleSet refuses such a definition: 400)."""
    current = rule_set_current(name, now=now)
    base = RULE_SETS[current.base]
    merged = {**current.overrides, **overrides}
    try:
        definition = base.with_overrides(merged, version=current.version + 1).to_dict()
    except ValueError as exc:
        raise Invalid({"overrides": [str(exc)]}) from exc
    version = RuleSetVersion.objects.create(
        name=name,
        version=current.version + 1,
        base=current.base,
        overrides=merged,
        definition=definition,
        created_at=now,
        created_by=by,
    )
    audit(actor=by, action="ruleset.override", obj=version, at=now, old=current.overrides, new=merged, reason=reason)
    return version


# --------------------------------------------------------------------------------------------------- observations
#
# One service per state change (vitals_record, neuro_record, weight_record, fluids_record, labs_record, event_record,
# event_resolve, observation_enter_in_error). Each validates everything first (Invalid names every bad field, nothing
# is written), writes the row and its audit event in one transaction, and after commit asks the scheduling app to
# re-evaluate the patient's open doses (monitoring.signals.patient_observations_changed, patient id only).


FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks differ a little; more than this in the future is a typing error


_T = TypeVar("_T")


class _Checker:
    """Collects every error of one request, so the 400 names all bad fields at once."""

    def __init__(self, now: datetime):
        self.now = now
        self.errors: dict[str, list[str]] = {}
        self.confirmable: set[str] = set()  # refused only as implausible: a confirmation with a reason stores them

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def number(self, name: str, value, bound: Bound, *, required: bool = True) -> int | Decimal | None:
        if value is None or value == "":
            if required:
                self.add(name, "This field is required.")
            return None
        if isinstance(value, bool):
            self.add(name, "A number is required.")
            return None
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            self.add(name, "A number is required.")
            return None
        if not number.is_finite():
            self.add(name, "A number is required.")
            return None
        if not bound.low <= number <= bound.high:
            unit = f" {bound.unit}" if bound.unit else ""
            self.add(name, f"Must be between {bound.low} and {bound.high}{unit}; {number} is not possible.")
            return None
        step = Decimal(1).scaleb(-bound.places)
        if number.quantize(step) != number:  # never rounded silently: 37.25 °C is refused, not stored as 37.2
            self.add(
                name,
                "A whole number is required."
                if bound.places == 0
                else f"At most {bound.places} decimal place{'s' if bound.places > 1 else ''}.",
            )
            return None
        return int(number) if bound.places == 0 else number.quantize(step)

    def numbers(self, values: dict, bounds: dict[str, Bound], *, required: tuple[str, ...] = ()) -> dict:
        return {
            name: self.number(name, values.get(name), bound, required=name in required)
            for name, bound in bounds.items()
        }

    def time(self, name: str, value, *, required: bool = True, since_birth_of=None) -> datetime | None:
        """An aware time, not in the future; no further back than the back-entry limit, or for a clinical event
        (whose onset may precede admission) no earlier than the patient's birth (`since_birth_of`)."""
        if value is None:
            if required:
                self.add(name, "This field is required.")
            return None
        if not isinstance(value, datetime):
            self.add(name, "Not a date-time.")
            return None
        if timezone.is_naive(value):
            self.add(name, "Give the time with its UTC offset (e.g. 2027-03-12T16:00:00-06:00 or ...Z).")
            return None
        if value > self.now + FUTURE_TOLERANCE:
            self.add(name, "More than 5 minutes in the future.")
            return None
        # Bounded: a mistyped year (0001-01-01) would otherwise be stored and break every later read.
        if since_birth_of is not None:
            birth = datetime.combine(since_birth_of.birth_date, dt_time.min, tzinfo=UTC) - timedelta(days=1)
            if value < birth:
                self.add(name, "Before the patient's date of birth.")
                return None
            return value.astimezone(UTC)
        back_entry_days = settings.IL2WARD_BACK_ENTRY_DAYS
        if value < self.now - timedelta(days=back_entry_days):
            self.add(name, f"More than {back_entry_days} days ago (the ward's back-entry limit).")
            return None
        return value.astimezone(UTC)

    def choice(self, name: str, value, choices, *, required: bool = True) -> str:
        if value is None or value == "":
            if required:
                self.add(name, "This field is required.")
            return ""
        if value not in choices:
            self.add(name, f"{value!r} is not one of: {', '.join(choices)}.")
            return ""
        return value

    def flag(self, name: str, value, *, required: bool = False) -> bool | None:
        """A yes/no answer; None when not answered (never read as "no")."""
        if value is None or value == "":
            if required:
                self.add(name, "This field is required.")
            return None
        if not isinstance(value, bool):
            self.add(name, "Must be true or false.")
            return None
        return value

    def plausible(self, name: str, message: str | None, *, confirm: bool, reason: str) -> str:
        """An implausible value (message given) passes only confirmed with a reason; returns the reason to store."""
        if message is None:
            return ""
        self.confirmable.add(name)
        if not confirm:
            self.add(name, message)
        elif not reason:
            self.add("confirm_reason", "Say why this value is right.")
        return reason

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors, confirmable=self.confirmable)

    def valid(self, value: _T | None) -> _T:
        """A required value once every check passed (Invalid names the errors otherwise). A required value is None
        only when it was refused, and then its error is named, so a None past the checks is a slip of the code."""
        self.raise_if_any()
        if value is None:
            raise TypeError("a required value was refused without naming an error")
        return value


SOURCE_FIELDS = ("source_system", "source_message_id", "source_order")


def _record(model, *, patient: Patient, recorded_at: datetime, values: dict, by, now: datetime, source=None):
    source = {k: str(v) for k, v in (source or {}).items() if k in SOURCE_FIELDS and v}
    row = model(patient=patient, recorded_at=recorded_at, recorded_by=by, created_at=now, **values, **source)
    insert([row])  # what objects.create does, the INSERT built once (il2ward.db)
    audit(
        actor=by,
        action=f"{model.KIND}.record",
        obj=row,
        at=now,
        new={"patient": patient.pk, "recorded_at": recorded_at, **values, **source},
    )
    patient_observations_changed.send(sender=None, patient_id=patient.pk)
    return row


@retry_transaction
@transaction.atomic
def vitals_record(
    *,
    patient: Patient,
    recorded_at: datetime,
    sbp: int,
    dbp: int,
    heart_rate: int,
    resp_rate: int,
    spo2: int,
    temp_c: Decimal,
    o2_lpm: Decimal | None = None,
    fio2_pct: int | None = None,
    rhythm: str | None = None,
    phenylephrine_mcg_kg_min: Decimal | None = None,
    other_pressor: str | None = None,
    other_pressor_mcg_kg_min: Decimal | None = None,
    source: dict | None = None,
    by,
    now: datetime,
) -> VitalSigns:
    """Chart a vitals set. What is left out (rhythm, O2, pressors) is stored as not charted, never as "none".

    An other vasopressor needs its rate; "none" takes no rate.
    """
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at)
    given = {
        "sbp": sbp,
        "dbp": dbp,
        "heart_rate": heart_rate,
        "resp_rate": resp_rate,
        "spo2": spo2,
        "temp_c": temp_c,
        "o2_lpm": o2_lpm,
        "fio2_pct": fio2_pct,
        "phenylephrine_mcg_kg_min": phenylephrine_mcg_kg_min,
        "other_pressor_mcg_kg_min": other_pressor_mcg_kg_min,
    }
    values = check.numbers(given, VITALS_BOUNDS, required=("sbp", "dbp", "heart_rate", "resp_rate", "spo2", "temp_c"))
    if values["sbp"] is not None and values["dbp"] is not None and values["dbp"] >= values["sbp"]:
        check.add("dbp", "Diastolic must be below systolic.")
    values["rhythm"] = check.choice("rhythm", rhythm, VitalSigns.Rhythm.values, required=False)
    values["other_pressor"] = check.choice(
        "other_pressor", other_pressor, VitalSigns.OtherPressor.values, required=False
    )
    rate_given = other_pressor_mcg_kg_min not in (None, "")
    if values["other_pressor"] == VitalSigns.OtherPressor.NONE and rate_given:
        check.add("other_pressor_mcg_kg_min", 'No rate when other_pressor is "none".')
    elif values["other_pressor"] == VitalSigns.OtherPressor.VASOPRESSIN:
        # Vasopressin runs in units/min, not µg/kg/min: a number here would be in the wrong unit. No rule reads its
        # rate (any vasopressin running stops the dose, CV-PRESSOR), so none is asked for.
        if rate_given:
            check.add(
                "other_pressor_mcg_kg_min",
                "Vasopressin is dosed in units/min, not µg/kg/min: leave the rate empty (any vasopressin running "
                "stops the dose).",
            )
    elif values["other_pressor"] and values["other_pressor"] != VitalSigns.OtherPressor.NONE and not rate_given:
        check.add("other_pressor_mcg_kg_min", "Give the rate of the other vasopressor.")
    elif not values["other_pressor"] and rate_given and "other_pressor" not in check.errors:
        check.add("other_pressor", "Say which vasopressor the rate is for.")
    check.raise_if_any()
    row = _record(
        VitalSigns, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now, source=source
    )
    _vitals_answered(row, by=by, now=now)
    return row


def _vitals_answered(row: VitalSigns, *, by, now: datetime) -> None:
    """A vitals set answers the patient's open vitals_due reminders it would have prevented: those asking for vitals
    since a time at or before it (a reminder is due `every` after the last set). Late entries of older sets do not."""
    every = timedelta(minutes=settings.IL2WARD_VITALS_EVERY_MINUTES)
    notifications_resolve(patient_id=row.patient_id, kinds=["vitals_due"], reason="vitals recorded",
                          where=Q(due_at__lt=row.recorded_at + every), by=by, now=now)  # fmt: skip


@retry_transaction
@transaction.atomic
def neuro_record(
    *,
    patient: Patient,
    recorded_at: datetime,
    rass: int,
    confusion: str,
    neuro_check_failed: bool | None = None,
    hallucinations: bool | None = None,
    vivid_dreams_or_anxiety: bool | None = None,
    persistent_crying: bool | None = None,
    by,
    now: datetime,
) -> NeuroAssessment:
    """Chart a neuro assessment. A yes/no answer left out is stored as not answered (null), never as "no"."""
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at)
    values = check.numbers({"rass": rass}, NEURO_BOUNDS, required=("rass",))
    values["confusion"] = check.choice("confusion", confusion, NeuroAssessment.Confusion.values)
    values["neuro_check_failed"] = check.flag("neuro_check_failed", neuro_check_failed)
    values["hallucinations"] = check.flag("hallucinations", hallucinations)
    values["vivid_dreams_or_anxiety"] = check.flag("vivid_dreams_or_anxiety", vivid_dreams_or_anxiety)
    values["persistent_crying"] = check.flag("persistent_crying", persistent_crying)
    check.raise_if_any()
    return _record(NeuroAssessment, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now)


@retry_transaction
@transaction.atomic
def exam_record(*, patient: Patient, recorded_at: datetime, by, now: datetime, **answers) -> BedsideExam:
    """Chart a bedside exam. Every answer is required: the yes/no findings (EXAM_FLAGS) and rales."""
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at)
    unknown = set(answers) - {*EXAM_FLAGS, "rales"}
    for name in sorted(unknown):
        check.add(name, "Not a bedside exam finding.")
    values: dict[str, bool | str | None] = {
        name: check.flag(name, answers.get(name), required=True) for name in EXAM_FLAGS
    }
    values["rales"] = check.choice("rales", answers.get("rales"), BedsideExam.Rales.values)
    check.raise_if_any()
    return _record(BedsideExam, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now)


@retry_transaction
@transaction.atomic
def weight_record(
    *,
    patient: Patient,
    recorded_at: datetime,
    weight_kg: Decimal,
    confirm: bool = False,
    confirm_reason: str = "",
    by,
    now: datetime,
) -> WeightMeasurement:
    """Chart a weight. One far from the previous weight (monitoring.plausibility) needs confirm and a reason."""
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at)
    values = check.numbers({"weight_kg": weight_kg}, WEIGHT_BOUNDS, required=("weight_kg",))
    if at is not None and values["weight_kg"] is not None:
        previous = plausibility.latest_weight_kg(patient, at=at, within=plausibility.bound("WEIGHT_CHANGE_WINDOW"))
        message = None if previous is None else plausibility.weight_change_message(values["weight_kg"], previous)
        values["confirmed_reason"] = check.plausible(
            "weight_kg", message, confirm=confirm, reason=(confirm_reason or "").strip()
        )
    check.raise_if_any()
    return _record(WeightMeasurement, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now)


@retry_transaction
@transaction.atomic
def fluids_record(
    *,
    patient: Patient,
    period_start: datetime,
    period_end: datetime,
    urine_ml: int,
    intake_ml: int | None = None,
    diarrhea_ml: int | None = None,
    recorded_at: datetime | None = None,
    confirm: bool = False,
    confirm_reason: str = "",
    by,
    now: datetime,
) -> FluidBalance:
    """Intake/output over one period (at most 24 h). recorded_at defaults to period_end (it may not precede it).

    Overlapping periods are accepted: the rule engine reads an overlap as a charting error and takes the safer
    values (less urine, more diarrhoea), and the nurse can mark the wrong one entered-in-error.
    """
    check = _Checker(now)
    start = check.time("period_start", period_start)
    end = check.time("period_end", period_end)
    if start is not None and end is not None:
        if end <= start:
            check.add("period_end", "Must be after period_start.")
    at = end
    if recorded_at is not None:
        at = check.time("recorded_at", recorded_at)
        if at is not None and end is not None and at < end:
            check.add("recorded_at", "Cannot be before period_end.")
    values = check.numbers(
        {"urine_ml": urine_ml, "intake_ml": intake_ml, "diarrhea_ml": diarrhea_ml}, FLUID_BOUNDS, required=("urine_ml",)
    )
    reasons = []
    reason = (confirm_reason or "").strip()
    if start is not None and end is not None and end > start:
        reasons.append(
            check.plausible(
                "period_end", plausibility.period_length_message(end - start), confirm=confirm, reason=reason
            )
        )
        if values["urine_ml"] is not None:
            message = plausibility.urine_rate_message(values["urine_ml"], end - start)
            reasons.append(check.plausible("urine_ml", message, confirm=confirm, reason=reason))
    check.raise_if_any()
    values = {"period_start": start, "period_end": end, **values, "confirmed_reason": next(filter(None, reasons), "")}
    return _record(FluidBalance, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now)


@retry_transaction
@transaction.atomic
def labs_record(
    *,
    patient: Patient,
    recorded_at: datetime,
    creatinine_mg_dl: Decimal | None = None,
    platelets_k_ul: Decimal | None = None,
    bilirubin_mg_dl: Decimal | None = None,
    bicarbonate_mmol_l: Decimal | None = None,
    ast_u_l: int | None = None,
    alt_u_l: int | None = None,
    albumin_g_dl: Decimal | None = None,
    potassium_mmol_l: Decimal | None = None,
    magnesium_mg_dl: Decimal | None = None,
    phosphate_mg_dl: Decimal | None = None,
    sodium_mmol_l: Decimal | None = None,
    hemoglobin_g_dl: Decimal | None = None,
    wbc_k_ul: Decimal | None = None,
    troponin_ng_l: Decimal | None = None,
    ck_mb_ng_ml: Decimal | None = None,
    source: dict | None = None,
    by,
    now: datetime,
) -> LabResult:
    """One lab panel (recorded_at = specimen time); any subset of the tests, at least one.

    `source` ({source_system, source_message_id, source_order}) says which hospital system sent it (inbound)."""
    given = {
        "creatinine_mg_dl": creatinine_mg_dl,
        "platelets_k_ul": platelets_k_ul,
        "bilirubin_mg_dl": bilirubin_mg_dl,
        "bicarbonate_mmol_l": bicarbonate_mmol_l,
        "ast_u_l": ast_u_l,
        "alt_u_l": alt_u_l,
        "albumin_g_dl": albumin_g_dl,
        "potassium_mmol_l": potassium_mmol_l,
        "magnesium_mg_dl": magnesium_mg_dl,
        "phosphate_mg_dl": phosphate_mg_dl,
        "sodium_mmol_l": sodium_mmol_l,
        "hemoglobin_g_dl": hemoglobin_g_dl,
        "wbc_k_ul": wbc_k_ul,
        "troponin_ng_l": troponin_ng_l,
        "ck_mb_ng_ml": ck_mb_ng_ml,
    }
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at)
    values = check.numbers(given, LAB_BOUNDS)
    if all(v is None or v == "" for v in given.values()):
        check.add("non_field_errors", f"Give at least one result ({', '.join(LAB_FIELDS)}).")
    check.raise_if_any()
    return _record(
        LabResult, patient=patient, recorded_at=check.valid(at), values=values, by=by, now=now, source=source
    )


@retry_transaction
@transaction.atomic
def event_record(
    *, patient: Patient, kind: str, recorded_at: datetime, note: str = "", by, now: datetime
) -> ClinicalEvent:
    """A clinical flag, active from recorded_at until resolved (event_resolve)."""
    check = _Checker(now)
    at = check.time("recorded_at", recorded_at, since_birth_of=patient)
    kind = check.choice("kind", kind, EVENT_KINDS)
    check.raise_if_any()
    return _record(
        ClinicalEvent,
        patient=patient,
        recorded_at=check.valid(at),
        values={"kind": kind, "note": note or ""},
        by=by,
        now=now,
    )


@retry_transaction
@transaction.atomic
def event_resolve(
    *, event: ClinicalEvent, resolved_at: datetime | None = None, note: str = "", by, now: datetime
) -> ClinicalEvent:
    """Mark an active event resolved (default: now). 409 when already resolved or entered in error."""
    check = _Checker(now)
    at = check.valid(
        check.time("resolved_at", now if resolved_at is None else resolved_at, since_birth_of=event.patient)
    )
    event = ClinicalEvent.objects.select_for_update(no_key=True).get(pk=event.pk)  # NO KEY: il2ward.db
    if event.entered_in_error_at is not None:
        raise Conflict("entered_in_error", "This event was entered in error.")
    if event.resolved_at is not None:
        raise Conflict("already_resolved", "This event is already resolved.")
    if at < event.recorded_at:
        raise Invalid({"resolved_at": ["Cannot be before the event was recorded."]})
    event.resolved_at, event.resolved_by, event.resolution_note = at, by, note or ""
    event.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
    audit(
        actor=by,
        action=f"{ClinicalEvent.KIND}.resolve",
        obj=event,
        at=now,
        old={"resolved_at": None},
        new={"kind": event.kind, "resolved_at": at, "note": event.resolution_note},
    )
    patient_observations_changed.send(sender=None, patient_id=event.patient_id)
    return event


@retry_transaction
@transaction.atomic
def observation_enter_in_error(*, observation: Observation, reason: str, password: str, by, now: datetime):
    """Mark an observation entered-in-error: kept and shown as such, never read by the rules again.

    Needs a reason and the user's password re-entered. 409 already_entered_in_error when it already is.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Say why this entry is wrong."]})
    check_password_again(by, password)
    return _enter_in_error(observation, reason=reason, by=by, now=now)


@transaction.atomic
def observation_supersede(*, observation: Observation, reason: str, by, now: datetime):
    """A hospital system corrected a result it sent (HL7 OBX-11 "C"): the earlier one is marked entered-in-error,
    kept and audited like a nurse's correction, by the interface's account (no password: no person is signing)."""
    if not observation.source_system:
        raise Conflict("not_interfaced", "Only a value a hospital system sent can be corrected by that system.")
    return _enter_in_error(observation, reason=reason, by=by, now=now)


def _enter_in_error(observation: Observation, *, reason: str, by, now: datetime):
    model = type(observation)
    row = model._default_manager.select_for_update(no_key=True).get(pk=observation.pk)  # NO KEY: il2ward.db
    if row.entered_in_error_at is not None:
        raise Conflict("already_entered_in_error", "This entry is already marked entered in error.")
    row.entered_in_error_at, row.entered_in_error_by, row.entered_in_error_reason = now, by, reason
    row.save(update_fields=["entered_in_error_at", "entered_in_error_by", "entered_in_error_reason"])
    audit(
        actor=by,
        action=f"{model.KIND}.entered_in_error",
        obj=row,
        at=now,
        old={"entered_in_error_at": None},
        new={"patient": row.patient_id, "entered_in_error_at": now},
        reason=reason,
    )
    patient_observations_changed.send(sender=None, patient_id=row.patient_id)
    return row
