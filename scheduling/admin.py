"""Read-only admin for the clinical record: it is changed only through the services (audited), never here."""

from django.contrib import admin

from il2ward.admin import ReadOnlyAdmin
from scheduling.models import (
    Administration,
    Course,
    Dose,
    DoseEvaluation,
    DoubleCheck,
    Hold,
    Override,
    RetreatmentBar,
)


@admin.register(Course)
class CourseAdmin(ReadOnlyAdmin):
    list_display = ["pk", "patient", "status", "first_dose_at", "dose_iu", "rule_set"]
    list_filter = ["status", "patient__ward"]


@admin.register(Dose)
class DoseAdmin(ReadOnlyAdmin):
    list_display = ["pk", "course", "cycle", "number", "due_at", "status", "flag"]
    list_filter = ["status", "flag"]


@admin.register(DoseEvaluation)
class DoseEvaluationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "dose", "decision", "rule_set", "evaluated_at", "trigger"]
    list_filter = ["decision", "trigger"]


@admin.register(Administration)
class AdministrationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "dose", "started_at", "given_by", "verified_by", "timing", "entered_in_error_at"]


@admin.register(DoubleCheck)
class DoubleCheckAdmin(ReadOnlyAdmin):
    """Seen, never changed here: a check is asked, accepted, refused, withdrawn or expired through its services."""

    list_display = ["pk", "dose", "status", "requested_by", "requested_at", "expires_at", "decided_by", "mismatches"]
    list_filter = ["status"]
    list_select_related = ["dose", "requested_by", "decided_by"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["pk", "dose", "reason", "automatic", "at"]


@admin.register(Override)
class OverrideAdmin(ReadOnlyAdmin):
    list_display = ["pk", "dose", "by", "at"]


@admin.register(RetreatmentBar)
class RetreatmentBarAdmin(ReadOnlyAdmin):
    list_display = ["pk", "course", "kind", "source", "at"]
