"""Notification channels, one folder each (the healthchecks layout): il2ward/channels/<name>/ holds its transport,
its preference fields and its `CHANNEL` description (base.Channel). REGISTRY below is the one list that the outbox
(which deliveries to make, how to send them), the preferences page, the admin and Delivery.channel's choices read:
adding a channel is a folder and one entry here, with no migration (preferences are stored by channel name).
"""

from il2ward.channels import email, in_app, sms, webhook
from il2ward.channels.base import (
    Channel,
    ChannelError,
    Message,
    message_for,
    page_link,
)

REGISTRY: dict[str, Channel] = {c.name: c for c in (in_app.CHANNEL, email.CHANNEL, webhook.CHANNEL, sms.CHANNEL)}


def register(channel: Channel) -> Channel:
    """Add (or replace) a channel at run time: how a test plugs in a channel of its own."""
    if len(channel.name) > 16:
        raise ValueError("a channel name is at most 16 characters (Delivery.channel)")
    REGISTRY[channel.name] = channel
    return channel


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def choices() -> list[tuple[str, str]]:
    """(name, label) of every channel: the admin's filter and labels of Delivery.channel."""
    return [(c.name, c.label) for c in REGISTRY.values()]


def label(name: str) -> str:
    channel = REGISTRY.get(name)
    return channel.label if channel else f"{name} (not registered)"


def wants(profile, name: str) -> bool:
    """Whether the user of this StaffProfile chose the channel (its default if she never chose)."""
    return REGISTRY[name].choice(profile.channels)["on"]


__all__ = ["REGISTRY", "Channel", "ChannelError", "Message", "choices",
           "label", "message_for", "page_link", "register", "unregister", "wants"]  # fmt: skip
