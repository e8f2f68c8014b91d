"""The report's figures, drawn as SVG: points, lines, linear and log axes, a legend, a colour bar.

The run report (:mod:`labctl.report`) is written at the end of every run; its
four figures are simple x-y plots, and matplotlib took longer to import
(0.25 s) and to render them (0.3 s) than the whole simulated run. This
module draws what they need as SVG - text, scalable, a few kilobytes - with
the standard library only. ``labctl compare`` still plots a PNG with
matplotlib.

A :class:`Figure` holds one or more :class:`Axes` (a plotting box with its
ranges); :meth:`Figure.img` gives the ``<img>`` tag with the SVG inline as a
``data:`` URI, so the report stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["PALETTE", "Axes", "Figure", "viridis"]

#: Line and point colours, in the order plots take them (matplotlib's tab10).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
FONT = "font-family:system-ui,sans-serif"


def viridis(fraction: float) -> str:
    """The viridis colour at ``fraction`` (0-1, clipped), as ``#rrggbb``."""
    f = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0)) * (len(_VIRIDIS) - 1)
    i = min(int(f), len(_VIRIDIS) - 2)
    a, b, t = _VIRIDIS[i], _VIRIDIS[i + 1], f - i
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(a, b, strict=True))


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    text = f"{value:.4g}"
    return text.replace("e+0", "e").replace("e-0", "e-")


def _linear_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    if not span > 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    ticks = []
    k = first
    while k * step <= high + 1e-9 * span:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = (1, 2, 5) if math.log10(high / low) < 2.5 else (1,)
    ticks = [m * 10.0**d for d in decades for m in steps]
    return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]


def _padded(values: Sequence[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(finite), max(finite)
    if log:
        a, b = math.log10(low), math.log10(high)
        margin = max((b - a) * pad, 0.05)
        return 10 ** (a - margin), 10 ** (b + margin)
    margin = (high - low) * pad or max(abs(high) * pad, 0.5)
    return low - margin, high + margin


@dataclass
class _Item:
    kind: str  # "line" or "points"
    label: str | None
    color: str
    dash: str | None = None


@dataclass
class Axes:
    """A plotting box at (left, top, width, height) px, and what is drawn in it."""

    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    log_x: bool = False
    log_y: bool = False
    x_label: str = ""
    y_label: str = ""
    title: str = ""
    legend: str | None = None  # "lower right", "upper left", "center right", ...
    legend_size: int = 11
    _body: list[str] = field(default_factory=list)
    _items: list[_Item] = field(default_factory=list)
    _next: int = 0

    def fit(
        self,
        x: Sequence[float] = (),
        y: Sequence[float] = (),
        *,
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
    ) -> Axes:
        """Set the ranges: given, or the data's, padded by 5 %."""
        self.x_range = x_range or _padded(x, self.log_x)
        self.y_range = y_range or _padded(y, self.log_y)
        return self

    def _scale(self, value: float, low: float, high: float, log: bool) -> float:
        if log:
            value, low, high = (math.log10(max(v, 1e-300)) for v in (value, low, high))
        return (value - low) / (high - low) if high != low else 0.5

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Pixel position of the data point (x, y)."""
        fx = self._scale(x, *self.x_range, self.log_x)
        fy = self._scale(y, *self.y_range, self.log_y)
        return self.left + fx * self.width, self.top + (1 - fy) * self.height

    def _color(self, color: str | None) -> str:
        if color is not None:
            return color
        chosen = PALETTE[self._next % len(PALETTE)]
        self._next += 1
        return chosen

    def _usable(self, x: float, y: float) -> bool:
        return (
            math.isfinite(x)
            and math.isfinite(y)
            and (x > 0 or not self.log_x)
            and (y > 0 or not self.log_y)
        )

    def line(
        self,
        x: Sequence[float],
        y: Sequence[float],
        *,
        color: str | None = None,
        label: str | None = None,
        dash: str | None = None,
        width: float = 1.5,
        most: int = 600,
    ) -> None:
        """A polyline through the points (at most ``most`` of them, evenly picked)."""
        pairs = [(a, b) for a, b in zip(x, y, strict=True) if self._usable(a, b)]
        if len(pairs) > most:
            pairs = [pairs[round(i * (len(pairs) - 1) / (most - 1))] for i in range(most)]
        color = self._color(color)
        if pairs:
            coords = " ".join(
                f"{_number(px)},{_number(py)}" for px, py in (self.px(a, b) for a, b in pairs)
            )
            style = f' stroke-dasharray="{dash}"' if dash else ""
            self._body.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}"'
                f' stroke-width="{width}"{style}/>'
            )
        self._items.append(_Item("line", label, color, dash))

    def points(
        self,
        x: Sequence[float],
        y: Sequence[float],
        *,
        color: str | None = None,
        colors: Sequence[str] | None = None,
        label: str | None = None,
        radius: float = 3.5,
    ) -> None:
        """A marker at each point (``colors``: one fill each)."""
        color = self._color(color)
        fills = list(colors) if colors is not None else [color] * len(x)
        for a, b, fill in zip(x, y, fills, strict=True):
            if self._usable(a, b):
                px, py = self.px(a, b)
                self._body.append(
                    f'<circle cx="{_number(px)}" cy="{_number(py)}" r="{radius}" fill="{fill}"/>'
                )
        self._items.append(_Item("points", label, color))

    def hline(self, y: float, *, color: str = "#888", dash: str = "2,3") -> None:
        self.line(self.x_range, (y, y), color=color, dash=dash, width=1.0)
        self._items.pop()

    def vline(self, x: float, *, color: str = "#888", dash: str = "2,3") -> None:
        self.line((x, x), self.y_range, color=color, dash=dash, width=1.0)
        self._items.pop()

    def text(self, x: float, y: float, text: str, *, size: int = 10) -> None:
        """``text`` centred at the data point (x, y)."""
        if self._usable(x, y):
            px, py = self.px(x, y)
            self._body.append(
                f'<text x="{_number(px)}" y="{_number(py)}" text-anchor="middle"'
                f' font-size="{size}">{html.escape(text)}</text>'
            )

    def _ticks(self) -> list[str]:
        out = []
        x_ticks = (_log_ticks if self.log_x else _linear_ticks)(*self.x_range)
        y_ticks = (_log_ticks if self.log_y else _linear_ticks)(*self.y_range)
        bottom = self.top + self.height
        for t in x_ticks:
            px, _ = self.px(t, self.y_range[0])
            out.append(
                f'<line x1="{_number(px)}" y1="{_number(bottom)}" x2="{_number(px)}"'
                f' y2="{_number(bottom + 4)}" stroke="#333"/>'
                f'<text x="{_number(px)}" y="{_number(bottom + 16)}" text-anchor="middle"'
                f' font-size="10">{_label(t)}</text>'
            )
        for t in y_ticks:
            _, py = self.px(self.x_range[0], t)
            out.append(
                f'<line x1="{_number(self.left - 4)}" y1="{_number(py)}" x2="{_number(self.left)}"'
                f' y2="{_number(py)}" stroke="#333"/>'
                f'<text x="{_number(self.left - 7)}" y="{_number(py + 3.5)}" text-anchor="end"'
                f' font-size="10">{_label(t)}</text>'
            )
        return out

    def _legend(self) -> list[str]:
        shown = [item for item in self._items if item.label]
        if not shown or self.legend is None:
            return []
        size = self.legend_size
        row = size + 5
        width = 34 + 0.58 * size * max(len(str(item.label)) for item in shown)
        height = row * len(shown) + 8
        x = self.left + 8 if "left" in self.legend else self.left + self.width - width - 8
        if "upper" in self.legend:
            y = self.top + 8
        elif "lower" in self.legend:
            y = self.top + self.height - height - 8
        else:  # "center ...": halfway up
            y = self.top + (self.height - height) / 2
        out = [
            f'<rect x="{_number(x)}" y="{_number(y)}" width="{_number(width)}"'
            f' height="{_number(height)}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>'
        ]
        for index, item in enumerate(shown):
            cy = y + 4 + row * index + row / 2
            if item.kind == "points":
                out.append(f'<circle cx="{_number(x + 15)}" cy="{_number(cy)}" r="3.5"'
                           f' fill="{item.color}"/>')  # fmt: skip
            else:
                dash = f' stroke-dasharray="{item.dash}"' if item.dash else ""
                out.append(
                    f'<line x1="{_number(x + 5)}" y1="{_number(cy)}" x2="{_number(x + 25)}"'
                    f' y2="{_number(cy)}" stroke="{item.color}" stroke-width="1.5"{dash}/>'
                )
            out.append(
                f'<text x="{_number(x + 31)}" y="{_number(cy + size / 3)}"'
                f' font-size="{size}">{html.escape(str(item.label))}</text>'
            )
        return out

    def svg(self, clip: str) -> str:
        """This box's markup: its frame, ticks, labels, the drawing clipped to it, the legend."""
        left, top, width, height = self.left, self.top, self.width, self.height
        middle_y = top + height / 2
        parts = [
            f'<clipPath id="{clip}"><rect x="{_number(left)}" y="{_number(top)}"'
            f' width="{_number(width)}" height="{_number(height)}"/></clipPath>',
            f'<g clip-path="url(#{clip})">{"".join(self._body)}</g>',
            f'<rect x="{_number(left)}" y="{_number(top)}" width="{_number(width)}"'
            f' height="{_number(height)}" fill="none" stroke="#333"/>',
            *self._ticks(),
            f'<text x="{_number(left + width / 2)}" y="{_number(top + height + 34)}"'
            f' text-anchor="middle" font-size="12">{html.escape(self.x_label)}</text>',
            f'<text x="{_number(left - 46)}" y="{_number(middle_y)}" text-anchor="middle"'
            f' font-size="12" transform="rotate(-90 {_number(left - 46)} {_number(middle_y)})">'
            f"{html.escape(self.y_label)}</text>",
            *self._legend(),
        ]
        if self.title:
            parts.append(
                f'<text x="{_number(left + width / 2)}" y="{_number(top - 8)}"'
                f' text-anchor="middle" font-size="13">{html.escape(self.title)}</text>'
            )
        return "".join(parts)


class Figure:
    """An SVG figure of ``width`` x ``height`` px holding axes and a colour bar."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.axes: list[Axes] = []
        self._extra: list[str] = []

    def add_axes(
        self, left: float, top: float, width: float, height: float, **kwargs: object
    ) -> Axes:
        """A plotting box at (left, top) px of ``width`` x ``height`` px (see :class:`Axes`)."""
        axes = Axes(left, top, width, height, **kwargs)  # type: ignore[arg-type]
        self.axes.append(axes)
        return axes

    def colorbar(
        self, left: float, top: float, height: float, low: float, high: float, label: str
    ) -> None:
        """A vertical viridis bar from ``low`` (bottom) to ``high`` (top), ticked and labelled."""
        steps = 32
        cell = height / steps
        for i in range(steps):
            self._extra.append(
                f'<rect x="{_number(left)}" y="{_number(top + height - (i + 1) * cell)}"'
                f' width="14" height="{_number(cell + 0.5)}" fill="{viridis((i + 0.5) / steps)}"/>'
            )
        self._extra.append(
            f'<rect x="{_number(left)}" y="{_number(top)}" width="14" height="{_number(height)}"'
            ' fill="none" stroke="#333"/>'
        )
        for t in _linear_ticks(low, high, 4) if high > low else [low]:
            fraction = (t - low) / (high - low) if high > low else 0.5
            y = top + height - fraction * height
            self._extra.append(
                f'<line x1="{_number(left + 14)}" y1="{_number(y)}" x2="{_number(left + 18)}"'
                f' y2="{_number(y)}" stroke="#333"/><text x="{_number(left + 21)}"'
                f' y="{_number(y + 3.5)}" font-size="10">{_label(t)}</text>'
            )
        middle = top + height / 2
        self._extra.append(
            f'<text x="{_number(left + 62)}" y="{_number(middle)}" text-anchor="middle"'
            f' font-size="12" transform="rotate(-90 {_number(left + 62)} {_number(middle)})">'
            f"{html.escape(label)}</text>"
        )

    def svg(self) -> str:
        """The whole figure as one SVG document."""
        body = "".join(axes.svg(f"box{index}") for index, axes in enumerate(self.axes))
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}"'
            f' height="{self.height}" viewBox="0 0 {self.width} {self.height}"'
            f' style="{FONT}"><rect width="100%" height="100%" fill="#fff"/>'
            f"{body}{''.join(self._extra)}</svg>"
        )

    def img(self, alt: str) -> str:
        """An ``<img>`` tag, the figure inline (``data:image/svg+xml``): a self-contained page."""
        data = base64.b64encode(self.svg().encode("utf-8")).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'
