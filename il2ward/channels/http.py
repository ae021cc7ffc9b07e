"""The one HTTP POST the HTTP channels (webhook, SMS gateway) share: JSON out, redirects refused, status back."""

import urllib.error
import urllib.request

from il2ward.channels.base import ChannelError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the body as a GET elsewhere: treat it as a failure instead."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST and return the HTTP status (an HTTPError's too); a refused connection, a timeout or DNS failure is a
    ChannelError named by its class (retried by the sweep). The body sent or answered is never in the error."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception as exc:  # noqa: BLE001 - refused, timed out, DNS: retried by the sweep
        raise ChannelError(type(exc).__name__) from exc
