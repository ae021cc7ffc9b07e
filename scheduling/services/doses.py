"""Writes for doses: evaluation, charting, holds, overrides, entered in error, the expiry sweep: one per change."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q

from il2ward.audit import Entry, audit, audit_many, check_password_again, sign
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.models import Signature
from il2ward.notifications import Outgoing, notifications_resolve, notify_many
from il2ward.recipients import Directory
from monitoring.domain import engine
from scheduling.domain import charting, window
from scheduling.domain.signed_records import record_override
from scheduling.models import Administration, Course, Dose, DoseEvaluation, DoubleCheck, Hold, Override
from scheduling.services import isolation
from scheduling.services.evaluation import DOSE_RELATED, evaluate_doses, override_covers, record_bars_after_course
from scheduling.services.reminders import DOSE_WORK, HOLD_KINDS


def _locked_dose(dose_id: int) -> Dose:
    """The row lock on the dose is the race guard: two nurses charting one dose serialise here."""
    try:
        return _locked_dose_query().get(pk=dose_id)
    except Dose.DoesNotExist as exc:
        raise Invalid({"dose": ["No such dose."]}) from exc


def _locked_dose_query():
    # What every locked write reads: the course, its patient's ward and its rule set. Not DOSE_RELATED: PostgreSQL's
    # planner tries every order of a statement's joins, so each table joined here costs every charting more than
    # reading it apart would (planning this read took 0.7 ms with five tables, 2–2.5 ms with seven, 3.6 ms with
    # eight). Who hears about a new flag (the oncologist, the assigned nurse) and the latest evaluation are read
    # where they are needed.
    return Dose.objects.select_for_update(of=("self",), no_key=True).select_related(
        "course__patient__ward", "course__rule_set"
    )


def dose_evaluate(*, dose_id: int, now: datetime, trigger: str = "manual") -> DoseEvaluation:
    """Evaluate one dose now and store the result (POST /doses/{id}/evaluate/, and before charting)."""
    with transaction.atomic():
        dose = _locked_dose(dose_id)
        return evaluate_doses([dose], now=now, trigger=trigger)[0]


def _hold_overridden(dose: Dose, evaluation: DoseEvaluation | None, *, now: datetime) -> bool:
    """INV-OVR: a standing override of this slot covers the evaluation's hold findings (same rules, same or less
    severe values). One it no longer covers lapses here and never applies again: the oncologist signed for what she
    saw, and a new hold rule or a worse value needs a new override."""
    if evaluation is None:
        return False  # nothing evaluated, nothing held: there is no hold to cover
    for override in Override.objects.filter(dose=dose, lapsed_at__isnull=True):
        if override_covers(override.covers, evaluation.findings):
            return True
        Override.objects.filter(pk=override.pk).update(lapsed_at=now, lapsed_by=evaluation)
    return False


def _stop_recommended(dose: Dose) -> bool:
    """INV-STOP: has any evaluation of this slot recommended stop (or discontinue)?"""
    return DoseEvaluation.objects.filter(dose=dose, decision__in=("stop", "discontinue")).exists()


REFUSAL_DETAILS = {
    "already_charted": "This dose has already been charted.",
    "course_not_active": "The course is not running (stopped, completed or still being scheduled).",
    "eligibility_not_attested": "An oncologist has not attested eligibility for this course yet.",
    "outside_window": "The start time is outside the dose window (due ± W).",
    "stop_criteria_met": "Stop criteria are met for this dose (now or earlier): it cannot be given; the oncologist "
    "decides on the cycle, and a 'continue' applies from the next dose.",
    "course_discontinued": "Discontinue: a permanent-discontinuation finding blocks every later dose of this course. "
    "Oncologist to stop the course.",
    "hold_criteria_met": "Hold criteria are met: hold this dose, or ask the oncologist for an override.",
    "assessment_incomplete": "The pre-dose assessment is incomplete or stale: record the missing data first.",
    "preparation_expired": "The vial was reconstituted more than 48 h ago: prepare a new one.",
    "double_check_mismatch": "The second nurse's dose does not match the prescribed dose.",
}


def _refusal_detail(code: str, evaluation: DoseEvaluation | None) -> str:
    """The refusal's sentence, naming the rule ids or the missing data behind it."""
    detail = REFUSAL_DETAILS.get(code, "")
    if code in ("stop_criteria_met", "hold_criteria_met", "course_discontinued") and evaluation is not None:
        detail += f" Rules: {', '.join(engine.blocking_rules(evaluation.findings))}."
    elif code == "assessment_incomplete" and evaluation is not None and evaluation.missing:
        detail += f" Missing or stale: {', '.join(evaluation.missing)}."
    return detail


def dose_administer(
    *,
    dose_id: int,
    by,
    started_at: datetime,
    ended_at: datetime | None,
    verifier_username: str,
    verifier_password: str,
    verified_dose_iu: int,
    vial_lot: str = "",
    reconstituted_at: datetime | None = None,
    early_reason: str = "",
    now: datetime,
) -> Administration:
    """Chart a dose as given, with a blind double check by a second nurse co-signing with her password at the first
    nurse's screen (API.md: administer). The other way is her own session: scheduling.services.double_checks.

    Bad input is refused (Invalid) before anything is written. The dose is then locked and evaluated as of the
    infusion's start (HOLD-RULES §3a INV-START): from the observations whose clinical time is at or before
    `started_at`, as charted by now, so post-dose vitals neither block nor allow it, and data missing or stale at the
    start refuses. That evaluation is stored with the administration; a refusal (Conflict, 409) keeps it so the record
    shows what the rules said, and writes nothing else (an override it no longer covers is marked lapsed).

    A start more than the on-time margin (IL2WARD_ON_TIME_MINUTES) before due is an early dose: the nurse confirms
    it with `early_reason`, stored with the administration (the window itself is still SCH-WINDOW's).
    """
    check_give_times(started_at=started_at, ended_at=ended_at, reconstituted_at=reconstituted_at, now=now)
    if settings.IL2WARD_DOUBLE_CHECK == "session":
        raise Invalid({"verifier": ["On this ward the second nurse checks from her own session: ask for her check."]})
    verifier = _verifier(by=by, username=verifier_username, password=verifier_password)
    with transaction.atomic():
        dose = _locked_dose(dose_id)
        _require_ward_nurse(verifier, dose)
        adm, refusal, evaluation = chart_locked(
            dose,
            by=by,
            verifier=verifier,
            started_at=started_at,
            ended_at=ended_at,
            vial_lot=vial_lot,
            reconstituted_at=reconstituted_at,
            early_reason=early_reason,
            verified_dose_iu=verified_dose_iu,
            now=now,
        )
        if adm is not None:
            return adm
    # Outside the atomic block: the evaluation above is kept; the refusal itself writes nothing.
    raise Conflict(refusal, _refusal_detail(refusal, evaluation))


def check_give_times(*, started_at, ended_at, reconstituted_at, now) -> None:
    """The give's own times (400 naming the field): shared by both ways of checking it."""
    if charting.in_future(started_at, now=now):
        raise Invalid({"started_at": ["The start time is in the future."]})
    if ended_at is not None and ended_at < started_at:
        raise Invalid({"ended_at": ["The end time is before the start time."]})
    if ended_at is not None and charting.in_future(ended_at, now=now):
        raise Invalid({"ended_at": ["The end time is in the future."]})
    if reconstituted_at is not None and reconstituted_at > started_at:
        raise Invalid({"reconstituted_at": ["Reconstituted after the infusion started?"]})


def works_on_ward(user, ward_id: int) -> bool:
    """Is the ward among the user's (one query: her profile's wards, without reading the profile first)?"""
    from il2ward.models import Ward

    return Ward.objects.filter(pk=ward_id, staff__user=user).exists()


def _require_ward_nurse(verifier, dose) -> None:
    if not works_on_ward(verifier, dose.course.patient.ward_id):
        raise Invalid({"verifier": ["The second nurse must work on this patient's ward."]})


def administer_refusal_for(dose, *, started_at, reconstituted_at, verified_dose_iu, now):
    """Evaluate the locked dose as of `started_at` (INV-START, stored) and return (refusal code or None, evaluation).
    `verified_dose_iu` None leaves the double check out (a check asked for but not yet made)."""
    course = dose.course
    evaluation = None
    if charting.open_dose_refusal(dose_status=dose.status, course_status=course.status) is None:
        evaluation = evaluate_doses([dose], now=now, trigger="charting", as_of=started_at)[0]
    decision = evaluation.decision if evaluation else ""
    refusal = charting.administer_refusal(
        dose_status=dose.status,
        course_status=course.status,
        eligibility_attested=course.eligibility_attested,
        due_at=dose.due_at,
        started_at=started_at,
        window_minutes=settings.IL2WARD_WINDOW_MINUTES,
        decision=decision,
        hold_overridden=decision == DoseEvaluation.Decision.HOLD and _hold_overridden(dose, evaluation, now=now),
        missing=evaluation.missing if evaluation else (),
        course_discontinued=course.discontinued_at is not None,
        stop_recommended=evaluation is not None and _stop_recommended(dose),
        reconstituted_at=reconstituted_at,
        max_hours_after_reconstitution=settings.IL2WARD_RECONSTITUTION_MAX_HOURS,
        dose_iu=course.dose_iu if verified_dose_iu is not None else None,
        verified_dose_iu=verified_dose_iu,
    )
    return refusal, evaluation


def early_reason_for(dose, *, started_at, early_reason: str) -> str:
    """The early start's reason, required when the start is more than the on-time margin before due (400)."""
    early_reason = (early_reason or "").strip() if _early(dose, started_at) else ""
    if _early(dose, started_at) and not early_reason:
        raise Invalid({"early_reason": [_early_message(dose, started_at)]})
    return early_reason


def chart_locked(
    dose, *, by, verifier, started_at, ended_at, vial_lot, reconstituted_at, early_reason, verified_dose_iu, now,
    actor=None, check=None,
):  # fmt: skip
    """With the dose locked: evaluate as of the start and chart it, or say why not. (administration, None, evaluation)
    when charted; (None, refusal code, evaluation) when refused, nothing written but the evaluation."""
    refusal, evaluation = administer_refusal_for(
        dose, started_at=started_at, reconstituted_at=reconstituted_at, verified_dose_iu=verified_dose_iu, now=now
    )
    if refusal is not None:
        return None, refusal, evaluation
    early_reason = early_reason_for(dose, started_at=started_at, early_reason=early_reason)
    adm = _chart_given(
        dose,
        by=by,
        verifier=verifier,
        started_at=started_at,
        ended_at=ended_at,
        vial_lot=vial_lot,
        reconstituted_at=reconstituted_at,
        early_reason=early_reason,
        evaluation=evaluation,
        now=now,
        actor=actor,
        check=check,
    )
    return adm, None, evaluation


def _early(dose, started_at: datetime) -> bool:
    return started_at < dose.due_at - timedelta(minutes=settings.IL2WARD_ON_TIME_MINUTES)


def _early_message(dose, started_at: datetime) -> str:
    minutes = int((dose.due_at - started_at).total_seconds() // 60)
    return (
        f"This start is {minutes} min before the dose is due (more than {settings.IL2WARD_ON_TIME_MINUTES} min early): "
        "confirm it by saying why."
    )


def _chart_given(
    dose, *, by, verifier, started_at, ended_at, vial_lot, reconstituted_at, early_reason, evaluation, now,
    actor=None, check=None,
):  # fmt: skip
    """Write the administration. `check`: the pending double check it answers (accepted with it, and left as
    accepted in memory too); any other pending check of the dose is cancelled, since the dose is given. Every audit
    event goes in one append, last: the chain's lock (one for every writer) is held only from there to the commit."""
    course = dose.course
    adm = Administration.objects.create(
        dose=dose,
        started_at=started_at,
        ended_at=ended_at,
        dose_iu=course.dose_iu,
        dosing_weight_kg=course.dosing_weight_kg,
        dosing_weight_source=course.dosing_weight_source,
        given_by=by,
        verified_by=verifier,
        vial_lot=vial_lot,
        reconstituted_at=reconstituted_at,
        timing=window.timing_class(dose.due_at, at=started_at, on_time_minutes=settings.IL2WARD_ON_TIME_MINUTES),
        early_reason=early_reason,
        evaluation=evaluation,
        charted_at=now,
    )
    Dose.objects.filter(pk=dose.pk).update(status=Dose.Status.GIVEN, status_changed_at=now)
    cancelled = []
    if check is None:  # the check this give answers is the dose's only pending one (one_pending_check_per_dose)
        pending = DoubleCheck.objects.filter(dose=dose, status=DoubleCheck.Status.PENDING)
        cancelled = list(pending.values_list("pk", flat=True))
        if cancelled:
            pending.update(status=DoubleCheck.Status.CANCELLED, decided_at=now, decided_by=by)
    else:
        DoubleCheck.objects.filter(pk=check.pk).update(
            status=DoubleCheck.Status.ACCEPTED, decided_by=verifier, decided_at=now, administration=adm
        )
        check.status, check.decided_by, check.decided_at = DoubleCheck.Status.ACCEPTED, verifier, now
        check.administration = adm  # and adm.double_check is this check (one-to-one)
    entries: list[Entry] = []
    notifications_resolve(
        dose_id=dose.pk, kinds=DOSE_WORK, reason="dose given", by=actor or by, now=now, audit_into=entries
    )
    administered = Entry(
        actor or by,
        "dose.administer",
        dose,
        now,
        old={"status": dose.status},
        new={
            "status": Dose.Status.GIVEN,
            "administration": adm.pk,
            "started_at": started_at,
            "ended_at": ended_at,
            "dose_iu": adm.dose_iu,
            "verified_by": verifier.pk,
            "vial_lot": vial_lot,
            "reconstituted_at": reconstituted_at,
            "timing": adm.timing,
            "early_reason": early_reason,
            "evaluation": evaluation.pk if evaluation else None,
            "given_by": by.pk,
            "double_check": check.pk if check is not None else None,
            "double_checks_cancelled": cancelled,
        },
    )
    entries.append(administered)
    if check is not None:
        entries.append(
            Entry(
                actor or by,
                "double_check.accept",
                check,
                now,
                old={"status": DoubleCheck.Status.PENDING},
                new={"status": DoubleCheck.Status.ACCEPTED, "administration": adm.pk, "dose": dose.pk},
            )
        )
    audit_many(entries)
    dose.status, dose.status_changed_at = Dose.Status.GIVEN, now  # the dose as written, for whoever answers with it
    return adm


def _verifier(*, by, username: str, password: str):
    """The second nurse of the blind double check: another nurse whose password is entered now (400 otherwise)."""
    from django.contrib.auth import authenticate

    from il2ward import access

    if not username:
        raise Invalid({"verifier": ["A second nurse must check the dose."]})
    if username == by.get_username():
        raise Invalid({"verifier": ["The second check must be by a different nurse."]})
    from il2ward.audit import password_check_request
    from il2ward.security import password_purpose

    token = password_purpose.set("second-nurse")
    try:
        verifier = authenticate(password_check_request(), username=username, password=password or "")
    finally:
        password_purpose.reset(token)
    if verifier is None:
        raise Invalid({"verifier_password": ["The second nurse's username or password is wrong."]})
    if not access.is_nursing(verifier):
        raise Invalid({"verifier": ["The second check must be by a nurse."]})
    return verifier


@retry_transaction
@transaction.atomic
def dose_hold(*, dose_id: int, reason: str, note: str = "", by, now: datetime) -> Hold:
    """Hold a dose with a coded reason (a rule id or another code). Never made up (SCH-NOMAKEUP).

    The dose is evaluated afresh first, so the hold records the rule ids that applied when it was held.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > 64:
        raise Invalid({"reason": ["Give a coded reason: a rule id (e.g. CV-SBP) or a short code."]})
    dose = _locked_dose(dose_id)
    refusal = charting.open_dose_refusal(dose_status=dose.status, course_status=dose.course.status)
    if refusal:
        raise Conflict(refusal, REFUSAL_DETAILS[refusal])
    evaluation = evaluate_doses([dose], now=now, trigger="hold")[0]
    Dose.objects.filter(pk=dose.pk).update(status=Dose.Status.HELD, status_changed_at=now)
    notifications_resolve(dose_id=dose.pk, kinds=DOSE_WORK, reason="dose held", by=by, now=now)
    pending = DoubleCheck.objects.filter(dose=dose, status=DoubleCheck.Status.PENDING)
    cancelled = list(pending.values_list("pk", flat=True))
    if cancelled:  # a held dose is not given: the check asked for it has nothing left to check
        pending.update(status=DoubleCheck.Status.CANCELLED, decided_at=now, decided_by=by)
        audit(actor=by, action="double_check.cancel", obj=dose, at=now, new={"double_checks": cancelled}, reason="held")
    return _write_hold(
        dose,
        reason=reason,
        rule_ids=engine.blocking_rules(evaluation.findings),
        note=note,
        by=by,
        now=now,
        evaluation=evaluation,
    )


def _write_hold(dose, *, reason, rule_ids, note, by, now, evaluation) -> Hold:
    """The Hold row, its audit event and SCH-3HELD, for a dose whose status the caller has just set to held."""
    hold = Hold.objects.create(
        dose=dose, reason=reason, rule_ids=rule_ids, note=note, by=by, at=now, automatic=False, evaluation=evaluation
    )
    audit_many([_hold_entry(dose, hold, by=by, now=now)])
    held = Dose.objects.filter(course_id=dose.course_id, cycle=dose.cycle, status=Dose.Status.HELD).count()
    if held >= 3:
        directory = Directory([dose.course.patient.ward_id])
        notify_many([_third_hold(dose, held=held, directory=directory)], now=now)
    return hold


def _hold_entry(dose: Dose, hold: Hold, *, by, now: datetime) -> Entry:
    return Entry(
        by,
        "dose.hold",
        dose,
        now,
        old={"status": Dose.Status.SCHEDULED},
        new={
            "status": Dose.Status.HELD,
            "hold": hold.pk,
            "reason": hold.reason,
            "rules": hold.rule_ids,
            "automatic": hold.automatic,
        },
        reason=hold.note,
    )


def _third_hold(dose: Dose, *, held: int, directory: Directory) -> Outgoing:
    """SCH-3HELD: the cycle's third held slot notifies the oncologist, once per cycle (the dedupe key)."""
    course = dose.course
    options = course.rule_set.definition.get("options", {})
    return Outgoing(
        kind="third_hold",
        recipients=directory.for_kind("third_hold", patient=course.patient, oncologist=course.oncologist),
        dedupe=f"third_hold:course{dose.course_id}:cycle{dose.cycle}",
        patient=course.patient,
        course_id=dose.course_id,
        dose_id=dose.pk,
        due_at=dose.due_at,
        details={
            "rule": "SCH-3HELD",
            "cycle": dose.cycle,
            "held": held,
            "recommend_stop": bool(options.get("SCH-3HELD.recommend_stop", False)),  # a site option
        },
    )


@retry_transaction
@transaction.atomic
def dose_override(*, dose_id: int, reason: str, password: str, by, now: datetime) -> Override:
    """An oncologist lifts a `hold` decision for this slot (e-signed). A `stop` is never overridden: the oncologist
    records continue or stop for the cycle instead (scheduling.decisions.cycle_decide)."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Give the reason for the override."]})
    dose = _locked_dose(dose_id)
    refusal = charting.open_dose_refusal(dose_status=dose.status, course_status=dose.course.status)
    if refusal:
        raise Conflict(refusal, REFUSAL_DETAILS[refusal])
    evaluation = evaluate_doses([dose], now=now, trigger="override")[0]
    if evaluation.decision == DoseEvaluation.Decision.DISCONTINUE or dose.course.discontinued_at is not None:
        raise Conflict("course_discontinued", _refusal_detail("course_discontinued", evaluation))
    if evaluation.decision == DoseEvaluation.Decision.STOP or _stop_recommended(dose):
        raise Conflict(
            "stop_criteria_met",
            f"A stop decision cannot be overridden (rules: {', '.join(engine.blocking_rules(evaluation.findings))}); "
            "record continue or stop for the cycle.",
        )
    if evaluation.decision != DoseEvaluation.Decision.HOLD:
        raise Conflict(
            "override_not_allowed",
            f"Only a hold decision can be overridden; this dose's decision is {evaluation.decision}.",
        )
    standing = Override.objects.filter(dose=dose, lapsed_at__isnull=True)
    if any(override_covers(o.covers, evaluation.findings) for o in standing):
        # The dose lock serialises concurrent overrides: the first covers what the others would sign.
        raise Conflict("already_overridden", "An override that still covers these findings exists for this dose.")
    covers = [
        {key: f.get(key) for key in ("rule", "value", "measure", "worse", "threshold")}
        for f in evaluation.findings
        if f["level"] == "hold"
    ]
    rules = engine.blocking_rules(evaluation.findings, ("hold",))
    signature = sign(
        signer=by,
        password=password,
        meaning=Signature.Meaning.OVERRIDE,
        obj=dose,
        record=record_override(dose_id=dose.pk, evaluation_id=evaluation.pk, covers=covers, reason=reason),
        at=now,
    )
    override = Override.objects.create(
        dose=dose, evaluation=evaluation, reason=reason, covers=covers, signature=signature, by=by, at=now
    )
    notifications_resolve(dose_id=dose.pk, kinds=HOLD_KINDS, reason="overridden", by=by, now=now)
    audit(
        actor=by,
        action="dose.override",
        obj=dose,
        at=now,
        new={
            "override": override.pk,
            "evaluation": evaluation.pk,
            "rules": rules,
            "covers": covers,
            "signature": signature.pk,
        },
        reason=reason,
    )
    return override


@retry_transaction
@transaction.atomic
def administration_enter_in_error(*, administration_id: int, reason: str, password: str, by, now: datetime):
    """Mark a charted administration entered-in-error; it stays in the history and the dose reopens.

    The reopened slot is an open slot like any other: charted again in its window, or closed by the sweep at due + W.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Give the reason for the correction."]})
    check_password_again(by, password)
    dose_id = Administration.objects.filter(pk=administration_id).values_list("dose_id", flat=True).first()
    if dose_id is None:
        raise Invalid({"administration": ["No such administration."]})
    dose = _locked_dose(dose_id)  # dose first, as charting does: one lock order, no deadlock
    adm = Administration.objects.select_for_update(no_key=True).get(pk=administration_id)
    if adm.entered_in_error_at is not None:
        raise Conflict("already_entered_in_error", "This administration is already marked entered-in-error.")
    _mark_in_error_and_reopen(adm, dose, action="administration.entered_in_error", reason=reason, by=by, now=now)
    return adm


def _mark_in_error_and_reopen(row, dose: Dose, *, action: str, reason: str, by, now: datetime) -> None:
    """A charted give or hold marked entered-in-error (kept, never deleted), its slot open again, and one audit row
    with the slot's status before and after. The caller holds the dose's lock and has checked the row may go."""
    row.entered_in_error_at, row.entered_in_error_by, row.entered_in_error_reason = now, by, reason
    row.save(update_fields=["entered_in_error_at", "entered_in_error_by", "entered_in_error_reason"])
    Dose.objects.filter(pk=dose.pk).update(status=Dose.Status.SCHEDULED, status_changed_at=now)
    audit(
        actor=by,
        action=action,
        obj=row,
        at=now,
        old={"dose": dose.pk, "dose_status": dose.status},
        new={"dose": dose.pk, "dose_status": Dose.Status.SCHEDULED},
        reason=reason,
    )


@transaction.atomic
def hold_enter_in_error(*, hold_id: int, reason: str, by, now: datetime) -> Hold:
    """Undo a mistaken manual hold: the hold is marked entered-in-error (kept, audited) and the slot is open again,
    evaluated afresh. Only while the slot's window is still open (due + W), so a dose is never made up later."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Say why the hold was a mistake."]})
    dose_id = Hold.objects.filter(pk=hold_id).values_list("dose_id", flat=True).first()
    if dose_id is None:
        raise Invalid({"hold": ["No such hold."]})
    dose = _locked_dose(dose_id)  # dose first, as charting does: one lock order
    hold = Hold.objects.select_for_update().get(pk=hold_id)
    if hold.entered_in_error_at is not None:
        raise Conflict("already_entered_in_error", "This hold is already marked entered-in-error.")
    if hold.automatic:
        raise Conflict("hold_automatic", "The window closed on this hold: it cannot be undone (never made up).")
    if now > dose.due_at + timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES):
        raise Conflict("outside_window", "The dose's window has closed: the hold stands (a dose is never made up).")
    if dose.course.status not in Course.OPEN_STATUSES:
        raise Conflict("course_not_active", REFUSAL_DETAILS["course_not_active"])
    _mark_in_error_and_reopen(hold, dose, action="hold.entered_in_error", reason=reason, by=by, now=now)
    dose.status = Dose.Status.SCHEDULED
    evaluate_doses([dose], now=now, trigger="hold_undone")
    return hold


# --- Sweeps ---------------------------------------------------------------------------------------------------------

SWEEP_BATCH = 500


def doses_close_expired(*, now: datetime) -> dict[str, int]:
    """At due + W an open slot closes (SCH-WINDOW): flagged hold/stop → recorded held with its rule ids (an
    automatic Hold), else missed with a dose_missed notification; a cycle's third held slot notifies (SCH-3HELD).

    One transaction for the batch, in a constant number of queries however many slots close: the slots are locked
    (a slot a nurse is charting right now is skipped, and closed by the next sweep if she did not chart it), their
    statuses set, the holds written, the audit events appended together, the cycles' held counts read once and the
    notifications written together. A batch that fails closes its slots one at a time instead (isolation).
    """
    parts = isolation.batch_then_each(lambda only, taken: _close_expired(only, taken, now=now), kind="dose")
    return {kind: sum(part[kind] for part in parts) for kind in ("held", "missed")}


def _close_expired(only: list[int] | None, taken: list[int], *, now: datetime) -> dict[str, int]:
    """Close the expired slots (or those of `only` still expired) in one transaction; their ids go to `taken`."""
    window_ = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    counts = {"held": 0, "missed": 0}
    with transaction.atomic():
        candidates = Dose.objects.select_for_update(of=("self",), no_key=True, skip_locked=True).filter(
            status=Dose.Status.SCHEDULED, due_at__lt=now - window_
        )
        if only is not None:
            candidates = candidates.filter(pk__in=only)
        expired = list(candidates.select_related(*DOSE_RELATED).order_by("due_at", "pk")[:SWEEP_BATCH])
        if not expired:
            return counts
        taken.extend(dose.pk for dose in expired)
        held = [dose for dose in expired if dose.flag in engine.BLOCKING_LEVELS]
        missed = [dose for dose in expired if dose.flag not in engine.BLOCKING_LEVELS]
        for doses, status in ((held, Dose.Status.HELD), (missed, Dose.Status.MISSED)):
            if doses:
                Dose.objects.filter(pk__in=[d.pk for d in doses]).update(status=status, status_changed_at=now)
        hold_of = {hold.dose_id: hold for hold in Hold.objects.bulk_create(_automatic_hold(d, now=now) for d in held)}
        audit_many(
            _hold_entry(dose, hold_of[dose.pk], by=None, now=now)
            if dose.pk in hold_of
            else Entry(
                None,
                "dose.missed",
                dose,
                now,
                old={"status": Dose.Status.SCHEDULED},
                new={"status": Dose.Status.MISSED},
            )
            for dose in expired
        )
        directory = Directory({dose.course.patient.ward_id for dose in expired})
        outgoing = [
            Outgoing(
                kind="dose_missed",
                recipients=directory.for_kind(
                    "dose_missed", patient=dose.course.patient, oncologist=dose.course.oncologist
                ),
                dedupe=f"dose_missed:dose{dose.pk}",
                patient=dose.course.patient,
                course_id=dose.course_id,
                dose_id=dose.pk,
                details={"rule": "SCH-WINDOW", "cycle": dose.cycle, "number": dose.number},
                due_at=dose.due_at,
            )
            for dose in missed
        ]
        if held:
            held_in_cycle = {
                (row["course_id"], row["cycle"]): row["n"]
                for row in Dose.objects.filter(course_id__in={d.course_id for d in held}, status=Dose.Status.HELD)
                .values("course_id", "cycle")
                .annotate(n=Count("pk"))
                .order_by()
            }
            outgoing += [
                _third_hold(dose, held=held_in_cycle[dose.course_id, dose.cycle], directory=directory)
                for dose in held
                if held_in_cycle[dose.course_id, dose.cycle] >= 3
            ]
        notify_many(outgoing, now=now)
    counts.update(held=len(held), missed=len(missed))
    return counts


def _automatic_hold(dose: Dose, *, now: datetime) -> Hold:
    """The Hold of a flagged slot closed at due + W, with the rule ids of its latest evaluation."""
    rules = engine.blocking_rules(dose.latest_evaluation.findings if dose.latest_evaluation else None)
    return Hold(
        dose=dose,
        reason=rules[0] if rules else dose.flag,
        rule_ids=rules,
        note="Recorded held at due + W: hold criteria met and not given.",
        by=None,
        at=now,
        automatic=True,
        evaluation=dose.latest_evaluation,
    )


def doses_evaluate_entering_window(*, now: datetime) -> int:
    """Evaluate every open slot inside its pre-dose window (due − 2 h … due + W) not yet evaluated in that window.

    The rule: the sweep evaluates a slot once, when it enters the window. After that, new data re-evaluates it (the
    evaluate_patient task enqueued after every observation), and so does charting; a second sweep
    adds nothing. A constant number of queries whatever the number of slots: 10 when nothing is newly flagged
    (candidates, rule-set versions, 6 snapshot reads, insert, update) and the transaction's own statements; newly
    flagged slots add one read (their wards' nursing staff) and their notification rows' writes. A batch that fails
    evaluates its slots one at a time instead (isolation).
    """
    return sum(isolation.batch_then_each(lambda only, taken: _evaluate_entering(only, taken, now=now), kind="dose"))


def _evaluate_entering(only: list[int] | None, taken: list[int], *, now: datetime) -> int:
    """Evaluate the slots entering their window (or those of `only` still entering it); their ids go to `taken`.

    The candidates are read before the transaction, so a quiet sweep opens none; the evaluation has one of its own
    (a savepoint inside a caller's), so a failing batch rolls back alone.
    """
    pre = timedelta(hours=settings.IL2WARD_PRE_DOSE_HOURS)
    window_ = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    candidates = Dose.objects.filter(
        status=Dose.Status.SCHEDULED,
        course__status__in=Course.OPEN_STATUSES,
        due_at__lte=now + pre,
        due_at__gte=now - window_,
    ).filter(Q(latest_evaluation__isnull=True) | Q(latest_evaluation__evaluated_at__lt=F("due_at") - pre))
    if only is not None:
        candidates = candidates.filter(pk__in=only)
    doses = list(candidates.select_related(*DOSE_RELATED).order_by("due_at")[:SWEEP_BATCH])
    if not doses:
        return 0
    taken.extend(dose.pk for dose in doses)
    with transaction.atomic():
        evaluate_doses(doses, now=now, trigger="sweep")
    return len(doses)


def patient_evaluate_next_dose(*, patient_id: int, now: datetime) -> DoseEvaluation | None:
    """New data arrived for the patient: re-evaluate the next open slot of the open course.

    Without an open slot (the course has ended) a retreatment-bar event is still recorded on the latest course.
    """
    window_ = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    dose = (
        Dose.objects.filter(
            course__patient_id=patient_id,
            course__status__in=Course.OPEN_STATUSES,
            status=Dose.Status.SCHEDULED,
            due_at__gte=now - window_,
        )
        .order_by("due_at")
        .values_list("pk", flat=True)
        .first()
    )
    if dose is None:
        record_bars_after_course(patient_id=patient_id, now=now)
        return None
    return dose_evaluate(dose_id=dose, now=now, trigger="new_data")
