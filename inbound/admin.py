"""The integration analyst's pages: the code mapping (every version; a change writes the next one through
inbound.services.mapping_change, audited) and the inbound message log with its dead letters (re-process, dismiss)."""

from django.contrib import admin, messages
from django.utils import timezone

from il2ward.admin import ReadOnlyAdmin
from il2ward.errors import Conflict, Invalid
from inbound.models import CodeMapping, InboundMessage, MappingVersion
from inbound.services import MAPPING_FIELDS, mapping_change, message_dismiss, message_reprocess


class CodeMappingInline(admin.TabularInline):
    model = CodeMapping
    fields = ["system", "code", "display", "unit", "target", "field", "factor", "divisor", "offset"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MappingVersion)
class MappingVersionAdmin(ReadOnlyAdmin):
    list_display = ["number", "created_at", "created_by", "reason", "rows_count"]
    inlines = [CodeMappingInline]
    readonly_fields = ["number", "created_at", "created_by", "reason"]

    @admin.display(description="rows")
    def rows_count(self, obj) -> int:
        return obj.rows.count()


@admin.register(CodeMapping)
class CodeMappingAdmin(admin.ModelAdmin):
    """Adding a row writes the next mapping version with it (a row of the same system, code and unit is replaced);
    the "remove" action writes the next version without the selected rows. Rows are never edited in place."""

    list_display = ["system", "code", "display", "unit", "target", "field", "factor", "divisor", "offset", "version"]
    list_filter = ["version", "target", "system"]
    search_fields = ["code", "display", "field"]
    fields = list(MAPPING_FIELDS)
    actions = ["remove_rows"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        row = {k: form.cleaned_data.get(k) for k in MAPPING_FIELDS}
        try:
            version = mapping_change(add=[row], reason=f"Admin: {obj}", by=request.user, now=timezone.now())
        except Invalid as exc:
            self.message_user(request, f"Not changed: {exc.errors}", messages.ERROR)
            return
        obj.pk = version.rows.get(system=row["system"], code=row["code"], unit=row["unit"]).pk

    def save_related(self, request, form, formsets, change):
        pass

    @admin.action(description="Remove from the mapping (writes the next version)")
    def remove_rows(self, request, queryset):
        rows = [{"system": r.system, "code": r.code, "unit": r.unit} for r in queryset]
        try:
            version = mapping_change(remove=rows, reason="Admin: rows removed", by=request.user, now=timezone.now())
        except Invalid as exc:
            self.message_user(request, f"Not changed (select rows of the current version): {exc.errors}",
                              messages.ERROR)  # fmt: skip
            return
        self.message_user(request, f"Mapping version {version.number} written.", messages.SUCCESS)


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    """Search by control id, MRN as sent, type; filter by status (refused = the dead-letter list) and error."""

    list_display = ["received_at", "source_system", "control_id", "message_type", "status", "error_code",
                    "error_field", "patient_ref", "times_received"]  # fmt: skip
    list_filter = ["status", "protocol", "message_type", "error_code", "source_system"]
    search_fields = ["=control_id", "=patient_ref", "message_type"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in InboundMessage._meta.fields]
    actions = ["reprocess", "dismiss"]

    @admin.action(description="Re-process refused messages (after the mapping or the patient was fixed)")
    def reprocess(self, request, queryset):
        outcome = {"accepted": 0, "refused": 0, "skipped": 0}
        for pk in queryset.values_list("pk", flat=True):
            try:
                row = message_reprocess(message_id=pk, by=request.user, now=timezone.now())
            except Conflict:
                outcome["skipped"] += 1
                continue
            outcome["accepted" if row.status == InboundMessage.Status.REPROCESSED else "refused"] += 1
        self.message_user(request, ", ".join(f"{n} {k}" for k, n in outcome.items()), messages.INFO)

    @admin.action(description="Dismiss refused messages (not stored, off the dead-letter list)")
    def dismiss(self, request, queryset):
        n = 0
        for pk in queryset.filter(status=InboundMessage.Status.REFUSED).values_list("pk", flat=True):
            message_dismiss(message_id=pk, reason="Dismissed in the admin", by=request.user, now=timezone.now())
            n += 1
        self.message_user(request, f"{n} dismissed.", messages.SUCCESS)
