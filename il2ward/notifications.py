"""The notification outbox: writing rows, acknowledging them, and delivering them channel by channel.

Writing: `notify()` (or `notify_many()`, in a constant number of queries) inside the transaction that causes the
notification. One row per recipient, keyed `<dedupe>:u<recipient>` (unique), so a repeat — a second sweep, a
retried task — writes nothing. Each new row gets a Delivery per channel of il2ward.channels.REGISTRY that the
recipient wants (StaffProfile.channels) and that can reach her: in-app is delivered as the row commits (the bell reads
the database); the others (e-mail, webhook, SMS) are `pending` and one task, enqueued after commit with ids only,
sends them.

Delivering: a delivery is claimed with a conditional update (pending → sending, attempts + 1), so two workers never
both send it. Success → delivered. Failure → pending again at now + backoff (30 s doubling, capped at an hour), or
dead after IL2WARD_DELIVERY_MAX_ATTEMPTS (8) attempts; /readyz reports dead letters. The beat's resend sweep
re-enqueues pending rows whose time has come (and whose last task, if any, is a minute old) and takes back claims
older than the lease (a worker killed while sending): so a lost message, a flushed Redis or a killed worker delays a
delivery but never loses it, and a kill between "sent" and "recorded" sends it at most once more.

Acknowledging: only the recipient acknowledges her notification. It acknowledges every row about the same event (the
same topic: same kind and subject for every recipient), and for a dose's hold_flagged / stop_recommended / escalation
all three kinds for that dose: once anyone caring for the patient has acknowledged a hold, its escalation stops for
everyone. Their e-mail and webhook deliveries still pending are cancelled (nobody needs paging about it any more).
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone

from il2ward.audit import Entry, audit, audit_many
from il2ward.channels import REGISTRY, ChannelError, message_for
from il2ward.channels.in_app import NAME as IN_APP
from il2ward.db import retry_transaction
from il2ward.models import Delivery, Notification, StaffProfile
from il2ward.tasking import enqueue_on_commit, send_task_safely

log = logging.getLogger(__name__)

DELIVER_TASK = "il2ward.deliver"
TASK_CHUNK = 50  # delivery ids per task message


def max_attempts() -> int:
    return settings.IL2WARD_DELIVERY_MAX_ATTEMPTS


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after `attempts` failures: base × 2^(attempts − 1), capped."""
    base = settings.IL2WARD_DELIVERY_BACKOFF_SECONDS
    cap = settings.IL2WARD_DELIVERY_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


# --- Writing ------------------------------------------------------------------------------------------------------


def flag_topic(kind: str, dose) -> str:
    """The topic of a hold_flagged / stop_recommended: one per episode (the evaluation that raised it), so a hold that
    returns after the dose turned give again is a new flag that pages and escalates again."""
    return f"{kind}:dose{dose.pk}:ev{dose.latest_evaluation.pk}"


@dataclass(frozen=True)
class Outgoing:
    """One notification to write: its kind, who gets it, its dedupe topic and what it is about (ids only)."""

    kind: str
    recipients: Iterable
    dedupe: str
    patient: object = None  # a Patient with its ward loaded (the webhook channel reads ward.webhook_url)
    course_id: int | None = None
    dose_id: int | None = None
    details: dict | None = None
    due_at: datetime | None = None


def notify(
    *,
    kind: str,
    recipients,
    dedupe: str,
    now: datetime,
    patient=None,
    course_id: int | None = None,
    dose_id: int | None = None,
    details: dict | None = None,
    due_at: datetime | None = None,
    publish: bool = True,
) -> list[Notification]:
    """One notification (see notify_many)."""
    outgoing = Outgoing(kind, recipients, dedupe, patient, course_id, dose_id, details, due_at)
    return notify_many([outgoing], now=now, publish=publish)


def notify_many(outgoing: Iterable[Outgoing], *, now: datetime, publish: bool = True) -> list[Notification]:
    """One row per recipient with key `<dedupe>:u<recipient id>`; an existing key is left alone (idempotent).

    However many notifications, four queries: the keys already taken, the new rows (PostgreSQL and SQLite return
    their ids), the recipients' channel preferences and the deliveries. When a concurrent writer takes one of the
    keys in between, the rows are written one by one instead, each in its own savepoint, and the taken key skipped.

    Returns the rows created now. Their e-mail/webhook deliveries are sent by a task enqueued after commit; a caller
    writing in several steps passes publish=False and hands `pending_deliveries(rows)` to `publish_after_commit` once.
    """
    rows: dict[str, Notification] = {}
    for item in outgoing:
        for user in {u.pk: u for u in item.recipients if u is not None}.values():
            key = f"{item.dedupe}:u{user.pk}"
            rows.setdefault(
                key,
                Notification(
                    kind=item.kind,
                    recipient=user,
                    patient=item.patient,
                    course_id=item.course_id,
                    dose_id=item.dose_id,
                    dedupe_key=key,
                    topic=item.dedupe,
                    details=item.details or {},
                    due_at=item.due_at,
                    created_at=now,
                ),
            )
    if not rows:
        return []
    taken = set(Notification.objects.filter(dedupe_key__in=list(rows)).values_list("dedupe_key", flat=True))
    fresh = [row for key, row in rows.items() if key not in taken]
    if not fresh:
        return []
    try:
        with transaction.atomic():
            created = Notification.objects.bulk_create(fresh)
    except IntegrityError:  # a concurrent writer took a key since the read
        created = [row for row in fresh if _insert_unless_taken(row)]
    if created:
        ids = _create_deliveries(created, now=now)
        created[0].pending_delivery_ids = ids  # for pending_deliveries()
        if publish:
            publish_after_commit(ids)
    return created


def _insert_unless_taken(row: Notification) -> bool:
    row.pk = None
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def pending_deliveries(rows: list[Notification]) -> list[int]:
    """The delivery ids a task must send for rows just returned by notify() or notify_many()."""
    return [pk for row in rows for pk in getattr(row, "pending_delivery_ids", ())]


def publish_after_commit(delivery_ids: list[int]) -> None:
    """Enqueue the delivery task after commit, TASK_CHUNK ids per message (ids only)."""
    for start in range(0, len(delivery_ids), TASK_CHUNK):
        enqueue_on_commit(DELIVER_TASK, *delivery_ids[start : start + TASK_CHUNK])


# Kinds shown in the bell only: a pending double check concerns the nurses at work on the ward right now, so it is
# never e-mailed, texted or paged (and its row carries ids and codes only, like every notification).
IN_APP_ONLY_KINDS = frozenset({"double_check_requested"})


def _channels_for(user, stored: dict, *, patient, kind: str = "") -> list:
    """The registry's channels this recipient gets about this patient (no profile: every channel's default)."""
    choice = stored.get(user.pk)
    channels = [channel for channel in REGISTRY.values() if channel.wanted(user, choice, patient)]
    if kind in IN_APP_ONLY_KINDS:
        return [channel for channel in channels if channel.name == IN_APP]
    return channels


def _create_deliveries(rows: list[Notification], *, now: datetime) -> list[int]:
    """Delivery rows for new notifications; returns the ids a task must send (not in-app: it is already there)."""
    stored = dict(  # read fresh (one query): a preference changed a minute ago counts
        StaffProfile.objects.filter(user__in=[r.recipient_id for r in rows]).values_list("user_id", "channels")
    )
    deliveries = []
    endpoints = set()  # (channel, topic, endpoint): one delivery per event per endpoint, its recipients listed inside
    for row in rows:
        for channel in _channels_for(row.recipient, stored, patient=row.patient, kind=row.kind):
            if channel.endpoint is not None:
                endpoint = (channel.name, row.topic or row.dedupe_key, channel.endpoint(row.patient))
                if endpoint in endpoints:
                    continue
                endpoints.add(endpoint)
            in_app = channel.send is None
            deliveries.append(
                Delivery(
                    notification=row,
                    channel=channel.name,
                    status=Delivery.Status.DELIVERED if in_app else Delivery.Status.PENDING,
                    delivered_at=now if in_app else None,
                    next_attempt_at=now,
                    nudged_at=None if in_app else now,  # the on-commit task; the sweep's nudge comes later if needed
                    created_at=now,
                )
            )
    made = Delivery.objects.bulk_create(deliveries)
    if any(d.pk is None for d in made):  # backends that do not return ids from a bulk insert
        made = Delivery.objects.filter(notification__in=rows)
    return [d.pk for d in made if d.status == Delivery.Status.PENDING]


# --- Reading ------------------------------------------------------------------------------------------------------


def for_user(user, *, unacknowledged: bool = False, limit: int = 100):
    """The user's notifications, newest first (the API list and the notifications page)."""
    rows = Notification.objects.filter(recipient=user).select_related("patient__ward")
    if unacknowledged:
        rows = rows.filter(acknowledged_at__isnull=True, resolved_at__isnull=True)
    return rows.order_by("-created_at", "-pk")[:limit]


def bell_count(user) -> int:
    """Unacknowledged notifications the user gets in the app (her in-app preference)."""
    return Notification.objects.filter(
        recipient=user,
        acknowledged_at__isnull=True,
        resolved_at__isnull=True,  # its work is done: nothing for her to do
        deliveries__channel=IN_APP,
    ).count()


def notification_for(user, notification_id) -> Notification:
    """A notification of this user; anyone else's is "not found"."""
    try:
        return Notification.objects.select_related("patient").get(pk=notification_id, recipient=user)
    except (Notification.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such notification") from exc


# --- Acknowledging ------------------------------------------------------------------------------------------------


def family(notification: Notification) -> Q:
    """Rows about the same event: the same topic; for a dose's hold, its hold, stop and escalation rows."""
    same = Q(topic=notification.topic) if notification.topic else Q(pk=notification.pk)
    if notification.kind in Notification.HOLD_FAMILY and notification.dose_id:
        same |= Q(dose_id=notification.dose_id, kind__in=Notification.HOLD_FAMILY)
    return same


@retry_transaction
@transaction.atomic
def notification_acknowledge(*, notification_id: int, by, now: datetime) -> Notification:
    """The recipient acknowledges; the whole family is acknowledged with her name and pending pages are cancelled.

    Acknowledging again is harmless and keeps the first time.
    """
    row = notification_for(by, notification_id)
    if row.acknowledged_at is not None:
        return row
    # NO KEY (il2ward.db): deliveries inserted for these rows meanwhile need KEY SHARE on them.
    related = Notification.objects.select_for_update(no_key=True).filter(family(row), acknowledged_at__isnull=True)
    ids = list(related.values_list("pk", flat=True))
    Notification.objects.filter(pk__in=ids).update(acknowledged_at=now, acknowledged_by=by)
    cancelled = Delivery.objects.filter(notification_id__in=ids, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED, last_error="acknowledged"
    )
    audit(
        actor=by,
        action="notification.acknowledge",
        obj=row,
        at=now,
        new={"kind": row.kind, "dose": row.dose_id, "acknowledged": sorted(ids), "deliveries_cancelled": cancelled},
    )
    row.refresh_from_db()
    return row


@transaction.atomic
def notifications_acknowledge_reminders(*, by, now: datetime) -> int:
    """Acknowledge every open reminder of this user at once. Holds, stops and escalations are left to be
    acknowledged one by one: acknowledging one ends its escalation for everyone, which needs a look at the dose."""
    ids = list(
        Notification.objects.select_for_update()
        .filter(recipient=by, acknowledged_at__isnull=True, resolved_at__isnull=True)  # resolved: nothing to do
        .exclude(kind__in=Notification.HOLD_FAMILY)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    Notification.objects.filter(pk__in=ids).update(acknowledged_at=now, acknowledged_by=by)
    cancelled = Delivery.objects.filter(notification_id__in=ids, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED, last_error="acknowledged"
    )
    audit(
        actor=by,
        action="notification.acknowledge_all",
        obj=by,
        at=now,
        new={"acknowledged": ids, "deliveries_cancelled": cancelled},
    )
    return len(ids)


# --- Resolving: the work was done ------------------------------------------------------------------------------


def notifications_resolve(*, now: datetime, reason: str, kinds, dose_id: int | None = None,
                          course_id: int | None = None, dose_ids=None, patient_id: int | None = None,
                          where: Q | None = None, by=None, audit_into: list[Entry] | None = None) -> int:  # fmt: skip
    """The state change that answers them (a dose given or held, a hold overridden, a course stopped, an assessment
    or vitals charted) resolves the dose's (doses', course's, patient's) open notifications of these kinds, for every
    recipient, with the reason, and cancels their pending e-mail and webhook deliveries. Call inside that state
    change's transaction. One query when none is open. Returns the rows resolved.

    `audit_into`: the caller's list of entries, appended to the chain with its own in one append (one lock of the
    chain, taken last); without it the resolution is audited here."""
    if dose_id is not None:
        scope = Q(dose_id=dose_id)
    elif dose_ids is not None:
        scope = Q(dose_id__in=list(dose_ids))
    elif course_id is not None:
        scope = Q(course_id=course_id)
    elif patient_id is not None:
        scope = Q(patient_id=patient_id)
    else:
        raise ValueError("a dose, doses, a course or a patient")
    if where is not None:
        scope &= where
    open_rows = Notification.objects.filter(
        scope, kind__in=list(kinds), acknowledged_at__isnull=True, resolved_at__isnull=True
    )
    found = list(open_rows.values_list("pk", "patient_id", "course_id", "dose_id"))
    if not found:
        return 0
    ids = [pk for pk, *_ in found]
    Notification.objects.filter(pk__in=ids).update(resolved_at=now, resolved_reason=reason[:64])
    cancelled = Delivery.objects.filter(notification_id__in=ids, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.CANCELLED, last_error=f"done: {reason}"[:200]
    )
    # The audited object is the first row: its identity and the ids that map it to its ward, as read above.
    first_id, first_patient, first_course, first_dose = found[0]
    first = Notification(pk=first_id, patient_id=first_patient, course_id=first_course, dose_id=first_dose)
    entry = Entry(by, "notification.resolve", first, now, reason=reason,
                  new={"dose": dose_id, "doses": sorted(dose_ids) if dose_ids is not None else None,
                       "course": course_id, "patient": patient_id, "resolved": ids,
                       "deliveries_cancelled": cancelled})  # fmt: skip
    if audit_into is not None:
        audit_into.append(entry)
    else:
        audit_many([entry])
    return len(ids)


# --- Delivering ---------------------------------------------------------------------------------------------------


# Asked just before a delivery is sent whether its work was done meanwhile (then it is dropped, not sent late). The
# apps that own the work register here at start-up (scheduling's AppConfig): the dependencies point towards il2ward.
_WORK_DONE_CHECKS: list[Callable[[Notification], str]] = []


def register_work_done(check: Callable[[Notification], str]) -> None:
    if check not in _WORK_DONE_CHECKS:
        _WORK_DONE_CHECKS.append(check)


def work_done(notification) -> str:
    """Why the notification's work is already done ("" if it is not), asked of the apps that own the work."""
    for check in _WORK_DONE_CHECKS:
        if reason := check(notification):
            return reason
    return ""


def claim(delivery_id: int, *, now: datetime) -> bool:
    """pending → sending, exactly one claimer wins. A retry waits for its next_attempt_at; a first attempt does not."""
    due = Q(attempts=0) | Q(next_attempt_at__lte=now)
    return (
        Delivery.objects.filter(due, pk=delivery_id, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        == 1
    )


def deliver(delivery_id: int) -> str:
    """Claim and send one delivery; returns its status afterwards (or "skipped" when someone else has it)."""
    now = timezone.now()
    if not claim(delivery_id, now=now):
        return "skipped"
    delivery = Delivery.objects.select_related("notification__recipient__profile", "notification__patient__ward").get(
        pk=delivery_id
    )
    notification = delivery.notification
    if notification.acknowledged_at is not None:
        _finish(delivery, status=Delivery.Status.CANCELLED, last_error="acknowledged")
        return Delivery.Status.CANCELLED
    if notification.resolved_at is not None:
        _finish(delivery, status=Delivery.Status.CANCELLED, last_error=f"done: {notification.resolved_reason}")
        return Delivery.Status.CANCELLED
    done = work_done(notification)
    if done:  # its work was done while it waited (a retry, a backlog): announcing it now would mislead
        _finish(delivery, status=Delivery.Status.CANCELLED, last_error=f"done: {done}")
        log.info("delivery %s (%s) dropped: %s", delivery.pk, delivery.channel, done)
        return Delivery.Status.CANCELLED
    channel = REGISTRY.get(delivery.channel)
    try:
        if channel is None or channel.send is None:  # a channel taken out of the registry since
            raise ChannelError(f"no transport for channel {delivery.channel}", permanent=True)
        channel.send(message_for(notification), delivery_id=delivery.pk, attempt=delivery.attempts)
    except ChannelError as exc:
        return _failed(delivery, exc.code, now=timezone.now(), permanent=exc.permanent)
    # Read the clock again: delivered_at is when the channel accepted it (the latency the bench measures).
    _finish(delivery, status=Delivery.Status.DELIVERED, delivered_at=timezone.now(), last_error="")
    log.info("delivery %s (%s, notification %s) delivered", delivery.pk, delivery.channel, notification.pk)
    return Delivery.Status.DELIVERED


def _finish(delivery: Delivery, **fields) -> None:
    # Only our own claim: a claim the sweep took back (lease expired) belongs to whoever claimed it next.
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING, claimed_at=delivery.claimed_at).update(
        **fields
    )


def _failed(delivery: Delivery, code: str, *, now: datetime, permanent: bool = False) -> str:
    if permanent or delivery.attempts >= max_attempts():
        _finish(delivery, status=Delivery.Status.DEAD, last_error=code)
        log.error("delivery %s (%s) dead-lettered after %s attempts%s: %s", delivery.pk, delivery.channel,
                  delivery.attempts, " (refused, not retried)" if permanent else "", code)  # fmt: skip
        return Delivery.Status.DEAD
    _finish(
        delivery,
        status=Delivery.Status.PENDING,
        next_attempt_at=now + backoff(delivery.attempts),
        nudged_at=None,  # nobody will send it until the sweep does, at next_attempt_at
        last_error=code,
    )
    log.warning("delivery %s (%s) attempt %s failed: %s", delivery.pk, delivery.channel, delivery.attempts, code)
    return Delivery.Status.PENDING


def deliveries_resend(*, now: datetime, limit: int = 2000) -> dict[str, int]:
    """The resend sweep: take back lost claims, then publish every pending delivery whose time has come and whose
    last task (if any) was published more than IL2WARD_RESEND_AFTER_SECONDS ago: a slow worker's backlog is not
    published again every interval, a lost message is."""
    lease = timedelta(seconds=settings.IL2WARD_DELIVERY_LEASE_SECONDS)
    quiet = now - timedelta(seconds=settings.IL2WARD_RESEND_AFTER_SECONDS)
    stale = Q(status=Delivery.Status.SENDING, claimed_at__lt=now - lease)
    dead = Delivery.objects.filter(stale, attempts__gte=max_attempts()).update(
        status=Delivery.Status.DEAD, last_error="lost while sending"
    )
    reclaimed = Delivery.objects.filter(stale).update(
        status=Delivery.Status.PENDING, next_attempt_at=now, nudged_at=None
    )
    ids = list(
        Delivery.objects.filter(Q(nudged_at__isnull=True) | Q(nudged_at__lte=quiet), status=Delivery.Status.PENDING,
                                next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )  # fmt: skip
    if ids:
        Delivery.objects.filter(pk__in=ids).update(nudged_at=now)
        for start in range(0, len(ids), TASK_CHUNK):
            send_task_safely(DELIVER_TASK, *ids[start : start + TASK_CHUNK])
    return {"reclaimed": reclaimed, "dead_lettered": dead, "resent": len(ids)}


@transaction.atomic
def deliveries_retry(*, delivery_ids: list[int], by, now: datetime) -> list[int]:
    """An administrator sends dead, dismissed or waiting deliveries again, attempts from zero (audited); returns the
    ids queued. A delivered one is never sent twice."""
    retryable = [Delivery.Status.DEAD, Delivery.Status.DISMISSED, Delivery.Status.PENDING]
    ids = list(Delivery.objects.filter(pk__in=delivery_ids, status__in=retryable).values_list("pk", flat=True))
    if not ids:
        return []
    Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.PENDING, attempts=0, next_attempt_at=now,
                                               last_error="")  # fmt: skip
    audit(actor=by, action="delivery.retry", obj=("il2ward.delivery", ",".join(map(str, ids))[:64]), at=now,
          new={"deliveries": ids})  # fmt: skip
    publish_after_commit(ids)
    return ids


@transaction.atomic
def deliveries_dismiss(*, delivery_ids: list[int], by, now: datetime) -> list[int]:
    """An administrator gives up on dead letters (no further attempts; audited); returns the ids dismissed."""
    ids = list(Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.DEAD).values_list("pk", flat=True))
    if not ids:
        return []
    Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.DISMISSED)
    audit(actor=by, action="delivery.dismiss", obj=("il2ward.delivery", ",".join(map(str, ids))[:64]), at=now,
          new={"deliveries": ids})  # fmt: skip
    return ids


def dead_letters() -> dict[str, int]:
    """Dead-lettered deliveries by channel (for /readyz)."""
    from django.db.models import Count

    rows = Delivery.objects.filter(status=Delivery.Status.DEAD).values("channel").annotate(n=Count("pk"))
    return {row["channel"]: row["n"] for row in rows}


def webhook_problems() -> str | None:
    """Wards with a paging webhook but no secret: nothing is sent to them (an unsigned page could be forged), so a
    paging integration there is silently off (for /readyz and the admin)."""
    from il2ward.models import Ward

    codes = list(Ward.objects.exclude(webhook_url="").filter(webhook_secret="").values_list("code", flat=True))
    if not codes:
        return None
    return f"webhook without a secret, nothing sent: wards {', '.join(sorted(codes))}"


# --- Preferences --------------------------------------------------------------------------------------------------


@transaction.atomic
def staff_profile_set_notifications(*, user_id: int, on_duty: bool, channels: dict, by, now: datetime) -> StaffProfile:
    """Set a user's duty flag and channel choices ({name: {"on": bool, <field>: value}}, validated by the form).

    Audited with old and new values: where her pages go (an SMS number) is an identity change of the account, and a
    page sent to the wrong phone is a page nobody answers."""
    profile = StaffProfile.objects.select_for_update(no_key=True).get(user_id=user_id)
    unknown = sorted(set(channels) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown channels {unknown}")
    old = {"on_duty": profile.on_duty, "channels": profile.channels or {}}
    new = {"on_duty": bool(on_duty), "channels": {**(profile.channels or {}), **channels}}
    if new != old:
        StaffProfile.objects.filter(pk=profile.pk).update(on_duty=new["on_duty"], channels=new["channels"])
        profile.on_duty, profile.channels = new["on_duty"], new["channels"]
        changed = {key: value for key, value in new["channels"].items() if old["channels"].get(key) != value}
        audit(actor=by, action="staff_profile.notifications", obj=profile, at=now,
              old={"on_duty": old["on_duty"], "channels": {k: old["channels"].get(k) for k in changed}},
              new={"on_duty": new["on_duty"], "channels": changed})  # fmt: skip
    return profile
