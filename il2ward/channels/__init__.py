"""Delivery channels: one small transport contract each (the healthchecks way).

    send(message: Message, *, delivery_id: int, attempt: int) -> None     raises ChannelError on failure

A Message carries what a recipient outside the ward system may see: kind, ward, a bed-free patient reference (id and
initials), the dose's cycle and number, rule ids and a link. Never the name, MRN or free text.
In-app has no transport: the notification row is the message and the bell reads it from the database.
"""

import hashlib
from dataclasses import dataclass, field

from django.conf import settings

from il2ward import people
from il2ward.timefmt import iso_z, local_iso, readable


class ChannelError(Exception):
    """A delivery attempt failed; `code` is short and content-free (an error class or an HTTP status)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code[:200]


@dataclass(frozen=True)
class Message:
    notification_id: int
    kind: str
    label: str
    recipient_username: str
    recipient_email: str
    ward: str
    patient_id: int | None
    patient_initials: str
    dose_id: int | None
    cycle: int | None
    number: int | None
    rules: list[str] = field(default_factory=list)
    link: str = ""
    created_at: str = ""
    due_at: str | None = None
    webhook_url: str = ""
    webhook_secret: str = ""
    topic: str = ""
    created_at_local: str = ""
    due_at_local: str | None = None
    zone: str = ""
    created_readable: str = ""
    due_readable: str = ""

    @property
    def event_id(self) -> str:
        """The same for every recipient's row and every attempt: what a receiver deduplicates on."""
        return "evt_" + hashlib.sha256((self.topic or f"notification{self.notification_id}").encode()).hexdigest()[:32]

    @property
    def subject(self) -> str:
        parts = [self.label, f"ward {self.ward}"]
        if self.patient_id:
            parts.append(f"patient {self.patient_id} ({self.patient_initials})")
        if self.cycle:
            parts.append(f"cycle {self.cycle} dose {self.number}")
        return "[IL2Ward] " + " | ".join(parts)  # ASCII: no encoded-word folding in mail clients

    def payload(self) -> dict:
        """The webhook body (and the facts of the e-mail): ids and codes only."""
        return {
            "id": self.notification_id,
            "kind": self.kind,
            "event": self.event_id,
            "ward": self.ward,
            "patient": {"id": self.patient_id, "initials": self.patient_initials} if self.patient_id else None,
            "dose": {"id": self.dose_id, "cycle": self.cycle, "number": self.number} if self.dose_id else None,
            "rules": self.rules,
            "created_at": self.created_at,
            "created_at_local": self.created_at_local,
            "due_at": self.due_at,
            "due_at_local": self.due_at_local,
            "time_zone": self.zone,
            "link": self.link,
        }


def message_for(notification) -> Message:
    """Build the Message; `notification` comes with recipient and patient__ward selected."""
    details = notification.details or {}
    patient = notification.patient
    ward = patient.ward if patient is not None else None
    zone = ward.zone if ward is not None else None
    rules = details.get("rules") or ([details["rule"]] if details.get("rule") else [])
    base = str(settings.IL2WARD_BASE_URL).rstrip("/")
    if notification.dose_id:
        link = f"{base}/doses/{notification.dose_id}/"
    elif patient is not None:
        link = f"{base}/patients/{patient.pk}/"
    else:
        link = f"{base}/notifications/"
    return Message(
        notification_id=notification.pk,
        kind=notification.kind,
        label=notification.label,
        recipient_username=notification.recipient.get_username(),
        recipient_email=notification.recipient.email,
        ward=ward.code if ward else "",
        patient_id=patient.pk if patient else None,
        patient_initials=people.initials(patient.name) if patient else "",
        dose_id=notification.dose_id,
        cycle=details.get("cycle"),
        number=details.get("number"),
        rules=[str(r) for r in rules],
        link=link,
        created_at=iso_z(notification.created_at),
        due_at=iso_z(notification.due_at),
        webhook_url=ward.webhook_url if ward else "",
        webhook_secret=ward.webhook_secret if ward else "",
        topic=notification.topic,
        created_at_local=local_iso(notification.created_at, zone),
        due_at_local=local_iso(notification.due_at, zone),
        zone=ward.tz if ward else "UTC",
        created_readable=readable(notification.created_at, zone),
        due_readable=readable(notification.due_at, zone),
    )


def transports() -> dict:
    from il2ward.channels import email, webhook

    return {"email": email.send, "webhook": webhook.send}
