"""The report's plots, as PNG data URLs to embed in a page (matplotlib's object API: no pyplot, no
display, nothing global changed)."""
from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.figure import Figure


def _data_url(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def histogram(counts: dict[float, int], max_score: float, title: str) -> str:
    """Bars of how many submissions got each score (one bar per point, fractions rounded down)."""
    fig = Figure(figsize=(7, 2.6))
    ax = fig.subplots()
    edges = np.arange(0, max(max_score, 1) + 2) - 0.5
    scores = np.repeat(list(counts), list(counts.values())) if counts else np.array([])
    ax.hist(np.floor(scores), bins=edges, color="#4c72b0", rwidth=0.85)
    ax.set(xlabel="score", ylabel="submissions", title=title, xlim=(edges[0], edges[-1]))
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _data_url(fig)


def score_distribution(values: list[float], threshold: float, title: str) -> str:
    """Histogram of pair similarity scores with the instructor's threshold marked."""
    fig = Figure(figsize=(7, 2.6))
    ax = fig.subplots()
    ax.hist(values, bins=np.linspace(0, 1, 41), color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
    ax.set(xlabel="similarity", ylabel="pairs", title=title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return _data_url(fig)


def bar_chart(labels: list[str], series: dict[str, list[float]], title: str) -> str:
    """Horizontal grouped bars, one group per label (a share from 0 to 1 per series)."""
    fig = Figure(figsize=(7, 0.45 * max(len(labels), 2) + 1))
    ax = fig.subplots()
    y = np.arange(len(labels))
    height = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.barh(y + i * height, values, height, label=name)
    ax.set_yticks(y + height * (len(series) - 1) / 2, labels)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), title=title)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(loc="lower right", fontsize="small")
    return _data_url(fig)
