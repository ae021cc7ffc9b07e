"""The ward board's rows as HTML, built in Python from the rows' display strings (scheduling/selectors/board.py
RowView): the template engine cost ~2.5 ms a row (a 120-patient board spent half its time there), this ~0.05 ms.
Every value is escaped (`_e`, the standard library's html.escape, which Django's escape also uses: the same output
without the lazy-string check and SafeString per value; the whole row is marked safe once). The markup is the
board's (board.html); the poll sends the same."""

from functools import cache
from html import escape as _html_escape

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_OOB = ' hx-swap-oob="true"'


def _e(value) -> str:
    return _html_escape(str(value))


@cache
def _url(name: str) -> str:
    return reverse(name, args=[987654321]).replace("987654321", "{}")


def _due(row, oob: bool = False) -> str:
    css = "text-danger fw-semibold" if row.due_late else "text-muted"
    return f'<div id="due-{row.pk}" class="small countdown {css}"{_OOB if oob else ""}>{_e(row.due_in)}</div>'


def _age(row, oob: bool = False) -> str:
    css = "text-danger" if row.stale else "text-muted"
    return (
        f'<div id="age-{row.pk}" class="small {css}"{_OOB if oob else ""}><time datetime="{_e(row.vitals_at)}" '
        f'title="{_e(row.vitals_at_text)}">{_e(row.age)} ago</time>{" (stale)" if row.stale else ""}</div>'
    )


def row_html(row, viewer_id, oob: bool = False) -> SafeString:
    e = _e
    if row.nurse_id:
        nurse = (
            ' · <strong class="text-body">yours</strong>' if row.nurse_id == viewer_id else f" · {e(row.nurse_name)}"
        )
    else:
        nurse = ""
    if row.dose_pk:
        slot = f'<a href="{_url("dose").format(row.dose_pk)}">{e(row.dose_label)}</a>\n          {_due(row)}'
    else:
        slot = "—"
    why = "".join(
        f'<span class="rule-words">{e(words)}</span> '
        f'<span class="badge rule-badge" title="{e(words)}">{e(rule)}</span> '
        for rule, words in row.rules
    )
    if row.overridden:
        why += '<span class="badge text-bg-info">override</span>'
    if row.state == "discontinue":
        why += '<div class="small fw-semibold">oncologist to stop the course</div>'
    if row.missing:
        why += f'<div class="small missing-words"><strong>Still needed:</strong> {e("; ".join(row.missing))}</div>'
    if row.last:
        why += f'<div class="small text-muted text-nowrap">{e(row.last)}</div>'
    if row.vitals:
        groups = []
        for i, group in enumerate(row.vitals):
            parts = " · ".join(
                f'<span class="out-of-range">{e(text)}</span>' if high else f"<span>{e(text)}</span>"
                for text, high in group
            )
            groups.append(f'<span class="text-nowrap">{" · " if i else ""}{parts}</span>')
        vitals = "\n          ".join(groups)
        if row.vitals_marked:
            vitals += ' <span class="visually-hidden">(values in red are out of range)</span>'
        vitals += f"\n          {_age(row)}"
    else:
        vitals = '<span class="text-muted">none</span>'
    state = e(row.state)
    return mark_safe(
        f'<tr id="board-row-{row.pk}" class="board-row state-row-{state}" data-patient="{row.pk}" '
        f'data-state="{state}" data-v="{row.key(viewer_id)}"{_OOB if oob else ""}>\n'
        f'      <td data-label="Patient">\n'
        f'        <a class="fw-semibold text-nowrap" href="{_url("patient").format(row.pk)}">{e(row.name)}</a>\n'
        f'        <div class="small text-muted text-nowrap">{e(row.mrn)}{nurse}</div>\n'
        f"      </td>\n"
        f'      <td class="text-nowrap" data-label="Cycle · day">{e(row.period)}</td>\n'
        f'      <td class="text-nowrap" data-label="Next slot">\n        {slot}\n      </td>\n'
        f'      <td class="state-cell" data-label="State · why"><span class="badge state-badge state-{state}">'
        f"{e(row.state_label)}</span>\n        {why}\n      </td>\n"
        f'      <td class="vitals-cell" data-label="Last vitals">\n          {vitals}\n      </td>\n'
        f'      <td class="text-end text-nowrap" data-label="Given / held">{e(row.counts)}</td>\n'
        f"    </tr>"
    )


@register.simple_tag
def board_row(row, viewer_id, oob=False) -> SafeString:
    return row_html(row, viewer_id, bool(oob))


@register.simple_tag
def board_rows(rows, viewer_id) -> SafeString:
    return mark_safe("\n    ".join(row_html(row, viewer_id) for row in rows))


@register.simple_tag
def board_ticks(rows) -> SafeString:
    """The countdowns and vitals ages of rows the page keeps, as out-of-band swaps."""
    out = []
    for row in rows:
        if row.dose_pk:
            out.append(_due(row, oob=True))
        if row.vitals:
            out.append(_age(row, oob=True))
    return mark_safe("\n".join(out))
