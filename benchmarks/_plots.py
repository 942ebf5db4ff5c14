"""Line charts of a benchmark report, written as small SVG files by hand (no plotting library).

Two figures, each drawn only when the report holds its family:

* dispatch: the cost of one ``on_batch_end`` call against the number of callbacks, for SARA, a hand-written loop,
  pluggy, the peers measured (Keras 3, Hugging Face, Lightning) and a naive ``getattr`` manager (the ``manager``
  family's steady cases with a context keyword, 1 to 1,000 callbacks, their wall-clock rows);
* discovery: the time to find and load 5 plugins against the number of installed distributions.

Each point is a contender's best round (the one least disturbed by the rest of the machine), as in the ratios. Axes
are logarithmic: the sizes span three decades, and so do the contenders' costs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._harness import Row

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 250, 56, 58
"""Margins around the plotting area: tick labels on the left, the legend on the right, title above, x label below."""
COLORS = ("#1f6fb4", "#e0701a", "#2c9a3c", "#c53030", "#7e57c2", "#8c6d31", "#d45fa0")
MARKERS = ("circle", "square", "diamond", "triangle", "circle", "square", "diamond")


@dataclass(frozen=True)
class Series:
    """One contender's line: its label and its points ``(x, y)``, sorted by x."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Source:
    """Where a figure's points are: the cases of ``family`` whose name matches ``case`` (group 1 is x)."""

    family: str
    case: str
    contenders: dict[str, str]
    """Contender in the report -> label in the legend."""
    scale: float = 1.0
    """Multiplies each sample (microseconds to milliseconds: 1e-3)."""
    unit: str = "us"
    """The rows drawn: wall-clock ones, not the instruction counts measured beside them."""


@dataclass(frozen=True)
class Figure:
    """A chart of one report: the first of ``sources`` that gives at least two sizes is drawn."""

    name: str
    title: str
    x_label: str
    y_label: str
    sources: tuple[Source, ...]


_DISPATCH_CONTENDERS = {
    "sara": "SARA CallbackManager",
    "hand-written loop": "hand-written loop",
    "pluggy pm.hook": "pluggy pm.hook",
    "naive getattr manager": "naive getattr manager",
    "Keras 3 CallbackList": "Keras 3 CallbackList",
    "HF Transformers CallbackHandler": "HF Transformers CallbackHandler",
    "Lightning _call_callback_hooks": "Lightning _call_callback_hooks (transcribed)",
}
FIGURES = (
    Figure(
        "dispatch",
        "One on_batch_end call, by number of callbacks",
        "callbacks overriding the hook",
        "time per call (us, best round)",
        (Source("manager", r"steady on_batch_end, (\d+) callbacks?, context keywords", _DISPATCH_CONTENDERS),),
    ),
    Figure(
        "discovery",
        "Finding and loading 5 plugins, by installed distributions",
        "installed distributions",
        "time in a fresh process (ms, best round)",
        (
            Source(
                "discovery",
                r"(\d+) distributions, operation in a fresh process",
                {
                    "sara from_config (list + load 5)": "SARA from_config",
                    "bare entry_points(group=)": "bare entry_points (loads none)",
                    "pluggy load_setuptools_entrypoints": "pluggy",
                    "stevedore NamedExtensionManager, cold": "stevedore, cold cache",
                    "stevedore NamedExtensionManager, warm": "stevedore, warm cache",
                },
                scale=1e-3,
            ),
        ),
    ),
)


def series(rows: Sequence[Row], source: Source) -> list[Series]:
    """The lines of ``source`` in ``rows``: one per contender measured at two sizes or more, in legend order."""
    points: dict[str, list[tuple[float, float]]] = {contender: [] for contender in source.contenders}
    pattern = re.compile(source.case)
    for row in rows:
        found = pattern.fullmatch(row.case)
        if row.family == source.family and row.unit == source.unit and found and row.contender in points:
            points[row.contender].append((float(found.group(1)), row.best * source.scale))
    return [
        Series(source.contenders[contender], tuple(sorted(values)))
        for contender, values in points.items()
        if len(values) >= 2
    ]


def figures(rows: Sequence[Row]) -> dict[str, tuple[str, str]]:
    """``{name: (title, svg)}`` for every figure that ``rows`` hold data for."""
    drawn = {}
    for figure in FIGURES:
        for source in figure.sources:
            lines = series(rows, source)
            if lines:
                drawn[figure.name] = (figure.title, chart(figure.title, figure.x_label, figure.y_label, lines))
                break
    return drawn


def _log_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """The axis' range, whole decades around ``low``-``high``, and its ticks (1, 2, 5 times a power of ten)."""
    start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
    if stop == start:
        stop += 1
    steps = (1.0,) if stop - start > 3 else (1.0, 2.0, 5.0)
    ticks = [step * 10.0**power for power in range(start, stop + 1) for step in steps]
    return 10.0**start, 10.0**stop, [tick for tick in ticks if 10.0**start <= tick <= 10.0**stop]


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _marker(kind: str, x: float, y: float, color: str) -> str:
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>'
    if kind == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{color}"/>'
    if kind == "diamond":
        shape = f"{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}"
    else:
        shape = f"{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f} {x - 4.5:.1f},{y + 3.5:.1f}"
    return f'<polygon points="{shape}" fill="{color}"/>'


def chart(title: str, x_label: str, y_label: str, lines: Sequence[Series]) -> str:
    """A log-log line chart: one ``<polyline>`` per series, with markers, ticks, axis labels, a legend and a title.

    The x ticks are the measured sizes; the y ticks are 1, 2 and 5 times the powers of ten of the range.
    """
    xs = sorted({x for line in lines for x, _ in line.points})
    ys = [y for line in lines for _, y in line.points if y > 0]
    x_low, x_high = xs[0] / 1.5, xs[-1] * 1.5
    y_low, y_high, y_ticks = _log_ticks(min(ys), max(ys))
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low)) * (right - LEFT)

    def py(y: float) -> float:
        y = max(y, y_low)
        return bottom - (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low)) * (bottom - TOP)

    parts = [
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2:.0f}" y="24" text-anchor="middle" class="title">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_number(tick))}</text>')
    for tick in xs:
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{escape(_number(tick))}</text>')
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" stroke="#444"/>',
        f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 14}" text-anchor="middle">{escape(x_label)} (log)</text>',
        f'<text transform="translate(18 {(TOP + bottom) / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)} (log)</text>",
    ]
    styles = [(COLORS[index % len(COLORS)], MARKERS[index % len(MARKERS)]) for index in range(len(lines))]
    for line, (color, marker) in reversed(list(zip(lines, styles))):  # the first series (SARA) drawn last, on top
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        parts.append(f'<g class="series" data-label={quoteattr(line.label)}>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [_marker(marker, px(x), py(y), color) for x, y in line.points]
        parts.append("</g>")
    for index, (line, (color, marker)) in enumerate(zip(lines, styles)):
        legend_y = TOP + 10 + index * 22
        parts.append(
            f'<line x1="{right + 16}" y1="{legend_y}" x2="{right + 40}" y2="{legend_y}" stroke="{color}" '
            'stroke-width="2"/>'
        )
        parts.append(_marker(marker, right + 28, legend_y, color))
        parts.append(f'<text x="{right + 46}" y="{legend_y + 4}">{escape(line.label)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="12">\n'
        "<style>.title { font-size: 15px; font-weight: bold; } .grid { stroke: #ddd; }</style>\n"
        + "\n".join(parts)
        + "\n</svg>\n"
    )
