"""Pooling explorer for lesson 02: a window slides over a small input; forward mode shows each output
cell being computed, backward mode shows where each upstream gradient lands in dx, accumulating.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    window_starts(size, pool, stride)          first row (or column) of each window along one axis
    window_value(window, kind)                 what one window pools to (max or mean)
    window_gradient(window, upstream, kind)    where one window sends its upstream gradient
    forward_frame(x, pool, stride, position, kind, forward)         the state after `position` windows
    backward_frame(x, dy, pool, stride, position, kind, backward)   the same for the backward pass
    render_frame(frame)                        the frame as HTML/SVG
    pooling_widget(maxpool2d_forward=..., ...) the widget (root DOM class `convlab-widget`)

The student's functions take and return (B, C, H, W) arrays; the widget calls them on one 2-D input
as shape (1, 1, H, W). When one raises NotImplementedError (or fails), the frame is built window by
window with `window_value` / `window_gradient` instead, and the frame's `source` says so.
Coordinates: window (i, j) covers rows stride*i + m and columns stride*j + n, 0 <= m, n < pool.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

import numpy as np

from convlab.widgets._grid import CELL, grid_cells
from convlab.widgets._student import call_student, student_name

KINDS = ("max", "avg")
WINDOW, MAXIMUM, OUTPUT, OUTLINE, TOUCHED = "#bfdbfe", "#60a5fa", "#fdba74", "#2563eb", "#bbf7d0"


def window_starts(size: int, pool: int, stride: int) -> list[int]:
    """First row (or column) of each pooling window along an axis of length `size`: 0, stride, ..."""
    return list(range(0, size - pool + 1, stride))


def demo_input(size: int, seed: int = 0) -> np.ndarray:
    """(size, size) whole numbers 0..9 as floats: easy to read, and equal values (ties) occur."""
    return np.random.default_rng(seed).integers(0, 10, size=(size, size)).astype(float)


def demo_upstream(rows: int, cols: int) -> np.ndarray:
    """dy = 1, 2, 3, ... in row-major order, so every window's gradient can be recognised in dx."""
    return np.arange(1.0, rows * cols + 1).reshape(rows, cols)


def window_value(window: np.ndarray, kind: str) -> float:
    """The pooled value of one (pool, pool) window: its maximum or its mean."""
    return float(window.max() if kind == "max" else window.mean())


def window_gradient(window: np.ndarray, upstream: float, kind: str) -> np.ndarray:
    """(pool, pool) gradient one window sends back: max -> all of `upstream` to the first maximum in
    row-major order; avg -> upstream / pool**2 to every cell."""
    if kind == "avg":
        return np.full(window.shape, upstream / window.size)
    grad = np.zeros(window.shape)
    grad.flat[int(np.argmax(window))] = upstream
    return grad


@dataclass
class Frame:
    """What the explorer shows after the window at `position` (row-major over windows) has been used."""
    mode: str               # "forward" or "backward"
    kind: str               # "max" or "avg"
    pool: int
    stride: int
    position: int
    cell: tuple[int, int]   # output cell (i, j) of the current window
    x: np.ndarray           # (H, W) input
    out: np.ndarray         # forward: y, NaN where not computed yet; backward: dy
    dx: np.ndarray | None   # backward: dx accumulated over windows 0..position
    local: np.ndarray       # (pool, pool) current window's gradient (backward) or its winner mask (forward, max)
    value: float            # forward: y[i, j]; backward: dy[i, j]
    source: str             # whose code computed the numbers
    note: str = ""          # a disagreement with the window's own value, or why the fallback is used

    @property
    def top_left(self) -> tuple[int, int]:
        return self.cell[0] * self.stride, self.cell[1] * self.stride


def _student_result(func: Callable | None, args: tuple, shape: tuple, pool: int, stride: int) -> tuple[np.ndarray | None, str]:
    """func(*args, pool=, stride=)[0, 0], or None and the reason the built-in logic is used instead."""
    if func is None:
        return None, ""
    result, problem = call_student(func, *(a[None, None] for a in args), pool=pool, stride=stride)
    if problem is not None:
        return None, problem
    if not isinstance(result, np.ndarray) or result.shape != (1, 1, *shape):
        got = getattr(result, "shape", type(result).__name__)
        return None, f"your {student_name(func)} returned {got}, expected shape {(1, 1, *shape)}"
    return result[0, 0].astype(float), ""


def _grid(x: np.ndarray, pool: int, stride: int) -> tuple[list[int], list[int]]:
    return window_starts(x.shape[0], pool, stride), window_starts(x.shape[1], pool, stride)


def forward_frame(x: np.ndarray, pool: int, stride: int, position: int, kind: str,
                  forward: Callable | None = None) -> Frame:
    """Forward state after windows 0..position: y filled up to the current cell (NaN after it)."""
    tops, lefts = _grid(x, pool, stride)
    i, j = divmod(position, len(lefts))
    y, note = _student_result(forward, (x,), (len(tops), len(lefts)), pool, stride)
    window = x[tops[i]:tops[i] + pool, lefts[j]:lefts[j] + pool]
    if y is not None:
        source = f"your {student_name(forward)}"
        if not np.isclose(y[i, j], window_value(window, kind)):
            note = f"your function gives {y[i, j]:.4g} here, but the window's {kind} is {window_value(window, kind):.4g}"
    else:
        source = "the explorer's window-by-window logic"
        y = np.array([[window_value(x[t:t + pool, l:l + pool], kind) for l in lefts] for t in tops])
    shown = np.full(y.shape, np.nan)
    shown.flat[:position + 1] = y.flat[:position + 1]
    local = window_gradient(window, 1.0, "max") if kind == "max" else np.zeros(window.shape)
    return Frame("forward", kind, pool, stride, position, (i, j), x, shown, None, local,
                 float(y[i, j]), source, note)


def backward_frame(x: np.ndarray, dy: np.ndarray, pool: int, stride: int, position: int, kind: str,
                   backward: Callable | None = None) -> Frame:
    """Backward state after windows 0..position: dx holds their gradients summed (later dy set to 0),
    local is what the current window adds."""
    tops, lefts = _grid(x, pool, stride)
    i, j = divmod(position, len(lefts))
    so_far, current = np.zeros(dy.shape), np.zeros(dy.shape)
    so_far.flat[:position + 1] = dy.flat[:position + 1]
    current[i, j] = dy[i, j]
    dx, note = _student_result(backward, (so_far, x), x.shape, pool, stride)
    added, _ = _student_result(backward, (current, x), x.shape, pool, stride) if dx is not None else (None, "")
    window_of = {"rows": slice(tops[i], tops[i] + pool), "cols": slice(lefts[j], lefts[j] + pool)}
    if dx is not None and added is not None:
        source = f"your {student_name(backward)}"
        local = added[window_of["rows"], window_of["cols"]]
    else:
        source = "the explorer's window-by-window logic"
        dx = np.zeros(x.shape)
        for k in range(position + 1):
            r, c = divmod(k, len(lefts))
            rows, cols = slice(tops[r], tops[r] + pool), slice(lefts[c], lefts[c] + pool)
            dx[rows, cols] += window_gradient(x[rows, cols], dy[r, c], kind)
        local = window_gradient(x[window_of["rows"], window_of["cols"]], dy[i, j], kind)
    return Frame("backward", kind, pool, stride, position, (i, j), x, dy, dx, local, float(dy[i, j]), source, note)


def _fmt(value: float) -> str:
    if np.isnan(value):
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def grid_svg(values: np.ndarray, title: str, fills: dict | None = None,
             box: tuple[int, int, int] | None = None, bold: set | None = None, faint: set | None = None) -> str:
    """An SVG grid of numbers; fills maps (row, col) -> colour, box = (top, left, size) outlines a window,
    bold and faint are sets of (row, col) whose numbers are drawn bold or grey."""
    rows, cols = values.shape
    width = max(cols * CELL + 4, 8 * len(title) + 8)   # wide enough for the title, not just the grid
    boxes = [(box[0], box[1], box[2], box[2], OUTLINE)] if box else []
    return (f"<svg width='{width}' height='{rows * CELL + 24}' font-family='monospace' font-size='11'>"
            f"<text x='2' y='13' font-size='12' font-weight='bold'>{html.escape(title)}</text>"
            + grid_cells(values, _fmt, 20, fills, boxes, bold or set(), faint) + "</svg>")


def _describe(frame: Frame) -> str:
    (i, j), (top, left), pool = frame.cell, frame.top_left, frame.pool
    where = f"window ({i}, {j}) covers rows {top}..{top + pool - 1}, columns {left}..{left + pool - 1}"
    if frame.mode == "forward":
        op = "max" if frame.kind == "max" else "mean"
        return f"{where}: y[{i}, {j}] = {op} of the window = {_fmt(frame.value)}"
    if frame.kind == "avg":
        return (f"{where}: dy[{i}, {j}] = {_fmt(frame.value)} is spread as {_fmt(frame.value)}/{pool * pool} = "
                f"{_fmt(frame.value / pool**2)} to each of its {pool * pool} cells")
    receivers = np.argwhere(frame.local != 0)
    if len(receivers) != 1:
        return (f"{where}: dy[{i}, {j}] = {_fmt(frame.value)} reached {len(receivers)} cells of the window; "
                "max pooling sends it whole to one cell, the first maximum")
    m, n = receivers[0]
    return (f"{where}: dy[{i}, {j}] = {_fmt(frame.value)} goes whole to x[{top + m}, {left + n}], "
            "the window's first maximum (row-major)")


def render_frame(frame: Frame) -> str:
    """HTML for one frame: the input with the window, then y (forward) or dy and dx (backward)."""
    top, left = frame.top_left
    pool = frame.pool
    marked = {(top + m, left + n) for m, n in zip(*np.nonzero(frame.local))}
    fills = {(top + m, left + n): WINDOW for m in range(pool) for n in range(pool)}
    if frame.kind == "max":
        fills.update(dict.fromkeys(marked, MAXIMUM))
    svgs = [grid_svg(frame.x, "x (input)", fills, (top, left, pool), bold=marked)]
    if frame.mode == "forward":
        svgs.append(grid_svg(frame.out, f"y = {frame.kind}pool(x)", {frame.cell: OUTPUT}))
    else:
        waiting = {divmod(k, frame.out.shape[1]) for k in range(frame.position + 1, frame.out.size)}
        svgs.append(grid_svg(frame.out, "dy (upstream)", {frame.cell: OUTPUT}, faint=waiting))
        svgs.append(grid_svg(frame.dx, "dx so far", {cell: TOUCHED for cell in marked}, (top, left, pool)))
    lines = [f"<div><b>showing:</b> {html.escape(frame.source)}</div>"]
    if frame.note:
        lines.append(f"<div style='color:#92400e'>{html.escape(frame.note)}</div>")
    lines.append(f"<div style='font-family:monospace'>{html.escape(_describe(frame))}</div>")
    row = "<div style='display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap'>" + "".join(svgs) + "</div>"
    return f"<div class='convlab-pooling'>{row}{''.join(lines)}</div>"


def pooling_widget(maxpool2d_forward: Callable | None = None, maxpool2d_backward: Callable | None = None,
                   avgpool2d_forward: Callable | None = None, avgpool2d_backward: Callable | None = None):
    """The pooling explorer, running the given functions (signatures as in lesson 02) where they work."""
    import ipywidgets as widgets

    funcs = {("forward", "max"): maxpool2d_forward, ("backward", "max"): maxpool2d_backward,
             ("forward", "avg"): avgpool2d_forward, ("backward", "avg"): avgpool2d_backward}

    def slider(description, lo, hi, value):
        return widgets.IntSlider(value=value, min=lo, max=hi, description=description,
                                 layout=widgets.Layout(width="260px"))

    size, pool, stride, position = slider("input size", 4, 8, 6), slider("pool", 1, 4, 2), \
        slider("stride", 1, 4, 2), slider("position", 0, 8, 0)
    play = widgets.Play(min=0, max=8, interval=900, description="Play")
    widgets.jslink((play, "value"), (position, "value"))
    mode = widgets.ToggleButtons(options=["forward", "backward"], value="forward")
    kind = widgets.ToggleButtons(options=list(KINDS), value="max")
    view = widgets.HTML()

    def refresh(_=None):
        n_windows = len(window_starts(size.value, pool.value, stride.value)) ** 2
        play.max = position.max = n_windows - 1     # clamps position, which calls refresh again
        x = demo_input(size.value)
        func = funcs[(mode.value, kind.value)]
        if mode.value == "forward":
            frame = forward_frame(x, pool.value, stride.value, position.value, kind.value, func)
        else:
            side = len(window_starts(size.value, pool.value, stride.value))
            frame = backward_frame(x, demo_upstream(side, side), pool.value, stride.value, position.value,
                                   kind.value, func)
        view.value = render_frame(frame)

    for control in (size, pool, stride, position, mode, kind):
        control.observe(refresh, names="value")
    refresh()
    root = widgets.VBox([widgets.HBox([mode, kind]), widgets.HBox([size, pool, stride]),
                         widgets.HBox([play, position]), view])
    root.add_class("convlab-widget")
    return root
