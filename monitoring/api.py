"""Observation endpoints (API.md: Observations): vitals, neuro, weights, fluids, labs, clinical events.

Serializers here parse and shape JSON only; the physiological ranges live in the services, so every writer (API,
pages, interfaces, commands) is held to the same checks. GET lists newest first and includes rows entered in error
(marked by ``entered_in_error_at``), so the flowsheet shows the correction.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access
from il2ward.api import AwareDateTimeField, validated
from il2ward.errors import Invalid
from il2ward.models import Role
from il2ward.timefmt import local_iso
from monitoring import selectors, services
from monitoring.domain.snapshot import EVENT_KINDS
from monitoring.models import (
    LAB_FIELDS,
    BedsideExam,
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    VitalSigns,
    WeightMeasurement,
)

WRITE_ROLES = (Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST)  # on the patient's ward (nurses) or any (oncologists)
MAX_LIMIT = 1000


def _number(**kwargs) -> serializers.DecimalField:
    """Any decimal number in; range and precision are the service's business (so its messages name the range)."""
    return serializers.DecimalField(max_digits=None, decimal_places=None, **kwargs)


def _optional_number() -> serializers.DecimalField:
    return _number(required=False, allow_null=True)


# --------------------------------------------------------------------------------------------------- input


class VitalsIn(serializers.Serializer):
    recorded_at = AwareDateTimeField()
    sbp = serializers.IntegerField()
    dbp = serializers.IntegerField()
    heart_rate = serializers.IntegerField()
    resp_rate = serializers.IntegerField()
    spo2 = serializers.IntegerField()
    temp_c = _number()
    o2_lpm = _optional_number()
    fio2_pct = serializers.IntegerField(required=False, allow_null=True)
    rhythm = serializers.ChoiceField(
        choices=VitalSigns.Rhythm.values, required=False, allow_null=True, allow_blank=True
    )
    phenylephrine_mcg_kg_min = _optional_number()
    other_pressor = serializers.ChoiceField(
        choices=VitalSigns.OtherPressor.values, required=False, allow_null=True, allow_blank=True
    )
    other_pressor_mcg_kg_min = _optional_number()


class NeuroIn(serializers.Serializer):
    recorded_at = AwareDateTimeField()
    rass = serializers.IntegerField()
    confusion = serializers.ChoiceField(choices=NeuroAssessment.Confusion.values)
    # Left out or null: not answered, stored as null (never as "no").
    neuro_check_failed = serializers.BooleanField(required=False, allow_null=True)
    hallucinations = serializers.BooleanField(required=False, allow_null=True)
    vivid_dreams_or_anxiety = serializers.BooleanField(required=False, allow_null=True)
    persistent_crying = serializers.BooleanField(required=False, allow_null=True)


class ExamIn(serializers.Serializer):
    """Every finding is required: a bedside exam with a blank answer is not an exam."""

    recorded_at = AwareDateTimeField()
    resting_dyspnea = serializers.BooleanField()
    rales = serializers.ChoiceField(choices=BedsideExam.Rales.values)
    intubated = serializers.BooleanField()
    ileus_distension = serializers.BooleanField()
    vomiting_refractory = serializers.BooleanField()
    distension_affects_breathing = serializers.BooleanField()
    abdominal_pain_severe = serializers.BooleanField()
    extreme_tightness = serializers.BooleanField()
    extreme_paresthesias = serializers.BooleanField()
    moist_desquamation = serializers.BooleanField()


class WeightIn(serializers.Serializer):
    recorded_at = AwareDateTimeField()
    weight_kg = _number()
    confirm = serializers.BooleanField(required=False, default=False, help_text="An implausible value is right.")
    confirm_reason = serializers.CharField(required=False, allow_blank=True, default="")


class FluidsIn(serializers.Serializer):
    period_start = AwareDateTimeField()
    period_end = AwareDateTimeField()
    urine_ml = serializers.IntegerField()
    intake_ml = serializers.IntegerField(required=False, allow_null=True)
    diarrhea_ml = serializers.IntegerField(required=False, allow_null=True)
    confirm = serializers.BooleanField(required=False, default=False, help_text="An implausible value is right.")
    confirm_reason = serializers.CharField(required=False, allow_blank=True, default="")


class LabsIn(serializers.Serializer):
    """Any subset of the panel (at least one result)."""

    recorded_at = AwareDateTimeField(help_text="Specimen time.")
    creatinine_mg_dl = _optional_number()
    platelets_k_ul = _optional_number()
    bilirubin_mg_dl = _optional_number()
    bicarbonate_mmol_l = _optional_number()
    ast_u_l = _optional_number()
    alt_u_l = _optional_number()
    albumin_g_dl = _optional_number()
    potassium_mmol_l = _optional_number()
    magnesium_mg_dl = _optional_number()
    phosphate_mg_dl = _optional_number()
    sodium_mmol_l = _optional_number()
    hemoglobin_g_dl = _optional_number()
    wbc_k_ul = _optional_number()
    troponin_ng_l = _optional_number()
    ck_mb_ng_ml = _optional_number()


class EventIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    recorded_at = AwareDateTimeField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class EventResolveIn(serializers.Serializer):
    resolved_at = AwareDateTimeField(required=False, help_text="Default: now.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class EnteredInErrorIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    password = serializers.CharField(trim_whitespace=False, write_only=True)


# --------------------------------------------------------------------------------------------------- output


class ObservationOut(serializers.ModelSerializer):
    """Fields every observation shows. Times in UTC (`Z`), `recorded_local` in the ward's zone."""

    recorded_at = AwareDateTimeField(read_only=True)
    recorded_local = serializers.SerializerMethodField()
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    entered_in_error_at = AwareDateTimeField(read_only=True, allow_null=True, help_text="null: standing.")
    entered_in_error_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    COMMON = [
        "id",
        "patient",
        "recorded_at",
        "recorded_local",
        "recorded_by",
        "created_at",
        "entered_in_error_at",
        "entered_in_error_by",
        "entered_in_error_reason",
        # Where an interfaced value came from (inbound HL7 v2 / FHIR); blank strings when charted by hand.
        "source_system",
        "source_message_id",
        "source_order",
    ]

    def _local(self, value):
        zone = self.context.get("zone")
        return local_iso(value, zone) if zone is not None else None

    def get_recorded_local(self, obj) -> str | None:
        return self._local(obj.recorded_at)


class VitalsOut(ObservationOut):
    rhythm = serializers.SerializerMethodField(help_text="null: not charted.")
    other_pressor = serializers.SerializerMethodField(help_text='null: not charted; "none": charted as none.')
    map = serializers.IntegerField(read_only=True, help_text="Mean arterial pressure, (SBP + 2 × DBP) / 3.")

    class Meta:
        model = VitalSigns
        fields = [
            *ObservationOut.COMMON,
            "sbp",
            "dbp",
            "map",
            "heart_rate",
            "resp_rate",
            "spo2",
            "temp_c",
            "o2_lpm",
            "fio2_pct",
            "rhythm",
            "phenylephrine_mcg_kg_min",
            "other_pressor",
            "other_pressor_mcg_kg_min",
        ]
        read_only_fields = fields

    def get_rhythm(self, obj) -> str | None:
        return obj.rhythm or None

    def get_other_pressor(self, obj) -> str | None:
        return obj.other_pressor or None


class NeuroOut(ObservationOut):
    class Meta:
        model = NeuroAssessment
        fields = [
            *ObservationOut.COMMON,
            "rass",
            "confusion",
            "neuro_check_failed",
            "hallucinations",
            "vivid_dreams_or_anxiety",
            "persistent_crying",
        ]
        read_only_fields = fields


class ExamOut(ObservationOut):
    class Meta:
        model = BedsideExam
        fields = [*ObservationOut.COMMON, "rales", *services.EXAM_FLAGS]
        read_only_fields = fields


class WeightOut(ObservationOut):
    class Meta:
        model = WeightMeasurement
        fields = [*ObservationOut.COMMON, "weight_kg", "confirmed_reason"]
        read_only_fields = fields


class FluidsOut(ObservationOut):
    period_start = AwareDateTimeField(read_only=True)
    period_start_local = serializers.SerializerMethodField()
    period_end = AwareDateTimeField(read_only=True)
    period_end_local = serializers.SerializerMethodField()

    class Meta:
        model = FluidBalance
        fields = [
            *ObservationOut.COMMON,
            "period_start",
            "period_start_local",
            "period_end",
            "period_end_local",
            "urine_ml",
            "intake_ml",
            "diarrhea_ml",
            "confirmed_reason",
        ]
        read_only_fields = fields

    def get_period_start_local(self, obj) -> str | None:
        return self._local(obj.period_start)

    def get_period_end_local(self, obj) -> str | None:
        return self._local(obj.period_end)


class LabsOut(ObservationOut):
    class Meta:
        model = LabResult
        fields = [*ObservationOut.COMMON, *LAB_FIELDS]
        read_only_fields = fields


class EventOut(ObservationOut):
    resolved_at = AwareDateTimeField(read_only=True, allow_null=True, help_text="null: active.")
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ClinicalEvent
        fields = [*ObservationOut.COMMON, "kind", "note", "resolved_at", "resolved_by", "resolution_note"]
        read_only_fields = fields


OUTPUT = {
    VitalSigns.KIND: VitalsOut,
    NeuroAssessment.KIND: NeuroOut,
    BedsideExam.KIND: ExamOut,
    WeightMeasurement.KIND: WeightOut,
    FluidBalance.KIND: FluidsOut,
    LabResult.KIND: LabsOut,
    ClinicalEvent.KIND: EventOut,
}


def _out(row, zone) -> dict:
    return OUTPUT[row.KIND](row, context={"zone": zone}).data


# --------------------------------------------------------------------------------------------------- views


def _limit(request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 200
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid({"limit": [f"A whole number from 1 to {MAX_LIMIT}."]})
    return limit


LIMIT_PARAM = OpenApiParameter("limit", int, description=f"Newest N (default 200, at most {MAX_LIMIT}).")


class _PatientObservations(APIView):
    """GET: the patient's observations of one kind, newest first. POST: record one (nurse on the ward, oncologist)."""

    kind: str
    input_serializer: type[serializers.Serializer]
    record = None  # the service, set by each subclass

    def get(self, request, pk: int):
        patient = access.patient_for(request.user, pk)
        rows = selectors.observations(patient, self.kind, limit=_limit(request))
        return Response(OUTPUT[self.kind](rows, many=True, context={"zone": patient.ward.zone}).data)

    def post(self, request, pk: int):
        access.require_role(request.user, *WRITE_ROLES)
        patient = access.patient_for(request.user, pk)
        data = validated(self.input_serializer, request)
        row = type(self).record(patient=patient, **data, by=request.user, now=timezone.now())
        return Response(_out(row, patient.ward.zone), status=status.HTTP_201_CREATED)


def _schema(input_serializer, output_serializer):
    return extend_schema_view(
        get=extend_schema(parameters=[LIMIT_PARAM], responses={200: output_serializer(many=True)}),
        post=extend_schema(request=input_serializer, responses={201: output_serializer}),
    )


@_schema(VitalsIn, VitalsOut)
class PatientVitals(_PatientObservations):
    kind, input_serializer, record = VitalSigns.KIND, VitalsIn, staticmethod(services.vitals_record)


@_schema(NeuroIn, NeuroOut)
class PatientNeuro(_PatientObservations):
    kind, input_serializer, record = NeuroAssessment.KIND, NeuroIn, staticmethod(services.neuro_record)


@_schema(ExamIn, ExamOut)
class PatientExam(_PatientObservations):
    kind, input_serializer, record = BedsideExam.KIND, ExamIn, staticmethod(services.exam_record)


@_schema(WeightIn, WeightOut)
class PatientWeights(_PatientObservations):
    kind, input_serializer, record = WeightMeasurement.KIND, WeightIn, staticmethod(services.weight_record)


@_schema(FluidsIn, FluidsOut)
class PatientFluids(_PatientObservations):
    kind, input_serializer, record = FluidBalance.KIND, FluidsIn, staticmethod(services.fluids_record)


@_schema(LabsIn, LabsOut)
class PatientLabs(_PatientObservations):
    kind, input_serializer, record = LabResult.KIND, LabsIn, staticmethod(services.labs_record)


@_schema(EventIn, EventOut)
class PatientEvents(_PatientObservations):
    kind, input_serializer, record = ClinicalEvent.KIND, EventIn, staticmethod(services.event_record)


class EventResolve(APIView):
    """Mark an active clinical event resolved (409 already_resolved / entered_in_error)."""

    @extend_schema(request=EventResolveIn, responses={200: EventOut})
    def post(self, request, pk: int, event_id: int):
        access.require_role(request.user, *WRITE_ROLES)
        patient = access.patient_for(request.user, pk)
        event = selectors.event_for(patient, event_id)
        data = validated(EventResolveIn, request)
        event = services.event_resolve(event=event, **data, by=request.user, now=timezone.now())
        return Response(_out(event, patient.ward.zone))


class ObservationEnteredInError(APIView):
    """Mark an observation entered in error (reason + password): kept, shown as such, no longer read by the rules.

    `kind` is one of vitals, neuro, exam, weights, fluids, labs, events. 409 already_entered_in_error.
    """

    @extend_schema(
        request=EnteredInErrorIn,
        responses={
            200: PolymorphicProxySerializer(
                component_name="Observation",
                serializers=[VitalsOut, NeuroOut, ExamOut, WeightOut, FluidsOut, LabsOut, EventOut],
                resource_type_field_name=None,
            )
        },
    )
    def post(self, request, kind: str, pk: int):
        access.require_role(request.user, *WRITE_ROLES)
        observation = selectors.observation_for(request.user, kind, pk)
        data = validated(EnteredInErrorIn, request)
        row = services.observation_enter_in_error(observation=observation, **data, by=request.user, now=timezone.now())
        return Response(_out(row, observation.patient.ward.zone))
