"""Export endpoints (API.md, Export): a course as a FHIR R4 Bundle, its slots as an iCalendar feed, and the per-user
secret feed links a calendar client subscribes to without a session.

Thin: authorise (the course through the caller's — or the link owner's — visible patients: 404 otherwise), load
(scheduling/export/records.py), build (scheduling/export/fhir.py, ics.py). The token endpoints answer JSON to API
clients and an HTML fragment to htmx (the course page's "Export and calendar" card).
"""

import hashlib

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access, feeds, people, security
from il2ward.errors import Invalid
from il2ward.models import Role
from il2ward.parsers import BoundedJSONParser
from il2ward.renderers import FhirJSONRenderer
from il2ward.timefmt import iso_z
from scheduling.export import fhir, ics, records

NOT_FOUND = OpenApiResponse(description="No such course, or its patient is not on the caller's wards.")


NOT_MODIFIED = OpenApiResponse(description="Not modified: the `If-None-Match` ETag is still current (no body).")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, required=False, description="The ETag of the copy you hold."
)


OPERATION_OUTCOME = inline_serializer(
    "OperationOutcome",
    {
        "resourceType": serializers.ChoiceField(choices=["OperationOutcome"]),
        "text": inline_serializer("Narrative", {"status": serializers.CharField(), "div": serializers.CharField()}),
        "issue": inline_serializer(
            "OperationOutcomeIssue",
            {
                "severity": serializers.CharField(),
                "code": serializers.CharField(),
                "diagnostics": serializers.CharField(),
            },
            many=True,
        ),
    },
)
FHIR_ERRORS = {
    401: "No or an invalid session or token (OperationOutcome, code `login`).",
    403: "The caller's role may not do this (code `forbidden`).",
    404: "No such course, or its patient is not on the caller's wards (code `not-found`).",
    406: "The Accept header asks for neither FHIR JSON nor JSON (code `not-supported`).",
}


class ICalendarRenderer(BaseRenderer):
    """Lets `Accept: text/calendar` through content negotiation; the calendar itself is sent as bytes, and an
    error body (404) is the usual JSON."""

    media_type = "text/calendar"
    format = "ics"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


# --- FHIR ---------------------------------------------------------------------------------------------------------


class CourseFhir(APIView):
    renderer_classes = (FhirJSONRenderer, JSONRenderer)

    def finalize_response(self, request, response, *args, **kwargs):
        """Every error here is an OperationOutcome; FHIR JSON carries its version in the content type."""
        if isinstance(response, Response) and response.status_code >= 400:
            data = response.data if isinstance(response.data, dict) else {}
            text = data.get("detail") or "; ".join(
                f"{field}: {' '.join(map(str, messages))}" for field, messages in data.get("errors", {}).items()
            )
            response.data = fhir.operation_outcome(response.status_code, str(text or response.status_text))
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(getattr(response, "accepted_renderer", None), FhirJSONRenderer):
            response.content_type = fhir.MEDIA_TYPE
        return response

    @extend_schema(
        operation_id="course_fhir_export",
        summary="The course as a FHIR R4 Bundle",
        description=(
            "A FHIR R4 (4.0.1) `Bundle` of type `collection`: the Patient (MRN under the site's identifier system, "
            "IL2WARD_FHIR_MRN_SYSTEM); the course as a MedicationRequest (aldesleukin, dose in IU, "
            "one dosageInstruction per cycle with timing.repeat {frequency 1, period 8, periodUnit h, count 14}); "
            "each charted dose as a MedicationAdministration — `completed` with the giving nurse "
            "(performer.function `performer`) and the double-checking nurse (performer.function `verifier`, "
            "http://terminology.hl7.org/CodeSystem/med-admin-perform-function: R4 has no verifier element), "
            "`not-done` for a held dose (statusReason: SNOMED CT 397745006 beside the rule ids) or a missed one "
            "(reason `missed`), each event with its own identifier (`<dose id>/hold-<id>`, `/administration-<id>`); "
            "dosage ordered per kg and calculated in IU with the SCH-PREP rate in mL/h; "
            "`entered-in-error` once corrected; each hold's findings as DetectedIssues implicating the dose (one per "
            "rule: the rule id with its rule set and version, HL7 v3 ActCode LAB / COND / OBSA and SNOMED CT "
            "397745006; severity high for stop and discontinue, moderate for hold); vitals, "
            "neuro checks, weights and fluids as Observations (category `vital-signs`, LOINC + UCUM; RASS under a "
            "local code system) and labs as `laboratory` Observations, from 72 h before the course to a day after "
            "its last slot; e-signatures and corrections as Provenance (a correction's with the hash of its audit "
            "row, extension `urn:il2ward:fhir:extension:audit-hash`); a narrative on every "
            "resource. Every reference is a `urn:uuid:` fullUrl inside the bundle, "
            "stable across exports. Served as `application/fhir+json; fhirVersion=4.0` (or `application/json` if "
            "asked); every error is an OperationOutcome."
        ),
        responses={
            (200, "application/fhir+json"): OpenApiTypes.OBJECT,
            (200, "application/json"): OpenApiTypes.OBJECT,
            **{
                (code, media): OpenApiResponse(OPERATION_OUTCOME, description=text)
                for code, text in FHIR_ERRORS.items()
                for media in ("application/fhir+json", "application/json")
            },
        },
    )
    def get(self, request, pk: int):
        course = records.export_course_for(request.user, pk)
        bundle = fhir.build_bundle(
            records.course_record(course), now=timezone.now(), mrn_system=settings.IL2WARD_FHIR_MRN_SYSTEM
        )
        security.export(request._request, user=request.user, fmt="fhir", course=course.pk)
        response = Response(bundle)
        response["Content-Disposition"] = f'attachment; filename="course-{course.pk}.fhir.json"'
        response["Cache-Control"] = "private, no-store"
        return response


# --- iCalendar ------------------------------------------------------------------------------------------------------

CALENDAR_DESCRIPTION = (
    "An RFC 5545 calendar of the course's dose slots, one VEVENT per slot (`UID` `dose-<id>@il2ward`, stable, so a "
    "client updates rather than duplicates; `SEQUENCE` and `LAST-MODIFIED` move forward when a slot's status "
    "changes; a cancelled slot has `STATUS:CANCELLED`). The summary names the patient's initials, the cycle, the "
    "dose number and the status — never the patient's name. Times are UTC."
)


def calendar_response(request, course, *, by, via: str) -> HttpResponse:
    security.export(getattr(request, "_request", request), user=by, fmt="ics", course=course.pk, via=via)
    slots = records.calendar_slots(course)
    body = ics.build_calendar(
        slots,
        course_id=course.pk,
        patient_initials=people.initials(course.patient.name),
        written_at=course.created_at,
        # The dose page's stable address (API.md), by its URL name: an id, no patient data.
        url_for=lambda slot: request.build_absolute_uri(reverse("dose", args=[slot.dose_id])),
    )
    # The output is byte-identical while nothing changes (ics.py), so its digest is a strong validator: a calendar
    # app that sends If-None-Match gets a 304 and no body. Last-Modified (the latest slot change) is information
    # only: a moved cycle 2 changes due times without a status change, so If-Modified-Since alone never answers 304.
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    changed = [s.changed_at for s in slots if s.changed_at] + [course.created_at]
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        body, content_type="text/calendar; charset=utf-8"
    )
    response["ETag"] = etag
    response["Last-Modified"] = http_date(max(changed).timestamp())
    if response.status_code == 200:
        response["Content-Disposition"] = f'inline; filename="course-{course.pk}.ics"'
    response["Cache-Control"] = "private, max-age=0"
    return response


class ErrorsAsJSON:
    """An error from a calendar endpoint is JSON and says so, even to a client that asked for text/calendar."""

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "status_code", 200) >= 400 and isinstance(response, Response):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class CourseCalendar(ErrorsAsJSON, APIView):
    renderer_classes = (JSONRenderer, ICalendarRenderer)

    @extend_schema(
        operation_id="course_calendar",
        summary="The course's dose slots as an iCalendar file",
        description=CALENDAR_DESCRIPTION + " Needs a session or an API token; calendar apps use the secret link.",
        parameters=[IF_NONE_MATCH],
        responses={(200, "text/calendar"): OpenApiTypes.STR, 304: NOT_MODIFIED},
    )
    def get(self, request, pk: int):
        return calendar_response(request, records.export_course_for(request.user, pk), by=request.user, via="api")


class CalendarFeed(ErrorsAsJSON, APIView):
    """The subscription address: the secret in the path stands for its owner (no session, no API token)."""

    authentication_classes = ()
    permission_classes = ()
    renderer_classes = (JSONRenderer, ICalendarRenderer)

    @extend_schema(
        operation_id="calendar_feed",
        summary="A course's dose calendar through a secret subscription link",
        description=CALENDAR_DESCRIPTION
        + " The `token` (from POST /api/v1/calendar-tokens/) identifies a user, never a patient: the course is "
        "read with that user's access (a nurse's link sees only her wards). An unknown or revoked token, a "
        "deactivated user, or a course the owner may not see is 404.",
        auth=[],
        parameters=[IF_NONE_MATCH],
        responses={(200, "text/calendar"): OpenApiTypes.STR, 304: NOT_MODIFIED},
    )
    def get(self, request, token: str, pk: int):
        owner = feeds.token_owner(token)
        if owner is None:
            raise Http404("No such calendar")
        return calendar_response(request, records.export_course_for(owner, pk), by=owner, via="feed")


# --- calendar links (tokens) ----------------------------------------------------------------------------------------


class TokenCreateSerializer(serializers.Serializer):
    course = serializers.IntegerField(required=False, help_text="Also return the feed URL of this course.")


class CalendarTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


TOKEN_CREATED = inline_serializer(
    "CalendarTokenCreated",
    {
        "id": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "token": serializers.CharField(help_text="The secret: shown this once, only its SHA-256 is stored."),
        "feed_url_template": serializers.CharField(help_text="Replace {course} with a course id."),
        "feed_url": serializers.CharField(required=False, help_text="When `course` was given."),
        "webcal_url": serializers.CharField(
            required=False, help_text="`feed_url` with the webcal: scheme (a calendar app subscribes to it)."
        ),
    },
)


def token_row(row) -> dict:
    return {"id": row.pk, "created_at": iso_z(row.created_at), "revoked_at": iso_z(row.revoked_at)}


def feed_urls(request, secret: str, course_id: int | None) -> dict:
    template = request.build_absolute_uri(reverse("api-calendar-feed", kwargs={"token": secret, "pk": 0}))
    template = template[: -len("0.ics")] + "{course}.ics"
    urls = {"feed_url_template": template}
    if course_id is not None:
        urls["feed_url"] = template.replace("{course}", str(course_id))
        urls["webcal_url"] = "webcal://" + urls["feed_url"].split("://", 1)[1]
    return urls


# The course page's card posts a plain form (htmx, or no JavaScript); API clients send JSON (the schema's only type).
FORM_AND_JSON = (BoundedJSONParser, FormParser, MultiPartParser)


class CalendarTokens(APIView):
    parser_classes = FORM_AND_JSON

    @extend_schema(
        summary="The caller's calendar subscription links",
        operation_id="calendar_tokens_list",
        description="Each link's id and dates, newest first; the secret itself is never shown again. "
        "With `HX-Request` (the course page) the answer is an HTML fragment.",
        responses={200: CalendarTokenSerializer(many=True)},
    )
    def get(self, request):
        tokens = feeds.tokens_of(request.user)
        if request.htmx:
            return render(request._request, "scheduling/export/calendar_tokens.html", {"tokens": tokens})
        return Response([token_row(t) for t in tokens])

    @extend_schema(
        summary="Create a calendar subscription link",
        description=(
            "A new secret for the caller (audited). Its feed URLs are "
            "`/api/v1/calendar/<token>/courses/<course id>.ics`; a calendar app can poll them without logging in, "
            "with the caller's access. The secret is returned only in this response. Give `course` to get that "
            "course's URL too (400 if the caller cannot see it). With `HX-Request` (the course page) the answer "
            "is an HTML fragment showing the link once."
        ),
        operation_id="calendar_tokens_create",
        request=TokenCreateSerializer,
        responses={201: TOKEN_CREATED, 400: OpenApiResponse(description="`course` not found or not visible.")},
    )
    def post(self, request):
        access.require_role(request.user, *Role.values)
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        course_id = serializer.validated_data.get("course")
        if course_id is not None:
            try:
                records.export_course_for(request.user, course_id)
            except Http404 as exc:
                raise Invalid({"course": ["No such course."]}) from exc
        row, secret = feeds.calendar_token_create(user=request.user, now=timezone.now())
        body = {**token_row(row), "token": secret, **feed_urls(request, secret, course_id)}
        del body["revoked_at"]
        if request.htmx:
            context = {"created": row, "urls": body, "tokens": feeds.tokens_of(request.user)}
            return render(request._request, "scheduling/export/calendar_token.html", context, status=201)
        return Response(body, status=status.HTTP_201_CREATED)


class CalendarTokenRevoke(APIView):
    parser_classes = FORM_AND_JSON

    @extend_schema(
        summary="Revoke a calendar subscription link",
        description="From now on its feed URLs answer 404 (audited). Another user's link is 404; an already revoked "
        "one is 409 `token_already_revoked`. With `HX-Request` the answer is the link's table row.",
        operation_id="calendar_tokens_revoke",
        request=None,
        responses={200: CalendarTokenSerializer, 404: OpenApiResponse(description="Not one of the caller's links.")},
    )
    def post(self, request, pk: int):
        row = feeds.calendar_token_revoke(token_id=pk, by=request.user, now=timezone.now())
        if request.htmx:
            return render(request._request, "scheduling/export/calendar_token_row.html", {"token": row})
        return Response(token_row(row))
