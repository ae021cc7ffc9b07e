"""E-mail to the recipient's account address (Django's mail: SMTP in production, the console in the demo)."""

from il2ward.channels.base import Channel
from il2ward.channels.email.transport import send


def _has_address(user, choice, patient) -> bool:
    return bool(user.email)


CHANNEL = Channel(
    name="email", label="E-mail", preference_label="E-mail my notifications", send=send, reaches=_has_address
)
