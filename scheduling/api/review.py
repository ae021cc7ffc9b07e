"""API for the course review's decisions, beside API.md's course and dose endpoints.

Same contract: 400 {"errors": {field: [...]}}, 403 role, 404 not visible, 409 {"code", "detail"}; signed requests carry
"password" (the e-signature). Times in UTC with Z; `*_local` in the ward's zone.
"""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.api import AwareDateTimeField, validated
from il2ward.errors import Invalid
from il2ward.models import NURSING_ROLES, Role
from il2ward.timefmt import iso_z, local_iso
from scheduling import selectors
from scheduling.api import serializers as out
from scheduling.api.views import PASSWORD, signature_representation
from scheduling.models import AdverseEvent, CycleDecision, ResponseAssessment
from scheduling.selectors import review
from scheduling.services import decisions


class CycleDecisionSerializer(serializers.Serializer):
    dose = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=CycleDecision.Choice.values)
    reason = serializers.CharField(max_length=2000)
    password = serializers.CharField(**PASSWORD)


class CycleDecisions(APIView):
    """Continue or stop the cycle after a `stop` recommendation (oncologist, e-signed); stop cancels its open slots."""

    @extend_schema(request=CycleDecisionSerializer, responses={201: out.CycleDecisionOut})
    def post(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        access.require_role(request.user, Role.ONCOLOGIST)
        data = validated(CycleDecisionSerializer, request)
        if not course.doses.filter(pk=data["dose"]).exists():
            raise Invalid({"dose": ["No such dose in this course."]})
        decision = decisions.cycle_decide(
            dose_id=data["dose"],
            choice=data["choice"],
            reason=data["reason"],
            password=data["password"],
            by=request.user,
            now=timezone.now(),
        )
        body = {
            "id": decision.pk,
            "course": course.pk,
            "cycle": decision.cycle,
            "dose": decision.dose_id,
            "choice": decision.choice,
            "reason": decision.reason,
            "signature": signature_representation(decision.signature),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class Cycle2Serializer(serializers.Serializer):
    first_at = AwareDateTimeField()
    reason = serializers.CharField(max_length=2000)
    password = serializers.CharField(**PASSWORD)


class Cycle2(APIView):
    """Move cycle 2 (SCH-CYCLE2: not before 9 full rest days after cycle 1), oncologist, e-signed."""

    @extend_schema(request=Cycle2Serializer, responses={200: out.Cycle2Out})
    def post(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        access.require_role(request.user, Role.ONCOLOGIST)
        data = validated(Cycle2Serializer, request)
        course = decisions.cycle2_move(course_id=course.pk, by=request.user, now=timezone.now(), **data)
        zone = course.patient.ward.zone
        return Response(
            {
                "id": course.pk,
                "cycle2_first_at": iso_z(course.cycle2_first_at),
                "cycle2_first_local": local_iso(course.cycle2_first_at, zone),
            }
        )


class DischargeSerializer(serializers.Serializer):
    discharge_date = serializers.DateField()
    password = serializers.CharField(**PASSWORD)


class Discharge(APIView):
    """Record the discharge date (SCH-RETREAT counts from it), oncologist, e-signed."""

    @extend_schema(request=DischargeSerializer, responses={200: out.DischargeOut})
    def post(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        access.require_role(request.user, Role.ONCOLOGIST)
        data = validated(DischargeSerializer, request)
        course = decisions.course_discharge(course_id=course.pk, by=request.user, now=timezone.now(), **data)
        return Response({"id": course.pk, "discharge_date": course.discharge_date.isoformat()})


class ResponseSerializer(serializers.Serializer):
    assessed_on = serializers.DateField()
    response = serializers.ChoiceField(choices=ResponseAssessment.Response.values)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    password = serializers.CharField(**PASSWORD)


def response_representation(assessment: ResponseAssessment) -> dict:
    return {
        "id": assessment.pk,
        "course": assessment.course_id,
        "assessed_on": assessment.assessed_on.isoformat(),
        "response": assessment.response,
        "note": assessment.note,
        "signature": signature_representation(assessment.signature),
    }


class ResponseAssessments(APIView):
    """The response assessment after the course (due ~28 days after it ends), oncologist, e-signed."""

    @extend_schema(responses={200: out.ResponseOut(many=True)})
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        rows = course.response_assessments.select_related("signature")
        return Response([response_representation(r) for r in rows])

    @extend_schema(request=ResponseSerializer, responses={201: out.ResponseOut})
    def post(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        access.require_role(request.user, Role.ONCOLOGIST)
        data = validated(ResponseSerializer, request)
        assessment = decisions.response_assess(course_id=course.pk, by=request.user, now=timezone.now(), **data)
        return Response(response_representation(assessment), status=status.HTTP_201_CREATED)


class AdverseEventSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=AdverseEvent.Category.values)
    term = serializers.CharField(max_length=200)
    grade = serializers.IntegerField(min_value=1, max_value=5)
    onset_at = AwareDateTimeField()
    resolved_at = AwareDateTimeField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    held_doses = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


def adverse_event_representation(event: AdverseEvent, zone) -> dict:
    return {
        "id": event.pk,
        "course": event.course_id,
        "category": event.category,
        "term": event.term,
        "grade": event.grade,
        "onset_at": iso_z(event.onset_at),
        "onset_local": local_iso(event.onset_at, zone),
        "resolved_at": iso_z(event.resolved_at),
        "note": event.note,
        "held_doses": sorted(d.pk for d in event.held_doses.all()),
        "entered_in_error_at": iso_z(event.entered_in_error_at),
    }


class AdverseEvents(APIView):
    """The course's adverse-event log (CTCAE term and grade, linked to the doses it caused to be held)."""

    @extend_schema(responses={200: out.AdverseEventOut(many=True)})
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        zone = course.patient.ward.zone
        rows = course.adverse_events.prefetch_related("held_doses").order_by("onset_at", "pk")
        return Response([adverse_event_representation(e, zone) for e in rows])

    @extend_schema(request=AdverseEventSerializer, responses={201: out.AdverseEventOut})
    def post(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        access.require_role(request.user, Role.ONCOLOGIST, *NURSING_ROLES)
        data = validated(AdverseEventSerializer, request)
        event = decisions.adverse_event_record(
            course_id=course.pk,
            category=data["category"],
            term=data["term"],
            grade=data["grade"],
            onset_at=data["onset_at"],
            resolved_at=data.get("resolved_at"),
            note=data["note"],
            held_dose_ids=data["held_doses"],
            by=request.user,
            now=timezone.now(),
        )
        return Response(adverse_event_representation(event, course.patient.ward.zone), status=201)


class Signatures(APIView):
    """Every e-signature on the course and its doses, with whether the signed record still matches its hash."""

    @extend_schema(responses={200: out.SignatureRowOut(many=True)})
    def get(self, request, pk: int):
        course = selectors.course_for(request.user, pk)
        rv = review.course_review(course, now=timezone.now())
        return Response(
            [
                {
                    **signature_representation(row.signature),
                    "signed_local": local_iso(row.signature.signed_at, rv.zone),
                    "subject": row.subject,
                    "state": row.state,
                }
                for row in rv.signatures
            ]
        )


class Retreatment(APIView):
    """SCH-RETREAT for a new course of this patient: may it start at `first_dose_at` (default now)?"""

    @extend_schema(
        parameters=[OpenApiParameter("first_dose_at", OpenApiTypes.DATETIME, required=False)],
        responses={200: out.RetreatmentOut},
    )
    def get(self, request, pk: int):
        patient = access.patient_for(request.user, pk)
        now = timezone.now()
        first = None
        if "first_dose_at" in request.query_params:
            field = AwareDateTimeField()
            try:
                first = field.to_internal_value(request.query_params["first_dose_at"])
            except serializers.ValidationError as exc:
                raise Invalid({"first_dose_at": list(exc.detail)}) from exc
        allowed, earliest, reasons = selectors.course_retreatment_check(patient, first, now)
        return Response(
            {"allowed": allowed, "earliest_date": earliest.isoformat() if earliest else None, "reasons": reasons}
        )
