"""The oncologist's pages: the course list, the course review with its signed decisions, and the printed summary.

Thin: parse, authorise, call one service, redirect (or show the page again with the form's errors). Anyone who may
see the patient may read the course page (a nurse: her wards' patients; others 404); only an oncologist signs (403).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from il2ward import access, security, timefmt
from il2ward.errors import Conflict, Invalid
from il2ward.forms import apply_errors, error_summary
from il2ward.models import NURSING_ROLES, Role
from scheduling import selectors, services
from scheduling.domain import calendar, dosing
from scheduling.domain.eligibility import ELIGIBILITY_ITEMS
from scheduling.models import Course, Dose
from scheduling.review import forms as review_forms
from scheduling.review import plots
from scheduling.review.forms import CourseForm
from scheduling.selectors import review
from scheduling.selectors.courses import course_retreatment_check
from scheduling.services import decisions


@login_required
@require_GET
def course_list(request):
    now = timezone.now()
    return render(
        request, "scheduling/review/course_list.html", {"rows": review.course_list_rows(request.user, now=now)}
    )


@login_required
@require_GET
def course_page(request, pk: int):
    return _page(request, review.course_for(request.user, pk))


def _page(request, course: Course, *, bound: dict | None = None, status: int = 200, canonical_url: str = ""):
    now = timezone.now()
    rv = review.course_review(course, now=now) if course.status != Course.Status.SCHEDULING else None
    if rv is not None:
        rv.plots = plots.course_plots(rv, now=now)
    context = {
        "course": course,
        "review": rv,
        "zone": course.patient.ward.zone,
        "now": now,
        "scheduling": course.status == Course.Status.SCHEDULING,
        "can_sign": access.has_role(request.user, Role.ONCOLOGIST),
        "can_log_events": access.has_role(request.user, Role.ONCOLOGIST, *NURSING_ROLES),
        "forms": _forms(course, rv, bound or {}) if rv else {},
        "ctcae_terms": review_forms.CTCAE_TERMS,
        "error_summary": error_summary(*(bound or {}).values()),
        # A refused POST re-renders the course page: the address bar goes back to it (il2ward.js).
        "canonical_url": canonical_url,
    }
    with timezone.override(course.patient.ward.zone):  # every time on the page is ward-local
        return render(request, "scheduling/review/course.html", context, status=status)


# The page's course-level forms, by name: (form class, URL name of its POST, roles that may use it). They are loaded
# when their panel is first opened (htmx, `form_fragment`), so the page does not render five forms nobody opened.
LAZY_FORMS = {
    "cycle2": (review_forms.Cycle2Form, "review-cycle2", (Role.ONCOLOGIST,)),
    "stop": (review_forms.StopCourseForm, "review-stop", (Role.ONCOLOGIST,)),
    "discharge": (review_forms.DischargeForm, "review-discharge", (Role.ONCOLOGIST,)),
    "response": (review_forms.ResponseForm, "review-response", (Role.ONCOLOGIST,)),
    "adverse_event": (review_forms.AdverseEventForm, "review-adverse-event", (Role.ONCOLOGIST, *NURSING_ROLES)),
}


def _lazy_form(name: str, course: Course):
    form_class, url_name, _ = LAZY_FORMS[name]
    kwargs = {}
    if name in ("cycle2", "adverse_event"):
        kwargs["zone"] = course.patient.ward.zone
    if name == "adverse_event":
        kwargs["held_doses"] = _held_doses(course)
    return form_class(prefix=name, action=_url(url_name, course), **kwargs)


def _held_doses(course: Course) -> list[Dose]:
    return list(Dose.objects.filter(course=course, status=Dose.Status.HELD).order_by("cycle", "number"))


def _forms(course: Course, rv: review.CourseReview, bound: dict) -> dict:
    """The forms rendered with the page: what needs a decision now (eligibility, open holds, stop recommendations)
    and any form just posted with errors (bound). The other course-level forms load when their panel opens."""
    forms = {name: form for name, form in bound.items() if name in LAZY_FORMS}
    if not course.eligibility_attested:
        forms["eligibility"] = bound.get("eligibility") or review_forms.EligibilityForm(
            prefix="eligibility", action=_url("review-eligibility", course)
        )
    for cell in rv.open_holds:  # each open hold and stop recommendation carries its own signed form
        key = f"override-{cell.dose.pk}"
        url = reverse("review-override", args=[course.pk, cell.dose.pk])
        cell.form = bound.get(key) or review_forms.OverrideForm(prefix=key, action=url)
    for cell in rv.stop_pending:
        key = f"decision-{cell.dose.pk}"
        url = reverse("review-cycle-decision", args=[course.pk, cell.dose.pk])
        cell.form = bound.get(key) or review_forms.CycleDecisionForm(prefix=key, action=url)
    return forms


@login_required
@require_GET
def form_fragment(request, pk: int, name: str):
    """One course-level form as an HTML fragment, for its panel on the course page (htmx)."""
    course = review.course_for(request.user, pk)
    if name not in LAZY_FORMS:
        raise Http404("No such form")
    if not access.has_role(request.user, *LAZY_FORMS[name][2]):
        raise PermissionDenied("Not for your role.")
    with timezone.override(course.patient.ward.zone):
        return render(request, "scheduling/review/form_fragment.html", {"form": _lazy_form(name, course)})


def _url(name: str, course: Course) -> str:
    return reverse(name, args=[course.pk])


def _decide(request, pk: int, key: str, form_class, act, *, anchor: str, roles=(Role.ONCOLOGIST,), **form_kwargs):
    """POST a decision: 404 when the course is not visible, 403 for a role that may not sign, then one service."""
    course = review.course_for(request.user, pk)
    if not access.has_role(request.user, *roles):
        raise PermissionDenied("Only an oncologist signs this decision.")
    form = form_class(request.POST, prefix=key, action=request.path, **form_kwargs)
    status = 400
    if form.is_valid():
        try:
            message = act(course, form.cleaned_data, timezone.now())
        except Invalid as exc:
            for field, errors in exc.errors.items():
                form.add_error(_form_field(form, field), errors)
        except Conflict as exc:
            form.add_error(None, exc.detail)
            status = 409
        else:
            messages.success(request, message)
            return redirect(f"{reverse('course', args=[course.pk])}#{anchor}")
    course = review.course_for(request.user, pk)
    return _page(
        request, course, bound={key: form}, status=status, canonical_url=f"{reverse('course', args=[pk])}#{anchor}"
    )


def _form_field(form, field: str) -> str | None:
    aliases = {"first_at": "first_local", "onset_at": "onset_local", "resolved_at": "resolved_local", "items": None}
    field = aliases.get(field, field)
    return field if field in form.fields else None


def _signed(signature, zone) -> str:
    """ "Signed by Dr X, Tue 09 Mar 2027 14:05 CDT: <meaning>." for the confirmation message."""
    return f"Signed by {signature.printed_name}, {timefmt.local_text(signature.signed_at, zone)}: {signature.meaning}."


@login_required
@require_POST
def eligibility(request, pk: int):
    def act(course, data, now):
        form_items = {key: data[key] is True for key in ELIGIBILITY_ITEMS}
        course = services.course_attest_eligibility(
            course_id=course.pk, items=form_items, password=data["password"], by=request.user, now=now
        )
        return _signed(course.eligibility_signature, course.patient.ward.zone)

    return _decide(request, pk, "eligibility", review_forms.EligibilityForm, act, anchor="eligibility")


@login_required
@require_POST
def stop_course(request, pk: int):
    def act(course, data, now):
        services.course_stop(
            course_id=course.pk, reason=data["reason"], password=data["password"], by=request.user, now=now
        )
        return "Course stopped: its remaining open slots are cancelled."

    return _decide(request, pk, "stop", review_forms.StopCourseForm, act, anchor="decisions")


@login_required
@require_POST
def cycle2(request, pk: int):
    course = review.course_for(request.user, pk)

    def act(course, data, now):
        course = decisions.cycle2_move(
            course_id=course.pk,
            first_at=data["first_at"],
            reason=data["reason"],
            password=data["password"],
            by=request.user,
            now=now,
        )
        local = timefmt.local_text(course.cycle2_first_at, course.patient.ward.zone)
        return f"Cycle 2 now starts {local}; its 14 slots moved with it."

    return _decide(request, pk, "cycle2", review_forms.Cycle2Form, act, anchor="cycle2", zone=course.patient.ward.zone)


@login_required
@require_POST
def discharge(request, pk: int):
    def act(course, data, now):
        decisions.course_discharge(
            course_id=course.pk,
            discharge_date=data["discharge_date"],
            password=data["password"],
            by=request.user,
            now=now,
        )
        return f"Discharge date {data['discharge_date']:%d %b %Y} signed."

    return _decide(request, pk, "discharge", review_forms.DischargeForm, act, anchor="retreatment")


@login_required
@require_POST
def response(request, pk: int):
    def act(course, data, now):
        assessment = decisions.response_assess(
            course_id=course.pk,
            assessed_on=data["assessed_on"],
            response=data["response"],
            note=data["note"],
            password=data["password"],
            by=request.user,
            now=now,
        )
        return f"Response assessment signed: {assessment.get_response_display()}."

    return _decide(request, pk, "response", review_forms.ResponseForm, act, anchor="retreatment")


def _course_dose(course: Course, dose_pk: int) -> Dose:
    try:
        return Dose.objects.get(course=course, pk=dose_pk)
    except Dose.DoesNotExist as exc:
        raise Http404("No such dose in this course") from exc


@login_required
@require_POST
def dose_override(request, pk: int, dose_pk: int):
    def act(course, data, now):
        dose = _course_dose(course, dose_pk)
        override = services.dose_override(
            dose_id=dose.pk, reason=data["reason"], password=data["password"], by=request.user, now=now
        )
        return f"{dose.label}: hold overridden. " + _signed(override.signature, course.patient.ward.zone)

    return _decide(request, pk, f"override-{dose_pk}", review_forms.OverrideForm, act, anchor=f"dose-{dose_pk}")


@login_required
@require_POST
def cycle_decision(request, pk: int, dose_pk: int):
    def act(course, data, now):
        dose = _course_dose(course, dose_pk)
        decision = decisions.cycle_decide(
            dose_id=dose.pk,
            choice=data["choice"],
            reason=data["reason"],
            password=data["password"],
            by=request.user,
            now=now,
        )
        return f"Cycle {decision.cycle}: {decision.get_choice_display().lower()}. " + _signed(
            decision.signature, course.patient.ward.zone
        )

    return _decide(request, pk, f"decision-{dose_pk}", review_forms.CycleDecisionForm, act, anchor=f"dose-{dose_pk}")


@login_required
@require_POST
def adverse_event(request, pk: int):
    course = review.course_for(request.user, pk)
    held = _held_doses(course)

    def act(course, data, now):
        event = decisions.adverse_event_record(
            course_id=course.pk,
            category=data["category"],
            term=data["term"],
            grade=data["grade"],
            onset_at=data["onset_at"],
            resolved_at=data["resolved_at"],
            note=data["note"],
            held_dose_ids=data["held_doses"],
            by=request.user,
            now=now,
        )
        return f"Adverse event recorded: {event.term}, grade {event.grade}."

    return _decide(
        request,
        pk,
        "adverse_event",
        review_forms.AdverseEventForm,
        act,
        anchor="adverse-events",
        roles=(Role.ONCOLOGIST, *NURSING_ROLES),
        zone=course.patient.ward.zone,
        held_doses=held,
    )


@login_required
@require_POST
def adverse_event_error(request, pk: int, event_pk: int):
    course = review.course_for(request.user, pk)
    if not access.has_role(request.user, Role.ONCOLOGIST, *NURSING_ROLES):
        raise PermissionDenied("Not for your role.")
    if not course.adverse_events.filter(pk=event_pk).exists():
        raise Http404("No such adverse event in this course")
    form = review_forms.EnteredInErrorForm(request.POST, prefix=f"ae-{event_pk}", action=request.path)
    if form.is_valid():
        try:
            decisions.adverse_event_enter_in_error(
                event_id=event_pk, reason=form.cleaned_data["reason"], by=request.user, now=timezone.now()
            )
        except Conflict as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, "Adverse event marked entered in error (kept in the log).")
    else:
        messages.error(request, "Say why the entry is wrong.")
    return redirect(f"{reverse('course', args=[course.pk])}#adverse-events")


# --- The printable summary and its PDF --------------------------------------------------------------------------------


def _summary_html(request, course: Course) -> str:
    now = timezone.now()
    rv = review.course_review(course, now=now)
    rv.plots = plots.course_plots(rv, now=now)
    context = {"course": course, "review": rv, "zone": rv.zone, "now": now, "printed_by": request.user}
    with timezone.override(course.patient.ward.zone):
        return render_to_string("scheduling/review/summary.html", context, request=request)


@login_required
@require_GET
def summary(request, pk: int):
    course = review.course_for(request.user, pk)
    if course.status == Course.Status.SCHEDULING:
        raise Http404("The calendar is not written yet")
    return HttpResponse(_summary_html(request, course))


def _no_fetch(url, *args, **kwargs):
    """The summary is self-contained: WeasyPrint fetches nothing (no network, no files)."""
    raise ValueError(f"external resource refused: {url}")


@login_required
@require_GET
def summary_pdf(request, pk: int):
    import weasyprint  # heavy import (Pango): only when a PDF is asked for

    course = review.course_for(request.user, pk)
    if course.status == Course.Status.SCHEDULING:
        raise Http404("The calendar is not written yet")
    pdf = weasyprint.HTML(string=_summary_html(request, course), url_fetcher=_no_fetch).write_pdf()
    security.export(request, user=request.user, fmt="pdf", course=course.pk)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="course-{course.pk}-summary.pdf"'  # ids only
    return response


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
        return render(request, "scheduling/review/course_new.html", {"form": form, "preview": preview})


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
