"""The instant as machines read it: UTC with `Z`. One home for the domain engine, the services, the API, FHIR, iCal
and the channels (the ward-local forms for people are il2ward.timefmt's, built on these)."""

from datetime import UTC, datetime
from typing import overload


def aware(value: datetime) -> datetime:
    """`value` itself, refused when naive: a time without its zone is a bug, never read as the server's time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime: {value!r}")
    return value


@overload
def iso_z(value: datetime) -> str: ...
@overload
def iso_z(value: None) -> None: ...
@overload
def iso_z(value: datetime | None) -> str | None: ...
def iso_z(value: datetime | None) -> str | None:
    """An instant in UTC with `Z` (2027-03-12T22:00:00Z), microseconds kept when there are any; None stays None."""
    if value is None:
        return None
    return aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")
