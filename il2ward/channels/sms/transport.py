"""SMS through a generic HTTP gateway: one JSON POST per delivery to IL2WARD_SMS_GATEWAY_URL,

    {"to": "+14155552671", "from": <IL2WARD_SMS_SENDER>, "text": "...", "reference": "il2ward-delivery-<id>"}

with `Authorization: Bearer <IL2WARD_SMS_GATEWAY_TOKEN>` (when set) and the same reference as Idempotency-Key, so a
gateway that honours it drops the rare duplicate (a worker killed after sending, before recording it).

The text says what kind of work and where to look, never who: no name, MRN, initials or patient id (a phone's lock
screen shows it to anyone nearby). 2xx is delivered; no answer, 408, 425, 429 and 5xx are retried with backoff by the
sweep; any other 4xx is the gateway refusing this request (a bad number, a bad token): retrying cannot help, so the
delivery is dead-lettered at once and /readyz and the admin show it.
"""

import json

from django.conf import settings

from il2ward.channels import http
from il2ward.channels.base import ChannelError, Message

RETRIED_4XX = (408, 425, 429)


def text(message: Message) -> str:
    parts = [f"IL2Ward: {message.label}", f"ward {message.ward}" if message.ward else ""]
    if message.cycle:
        parts.append(f"cycle {message.cycle} dose {message.number}")
    if message.rules:
        parts.append(f"rules {' '.join(message.rules)}")
    return ". ".join(p for p in parts if p) + f". Open {message.link}"


def reference(delivery_id: int) -> str:
    return f"il2ward-delivery-{delivery_id}"


def send(message: Message, *, delivery_id: int, attempt: int) -> None:
    url = settings.IL2WARD_SMS_GATEWAY_URL
    if not url:  # configuration removed while it waited: kept pending (retried) until it is back or dead-lettered
        raise ChannelError("no SMS gateway configured")
    phone = (message.recipient_channels.get("sms") or {}).get("phone", "")
    if not phone:
        raise ChannelError("no phone number", permanent=True)
    body = json.dumps(
        {"to": phone, "from": settings.IL2WARD_SMS_SENDER, "text": text(message),
         "reference": reference(delivery_id)},
        sort_keys=True,
    ).encode()  # fmt: skip
    headers = {"Content-Type": "application/json", "User-Agent": "IL2Ward-sms/1",
               "Idempotency-Key": reference(delivery_id)}  # fmt: skip
    token = settings.IL2WARD_SMS_GATEWAY_TOKEN
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status = http.post(url, body=body, headers=headers, timeout=settings.IL2WARD_SMS_TIMEOUT_SECONDS)
    if 200 <= status < 300:
        return
    raise ChannelError(f"HTTP {status}", permanent=400 <= status < 500 and status not in RETRIED_4XX)
