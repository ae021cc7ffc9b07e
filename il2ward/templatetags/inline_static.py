"""{% inline_static "path.css" %}: a static file's text, for a document that must be self-contained (the printed
summary: WeasyPrint fetches nothing), so its CSS has one home, the static file the pages link."""

from functools import lru_cache
from pathlib import Path

from django import template
from django.contrib.staticfiles import finders
from django.utils.safestring import mark_safe

register = template.Library()


@lru_cache(maxsize=16)
def _read(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise template.TemplateSyntaxError(f"no static file {path!r}")
    return Path(found).read_text(encoding="utf-8")


@register.simple_tag
def inline_static(path: str) -> str:
    return mark_safe(_read(path))  # noqa: S308 - the application's own static file, not user input
