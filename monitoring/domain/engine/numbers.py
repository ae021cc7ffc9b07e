"""Exact numbers: values compared without binary floats, exact ratios compared by cross-multiplication, and how a
value is shown."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

# --------------------------------------------------------------------------------------------------- numbers


def as_fraction(value: Any) -> Fraction:
    """Exact value of an int, Decimal, Fraction, numeric string or float (a float through its shortest repr)."""
    if isinstance(value, bool):
        raise TypeError(f"a number is required, not {value!r}")
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        return Fraction(Decimal(value))
    return Fraction(value)


_EXACT_TYPES = frozenset({int, Decimal})  # compared with each other exactly by Python itself


def exact(value: Any) -> Any:
    """A charted number in a form that compares exactly with int and Decimal thresholds: ints and Decimals as they
    are (the common case, and the fastest), anything else as a Fraction."""
    return value if type(value) in _EXACT_TYPES else as_fraction(value)


class _Ratio:
    """The exact quotient ``num / den`` of two ints (den > 0), compared with ints and Decimals by
    cross-multiplication: ``q < t`` ⟺ ``num < t × den``, exact because an int times an int or a short Decimal is
    exact. A Fraction without its normalising gcd and Python-level arithmetic, for derived values on the hot path."""

    __slots__ = ("num", "den")

    def __init__(self, num: int, den: int) -> None:
        self.num, self.den = num, den

    def fraction(self) -> Fraction:
        return Fraction(self.num, self.den)

    # Each comparison: cross-multiplied when the other side is an int or a Decimal (thresholds always are), else
    # through Fraction. Written out rather than shared through a helper: these run on every evaluation.
    def __lt__(self, other: Any) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num < other * self.den
        return self.fraction() < other

    def __le__(self, other: Any) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num <= other * self.den
        return self.fraction() <= other

    def __gt__(self, other: Any) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num > other * self.den
        return self.fraction() > other

    def __ge__(self, other: Any) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num >= other * self.den
        return self.fraction() >= other

    def __eq__(self, other: Any) -> bool:
        if type(other) in _EXACT_TYPES:
            return self.num == other * self.den
        return self.fraction() == (other.fraction() if isinstance(other, _Ratio) else other)

    __hash__ = None  # type: ignore[assignment]  # equal to ints, Decimals and Fractions of other hashes: not a dict key

    def __repr__(self) -> str:
        return f"_Ratio({self.num}, {self.den})"


def fmt(value: Any) -> str:
    """A number for display: ints and Decimals as written, derived quotients exactly when short, else to 0.1."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is Decimal:
        return format(value, "f")
    if kind is _Ratio:
        return _quotient_text(value.num, value.den)
    exact_value = as_fraction(value)
    return _quotient_text(exact_value.numerator, exact_value.denominator)


def _quotient_text(num: int, den: int) -> str:
    """num / den (den > 0) written exactly when it has at most 3 decimals, else rounded half-even to 0.1."""
    if num * 1000 % den == 0:  # short: write it with as few places as it needs
        for places, scale in enumerate((1, 10, 100, 1000)):
            if num * scale % den == 0:
                return format(Decimal(num * scale // den).scaleb(-places), "f")
    tenths, remainder = divmod(num * 10, den)  # floor division: value × 10 = tenths + remainder / den
    if 2 * remainder > den or (2 * remainder == den and tenths % 2):
        tenths += 1
    return format(Decimal(tenths).scaleb(-1), "f")


def _with_unit(value: Any, unit: str) -> str:
    return f"{fmt(value)} {unit}".strip()


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)
