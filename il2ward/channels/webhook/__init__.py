"""The ward's paging webhook: one signed JSON POST per event per endpoint, its recipients listed inside."""

from il2ward.channels.base import Channel
from il2ward.channels.webhook.transport import (
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    recipients_of,
    send,
    signature,
    verify,
)

__all__ = ["CHANNEL", "REPLAY_WINDOW_SECONDS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "recipients_of", "send",
           "signature", "verify"]  # fmt: skip


def _ward_is_hooked(user, choice, patient) -> bool:
    # Without a secret nothing is sent (an unsigned page could be forged): no delivery, and /readyz says so.
    return patient is not None and bool(patient.ward.webhook_url and patient.ward.webhook_secret)


def _endpoint(patient) -> str:
    return patient.ward.webhook_url


CHANNEL = Channel(
    name="webhook",
    label="Webhook",
    preference_label="Send my notifications to the ward's paging webhook",
    send=send,
    reaches=_ward_is_hooked,
    endpoint=_endpoint,
)
