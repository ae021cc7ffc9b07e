"""The dosing window around a slot's due time (HOLD-RULES.md §1: SCH-WINDOW). W = 60 min by default (30 if a site
classes IL-2 as time-critical).

Boundaries, chosen so that every instant is exactly one of "too early", "chartable" and "missed":
- chartable: due − W ≤ at ≤ due + W (both ends included);
- missed:    now > due + W (strictly after the window closes). This is the same boundary as the missed sweep's
  query `due_at < now − W` (PATTERNS.md) and as course progress (active while now ≤ last due + W).
"""

from datetime import datetime, timedelta
from enum import StrEnum

from scheduling.domain.aware import as_utc

__all__ = [
    "DUE_NOW",
    "DUE_SOON",
    "MISSED",
    "OVERDUE",
    "UPCOMING",
    "Timing",
    "chartable",
    "is_missed",
    "timing_class",
    "window_state",
]

UPCOMING = "upcoming"
DUE_SOON = "due_soon"
DUE_NOW = "due_now"
OVERDUE = "overdue"
MISSED = "missed"


class Timing(StrEnum):
    """How an administration's time compares with its due time (SCH-WINDOW). A str: stores and compares as its value."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"


def _minutes(name: str, value: int) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return timedelta(minutes=value)


def chartable(due_at: datetime, *, at: datetime, window_minutes: int = 60) -> bool:
    """True when a dose given at `at` may be charted: due − W ≤ at ≤ due + W (SCH-WINDOW)."""
    w = _minutes("window_minutes", window_minutes)
    due = as_utc(due_at, "due_at")
    return due - w <= as_utc(at, "at") <= due + w


def is_missed(due_at: datetime, *, now: datetime, window_minutes: int = 60) -> bool:
    """True once the window has closed: now > due + W (SCH-WINDOW). At exactly due + W the dose is still chartable."""
    w = _minutes("window_minutes", window_minutes)
    return as_utc(now, "now") > as_utc(due_at, "due_at") + w


def timing_class(due_at: datetime, *, at: datetime, on_time_minutes: int = 30) -> Timing:
    """Early / on time / late (SCH-WINDOW): on time within due ± on_time_minutes inclusive, early before, late after."""
    tolerance = _minutes("on_time_minutes", on_time_minutes)
    offset = as_utc(at, "at") - as_utc(due_at, "due_at")
    if offset < -tolerance:
        return Timing.EARLY
    if offset > tolerance:
        return Timing.LATE
    return Timing.ON_TIME


def window_state(
    due_at: datetime,
    *,
    now: datetime,
    window_minutes: int = 60,
    due_soon_minutes: int = 120,
    due_now_minutes: int | None = None,
) -> str:
    """The slot's state on the ward board (SCH-WINDOW), for a slot not yet given or held:

    upcoming  now < due − 2 h
    due_soon  due − 2 h ≤ now < due − N
    due_now   due − N ≤ now ≤ due      (N = due_now_minutes, at most W; default W)
    overdue   due < now ≤ due + W   (still chartable)
    missed    now > due + W

    The board passes the on-time margin as N: "due now" then means a dose given now is on time, not merely inside
    the window (a give earlier than that asks for a reason).
    """
    w = _minutes("window_minutes", window_minutes)
    soon = _minutes("due_soon_minutes", due_soon_minutes)
    due_now = w if due_now_minutes is None else min(w, _minutes("due_now_minutes", due_now_minutes))
    due = as_utc(due_at, "due_at")
    current = as_utc(now, "now")
    if current > due + w:
        return MISSED
    if current > due:
        return OVERDUE
    if current >= due - due_now:
        return DUE_NOW
    if current >= due - soon:
        return DUE_SOON
    return UPCOMING
