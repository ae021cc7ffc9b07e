from django import template

register = template.Library()


@register.filter
def iu(value) -> str:
    """48000000 → "48,000,000" (thousands separators, whatever the locale)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""
