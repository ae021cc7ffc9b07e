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
    """ "CV-SBP" → "Systolic blood pressure", "no_iv_access" → "No IV access": a rule or a nurse's hold reason in words
    for the nurse (the id stays beside it)."""
    from monitoring.domain.rulesets import RULE_CATALOGUE
    from scheduling.mar.forms import OTHER_HOLD_REASONS

    info = RULE_CATALOGUE.get(str(rule_id))
    if info:
        return info.title
    return dict(OTHER_HOLD_REASONS).get(str(rule_id)) or str(rule_id).replace("_", " ")


@register.filter
def person(user) -> str:
    """A member of staff as people read her on the ward: her printed name ("Sam Ortiz RN"), else her username."""
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    return (profile.printed_name if profile is not None else "") or user.get_username()
