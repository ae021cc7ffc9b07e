"""Times as IL2Ward writes them: UTC instants with `Z` for machines, ward-local text for people.

One home for the formats, so the API, FHIR, iCal, the channels and the pages write the same instant the same way.
Pure (standard library only). The machines' form, `iso_z`, lives in common.timefmt, where the domain packages can
import it too; it is named here as well so a caller imports its time formats from one module.
"""

from datetime import UTC, datetime, tzinfo

from common.timefmt import aware as _aware
from common.timefmt import iso_z

__all__ = [
    "INPUT_FORMATS",
    "LONG",
    "PICKER",
    "PRINTED",
    "SHORT",
    "TYPED",
    "iso_z",
    "local_iso",
    "local_text",
    "readable",
]

# Ward times are typed and shown 24-hour whatever the browser's locale; the ISO "T" form (datetime-local) is read too.
TYPED = "%Y-%m-%d %H:%M"
PICKER = "%Y-%m-%dT%H:%M"  # the value of an <input type="datetime-local">
INPUT_FORMATS = (PICKER, TYPED)
LONG = "%a %d %b %Y %H:%M %Z"  # "Fri 12 Mar 2027 16:00 CST": signatures, moves and refusals in words
SHORT = "%a %d %b %H:%M"  # "Fri 12 Mar 16:00": a slot in a list
PRINTED = "%a %-d %b %Y %H:%M %Z"  # "Wed 25 Nov 2026 10:40 CST": the course review's cells and prints


def local_iso(value: datetime | None, zone: tzinfo | None) -> str | None:
    """Ward-local time with its offset (2027-03-12T16:00:00-06:00); UTC without a zone."""
    if value is None:
        return None
    return _aware(value).astimezone(zone or UTC).isoformat()


def readable(value: datetime | None, zone: tzinfo | None) -> str:
    """For people: "Fri 12 Mar 2027 16:00 CST (UTC-06:00) = 22:00 UTC"; "" for no time."""
    if not value:
        return ""
    local = _aware(value).astimezone(zone or UTC)
    offset = local.strftime("%z")
    utc = value.astimezone(UTC)
    return f"{local:%a %-d %b %Y %H:%M} {local.tzname()} (UTC{offset[:3]}:{offset[3:]}) = {utc:%H:%M} UTC"


def local_text(value: datetime, zone: tzinfo, fmt: str = LONG) -> str:
    """`value` in the ward's zone as `fmt` (LONG: "Tue 09 Mar 2027 14:05 CDT")."""
    return format(_aware(value).astimezone(zone), fmt)
