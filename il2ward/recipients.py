"""Who hears about what: the one place that turns (kind, patient, course oncologist) into recipients.

- Nursing reminders go to the patient's assigned nurse when she is on duty, else to the ward's nurses on duty, else
  (nobody on duty) to the ward's charge nurses, else to every nurse of the ward: a reminder always has someone.
- dose_missed, hold_flagged and stop_recommended also go to the course's oncologist.
- third_hold (SCH-3HELD) goes to the course's oncologist and the ward's on-call oncologist.
- escalation (a hold not acknowledged in time) goes to the ward's charge nurses on duty and its on-call oncologist;
  without an on-call oncologist to the course's oncologist, without a charge nurse on duty to any charge nurse, then to
  the nursing recipients.

Also the two writes that set these people: a patient's assigned nurse and a ward's on-call oncologist (audited).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F

from il2ward.audit import audit
from il2ward.db import retry_transaction
from il2ward.errors import Invalid
from il2ward.models import NURSING_ROLES, Patient, Role, Ward

NURSING_KINDS = {"assessment_due", "dose_due", "dose_overdue", "vitals_due", "weight_due", "labs_due"}
WITH_ONCOLOGIST = {"dose_missed", "hold_flagged", "stop_recommended"}


class Directory:
    """The nursing staff of some wards, loaded in one query, then asked per patient without further queries.

    Patients passed in should come with `ward__on_call_oncologist__profile` and `assigned_nurse__profile` selected.
    """

    def __init__(self, ward_ids: Iterable[int]):
        self.nurses: dict[int, dict[int, object]] = defaultdict(dict)  # ward id → {user id: user}
        self.charge: dict[int, dict[int, object]] = defaultdict(dict)
        ward_ids = set(ward_ids)
        if not ward_ids:
            return
        rows = (
            get_user_model()
            .objects.filter(is_active=True, profile__wards__in=ward_ids, groups__name__in=NURSING_ROLES)
            .select_related("profile")
            .annotate(in_ward=F("profile__wards"), role=F("groups__name"))
            .order_by("pk")
        )
        for user in rows:
            (self.charge if user.role == Role.CHARGE_NURSE else self.nurses)[user.in_ward][user.pk] = user

    @staticmethod
    def _on_duty(users) -> list:
        return [u for u in users if getattr(getattr(u, "profile", None), "on_duty", False)]

    def nursing(self, patient: Patient) -> list:
        nurse = patient.assigned_nurse
        if nurse is not None and nurse.is_active and self._on_duty([nurse]):
            return [nurse]
        ward_nurses = list(self.nurses[patient.ward_id].values())
        ward_charge = list(self.charge[patient.ward_id].values())
        return self._on_duty(ward_nurses) or self._on_duty(ward_charge) or ward_charge or ward_nurses

    def escalation(self, patient: Patient, *, oncologist=None) -> list:
        charge = list(self.charge[patient.ward_id].values())
        users = self._on_duty(charge) or charge or self.nursing(patient)
        on_call = patient.ward.on_call_oncologist
        return [*users, on_call if on_call is not None and on_call.is_active else oncologist]

    def second_nurses(self, patient: Patient, *, asked_by) -> list:
        """Who may answer a pending double check: the ward's other nurses and charge nurses on duty, else all of
        them (the one who asked never checks her own give)."""
        others = [
            u
            for u in (*self.nurses[patient.ward_id].values(), *self.charge[patient.ward_id].values())
            if u.pk != asked_by.pk
        ]
        return _unique(self._on_duty(others) or others)

    def for_kind(self, kind: str, *, patient: Patient, oncologist=None) -> list:
        if kind == "escalation":
            users = self.escalation(patient, oncologist=oncologist)
        elif kind == "third_hold":
            users = [oncologist, patient.ward.on_call_oncologist]
        elif kind in WITH_ONCOLOGIST:
            users = [*self.nursing(patient), oncologist]
        else:  # NURSING_KINDS and anything new: the nurses caring for the patient
            users = self.nursing(patient)
        return _unique(users)


def _unique(users) -> list:
    seen, out = set(), []
    for user in users:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            out.append(user)
    return out


# --- The escalation chain ----------------------------------------------------------------------------------------

ESCALATION_ROLES = ("assigned_nurse", "charge_nurse", "on_call_oncologist", "course_oncologist", "backup")


@dataclass(frozen=True)
class EscalationStep:
    roles: tuple[str, ...]
    after: timedelta  # after the previous step (the first: after the flag)


def escalation_chain() -> list[EscalationStep]:
    """IL2WARD_ESCALATION_CHAIN, e.g. "charge_nurse+on_call_oncologist:15,course_oncologist:15,backup:10": each step's
    roles and its delay in minutes after the previous step. Without it: charge nurse and on-call oncologist, then the
    course's oncologist, then the assigned nurse and the backup, each IL2WARD_ESCALATE_AFTER_MINUTES (15) apart."""
    after = settings.IL2WARD_ESCALATE_AFTER_MINUTES
    if not isinstance(after, int) or after < 1:  # the system check refuses it at start-up; a worker stops here
        raise ImproperlyConfigured("IL2WARD_ESCALATE_AFTER_MINUTES must be at least 1")
    text = settings.IL2WARD_ESCALATION_CHAIN or (
        f"charge_nurse+on_call_oncologist:{after},course_oncologist:{after},assigned_nurse+backup:{after}"
    )
    return parse_chain(text)


def parse_chain(text: str) -> list[EscalationStep]:
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        roles, _, delay = part.partition(":")
        names = tuple(r.strip() for r in roles.split("+") if r.strip())
        unknown = [r for r in names if r not in ESCALATION_ROLES]
        if not names or unknown or not delay.strip().isdigit() or int(delay) < 1:
            raise ImproperlyConfigured(
                f"IL2WARD_ESCALATION_CHAIN step {part!r}: roles from {', '.join(ESCALATION_ROLES)} joined by +, "
                "then : and a delay of at least 1 minute"
            )
        steps.append(EscalationStep(names, timedelta(minutes=int(delay))))
    if not steps:
        raise ImproperlyConfigured("IL2WARD_ESCALATION_CHAIN has no step")
    return steps


def chain_position(chain: list[EscalationStep], elapsed: timedelta) -> tuple[int, timedelta, tuple[str, ...]] | None:
    """(step number from 1, its time after the flag, its roles) of the latest step due `elapsed` after the flag; past
    the last step, everyone in the chain again every last delay (pure)."""
    at, position = timedelta(0), None
    for number, step in enumerate(chain, start=1):
        at += step.after
        if elapsed < at:
            return position
        position = (number, at, step.roles)
    repeats = int((elapsed - at) / chain[-1].after)
    if repeats == 0:
        return position
    everyone = tuple(dict.fromkeys(role for step in chain for role in step.roles))
    return len(chain) + repeats, at + repeats * chain[-1].after, everyone


ROLE_LABELS = {
    "assigned_nurse": "assigned nurse",
    "charge_nurse": "charge nurse",
    "on_call_oncologist": "on-call oncologist",
    "course_oncologist": "course oncologist",
    "backup": "backup",
}


def roles_text(roles) -> str:
    return " + ".join(ROLE_LABELS.get(r, r) for r in roles)


def chain_text(chain: list[EscalationStep]) -> str:
    """For people: "charge nurse + on-call oncologist after 15 min → course oncologist +15 min → ..."."""
    parts = []
    for number, step in enumerate(chain, start=1):
        minutes = int(step.after.total_seconds() // 60)
        parts.append(f"{roles_text(step.roles)} {'after ' if number == 1 else '+'}{minutes} min")
    last = int(chain[-1].after.total_seconds() // 60)
    return " → ".join(parts) + f"; then everyone in it every {last} min"


@dataclass(frozen=True)
class ChainPosition:
    """Where a hold's notification stands in the escalation chain (the admin and the notification page show it)."""

    step: int  # 0: the flag itself; 1..n: an escalation step; past n: a repeat to everyone
    steps: int  # the chain's length
    roles: tuple[str, ...]  # who this row's step pages (the flag: the nurses and the oncologist, no chain role)
    next_step: int | None
    next_roles: tuple[str, ...]
    next_due_at: datetime | None  # None when the chain has ended for this hold (acknowledged or resolved)

    @property
    def label(self) -> str:
        if self.step == 0:
            return f"flag (chain of {self.steps} steps)"
        if self.step > self.steps:
            return f"repeat {self.step - self.steps} after step {self.steps} of {self.steps}: {roles_text(self.roles)}"
        return f"step {self.step} of {self.steps}: {roles_text(self.roles)}"

    @property
    def next_label(self) -> str:
        return roles_text(self.next_roles) if self.next_step is not None else ""


def chain_position_of(notification, chain: list[EscalationStep] | None = None) -> ChainPosition | None:
    """The chain position of a hold_flagged / stop_recommended (step 0) or an escalation row; None for other kinds.

    The next step is reckoned with the chain configured now, from this row's own time (the flag's creation, the
    step's due time); it is None once the hold was acknowledged or its work done, since nobody will be paged."""
    kind = notification.kind
    if kind not in ("hold_flagged", "stop_recommended", "escalation"):
        return None
    chain = chain or escalation_chain()
    details = notification.details or {}
    if kind == "escalation":
        step = int(details.get("escalation") or 1)
        roles = tuple(details.get("step") or ())
        base = notification.due_at or notification.created_at
    else:
        step, roles, base = 0, (), notification.created_at
    everyone = tuple(dict.fromkeys(role for s in chain for role in s.roles))
    if step < len(chain):
        next_step, next_roles, delay = step + 1, chain[step].roles, chain[step].after
    else:
        next_step, next_roles, delay = step + 1, everyone, chain[-1].after
    ended = notification.acknowledged_at is not None or getattr(notification, "resolved_at", None) is not None
    return ChainPosition(
        step=step,
        steps=len(chain),
        roles=roles,
        next_step=None if ended else next_step,
        next_roles=() if ended else next_roles,
        next_due_at=None if ended else base + delay,
    )


# --- Setting assignments and on-call ------------------------------------------------------------------------------


def nurses_of(ward: Ward):
    return (
        get_user_model()
        .objects.filter(is_active=True, profile__wards=ward, groups__name__in=NURSING_ROLES)
        .select_related("profile")
        .distinct()
        .order_by("profile__printed_name", "username")
    )


def oncologists():
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.ONCOLOGIST)
        .select_related("profile")
        .distinct()
        .order_by("profile__printed_name", "username")
    )


@retry_transaction
@transaction.atomic
def patient_assign_nurse(*, patient_id: int, nurse, by, now: datetime) -> Patient:
    """Set (or clear, nurse=None) the patient's assigned nurse: a nurse of the patient's ward."""
    # The patient row only (of=self: not its ward too), FOR NO KEY UPDATE: charting for this patient inserts child
    # rows whose foreign-key checks need KEY SHARE on it while this waits for the audit chain (il2ward.db).
    patient = Patient.objects.select_for_update(of=("self",), no_key=True).select_related("ward").get(pk=patient_id)
    if nurse is not None and not nurses_of(patient.ward).filter(pk=nurse.pk).exists():
        raise Invalid({"assigned_nurse": ["Choose a nurse of this patient's ward."]})
    old = patient.assigned_nurse_id
    new = nurse.pk if nurse is not None else None
    if old != new:
        Patient.objects.filter(pk=patient.pk).update(assigned_nurse_id=new)
        patient.assigned_nurse_id = new
        audit(actor=by, action="patient.assign_nurse", obj=patient, at=now, old={"nurse": old}, new={"nurse": new})
    return patient


@retry_transaction
@transaction.atomic
def ward_set_on_call(*, ward_id: int, oncologist, by, now: datetime) -> Ward:
    """Set (or clear) the ward's on-call oncologist, who receives escalations."""
    ward = Ward.objects.select_for_update(no_key=True).get(pk=ward_id)  # a parent row: NO KEY (il2ward.db)
    if oncologist is not None and not oncologists().filter(pk=oncologist.pk).exists():
        raise Invalid({"on_call_oncologist": ["Choose an oncologist."]})
    old = ward.on_call_oncologist_id
    new = oncologist.pk if oncologist is not None else None
    if old != new:
        Ward.objects.filter(pk=ward.pk).update(on_call_oncologist_id=new)
        ward.on_call_oncologist_id = new
        audit(actor=by, action="ward.on_call", obj=ward, at=now, old={"oncologist": old}, new={"oncologist": new})
    return ward
