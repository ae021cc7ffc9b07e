"""Code systems, unit spellings and the conversion of a received value to the unit IL2Ward stores.

A mapping row says: stored = (received + offset) × factor ÷ divisor, rounded half up to the column's decimal places
(the received value itself stays in the stored raw message).
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# The names a code system goes by in HL7 v2 (OBX-3.3) and FHIR (Coding.system), to one canonical name.
SYSTEM_ALIASES = {
    "LN": "LN",
    "LOINC": "LN",
    "HTTP://LOINC.ORG": "LN",
    "MDC": "MDC",
    "MDC_IEEE": "MDC",
    "URN:ISO:STD:ISO:11073:10101": "MDC",
}
FHIR_SYSTEMS = {"LN": "http://loinc.org", "MDC": "urn:iso:std:iso:11073:10101"}


def canonical_system(system: str) -> str:
    return SYSTEM_ALIASES.get((system or "").strip().upper(), (system or "").strip())


def canonical_unit(unit: str) -> str:
    """Spellings of one unit compare equal: case, micro sign (µ, μ, u), 'mcg', spaces, 'mmHg' vs 'mm[Hg]'."""
    text = (unit or "").strip().replace("µ", "u").replace("μ", "u").replace(" ", "")
    text = text.lower().replace("mcg", "ug").replace("[", "").replace("]", "")
    return {"degc": "cel", "°c": "cel", "c": "cel", "degf": "degf", "°f": "degf", "f": "degf"}.get(text, text)


class NotANumber(ValueError):
    pass


def parse_number(text: str) -> Decimal:
    """A plain decimal number as sent ("1.25", "-3"); anything else ("<0.1", "pending", "1e3") is refused."""
    value = (text or "").strip()
    if not value or any(c not in "0123456789.-+" for c in value):
        raise NotANumber(value)
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise NotANumber(value) from exc
    if not number.is_finite():
        raise NotANumber(value)
    return number


def convert(value: Decimal, *, factor: Decimal, divisor: Decimal, offset: Decimal, places: int) -> Decimal | int:
    stored = (value + offset) * factor / divisor
    step = Decimal(1).scaleb(-places)
    rounded = stored.quantize(step, rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 else rounded
