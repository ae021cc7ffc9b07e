"""The blind double check from the second nurse's own session (ISMP independent double check; HOLD-RULES §3a).

The first nurse charts the give without a second nurse at her screen: `double_check_request` evaluates the dose as of
its start (INV-START; a refusal is the same 409 as a co-signed give) and leaves a pending check. Another nurse of the
patient's ward, signed in on her own device, sees the order (weight, IU/kg, preparation rules) but not the computed
dose, types the dose she calculated and accepts (`double_check_accept`: the dose is locked, evaluated afresh as of the
same start and charted only when her dose matches the prescribed one), or refuses with a reason. Her identity is her
own session (a password sign-in, throttled by axes): no password is hashed on this charting request.

Asking puts the check in the bell of the ward's other nurses (in-app only, ids and codes like every notification);
whatever closes the check clears it there.

A pending check lives until the dose's window closes (due + W, SCH-WINDOW); after that nothing can be given for the
slot and the sweep marks it `expired` (`double_checks_expire`). After IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES doses typed
that do not match the prescribed one it is closed as refused (a security event: figures are not guessed until one
fits), and the first nurse asks again. The first nurse may withdraw it; giving or holding the dose by another path
cancels it. Every change is audited; nothing is deleted.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Subquery

from il2ward import access, security
from il2ward.audit import Entry, audit, audit_many
from il2ward.db import retry_transaction
from il2ward.errors import Conflict, Invalid
from il2ward.notifications import notifications_resolve, notify
from il2ward.recipients import Directory
from scheduling.models import Administration, Dose, DoubleCheck
from scheduling.services.doses import (
    _locked_dose,
    _locked_dose_query,
    _refusal_detail,
    administer_refusal_for,
    chart_locked,
    check_give_times,
    early_reason_for,
    works_on_ward,
)

CHECK_DETAILS = {
    "double_check_pending": "A double check is already waiting for this dose.",
    "double_check_closed": "This double check is no longer waiting: it was accepted, refused or withdrawn.",
    "double_check_expired": "The dose's window has closed: this double check expired (a dose is never made up).",
    "double_check_closed_mismatches": "Too many doses typed did not match the prescribed dose: this double check is "
    "closed. The first nurse asks for a new check.",
}
BELL = "double_check_requested"  # the notification kind of a pending check (in-app only)
SWEEP_BATCH = 500


def _bell_topic(check_id: int) -> str:
    return f"{BELL}:check{check_id}"


def _clear_bell(check: DoubleCheck, *, reason: str, by, now: datetime) -> None:
    notifications_resolve(
        dose_id=check.dose_id, kinds=[BELL], reason=reason, by=by, now=now, where=Q(topic=_bell_topic(check.pk))
    )


def _expires_at(dose: Dose) -> datetime:
    return dose.due_at + timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)


def double_check_request(
    *,
    dose_id: int,
    by,
    started_at: datetime,
    ended_at: datetime | None = None,
    vial_lot: str = "",
    reconstituted_at: datetime | None = None,
    early_reason: str = "",
    now: datetime,
) -> DoubleCheck:
    """The first nurse's give, waiting for the second nurse's check from her own session (a pending check)."""
    check_give_times(started_at=started_at, ended_at=ended_at, reconstituted_at=reconstituted_at, now=now)
    if settings.IL2WARD_DOUBLE_CHECK == "password":
        raise Invalid({"verifier": ["On this ward the second nurse co-signs with her password at this screen."]})
    with transaction.atomic():
        dose = _locked_dose(dose_id)
        refusal, evaluation = administer_refusal_for(
            dose, started_at=started_at, reconstituted_at=reconstituted_at, verified_dose_iu=None, now=now
        )
        if refusal is None:
            early_reason = early_reason_for(dose, started_at=started_at, early_reason=early_reason)
            if DoubleCheck.objects.filter(dose=dose, status=DoubleCheck.Status.PENDING).exists():
                raise Conflict("double_check_pending", CHECK_DETAILS["double_check_pending"])
            check = DoubleCheck.objects.create(
                dose=dose,
                requested_by=by,
                requested_at=now,
                expires_at=_expires_at(dose),
                started_at=started_at,
                ended_at=ended_at,
                vial_lot=vial_lot,
                reconstituted_at=reconstituted_at,
                early_reason=early_reason,
            )
            patient = dose.course.patient
            notify(
                kind=BELL,
                recipients=Directory({patient.ward_id}).second_nurses(patient, asked_by=by),
                dedupe=_bell_topic(check.pk),
                now=now,
                patient=patient,
                course_id=dose.course_id,
                dose_id=dose.pk,
                details={"cycle": dose.cycle, "number": dose.number, "double_check": check.pk},
            )
            # Audited last: the chain's lock (one for every writer) is held only from here to the commit.
            audit(
                actor=by,
                action="double_check.request",
                obj=check,
                at=now,
                new={
                    "dose": dose.pk,
                    "started_at": started_at,
                    "ended_at": ended_at,
                    "vial_lot": vial_lot,
                    "reconstituted_at": reconstituted_at,
                    "early_reason": early_reason,
                    "expires_at": check.expires_at,
                    "evaluation": evaluation.pk if evaluation else None,
                },
            )
            return check
    raise Conflict(refusal, _refusal_detail(refusal, evaluation))


def _locked_check(check_id: int) -> tuple[Dose, DoubleCheck]:
    """Dose first, then the check: the lock order of every charting path (patient → course → dose → …). The dose is
    found through the check in its locking read, so no query looks the dose up first: by a subquery for the check's
    dose id (which never changes), not a join, which made the server plan the locking read's joins four times as
    long."""
    try:
        dose = _locked_dose_query().get(pk=Subquery(DoubleCheck.objects.filter(pk=check_id).values("dose_id")[:1]))
    except Dose.DoesNotExist as exc:
        raise Invalid({"double_check": ["No such double check."]}) from exc
    check = (
        DoubleCheck.objects.select_for_update(of=("self",), no_key=True).select_related("requested_by").get(pk=check_id)
    )
    check.dose = dose  # the row just locked, with its course, patient and ward
    return dose, check


def _require_open(check: DoubleCheck, *, now: datetime) -> None:
    if check.status != DoubleCheck.Status.PENDING:
        raise Conflict("double_check_closed", CHECK_DETAILS["double_check_closed"])
    if now > check.expires_at:
        raise Conflict("double_check_expired", CHECK_DETAILS["double_check_expired"])


def may_check(user, check: DoubleCheck, *, ward_id: int) -> str | None:
    """Why `user` may not be this check's second nurse (the field's message), or None: another nurse (nurse or
    charge nurse) working on the patient's ward; never the nurse who asked for it."""
    if user.pk == check.requested_by_id:
        return "The second check must be by a different nurse."
    if not access.is_nursing(user):
        return "The second check must be by a nurse."
    if not works_on_ward(user, ward_id):
        return "The second nurse must work on this patient's ward."
    return None


@retry_transaction
def double_check_accept(*, check_id: int, by, verified_dose_iu: int | None, now: datetime) -> Administration:
    """The second nurse's own check: her dose, typed from the order. It charts the administration (given by the first
    nurse, verified by her) only when it matches the prescribed dose and the rules allow the dose as of its start
    (INV-START, the same refusals as a co-signed give). A dose that does not match is 409 `double_check_mismatch`:
    nothing is charted and the mismatch is counted and audited; the check keeps waiting until the
    IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES-th, which closes it as refused (409 `double_check_closed`, a security event):
    the first nurse must ask again."""
    if not verified_dose_iu or verified_dose_iu < 1:
        raise Invalid({"verified_dose_iu": ["Type the dose you calculated, in whole IU."]})
    with transaction.atomic():
        dose, check = _locked_check(check_id)
        why_not = may_check(by, check, ward_id=dose.course.patient.ward_id)
        if why_not:
            raise Invalid({"verifier": [why_not]})
        _require_open(check, now=now)
        adm, refusal, evaluation = chart_locked(
            dose,
            by=check.requested_by,
            verifier=by,
            started_at=check.started_at,
            ended_at=check.ended_at,
            vial_lot=check.vial_lot,
            reconstituted_at=check.reconstituted_at,
            early_reason=check.early_reason,
            verified_dose_iu=verified_dose_iu,
            now=now,
            actor=by,
            check=check,
        )
        if adm is not None:  # the check accepted with it: adm.double_check
            return adm
        closed = refusal == "double_check_mismatch" and _count_mismatch(check, dose=dose, by=by, now=now)
    if closed:  # after the commit: the count and the closing stand with the refusal
        raise Conflict("double_check_closed", CHECK_DETAILS["double_check_closed_mismatches"])
    raise Conflict(refusal, _refusal_detail(refusal, evaluation))


def _count_mismatch(check: DoubleCheck, *, dose: Dose, by, now: datetime) -> bool:
    """One more dose typed that does not match (the check is locked). True when it closed the check."""
    mismatches = check.mismatches + 1
    closed = mismatches >= settings.IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES
    changes: dict = {"mismatches": F("mismatches") + 1}
    if closed:
        reason = f"{mismatches} doses typed did not match the prescribed dose"
        changes.update(status=DoubleCheck.Status.REFUSED, decided_by=by, decided_at=now, refused_reason=reason)
    DoubleCheck.objects.filter(pk=check.pk).update(**changes)
    new: dict[str, object] = {"dose": dose.pk, "mismatches": mismatches}
    if closed:
        new["status"] = DoubleCheck.Status.REFUSED
    audit(actor=by, action="double_check.mismatch", obj=check, at=now, new=new)
    if closed:
        _clear_bell(check, reason="double check closed", by=by, now=now)
        security.record(
            "double_check_closed",
            request=None,
            user=by,
            detail={"double_check": check.pk, "dose": dose.pk, "mismatches": mismatches},
        )
    return closed


@retry_transaction
@transaction.atomic
def double_check_refuse(*, check_id: int, by, reason: str, now: datetime) -> DoubleCheck:
    """The second nurse will not check this give (wrong patient, wrong bag, ...): refused with her reason, audited.
    The dose stays open; the first nurse sees why and may ask again."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": ["Say why you refuse the check."]})
    dose, check = _locked_check(check_id)
    why_not = may_check(by, check, ward_id=dose.course.patient.ward_id)
    if why_not:
        raise Invalid({"verifier": [why_not]})
    _require_open(check, now=now)
    DoubleCheck.objects.filter(pk=check.pk).update(
        status=DoubleCheck.Status.REFUSED, decided_by=by, decided_at=now, refused_reason=reason
    )
    audit(
        actor=by,
        action="double_check.refuse",
        obj=check,
        at=now,
        old={"status": DoubleCheck.Status.PENDING},
        new={"status": DoubleCheck.Status.REFUSED, "dose": dose.pk},
        reason=reason,
    )
    _clear_bell(check, reason="double check refused", by=by, now=now)
    check.refresh_from_db()
    return check


@retry_transaction
@transaction.atomic
def double_check_cancel(*, check_id: int, by, now: datetime) -> DoubleCheck:
    """The first nurse withdraws her pending check (to co-sign at her screen instead, or not to give). Audited."""
    dose, check = _locked_check(check_id)
    if by.pk != check.requested_by_id:
        raise Invalid({"double_check": ["Only the nurse who asked for this check can withdraw it."]})
    if check.status != DoubleCheck.Status.PENDING:
        raise Conflict("double_check_closed", CHECK_DETAILS["double_check_closed"])
    DoubleCheck.objects.filter(pk=check.pk).update(status=DoubleCheck.Status.CANCELLED, decided_by=by, decided_at=now)
    audit(
        actor=by,
        action="double_check.cancel",
        obj=check,
        at=now,
        old={"status": DoubleCheck.Status.PENDING},
        new={"status": DoubleCheck.Status.CANCELLED, "dose": dose.pk},
    )
    _clear_bell(check, reason="double check withdrawn", by=by, now=now)
    check.refresh_from_db()
    return check


def double_checks_expire(*, now: datetime) -> dict[str, int]:
    """The sweep's step: pending checks past their dose's window (due + W) are marked `expired`, so the database says
    what the pages say; audited, and their bell cleared. One transaction, a constant number of queries however many
    (at most SWEEP_BATCH a pass; a check being answered right now is skipped and expires at the next pass)."""
    with transaction.atomic():
        due = list(
            DoubleCheck.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .filter(status=DoubleCheck.Status.PENDING, expires_at__lt=now)
            .only("pk", "dose_id")
            .order_by("expires_at", "pk")[:SWEEP_BATCH]
        )
        if not due:
            return {"double_checks_expired": 0}
        DoubleCheck.objects.filter(pk__in=[c.pk for c in due]).update(status=DoubleCheck.Status.EXPIRED, decided_at=now)
        audit_many(
            Entry(
                None,
                "double_check.expire",
                check,
                now,
                old={"status": DoubleCheck.Status.PENDING},
                new={"status": DoubleCheck.Status.EXPIRED, "dose": check.dose_id},
            )
            for check in due
        )
        notifications_resolve(
            dose_ids=[c.dose_id for c in due],
            kinds=[BELL],
            reason="double check expired",
            now=now,
            where=Q(topic__in=[_bell_topic(c.pk) for c in due]),
        )
    return {"double_checks_expired": len(due)}
