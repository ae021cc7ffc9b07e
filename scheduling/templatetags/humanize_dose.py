from django import template

from il2ward import people
from scheduling.domain.hold_reasons import rule_title

register = template.Library()


@register.filter
def iu(value) -> str:
    """48000000 → "48,000,000" (thousands separators, whatever the locale)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""


register.filter("rule_title", rule_title)


# A member of staff as people read her on the ward ("Sam Ortiz RN"): il2ward.people, the one home of names.
register.filter("person", people.printed_name)
