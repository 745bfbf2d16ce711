"""The PDF report's charts, drawn with matplotlib as PNG: the page's charts (`detector.charts`,
SVG written directly) in print form, the same series, colours and marks.
"""

import io

import numpy as np

from detector.charts import EXPRESSION, FAKE, MUTED, REAL, SERIES  # the page's colours
from ml.results import EMOTIONS, top_emotion  # torch-free: safe in the web process


def _figure(width: float, height: float, left: float = 0.6, top: float = 0.3):
    """A figure of `width` x `height` inches with one axes, its margins fixed in inches (`left`
    for the y tick labels and label, `top` for a legend or title): measuring the labels'
    extents (`tight_layout`) was over half of drawing a chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=0.5 / height, top=1 - top / height)
    fig.patch.set_alpha(0)
    ax.set_facecolor("none")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(MUTED)
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.xaxis.label.set_color(MUTED)
    ax.yaxis.label.set_color(MUTED)
    return fig, ax


def _render(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return buffer.getvalue()


def timeline(
    times: list[float],
    scores: list[float | None],
    threshold: float,
    band: tuple[float, float],
) -> bytes:
    """P(fake) of each analysed frame over time, with the threshold and the uncertain band."""
    fig, ax = _figure(7.5, 2.4)
    ax.axhspan(band[0], band[1], color=MUTED, alpha=0.15, linewidth=0, label="uncertain band")
    ax.axhline(threshold, color=MUTED, linestyle="--", linewidth=1, label=f"threshold {threshold:.2f}")
    points = [(t, s) for t, s in zip(times, scores, strict=True) if s is not None]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color=SERIES, linewidth=1.4)
        ax.scatter(xs, ys, c=[FAKE if y >= threshold else REAL for y in ys], s=14, zorder=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(times[-1] if times else 1.0, 0.1))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    # Above the plot, not on it: the data may be anywhere between 0 and 1.
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, fontsize=7, frameon=False, labelcolor=MUTED)
    return _render(fig)


def histogram(scores: list[float], threshold: float) -> bytes:
    """How the per-face scores are spread, with the threshold."""
    fig, ax = _figure(3.8, 2.4, top=0.15)
    bins = np.linspace(0, 1, 21)
    counts, edges = np.histogram(scores, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = [FAKE if c >= threshold else REAL for c in centres]
    ax.bar(centres, counts, width=0.048, color=colours)
    ax.axvline(threshold, color=MUTED, linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(fake) per face")
    ax.set_ylabel("faces")
    return _render(fig)


def emotion_timeline(
    times: list[float],
    emotions: list[dict[str, float] | None],
    changes: list[dict],
) -> bytes:
    """The expression of each analysed frame over time: a dot on the row of its most likely
    expression, more opaque the surer the model is; abrupt changes marked by vertical lines."""
    fig, ax = _figure(7.5, 2.2, left=0.8)
    for change in changes:
        ax.axvspan(change["from_timestamp_s"], change["to_timestamp_s"], color=FAKE, alpha=0.18, linewidth=0)
    points = [(t, e) for t, e in zip(times, emotions, strict=True) if e]
    if points:
        xs = [t for t, _ in points]
        rows = [EMOTIONS.index(top_emotion(e)) for _, e in points]
        sure = [max(e.values()) for _, e in points]
        ax.plot(xs, rows, color=MUTED, linewidth=0.8, alpha=0.6)
        ax.scatter(xs, rows, s=22, c=EXPRESSION, alpha=[0.3 + 0.7 * p for p in sure], zorder=3)
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_ylim(-0.5, len(EMOTIONS) - 0.5)
    ax.set_xlim(0, max(times[-1] if times else 1.0, 0.1))
    ax.set_xlabel("time (s)")
    if changes:
        ax.set_title(f"{len(changes)} abrupt change(s) shaded", fontsize=8, color=FAKE, loc="right")
    return _render(fig)
