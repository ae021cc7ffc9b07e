"""Aware-datetime helpers shared by the domain modules (ARCHITECTURE.md, Time)."""

from datetime import UTC, datetime

__all__ = ["UTC", "as_utc"]


def as_utc(value: datetime, name: str = "datetime") -> datetime:
    """`value` converted to UTC; naive datetimes are refused.

    Why convert before any arithmetic: two datetimes sharing one ZoneInfo subtract and add in wall-clock time,
    which is wrong across a DST change; in UTC, arithmetic is elapsed time.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)
