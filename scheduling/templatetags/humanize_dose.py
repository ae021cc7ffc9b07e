from django import template

from il2ward import people

register = template.Library()


@register.filter
def iu(value) -> str:
    """48000000 → "48,000,000" (thousands separators, whatever the locale)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""


@register.filter
def rule_title(rule_id) -> str:
    """ "CV-SBP" → "Systolic blood pressure": the rule in words for the nurse (the id stays beside it)."""
    from monitoring.domain.rulesets import RULE_CATALOGUE

    info = RULE_CATALOGUE.get(str(rule_id))
    return info.title if info else str(rule_id).replace("_", " ")


# A member of staff as people read her on the ward ("Sam Ortiz RN"): il2ward.people, the one home of names.
register.filter("person", people.printed_name)
