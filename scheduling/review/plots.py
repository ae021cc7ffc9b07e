"""Server-rendered SVG trend plots for the course review and its printed summary (no JavaScript, no chart library).

Pure: data in, SVG markup out; no Django, no clock (the "now" line is passed in). The same markup renders in the
browser and in WeasyPrint's PDF. Every plot of a course shares one time axis, so the plots line up dose by dose.

The time axis may have several segments (cycle 1, cycle 2): they are drawn side by side with a small gap, so the
nine rest days do not squash the two cycles into slivers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from zoneinfo import ZoneInfo

from django.utils.safestring import SafeString, mark_safe

from monitoring.domain import rulesets

LEVEL_COLOURS = {"stop": "#b02a37", "hold": "#d96a00", "notify": "#6f42c1"}
STATUS_COLOURS = {
    "given": "#198754",
    "held": "#d96a00",
    "missed": "#b02a37",
    "scheduled": "#adb5bd",
    "cancelled": "#ced4da",
}
STATUS_DASH = {"held": "4 3", "missed": "2 2", "scheduled": "1 3", "cancelled": "1 3"}

WIDTH = 960
GAP = 16  # px between time segments
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 30, 22


@dataclass(frozen=True)
class Series:
    """One measure. `points` are (time, value); `bars` are (start, end, value) drawn as boxes (e.g. urine per 8 h)."""

    label: str
    colour: str
    points: tuple[tuple[datetime, float], ...] = ()
    bars: tuple[tuple[datetime, datetime, float], ...] = ()
    axis: str = "left"  # or "right"
    dash: str = ""


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str  # "CV-SBP hold < 90"
    level: str  # stop | hold | notify
    axis: str = "left"


@dataclass(frozen=True)
class DoseMark:
    at: datetime
    status: str  # given | held | missed | scheduled | cancelled
    label: str  # "C1 #4"


@dataclass(frozen=True)
class TimeAxis:
    segments: tuple[tuple[datetime, datetime], ...]
    zone: ZoneInfo

    def layout(self, left: float, width: float) -> list[tuple[datetime, datetime, float, float]]:
        """(start, end, x0, x1) per segment; widths proportional to duration."""
        usable = width - GAP * (len(self.segments) - 1)
        total = sum((end - start).total_seconds() for start, end in self.segments) or 1.0
        out, x = [], left
        for start, end in self.segments:
            w = usable * (end - start).total_seconds() / total
            out.append((start, end, x, x + w))
            x += w + GAP
        return out


def _x(layout, moment: datetime) -> tuple[int, float] | None:
    """(segment index, x) of a moment, or None when it is outside every segment."""
    for index, (start, end, x0, x1) in enumerate(layout):
        if start <= moment <= end:
            span = (end - start).total_seconds() or 1.0
            return index, x0 + (x1 - x0) * (moment - start).total_seconds() / span
    return None


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def value_range(
    values: list[float], *, floor: float | None = None, ceiling: float | None = None
) -> tuple[float, float]:
    """The y range: the values padded by 8 %, widened to include `floor`/`ceiling` when given."""
    if not values:
        values = [v for v in (floor, ceiling) if v is not None] or [0.0, 1.0]
    low, high = min(values), max(values)
    if floor is not None:
        low = min(low, floor)
    if ceiling is not None:
        high = max(high, ceiling)
    pad = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    if floor is not None and low >= floor:
        return floor, high + pad  # bars stand on the floor: no padding below it
    return low - pad, high + pad


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3f}"


@dataclass(frozen=True)
class _Frame:
    """Where one plot draws: its segments' x layout, the plot area, and a y function per axis (None: no such axis)."""

    layout: list
    width: float
    height: int  # the plot area's
    svg_height: int
    y_of: dict

    @property
    def bottom(self) -> int:
        return TOP + self.height

    def inside(self, y: float) -> bool:
        return TOP <= y <= self.bottom


def trend_plot(
    *,
    title: str,
    axis: TimeAxis,
    series: list[Series],
    thresholds: list[Threshold] = (),
    doses: list[DoseMark] = (),
    unit: str = "",
    right_unit: str = "",
    fixed: tuple[float, float] | None = None,
    right_fixed: tuple[float, float] | None = None,
    now: datetime | None = None,
    height: int = 170,
) -> str:
    """One plot as an <svg> element: series, dashed threshold lines labelled with their rule ids, and a vertical
    mark at every dose (green given, orange dashed held, red dotted missed, grey scheduled)."""
    series = list(series)
    has_right = any(s.axis == "right" for s in series) or any(t.axis == "right" for t in thresholds)
    plot_w = WIDTH - LEFT - RIGHT  # the same for every plot, with or without a right axis: the dose marks line up
    plot_h = height - TOP - BOTTOM
    left = _scale("left", fixed, series, thresholds, plot_h)
    right = _scale("right", right_fixed, series, thresholds, plot_h) if has_right else (0, 1, None)
    frame = _Frame(axis.layout(LEFT, plot_w), plot_w, plot_h, height, {"left": left[2], "right": right[2]})
    out = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        'font-family="DejaVu Sans, Arial, sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1f}" height="{plot_h}" fill="#fff" stroke="#dee2e6"/>',
    ]
    out += _legend(title, series)
    out += _y_ticks(frame, left, right if has_right else None, unit, right_unit)
    out += _day_ticks(frame, axis.zone)
    out += _dose_marks(frame, doses)
    out += _threshold_lines(frame, thresholds)
    for s in series:
        out += _series(frame, s)
    if now is not None and (pos := _x(frame.layout, now)) is not None:
        x = pos[1]
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{frame.bottom}" stroke="#0d6efd" stroke-width="1.2"/>'
            f'<text x="{x + 3:.1f}" y="{frame.bottom - 4}" font-size="10" fill="#0d6efd">now</text>'
        )
    if not any(s.points or s.bars for s in series):
        out.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
            f'fill="#6c757d">No values recorded in this period</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _scale(side: str, fixed_range, series: list[Series], thresholds, plot_h: int):
    """(low, high, y of a value) for one axis: the fixed range, or the values and thresholds on that side."""
    if fixed_range:
        low, high = fixed_range
    else:
        values = [v for s in series if s.axis == side for _, v in s.points]
        values += [v for s in series if s.axis == side for _, _, v in s.bars]
        values += [t.value for t in thresholds if t.axis == side]
        bars_on_side = any(s.bars for s in series if s.axis == side)
        low, high = value_range(values, floor=0 if side == "right" or bars_on_side else None)
    return low, high, (lambda v: TOP + plot_h - (v - low) / (high - low) * plot_h)


def _legend(title: str, series: list[Series]) -> list[str]:
    """Title and legend on the top line."""
    out = [f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold" fill="#212529">{escape(title)}</text>']
    legend_x = LEFT + 12 + 8.4 * len(title)  # rough text widths: no font metrics here
    for s in series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<line x1="{legend_x:.0f}" y1="10" x2="{legend_x + 18:.0f}" y2="10" stroke="{s.colour}" '
            f'stroke-width="2.5"{dash}/><text x="{legend_x + 22:.0f}" y="14" font-size="11" fill="#212529">'
            f"{escape(s.label)}</text>"
        )
        legend_x += 34 + 7.0 * len(s.label)
    return out


def _y_ticks(frame: _Frame, left, right, unit: str, right_unit: str) -> list[str]:
    """Y ticks and grid on the left axis; ticks only on the right one (its grid would cross the left's)."""
    out = []
    low, high, y_left = left
    for tick in nice_ticks(low, high):
        y = y_left(tick)
        if frame.inside(y):
            out.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + frame.width:.1f}" y2="{y:.1f}" stroke="#f1f3f5"/>'
                f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#495057">'
                f"{_fmt(tick)}</text>"
            )
    if unit:
        out.append(f'<text x="4" y="{TOP - 4}" font-size="10" fill="#495057">{escape(unit)}</text>')
    if right is None:
        return out
    low, high, y_right = right
    for tick in nice_ticks(low, high):
        y = y_right(tick)
        if frame.inside(y):
            out.append(
                f'<text x="{LEFT + frame.width + 4:.1f}" y="{y + 4:.1f}" font-size="10" fill="#495057">'
                f"{_fmt(tick)}</text>"
            )
    if right_unit:
        out.append(
            f'<text x="{WIDTH - 4}" y="{TOP - 4}" font-size="10" text-anchor="end" fill="#495057">'
            f"{escape(right_unit)}</text>"
        )
    return out


def _day_ticks(frame: _Frame, zone) -> list[str]:
    """Day ticks (ward-local midnights) and the breaks between time segments."""
    out = []
    for index, (start, end, x0, x1) in enumerate(frame.layout):
        day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        while day.astimezone(start.tzinfo) <= end:
            moment = day.astimezone(start.tzinfo)
            if moment >= start:
                x = x0 + (x1 - x0) * (moment - start).total_seconds() / ((end - start).total_seconds() or 1)
                out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{frame.bottom}" stroke="#e9ecef"/>')
                if x + 64 <= x1:  # a label that would run past the segment is left out
                    out.append(
                        f'<text x="{x + 2:.1f}" y="{frame.svg_height - 8}" font-size="10" fill="#495057">'
                        f"{day:%a %d %b}</text>"
                    )
            day = day + timedelta(days=1)  # wall-clock arithmetic in the zone: the next local midnight
        if index:
            gap_x, middle = x0 - GAP / 2, TOP + frame.height / 2
            out.append(
                f'<rect x="{gap_x - GAP / 2 + 1:.1f}" y="{TOP}" width="{GAP - 2}" height="{frame.height}" '
                f'fill="#f6f7f9"/><text x="{gap_x:.1f}" y="{middle:.1f}" font-size="9" text-anchor="middle" '
                f'fill="#6c757d" transform="rotate(-90 {gap_x:.1f} {middle:.1f})">rest days</text>'
            )
    return out


def _dose_marks(frame: _Frame, doses: list[DoseMark]) -> list[str]:
    out = []
    for mark in doses:
        pos = _x(frame.layout, mark.at)
        if pos is None:
            continue
        _, x = pos
        colour = STATUS_COLOURS.get(mark.status, "#adb5bd")
        dash = STATUS_DASH.get(mark.status)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width = 1.6 if mark.status in ("held", "missed") else 1
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{frame.bottom}" stroke="{colour}" '
            f'stroke-width="{width}"{dash_attr} opacity="0.8"><title>{escape(mark.label)} {mark.status}</title></line>'
            f'<path d="M{x - 4:.1f},{TOP - 7} L{x + 4:.1f},{TOP - 7} L{x:.1f},{TOP - 1} Z" fill="{colour}"/>'
        )
        if mark.status == "held":
            out.append(
                f'<text x="{x:.1f}" y="{TOP + 10}" font-size="9" font-weight="bold" text-anchor="middle" '
                f'fill="{colour}">H</text>'
            )
    return out


def _threshold_lines(frame: _Frame, thresholds: list[Threshold]) -> list[str]:
    out = []
    for threshold in thresholds:
        y_fn = frame.y_of.get(threshold.axis)
        if y_fn is None:
            continue
        y = y_fn(threshold.value)
        if not frame.inside(y):
            continue
        colour = LEVEL_COLOURS.get(threshold.level, "#6c757d")
        # A left-axis threshold spans the plot, labelled at its left end. A right-axis one (pressor, O2 flow) is
        # drawn only beside the right axis it belongs to, so it is never read against the left axis's values.
        if threshold.axis == "left":
            x1, x2, label_x, anchor, label = LEFT, LEFT + frame.width, LEFT + 4, "start", threshold.label
        else:
            x1, x2 = LEFT + frame.width * 0.75, LEFT + frame.width
            label_x, anchor, label = LEFT + frame.width - 4, "end", f"{threshold.label} →"
        out.append(
            f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="1.2" stroke-dasharray="6 4"/>'
            f'<text x="{label_x:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="{anchor}" fill="{colour}">'
            f"{escape(label)}</text>"
        )
    return out


def _series(frame: _Frame, s: Series) -> list[str]:
    """A series' bars (fluid periods), then its points joined within each time segment."""
    out = []
    y_fn = frame.y_of[s.axis]
    for start, end, value in s.bars:
        a, b = _x(frame.layout, start), _x(frame.layout, end)
        if a is None or b is None or a[0] != b[0]:
            continue
        y = y_fn(value)
        out.append(
            f'<rect x="{a[1]:.1f}" y="{y:.1f}" width="{max(b[1] - a[1] - 1, 1):.1f}" '
            f'height="{max(frame.bottom - y, 0):.1f}" fill="{s.colour}" fill-opacity="0.35" stroke="{s.colour}">'
            f"<title>{escape(s.label)} {_fmt(value)}</title></rect>"
        )
    runs: list[list[tuple[float, float]]] = []
    last_segment = None
    for moment, value in s.points:
        pos = _x(frame.layout, moment)
        if pos is None:
            last_segment = None
            continue
        if pos[0] != last_segment:
            runs.append([])
            last_segment = pos[0]
        runs[-1].append((pos[1], y_fn(value)))
    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
        out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{s.colour}"/>' for x, y in run)
    return out


# --- The course review's plots --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    svg: SafeString


def threshold_label(key: str, value) -> tuple[str, str]:
    """("CV-SBP hold < 90", "hold") from a rule-set key; the comparison is read from the key's name (rulesets.py)."""
    rule, name = key.split(".", 1)
    level = name.split("_", 1)[0]
    return f"{rule} {level} {rulesets.comparison(key)} {value}", level


def _thresholds(plot_key: str, definition: dict, *, scale=None) -> list[Threshold]:
    values = definition.get("thresholds", {})
    out = []
    for key, side in rulesets.PLOT_LINES[plot_key]:
        if key in values:
            label, level = threshold_label(key, values[key])
            number = float(Decimal(str(values[key])))
            out.append(Threshold(number * scale if scale else number, label, level, side))
    return out


def _oliguria_threshold(definition: dict, hours: int) -> list[Threshold]:
    """label-only's LB-OLIG is a rate (mL/h): drawn on the per-window axis as rate × window."""
    rate = definition.get("thresholds", {}).get("LB-OLIG.below_ml_per_h")
    if rate is None:
        return []
    return [Threshold(float(Decimal(str(rate))) * hours, f"LB-OLIG hold < {rate} mL/h", "hold")]


def course_plots(review, *, now) -> list[Plot]:
    """The course review's trend plots from its TrendData (selectors/review/trends.py), aligned on one time axis, each
    threshold from the course's rule-set version (rulesets.PLOT_LINES says where)."""
    trends = review.trends
    if trends is None:
        return []
    axis = TimeAxis(trends.segments, review.zone)
    marks = [DoseMark(at, status, label) for at, status, label in trends.marks]

    def draw(spec: _PlotSpec) -> Plot:
        svg = trend_plot(
            title=spec.title,
            axis=axis,
            series=spec.series,
            thresholds=spec.thresholds,
            doses=marks,
            unit=spec.unit,
            right_unit=spec.right_unit,
            fixed=spec.fixed,
            right_fixed=spec.right_fixed,
            now=now,
        )
        return Plot(spec.key, spec.title, mark_safe(svg))  # noqa: S308 - trend_plot escapes every text it writes

    definition = review.rule_set
    return [
        draw(spec)
        for spec in (
            _blood_pressure(trends.vitals, definition),
            _heart_rate(trends.vitals, definition),
            _weight(trends.weights, definition, baseline_kg=review.course.baseline_weight_kg),
            _urine(trends.fluids, definition),
            _oxygen(trends.vitals, definition),
            _creatinine(trends.labs, definition),
            _sedation(trends.neuro, definition),
        )
    ]


@dataclass(frozen=True)
class _PlotSpec:
    """One plot of the course review before it is drawn: what trend_plot takes besides the shared axis and marks."""

    key: str
    title: str
    series: list[Series]
    thresholds: list[Threshold]
    unit: str = ""
    right_unit: str = ""
    fixed: tuple[float, float] | None = None  # the left axis's range when it is not the data's
    right_fixed: tuple[float, float] | None = None


def _blood_pressure(vitals, definition: dict) -> _PlotSpec:
    """SBP and MAP on the left, phenylephrine on the right from 0 to above its highest dose or threshold."""
    pressor = [(v.recorded_at, float(v.phenylephrine_mcg_kg_min or 0)) for v in vitals]
    pressor_thresholds = _thresholds("pressor", definition)
    pressor_top = max([p for _, p in pressor] + [t.value for t in pressor_thresholds] + [0.5]) * 1.15
    return _PlotSpec(
        "bp",
        "Blood pressure and pressor",
        [
            Series("SBP", "#0d6efd", tuple((v.recorded_at, v.sbp) for v in vitals)),
            Series("MAP", "#6610f2", tuple((v.recorded_at, (v.sbp + 2 * v.dbp) / 3) for v in vitals), dash="5 3"),
            Series("Phenylephrine", "#d63384", tuple(pressor), axis="right"),
        ],
        thresholds=_thresholds("bp", definition) + pressor_thresholds,
        unit="mmHg",
        right_unit="µg/kg/min",
        right_fixed=(0, pressor_top),
    )


def _heart_rate(vitals, definition: dict) -> _PlotSpec:
    return _PlotSpec(
        "hr",
        "Heart rate",
        [Series("HR", "#b02a37", tuple((v.recorded_at, v.heart_rate) for v in vitals))],
        thresholds=_thresholds("hr", definition),
        unit="/min",
    )


def _weight(weights, definition: dict, *, baseline_kg: Decimal) -> _PlotSpec:
    """Weight as % over the course's baseline, the measure the weight-gain rules read."""
    baseline = float(baseline_kg)
    return _PlotSpec(
        "weight",
        "Weight over baseline",
        [
            Series(
                f"% over {baseline_kg} kg",
                "#198754",
                tuple((w.recorded_at, (float(w.weight_kg) - baseline) / baseline * 100) for w in weights),
            )
        ],
        thresholds=_thresholds("weight", definition),
        unit="%",
    )


def _urine(fluids, definition: dict) -> _PlotSpec:
    """Urine output per the rule set's window (RN-UO.window_hours), each charted period scaled to that window."""
    uo_hours = int(definition.get("thresholds", {}).get("RN-UO.window_hours", 8))
    per = timedelta(hours=uo_hours)
    return _PlotSpec(
        "urine",
        f"Urine output per {uo_hours} h",
        [
            Series(
                f"urine / {uo_hours} h",
                "#0dcaf0",
                bars=tuple(
                    (f.period_start, f.period_end, f.urine_ml * per / (f.period_end - f.period_start)) for f in fluids
                ),
            )
        ],
        thresholds=_thresholds("urine", definition) + _oliguria_threshold(definition, uo_hours),
        unit="mL",
    )


def _oxygen(vitals, definition: dict) -> _PlotSpec:
    """SpO2 on the left down to below its lowest value (88 % at least shown), O2 flow on the right from 0."""
    o2 = [(v.recorded_at, float(v.o2_lpm or 0)) for v in vitals]
    o2_thresholds = _thresholds("spo2", definition)
    o2_top = max([p for _, p in o2] + [t.value for t in o2_thresholds if t.axis == "right"] + [2]) * 1.15
    spo2_values = [v.spo2 for v in vitals] + [t.value for t in o2_thresholds if t.axis == "left"]
    return _PlotSpec(
        "spo2",
        "SpO2 and oxygen",
        [
            Series("SpO2", "#0d6efd", tuple((v.recorded_at, v.spo2) for v in vitals)),
            Series("O2 L/min", "#fd7e14", tuple(o2), axis="right"),
        ],
        thresholds=o2_thresholds,
        unit="%",
        right_unit="L/min",
        fixed=(min(spo2_values + [88]) - 2, 100.5),
        right_fixed=(0, o2_top),
    )


def _creatinine(labs, definition: dict) -> _PlotSpec:
    return _PlotSpec(
        "creatinine",
        "Creatinine",
        [Series("creatinine", "#6f42c1", tuple((lab.recorded_at, float(lab.creatinine_mg_dl)) for lab in labs))],
        thresholds=_thresholds("creatinine", definition),
        unit="mg/dL",
    )


def _sedation(neuro, definition: dict) -> _PlotSpec:
    return _PlotSpec(
        "rass",
        "Sedation (RASS)",
        [Series("RASS", "#495057", tuple((n.recorded_at, n.rass) for n in neuro))],
        thresholds=_thresholds("rass", definition),
        unit="RASS",
        fixed=(-5.3, 4.3),
    )
