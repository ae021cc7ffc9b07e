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
    dose_ids = [str(d.pk) for d in doses]
    labels = {d.pk: d.label for d in doses}
    rows = list(
        Signature.objects.filter(
            Q(object_type="scheduling.course", object_id=str(course.pk))
            | Q(object_type="scheduling.dose", object_id__in=dose_ids)
        ).order_by("signed_at", "pk")
    )
    by_override = {o.signature_id: o for o in overrides}
    by_decision = {d.signature_id: d for d in cycle_decisions}
    by_response = {r.signature_id: r for r in responses}
    latest_course_sig = {}
    for sig in rows:
        if sig.object_type == "scheduling.course":
            latest_course_sig[sig.meaning] = sig.pk
    out = []
    for sig in rows:
        subject, record, anchor = sig.meaning, None, ""
        if sig.pk == course.eligibility_signature_id:
            subject, record, anchor = "Eligibility (HOLD-RULES §2)", _eligibility_record(course, sig), "eligibility"
        elif sig.pk in by_override:
            o = by_override[sig.pk]
            record = signed_records.record_override(
                dose_id=o.dose_id, evaluation_id=o.evaluation_id, covers=o.covers, reason=o.reason
            )
            subject, anchor = f"Override · {labels.get(o.dose_id, '')}", f"dose-{o.dose_id}"
        elif sig.pk in by_decision:
            d = by_decision[sig.pk]
            subject = f"Cycle {d.cycle} {d.get_choice_display().lower()} · after {labels.get(d.dose_id, '')}"
            record, anchor = signed_records.record_cycle_decision(d), f"dose-{d.dose_id}"
        elif sig.pk in by_response:
            record, subject, anchor = (
                signed_records.record_response(by_response[sig.pk]),
                "Response assessment",
                "response",
            )
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.COURSE_STOP:
            record, subject = {"course": course.pk, "reason": course.stop_reason}, "Course stopped"
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.CYCLE2_MOVE:
            record, subject, anchor = signed_records.record_cycle2(course), "Cycle 2 start", "cycle2"
        elif sig.object_type == "scheduling.course" and sig.meaning == Signature.Meaning.DISCHARGE:
            record, subject, anchor = signed_records.record_discharge(course), "Discharge date", "discharge"
        if record is None:
            state = "unchecked"
        elif record_hash(record) == sig.record_hash:
            state = "valid"
        elif sig.object_type == "scheduling.course" and latest_course_sig.get(sig.meaning) != sig.pk:
            state = "superseded"  # a later signature of the same decision replaced this one
        else:
            state = "changed"
        out.append(SignatureRow(sig, sig.signed_at.astimezone(zone), subject, state, anchor))
    return out


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
