from django import template

from il2ward import people
from scheduling.domain.hold_reasons import rule_title
from scheduling.selectors.double_checks import order_of, sees_computed_dose

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


# Blind double check (ISMP): {% if request.user|sees_computed_dose %} the course's dose {% else %} its order.
register.filter("sees_computed_dose", sees_computed_dose)
register.filter("order_of", order_of)
