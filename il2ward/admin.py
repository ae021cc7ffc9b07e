from datetime import UTC

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from il2ward import channels as notification_channels
from il2ward import credentials, recipients
from il2ward.channels import REGISTRY
from il2ward.models import (
    NURSING_ROLES,
    ApiToken,
    AuditEvent,
    Delivery,
    Heartbeat,
    Medication,
    Notification,
    Patient,
    SecurityEvent,
    Signature,
    StaffProfile,
    Ward,
)


@admin.register(Ward)
class WardAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "tz", "on_call_oncologist", "webhook_url", "webhook_state"]
    list_editable = ["on_call_oncologist"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "tz", "on_call_oncologist", "webhook_url", "webhook_secret"]

    @admin.display(description="webhook")
    def webhook_state(self, obj) -> str:
        if not obj.webhook_url:
            return "none"
        return "signed" if obj.webhook_secret else "NOT SENT: no secret"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "webhook_url":
            kwargs["assume_scheme"] = "https"  # a paging endpoint without a scheme is meant to be HTTPS
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "on_call_oncologist":
            kwargs["queryset"] = recipients.oncologists()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []  # the code is in page addresses: a new ward, not a rename

    def save_model(self, request, obj, form, change):
        """Through the services, so every change is audited in one shape and validated as elsewhere (the on-call
        oncologist must be one; a webhook needs a secret, which is never written to the audit trail)."""
        from il2ward.errors import Invalid
        from il2ward.recipients import ward_set_on_call
        from il2ward.services import ward_set_webhook, ward_upsert

        now, changed = timezone.now(), set(form.changed_data)
        ward = obj
        if not change or changed & {"name", "tz"}:
            ward = ward_upsert(code=obj.code, name=obj.name, tz=obj.tz, by=request.user, now=now)
        try:
            if "on_call_oncologist" in changed:
                ward_set_on_call(ward_id=ward.pk, oncologist=obj.on_call_oncologist, by=request.user, now=now)
            if changed & {"webhook_url", "webhook_secret"}:
                ward_set_webhook(ward_id=ward.pk, url=obj.webhook_url, secret=obj.webhook_secret, by=request.user,
                                 now=now)  # fmt: skip
        except Invalid as exc:
            self.message_user(request, f"Not changed: {exc}", level=messages.ERROR)
        obj.pk = ward.pk
        obj.refresh_from_db()


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "printed_name", "on_duty", "notified_by"]
    list_editable = ["on_duty"]
    list_filter = ["on_duty", "wards"]
    filter_horizontal = ["wards"]
    search_fields = ["user__username", "printed_name"]
    # The channel choices (and an SMS number) are the user's own, set on her notifications page and audited there.
    exclude = ["channels"]
    readonly_fields = ["notified_by"]

    @admin.display(description="notified by")
    def notified_by(self, obj) -> str:
        return ", ".join(c.label for c in REGISTRY.values() if c.choice(obj.channels)["on"]) or "nothing"

    def has_add_permission(self, request):
        return False  # a profile comes with its user (manage.py create_staff)

    def save_model(self, request, obj, form, change):
        pass  # written by save_related, once the wards chosen are known: one service call, one audit row

    def save_related(self, request, form, formsets, change):
        from il2ward.services import staff_profile_update

        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        if changes:
            staff_profile_update(profile_id=form.instance.pk, changes=changes, by=request.user, now=timezone.now())
        form.instance.refresh_from_db()


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["mrn", "name", "ward", "assigned_nurse"]
    list_editable = ["assigned_nurse"]
    list_filter = ["ward"]
    search_fields = ["mrn", "name"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assigned_nurse":
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = (
                get_user_model().objects.filter(is_active=True, groups__name__in=NURSING_ROLES).distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        """Through the services, so every change is audited with its old and new value (identity and ward:
        patient.create / patient.update; the assigned nurse: patient.assign_nurse, a nurse of the patient's ward)."""
        from il2ward.errors import Conflict, Invalid
        from il2ward.recipients import patient_assign_nurse
        from il2ward.services import PATIENT_IDENTITY_FIELDS, patient_create, patient_update

        now, data = timezone.now(), form.cleaned_data
        if change:
            changes = {f: data[f] for f in PATIENT_IDENTITY_FIELDS if f in form.changed_data}
            patient = patient_update(patient_id=obj.pk, changes=changes, by=request.user, now=now)
        else:
            fields = {f: data[f] for f in PATIENT_IDENTITY_FIELDS}
            patient = patient_create(**fields, by=request.user, now=now)
            obj.pk = patient.pk
        if "assigned_nurse" in form.changed_data:
            try:
                patient_assign_nurse(patient_id=patient.pk, nurse=data["assigned_nurse"], by=request.user, now=now)
            except (Invalid, Conflict) as exc:
                self.message_user(request, f"Assigned nurse not changed: {exc}", level=messages.ERROR)
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None):
        return False  # nothing clinical is deleted


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["pk", "at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    """The security log, read-only: filter by kind, search by username or address."""

    list_display = ["at", "kind", "username", "user", "ip", "path", "detail"]
    list_filter = ["kind"]
    search_fields = ["username", "ip"]
    date_hierarchy = "at"


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Live API tokens (no secret is shown: only its hash is stored). Revoking goes through the service, so it is in
    the security log and the audit trail; revoked and expired tokens are in the security log."""

    list_display = ["pk", "user", "client", "created", "expiry"]
    list_filter = ["client"]
    search_fields = ["user__username", "client"]
    fields = ["user", "client", "created", "expiry"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the service logs it

    def has_change_permission(self, request, obj=None):
        # Revoking needs the change permission (every field stays read-only).
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    @admin.action(description="Revoke the selected API tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = sum(
            credentials.api_token_revoke(token=token, by=request.user, reason=credentials.ADMIN, request=request)
            for token in queryset.select_related("user")
        )
        self.message_user(request, f"{revoked} API token(s) revoked.", messages.SUCCESS)


def _register_lockouts() -> None:
    """django-axes' failed-attempt list, with unlock actions through the service (logged and audited) instead of
    deleting rows by hand."""
    from axes.admin import AccessAttemptAdmin
    from axes.models import AccessAttempt

    class LockoutAdmin(AccessAttemptAdmin):
        actions = ["unlock_usernames", "unlock_addresses", *AccessAttemptAdmin.actions]
        list_display = ["attempt_time", "username", "ip_address", "path_info", "failures_since_start", "locked"]

        def get_queryset(self, request):
            """Each row with its username's and its address's failures inside the cool-off, as the lock-out counts
            them (il2ward.security.LockoutHandler), in the list's one query."""
            from django.conf import settings
            from django.db.models import OuterRef, Subquery, Sum

            recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)

            def failures(field: str):
                rows = recent.filter(**{field: OuterRef(field)}).order_by().values(field)
                return Subquery(rows.annotate(n=Sum("failures_since_start")).values("n")[:1])

            return (
                super()
                .get_queryset(request)
                .annotate(username_failures=failures("username"), address_failures=failures("ip_address"))
            )

        @admin.display(description="locked now")
        def locked(self, obj) -> str:
            from django.conf import settings

            what = []
            if obj.username and (obj.username_failures or 0) >= settings.AXES_FAILURE_LIMIT:
                what.append("username")
            if obj.ip_address and (obj.address_failures or 0) >= settings.IL2WARD_LOCKOUT_ADDRESS_FAILURES:
                what.append("address")
            return " and ".join(what) or "no"

        def has_delete_permission(self, request, obj=None):
            return False  # an unlock is the way, and it is logged

        def _unlock(self, request, queryset, field: str, what: str) -> None:
            values = sorted({v for v in queryset.values_list(field, flat=True) if v})
            for value in values:
                credentials.lockout_unlock(by=request.user, request=request, **{what: value})
            self.message_user(request, f"Unlocked ({what}): {', '.join(values) or 'none'}.", messages.SUCCESS)

        @admin.action(description="Unlock the selected usernames (their failed attempts are cleared)")
        def unlock_usernames(self, request, queryset):
            self._unlock(request, queryset, "username", "username")

        @admin.action(description="Unlock the selected client addresses (every attempt from them is cleared)")
        def unlock_addresses(self, request, queryset):
            self._unlock(request, queryset, "ip_address", "address")

    if admin.site.is_registered(AccessAttempt):
        admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, LockoutAdmin)


_register_lockouts()


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["signed_at", "printed_name", "meaning", "object_type", "object_id"]


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "at"]


class ChannelFilter(admin.SimpleListFilter):
    """By channel, with the registry's labels (Delivery.channel has no choices: a new channel needs no migration)."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return notification_channels.choices()

    def queryset(self, request, queryset):
        return queryset.filter(channel=self.value()) if self.value() else queryset


@admin.display(description="channel", ordering="channel")
def channel_label(obj) -> str:
    return notification_channels.label(obj.channel)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["channel", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only. A hold's rows show where they stand in the escalation chain (IL2WARD_ESCALATION_CHAIN, shown
    above the list as configured now) and when its next step is due."""

    list_display = ["pk", "kind", "recipient", "patient_id", "dose_id", "created_at", "due_at", "escalation_step",
                    "next_step_due", "acknowledged_at", "resolved_reason"]  # fmt: skip
    list_filter = ["kind", ("acknowledged_at", admin.EmptyFieldListFilter), ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["dedupe_key", "recipient__username"]
    fields = ["kind", "recipient", "patient", "course_id", "dose_id", "topic", "details", "created_at", "due_at",
              "escalation_step", "next_step_due", "configured_chain", "acknowledged_at", "acknowledged_by",
              "resolved_at", "resolved_reason"]  # fmt: skip
    readonly_fields = fields
    inlines = [DeliveryInline]
    change_list_template = "admin/il2ward/notification/change_list.html"

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **_chain_context()})

    def _position(self, obj):
        try:
            return recipients.chain_position_of(obj)
        except ImproperlyConfigured:  # the system check names the setting; the admin still lists the rows
            return None

    @admin.display(description="escalation step")
    def escalation_step(self, obj) -> str:
        position = self._position(obj)
        return position.label if position else "—"

    @admin.display(description="next step due")
    def next_step_due(self, obj) -> str:
        position = self._position(obj)
        if position is None or position.next_due_at is None:
            return "—" if position is None else "none: the chain has ended for this hold"
        zone = obj.patient.ward.zone if obj.patient_id else UTC
        local = position.next_due_at.astimezone(zone)
        return f"{local:%Y-%m-%d %H:%M %Z}: step {position.next_step}, {position.next_label}"

    @admin.display(description="escalation chain (configured now)")
    def configured_chain(self, obj) -> str:
        return _chain_context()["escalation_chain"]


def _chain_context() -> dict:
    try:
        text = recipients.chain_text(recipients.escalation_chain())
    except ImproperlyConfigured as exc:
        text = f"not valid: {exc}"
    return {"escalation_chain": text, "escalation_backup": str(settings.IL2WARD_ESCALATION_BACKUP) or "none"}


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Dead letters are retried or dismissed here; /readyz reports them until then."""

    list_display = [
        "pk",
        "notification",
        channel_label,
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ]
    list_filter = ["status", ChannelFilter]
    actions = ["retry_now", "dismiss"]

    @admin.action(description="Retry now (attempts start again)")
    def retry_now(self, request, queryset):
        from il2ward.notifications import deliveries_retry

        ids = deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)), by=request.user,
                               now=timezone.now())  # fmt: skip
        self.message_user(request, f"{len(ids)} deliveries queued again.", messages.SUCCESS)

    @admin.action(description="Dismiss dead letters (no further attempts)")
    def dismiss(self, request, queryset):
        from il2ward.notifications import deliveries_dismiss

        ids = deliveries_dismiss(delivery_ids=list(queryset.values_list("pk", flat=True)), by=request.user,
                                 now=timezone.now())  # fmt: skip
        self.message_user(request, f"{len(ids)} dead letters dismissed.", messages.SUCCESS)


@admin.register(Medication)
class MedicationAdmin(admin.ModelAdmin):
    """The patient's medication list, read by the eligibility interaction warnings (HOLD-RULES §2). Audited; an entry
    is made inactive rather than deleted."""

    list_display = ["patient", "name", "active", "recorded_at"]
    list_filter = ["active"]
    search_fields = ["patient__mrn", "name"]
    fields = ["patient", "name", "active"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Through the services, so the change is audited with its old and new values."""
        from il2ward.services import medication_record, medication_update

        data, now = form.cleaned_data, timezone.now()
        if change:
            changes = {field: data[field] for field in ("name", "active") if field in form.changed_data}
            medication = medication_update(medication_id=obj.pk, changes=changes, by=request.user, now=now)
        else:
            medication = medication_record(patient=data["patient"], name=data["name"], active=data["active"],
                                           by=request.user, now=now)  # fmt: skip
            obj.pk = medication.pk
        obj.refresh_from_db()
