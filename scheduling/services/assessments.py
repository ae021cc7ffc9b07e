"""The nurse's writes that span more than one record: the pre-dose assessment and the patient-teaching checklist.

Same rules as every service: keyword-only, one transaction, validate → write → audit (the observation services
audit each row they write), nothing stored when anything is refused.
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from il2ward.audit import audit
from il2ward.db import retry_transaction
from il2ward.errors import Invalid
from il2ward.models import Patient
from monitoring import services as obs
from scheduling.models import Course, DoseEvaluation, TeachingRecord
from scheduling.services import dose_evaluate, patient_evaluate_next_dose

# Where a fluids error lands on the assessment form.
_FLUID_FIELDS = {"period_start": "urine_since", "period_end": "urine_since", "recorded_at": "recorded_at"}


@retry_transaction
@transaction.atomic
def assessment_record(
    *,
    patient: Patient,
    recorded_at: datetime,
    vitals: dict,
    neuro: dict,
    exam: dict | None = None,
    urine_ml: int | None = None,
    urine_since: datetime | None = None,
    weight_kg: Decimal | None = None,
    confirm: bool = False,
    confirm_reason: str = "",
    dose_id: int | None = None,
    by,
    now: datetime,
) -> DoseEvaluation | None:
    """Record a pre-dose assessment (vitals with rhythm, pressors and O2; neuro; the bedside exam; the urine since
    the last slot; the weight) and evaluate the dose on it at once (HOLD-RULES §3: "whenever new data for the
    patient arrives").

    Every part is validated by its monitoring service; all their errors are raised together as one Invalid (field
    names as on the assessment form) and then nothing is stored. `confirm` and `confirm_reason` confirm an
    implausible urine or weight (INV-PLAUSIBLE); the error says which fields a confirmation would store. Returns the
    dose's new evaluation (the given dose, else the patient's next open slot), or None when there is no open slot.
    """
    errors: dict[str, list[str]] = {}
    confirmable: set[str] = set()
    confirmation = {"confirm": confirm, "confirm_reason": confirm_reason}

    def attempt(service, rename=None, **kwargs):
        try:
            with transaction.atomic():  # a savepoint: a refused part leaves no row behind
                return service(patient=patient, by=by, now=now, **kwargs)
        except Invalid as exc:
            for field, messages in exc.errors.items():
                target = (rename or {}).get(field, field)
                known = errors.setdefault(target, [])
                known += [m for m in messages if m not in known]
            confirmable.update((rename or {}).get(field, field) for field in exc.confirmable)
            return None

    attempt(obs.vitals_record, recorded_at=recorded_at, **vitals)
    attempt(obs.neuro_record, recorded_at=recorded_at, **neuro)
    if exam is not None:
        attempt(obs.exam_record, recorded_at=recorded_at, **exam)
    if urine_ml is not None:  # the urine period's start alone (the form pre-fills it) records nothing
        if urine_since is None:
            errors.setdefault("urine_since", []).append("Give the start of the urine period.")
        elif "recorded_at" not in errors:
            attempt(
                obs.fluids_record,
                _FLUID_FIELDS,
                period_start=urine_since,
                period_end=recorded_at,
                urine_ml=urine_ml,
                **confirmation,
            )
    if weight_kg is not None:
        attempt(obs.weight_record, recorded_at=recorded_at, weight_kg=weight_kg, **confirmation)
    if errors:
        raise Invalid(errors, confirmable=confirmable)  # rolls back the parts that were accepted
    if dose_id is not None:
        return dose_evaluate(dose_id=dose_id, now=now, trigger="assessment")
    return patient_evaluate_next_dose(patient_id=patient.pk, now=now)


TEACHING_KEYS = tuple(key for key, _ in TeachingRecord.ITEMS)


@retry_transaction
@transaction.atomic
def teaching_record(*, course_id: int, items: dict, note: str = "", by, now: datetime) -> TeachingRecord:
    """Document the patient-teaching checklist of HOLD-RULES §5 for a course. A later entry is a new row (the
    newest one stands); nothing is edited in place."""
    unknown = sorted(set(items) - set(TEACHING_KEYS))
    if unknown:
        raise Invalid({"items": [f"Unknown checklist item(s): {', '.join(unknown)}"]})
    if any(not isinstance(value, bool) for value in items.values()):
        raise Invalid({"items": ["Each item is true or false."]})
    note = (note or "").strip()
    if not any(items.values()) and not note:
        raise Invalid({"items": ["Tick what was taught, or write a note."]})
    course = Course.objects.select_for_update(no_key=True).get(pk=course_id)  # il2ward.db: parents NO KEY
    record = TeachingRecord.objects.create(
        course=course, items={key: bool(items.get(key)) for key in TEACHING_KEYS}, note=note, by=by, at=now
    )
    audit(
        actor=by,
        action="teaching.record",
        obj=record,
        at=now,
        new={"course": course.pk, "items": record.items, "note": note},
    )
    return record
