"""The result page's charts: inline SVG, written directly.

They are drawn by the worker when it stores an analysis (they belong to its record). matplotlib
took about 65 ms a chart on these 2 cores, 0.2 s of the 1.5 s a worker spends on a 20-frame
video; writing the elements takes a fraction of a millisecond. The charts scale to their box
(a viewBox), take the page's light or dark colours (their classes are styled in site.css; the
presentation attributes are the colours elsewhere), and every point or bar says what it is
on hover (`<title>`). The PDF report prints the same charts with matplotlib
(`detector/reports/figures.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from ml.results import EMOTIONS, top_emotion  # torch-free: safe in the web process

FAKE, REAL, MUTED, SERIES, EXPRESSION = "#d9534f", "#3c9d5d", "#8a93a0", "#4a7bd0", "#8e6bbf"
# The threshold's dashed line, in both charts that show it.
THRESHOLD_LINE = f'class="threshold" stroke="{MUTED}" stroke-width="1" stroke-dasharray="4 3"'


def ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round values from `low` to `high` (steps of 1, 2 or 5 times a power of ten), at most
    `most` of them."""
    span = high - low
    if span <= 0:
        return [low]
    step = 10 ** math.floor(math.log10(span / most))
    for multiple in (1, 2, 5, 10):
        if span / (step * multiple) <= most:
            step *= multiple
            break
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


class _Plot:
    """One plot area in an SVG of `width` x `height` units: maps data to positions, collects
    elements, draws the axes."""

    def __init__(
        self,
        width: int,
        height: int,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        left: int = 48,
        top: int = 24,
        right: int = 16,
        bottom: int = 38,
    ) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top  # y grows upwards
        self.x_range, self.y_range = x_range, y_range
        self.elements: list[str] = []

    def x(self, value: float) -> float:
        low, high = self.x_range
        return round(self.x0 + (value - low) / (high - low) * (self.x1 - self.x0), 2)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return round(self.y0 - (value - low) / (high - low) * (self.y0 - self.y1), 2)

    def add(self, element: str) -> None:
        self.elements.append(element)

    def text(self, x: float, y: float, words: str, anchor: str = "middle", css: str = "label", colour: str = MUTED):
        self.add(f'<text class="{css}" x="{x}" y="{y}" text-anchor="{anchor}" fill="{colour}">{escape(words)}</text>')

    def axes(
        self,
        x_ticks: Sequence[tuple[float, str]],
        y_ticks: Sequence[tuple[float, str]],
        x_label: str,
        y_label: str,
    ) -> None:
        axis = f'class="axis" stroke="{MUTED}" stroke-width="1"'
        self.add(f'<line {axis} x1="{self.x0}" y1="{self.y0}" x2="{self.x1}" y2="{self.y0}"/>')
        self.add(f'<line {axis} x1="{self.x0}" y1="{self.y0}" x2="{self.x0}" y2="{self.y1}"/>')
        for value, words in x_ticks:
            x = self.x(value)
            self.add(f'<line {axis} x1="{x}" y1="{self.y0}" x2="{x}" y2="{self.y0 + 4}"/>')
            self.text(x, self.y0 + 15, words, css="tick")
        for value, words in y_ticks:
            y = self.y(value)
            self.add(f'<line {axis} x1="{self.x0 - 4}" y1="{y}" x2="{self.x0}" y2="{y}"/>')
            self.text(self.x0 - 7, y + 3.5, words, anchor="end", css="tick")
        self.text((self.x0 + self.x1) / 2, self.height - 6, x_label)
        if y_label:
            middle = (self.y0 + self.y1) / 2
            self.add(
                f'<text class="label" x="12" y="{middle}" text-anchor="middle" fill="{MUTED}" '
                f'transform="rotate(-90 12 {middle})">{escape(y_label)}</text>'
            )

    def svg(self, description: str) -> bytes:
        label = escape(description, {'"': "&quot;"})
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img" aria-label="{label}" font-size="11">'
            f"<title>{escape(description)}</title>{''.join(self.elements)}</svg>"
        ).encode()


def _seconds(end: float) -> list[tuple[float, str]]:
    return [(t, f"{t:g}") for t in ticks(0, end, 8)]


def timeline(
    times: list[float],
    scores: list[float | None],
    threshold: float,
    band: tuple[float, float],
) -> bytes:
    """P(fake) of each analysed frame over time, with the threshold and the uncertain band."""
    end = max(times[-1] if times else 1.0, 0.1)
    plot = _Plot(750, 240, (0, end), (-0.02, 1.02))
    plot.axes(_seconds(end), [(v, f"{v:.1f}") for v in ticks(0, 1, 5)], "time (s)", "P(fake)")
    top, bottom = plot.y(max(band)), plot.y(min(band))
    plot.add(
        f'<rect class="band" x="{plot.x0}" y="{top}" width="{plot.x1 - plot.x0}" height="{round(bottom - top, 2)}" '
        f'fill="{MUTED}" fill-opacity="0.15"/>'
    )
    y = plot.y(threshold)
    plot.add(f'<line {THRESHOLD_LINE} x1="{plot.x0}" y1="{y}" x2="{plot.x1}" y2="{y}"/>')
    points = [(t, s) for t, s in zip(times, scores, strict=True) if s is not None]
    if points:
        path = " ".join(f"{plot.x(t)},{plot.y(s)}" for t, s in points)
        plot.add(f'<polyline class="series" points="{path}" fill="none" stroke="{SERIES}" stroke-width="1.5"/>')
        for t, s in points:
            kind, colour = ("fake", FAKE) if s >= threshold else ("real", REAL)
            plot.add(
                f'<circle class="{kind}" cx="{plot.x(t)}" cy="{plot.y(s)}" r="3.5" fill="{colour}">'
                f"<title>{t:.2f} s: P(fake) {s:.2f}</title></circle>"
            )
    # The legend above the plot, not on it: the data may be anywhere between 0 and 1.
    legend_y = plot.y1 - 10
    plot.add(
        f'<rect class="band" x="{plot.x1 - 250}" y="{legend_y - 8}" width="14" height="9" '
        f'fill="{MUTED}" fill-opacity="0.15"/>'
    )
    plot.text(plot.x1 - 232, legend_y, "uncertain band", anchor="start")
    mark_y = legend_y - 3.5
    plot.add(f'<line {THRESHOLD_LINE} x1="{plot.x1 - 130}" y1="{mark_y}" x2="{plot.x1 - 112}" y2="{mark_y}"/>')
    plot.text(plot.x1 - 106, legend_y, f"threshold {threshold:.2f}", anchor="start")
    return plot.svg(f"P(fake) of {len(points)} analysed frames over {end:.1f} s; threshold {threshold:.2f}")


def histogram(scores: list[float], threshold: float) -> bytes:
    """How the per-face scores are spread, in 20 bins, with the threshold."""
    bins = 20
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score * bins)))] += 1
    tallest = max(counts, default=0) or 1
    y_ticks = [v for v in ticks(0, tallest, 5) if v == int(v)]
    plot = _Plot(380, 240, (0, 1), (0, tallest * 1.05))
    plot.axes([(v, f"{v:.1f}") for v in ticks(0, 1, 5)], [(v, f"{v:g}") for v in y_ticks], "P(fake) per face", "faces")
    width = plot.x(0.048) - plot.x(0)
    for i, count in enumerate(counts):
        if not count:
            continue
        centre = (i + 0.5) / bins
        kind, colour = ("fake", FAKE) if centre >= threshold else ("real", REAL)
        top = plot.y(count)
        plot.add(
            f'<rect class="{kind}" x="{round(plot.x(centre) - width / 2, 2)}" y="{top}" width="{round(width, 2)}" '
            f'height="{round(plot.y0 - top, 2)}" fill="{colour}"><title>P(fake) {i / bins:.2f}-{(i + 1) / bins:.2f}: '
            f"{count} face{'s' if count != 1 else ''}</title></rect>"
        )
    x = plot.x(threshold)
    plot.add(f'<line {THRESHOLD_LINE} x1="{x}" y1="{plot.y0}" x2="{x}" y2="{plot.y1}"/>')
    return plot.svg(f"P(fake) of {len(scores)} faces in 20 bins; threshold {threshold:.2f}")


def emotion_timeline(
    times: list[float],
    emotions: list[dict[str, float] | None],
    changes: list[dict],
) -> bytes:
    """The expression of each analysed frame over time: a dot on the row of its most likely
    expression, more opaque the surer the model is; abrupt changes shaded."""
    end = max(times[-1] if times else 1.0, 0.1)
    plot = _Plot(750, 220, (0, end), (-0.5, len(EMOTIONS) - 0.5), left=72)
    plot.axes(_seconds(end), list(enumerate(EMOTIONS)), "time (s)", "")
    for change in changes:
        left, right = plot.x(change["from_timestamp_s"]), plot.x(change["to_timestamp_s"])
        plot.add(
            f'<rect class="change" x="{left}" y="{plot.y1}" width="{round(max(right - left, 1), 2)}" '
            f'height="{plot.y0 - plot.y1}" fill="{FAKE}" fill-opacity="0.18"><title>'
            f"{escape(change['from_emotion'])} to {escape(change['to_emotion'])} at {change['to_timestamp_s']:.2f} s"
            f"</title></rect>"
        )
    points = [(t, e) for t, e in zip(times, emotions, strict=True) if e]
    if points:
        path = " ".join(f"{plot.x(t)},{plot.y(EMOTIONS.index(top_emotion(e)))}" for t, e in points)
        plot.add(
            f'<polyline class="trace" points="{path}" fill="none" stroke="{MUTED}" stroke-width="0.8" '
            f'stroke-opacity="0.6"/>'
        )
        for t, e in points:
            name = top_emotion(e)
            sure = max(e.values())
            plot.add(
                f'<circle class="expression" cx="{plot.x(t)}" cy="{plot.y(EMOTIONS.index(name))}" r="4" '
                f'fill="{EXPRESSION}" fill-opacity="{0.3 + 0.7 * sure:.2f}"><title>{t:.2f} s: {name} {sure:.0%}'
                f"</title></circle>"
            )
    if changes:
        plot.text(
            plot.x1, plot.y1 - 8, f"{len(changes)} abrupt change(s) shaded", anchor="end", css="alert", colour=FAKE
        )
    return plot.svg(f"The most likely expression in {len(points)} analysed frames; {len(changes)} abrupt change(s)")
