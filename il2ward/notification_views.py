"""Notification pages (the bell, the list with acknowledge, preferences), the assignments page, and the API.

The bell and the list refresh themselves with htmx polling; those requests carry X-IL2Ward-Poll: 1 so they do not count
as user action and a screen left open does not keep a nurse signed in (il2ward.middleware.SessionTimeoutMiddleware).
"""

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from il2ward import access, notifications, people, recipients
from il2ward.api import AwareDateTimeField
from il2ward.channels import REGISTRY
from il2ward.errors import Invalid
from il2ward.models import Notification, Patient, Role, StaffProfile
from il2ward.timefmt import local_iso

EDIT_ASSIGNMENTS = (Role.CHARGE_NURSE, Role.ONCOLOGIST, Role.ADMIN)


def poll_seconds() -> int:
    return settings.IL2WARD_BELL_POLL_SECONDS


def login_required_htmx(view):
    """login_required, except that a polling htmx request is told to go to the login page (HX-Redirect) instead of
    having the login page swapped into the navbar."""
    plain = login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.htmx and not request.user.is_authenticated:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = settings.LOGIN_URL
            return response
        return plain(request, *args, **kwargs)

    return wrapper


# --- Pages --------------------------------------------------------------------------------------------------------


@login_required_htmx
def bell(request):
    """The navbar bell's count (polled)."""
    return render(
        request,
        "il2ward/notifications/bell_badge.html",
        {"count": notifications.bell_count(request.user), "poll_seconds": poll_seconds()},
    )


def _list_context(user) -> dict:
    rows = list(notifications.for_user(user, limit=100))
    visible = set(
        access.visible_patients(user)
        .filter(pk__in={r.patient_id for r in rows if r.patient_id})
        .values_list("pk", flat=True)
    )
    try:
        chain = recipients.escalation_chain()
    except ImproperlyConfigured:  # refused at start-up by the system check; the page still lists the rows
        chain = None
    for row in rows:
        row.patient_visible = row.patient_id in visible  # the name only where the user may see the patient
        row.chain = recipients.chain_position_of(row, chain) if chain else None  # a hold's place in the chain
    return {
        "rows": rows,
        "unacknowledged": Notification.objects.filter(recipient=user, acknowledged_at__isnull=True).count(),
        "open_reminders": any(
            r.acknowledged_at is None and r.resolved_at is None and r.kind not in Notification.HOLD_FAMILY for r in rows
        ),
        "poll_seconds": poll_seconds(),
    }


class PreferencesForm(forms.Form):
    """Duty, then one box per channel of the registry that is configured here, with the channel's own fields
    (`notify_<channel>`, `<channel>_<field>`): a new channel appears here without a change to this form."""

    on_duty = forms.BooleanField(
        required=False, label="I am on duty (receive the ward's reminders for patients without an assigned nurse)"
    )

    def __init__(self, *args, profile: StaffProfile, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile = profile
        self.fields["on_duty"].initial = profile.on_duty
        self.offered = [channel for channel in REGISTRY.values() if channel.enabled()]
        for channel in self.offered:
            choice = channel.choice(profile.channels)
            self.fields[f"notify_{channel.name}"] = forms.BooleanField(
                required=False, label=channel.preference_label, initial=choice["on"]
            )
            for key, field in channel.fields().items():
                field.initial = choice.get(key, "")
                self.fields[f"{channel.name}_{key}"] = field

    def _values(self, channel) -> dict:
        values = {"on": self.cleaned_data.get(f"notify_{channel.name}", False)}
        for key in channel.fields():
            values[key] = self.cleaned_data.get(f"{channel.name}_{key}", "")
        return values

    def clean(self):
        data = super().clean()
        for channel in self.offered:
            if channel.validate is not None:
                for key, message in channel.validate(self._values(channel)).items():
                    self.add_error(f"{channel.name}_{key}", message)
        return data

    def channels(self) -> dict:
        """The offered channels' choices; one not configured here keeps what was stored (its number, its choice)."""
        return {channel.name: self._values(channel) for channel in self.offered}


@login_required_htmx
def notification_list(request):
    context = _list_context(request.user)
    if request.htmx:
        return render(request, "il2ward/notifications/list.html#list", context)
    profile = StaffProfile.objects.filter(user=request.user).first()
    return _list_page(request, context, form=PreferencesForm(profile=profile) if profile else None)


def _list_page(request, context: dict, *, form, status: int = 200):
    context.update(
        form=form,
        wards=access.visible_wards(request.user),
        can_edit_assignments=access.has_role(request.user, *EDIT_ASSIGNMENTS),
    )
    return render(request, "il2ward/notifications/list.html", context, status=status)


@login_required_htmx
@require_POST
def notification_acknowledge_page(request, pk: int):
    notifications.notification_acknowledge(notification_id=pk, by=request.user, now=timezone.now())
    if request.htmx:
        return render(request, "il2ward/notifications/list.html#list", _list_context(request.user))
    return redirect("notifications")


@login_required_htmx
@require_POST
def notification_acknowledge_reminders_page(request):
    notifications.notifications_acknowledge_reminders(by=request.user, now=timezone.now())
    if request.htmx:
        return render(request, "il2ward/notifications/list.html#list", _list_context(request.user))
    return redirect("notifications")


@login_required
@require_POST
def preferences(request):
    profile = StaffProfile.objects.filter(user=request.user).first()
    if profile is None:
        raise PermissionDenied("No staff profile.")
    form = PreferencesForm(request.POST, profile=profile)
    if not form.is_valid():  # the page again with each field's error, nothing stored
        messages.error(request, "Preferences not saved.")
        return _list_page(request, _list_context(request.user), form=form, status=400)
    notifications.staff_profile_set_notifications(
        user_id=request.user.pk,
        on_duty=form.cleaned_data["on_duty"],
        channels=form.channels(),
        by=request.user,
        now=timezone.now(),
    )
    messages.success(request, "Notification preferences saved.")
    return redirect("notifications")


class AssignmentsForm(forms.Form):
    """The ward's on-call oncologist and each patient's assigned nurse (choices evaluated once: no query per field)."""

    def __init__(self, *args, ward, patients, nurses, oncologists, **kwargs):
        super().__init__(*args, **kwargs)
        self.ward, self.patients = ward, patients
        self.people = {u.pk: u for u in [*nurses, *oncologists]}
        none = [("", "— none —")]
        self.fields["on_call_oncologist"] = forms.TypedChoiceField(
            label="On-call oncologist (receives escalations)",
            choices=none + [(u.pk, people.printed_name(u)) for u in oncologists],
            coerce=int,
            empty_value=None,
            required=False,
            initial=ward.on_call_oncologist_id,
        )
        nurse_choices = none + [(u.pk, people.printed_name(u)) for u in nurses]
        for patient in patients:
            self.fields[f"nurse_{patient.pk}"] = forms.TypedChoiceField(
                label=f"Assigned nurse for {patient.name} ({patient.mrn})",
                choices=nurse_choices,
                coerce=int,
                empty_value=None,
                required=False,
                initial=patient.assigned_nurse_id,
            )

    def person(self, field: str):
        value = self.cleaned_data.get(field)
        return self.people.get(value) if value else None


@login_required
def ward_assignments(request, code: str):
    ward = access.ward_for(request.user, code)
    can_edit = access.has_role(request.user, *EDIT_ASSIGNMENTS)
    patients = list(Patient.objects.filter(ward=ward).order_by("name", "pk"))
    form = AssignmentsForm(
        request.POST or None,
        ward=ward,
        patients=patients,
        nurses=list(recipients.nurses_of(ward)),
        oncologists=list(recipients.oncologists()),
    )
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only a charge nurse, an oncologist or an administrator sets assignments.")
        if form.is_valid():
            now = timezone.now()
            try:
                recipients.ward_set_on_call(
                    ward_id=ward.pk, oncologist=form.person("on_call_oncologist"), by=request.user, now=now
                )
                for patient in patients:
                    recipients.patient_assign_nurse(
                        patient_id=patient.pk, nurse=form.person(f"nurse_{patient.pk}"), by=request.user, now=now
                    )
            except Invalid as exc:
                for errors in exc.errors.values():
                    form.add_error(None, errors)
            else:
                messages.success(request, "Assignments saved.")
                return redirect("ward-assignments", code=ward.code)
    return render(
        request,
        "il2ward/notifications/assignments.html",
        {"ward": ward, "form": form, "can_edit": can_edit, "wards": access.visible_wards(request.user)},
    )


# --- API ----------------------------------------------------------------------------------------------------------


NULLABLE_DATETIME = {"type": "string", "format": "date-time", "nullable": True}


class NotificationSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="patient_id", allow_null=True, read_only=True)
    dose = serializers.IntegerField(source="dose_id", allow_null=True, read_only=True)
    course = serializers.IntegerField(source="course_id", allow_null=True, read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    due_at = AwareDateTimeField(read_only=True, allow_null=True)
    acknowledged_at = AwareDateTimeField(read_only=True, allow_null=True)
    due_at_local = serializers.SerializerMethodField(help_text="due_at in the ward's time, with its offset")
    created_at_local = serializers.SerializerMethodField(help_text="created_at in the ward's time, with its offset")
    acknowledged_at_local = serializers.SerializerMethodField(help_text="acknowledged_at in the ward's time")
    time_zone = serializers.SerializerMethodField(help_text="the ward's time zone (UTC without a patient)")

    class Meta:
        model = Notification
        fields = ["id", "kind", "patient", "dose", "course", "details", "due_at", "due_at_local", "created_at",
                  "created_at_local", "acknowledged_at", "acknowledged_at_local", "time_zone"]  # fmt: skip
        read_only_fields = fields

    @staticmethod
    def _zone(row):
        return row.patient.ward.zone if row.patient_id else None

    @extend_schema_field(NULLABLE_DATETIME)
    def get_due_at_local(self, row) -> str | None:
        return local_iso(row.due_at, self._zone(row))

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_created_at_local(self, row) -> str | None:
        return local_iso(row.created_at, self._zone(row))

    @extend_schema_field(NULLABLE_DATETIME)
    def get_acknowledged_at_local(self, row) -> str | None:
        return local_iso(row.acknowledged_at, self._zone(row))

    def get_time_zone(self, row) -> str:
        return row.patient.ward.tz if row.patient_id else "UTC"


class NotificationListApi(generics.ListAPIView):
    """The caller's notifications, newest first (at most `limit`, default 100, max 500).

    `?unacknowledged=true` lists only those not yet acknowledged."""

    serializer_class = NotificationSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("unacknowledged", bool, description="only those not yet acknowledged"),
            OpenApiParameter("limit", int, description="at most this many (default 100, max 500)"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        raw = params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            raise Invalid({"limit": ["A whole number from 1 to 500."]})
        flag = params.get("unacknowledged", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise Invalid({"unacknowledged": ["true or false."]})
        return notifications.for_user(self.request.user, unacknowledged=flag in ("true", "1"), limit=int(raw))


class NotificationAcknowledgeApi(APIView):
    """Acknowledge one of your notifications (someone else's is 404). Acknowledging a hold_flagged, stop_recommended
    or escalation acknowledges all of them for that dose, for every recipient, and stops the escalation."""

    @extend_schema(request=None, responses={200: NotificationSerializer})
    def post(self, request, pk: int):
        row = notifications.notification_acknowledge(notification_id=pk, by=request.user, now=timezone.now())
        return Response(NotificationSerializer(row).data)
