"""The course's signatures: what each signed, and whether the record still matches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from il2ward.audit import record_hash
from il2ward.models import Signature
from monitoring.models import LabResult
from scheduling.domain import signed_records
from scheduling.domain.eligibility import ELIGIBILITY_CREATININE_HOURS
from scheduling.models import Course


@dataclass
class SignatureRow:
    signature: Signature
    signed_local: datetime
    subject: str
    state: str  # valid | changed | superseded | unchecked
    anchor: str = ""

    @property
    def state_text(self) -> str:
        return {
            "valid": "Matches the record",
            "changed": "Changed after signing",
            "superseded": "Superseded by a later signature",
            "unchecked": "Not checked here",
        }[self.state]


def signature_rows(course, doses, overrides, cycle_decisions, responses, *, zone) -> list[SignatureRow]:
    """Every signature on the course or its doses, each compared with the hash of its record rebuilt now."""
    labels = {d.pk: d.label for d in doses}
    rows = list(
        Signature.objects.filter(
            Q(object_type="scheduling.course", object_id=str(course.pk))
            | Q(object_type="scheduling.dose", object_id__in=[str(d.pk) for d in doses])
        ).order_by("signed_at", "pk")
    )
    by_override = {o.signature_id: o for o in overrides}
    by_decision = {d.signature_id: d for d in cycle_decisions}
    by_response = {r.signature_id: r for r in responses}
    latest_course_sig = {sig.meaning: sig.pk for sig in rows if sig.object_type == "scheduling.course"}
    out = []
    for sig in rows:
        subject, record, anchor = _what_was_signed(sig, course, labels, by_override, by_decision, by_response)
        superseded = sig.object_type == "scheduling.course" and latest_course_sig.get(sig.meaning) != sig.pk
        out.append(SignatureRow(sig, sig.signed_at.astimezone(zone), subject, _state(sig, record, superseded), anchor))
    return out


def _what_was_signed(sig, course, labels, by_override, by_decision, by_response) -> tuple[str, dict | None, str]:
    """The signature's subject as the page prints it, its record rebuilt from the rows now (None: not checked here)
    and the page anchor of what it signed."""
    if sig.pk == course.eligibility_signature_id:
        return "Eligibility (HOLD-RULES §2)", _eligibility_record(course, sig), "eligibility"
    if sig.pk in by_override:
        o = by_override[sig.pk]
        record = signed_records.record_override(
            dose_id=o.dose_id, evaluation_id=o.evaluation_id, covers=o.covers, reason=o.reason
        )
        return f"Override · {labels.get(o.dose_id, '')}", record, f"dose-{o.dose_id}"
    if sig.pk in by_decision:
        d = by_decision[sig.pk]
        subject = f"Cycle {d.cycle} {d.get_choice_display().lower()} · after {labels.get(d.dose_id, '')}"
        return subject, signed_records.record_cycle_decision(d), f"dose-{d.dose_id}"
    if sig.pk in by_response:
        return "Response assessment", signed_records.record_response(by_response[sig.pk]), "response"
    if sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.COURSE_STOP:
        return "Course stopped", {"course": course.pk, "reason": course.stop_reason}, ""
    if sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.CYCLE2_MOVE:
        return "Cycle 2 start", signed_records.record_cycle2(course), "cycle2"
    if sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.DISCHARGE:
        return "Discharge date", signed_records.record_discharge(course), "discharge"
    return sig.meaning, None, ""


def _state(sig: Signature, record: dict | None, superseded: bool) -> str:
    if record is None:
        return "unchecked"
    if record_hash(record) == sig.record_hash:
        return "valid"
    if superseded:
        return "superseded"  # a later signature of the same decision replaced this one
    return "changed"


def _eligibility_record(course: Course, signature: Signature) -> dict:
    """services.course_attest_eligibility's record, rebuilt: the creatinine it read is the latest standing result of
    the 72 h before signing that existed then (one query)."""
    creatinine = (
        LabResult.objects.filter(
            patient_id=course.patient_id,
            creatinine_mg_dl__isnull=False,
            entered_in_error_at__isnull=True,
            recorded_at__gte=signature.signed_at - timedelta(hours=ELIGIBILITY_CREATININE_HOURS),
            recorded_at__lte=signature.signed_at,
            created_at__lte=signature.signed_at,
        )
        .order_by("-recorded_at", "-pk")
        .values_list("creatinine_mg_dl", flat=True)
        .first()
    )
    return {
        "course": course.pk,
        "patient": course.patient_id,
        "items": course.eligibility_items,
        "creatinine_mg_dl": creatinine,
    }
