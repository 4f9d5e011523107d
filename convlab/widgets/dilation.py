"""The dilation pyramid: which past inputs reach one output of a stack of causal dilated convolutions.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    dilation_schedule("powers of 2", 4)            -> [1, 2, 4, 8]
    trace_pyramid(kernel_size, dilations, t_out)    -> Pyramid(units, edges): the units of every layer
                                                       that reach output t_out, and the connections used
    lags_reached(kernel_size, dilations)            -> sorted lags s such that x[t - s] reaches y[t]
    receptive_field_by_traversal(kernel_size, dilations) -> (span, count) of those lags
    render_pyramid_svg(kernel_size, dilations, t_out, n_steps) -> SVG string
    receptive_field_report(kernel_size, dilations, t_out, receptive_field) -> HTML sentence(s)
    dilation_pyramid(receptive_field)              -> the widget (root DOM class `convlab-widget`)

Layer l (1..L) applies a causal convolution with kernel size K and dilation d_l: unit t of layer l
reads units t - (K-1-k)*d_l, k = 0..K-1, of layer l - 1 (layer 0 is the input, times < 0 are the
zero padding). The traversal walks these connections backwards from the output, so it is an
independent check of the formula R = 1 + (K-1) * sum(d_l) the lesson derives.
"""
from __future__ import annotations

import html
from typing import Callable, NamedTuple

from convlab.widgets._student import call_student

__all__ = ["SCHEDULES", "dilation_schedule", "Pyramid", "trace_pyramid", "lags_reached",
           "receptive_field_by_traversal", "render_pyramid_svg", "receptive_field_report", "dilation_pyramid"]

SCHEDULES = ("all 1s", "powers of 2", "custom growth")


def dilation_schedule(kind: str, n_layers: int, growth: int = 3) -> list[int]:
    """Dilations d_1..d_L: all 1 (a plain stack), 2**(l-1), or growth**(l-1)."""
    base = {"all 1s": 1, "powers of 2": 2, "custom growth": growth}.get(kind)
    if base is None:
        raise ValueError(f"unknown schedule {kind!r}: choose one of {SCHEDULES}")
    return [base ** layer for layer in range(n_layers)]


class Pyramid(NamedTuple):
    units: list[list[int]]                  # units[l]: sorted times of layer l that reach the output (0 = input)
    edges: list[list[tuple[int, int]]]      # edges[l]: (time in layer l, time in layer l + 1) connections used


def trace_pyramid(kernel_size: int, dilations: list[int], t_out: int) -> Pyramid:
    """Walk back from output unit t_out through every layer; units at times < 0 are padding and dropped."""
    frontier = {t_out}
    units, edges = [[t_out]], []
    for dilation in reversed(dilations):
        used = {(t - (kernel_size - 1 - k) * dilation, t) for t in frontier for k in range(kernel_size)}
        used = {(source, target) for source, target in used if source >= 0}
        frontier = {source for source, _ in used}
        units.insert(0, sorted(frontier))
        edges.insert(0, sorted(used))
    return Pyramid(units, edges)


def lags_reached(kernel_size: int, dilations: list[int]) -> list[int]:
    """Every lag s >= 0 such that input x[t - s] reaches output y[t] (far from the start, no padding)."""
    lags = {0}
    for dilation in dilations:
        lags = {lag + (kernel_size - 1 - k) * dilation for lag in lags for k in range(kernel_size)}
    return sorted(lags)


def receptive_field_by_traversal(kernel_size: int, dilations: list[int]) -> tuple[int, int]:
    """(span, count): the window of past inputs an output sees (oldest to newest), and how many of
    them it really reaches. count < span when dilations grow faster than the kernel fills the gaps."""
    lags = lags_reached(kernel_size, dilations)
    return max(lags) + 1, len(lags)


# ---- rendering -----------------------------------------------------------------------------------
_LEFT, _TOP, _STEP, _ROW, _RADIUS = 120, 16, 11, 46, 4
_REACHED, _OUTPUT, _IDLE = "#e6550d", "#a50f15", "#d9d9d9"


def _x(t: int) -> float:
    return _LEFT + t * _STEP


def render_pyramid_svg(kernel_size: int, dilations: list[int], t_out: int, n_steps: int) -> str:
    """SVG of n_steps time steps per layer, input at the bottom; reached units and edges highlighted."""
    pyramid, n_layers = trace_pyramid(kernel_size, dilations, t_out), len(dilations)
    width, height = _LEFT + n_steps * _STEP + 10, _TOP + n_layers * _ROW + 34

    def y(layer: int) -> float:
        return _TOP + (n_layers - layer) * _ROW

    parts = [f'<svg class="convlab-dilation-pyramid" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">']
    for layer, layer_edges in enumerate(pyramid.edges):
        parts += [f'<line x1="{_x(s)}" y1="{y(layer)}" x2="{_x(t)}" y2="{y(layer + 1)}" stroke="{_REACHED}" '
                  f'stroke-opacity="0.55" stroke-width="1.2"/>' for s, t in layer_edges]
    for layer in range(n_layers + 1):
        name = "input x" if layer == 0 else "output y" if layer == n_layers else f"layer {layer}"
        label = name if layer == 0 else f"{name} (d={dilations[layer - 1]})"
        parts.append(f'<text x="4" y="{y(layer) + 4}">{label}</text>')
        reached = set(pyramid.units[layer])
        for t in range(n_steps):
            colour = (_OUTPUT if layer == n_layers else _REACHED) if t in reached else _IDLE
            parts.append(f'<circle cx="{_x(t)}" cy="{y(layer)}" r="{_RADIUS}" fill="{colour}"/>')
    for t in range(0, n_steps, 8):
        parts.append(f'<text x="{_x(t)}" y="{height - 8}" text-anchor="middle">t={t}</text>')
    parts.append("</svg>")
    return "".join(parts)


def receptive_field_report(kernel_size: int, dilations: list[int], t_out: int,
                           receptive_field: Callable | None = None) -> str:
    """One short HTML paragraph: R from the student's receptive_field (or the traversal when it is not
    implemented, saying so), a warning when the two disagree, gaps in the window, and padding used."""
    span, count = receptive_field_by_traversal(kernel_size, dilations)
    real = sum(lag <= t_out for lag in lags_reached(kernel_size, dilations))   # x[t_out - lag] with t >= 0
    lines = []
    student, problem = None, "no receptive_field function was given"
    if receptive_field is not None:
        student, error = call_student(receptive_field, kernel_size, list(dilations))
        problem = error or problem
    if student is None:     # the names in `problem` may hold < and > (a lambda's is "<lambda>")
        lines.append(f"Receptive field R = <b>{span}</b> (the widget's own count by graph traversal; "
                     f"{html.escape(problem, quote=False)}).")
    else:
        lines.append(f"Receptive field R = <b>{student}</b> (computed by your receptive_field).")
        if student != span:
            lines.append(f"<b>Disagreement:</b> the graph traversal finds R = {span} "
                         f"for K = {kernel_size}, dilations {list(dilations)}.")
    if count < span:
        lines.append(f"Only {count} of those {span} past inputs are reached: the dilations grow faster than "
                     "the kernel fills the gaps.")
    if span > t_out + 1:
        reached = f", and {count - real} of the {count} it reaches" if count < span else ""
        lines.append(f"The window starts before t = 0: {span - t_out - 1} of its {span} inputs are zero padding"
                     f"{reached}, so y[{t_out}] depends on {real} real inputs (drawn above).")
    return "<br>".join(lines)


def dilation_pyramid(receptive_field: Callable | None = None, n_steps: int = 64):
    """The widget: sliders for kernel size, depth, dilation schedule and output time; `receptive_field`
    is the student's function (used for the printed R; the widget falls back to its own count)."""
    import ipywidgets as widgets

    kernel = widgets.IntSlider(value=3, min=1, max=4, description="kernel K")
    layers = widgets.IntSlider(value=4, min=1, max=6, description="layers L")
    schedule = widgets.Dropdown(options=SCHEDULES, value="powers of 2", description="dilations")
    growth = widgets.IntSlider(value=3, min=2, max=4, description="growth", disabled=True)
    t_out = widgets.IntSlider(value=n_steps - 1, min=0, max=n_steps - 1, description="output t")
    picture, report = widgets.HTML(), widgets.HTML()

    def redraw(_=None):
        growth.disabled = schedule.value != "custom growth"
        dilations = dilation_schedule(schedule.value, layers.value, growth.value)
        picture.value = render_pyramid_svg(kernel.value, dilations, t_out.value, n_steps)
        report.value = (f"<p>K = {kernel.value}, dilations {dilations}, output y[{t_out.value}]:<br>"
                        + receptive_field_report(kernel.value, dilations, t_out.value, receptive_field) + "</p>")

    for control in (kernel, layers, schedule, growth, t_out):
        control.observe(redraw, names="value")
    redraw()
    root = widgets.VBox([widgets.HBox([kernel, layers]), widgets.HBox([schedule, growth]), t_out, picture, report])
    root.add_class("convlab-widget")
    return root
