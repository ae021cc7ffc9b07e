"""FHIR in: POST /fhir/Observation and POST /fhir (a transaction Bundle). Token or session auth, as the API;
the caller may write only for patients on its wards (nurses) or any (oncologists), as for typed observations."""

from django.db import IntegrityError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.models import Role
from il2ward.parsers import BoundedJSONParser
from il2ward.renderers import FhirJSONRenderer
from inbound import fhir_in
from inbound.hl7v2 import Refusal

WRITE_ROLES = (Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST)


class FhirJSONParser(BoundedJSONParser):
    media_type = "application/fhir+json"


class _FhirIn(APIView):
    parser_classes = [FhirJSONParser, BoundedJSONParser, JSONParser]
    renderer_classes = [FhirJSONRenderer]

    def _receive(self, request, entries):
        access.require_role(request.user, *WRITE_ROLES)
        now = timezone.now()
        patients = access.visible_patients(request.user)
        try:
            try:
                results = fhir_in.receive(entries=entries, user=request.user, patients=patients, now=now)
            except IntegrityError:  # the same identifier committed by a concurrent retry: answered as stored
                results = fhir_in.receive(entries=entries, user=request.user, patients=patients, now=now)
        except Refusal as refusal:
            fhir_in.log_refusal(entries=entries, user=request.user, refusal=refusal, now=now)
            status = 422 if refusal.code not in ("invalid_resource", "missing_identifier") else 400
            return None, Response(fhir_in.operation_outcome(refusal), status=status)
        return results, None


def _location(stored: list[str]) -> str:
    return ",".join(f"Observation/{s.replace(':', '-')}" for s in stored)


class ObservationCreate(_FhirIn):
    @extend_schema(
        operation_id="fhir_observation_create",
        summary="Receive one FHIR Observation (vital-signs or laboratory) through the inbound code mapping",
        request={"application/fhir+json": OpenApiTypes.OBJECT},  # plain JSON is read too
        responses={
            201: OpenApiResponse(description="Stored (Location names the IL2Ward observations)."),
            200: OpenApiResponse(description="Already stored from this client under this identifier."),
            400: OpenApiResponse(description="OperationOutcome: not a valid Observation, or no identifier."),
            422: OpenApiResponse(description="OperationOutcome naming the element (patient, code, unit, value)."),
        },
    )
    def post(self, request):
        results, refused = self._receive(
            request, [(request.data, "Observation", request.headers.get("If-None-Exist", ""))]
        )
        if refused:
            return refused
        result = results[0]
        status = 201 if result["status"].startswith("201") else 200
        response = Response(
            {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational",
             "diagnostics": f"{result['status']}: {', '.join(result['stored'])}"}]},
            status=status,
        )  # fmt: skip
        response["Location"] = _location(result["stored"])
        return response


class Transaction(_FhirIn):
    @extend_schema(
        operation_id="fhir_transaction",
        summary="Receive a transaction Bundle of Observations: all stored or none",
        request={"application/fhir+json": OpenApiTypes.OBJECT},  # plain JSON is read too
        responses={200: OpenApiResponse(description="transaction-response Bundle"),
                   400: OpenApiResponse(description="OperationOutcome"),
                   422: OpenApiResponse(description="OperationOutcome naming the element")},
    )  # fmt: skip
    def post(self, request):
        access.require_role(request.user, *WRITE_ROLES)  # who may send, before what was sent
        try:
            entries = fhir_in.bundle_entries(request.data)
        except Refusal as refusal:
            return Response(fhir_in.operation_outcome(refusal), status=400)
        results, refused = self._receive(request, entries)
        if refused:
            return refused
        return Response(
            {
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [{"response": {"status": r["status"], "location": _location(r["stored"])}} for r in results],
            }
        )
