"""Course and dose endpoints (API.md: Patients and courses, Doses)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.api import AwareDateTimeField, validated
from il2ward.models import Role
from il2ward.timefmt import iso_z, local_iso
from monitoring.domain.bounds import WEIGHT_KG
from scheduling import selectors, services
from scheduling.api import serializers as out
from scheduling.models import Course, Dose
from scheduling.selectors import double_checks as checks

# An e-signature's password as typed (never trimmed), in every signed request of this API.
PASSWORD = {"max_length": 200, "trim_whitespace": False}


class CourseCreateSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    first_dose_at = AwareDateTimeField()
    dosing_weight_kg = serializers.DecimalField(
        max_digits=5, decimal_places=WEIGHT_KG.places, min_value=WEIGHT_KG.low, max_value=WEIGHT_KG.high
    )
    dosing_weight_source = serializers.ChoiceField(choices=Course.WeightSource.choices, default="actual")
    baseline_weight_kg = serializers.DecimalField(
        max_digits=5,
        decimal_places=WEIGHT_KG.places,
        min_value=WEIGHT_KG.low,
        max_value=WEIGHT_KG.high,
        required=False,
    )
    regimen = serializers.ChoiceField(choices=["hd-il2"], default="hd-il2")
    rule_set = serializers.ChoiceField(choices=["consensus-2014", "label-only"], required=False)
    confirm = serializers.BooleanField(required=False, default=False)
    confirm_reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


def dose_representation(dose: Dose, zone, *, administration=None) -> dict:
    """The dose as the API shows it; `administration`: its standing administration when the caller holds it (read
    otherwise)."""
    return {
        "id": dose.pk,
        "course": dose.course_id,
        "cycle": dose.cycle,
        "number": dose.number,
        "due_at": iso_z(dose.due_at),
        "due_local": local_iso(dose.due_at, zone),
        "status": dose.status,
        "flag": dose.flag or None,
        "evaluation": evaluation_representation(dose.latest_evaluation),
        "administration": administration_representation(administration or selectors.standing_administration(dose)),
    }


def evaluation_representation(evaluation) -> dict | None:
    if evaluation is None:
        return None
    return {
        "id": evaluation.pk,
        "decision": evaluation.decision,
        "findings": evaluation.findings,
        "missing": evaluation.missing,
        "grades": evaluation.grades,
        "measures": evaluation.measures,
        "rule_set": str(evaluation.rule_set),
        "observations_used": evaluation.observations_used,
        "trigger": evaluation.trigger,
        "evaluated_at": iso_z(evaluation.evaluated_at),
        "as_of": iso_z(evaluation.as_of or evaluation.evaluated_at),
    }


def consequences_representation(dose: Dose) -> dict:
    """The standing hold and the overrides of one dose (two queries; the dose detail only)."""
    hold = selectors.standing_hold(dose)
    return {
        "hold": None
        if hold is None
        else {
            "reason": hold.reason,
            "rules": hold.rule_ids,
            "automatic": hold.automatic,
            "note": hold.note,
            "by": hold.by.get_username() if hold.by else None,
            "at": iso_z(hold.at),
        },
        "overrides": [
            {
                "id": o.pk,
                "evaluation": o.evaluation_id,
                "reason": o.reason,
                "covers": o.covers,
                "lapsed_at": iso_z(o.lapsed_at),
                "lapsed_by_evaluation": o.lapsed_by_id,
                "signature": signature_representation(o.signature),
            }
            for o in selectors.dose_overrides(dose)
        ],
    }


def administration_representation(adm) -> dict | None:
    if adm is None:
        return None
    return {
        "id": adm.pk,
        "started_at": iso_z(adm.started_at),
        "ended_at": iso_z(adm.ended_at),
        "dose_iu": adm.dose_iu,
        "given_by": adm.given_by.get_username(),
        "verified_by": adm.verified_by.get_username(),
        "timing": adm.timing,
        "early_reason": adm.early_reason,
    }


def course_representation(course: Course, summary: selectors.CourseSummary, *, user) -> dict:
    """A nurse (any of whom may be a dose's second checker) gets the order and never the computed dose: `dose_iu`
    and `preparation` are null for her (scheduling.selectors.double_checks.sees_computed_dose)."""
    zone = course.patient.ward.zone
    prep = summary.preparation
    sees_dose = checks.sees_computed_dose(user)
    order = checks.order_of(course)
    return {
        "id": course.pk,
        "patient": course.patient_id,
        "ward": course.patient.ward.code,
        "regimen": course.regimen,
        "status": course.status,
        "dose_iu": course.dose_iu if sees_dose else None,
        "dosing_weight_kg": str(course.dosing_weight_kg),
        "dosing_weight_source": course.dosing_weight_source,
        "baseline_weight_kg": str(course.baseline_weight_kg),
        "first_dose_at": iso_z(course.first_dose_at),
        "first_dose_local": local_iso(course.first_dose_at, zone),
        "rule_set": str(course.rule_set),
        "weight_confirmed_reason": course.weight_confirmed_reason or None,
        "course_discontinued": course.discontinued_at is not None,
        "discontinued_at": iso_z(course.discontinued_at),
        "eligibility": {
            "attested": course.eligibility_attested,
            "items": course.eligibility_items,
            "signed_at": iso_z(course.eligibility_signature.signed_at) if course.eligibility_signature else None,
            "signed_by": course.eligibility_signature.printed_name if course.eligibility_signature else None,
        },
        "cycles": [
            {"number": c.number, "first_due_at": iso_z(c.first_due_at), "last_due_at": iso_z(c.last_due_at)}
            for c in summary.cycles
        ],
        "counts": summary.counts,
        "preparation": {
            "volume_ml": str(prep.volume_ml),
            "vials": prep.vials,
            "diluent": prep.diluent,
            "diluent_ml": prep.diluent_ml,
            "rate_ml_h": str(prep.rate_ml_h),
            "infusion_minutes": prep.infusion_minutes,
            "in_line_filter": prep.in_line_filter,
        }
        if sees_dose
        else None,
        "order": checks.order_representation(order),
    }


class CourseCreate(APIView):
    @extend_schema(request=CourseCreateSerializer, responses={201: out.CourseOut})
    def post(self, request):
        access.require_role(request.user, Role.ONCOLOGIST)
        data = validated(CourseCreateSerializer, request)
        try:
            patient = access.patient_for(request.user, data["patient"])
        except Http404:
            return Response({"errors": {"patient": ["No such patient."]}}, status=status.HTTP_400_BAD_REQUEST)
        course = services.course_create(
            patient=patient,
            first_dose_at=data["first_dose_at"],
            dosing_weight_kg=data["dosing_weight_kg"],
            dosing_weight_source=data["dosing_weight_source"],
            baseline_weight_kg=data.get("baseline_weight_kg"),
            rule_set_name=data.get("rule_set"),
            confirm=data["confirm"],
            confirm_reason=data["confirm_reason"],
            by=request.user,
            now=timezone.now(),
        )
        course = selectors.course_for(request.user, course.pk)
        body = course_representation(course, selectors.course_summary(course), user=request.user)
        return Response(body, status=status.HTTP_201_CREATED)


class CourseDetail(APIView):
    @extend_schema(
        responses={200: out.CourseOut},
        description="A course: status, dose, preparation, eligibility, cycles and dose counts (API.md).",
    )
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        return Response(course_representation(course, selectors.course_summary(course), user=request.user))


class CourseDoses(APIView):
    @extend_schema(
        responses={200: out.DoseOut(many=True)},
        description="The course's 28 dose slots with their latest evaluation and administration.",
    )
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        zone = course.patient.ward.zone
        return Response([dose_representation(d, zone) for d in selectors.course_doses(course)])


class DoseDetail(APIView):
    @extend_schema(
        responses={200: out.DoseDetailOut},
        description="One dose: due time (UTC and ward-local), status, flag, latest evaluation, administration, "
        "the standing hold and any overrides.",
    )
    def get(self, request, pk: int):
        dose = selectors.dose_for(request.user, pk)
        return Response(
            {**dose_representation(dose, dose.course.patient.ward.zone), **consequences_representation(dose)}
        )


class EvaluateDose(APIView):
    """Evaluate the dose's hold rules now from the patient's latest data; the evaluation is stored.

    Findings by rule id with value and threshold, the rule set and version, and the ids of the observations read."""

    @extend_schema(request=None, responses={200: out.EvaluationOut})
    def post(self, request, pk: int):
        dose_id = selectors.visible_dose_id(request.user, pk)
        evaluation = services.dose_evaluate(dose_id=dose_id, now=timezone.now(), trigger="api")
        return Response(evaluation_representation(evaluation))


class AdministerSerializer(serializers.Serializer):
    started_at = AwareDateTimeField()
    ended_at = AwareDateTimeField(required=False, allow_null=True)
    verifier = serializers.CharField(max_length=150)
    verifier_password = serializers.CharField(**PASSWORD)
    verified_dose_iu = serializers.IntegerField(min_value=1)
    vial_lot = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    reconstituted_at = AwareDateTimeField(required=False, allow_null=True)
    early_reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when started_at is more than IL2WARD_ON_TIME_MINUTES before due (400 otherwise).",
    )


class AdministerDose(APIView):
    """Chart the dose as given (nurse), with the second nurse's blind double check. 409 codes in API.md."""

    @extend_schema(request=AdministerSerializer, responses={201: out.DoseOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.NURSE, Role.CHARGE_NURSE)
        dose_id = selectors.visible_dose_id(request.user, pk)
        data = validated(AdministerSerializer, request)
        adm = services.dose_administer(
            dose_id=dose_id,
            by=request.user,
            started_at=data["started_at"],
            ended_at=data.get("ended_at"),
            verifier_username=data["verifier"],
            verifier_password=data["verifier_password"],
            verified_dose_iu=data["verified_dose_iu"],
            vial_lot=data.get("vial_lot", ""),
            reconstituted_at=data.get("reconstituted_at"),
            early_reason=data.get("early_reason", ""),
            now=timezone.now(),
        )
        # The dose as the service locked and charted it, not read again (charting is the hot path).
        dose = adm.dose
        dose.latest_evaluation = selectors.latest_evaluation_of(dose)
        body = dose_representation(dose, dose.course.patient.ward.zone, administration=adm)
        return Response(body, status=status.HTTP_201_CREATED)


class HoldSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=64)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class HoldDose(APIView):
    @extend_schema(request=HoldSerializer, responses={200: out.DoseDetailOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST)
        dose = selectors.dose_for(request.user, pk)
        data = validated(HoldSerializer, request)
        services.dose_hold(dose_id=dose.pk, by=request.user, now=timezone.now(), **data)
        dose = selectors.dose_for(request.user, pk)
        return Response(
            {**dose_representation(dose, dose.course.patient.ward.zone), **consequences_representation(dose)}
        )


class SignedReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    password = serializers.CharField(**PASSWORD)


class OverrideDose(APIView):
    """An oncologist lifts a `hold` decision for this slot (e-signed: password required). Never a `stop`."""

    @extend_schema(request=SignedReasonSerializer, responses={201: out.OverrideCreatedOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.ONCOLOGIST)
        dose = selectors.dose_for(request.user, pk)
        data = validated(SignedReasonSerializer, request)
        override = services.dose_override(dose_id=dose.pk, by=request.user, now=timezone.now(), **data)
        return Response(
            {
                "id": override.pk,
                "dose": dose.pk,
                "evaluation": override.evaluation_id,
                "reason": override.reason,
                "signature": signature_representation(override.signature),
            },
            status=status.HTTP_201_CREATED,
        )


def signature_representation(signature) -> dict:
    return {
        "id": signature.pk,
        "printed_name": signature.printed_name,
        "meaning": signature.meaning,
        "signed_at": iso_z(signature.signed_at),
        "record_hash": signature.record_hash,
    }


class EnteredInError(APIView):
    @extend_schema(request=SignedReasonSerializer, responses={200: out.AdministrationCorrectedOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST)
        adm = selectors.administration_for(request.user, pk)
        data = validated(SignedReasonSerializer, request)
        adm = services.administration_enter_in_error(
            administration_id=adm.pk, by=request.user, now=timezone.now(), **data
        )
        return Response({"id": adm.pk, "dose": adm.dose_id, "entered_in_error_at": iso_z(adm.entered_in_error_at)})


class EligibilitySerializer(serializers.Serializer):
    items = serializers.DictField(child=serializers.BooleanField())
    password = serializers.CharField(**PASSWORD)


class CourseEligibility(APIView):
    """Attest eligibility (HOLD-RULES §2), e-signed. Every checklist key must be true."""

    @extend_schema(request=EligibilitySerializer, responses={200: out.CourseOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.ONCOLOGIST)
        course = selectors.course_for(request.user, pk)
        data = validated(EligibilitySerializer, request)
        services.course_attest_eligibility(course_id=course.pk, by=request.user, now=timezone.now(), **data)
        course = selectors.course_for(request.user, pk)
        return Response(course_representation(course, selectors.course_summary(course), user=request.user))


class CourseStop(APIView):
    @extend_schema(request=SignedReasonSerializer, responses={200: out.CourseOut})
    def post(self, request, pk: int):
        access.require_role(request.user, Role.ONCOLOGIST)
        course = selectors.course_for(request.user, pk)
        data = validated(SignedReasonSerializer, request)
        services.course_stop(course_id=course.pk, by=request.user, now=timezone.now(), **data)
        course = selectors.course_for(request.user, pk)
        return Response(course_representation(course, selectors.course_summary(course), user=request.user))
