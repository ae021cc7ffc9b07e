from django.contrib import admin

from il2ward.models import AuditEvent, Heartbeat, Patient, Signature, StaffProfile, Ward


@admin.register(Ward)
class WardAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "tz"]
    search_fields = ["code", "name"]


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "printed_name"]
    filter_horizontal = ["wards"]
    search_fields = ["user__username", "printed_name"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["mrn", "name", "ward"]
    list_filter = ["ward"]
    search_fields = ["mrn", "name"]

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


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ["signed_at", "printed_name", "meaning", "object_type", "object_id"]


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "at"]
