"""Reminder sweeps (HOLD-RULES §5) and the escalation of unacknowledged holds; run by scheduling.sweep every 30 s.

kind            when (defaults; site-configurable IL2WARD_* settings)                          to (il2ward.recipients)
assessment_due  due − 2 h (IL2WARD_ASSESSMENT_DUE_MINUTES=120), until the dose is due          nursing
dose_due        due − 30 min (IL2WARD_DOSE_DUE_MINUTES), until it is overdue                   nursing
dose_overdue    due + 30 min (IL2WARD_DOSE_OVERDUE_MINUTES), until due + W (then missed)       nursing
vitals_due      active cycle, no vitals for 2 h (IL2WARD_VITALS_EVERY_MINUTES); every 2 h      nursing
weight_due      06:00 ward-local (IL2WARD_DAILY_WEIGHT_HOUR), no weight since local midnight   nursing
labs_due        06:00 ward-local (IL2WARD_DAILY_LABS_HOUR), no labs since local midnight       nursing
escalation      hold_flagged / stop_recommended unacknowledged: up IL2WARD_ESCALATION_CHAIN,    the chain's
                each step after its delay (default charge nurse + on-call at 15 min, course    steps
                oncologist at 30, assigned nurse + IL2WARD_ESCALATION_BACKUP at 45, then
                everyone every 15 min), while the dose is open, flagged and not overridden

dose_missed, hold_flagged, stop_recommended and third_hold are written where they happen (scheduling.services,
scheduling.evaluation). Every sweep is idempotent — each reminder has a dedupe key (kind, dose or patient, time
bucket) and the queries exclude what was already sent — and costs a constant number of queries when nothing is due:
the work is in SQL (EXISTS per row, on indexed columns), so 1,000 active courses cost about what 10 do.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery

from il2ward.models import Notification, Ward
from il2ward.notifications import Outgoing, notify_many, pending_deliveries, publish_after_commit
from il2ward.recipients import Directory, chain_position, escalation_chain
from monitoring.domain import engine
from monitoring.models import LabResult, VitalSigns, WeightMeasurement
from scheduling.models import Course, Dose, DoseEvaluation, Override
from scheduling.services import isolation

PATIENT_RELATED = (
    "course__patient__ward__on_call_oncologist__profile",
    "course__patient__assigned_nurse__profile",
    "course__oncologist__profile",
)
COURSE_RELATED = tuple(name.removeprefix("course__") for name in PATIENT_RELATED)


GIVE_KINDS = ("dose_due", "dose_overdue")  # reminders to give the dose
NEVER_GIVEN = ("stop", "discontinue")


def minutes(name: str) -> timedelta:
    return timedelta(minutes=getattr(settings, name))


@dataclass(frozen=True)
class DoseTiming:
    """When each dose reminder fires, relative to the slot's due time."""

    assessment: timedelta  # before due
    due: timedelta  # before due
    overdue: timedelta  # after due
    window: timedelta  # SCH-WINDOW W: after due + W the slot is missed

    @classmethod
    def from_settings(cls) -> "DoseTiming":
        return cls(
            assessment=minutes("IL2WARD_ASSESSMENT_DUE_MINUTES"),
            due=minutes("IL2WARD_DOSE_DUE_MINUTES"),
            overdue=minutes("IL2WARD_DOSE_OVERDUE_MINUTES"),
            window=timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES),
        )

    def stages(self) -> list[tuple[str, timedelta, timedelta]]:
        """(kind, from, until) relative to due: a reminder is due while from <= now − due_at < until."""
        return [
            ("assessment_due", -self.assessment, timedelta(0)),
            ("dose_due", -self.due, self.overdue),
            ("dose_overdue", self.overdue, self.window),
        ]

    def due_now(self, due_at: datetime, *, now: datetime) -> list[tuple[str, datetime]]:
        """(kind, time it was due) of every stage whose time has come and not passed (pure)."""
        return [(kind, due_at + start) for kind, start, end in self.stages() if start <= now - due_at < end]


def reminders_sweep(*, now: datetime) -> dict[str, int]:
    return {
        "dose_reminders": dose_reminders(now=now),
        "vitals_due": vitals_due(now=now),
        "daily_due": daily_due(now=now),
        "escalations": escalate_holds(now=now),
    }


CHUNK = 100  # reminders per transaction: few commits in a burst, short enough locks


def _notify_each(items, *, now: datetime) -> int:
    """items: (kind, dedupe, due_at, dose or None, course, users, details). Written CHUNK to a transaction, in the
    items' order (two concurrent sweeps take the same keys in the same order), each chunk in a constant number of
    queries (notify_many), its deliveries published once; a chunk that fails is written one reminder at a time
    (isolation), the failing one left for the next sweep."""
    written = 0
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        written += sum(isolation.batch_or_each(chunk, lambda part: _notify_chunk(part, now=now), name=_item_name))
    return written


def _item_name(item) -> str:
    """A reminder by the slot or course it is about (ids only: the pushed-back item's log line)."""
    _, _, _, dose, course, _, _ = item
    return f"dose {dose.pk}" if dose is not None else f"course {course.pk}"


def _notify_chunk(items, *, now: datetime) -> int:
    outgoing = [
        Outgoing(
            kind=kind,
            recipients=users,
            dedupe=dedupe,
            patient=course.patient,
            course_id=course.pk,
            dose_id=dose.pk if dose is not None else None,
            details=details,
            due_at=due_at,
        )
        for kind, dedupe, due_at, dose, course, users, details in items
    ]
    with transaction.atomic():
        rows = notify_many(outgoing, now=now, publish=False)
        publish_after_commit(pending_deliveries(rows))
    return len(rows)


def dose_reminders(*, now: datetime) -> int:
    """assessment_due, dose_due and dose_overdue for open slots; one query when nothing is due."""
    timing = DoseTiming.from_settings()
    sent = {
        kind: Exists(Notification.objects.filter(kind=kind, dose_id=OuterRef("pk"))) for kind, _, _ in timing.stages()
    }
    # INV-STOP / INV-DISC: a slot whose evaluation recommended stop (or discontinue), or of a discontinued course, is
    # never given: nobody is told to give it (the stop's own flag and escalation tell them what to do).
    never_given = Exists(DoseEvaluation.objects.filter(dose=OuterRef("pk"), decision__in=NEVER_GIVEN))
    needed = Q()
    for kind, start, end in timing.stages():
        # start <= now − due < end  ⇔  now − end < due <= now − start
        window = Q(due_at__gt=now - end, due_at__lte=now - start, **{f"sent_{kind}": False})
        if kind in GIVE_KINDS:
            window &= Q(never_given=False, course__discontinued_at__isnull=True)
        needed |= window
    earliest = now - max(end for _, _, end in timing.stages())
    latest = now - min(start for _, start, _ in timing.stages())
    doses = list(
        Dose.objects.filter(
            status=Dose.Status.SCHEDULED,
            course__status__in=[Course.Status.PLANNED, Course.Status.ACTIVE],
            due_at__gt=earliest,
            due_at__lte=latest,
        )
        .annotate(never_given=never_given, **{f"sent_{kind}": expr for kind, expr in sent.items()})
        .filter(needed)
        .select_related(*PATIENT_RELATED, "latest_evaluation")
        .order_by("due_at", "pk")
    )
    if not doses:
        return 0
    directory = Directory({d.course.patient.ward_id for d in doses})
    items = []
    for dose in doses:
        course = dose.course
        for kind, due_at in timing.due_now(dose.due_at, now=now):
            if getattr(dose, f"sent_{kind}"):
                continue
            if kind in GIVE_KINDS and (dose.never_given or course.discontinued_at is not None):
                continue  # the slot is due for another stage; this one would tell them to give it
            if kind == "assessment_due" and _assessed(dose, since=due_at):
                continue  # a complete assessment is already charted for this dose: nothing to remind
            items.append(
                (
                    kind,
                    f"{kind}:dose{dose.pk}",
                    due_at,
                    dose,
                    course,
                    directory.for_kind(kind, patient=course.patient, oncologist=course.oncologist),
                    {"cycle": dose.cycle, "number": dose.number},
                )
            )
    return _notify_each(items, now=now)


def _assessed(dose: Dose, *, since: datetime) -> bool:
    evaluation = dose.latest_evaluation
    return evaluation is not None and evaluation.decision != "incomplete" and evaluation.evaluated_at >= since


def _current_cycle_start(now: datetime, window: timedelta) -> Subquery:
    """Due time of slot 1 of the course's current cycle (the latest slot 1 whose window has opened)."""
    return Subquery(
        Dose.objects.filter(course=OuterRef("pk"), number=1, due_at__lte=now + window)
        .order_by("-due_at")
        .values("due_at")[:1]
    )


def _standing(model, *, since: datetime, now: datetime):
    return model.objects.filter(
        patient=OuterRef("patient_id"), entered_in_error_at__isnull=True, recorded_at__gt=since, recorded_at__lte=now
    )


def vitals_due(*, now: datetime) -> int:
    """vitals_due: an active cycle and no vitals for 2 h; again every 2 h (the bucket) while none come."""
    every = minutes("IL2WARD_VITALS_EVERY_MINUTES")
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    # Narrow first (ids only, anti-joins, no per-row subquery): on a quiet ward this one query is the whole cost.
    quiet_too_long = list(
        Course.objects.filter(status=Course.Status.ACTIVE)
        .annotate(
            recent=Exists(_standing(VitalSigns, since=now - every, now=now)),
            reminded=Exists(
                Notification.objects.filter(
                    kind="vitals_due", patient_id=OuterRef("patient_id"), due_at__gt=now - every
                )
            ),
        )
        .filter(recent=False, reminded=False)
        .values_list("pk", flat=True)
    )
    if not quiet_too_long:
        return 0
    courses = list(
        Course.objects.filter(pk__in=quiet_too_long)
        .annotate(
            cycle_start=_current_cycle_start(now, window),
            last_vitals=Subquery(
                VitalSigns.objects.filter(
                    patient=OuterRef("patient_id"), entered_in_error_at__isnull=True, recorded_at__lte=now
                )
                .order_by("-recorded_at")
                .values("recorded_at")[:1]
            ),
        )
        .filter(cycle_start__lte=now - every + window)  # the cycle's window opened at least 2 h ago
        .select_related(*COURSE_RELATED)
        .order_by("pk")
    )
    if not courses:
        return 0
    directory = Directory({c.patient.ward_id for c in courses})
    items = []
    for course in courses:
        active_from = course.cycle_start - window
        anchor = max(course.last_vitals or active_from, active_from)
        periods = int((now - anchor) / every)
        due_at = anchor + periods * every
        items.append(
            (
                "vitals_due",
                f"vitals_due:patient{course.patient_id}:at{int(due_at.timestamp())}",
                due_at,
                None,
                course,
                directory.for_kind("vitals_due", patient=course.patient),
                {"every_minutes": int(every.total_seconds() // 60)},
            )
        )
    return _notify_each(items, now=now)


DAILY = (
    ("weight_due", WeightMeasurement, "IL2WARD_DAILY_WEIGHT_HOUR"),
    ("labs_due", LabResult, "IL2WARD_DAILY_LABS_HOUR"),
)


def daily_due(*, now: datetime) -> int:
    """weight_due and labs_due: at the hour (06:00) ward-local, for active cycles with none since local midnight."""
    wards = list(Ward.objects.only("pk", "tz"))
    written = 0
    for kind, model, hour_setting in DAILY:
        hour = getattr(settings, hour_setting)
        if not 0 <= hour <= 23:
            raise ImproperlyConfigured(f"{hour_setting} must be an hour from 0 to 23, got {hour}")
        per_ward = Q()
        days = {}
        for ward in wards:
            local = now.astimezone(ward.zone)
            midnight = datetime.combine(local.date(), time(0), tzinfo=ward.zone)
            due_at = datetime.combine(local.date(), time(hour), tzinfo=ward.zone)
            if now < due_at:
                continue
            days[ward.pk] = (local.date(), due_at)
            per_ward |= (
                Q(patient__ward_id=ward.pk)
                & ~Exists(_standing(model, since=midnight, now=now))
                & ~Exists(Notification.objects.filter(kind=kind, patient_id=OuterRef("patient_id"), due_at__gte=due_at))
            )
        if not days:
            continue
        ids = list(Course.objects.filter(per_ward, status=Course.Status.ACTIVE).values_list("pk", flat=True))
        if not ids:  # ids first, no joins: on a quiet ward this query is the whole cost
            continue
        courses = list(Course.objects.filter(pk__in=ids).select_related(*COURSE_RELATED).order_by("pk"))
        directory = Directory({c.patient.ward_id for c in courses})
        items = []
        for course in courses:
            day, due_at = days[course.patient.ward_id]
            items.append(
                (
                    kind,
                    f"{kind}:patient{course.patient_id}:{day.isoformat()}",
                    due_at,
                    None,
                    course,
                    directory.for_kind(kind, patient=course.patient),
                    {"day": day.isoformat(), "hour": hour},
                )
            )
        written += _notify_each(items, now=now)
    return written


def _backup_users():
    from django.contrib.auth import get_user_model

    names = [n.strip() for n in str(settings.IL2WARD_ESCALATION_BACKUP).split(",") if n.strip()]
    return list(get_user_model().objects.filter(username__in=names, is_active=True)) if names else []


def _step_recipients(roles, *, directory: Directory, course, backup) -> list:
    patient = course.patient
    by_role = {
        "assigned_nurse": lambda: directory.nursing(patient),
        "charge_nurse": lambda: directory.escalation(patient, oncologist=None)[:-1],
        "on_call_oncologist": lambda: [
            patient.ward.on_call_oncologist
            if patient.ward.on_call_oncologist is not None and patient.ward.on_call_oncologist.is_active
            else course.oncologist
        ],
        "course_oncologist": lambda: [course.oncologist],
        "backup": lambda: backup,
    }
    users, seen = [], set()
    for role in roles:
        for user in by_role[role]():
            if user is not None and user.pk not in seen:
                seen.add(user.pk)
                users.append(user)
    return users


def escalate_holds(*, now: datetime) -> int:
    """A hold_flagged / stop_recommended not acknowledged goes up the escalation chain (escalation_chain): each step
    to its people after its own delay, until someone acknowledges it (any step: for everyone), it is overridden, the
    dose is closed (given, held, missed, cancelled) or the flag clears on a fresh evaluation."""
    chain = escalation_chain()
    first = chain[0].after
    window = timedelta(minutes=settings.IL2WARD_WINDOW_MINUTES)
    flags = [Notification.Kind.HOLD_FLAGGED, Notification.Kind.STOP_RECOMMENDED]
    # The newest unacknowledged flag is the episode being escalated (an older one was answered or superseded).
    open_flags = Notification.objects.filter(
        dose_id=OuterRef("pk"), kind__in=flags, acknowledged_at__isnull=True
    ).order_by("-created_at", "-pk")
    doses = list(
        Dose.objects.filter(
            status=Dose.Status.SCHEDULED,
            flag__in=[Dose.Flag.HOLD, Dose.Flag.STOP, Dose.Flag.DISCONTINUE],
            due_at__gte=now - window,
            due_at__lte=now + timedelta(days=1),
        )
        .annotate(
            flagged_at=Subquery(open_flags.values("created_at")[:1]),
            flag_topic=Subquery(open_flags.values("topic")[:1]),
            # An e-signed override since the flag answers it: nobody is paged about a lifted hold.
            overridden=Exists(Override.objects.filter(dose_id=OuterRef("pk"), at__gte=OuterRef("flagged_at"))),
        )
        .filter(flagged_at__lte=now - first, overridden=False)
        .select_related(*PATIENT_RELATED, "latest_evaluation")
    )
    if not doses:
        return 0
    directory = Directory({d.course.patient.ward_id for d in doses})
    backup = _backup_users()
    chain_text = " → ".join(f"{'+'.join(s.roles)} +{int(s.after.total_seconds() // 60)} min" for s in chain)
    items = []
    for dose in doses:
        course = dose.course
        position = chain_position(chain, now - dose.flagged_at)
        if position is None:
            continue  # not reached: the query keeps only flags older than the first step's delay
        number, offset, roles = position
        evaluation = dose.latest_evaluation
        rules = engine.blocking_rules(evaluation.findings if evaluation else None, ("hold", "stop"))
        items.append(
            (
                "escalation",
                f"escalation:{dose.flag_topic}:n{number}",
                dose.flagged_at + offset,
                dose,
                course,
                _step_recipients(roles, directory=directory, course=course, backup=backup),
                {
                    "cycle": dose.cycle,
                    "number": dose.number,
                    "flag": dose.flag,
                    "rules": rules,
                    "escalation": number,
                    "step": list(roles),
                    "chain": chain_text,
                    "flag_due_at": dose.due_at.isoformat(),
                },  # fmt: skip
            )
        )
    return _notify_each(items, now=now)


# A dose given or held (or its course stopped) answers these; a pending check's bell goes with them (its check is
# cancelled by the same give or hold).
DOSE_WORK = {
    "assessment_due",
    "dose_due",
    "dose_overdue",
    "hold_flagged",
    "stop_recommended",
    "escalation",
    "double_check_requested",
}
HOLD_KINDS = {"hold_flagged", "stop_recommended", "escalation"}


def work_done(notification) -> str:
    """Why a dose notification no longer needs sending ("" while it does): read just before a delivery is sent, so
    a reminder retried after the dose was given, held, missed or its course stopped, a hold lifted by an override or
    cleared by a fresh evaluation, or an assessment charted since it was due, is dropped instead of announced late."""
    if notification.kind not in DOSE_WORK or not notification.dose_id:
        return ""
    dose = (
        Dose.objects.filter(pk=notification.dose_id)
        .select_related("latest_evaluation")
        .only("status", "flag", "latest_evaluation__decision", "latest_evaluation__evaluated_at")
        .first()
    )
    if dose is None:
        return ""
    if dose.status != Dose.Status.SCHEDULED:
        return f"dose {dose.status}"
    if notification.kind in GIVE_KINDS:
        if DoseEvaluation.objects.filter(dose_id=dose.pk, decision__in=NEVER_GIVEN).exists():
            return "stop recommended"
        if Course.objects.filter(pk=notification.course_id, discontinued_at__isnull=False).exists():
            return "course discontinued"
    if notification.kind in HOLD_KINDS:
        if dose.flag not in (Dose.Flag.HOLD, Dose.Flag.STOP, Dose.Flag.DISCONTINUE):
            return "flag cleared"
        if Override.objects.filter(dose_id=dose.pk, at__gte=notification.created_at).exists():
            return "overridden"
    evaluation = dose.latest_evaluation
    if (
        notification.kind == "assessment_due"
        and evaluation is not None
        and evaluation.decision != "incomplete"
        and notification.due_at is not None
        and evaluation.evaluated_at >= notification.due_at
    ):
        return "assessment recorded"
    return ""
