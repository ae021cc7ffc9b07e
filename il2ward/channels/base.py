"""What every channel shares: the transport contract, the Message, the Channel description and page links.

    send(message: Message, *, delivery_id: int, attempt: int) -> None     raises ChannelError on failure

A Message carries what a recipient outside the ward system may see: kind, ward, a bed-free patient reference (id and
initials), the dose's cycle and number, rule ids and a link. Never the name, MRN or free text.
In-app has no transport: the notification row is the message and the bell reads it from the database.
"""

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse

from il2ward import people
from il2ward.timefmt import iso_z, local_iso, readable


class ChannelError(Exception):
    """A delivery attempt failed; `code` is short and content-free (an error class or an HTTP status).

    `permanent`: trying again cannot help (the gateway refused the request itself, e.g. a 4xx): the delivery is
    dead-lettered at once, so a person sees it, instead of being retried for hours."""

    def __init__(self, code: str, *, permanent: bool = False):
        super().__init__(code)
        self.code = code[:200]
        self.permanent = permanent


def _always(user, choice: Mapping[str, Any], patient) -> bool:
    return True


@dataclass(frozen=True)
class Channel:
    """One notification channel as the outbox, the preferences page and the admin see it.

    A user's choice for a channel is stored by its name in StaffProfile.channels: {"on": bool, <field>: value, ...}.
    """

    name: str  # the Delivery.channel value and the preference key (at most 16 characters)
    label: str  # "E-mail": the admin, /readyz
    preference_label: str  # the box on the preferences page
    send: Callable[..., None] | None = None  # the transport; None: delivered as the row commits (in-app)
    # Whether a delivery is made for this recipient about this patient, given her stored choice (an address, a ward
    # endpoint): a channel that cannot reach her is not attempted at all.
    reaches: Callable[[Any, Mapping[str, Any], Any], bool] = _always
    # One delivery per event and endpoint (a ward's webhook: its recipients listed inside), not one per recipient.
    endpoint: Callable[[Any], str] | None = None
    default: bool = True  # for a user who never chose
    # Extra preference fields (an SMS phone number), stored beside "on" under the channel's name.
    fields: Callable[[], dict] = dict
    # Checks the channel's submitted values together ({"on": ..., <field>: ...}); returns {field: message} errors.
    validate: Callable[[Mapping[str, Any]], dict[str, str]] | None = None
    enabled: Callable[[], bool] = lambda: True  # offered and used only when configured (the SMS gateway)

    def choice(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """The user's choice for this channel from her StaffProfile.channels (None: no profile): "on" and fields."""
        value = dict((stored or {}).get(self.name) or {})
        value["on"] = bool(value.get("on", self.default))
        return value

    def wanted(self, user, stored: Mapping[str, Any] | None, patient) -> bool:
        choice = self.choice(stored)
        return choice["on"] and self.enabled() and self.reaches(user, choice, patient)


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
    recipient_channels: dict = field(default_factory=dict)  # her StaffProfile.channels (an SMS number)
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
    profile = getattr(notification.recipient, "profile", None)  # a missing profile raises an AttributeError
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
        link=page_link(notification),
        created_at=iso_z(notification.created_at),
        due_at=iso_z(notification.due_at),
        webhook_url=ward.webhook_url if ward else "",
        webhook_secret=ward.webhook_secret if ward else "",
        topic=notification.topic,
        recipient_channels=dict(profile.channels or {}) if profile is not None else {},
        created_at_local=local_iso(notification.created_at, zone),
        due_at_local=local_iso(notification.due_at, zone),
        zone=ward.tz if ward else "UTC",
        created_readable=readable(notification.created_at, zone),
        due_readable=readable(notification.due_at, zone),
    )


def page_link(notification) -> str:
    """The absolute address of the page to act on: the dose, else the patient, else the notifications list. The URL
    names are the pages' own (reverse), so a moved page moves its links too; ids only, no patient data."""
    base = str(settings.IL2WARD_BASE_URL).rstrip("/")
    if notification.dose_id:
        path = reverse("dose", args=[notification.dose_id])
    elif notification.patient_id:
        path = reverse("patient", args=[notification.patient_id])
    else:
        path = reverse("notifications")
    return base + path
