"""The report's plots as SVG, drawn on the server: no script is needed to show or print them.

Each function takes one plot of the report model and a gettext function for
its few words, and returns an `<svg>` element sized by its viewBox (the page
sets its width). Lines differ by dash pattern as well as colour, and every
marked region is labelled, so a black-and-white print reads the same.
Every plot is `<svg class="plot ...">` with `data-*` attributes naming what
it shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from html import escape

import numpy as np

from linectl.i18n import N_
from linectl.report.model import BrakePlot, IdlePlot, PeaksPlot, Plot

Gettext = Callable[[str], str]

W, H = 440.0, 290.0
# Plot area inside the frame: room for tick labels on the left and below.
LEFT, RIGHT, TOP, BOTTOM = 62.0, 14.0, 30.0, 44.0
LEFT_COLOUR, RIGHT_COLOUR = "#1f4e9c", "#c0392b"
LEFT_DASH, RIGHT_DASH = "", "6 3"
FONT = "Noto Sans CJK SC, Noto Sans, DejaVu Sans, sans-serif"
# Columns of a plot that keep their own lowest and highest sample: half a millimetre
# each on the printed page, finer than the line drawn.
COLUMNS = 150


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering lo..hi."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = [round(first, 10)]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def envelope(xs: np.ndarray, ys: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most two points per plot column, each column's lowest and highest in the
    order they came: the line looks the same, every peak stays, the page gets lighter."""
    n = len(xs)
    if n <= 2 * columns:
        return xs, ys
    edges = np.linspace(0, n, columns + 1).astype(int)
    keep: list[int] = []
    for a, b in itertools.pairwise(edges):
        if b > a:
            lo, hi = a + int(np.argmin(ys[a:b])), a + int(np.argmax(ys[a:b]))
            keep.extend(sorted({lo, hi}))
    idx = np.array(keep)
    return xs[idx], ys[idx]


def _text_width(s: str, size: float) -> float:
    """About how wide `s` is drawn: a CJK character is a full em, others about half."""
    return sum(size if ord(c) >= 0x2E80 else size * 0.56 for c in s)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class _Canvas:
    """Data coordinates to SVG coordinates, and the pieces every plot shares."""

    def __init__(
        self, x: tuple[float, float], y: tuple[float, float], cls: str, attrs: dict[str, str]
    ) -> None:
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.cls, self.attrs = cls, attrs
        # Ids are shared by every plot of the page: one per plot, named after it.
        self.clip = "clip-" + "-".join([cls, *attrs.values()])
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(self, x: float, y: float, s: str, anchor: str = "middle", size: float = 10) -> None:
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
            f"{escape(s)}</text>"
        )

    def axes(
        self, xticks: Sequence[float], yticks: Sequence[float], xlabel: str, ylabel: str
    ) -> None:
        for t in yticks:
            y = self.py(t)
            self.add(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                'stroke="#d8d8d8" stroke-width="0.6"/>'
            )
            self.text(LEFT - 5, y + 4.5, _fmt(t), "end", 13)
        for t in xticks:
            x = self.px(t)
            self.add(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" '
                'stroke="#ececec" stroke-width="0.6"/>'
            )
            self.text(x, H - BOTTOM + 17, _fmt(t), "middle", 13)
        self.add(
            f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
            'fill="none" stroke="#333" stroke-width="0.8"/>'
        )
        self.text((LEFT + W - RIGHT) / 2, H - 5, xlabel, "middle", 14)
        self.add(
            f'<text x="16" y="{(TOP + H - BOTTOM) / 2:.1f}" font-size="14" text-anchor="middle" '
            f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2:.1f})">{escape(ylabel)}</text>'
        )

    def band(
        self,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        fill: str,
        label: str | None,
        opacity: float = 1.0,
    ) -> None:
        xa, xb = self.px(max(x0, self.x0)), self.px(min(x1, self.x1))
        ya, yb = self.py(min(y1, self.y1)), self.py(max(y0, self.y0))
        if xb <= xa or yb <= ya:
            return
        self.add(
            f'<rect x="{xa:.1f}" y="{ya:.1f}" width="{xb - xa:.1f}" height="{yb - ya:.1f}" '
            f'fill="{fill}" fill-opacity="{opacity:g}" stroke="none"/>'
        )
        if label:
            self.text((xa + xb) / 2, ya + 15, label, "middle", 13)

    def polyline(self, xs: np.ndarray, ys: np.ndarray, colour: str, dash: str, cls: str) -> None:
        xs, ys = envelope(xs, ys, COLUMNS)
        pts = " ".join(
            f"{self.px(float(x)):.1f},{self.py(float(y)):.1f}" for x, y in zip(xs, ys, strict=True)
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        # Inside the frame whatever the data: a wild sample must not run over the labels.
        self.add(
            f'<polyline class="{cls}" points="{pts}" fill="none" stroke="{colour}" '
            f'stroke-width="1.3" stroke-linejoin="round"{dash_attr} '
            f'clip-path="url(#{self.clip})"/>'
        )

    def vline(self, x: float, label: str, dash: str = "3 2") -> None:
        px = self.px(x)
        self.add(
            f'<line class="marker" x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{H - BOTTOM}" '
            f'stroke="#000" stroke-width="1" stroke-dasharray="{dash}"/>'
        )
        # Inside the frame, right of the line (the curves are still low just after it),
        # or left of it when the label would run out of the frame.
        if px + 4 + _text_width(label, 13) <= W - RIGHT:
            self.text(px + 4, TOP + 15, label, "start", 13)
        else:
            self.text(px - 4, TOP + 15, label, "end", 13)

    def hline(self, y: float, label: str, dash: str, anchor: str = "end") -> None:
        py = self.py(y)
        self.add(
            f'<line class="marker" x1="{LEFT}" y1="{py:.1f}" x2="{W - RIGHT}" y2="{py:.1f}" '
            f'stroke="#000" stroke-width="1" stroke-dasharray="{dash}"/>'
        )
        x = W - RIGHT - 3 if anchor == "end" else LEFT + 3
        self.text(x, py - 4, label, anchor, 13)

    def legend(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """In the top margin, at the right: clear of the curves and the markers' labels."""
        x = W - RIGHT - 80 * len(entries)
        y = TOP - 10
        for label, colour, dash in entries:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            self.add(
                f'<line x1="{x:.1f}" y1="{y - 3:.1f}" x2="{x + 20:.1f}" y2="{y - 3:.1f}" '
                f'stroke="{colour}" stroke-width="1.8"{dash_attr}/>'
            )
            self.text(x + 25, y + 1, label, "start", 13)
            x += 80

    def svg(self, title: str) -> str:
        data = "".join(f' data-{k}="{escape(v)}"' for k, v in self.attrs.items())
        frame = (
            f'<clipPath id="{self.clip}"><rect x="{LEFT}" y="{TOP}" '
            f'width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}"/></clipPath>'
        )
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="plot {self.cls}"{data} '
            f'viewBox="0 0 {W:.0f} {H:.0f}" font-family="{FONT}" role="img">'
            f"<title>{escape(title)}</title><defs>{frame}</defs>{''.join(self.parts)}</svg>"
        )


def brake_svg(p: BrakePlot, _: Gettext) -> str:
    n = len(p.left_n)
    t = np.arange(n) * p.period_s
    t_end = max(float(t[-1]), p.drag_window_s[1] + 0.5)
    top = max(float(p.left_n.max(initial=0)), float(p.right_n.max(initial=0)), 100.0)
    xticks = nice_ticks(0, t_end, 8)
    yticks = nice_ticks(0, top * 1.08, 5)
    attrs = {"axle": str(p.axle), "parking": str(p.parking).lower()}
    c = _Canvas((0, max(xticks[-1], t_end)), (0, yticks[-1]), "brake-plot", attrs)
    c.band(*p.drag_window_s, c.y0, c.y1, "#e6e6e6", _(N_("drag")))
    c.axes(xticks, yticks, _(N_("time t / s")), _(N_("braking force F / N")))
    c.polyline(t, p.left_n, LEFT_COLOUR, LEFT_DASH, "curve left")
    c.polyline(t, p.right_n, RIGHT_COLOUR, RIGHT_DASH, "curve right")
    if p.apply_s is not None:
        label = N_("APPLY PARKING BRAKE %(t)s s") if p.parking else N_("APPLY %(t)s s")
        c.vline(p.apply_s, _(label) % {"t": _fmt(round(p.apply_s, 2))})
    c.legend([(_(N_("left")), LEFT_COLOUR, LEFT_DASH), (_(N_("right")), RIGHT_COLOUR, RIGHT_DASH)])
    title = (
        _(N_("Axle %(n)s parking brake")) if p.parking else _(N_("Axle %(n)s service brake"))
    ) % {"n": p.axle}
    return c.svg(title)


def idle_svg(p: IdlePlot, _: Gettext) -> str:
    n = len(p.rpm)
    x = np.arange(1, n + 1, dtype=float)
    finite = p.rpm[np.isfinite(p.rpm)]
    hi = max(float(finite.max(initial=0)), p.band[1] if p.band else 0.0) * 1.1 + 50
    lo = min(float(finite.min(initial=0)), p.band[0] if p.band else hi) * 0.85
    xticks = nice_ticks(0, max(n, p.settle + p.measure), 6)
    yticks = nice_ticks(max(0.0, lo), hi, 5)
    c = _Canvas((0, xticks[-1]), (yticks[0], yticks[-1]), "idle-plot", {"phase": p.phase})
    c.band(0.5, p.settle + 0.5, c.y0, c.y1, "#eeeeee", _(N_("settle")))
    if p.band:
        c.band(c.x0, c.x1, p.band[0], p.band[1], "#cfe0f3", None, opacity=0.6)
    c.band(p.settle + 0.5, p.settle + p.measure + 0.5, c.y0, c.y1, "none", _(N_("measured")))
    c.axes(xticks, yticks, _(N_("reading (one a second)")), _(N_("engine speed / (r/min)")))
    if p.band:
        c.hline(p.band[1], _fmt(p.band[1]), "4 2")
        c.hline(p.band[0], _fmt(p.band[0]), "4 2")
    ok = np.isfinite(p.rpm)
    c.polyline(x[ok], p.rpm[ok], LEFT_COLOUR, "", "curve rpm")
    title = _(N_("High idle")) if p.phase == "high_idle" else _(N_("Idle"))
    return c.svg(title)


def peaks_svg(p: PeaksPlot, _: Gettext) -> str:
    top = max([*p.peaks, p.limit or 0.0, p.mean or 0.0, 0.1]) * 1.2
    yticks = nice_ticks(0, top, 5)
    n = len(p.peaks)
    c = _Canvas((0, n + 1), (0, yticks[-1]), "peaks-plot", {"peaks": str(n)})
    c.axes([], yticks, _(N_("measured acceleration")), _(N_("light absorption k / m⁻¹")))
    for i, k in enumerate(p.peaks, 1):
        x0, x1 = c.px(i - 0.3), c.px(i + 0.3)
        y = c.py(k)
        c.add(
            f'<rect class="peak" x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" '
            f'height="{c.py(0) - y:.1f}" fill="#9fb7da" stroke="#1f4e9c" stroke-width="0.8"/>'
        )
        c.text((x0 + x1) / 2, y - 4, _fmt(k), "middle", 13)
        c.text((x0 + x1) / 2, H - BOTTOM + 17, str(i), "middle", 13)
    if p.limit is not None:
        c.hline(p.limit, _(N_("limit %(k)s")) % {"k": _fmt(p.limit)}, "6 3")
    if p.mean is not None:
        c.hline(p.mean, _(N_("mean %(k)s")) % {"k": _fmt(p.mean)}, "2 2", "start")
    return c.svg(_(N_("Free acceleration peaks")))


def plot_svg(p: Plot, _: Gettext) -> str:
    if isinstance(p, BrakePlot):
        return brake_svg(p, _)
    if isinstance(p, IdlePlot):
        return idle_svg(p, _)
    return peaks_svg(p, _)
