"""In-app: no transport. The notification row is the message; the bell and the notifications page read it from the
database, so its delivery is recorded as delivered when the row commits."""

from il2ward.channels.base import Channel

NAME = "in_app"

CHANNEL = Channel(name=NAME, label="In-app", preference_label="Show my notifications in the bell")
