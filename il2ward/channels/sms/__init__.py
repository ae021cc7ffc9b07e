"""Text messages to the recipient's mobile number through the configured HTTP SMS gateway (off until
IL2WARD_SMS_GATEWAY_URL is set; each user opts in with her number on the notifications page)."""

from django.conf import settings

from il2ward.channels.base import Channel
from il2ward.channels.sms import forms
from il2ward.channels.sms.transport import send, text


def _configured() -> bool:
    return bool(settings.IL2WARD_SMS_GATEWAY_URL)


def _has_number(user, choice, patient) -> bool:
    return bool(choice.get("phone"))


CHANNEL = Channel(
    name="sms",
    label="SMS",
    preference_label="Text my notifications to my mobile",
    send=send,
    reaches=_has_number,
    default=False,  # opt-in: a number has to be given first
    fields=forms.fields,
    validate=forms.validate,
    enabled=_configured,
)

__all__ = ["CHANNEL", "send", "text"]
