"""Pages (server-rendered, thin): home, ward page, new course, course page."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone

from il2ward import access
from il2ward.errors import Conflict, Invalid
from il2ward.forms import apply_errors
from il2ward.models import Role
from scheduling import selectors, services
from scheduling.decisions import course_retreatment_check
from scheduling.domain import calendar, dosing
from scheduling.forms import CourseForm


@login_required
def course_new(request):
    if not access.has_role(request.user, Role.ONCOLOGIST):
        raise PermissionDenied("Only an oncologist creates a course.")
    patients = access.visible_patients(request.user).select_related("ward")
    # Bound on every POST, even an empty one (`request.POST or None` would leave it unbound: no cleaned_data, a 500).
    data = request.POST if request.method == "POST" else None
    form = CourseForm(data, patients=patients, initial={"patient": request.GET.get("patient")})
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        preview = course_preview(data)
        if not request.POST.get("preview"):
            try:
                course = services.course_create(
                    patient=data["patient"],
                    first_dose_at=data["first_dose_at"],
                    dosing_weight_kg=data["dosing_weight_kg"],
                    dosing_weight_source=data["dosing_weight_source"],
                    baseline_weight_kg=data.get("baseline_weight_kg"),
                    rule_set_name=data["rule_set"],
                    **form.confirmation(),
                    by=request.user,
                    now=timezone.now(),
                )
            except Conflict as exc:
                form.add_error(None, exc.detail)
            except Invalid as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, "Course created; its 28 slots are being written.")
                return redirect("course", pk=course.pk)
    elif request.method == "POST" and form.cleaned_data.get("dosing_weight_kg"):
        preview = course_preview(form.cleaned_data)
    with timezone.override(preview["zone"] if preview and "zone" in preview else timezone.get_current_timezone()):
        return render(request, "scheduling/course_new.html", {"form": form, "preview": preview})


def course_preview(data) -> dict | None:
    weight = data.get("dosing_weight_kg")
    if weight is None:
        return None
    dose = dosing.dose_iu(weight, iu_per_kg=settings.IL2WARD_DOSE_IU_PER_KG)
    preview = {"dose_iu": dose, "preparation": selectors.preparation_of(dose), "weight": weight}
    if data.get("first_dose_at") and data.get("patient"):
        zone = data["patient"].ward.zone
        slots = calendar.course_slots(data["first_dose_at"], zone=zone)
        preview["slots"] = [(s, s.due_at.astimezone(zone)) for s in slots]
        preview["zone"] = zone
        # SCH-RETREAT: say before saving when this patient may start a new course, and why not now.
        allowed, earliest, reasons = course_retreatment_check(data["patient"], data["first_dose_at"], timezone.now())
        preview["retreatment"] = {"allowed": allowed, "earliest": earliest, "reasons": reasons}
    return preview
