"""The nurse's pages (the eMAR): home, the ward board (polled by htmx), the patient page (MAR, flowsheet, capillary
leak), charting a dose (assessment, give with a blind double check, hold, correction), the other entries (fluids,
labs, events, teaching) and the downtime print.

Thin: parse the form, authorise through il2ward.access (another ward's patient is a 404), call one service, and show
what a service refuses (Invalid → the fields, Conflict → a message with its code) instead of failing.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import parse_etags

from il2ward import access, people, security
from il2ward.errors import Conflict, Invalid
from il2ward.forms import error_summary
from il2ward.models import Role
from monitoring import services as obs
from monitoring.domain import engine
from monitoring.domain.engine import BLOCKING_LEVELS
from monitoring.models import LAB_FIELDS, FluidBalance, WeightMeasurement
from monitoring.selectors import event_for
from scheduling import selectors, services
from scheduling.mar import forms as nurse_forms
from scheduling.models import Administration, Course, Dose, TeachingRecord
from scheduling.selectors import board, double_checks
from scheduling.services import assessments as nurse_services
from scheduling.services import double_checks as double_check_services

CLINICAL_ROLES = (Role.NURSE, Role.CHARGE_NURSE, Role.ONCOLOGIST)


def _require(user, *roles) -> None:
    if not access.has_role(user, *roles):
        raise PermissionDenied("Not allowed for your role.")


def _render(request, template, context, *, zone, status=200):
    context.setdefault("wards", access.visible_wards(request.user))  # the ward links in the top bar
    with timezone.override(zone):  # every time on a ward page is ward-local
        return render(request, template, context, status=status)


# --- Home and the ward board ------------------------------------------------------------------------------------------


@login_required
def home(request):
    if access.has_role(request.user, Role.ONCOLOGIST):
        return redirect("course-list")
    ward = access.visible_wards(request.user).first()
    if ward is None:
        return render(request, "scheduling/mar/no_ward.html")
    return redirect("ward", code=ward.code)


# Bump when the row markup changes: a board open across a deploy then gets its rows afresh.
BOARD_FORMAT = "2"
MAX_KNOWN_ROWS = 2000  # an X-IL2Ward-Rows header naming more rows is not a board's


def board_etag(ward, user, minute) -> str:
    """The board's version as this user sees it: the ward's change counter (il2ward/board_version.py), the minute (the
    countdowns and the due soon → due now → overdue states move with it) and the viewer ("yours")."""
    stamp = f"{minute:%Y%m%d%H%M}"
    raw = f"{ward.board_version}:{stamp}:{user.pk}:{BOARD_FORMAT}"
    return f'W/"{hashlib.blake2b(raw.encode(), digest_size=9).hexdigest()}.{stamp}"'


def _known_rows(header: str) -> dict[int, str] | None:
    """The rows the polling page holds, "pk:fingerprint pk:fingerprint ..."; None when it said nothing usable (then
    it gets every row)."""
    known = {}
    for item in header.split()[:MAX_KNOWN_ROWS]:
        pk, _, key = item.partition(":")
        if not pk.isdigit() or not key.isalnum():
            return None
        known[int(pk)] = key
    return known or None


@login_required
def ward_page(request, code: str):
    """The ward board. htmx polls it every 30 s with X-IL2Ward-Poll (not user action: the session still expires),
    sending the ETag it holds (If-None-Match) and its rows' fingerprints (X-IL2Ward-Rows): 304 when the ward and the
    minute have not moved; otherwise the rows that changed, were added or went, as out-of-band swaps, the ticking
    texts of the others, the summary and the rows' order."""
    if request.htmx:
        ward, wards = access.ward_for(request.user, code), None
    else:  # the page's top bar lists the user's wards: read them once and take this one from them (same access)
        wards = list(access.visible_wards(request.user))
        ward = next((w for w in wards if w.code == code), None)
        if ward is None:
            raise Http404("No such ward")
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)  # the board as of the minute: a function of the ETag's parts
    etag = board_etag(ward, request.user, minute)
    held = parse_etags(request.headers.get("If-None-Match", ""))
    if request.htmx and etag in held:
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    context = {"ward": ward, "board": board.ward_board(ward, now=minute), "now": now, "etag": etag, "wards": wards}
    # The double checks on this ward waiting for this nurse (not her own): refreshed with the board's poll.
    context["checks"] = double_checks.waiting_on_ward(request.user, now=now, ward=ward)
    context["can_assign"] = access.has_role(request.user, Role.CHARGE_NURSE, Role.ADMIN)
    if request.htmx:  # the poll: what changed
        known = _known_rows(request.headers.get("X-IL2Ward-Rows", ""))
        views = context["board"].views
        if known is None or not views:
            context["full"] = True
        else:
            keys = {row.pk: row.key(request.user.pk) for row in views}
            context["changed"] = [r for r in views if r.pk in known and known[r.pk] != keys[r.pk]]
            context["added"] = [r for r in views if r.pk not in known]
            # The countdowns and vitals ages of the rows not re-sent, unless the page got this minute's already.
            same_minute = any(e.endswith(f'.{minute:%Y%m%d%H%M}"') for e in held)
            context["kept"] = [] if same_minute else [r for r in views if known.get(r.pk) == keys[r.pk]]
            context["removed"] = [pk for pk in known if pk not in keys]
            context["order"] = " ".join(str(r.pk) for r in views)
        with timezone.override(ward.zone):
            response = render(request, "scheduling/mar/board_poll.html", context)
    else:
        response = _render(request, "scheduling/mar/board.html", context, zone=ward.zone)
    response["ETag"] = etag
    return response


@login_required
def downtime(request, code: str):
    """A printable sheet for the next 24 h: every due slot, flags, last vitals and blank rows to chart by hand."""
    ward = access.ward_for(request.user, code)
    now = timezone.now()
    entries = board.downtime_sheet(ward, now=now)
    security.export(request, user=request.user, fmt="downtime_sheet", ward=ward.code, doses=len(entries))
    context = {
        "ward": ward,
        "entries": entries,
        "now": now,
        "until": now + timedelta(hours=24),
        "vitals_rows": range(12),  # vitals every 2 h for 24 h
    }
    return _render(request, "scheduling/mar/downtime.html", context, zone=ward.zone)


# --- Patient page ---------------------------------------------------------------------------------------------------


@login_required
def patient_page(request, pk: int):
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    course = board.patient_course(patient)
    current = board.next_open_dose(course, now=now)
    zone = patient.ward.zone
    teaching = board.latest_teaching(course)
    context = {
        "patient": patient,
        "course": course,
        "current": current,
        "doses": board.mar(course) if course else [],
        "panel": board.live_panel(patient, course, current, now=now),
        "flow": board.flowsheet(patient, course),
        "teaching": teaching,
        "teaching_rows": [(label, bool(teaching.items.get(key))) for key, label in TeachingRecord.ITEMS]
        if teaching
        else [],
        "day": board.course_day(course, now=now, zone=zone) if course else None,
        "preparation": selectors.preparation_for(course) if course else None,
        "now": now,
    }
    return _render(request, "scheduling/mar/patient.html", context, zone=zone)


# --- Charting a dose ------------------------------------------------------------------------------------------------


def _urine_since_default(patient, *, now):
    """Urine must be recorded without gaps: continue from the end of the last fluids period, else from the start of
    the current nursing shift (never from the previous measurement: 520 mL "since" 12 min ago is a slip)."""
    last_end = (
        FluidBalance.objects.filter(patient=patient, entered_in_error_at__isnull=True, period_end__lte=now)
        .order_by("-period_end")
        .values_list("period_end", flat=True)
        .first()
    )
    if last_end is not None and now - last_end <= timedelta(hours=16):
        return last_end
    return nurse_forms.last_shift(now, patient.ward.zone)[1]


def _weight_missing(patient, *, now) -> bool:
    return not WeightMeasurement.objects.filter(
        patient=patient,
        entered_in_error_at__isnull=True,
        recorded_at__gt=now - timedelta(hours=24),
        recorded_at__lte=now,
    ).exists()


def _assessment_form(patient, dose, *, now, data=None):
    zone = patient.ward.zone
    initial = {
        "recorded_at": now.replace(second=0, microsecond=0),
        "urine_since": _urine_since_default(patient, now=now),
    }
    return nurse_forms.AssessmentForm(
        data, zone=zone, initial=initial, weight_missing=_weight_missing(patient, now=now), prefix="assess"
    )


def _give_form(dose, *, now, data=None):
    zone = dose.course.patient.ward.zone
    return nurse_forms.GiveForm(
        data, zone=zone, initial={"started_at": now.replace(second=0, microsecond=0)}, prefix="give"
    )


def _chartable(dose) -> bool:
    return dose.status == Dose.Status.SCHEDULED and dose.course.status in Course.OPEN_STATUSES


@login_required
def dose_page(request, pk: int):
    """GET: the dose with its live evaluation (evaluated on opening, HOLD-RULES §3). POST action = assess | give |
    hold | correct; each calls one service and shows what it refused."""
    dose = selectors.dose_for(request.user, pk)
    now = timezone.now()
    if request.method == "POST":
        handler = {
            "assess": _post_assess,
            "give": _post_give,
            "hold": _post_hold,
            "undo_hold": _post_undo_hold,
            "correct": _post_correct,
            "request_check": _post_request_check,
            "accept_check": _post_accept_check,
            "refuse_check": _post_refuse_check,
            "cancel_check": _post_cancel_check,
        }.get(request.POST.get("action", ""))
        if handler is None:
            return HttpResponseBadRequest("Unknown action.")
        return handler(request, dose, now=now)
    if _chartable(dose):
        services.dose_evaluate(dose_id=dose.pk, now=now, trigger="opened")
        dose = selectors.dose_for(request.user, pk)
    return _dose_response(request, dose, now=now)


def _dose_response(request, dose, *, now, status=200, refusal=None, saved=False, **forms):
    patient = dose.course.patient
    evaluation = dose.latest_evaluation
    check = double_checks.latest_check(dose)  # one read: the pending check, or the last refused one
    open_check = check if check is not None and double_checks.state_of(check, now=now) == "pending" else None
    # Blind (ISMP): another nurse who may answer the pending check sees the order, never the computed dose.
    checker = (
        open_check is not None
        and _chartable(dose)
        and double_check_services.may_check(request.user, open_check, ward_id=patient.ward_id) is None
    )
    rules = engine.blocking_rules(evaluation.findings if evaluation else None)
    overrides = list(dose.overrides.select_related("by__profile"))
    standing_override = any(o.lapsed_at is None for o in overrides)
    holds = list(dose.holds.select_related("by__profile"))  # the history and the undo read the same rows
    decision = evaluation.decision if evaluation else ""
    can_give = access.is_nursing(request.user)
    context = {
        "dose": dose,
        "course": dose.course,
        "patient": patient,
        "evaluation": evaluation,
        "rules": rules,
        # rule ids the refusal's own text does not already name
        "refusal_rules": [r for r in rules if refusal is None or r not in refusal.detail],
        "overrides": overrides,
        "exam_yes_no": tuple(nurse_forms.EXAM_LABELS),
        "standing_override": standing_override,
        # Action first: what the decision allows, why (the nurse's sentence per blocking finding), what is missing.
        "reasons": [f for f in (evaluation.findings if evaluation else []) if f["level"] in BLOCKING_LEVELS],
        "missing_words": board.missing_in_words(evaluation.missing if evaluation else ()),
        # A give refused for its input (400) keeps the form with what was typed; a refusal by the rules does not.
        "give_allowed": _chartable(dose)
        and can_give
        and open_check is None
        and (
            decision == "give"
            or (decision == "hold" and standing_override)
            or bool(forms.get("give_form") and forms["give_form"].errors)
        ),
        "is_oncologist": access.has_role(request.user, Role.ONCOLOGIST),
        "error_summary": error_summary(*forms.values()),
        "history": list(
            dose.administrations.select_related(
                "given_by__profile", "verified_by__profile", "entered_in_error_by__profile"
            ).order_by("charted_at", "pk")
        ),
        "holds": holds,
        "preparation": selectors.preparation_for(dose.course),
        "chartable": _chartable(dose),
        "refusal": refusal,
        "saved": saved,
        "crumb": f"Dose C{dose.cycle} #{dose.number}",
        "assess_form": forms.get("assess_form") or _assessment_form(patient, dose, now=now),
        "give_form": forms.get("give_form") or _give_form(dose, now=now),
        "hold_form": forms.get("hold_form") or nurse_forms.HoldForm(rules=rules, prefix="hold"),
        "correct_form": forms.get("correct_form") or nurse_forms.CorrectionForm(prefix="correct"),
        "undo_form": forms.get("undo_form") or nurse_forms.HoldUndoForm(prefix="undo"),
        "undoable_hold": _undoable_hold(dose, holds, now=now),
        "can_give": can_give,
        "now": now,
        "open_check": open_check,
        "refused_check": check if check is not None and check.status == "refused" and open_check is None else None,
        "checker": checker,
        "order": double_checks.order_of(dose.course) if checker else None,
        "own_check": open_check is not None and open_check.requested_by_id == request.user.pk,
        "check_modes": settings.IL2WARD_DOUBLE_CHECK,
        "accept_form": forms.get("accept_form") or nurse_forms.CheckAcceptForm(prefix="check"),
        "refuse_form": forms.get("refuse_form") or nurse_forms.CheckRefuseForm(prefix="refuse"),
    }
    if checker or (can_give and not _chartable(dose)):
        # Its dose, vials and volume are the charting nurse's figures: hidden from the second nurse, and from every
        # nurse once the slot is closed (a given dose's recorded amount stays in its history).
        context["preparation"] = None
    return _render(request, "scheduling/mar/dose.html", context, zone=patient.ward.zone, status=status)


def _undoable_hold(dose, holds, *, now):
    """The manual hold a nurse may still undo: standing, and the slot's window not yet closed."""
    if dose.status != Dose.Status.HELD or now > dose.due_at + timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES):
        return None
    return next((h for h in holds if h.entered_in_error_at is None and not h.automatic), None)


def _refused(request, dose, exc: Conflict, *, now, **forms):
    """A refusal (409) is shown on the page with a fresh evaluation: the refused write was rolled back."""
    if _chartable_now(dose):
        services.dose_evaluate(dose_id=dose.pk, now=now, trigger="charting")
    dose = selectors.dose_for(request.user, dose.pk)
    return _dose_response(request, dose, now=now, status=409, refusal=exc, **forms)


def _chartable_now(dose) -> bool:
    fresh = Dose.objects.filter(pk=dose.pk).values_list("status", "course__status").first()
    return fresh is not None and fresh[0] == Dose.Status.SCHEDULED and fresh[1] in Course.OPEN_STATUSES


def _post_assess(request, dose, *, now):
    _require(request.user, *CLINICAL_ROLES)
    patient = dose.course.patient
    form = _assessment_form(patient, dose, now=now, data=request.POST)
    if form.is_valid():
        try:
            nurse_services.assessment_record(
                patient=patient,
                dose_id=dose.pk if _chartable(dose) else None,
                by=request.user,
                now=now,
                **form.service_kwargs(),
            )
        except Invalid as exc:
            nurse_forms.apply_errors(form, exc)
        else:
            if not request.htmx:
                messages.success(request, "Assessment recorded; the dose was evaluated on it.")
                return redirect("dose", pk=dose.pk)
            dose = selectors.dose_for(request.user, dose.pk)
            return _dose_response(request, dose, now=now, saved=True)
    return _dose_response(request, dose, now=now, status=200 if request.htmx else 400, assess_form=form)


def _chart_give(request, dose, form, *, now, chart, done):
    """What both ways of charting a give share (co-signed here, or waiting for a check from the second nurse's own
    session): a nurse or charge nurse; the form checked (400 with its errors); one service call with the first
    nurse's give, its refusal shown (409) or its Invalid put on the form's fields (400); then the dose page."""
    _require(request.user, Role.NURSE, Role.CHARGE_NURSE)
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, give_form=form)
    data = form.cleaned_data
    give = {
        "dose_id": dose.pk,
        "by": request.user,
        "started_at": data["started_at"],
        "ended_at": data.get("ended_at"),
        "vial_lot": data["vial_lot"],
        "reconstituted_at": data["reconstituted_at"],
        "early_reason": data.get("early_reason", ""),
        "now": now,
    }
    try:
        result = chart(data, give)
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, give_form=form)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, give_form=form)
    messages.success(request, done(result))
    return redirect("dose", pk=dose.pk)


def _post_give(request, dose, *, now):
    def chart(data, give):
        return services.dose_administer(
            **give,
            verifier_username=data["verifier"],
            verifier_password=data["verifier_password"],
            verified_dose_iu=data["verified_dose_iu"],
        )

    return _chart_give(
        request,
        dose,
        _give_form(dose, now=now, data=request.POST),
        now=now,
        chart=chart,
        done=lambda adm: (
            f"C{dose.cycle} #{dose.number} charted as given ({adm.get_timing_display().lower()}), "
            f"checked by {people.printed_name(adm.verified_by)}."
        ),
    )


def _post_request_check(request, dose, *, now):
    """The give, checked by the second nurse from her own session: a pending check she accepts there."""
    zone = dose.course.patient.ward.zone
    return _chart_give(
        request,
        dose,
        nurse_forms.CheckRequestForm(request.POST, zone=zone, prefix="give"),
        now=now,
        chart=lambda data, give: services.double_check_request(**give),
        done=lambda check: (
            f"C{dose.cycle} #{dose.number}: waiting for a second nurse's check from her own session "
            f"(open until {timezone.localtime(check.expires_at, zone):%H:%M})."
        ),
    )


def _check_id(request) -> int | None:
    raw = request.POST.get("check", "")
    return int(raw) if raw.isdigit() else None


def _post_accept_check(request, dose, *, now):
    _require(request.user, Role.NURSE, Role.CHARGE_NURSE)
    form = nurse_forms.CheckAcceptForm(request.POST, prefix="check")
    check_id = _check_id(request)
    if check_id is None or not dose.double_checks.filter(pk=check_id).exists():
        form.add_error(None, "That double check is not on this dose.")
        return _dose_response(request, dose, now=now, status=400, accept_form=form)
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, accept_form=form)
    try:
        adm = services.double_check_accept(
            check_id=check_id, by=request.user, verified_dose_iu=form.cleaned_data["verified_dose_iu"], now=now
        )
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, accept_form=nurse_forms.CheckAcceptForm(prefix="check"))
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, accept_form=form)
    messages.success(
        request,
        f"C{dose.cycle} #{dose.number} checked and charted as given by {people.printed_name(adm.given_by)}, "
        f"checked by {people.printed_name(adm.verified_by)}.",
    )
    return redirect("dose", pk=dose.pk)


def _post_refuse_check(request, dose, *, now):
    _require(request.user, Role.NURSE, Role.CHARGE_NURSE)
    form = nurse_forms.CheckRefuseForm(request.POST, prefix="refuse")
    check_id = _check_id(request)
    if check_id is None or not dose.double_checks.filter(pk=check_id).exists():
        form.add_error(None, "That double check is not on this dose.")
        return _dose_response(request, dose, now=now, status=400, refuse_form=form)
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, refuse_form=form)
    try:
        services.double_check_refuse(check_id=check_id, by=request.user, reason=form.cleaned_data["reason"], now=now)
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, refuse_form=form)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, refuse_form=form)
    messages.success(request, f"You refused the double check of C{dose.cycle} #{dose.number}; it is not given.")
    return redirect("dose", pk=dose.pk)


def _post_cancel_check(request, dose, *, now):
    _require(request.user, Role.NURSE, Role.CHARGE_NURSE)
    check_id = _check_id(request)
    if check_id is None or not dose.double_checks.filter(pk=check_id).exists():
        return HttpResponseBadRequest("That double check is not on this dose.")
    try:
        services.double_check_cancel(check_id=check_id, by=request.user, now=now)
    except Conflict as exc:
        return _refused(request, dose, exc, now=now)
    except Invalid as exc:
        return HttpResponseBadRequest(" ".join(m for msgs in exc.errors.values() for m in msgs))
    messages.success(request, "Your double check request is withdrawn; the dose is not given.")
    return redirect("dose", pk=dose.pk)


def _post_hold(request, dose, *, now):
    _require(request.user, *CLINICAL_ROLES)
    form = nurse_forms.HoldForm(
        request.POST,
        rules=engine.blocking_rules(dose.latest_evaluation.findings if dose.latest_evaluation else None),
        prefix="hold",
    )
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, hold_form=form)
    try:
        services.dose_hold(
            dose_id=dose.pk,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            by=request.user,
            now=now,
        )
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, hold_form=form)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, hold_form=form)
    messages.success(request, f"C{dose.cycle} #{dose.number} held ({form.cleaned_data['reason']}).")
    return redirect("dose", pk=dose.pk)


def _post_undo_hold(request, dose, *, now):
    _require(request.user, *CLINICAL_ROLES)
    form = nurse_forms.HoldUndoForm(request.POST, prefix="undo")
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, undo_form=form)
    if not dose.holds.filter(pk=form.cleaned_data["hold"]).exists():
        form.add_error(None, "That hold is not on this dose.")
        return _dose_response(request, dose, now=now, status=400, undo_form=form)
    try:
        services.hold_enter_in_error(
            hold_id=form.cleaned_data["hold"], reason=form.cleaned_data["reason"], by=request.user, now=now
        )
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, undo_form=form)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, undo_form=form)
    messages.success(request, f"The hold of C{dose.cycle} #{dose.number} is marked entered-in-error; the dose is open.")
    return redirect("dose", pk=dose.pk)


def _post_correct(request, dose, *, now):
    _require(request.user, *CLINICAL_ROLES)
    form = nurse_forms.CorrectionForm(request.POST, prefix="correct")
    if not form.is_valid():
        return _dose_response(request, dose, now=now, status=400, correct_form=form)
    if not Administration.objects.filter(pk=form.cleaned_data["administration"], dose=dose).exists():
        form.add_error(None, "That administration is not on this dose.")
        return _dose_response(request, dose, now=now, status=400, correct_form=form)
    try:
        services.administration_enter_in_error(
            administration_id=form.cleaned_data["administration"],
            reason=form.cleaned_data["reason"],
            password=form.cleaned_data["password"],
            by=request.user,
            now=now,
        )
    except Conflict as exc:
        return _refused(request, dose, exc, now=now, correct_form=form)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return _dose_response(request, dose, now=now, status=400, correct_form=form)
    messages.success(request, "The administration is marked entered-in-error; it stays in the history.")
    return redirect("dose", pk=dose.pk)


# --- Assessment without a dose, and the other entries ----------------------------------------------------------------


@login_required
def assessment_page(request, pk: int):
    """A pre-dose assessment from the patient page: it evaluates the patient's next open slot."""
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    course = board.patient_course(patient)
    dose = board.next_open_dose(course, now=now)
    if dose is not None:
        return redirect("dose", pk=dose.pk)
    form = _assessment_form(patient, None, now=now, data=_posted(request))
    return _entry(
        request,
        patient,
        form,
        title="Assessment",
        saved="Assessment recorded.",
        store=lambda data: nurse_services.assessment_record(
            patient=patient, by=request.user, now=now, **form.service_kwargs()
        ),
        template="scheduling/mar/assessment.html",
    )


def _entry_page(request, patient, form, title, template="scheduling/mar/entry.html", **extra):
    status = 400 if request.method == "POST" else 200
    context = {"patient": patient, "form": form, "title": title, "error_summary": error_summary(form), **extra}
    return _render(request, template, context, zone=patient.ward.zone, status=status)


def _posted(request):
    return request.POST if request.method == "POST" else None


def _entry(request, patient, form, *, title: str, store, saved: str, **extra):
    """A ward entry page: GET shows the form; a POST by clinical staff stores a valid form through
    `store(cleaned_data)` and returns to the patient page, else shows the form again (400) with the service's errors
    on its fields."""
    if request.method == "POST":
        _require(request.user, *CLINICAL_ROLES)
        if _record(form, store):
            messages.success(request, saved)
            return redirect("patient", pk=patient.pk)
    return _entry_page(request, patient, form, title, **extra)


def _record(form, store) -> bool:
    """Run a service on a valid form; put its Invalid on the form. True when it stored."""
    if not form.is_valid():
        return False
    try:
        store(form.cleaned_data)
    except Invalid as exc:
        nurse_forms.apply_errors(form, exc)
        return False
    return True


@login_required
def fluids_page(request, pk: int):
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    start, end = nurse_forms.last_shift(now, patient.ward.zone)
    form = nurse_forms.FluidsForm(
        _posted(request), zone=patient.ward.zone, initial={"period_start": start, "period_end": end}
    )
    return _entry(
        request,
        patient,
        form,
        title="Fluids for a shift",
        saved="Fluid balance recorded.",
        store=lambda data: obs.fluids_record(patient=patient, by=request.user, now=now, **data),
    )


@login_required
def labs_page(request, pk: int):
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    form = nurse_forms.LabsForm(
        _posted(request), zone=patient.ward.zone, initial={"recorded_at": now.replace(second=0, microsecond=0)}
    )

    def store(data):
        values = {name: data.get(name) for name in LAB_FIELDS}
        obs.labs_record(patient=patient, recorded_at=data["recorded_at"], by=request.user, now=now, **values)

    return _entry(request, patient, form, title="Lab results", saved="Lab results recorded.", store=store)


@login_required
def events_page(request, pk: int):
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    if request.method == "POST" and request.POST.get("action") == "resolve":
        _require(request.user, *CLINICAL_ROLES)
        event = event_for(patient, request.POST.get("event"))
        try:
            obs.event_resolve(event=event, by=request.user, now=now)
        except Conflict as exc:
            messages.error(request, f"Not resolved: {exc.detail}")
        else:
            messages.success(request, "Event marked resolved.")
        return redirect("patient", pk=patient.pk)
    form = nurse_forms.EventForm(
        _posted(request), zone=patient.ward.zone, initial={"recorded_at": now.replace(second=0, microsecond=0)}
    )
    return _entry(
        request,
        patient,
        form,
        title="Clinical event",
        saved="Clinical event recorded.",
        store=lambda data: obs.event_record(patient=patient, by=request.user, now=now, **data),
    )


@login_required
def teaching_page(request, pk: int):
    """The patient-teaching checklist of HOLD-RULES §5, once per course (a new entry supersedes, never edits)."""
    patient = access.patient_for(request.user, pk)
    now = timezone.now()
    course = board.patient_course(patient)
    if course is None:
        messages.error(request, "Teaching is documented per course: this patient has no course.")
        return redirect("patient", pk=patient.pk)
    latest = board.latest_teaching(course)
    initial = {**(latest.items if latest else {}), "note": latest.note if latest else ""}
    form = nurse_forms.TeachingForm(_posted(request), initial=initial)
    return _entry(
        request,
        patient,
        form,
        title="Patient teaching",
        saved="Patient teaching documented.",
        store=lambda data: nurse_services.teaching_record(
            course_id=course.pk, items=form.items(), note=data.get("note", ""), by=request.user, now=now
        ),
        latest=latest,
    )
