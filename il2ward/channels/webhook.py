"""Webhook: a JSON POST to the ward's webhook_url, signed X-IL2Ward-Signature: sha256=<HMAC-SHA256 of the body>.

Any 2xx is delivered; anything else (or no answer within the timeout) is a failure retried with backoff by the sweep.
X-IL2Ward-Delivery lets the receiver drop the rare duplicate (a worker killed after sending, before recording it).
"""

import hashlib
import hmac
import json
import urllib.error
import urllib.request

from il2ward.channels import ChannelError, Message, setting

SIGNATURE_HEADER = "X-IL2Ward-Signature"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the body as a GET elsewhere: treat it as a failure instead."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(message: Message, *, delivery_id: int, attempt: int) -> None:
    if not message.webhook_url:
        raise ChannelError("ward has no webhook_url")
    body = json.dumps({**message.payload(), "delivery": delivery_id, "attempt": attempt}, sort_keys=True).encode()
    request = urllib.request.Request(
        message.webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "IL2Ward-webhook/1",
            "X-IL2Ward-Event": message.kind,
            "X-IL2Ward-Delivery": str(delivery_id),
            SIGNATURE_HEADER: signature(message.webhook_secret, body),
        },
    )
    try:
        with _opener.open(request, timeout=setting("IL2WARD_WEBHOOK_TIMEOUT_SECONDS", 5)) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"HTTP {exc.code}") from exc
    except Exception as exc:  # noqa: BLE001 - refused, timed out, DNS: retried by the sweep
        raise ChannelError(type(exc).__name__) from exc
    if not 200 <= status < 300:
        raise ChannelError(f"HTTP {status}")
