"""Gradient flow through depth: the gradient norm of every layer of a deep network, step by step.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    stand_in_profile(depth, batchnorm, residual, steps)   -> (steps + 1, depth) gradient norms of the widget's
                                                             own stack of dense ReLU layers (no learning)
    log_scale(norms)                                      -> (low, high) decades spanning every finite norm
    render_flow_svg(row, low, high, title)                -> SVG: one bar per layer, log scale, output on top
    flow_report(row)                                      -> HTML sentence: first/last ratio, where it shrinks
    depth_flow(profile)                                   -> the widget (root DOM class `convlab-widget`)

`profile(depth, batchnorm, residual, steps)` is the notebook's function: it trains a network of the
student's layers for `steps` steps and returns the norms ||dL/dw|| of its layers, input first, before
each step. When it raises (a stub not written yet, a bug), the widget shows `stand_in_profile` and says so.
The stand-in knows nothing of the lesson's functions: its "batch norm" only divides each unit by its
batch standard deviation, treated as a constant (the forward rescaling, not the layer's full gradient).
"""
from __future__ import annotations

import html
import math
from typing import Callable

import numpy as np

from convlab.widgets._student import call_student

__all__ = ["stand_in_profile", "log_scale", "render_flow_svg", "flow_report", "depth_flow"]


def stand_in_profile(depth: int, batchnorm: bool, residual: bool, steps: int, width: int = 16,
                     batch: int = 32, seed: int = 0) -> np.ndarray:
    """Weight-gradient norms (steps + 1, depth) of `depth` dense ReLU layers of `width` units (He
    initialisation) on a fresh random batch per step, the loss being the sum of the last layer's outputs
    times a random upstream gradient. residual: h = h + layer(h) from the second layer on."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, math.sqrt(2.0 / width), (width, width)) for _ in range(depth)]
    norms = np.zeros((steps + 1, depth))
    for step in range(steps + 1):
        h = rng.normal(size=(batch, width))
        inputs, masks, scales = [], [], []
        for layer, w in enumerate(weights):
            inputs.append(h)
            z = h @ w.T
            scale = 1.0 / (z.std(axis=0) + 1e-5) if batchnorm else np.ones(width)
            scales.append(scale)
            masks.append(z > 0)
            out = np.maximum(z * scale, 0)
            h = h + out if residual and layer > 0 else out
        grad = rng.normal(size=h.shape)
        for layer in reversed(range(depth)):
            dz = grad * masks[layer] * scales[layer]
            norms[step, layer] = np.linalg.norm(dz.T @ inputs[layer])
            through = dz @ weights[layer]
            grad = grad + through if residual and layer > 0 else through
    return norms


def log_scale(norms: np.ndarray) -> tuple[int, int]:
    """Whole decades (low, high), low < high, covering every finite positive norm (one decade when none)."""
    values = np.asarray(norms, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return -1, 0
    low, high = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    return low, max(high, low + 1)


def render_flow_svg(row: np.ndarray, low: int, high: int, title: str = "", bar: int = 14) -> str:
    """One horizontal bar per layer, the output layer on top (the gradient flows downwards, as in
    backpropagation); bar length = log10(norm) between 10**low and 10**high; 0, NaN, inf drawn as marks."""
    width, left, right = 560, 70, 20
    span = width - left - right
    height = 40 + bar * len(row) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><text x="{left}" y="16" font-size="13">{html.escape(title)}</text>']
    for decade in range(low, high + 1):
        x = left + span * (decade - low) / (high - low)
        parts.append(f'<line x1="{x:.1f}" y1="26" x2="{x:.1f}" y2="{height - 20}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">1e{decade}</text>')
    for position, layer in enumerate(reversed(range(len(row)))):
        y, value = 30 + bar * position, float(row[layer])
        parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" text-anchor="end">layer {layer + 1}</text>')
        if not math.isfinite(value) or value <= 0:
            mark = "inf/NaN" if not math.isfinite(value) else "0"
            parts.append(f'<text x="{left + 4}" y="{y + bar - 4}" fill="#c00">{mark}</text>')
            continue
        fraction = min(max((math.log10(value) - low) / (high - low), 0.0), 1.0)
        parts.append(f'<rect x="{left}" y="{y + 1}" width="{max(fraction * span, 1):.1f}" height="{bar - 3}" '
                     f'fill="#3a7bd5"><title>layer {layer + 1}: {value:.3g}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def flow_report(row: np.ndarray) -> str:
    """One HTML sentence: the ratio of the first layer's gradient norm to the last layer's, and what it means."""
    first, last = float(row[0]), float(row[-1])
    if not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
        return "The gradient norms are not finite here: the network diverged."
    ratio = first / last
    verdicts = [(0.01, "vanishes on its way to the input"), (0.3, "shrinks on its way to the input"),
                (3.0, "reaches the input at about the size it left the output"), (100.0, "grows on its way to the input")]
    verdict = next((text for bound, text in verdicts if ratio < bound), "explodes on its way to the input")
    return f"First layer / last layer gradient norm: <b>{ratio:.3g}</b>: the gradient {verdict}."


def depth_flow(profile: Callable | None = None, max_steps: int = 20, depths: tuple[int, int] = (3, 25)):
    """The widget: training step (first), depth (odd: a stem plus two convs per residual block), batch-norm
    and residual toggles; log-scale gradient norm per layer, from the student's `profile` or the stand-in,
    on one axis that widens to every setting shown so far (never rescaled per setting)."""
    import ipywidgets as widgets

    step = widgets.IntSlider(value=0, min=0, max=max_steps, description="step")
    depth = widgets.IntSlider(value=9, min=depths[0], max=depths[1], step=2, description="depth")
    batchnorm = widgets.Checkbox(value=False, description="batch norm")
    residual = widgets.Checkbox(value=False, description="residual")
    picture, report = widgets.HTML(), widgets.HTML()
    profiles: dict[tuple, tuple[np.ndarray, str]] = {}

    def current() -> tuple[np.ndarray, str]:
        key = (depth.value, batchnorm.value, residual.value)
        if key not in profiles:
            norms, problem = call_student(profile, *key, max_steps)
            if problem is None and np.shape(norms) != (max_steps + 1, depth.value):
                problem = f"your profile returned shape {np.shape(norms)}, expected {(max_steps + 1, depth.value)}"
            if problem is not None:
                norms = stand_in_profile(*key, max_steps)
                source = (f"the widget's own stand-in (dense ReLU layers, no learning), because "
                          f"{html.escape(problem, quote=False)}")
            else:
                source = "your layers, trained step by step"
            profiles[key] = (np.asarray(norms, dtype=float), source)
        return profiles[key]

    def redraw(_=None):
        norms, source = current()
        # one axis for every setting shown so far, so toggling batch norm or residual compares bar lengths
        low, high = log_scale(np.concatenate([shown.ravel() for shown, _ in profiles.values()]))
        row = norms[step.value]
        kind = " + ".join(name for name, on in (("batch norm", batchnorm.value), ("residual", residual.value)) if on)
        picture.value = render_flow_svg(row, low, high, f"||dL/dw|| per layer, depth {depth.value}"
                                        f"{', ' + kind if kind else ', plain'}, step {step.value}")
        report.value = (f"<p>{flow_report(row)}<br>Showing {source}. The axis spans every setting shown so "
                        "far, so bars compare across settings.</p>")

    for control in (step, depth, batchnorm, residual):
        control.observe(redraw, names="value")
    redraw()
    root = widgets.VBox([widgets.HBox([step, depth]), widgets.HBox([batchnorm, residual]), picture, report])
    root.add_class("convlab-widget")
    return root
