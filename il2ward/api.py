"""API plumbing shared by every app (errors, aware times, auth) and the patient endpoints."""

from datetime import UTC

from axes import helpers as axes_helpers
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from il2ward import access, credentials, security
from il2ward.errors import Conflict, Forbidden, Invalid
from il2ward.fhir_base import MEDIA_TYPE, operation_outcome
from il2ward.models import Patient, Role, Ward
from il2ward.services import patient_create
from il2ward.timefmt import iso_z


def exception_handler(exc, context):
    """The contract's error shapes: 400 {"errors": {field: [...]}}, 409 {"code", "detail"}, 403, 404, 401."""
    if isinstance(exc, Invalid):
        return Response({"errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Conflict):
        return Response({"code": exc.code, "detail": exc.detail}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Forbidden | PermissionDenied):
        return Response({"detail": str(exc) or "Not allowed for your role."}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response({"errors": detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": {"body": [str(exc.detail)]}}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def not_found(request, exception=None):
    """Django's 404 for an address no URL matches: JSON under /api/ (a client reads one error shape; FHIR's is an
    OperationOutcome), else the page."""
    if request.path.startswith("/api/") and request.path.endswith("/fhir/"):
        return JsonResponse(operation_outcome(404, "Not found."), status=404, content_type=MEDIA_TYPE)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked username: 429, and under /api/ the API's JSON error body (else the text)."""
    message = axes_helpers.get_lockout_message()
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=429)
    return HttpResponse(message, status=429)


def validated(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request's body as `serializer_class` validates it; a ValidationError (400 naming each field) otherwise."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """ISO 8601 with an offset in, UTC `Z` out. A naive time is a 400, never silently read as server time."""

    default_error_messages = {
        "invalid": "Not an ISO 8601 date-time.",
        "naive": "Give the time with its UTC offset (e.g. 2027-03-12T16:00:00-06:00 or ...Z).",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data.strip())
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if timezone.is_naive(value):
            self.fail("naive")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00 has no UTC date-time
            self.fail("invalid")

    def to_representation(self, value):
        return iso_z(value)


class Login(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    client = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The device or system the token is for (e.g. `ward-a-tablet-3`, `lab-interface`). A new login "
        "from the same client replaces that client's token; without it each login gets a token of its own.",
    )

    def validate(self, attrs):
        # django-axes counts this attempt like a login-page attempt (the Django request is in the context).
        user = authenticate(request=self.context["request"], username=attrs["username"], password=attrs["password"])
        if not user:  # also an inactive user (ModelBackend)
            raise serializers.ValidationError("Unable to log in with provided credentials.", code="authorization")
        attrs["user"] = user
        return attrs


class TokenOut(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as `Authorization: Token <token>`. Shown once; only a hash is kept."
    )
    expiry = AwareDateTimeField(help_text="When the token stops working (IL2WARD_API_TOKEN_HOURS after issue, UTC).")
    client = serializers.CharField(help_text="The client named at login (empty when none was).")


class TokenView(APIView):
    """POST {"username", "password", "client"?} → {"token", "expiry", "client"}; then `Authorization: Token <token>`.

    A new token each time (django-rest-knox: stored hashed, expiring); revoked by POST auth/logout/ with it."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(request=Login, responses={200: TokenOut}, auth=[])
    def post(self, request, *args, **kwargs):
        serializer = Login(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row, token = credentials.api_token_issue(
            user=data["user"], client=data.get("client", ""), request=request._request
        )
        return Response({"token": token, "expiry": iso_z(row.expiry), "client": row.client})


class LogoutView(APIView):
    """Revoke the token this request is sent with (the owner's logout)."""

    authentication_classes = (credentials.ApiTokenAuthentication,)

    @extend_schema(request=None, responses={204: None})
    def post(self, request, *args, **kwargs):
        credentials.api_token_revoke(
            token=request.auth, by=request.user, reason=credentials.LOGOUT, request=request._request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every API token of the caller (a lost tablet: log out everywhere from another client)."""

    authentication_classes = (credentials.ApiTokenAuthentication,)

    @extend_schema(request=None, responses={204: None})
    def post(self, request, *args, **kwargs):
        credentials.api_tokens_revoke_for_user(
            user=request.user, by=request.user, reason=credentials.LOGOUT_ALL, request=request._request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PatientSerializer(serializers.ModelSerializer):
    ward = serializers.SlugRelatedField(slug_field="code", queryset=Ward.objects.all())

    class Meta:
        model = Patient
        fields = ["id", "mrn", "name", "birth_date", "sex", "ward"]
        extra_kwargs = {"mrn": {"validators": []}}  # duplicates are a 409 duplicate_mrn, not a 400

    def validate_birth_date(self, value):
        if value > timezone.localdate() or value.year < 1900:
            raise serializers.ValidationError("Not a plausible birth date.")
        return value


class PatientListCreate(generics.ListCreateAPIView):
    """Patients on the wards visible to the caller; `?ward=CODE` filters. Creating needs a clinical role."""

    serializer_class = PatientSerializer

    @extend_schema(
        parameters=[OpenApiParameter("ward", str, description="A ward code: only that ward's patients.")],
        responses={200: PatientSerializer(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = access.visible_patients(self.request.user).select_related("ward").order_by("pk")
        ward = self.request.query_params.get("ward")
        return qs.filter(ward__code=ward) if ward else qs

    @extend_schema(responses={201: PatientSerializer})
    def post(self, request, *args, **kwargs):
        access.require_role(request.user, Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST, Role.ADMIN)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not access.visible_wards(request.user).filter(pk=data["ward"].pk).exists():
            raise Invalid({"ward": ["Not one of your wards."]})
        try:
            patient = patient_create(
                mrn=data["mrn"],
                name=data["name"],
                birth_date=data["birth_date"],
                ward=data["ward"],
                sex=data.get("sex", Patient.Sex.UNKNOWN),
                by=request.user,
                now=timezone.now(),
            )
        except Conflict as exc:
            # The 409 is the same whoever holds the MRN: it never says whose or on which ward. A conflict with a
            # patient the caller may not see is a security event (ids only), so probing shows in the log.
            if exc.code == "duplicate_mrn":
                holder = Patient.objects.filter(mrn=data["mrn"]).values_list("pk", flat=True).first()
                if holder and not access.visible_patients(request.user).filter(pk=holder).exists():
                    security.record(
                        "mrn_conflict", request=request._request, user=request.user, detail={"patient": holder}
                    )
            raise
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)


class PatientDetail(generics.RetrieveAPIView):
    serializer_class = PatientSerializer

    def get_object(self):
        return access.patient_for(self.request.user, self.kwargs["pk"])
