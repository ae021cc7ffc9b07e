from django import template

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
    """"CV-SBP" → "Systolic blood pressure": the rule in words for the nurse (the id stays beside it)."""
    from monitoring.domain.rulesets import RULE_CATALOGUE

    info = RULE_CATALOGUE.get(str(rule_id))
    return info.title if info else str(rule_id).replace("_", " ")
