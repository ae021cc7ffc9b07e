"""Webhook: a JSON POST to the ward's webhook_url, one per event (its recipients listed inside), signed

    X-IL2Ward-Timestamp: <unix seconds>
    X-IL2Ward-Signature: sha256=<HMAC-SHA256 over "<timestamp>." + body, keyed by the ward's webhook_secret>

The receiver recomputes it and refuses a timestamp older than its replay window (`verify`). Without a secret nothing
is sent. X-IL2Ward-Event-Id is the same for every attempt (and in the body as "event").

Any 2xx is delivered; anything else (or no answer within the timeout) is a failure retried with backoff by the sweep.
X-IL2Ward-Delivery lets the receiver drop the rare duplicate (a worker killed after sending, before recording it).
"""

import hashlib
import hmac
import json
import time

from django.conf import settings

from il2ward.channels import http
from il2ward.channels.base import ChannelError, Message

SIGNATURE_HEADER = "X-IL2Ward-Signature"
TIMESTAMP_HEADER = "X-IL2Ward-Timestamp"
REPLAY_WINDOW_SECONDS = 300


def signature(secret: str, body: bytes, *, timestamp: int) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, *, body: bytes, timestamp: str, signed: str, now: float,
           window: int = REPLAY_WINDOW_SECONDS) -> bool:  # fmt: skip
    """What a receiver checks: the signature over timestamp and body, and a timestamp within the replay window."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if not secret or abs(now - stamp) > window:
        return False
    return hmac.compare_digest(signature(secret, body, timestamp=stamp), signed or "")


def recipients_of(message: Message) -> list[str]:
    from il2ward.models import Notification

    if not message.topic:
        return [message.recipient_username]
    return sorted(Notification.objects.filter(topic=message.topic).values_list("recipient__username", flat=True))


def send(message: Message, *, delivery_id: int, attempt: int) -> None:
    if not message.webhook_url:
        raise ChannelError("ward has no webhook_url")
    if not message.webhook_secret:
        raise ChannelError("ward has no webhook_secret")  # unsigned pages could be forged: never sent
    payload = {**message.payload(), "recipients": recipients_of(message), "delivery": delivery_id, "attempt": attempt}
    body = json.dumps(payload, sort_keys=True).encode()
    timestamp = int(time.time())
    status = http.post(
        message.webhook_url,
        body=body,
        timeout=settings.IL2WARD_WEBHOOK_TIMEOUT_SECONDS,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "IL2Ward-webhook/1",
            "X-IL2Ward-Event": message.kind,
            "X-IL2Ward-Event-Id": message.event_id,
            "X-IL2Ward-Delivery": str(delivery_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(message.webhook_secret, body, timestamp=timestamp),
        },
    )
    if not 200 <= status < 300:
        raise ChannelError(f"HTTP {status}")
