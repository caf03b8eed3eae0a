"""Inline SVG charts drawn on the server: no library, no script, nothing fetched. Each chart has a <title> and
<desc> for screen readers, and every page shows the same numbers in a table (readable without CSS/SVG).
Colours are presentation attributes (not style=) so the console's strict CSP holds."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

BAR = "#2b6cb0"
LINE = "#c05621"
AXIS = "#4a5568"


@dataclass(frozen=True)
class Point:
    label: str
    value: Decimal


def _svg(width: int, height: int, title: str, desc: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="t-{id(body)} d-{id(body)}" class="chart" preserveAspectRatio="xMidYMid meet">'
        f'<title id="t-{id(body)}">{escape(title)}</title><desc id="d-{id(body)}">{escape(desc)}</desc>{body}</svg>'
    )


def bar_chart(points: Sequence[Point], title: str, unit: str = "") -> str:
    width, height, left, bottom, top = 360, 200, 8, 36, 20
    peak = max((p.value for p in points), default=Decimal(0)) or Decimal(1)
    slot = (width - 2 * left) / max(len(points), 1)
    parts = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - left}" y2="{height - bottom}" stroke="{AXIS}"/>']
    for i, p in enumerate(points):
        h = float(p.value / peak) * (height - bottom - top)
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(p.label)}: {escape(str(p.value))}{escape(unit)}</title></rect>"
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" font-size="11" text-anchor="middle" '
            f'fill="{AXIS}">{escape(str(p.value))}</text>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" font-size="12" text-anchor="middle" '
            f'fill="{AXIS}">{escape(p.label)}</text>'
        )
    desc = "; ".join(f"{p.label}: {p.value}{unit}" for p in points)
    return _svg(width, height, title, desc, "".join(parts))


def trend_chart(line: Sequence[Point], bars: Sequence[Point], title: str, line_name: str, bar_name: str) -> str:
    """A line (e.g. PAR 30 %) over bars (e.g. daily collections), each on its own scale, shared date axis."""
    width, height, left, right, bottom, top = 360, 200, 8, 8, 30, 16
    plot_w, plot_h = width - left - right, height - bottom - top
    n = max(len(bars), len(line), 1)
    step = plot_w / n
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{AXIS}"/>']
    bar_peak = max((p.value for p in bars), default=Decimal(0)) or Decimal(1)
    for i, p in enumerate(bars):
        h = float(p.value / bar_peak) * plot_h
        parts.append(
            f'<rect x="{left + i * step:.1f}" y="{top + plot_h - h:.1f}" width="{max(step * 0.8, 1):.1f}" '
            f'height="{h:.1f}" fill="{BAR}" fill-opacity="0.45"/>'
        )
    line_peak = max((p.value for p in line), default=Decimal(0)) or Decimal(1)
    if line:
        stride = plot_w / max(len(line) - 1, 1)
        coords = " ".join(
            f"{left + i * stride:.1f},{top + plot_h - float(p.value / line_peak) * plot_h:.1f}"
            for i, p in enumerate(line)
        )
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="2.5"/>')
    for label, x, anchor in (
        ((line or bars)[0].label if (line or bars) else "", left, "start"),
        (
            (line or bars)[-1].label if (line or bars) else "",
            width - right,
            "end",
        ),
    ):
        parts.append(
            f'<text x="{x}" y="{height - 8}" font-size="12" text-anchor="{anchor}" fill="{AXIS}">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{left + 4}" y="{top - 2}" font-size="11" fill="{LINE}">{escape(line_name)} (max {line_peak})</text>'
    )
    parts.append(
        f'<text x="{width - right}" y="{top - 2}" font-size="11" text-anchor="end" fill="{BAR}">'
        f"{escape(bar_name)} (max {bar_peak})</text>"
    )
    desc = f"{line_name} from {line[0].value} to {line[-1].value}; " if line else ""
    desc += f"{bar_name} total {sum((p.value for p in bars), Decimal(0))}"
    return _svg(width, height, title, desc, "".join(parts))
