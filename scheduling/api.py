"""Course and dose endpoints (API.md: Patients and courses, Doses)."""

from decimal import Decimal

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.api import AwareDateTimeField, iso_local, iso_z
from il2ward.models import Role
from scheduling import selectors, services
from scheduling.models import Course, Dose


class CourseCreateSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    first_dose_at = AwareDateTimeField()
    dosing_weight_kg = serializers.DecimalField(
        max_digits=5, decimal_places=1, min_value=Decimal(20), max_value=Decimal(350)
    )
    dosing_weight_source = serializers.ChoiceField(choices=Course.WeightSource.choices, default="actual")
    baseline_weight_kg = serializers.DecimalField(
        max_digits=5, decimal_places=1, min_value=Decimal(20), max_value=Decimal(350), required=False
    )
    regimen = serializers.ChoiceField(choices=["hd-il2"], default="hd-il2")
    rule_set = serializers.ChoiceField(choices=["consensus-2014", "label-only"], required=False)


def dose_representation(dose: Dose, zone) -> dict:
    return {
        "id": dose.pk,
        "course": dose.course_id,
        "cycle": dose.cycle,
        "number": dose.number,
        "due_at": iso_z(dose.due_at),
        "due_local": iso_local(dose.due_at, zone),
        "status": dose.status,
        "flag": dose.flag or None,
        "evaluation": evaluation_representation(dose.latest_evaluation),
        "administration": administration_representation(selectors.standing_administration(dose)),
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
        "rule_set": str(evaluation.rule_set),
        "evaluated_at": iso_z(evaluation.evaluated_at),
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
    }


def course_representation(course: Course, summary: selectors.CourseSummary) -> dict:
    zone = course.patient.ward.zone
    prep = summary.preparation
    return {
        "id": course.pk,
        "patient": course.patient_id,
        "ward": course.patient.ward.code,
        "regimen": course.regimen,
        "status": course.status,
        "dose_iu": course.dose_iu,
        "dosing_weight_kg": str(course.dosing_weight_kg),
        "dosing_weight_source": course.dosing_weight_source,
        "baseline_weight_kg": str(course.baseline_weight_kg),
        "first_dose_at": iso_z(course.first_dose_at),
        "first_dose_local": iso_local(course.first_dose_at, zone),
        "rule_set": str(course.rule_set),
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
        },
    }


class CourseCreate(APIView):
    @extend_schema(request=CourseCreateSerializer, responses={201: dict})
    def post(self, request):
        access.require_role(request.user, Role.ONCOLOGIST)
        serializer = CourseCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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
            by=request.user,
            now=timezone.now(),
        )
        course = selectors.course_for(request.user, course.pk)
        return Response(course_representation(course, selectors.course_summary(course)), status=status.HTTP_201_CREATED)


class CourseDetail(APIView):
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        return Response(course_representation(course, selectors.course_summary(course)))


class CourseDoses(APIView):
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        zone = course.patient.ward.zone
        return Response([dose_representation(d, zone) for d in selectors.course_doses(course)])


class DoseDetail(APIView):
    def get(self, request, pk: int):
        dose = selectors.dose_for(request.user, pk)
        return Response(dose_representation(dose, dose.course.patient.ward.zone))
