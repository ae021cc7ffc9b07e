"""Read-only admin for observations and rule-set versions: clinical records change only through services."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from il2ward.admin import ReadOnlyAdmin
from monitoring.models import (
    BedsideExam,
    ClinicalEvent,
    FluidBalance,
    LabResult,
    NeuroAssessment,
    RuleSetVersion,
    VitalSigns,
    WeightMeasurement,
)

OBSERVATION_LIST = ["pk", "patient", "recorded_at", "recorded_by", "entered_in_error_at"]


class ObservationAdmin(ReadOnlyAdmin):
    list_select_related = ["patient", "recorded_by"]
    list_filter = [("entered_in_error_at", admin.EmptyFieldListFilter)]
    date_hierarchy = "recorded_at"
    search_fields = ["patient__mrn"]
    ordering = ["-recorded_at", "-pk"]


@admin.register(VitalSigns)
class VitalSignsAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:3], "sbp", "dbp", "heart_rate", "spo2", "temp_c", *OBSERVATION_LIST[3:]]


@admin.register(NeuroAssessment)
class NeuroAssessmentAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:3], "rass", "confusion", *OBSERVATION_LIST[3:]]


@admin.register(BedsideExam)
class BedsideExamAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:3], "resting_dyspnea", "rales", "intubated", *OBSERVATION_LIST[3:]]


@admin.register(WeightMeasurement)
class WeightMeasurementAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:3], "weight_kg", *OBSERVATION_LIST[3:]]


@admin.register(FluidBalance)
class FluidBalanceAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:2], "period_start", "period_end", "urine_ml", *OBSERVATION_LIST[3:]]


@admin.register(LabResult)
class LabResultAdmin(ObservationAdmin):
    list_display = [
        *OBSERVATION_LIST[:3],
        "creatinine_mg_dl",
        "platelets_k_ul",
        "bilirubin_mg_dl",
        *OBSERVATION_LIST[3:],
    ]


@admin.register(ClinicalEvent)
class ClinicalEventAdmin(ObservationAdmin):
    list_display = [*OBSERVATION_LIST[:3], "kind", "resolved_at", *OBSERVATION_LIST[3:]]
    list_filter = ["kind", *ObservationAdmin.list_filter]


@admin.register(RuleSetVersion)
class RuleSetVersionAdmin(ReadOnlyAdmin):
    """Each version's thresholds and options as they were, read-only: a site changes them with
    ``manage.py rule_set_override`` (a new version, audited), never here."""

    list_display = ["name", "version", "base", "spec", "created_at", "created_by"]
    list_filter = ["name"]
    readonly_fields = ["name", "version", "base", "spec", "overrides", "rules", "thresholds", "options", "created_at"]
    fields = readonly_fields

    @admin.display(description="HOLD-RULES version")
    def spec(self, obj):
        return obj.definition.get("spec", 1)

    def rules(self, obj):
        return ", ".join(obj.definition.get("rules", []))

    def thresholds(self, obj):
        return _table(obj.definition.get("thresholds", {}), obj.overrides)

    def options(self, obj):
        return _table(obj.definition.get("options", {}), obj.overrides)


def _table(values: dict, overrides: dict):
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
        ((key, value, "site" if key in overrides else "") for key, value in sorted(values.items())),
    )
    return format_html("<table><tr><th>key</th><th>value</th><th></th></tr>{}</table>", rows)
