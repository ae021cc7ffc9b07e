"""The response bodies of the course and dose endpoints, declared for the OpenAPI schema.

The views build these dicts by hand (scheduling/api/views.py, api_review.py: fewer queries than nested serializers);
these serializers only describe them. schemathesis checks every live response against them in CI
(tests/contract/), so a field added to a representation and not here is caught.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduling.models import AdverseEvent, Course, CycleDecision, Dose, DoseEvaluation, ResponseAssessment

S = serializers


@extend_schema_field({"type": "object", "additionalProperties": True})
class AnyObject(S.DictField):
    """A JSON object whose keys are data (grades by term, derived measures, checklist items)."""


def _local(help_text: str = "The same time in the ward's zone, with its offset.") -> S.DateTimeField:
    return S.DateTimeField(help_text=help_text)


class SignatureOut(S.Serializer):
    id = S.IntegerField()
    printed_name = S.CharField()
    meaning = S.CharField()
    signed_at = S.DateTimeField()
    record_hash = S.CharField()


class SignatureRowOut(SignatureOut):
    signed_local = _local()
    subject = S.CharField(help_text="What was signed.")
    state = S.CharField(help_text="Whether the signed record still matches its hash.")


class FindingOut(S.Serializer):
    rule = S.CharField(help_text="Rule id (HOLD-RULES.md), e.g. CV-SBP.")
    level = S.ChoiceField(choices=["discontinue", "stop", "hold", "notify"])
    value = S.CharField(help_text='The value seen, for display ("85 mmHg").')
    threshold = S.CharField(help_text='The threshold crossed, for display ("< 90 mmHg").')
    message = S.CharField()
    measure = S.CharField(allow_null=True, required=False, help_text="The compared number, exact.")
    worse = S.ChoiceField(choices=["lower", "higher"], allow_null=True, required=False)


class EvaluationOut(S.Serializer):
    id = S.IntegerField()
    decision = S.ChoiceField(choices=DoseEvaluation.Decision.choices)
    findings = FindingOut(many=True)
    missing = S.ListField(child=S.CharField(), help_text="Inputs missing or stale for the decision.")
    grades = AnyObject(help_text="CTCAE grades by term.")
    measures = AnyObject(help_text="Derived values: weight gain %, urine 8 h, ...")
    rule_set = S.CharField(help_text="Rule set name and version.")
    observations_used = S.ListField(child=S.CharField(), help_text="Source ids of the observations read.")
    trigger = S.CharField()
    evaluated_at = S.DateTimeField()
    as_of = S.DateTimeField(help_text="The clinical time it was evaluated for.")


class AdministrationOut(S.Serializer):
    id = S.IntegerField()
    started_at = S.DateTimeField()
    ended_at = S.DateTimeField(allow_null=True)
    dose_iu = S.IntegerField()
    given_by = S.CharField()
    verified_by = S.CharField()
    timing = S.CharField(help_text="On time, early or late against the due time.")


class DoseOut(S.Serializer):
    id = S.IntegerField()
    course = S.IntegerField()
    cycle = S.IntegerField()
    number = S.IntegerField()
    due_at = S.DateTimeField()
    due_local = _local()
    status = S.ChoiceField(choices=Dose.Status.choices)
    flag = S.ChoiceField(choices=[c for c in Dose.Flag.values if c], allow_null=True)
    evaluation = EvaluationOut(allow_null=True, help_text="The latest evaluation; null before the first.")
    administration = AdministrationOut(allow_null=True, help_text="The standing administration, if given.")


class OrderOut(S.Serializer):
    """What the second nurse calculates from (the order and SCH-PREP's rules); never the computed dose."""

    dosing_weight_kg = S.CharField(help_text="Decimal, kg.")
    dosing_weight_source = S.CharField()
    iu_per_kg = S.IntegerField()
    vial_iu = S.IntegerField()
    reconstitution_ml = S.CharField(help_text="Decimal, mL of sterile water per vial.")
    concentration_iu_per_ml = S.IntegerField()


class DoubleCheckOut(S.Serializer):
    id = S.IntegerField()
    dose = S.IntegerField()
    patient = S.IntegerField()
    cycle = S.IntegerField()
    number = S.IntegerField()
    due_at = S.DateTimeField()
    status = S.ChoiceField(
        choices=["pending", "accepted", "refused", "cancelled", "expired"],
        help_text="expired: still pending when the dose's window closed (due + W).",
    )
    requested_by = S.CharField()
    requested_at = S.DateTimeField()
    expires_at = S.DateTimeField(help_text="The dose's window end (due + W): it cannot be accepted after.")
    expires_local = _local()
    started_at = S.DateTimeField()
    ended_at = S.DateTimeField(allow_null=True)
    vial_lot = S.CharField(allow_blank=True)
    reconstituted_at = S.DateTimeField(allow_null=True)
    decided_by = S.CharField(allow_null=True)
    decided_at = S.DateTimeField(allow_null=True)
    refused_reason = S.CharField(allow_blank=True)
    mismatches = S.IntegerField(help_text="Doses typed by a second nurse that did not match.")
    administration = S.IntegerField(allow_null=True)
    order = OrderOut()


class HoldOut(S.Serializer):
    reason = S.CharField()
    rules = S.ListField(child=S.CharField())
    automatic = S.BooleanField()
    note = S.CharField(allow_blank=True)
    by = S.CharField(allow_null=True)
    at = S.DateTimeField()


class OverrideOut(S.Serializer):
    id = S.IntegerField()
    evaluation = S.IntegerField()
    reason = S.CharField()
    covers = S.ListField(child=AnyObject(), help_text="The hold findings it was signed against.")
    lapsed_at = S.DateTimeField(allow_null=True)
    lapsed_by_evaluation = S.IntegerField(allow_null=True)
    signature = SignatureOut()


class DoseDetailOut(DoseOut):
    hold = HoldOut(allow_null=True)
    overrides = OverrideOut(many=True)


class OverrideCreatedOut(S.Serializer):
    id = S.IntegerField()
    dose = S.IntegerField()
    evaluation = S.IntegerField()
    reason = S.CharField()
    signature = SignatureOut()


class AdministrationCorrectedOut(S.Serializer):
    id = S.IntegerField()
    dose = S.IntegerField()
    entered_in_error_at = S.DateTimeField()


class EligibilityOut(S.Serializer):
    attested = S.BooleanField()
    items = AnyObject(help_text="Checklist key → true (HOLD-RULES §2).")
    signed_at = S.DateTimeField(allow_null=True)
    signed_by = S.CharField(allow_null=True)


class CycleOut(S.Serializer):
    number = S.IntegerField()
    first_due_at = S.DateTimeField()
    last_due_at = S.DateTimeField()


class CountsOut(S.Serializer):
    scheduled = S.IntegerField()
    given = S.IntegerField()
    held = S.IntegerField()
    missed = S.IntegerField()
    cancelled = S.IntegerField()


class PreparationOut(S.Serializer):
    volume_ml = S.CharField(help_text="Decimal, as a string.")
    vials = S.IntegerField()
    diluent = S.CharField()
    diluent_ml = S.IntegerField()
    rate_ml_h = S.CharField(help_text="Decimal, as a string.")
    infusion_minutes = S.IntegerField()
    in_line_filter = S.BooleanField()


class CourseOut(S.Serializer):
    id = S.IntegerField()
    patient = S.IntegerField()
    ward = S.CharField()
    regimen = S.CharField()
    status = S.ChoiceField(choices=Course.Status.choices)
    dose_iu = S.IntegerField(
        allow_null=True,
        help_text="The computed dose per slot (SCH-DOSE); null for a nurse or charge nurse, who may be a dose's second "
        "checker (blind double check: she gets `order` and calculates it herself).",
    )
    dosing_weight_kg = S.CharField(help_text="Decimal, as a string.")
    dosing_weight_source = S.ChoiceField(choices=Course.WeightSource.choices)
    baseline_weight_kg = S.CharField(help_text="Decimal, as a string.")
    first_dose_at = S.DateTimeField()
    first_dose_local = _local()
    rule_set = S.CharField()
    weight_confirmed_reason = S.CharField(allow_null=True)
    course_discontinued = S.BooleanField()
    discontinued_at = S.DateTimeField(allow_null=True)
    eligibility = EligibilityOut()
    cycles = CycleOut(many=True)
    counts = CountsOut()
    preparation = PreparationOut(allow_null=True, help_text="Null for a nurse or charge nurse (blind double check).")
    order = OrderOut(help_text="The order the dose is calculated from (weight, IU/kg, SCH-PREP's rules).")


class CycleDecisionOut(S.Serializer):
    id = S.IntegerField()
    course = S.IntegerField()
    cycle = S.IntegerField()
    dose = S.IntegerField()
    choice = S.ChoiceField(choices=CycleDecision.Choice.values)
    reason = S.CharField()
    signature = SignatureOut()


class Cycle2Out(S.Serializer):
    id = S.IntegerField()
    cycle2_first_at = S.DateTimeField(allow_null=True)
    cycle2_first_local = S.DateTimeField(allow_null=True, help_text="In the ward's zone, with its offset.")


class DischargeOut(S.Serializer):
    id = S.IntegerField()
    discharge_date = S.DateField()


class ResponseOut(S.Serializer):
    id = S.IntegerField()
    course = S.IntegerField()
    assessed_on = S.DateField()
    response = S.ChoiceField(choices=ResponseAssessment.Response.values)
    note = S.CharField(allow_blank=True)
    signature = SignatureOut()


class AdverseEventOut(S.Serializer):
    id = S.IntegerField()
    course = S.IntegerField()
    category = S.ChoiceField(choices=AdverseEvent.Category.values)
    term = S.CharField()
    grade = S.IntegerField()
    onset_at = S.DateTimeField()
    onset_local = _local()
    resolved_at = S.DateTimeField(allow_null=True)
    note = S.CharField(allow_blank=True)
    held_doses = S.ListField(child=S.IntegerField())
    entered_in_error_at = S.DateTimeField(allow_null=True)


class RetreatmentOut(S.Serializer):
    allowed = S.BooleanField()
    earliest_date = S.DateField(allow_null=True)
    reasons = S.ListField(child=S.CharField())
