"""Server-drawn SVG charts (no script, no CDN): grouped columns per day and horizontal bars per category.
They are drawn for a phone's width (WIDTH user units, text of 12-13 units) and scale with the page (viewBox,
width 100%, at most 1.4 times in static/app.css), so their text stays 12-18 px from 390 to 1280 px."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# one distinct colour per bank (six) and then some: no two series of a chart share one
PALETTE = ("#2f6fb0", "#d9822b", "#3a9a5b", "#b03a48", "#7a5cb0", "#1a9aa0", "#8c6d1f", "#c2569b")
WIDTH = 360  # a 390 px phone shows the chart at about its own size (the page's padding taken off)


def colors_by_key(keys: Sequence[str]) -> dict[str, str]:
    """One colour per key (a bank, a product), in sorted order: the same key has the same colour in every
    chart of a page, and no two keys share one while there are colours left."""
    return {key: PALETTE[n % len(PALETTE)] for n, key in enumerate(sorted(set(keys)))}


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]
    color: str


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def columns(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Callable[[int], str]) -> str:
    """Grouped columns: one group per label (a day), one column per series, a legend on top."""
    width, height, left, top, bottom = WIDTH, 230, 4, 40, 34
    peak = max([v for s in series for v in s.values] + [1])
    slot = (width - left * 2) / max(len(labels), 1)
    bar = max(slot * 0.8 / max(len(series), 1), 1.0)
    plot = height - top - bottom
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - left}" y2="{height - bottom}" stroke="#999"/>']
    for index, s in enumerate(series):
        body.append(f'<rect x="{left + index * 90}" y="6" width="12" height="12" fill="{s.color}"/>')
        body.append(f'<text x="{left + index * 90 + 16}" y="17" font-size="13">{escape(s.name)}</text>')
        for position, value in enumerate(s.values):
            h = plot * value / peak
            x = left + position * slot + slot * 0.1 + index * bar
            tip = f"{labels[position]} {s.name}：{fmt(value)}"
            body.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{s.color}"><title>{escape(tip)}</title></rect>'
            )
    step = max(1, -(-len(labels) // 5))  # five labels at most, counted back from the last (today)
    for position, label in enumerate(labels):
        if (len(labels) - 1 - position) % step == 0:
            x = min(max(left + position * slot + slot / 2, 18), width - 18)
            body.append(
                f'<text x="{x:.1f}" y="{height - 14}" font-size="12" text-anchor="middle">{escape(label)}</text>'
            )
    body.append(
        f'<text x="{width - left}" y="{top - 6}" font-size="12" text-anchor="end">最高 {escape(fmt(peak))}</text>'
    )
    return _svg(width, height, title, body)


def bars(
    title: str, items: Sequence[tuple[str, int]], fmt: Callable[[int], str], colors: Sequence[str] | None = None
) -> str:
    """Horizontal bars, one per (label, value): the label on its own line (long labels fit a phone), the bar
    below it with the value written after it. `colors` gives each item its colour (a bank keeps its own)."""
    width, row, value_room = WIDTH, 44, 120
    height = max(len(items), 1) * row + 6
    peak = max([value for _, value in items] + [1])
    body = []
    if not items:
        body.append('<text x="4" y="24" font-size="13" fill="#666">暂无数据</text>')
    for index, (label, value) in enumerate(items):
        y = 4 + index * row
        length = (width - value_room) * value / peak
        color = colors[index] if colors else PALETTE[index % len(PALETTE)]
        body.append(f'<text x="0" y="{y + 14}" font-size="13">{escape(label)}</text>')
        body.append(f'<rect x="0" y="{y + 20}" width="{length:.1f}" height="16" fill="{color}"/>')
        body.append(f'<text x="{length + 6:.1f}" y="{y + 33}" font-size="13">{escape(fmt(value))}</text>')
    return _svg(width, height, title, body)


def lines(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Callable[[int], str]) -> str:
    """One line per series over the labels (hours), a point with a tooltip at each value, the legend on top
    (two names a row, so many series still fit)."""
    per_row, legend_row = 2, 20
    width, left, right, bottom = WIDTH, 8, 8, 34
    top = 30 + legend_row * -(-max(len(series), 1) // per_row)  # the legend's rows, then the peak's line
    height = top + 160 + bottom
    peak = max([v for s in series for v in s.values] + [1])
    step_x = (width - left - right) / max(len(labels) - 1, 1)
    plot = height - top - bottom
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>']
    for index, s in enumerate(series):
        color = s.color
        lx, ly = left + (index % per_row) * (width // per_row), 6 + (index // per_row) * legend_row
        body.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color}"/>')
        body.append(f'<text x="{lx + 16}" y="{ly + 11}" font-size="13">{escape(s.name)}</text>')
        points = [(left + n * step_x, height - bottom - plot * v / peak) for n, v in enumerate(s.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), label, value in zip(points, labels, s.values, strict=True):
            tip = f"{label} {s.name}：{fmt(value)}"
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(tip)}</title></circle>')
    every = max(1, -(-len(labels) // 6))  # six labels at most, counted back from the last (this hour)
    for n, label in enumerate(labels):
        if (len(labels) - 1 - n) % every == 0:
            x = min(max(left + n * step_x, 16), width - 16)
            body.append(
                f'<text x="{x:.1f}" y="{height - 14}" font-size="12" text-anchor="middle">{escape(label)}</text>'
            )
    body.append(
        f'<text x="{width - right}" y="{top - 8}" font-size="12" text-anchor="end">最高 {escape(fmt(peak))}</text>'
    )
    return _svg(width, height, title, body)
