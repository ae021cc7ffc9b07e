"""The blind double check from the second nurse's own session (scheduling.services.double_checks), over the API.

`POST /doses/{id}/double-checks/` (the first nurse's give, waiting), `GET /double-checks/` (the checks the caller may
answer), `GET /double-checks/{id}/`, `POST /double-checks/{id}/accept/` (her dose: charts it when it matches;
answered with the check, `accepted` with its administration's id), `.../refuse/` (with a reason), `.../cancel/`
(the first nurse withdraws it). A check's body carries the order (weight, IU/kg, the preparation's rules) and never
the computed dose.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.api import AwareDateTimeField
from il2ward.models import Role
from il2ward.timefmt import iso_z, local_iso
from scheduling import selectors, services
from scheduling.api import serializers as out
from scheduling.selectors import double_checks as checks

NURSING = (Role.NURSE, Role.CHARGE_NURSE)


def check_representation(check, *, now) -> dict:
    dose = check.dose
    course = dose.course
    zone = course.patient.ward.zone
    order = checks.order_of(course)
    return {
        "id": check.pk,
        "dose": dose.pk,
        "patient": course.patient_id,
        "cycle": dose.cycle,
        "number": dose.number,
        "due_at": iso_z(dose.due_at),
        "status": checks.state_of(check, now=now),
        "requested_by": check.requested_by.get_username(),
        "requested_at": iso_z(check.requested_at),
        "expires_at": iso_z(check.expires_at),
        "expires_local": local_iso(check.expires_at, zone),
        "started_at": iso_z(check.started_at),
        "ended_at": iso_z(check.ended_at),
        "vial_lot": check.vial_lot,
        "reconstituted_at": iso_z(check.reconstituted_at),
        "decided_by": check.decided_by.get_username() if check.decided_by_id else None,
        "decided_at": iso_z(check.decided_at),
        "refused_reason": check.refused_reason,
        "mismatches": check.mismatches,
        "administration": check.administration_id,
        "order": checks.order_representation(order),
    }


class RequestSerializer(serializers.Serializer):
    started_at = AwareDateTimeField()
    ended_at = AwareDateTimeField(required=False, allow_null=True)
    vial_lot = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    reconstituted_at = AwareDateTimeField(required=False, allow_null=True)
    early_reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when started_at is more than IL2WARD_ON_TIME_MINUTES before due (400 otherwise).",
    )


class AcceptSerializer(serializers.Serializer):
    verified_dose_iu = serializers.IntegerField(
        min_value=1, help_text="The dose the second nurse calculated herself from the order, in IU."
    )


class RefuseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


def _nursing_action(request, pk: int, *, find, act, serializer=None, status_code=status.HTTP_200_OK) -> Response:
    """What every write here shares: a nurse or charge nurse; the dose or check she may see (404 otherwise); the
    body validated (400 naming the field); one service call at one `now`; the check as the answer."""
    access.require_role(request.user, *NURSING)
    target = find(request.user, pk)
    data: dict = {}
    if serializer is not None:
        body = serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
    now = timezone.now()
    return Response(check_representation(act(target, data, now), now=now), status=status_code)


class DoseDoubleChecks(APIView):
    """The first nurse charts the give; it waits for another nurse's check from her own session."""

    @extend_schema(request=RequestSerializer, responses={201: out.DoubleCheckOut})
    def post(self, request, pk: int):
        def act(dose_id, data, now):
            # The check as the service wrote it, with the dose it locked: not read again (charting is the hot path).
            return services.double_check_request(dose_id=dose_id, by=request.user, now=now, **data)

        return _nursing_action(
            request, pk, find=selectors.visible_dose_id, act=act, serializer=RequestSerializer,
            status_code=status.HTTP_201_CREATED,
        )  # fmt: skip


class DoubleCheckList(APIView):
    @extend_schema(responses={200: out.DoubleCheckOut(many=True)})
    def get(self, request):
        """The pending checks on the caller's wards that she may answer (not her own), oldest first."""
        now = timezone.now()
        return Response([check_representation(c, now=now) for c in checks.checks_to_answer(request.user, now=now)])


class DoubleCheckDetail(APIView):
    @extend_schema(responses={200: out.DoubleCheckOut})
    def get(self, request, pk: int):
        return Response(check_representation(checks.check_for(request.user, pk), now=timezone.now()))


class DoubleCheckAccept(APIView):
    """The second nurse's own check: 201 with the dose charted as given (she is its verifier), or 409."""

    @extend_schema(request=AcceptSerializer, responses={201: out.DoubleCheckOut})
    def post(self, request, pk: int):
        def act(check_id, data, now):
            adm = services.double_check_accept(check_id=check_id, by=request.user, now=now, **data)
            # The check as the service locked and accepted it, not read again (charting is the hot path).
            return adm.double_check

        return _nursing_action(
            request, pk, find=checks.visible_check_id, act=act, serializer=AcceptSerializer,
            status_code=status.HTTP_201_CREATED,
        )  # fmt: skip


class DoubleCheckRefuse(APIView):
    @extend_schema(request=RefuseSerializer, responses={200: out.DoubleCheckOut})
    def post(self, request, pk: int):
        def act(check, data, now):
            services.double_check_refuse(check_id=check.pk, by=request.user, now=now, **data)
            return checks.check_for(request.user, pk)

        return _nursing_action(request, pk, find=checks.check_for, act=act, serializer=RefuseSerializer)


class DoubleCheckCancel(APIView):
    @extend_schema(request=None, responses={200: out.DoubleCheckOut})
    def post(self, request, pk: int):
        def act(check, data, now):
            services.double_check_cancel(check_id=check.pk, by=request.user, now=now)
            return checks.check_for(request.user, pk)

        return _nursing_action(request, pk, find=checks.check_for, act=act)
