"""Secrets and search terms out of the logs: calendar-feed secrets (they sit in the feed's path) and every query
string (admin searches carry patient names, API filters carry MRNs) are replaced before a line is written.

RedactFilter goes on the handlers of Django's logging (request warnings, runserver); GunicornLogger is gunicorn's
access logger with the same redaction applied to each atom (`--logger-class il2ward.logredact.GunicornLogger`).
"""

import logging
import re

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
_FEED = re.compile(r"(/api/v1/calendar/)[^/\s\"'?]+")
_QUERY = re.compile(r"(/[^\s\"'?]*)\?[^\s\"']+")


def redact(text: str) -> str:
    return _QUERY.sub(r"\1?" + REDACTED, _FEED.sub(r"\1" + REDACTED, text))


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to the formatter to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class GunicornLogger(Logger):
    """gunicorn's access log without feed secrets, query strings or referrers' query strings."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact(value)
        if atoms.get("q"):
            atoms["q"] = REDACTED
        return atoms
