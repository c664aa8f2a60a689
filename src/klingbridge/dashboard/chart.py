"""The spend chart: stacked bars of charged USD per provider per day, drawn as SVG on the server.

No script and no chart library: the page stays readable with JavaScript off, and every bar
carries a <title> (a tooltip, and text for screen readers).
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from .queries import Spend

PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899")
WIDTH, HEIGHT = 1100, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 14, 30


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above `value` (an axis that reads well)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power  # pragma: no cover  (the loop always returns)


def axis_steps(top: float) -> list[float]:
    """Gridline values from 0 to `top` in steps that print exactly (0.05, not 0.0625)."""
    mantissa = top / 10.0 ** math.floor(math.log10(top))
    count = 4 if round(mantissa, 6) in (1.0, 2.0) else 5
    return [top * i / count for i in range(count + 1)]


def dollars(values: list[float]) -> list[str]:
    """The labels, with as few decimals (at least 2) as keeps every one exact."""
    for decimals in (2, 3, 4):
        if all(abs(round(v, decimals) - v) < 1e-9 for v in values):
            break
    return [f"${v:,.{decimals}f}" for v in values]


def spend_svg(spend: Spend) -> Markup:
    providers = spend.providers
    days = spend.days
    daily = [sum(spend.by_provider[p][i] for p in providers) for i in range(len(days))]
    top = nice_ceiling(max(daily, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.72, 1.0)

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="spend-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="spend-title">Charged USD per provider per day, last {len(days)} days</title>',
    ]
    steps = axis_steps(top)
    for value, label in zip(steps, dollars(steps), strict=True):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        base = 0.0
        for p_index, provider in enumerate(providers):
            value = spend.by_provider[provider][i]
            if value <= 0:
                continue
            tip = escape(f"{provider} {day.isoformat()}: ${value:,.4f}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" '
                f'height="{max(y(base) - y(base + value), 0.5):.1f}" '
                f'fill="{colour(p_index)}"><title>{tip}</title></rect>'
            )
            base += value
        if i % 5 == (len(days) - 1) % 5:
            label = "today" if i == len(days) - 1 else day.strftime("%b %d")
            parts.append(
                f'<text class="axis" x="{LEFT + i * slot + slot / 2:.1f}" '
                f'y="{HEIGHT - 10}" text-anchor="middle">{label}</text>'
            )
    parts.append(
        f'<line class="base" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
    )
    if not providers:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" '
            'text-anchor="middle">nothing charged in this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
