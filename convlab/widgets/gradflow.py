"""Gradient-flow widget for lesson 03: where every entry of dx and dw comes from.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    dx_terms(dy, w, stride, pad, b, ci, r, c)   terms dy[b, co, i, j] * w[co, ci, m, n] of dx[b, ci, r, c]
    dw_terms(dy, x, stride, pad, co, ci, m, n)  terms dy[b, co, i, j] * x_pad[b, ci, u, v] of dw[co, ci, m, n]
    full_conv_plan(dy2d, w2d, stride, pad, x_hw)  the padded, dilated dy and the rotated kernel (one channel)
    full_conv_frame(plan, step)                 the rotated kernel at one position of dx_pad, and its dot product
    run_backward(backward, dy, x, w, stride, pad)  the student's gradients, or None and why not
    gradflow_widget(backward)                   the widget (root DOM class `convlab-widget`)

Coordinates: (i, j) output positions, (m, n) kernel taps, (u, v) rows/columns of the padded input,
(r, c) = (u - pad, v - pad) of x itself; window (i, j) covers u = stride*i + m, v = stride*j + n.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

import numpy as np

from convlab.widgets._grid import CELL, grid_cells
from convlab.widgets._student import call_student, student_name
from convlab.widgets.conv_slider import dilated_output_size

GREY, BLUE, GREEN, ORANGE, LILAC = "#e5e7eb", "#bfdbfe", "#bbf7d0", "#fdba74", "#ede9fe"


@dataclass(frozen=True)
class Term:
    """One term of a gradient sum: the upstream gradient dy[b, co, i, j] times the factor it multiplies."""
    b: int
    co: int
    i: int
    j: int
    m: int
    n: int
    dy: float
    factor: float        # w[co, ci, m, n] in a dx sum, x_pad[b, ci, stride*i + m, stride*j + n] in a dw sum

    @property
    def value(self) -> float:
        return self.dy * self.factor


def dx_terms(dy: np.ndarray, w: np.ndarray, stride: int, pad: int, b: int, ci: int, r: int, c: int) -> list[Term]:
    """Every output (co, i, j) whose window covers x[b, ci, r, c], with the tap (m, n) it goes through.

    dy (B, C_out, H_out, W_out), w (C_out, C_in, K_h, K_w). Their sum is dx[b, ci, r, c]; an empty
    list means no window reaches the pixel (its gradient is 0).
    """
    _, C_out, H_out, W_out = dy.shape
    _, _, K_h, K_w = w.shape
    u, v = r + pad, c + pad
    return [Term(b, co, i, j, u - stride * i, v - stride * j, float(dy[b, co, i, j]),
                 float(w[co, ci, u - stride * i, v - stride * j]))
            for co in range(C_out) for i in range(H_out) for j in range(W_out)
            if 0 <= u - stride * i < K_h and 0 <= v - stride * j < K_w]


def dw_terms(dy: np.ndarray, x: np.ndarray, stride: int, pad: int, co: int, ci: int, m: int, n: int) -> list[Term]:
    """The pixel tap (m, n) saw in every window (b, i, j), weighted by that window's upstream gradient.

    dy (B, C_out, H_out, W_out), x (B, C_in, H, W). Their sum is dw[co, ci, m, n].
    """
    B, _, H_out, W_out = dy.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return [Term(b, co, i, j, m, n, float(dy[b, co, i, j]), float(x_pad[b, ci, stride * i + m, stride * j + n]))
            for b in range(B) for i in range(H_out) for j in range(W_out)]


def term_sum(terms: list[Term]) -> float:
    return float(sum(t.value for t in terms))


@dataclass(frozen=True)
class FullConvPlan:
    """dx_pad of one channel as the rotated kernel sliding over the padded, dilated dy.

    grid: dy dilated by stride and padded by K-1, kinds: 'dy' | 'dilation' | 'pad' per cell of grid,
    kernel: rot180(w2d), covered: (rows, cols) of dx_pad some window reached, x_pad_hw: dx_pad's shape.
    """
    grid: np.ndarray
    kinds: np.ndarray
    kernel: np.ndarray
    covered: tuple[int, int]
    x_pad_hw: tuple[int, int]

    @property
    def steps(self) -> int:
        return self.covered[0] * self.covered[1]


def full_conv_plan(dy2d: np.ndarray, w2d: np.ndarray, stride: int, pad: int, x_hw: tuple[int, int]) -> FullConvPlan:
    """The plan for dy2d (H_out, W_out) and w2d (K_h, K_w) of a layer whose input is x_hw = (H, W)."""
    (H_out, W_out), (K_h, K_w) = dy2d.shape, w2d.shape
    rows, cols = (H_out - 1) * stride + 1, (W_out - 1) * stride + 1
    grid = np.zeros((rows + 2 * (K_h - 1), cols + 2 * (K_w - 1)))
    kinds = np.full(grid.shape, "pad", dtype=object)
    kinds[K_h - 1:K_h - 1 + rows, K_w - 1:K_w - 1 + cols] = "dilation"
    grid[K_h - 1:K_h - 1 + rows:stride, K_w - 1:K_w - 1 + cols:stride] = dy2d
    kinds[K_h - 1:K_h - 1 + rows:stride, K_w - 1:K_w - 1 + cols:stride] = "dy"
    return FullConvPlan(grid, kinds, w2d[::-1, ::-1], (rows + K_h - 1, cols + K_w - 1),
                        (x_hw[0] + 2 * pad, x_hw[1] + 2 * pad))


def full_conv_frame(plan: FullConvPlan, step: int) -> tuple[int, int, np.ndarray, float]:
    """(u, v, window, value): step-th position (row-major) of dx_pad; value = sum(window * plan.kernel)."""
    u, v = divmod(step, plan.covered[1])
    K_h, K_w = plan.kernel.shape
    window = plan.grid[u:u + K_h, v:v + K_w]
    return u, v, window, float(np.sum(window * plan.kernel))


def run_backward(backward: Callable | None, dy, x, w, stride, pad) -> tuple[tuple | None, str]:
    """(dx, dw, db) from the student's backward, or (None, why not) when it is missing or broken."""
    if backward is None:
        return None, "no backward function given: showing the term sums only"
    grads, problem = call_student(backward, dy.copy(), x.copy(), w.copy(), stride=stride, pad=pad)
    if problem is not None:
        return None, f"{problem} (showing the term sums only)"
    name = student_name(backward)
    shapes = (x.shape, w.shape, (w.shape[0],))
    if not (isinstance(grads, tuple) and len(grads) == 3
            and all(np.shape(g) == s for g, s in zip(grads, shapes))):
        return None, f"your {name} did not return (dx, dw, db) with shapes {shapes}: showing the term sums only"
    return grads, f"showing your {name}"


def verdict(student: float | None, total: float, label: str, note: str) -> str:
    """HTML line comparing the student's value with the term sum."""
    if student is None:
        return f"<div class='gf-note'>{html.escape(note)}</div>"
    if np.isclose(student, total, rtol=1e-6, atol=1e-9):
        return f"<div class='gf-ok'>{html.escape(note)}: {label} = {_fmt(student)}, agrees with the term sum ✓</div>"
    return (f"<div class='gf-bad'>{html.escape(note)}: {label} = {_fmt(student)}, but the terms sum to "
            f"{_fmt(total)} ✗ — your gradient disagrees</div>")


# ---------------------------------------------------------------------------- rendering (HTML / SVG)
def _fmt(value: float) -> str:
    return f"{value:.3g}" if value != int(value) else str(int(value))


def grid_svg(values: np.ndarray, title: str, fills: dict | None = None, boxes: list | None = None,
             faint: np.ndarray | None = None) -> str:
    """A titled SVG table of values; fills maps (row, col) -> colour, boxes are (row, col, rows, cols,
    colour) outlines, faint marks cells whose text is drawn in grey."""
    rows, cols = values.shape
    faint_cells = None if faint is None else set(zip(*np.nonzero(faint)))
    return (f"<div><div class='gf-title'>{html.escape(title)}</div>"
            f"<svg width='{cols * CELL + 4}' height='{rows * CELL + 4}' font-family='monospace' font-size='11'>"
            + grid_cells(values, _fmt, 2, fills, boxes, faint=faint_cells) + "</svg></div>")


def _page(svgs: list[str], lines: list[str]) -> str:
    style = ("<style>.gf-ok{color:#166534}.gf-bad{color:#b91c1c;font-weight:bold}.gf-note{color:#92400e}"
             ".gf-eq{font-family:monospace;margin:4px 0;overflow-wrap:anywhere}"
             ".gf-title{font:bold 12px monospace;max-width:300px;margin-bottom:2px}</style>")
    row = "<div style='display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap'>" + "".join(svgs) + "</div>"
    return f"<div class='convlab-gradflow'>{style}{row}{''.join(lines)}</div>"


def _pad_fills(size_hw: tuple[int, int], pad: int) -> dict:
    H, W = size_hw
    return {(r, c): GREY for r in range(H + 2 * pad) for c in range(W + 2 * pad)
            if not (pad <= r < H + pad and pad <= c < W + pad)}


def render_dx_pixel(ex: dict, r: int, c: int) -> str:
    """Frame for mode 'dx pixel': which outputs and taps send gradient to x[0, 0, r, c]."""
    dy, x, w, stride, pad = ex["dy"], ex["x"], ex["w"], ex["stride"], ex["pad"]
    terms = dx_terms(dy, w, stride, pad, 0, 0, r, c)
    x_pad = np.pad(x[0, 0], pad)
    fills = _pad_fills(x.shape[2:], pad) | {(r + pad, c + pad): ORANGE}
    svgs = [grid_svg(x_pad, "x_pad (grey: padding)", fills),
            grid_svg(dy[0, 0], "dy", {(t.i, t.j): BLUE for t in terms}),
            grid_svg(w[0, 0], "w", {(t.m, t.n): GREEN for t in terms})]
    total = term_sum(terms)
    sums = " + ".join(f"dy[{t.i},{t.j}]·w[{t.m},{t.n}]" for t in terms)
    numbers = " + ".join(f"({_fmt(t.dy)})·({_fmt(t.factor)})" for t in terms)
    lines = [f"<div class='gf-eq'>dx[0,0,{r},{c}] = {sums} = {numbers} = <b>{_fmt(total)}</b></div>" if terms else
             f"<div class='gf-eq'>dx[0,0,{r},{c}] = 0: no window covers this pixel "
             f"(stride {stride} steps over it), so it received no gradient</div>"]
    student = None if ex["grads"] is None else float(ex["grads"][0][0, 0, r, c])
    lines.append(verdict(student, total, f"dx[0,0,{r},{c}]", ex["note"]))
    return _page(svgs, lines)


def render_dw_tap(ex: dict, m: int, n: int) -> str:
    """Frame for mode 'dw tap': the pixels tap (m, n) saw, each weighted by its window's dy."""
    dy, x, w, stride, pad = ex["dy"], ex["x"], ex["w"], ex["stride"], ex["pad"]
    terms = dw_terms(dy, x, stride, pad, 0, 0, m, n)
    fills = _pad_fills(x.shape[2:], pad) | {(stride * t.i + m, stride * t.j + n): ORANGE for t in terms}
    svgs = [grid_svg(np.pad(x[0, 0], pad), "x_pad (orange: seen by the tap)", fills),
            grid_svg(dy[0, 0], "dy", {(t.i, t.j): BLUE for t in terms}),
            grid_svg(w[0, 0], "w", {(m, n): GREEN})]
    total = term_sum(terms)
    numbers = " + ".join(f"({_fmt(t.dy)})·({_fmt(t.factor)})" for t in terms)
    lines = [f"<div class='gf-eq'>dw[0,0,{m},{n}] = Σ<sub>i,j</sub> dy[i,j]·x_pad[{stride}i+{m}, {stride}j+{n}]"
             f" = {numbers} = <b>{_fmt(total)}</b></div>"]
    student = None if ex["grads"] is None else float(ex["grads"][1][0, 0, m, n])
    lines.append(verdict(student, total, f"dw[0,0,{m},{n}]", ex["note"]))
    return _page(svgs, lines)


def render_build(ex: dict, step: int) -> str:
    """Frame for mode 'build dx': the rotated kernel at step `step`, dx_pad filled up to it."""
    x, stride, pad, plan = ex["x"], ex["stride"], ex["pad"], ex["plan"]
    step = min(step, plan.steps - 1)
    u, v, window, value = full_conv_frame(plan, step)
    K_h, K_w = plan.kernel.shape
    kind_fill = {"pad": GREY, "dilation": LILAC, "dy": BLUE}
    grid_fills = {rc: kind_fill[kind] for rc, kind in np.ndenumerate(plan.kinds)}
    rows, cols = np.indices(plan.x_pad_hw)
    uncovered = (rows >= plan.covered[0]) | (cols >= plan.covered[1])
    pending = uncovered | (rows * plan.covered[1] + cols > step)    # not computed yet at this step
    dx_pad = np.zeros(plan.x_pad_hw)
    for s in range(step + 1):
        uu, vv, _, value_s = full_conv_frame(plan, s)
        dx_pad[uu, vv] = value_s
    H, W = x.shape[2:]
    svgs = [grid_svg(plan.grid, "dy (blue), dilated (lilac zeros) and padded by K-1 (grey zeros)",
                     grid_fills, [(u, v, K_h, K_w, "#ea580c")]),
            grid_svg(plan.kernel, "rot180(w)", {rc: GREEN for rc in np.ndindex(plan.kernel.shape)}),
            grid_svg(dx_pad, "dx_pad (blue box: dx after cropping)",
                     {rc: GREY for rc in zip(*np.nonzero(uncovered))} | {(u, v): ORANGE},
                     [(pad, pad, H, W, "#2563eb")], pending)]
    numbers = " + ".join(f"({_fmt(a)})·({_fmt(k)})" for a, k in zip(window.ravel(), plan.kernel.ravel()))
    lines = [f"<div class='gf-eq'>step {step + 1}/{plan.steps}: dx_pad[{u},{v}] = Σ window·rot180(w) = "
             f"{numbers} = <b>{_fmt(value)}</b></div>"]
    if plan.covered != plan.x_pad_hw:
        lines.append(f"<div class='gf-eq'>grey rows/columns of dx_pad: no window reached them "
                     f"((H + 2·pad − K) is not a multiple of stride {stride}): gradient 0</div>")
    r, c = u - pad, v - pad
    if 0 <= r < H and 0 <= c < W:
        student = None if ex["grads"] is None else float(ex["grads"][0][0, 0, r, c])
        lines.append(verdict(student, value, f"dx[0,0,{r},{c}]", ex["note"]))
    else:
        lines.append("<div class='gf-note'>this position lies in the padding: cropped away, not part of dx</div>")
    return _page(svgs, lines)


def make_example(size: int, K_h: int, K_w: int, stride: int, pad: int, backward: Callable | None,
                 seed: int = 0) -> dict:
    """A single-channel layer (B = C_in = C_out = 1) with small whole numbers, the student's gradients,
    and the full-convolution plan of dx that 'build dx' steps through."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (1, 1, size, size)).astype(float)
    w = rng.integers(-2, 3, (1, 1, K_h, K_w)).astype(float)
    H_out, W_out = dilated_output_size(size, K_h, stride, pad), dilated_output_size(size, K_w, stride, pad)
    dy = rng.integers(-2, 3, (1, 1, H_out, W_out)).astype(float)
    grads, note = run_backward(backward, dy, x, w, stride, pad)
    plan = full_conv_plan(dy[0, 0], w[0, 0], stride, pad, (size, size))
    return {"x": x, "w": w, "dy": dy, "stride": stride, "pad": pad, "grads": grads, "note": note, "plan": plan}


def gradflow_widget(backward: Callable | None = None):
    """The gradient-flow widget, running `backward(dy, x, w, stride=, pad=) -> (dx, dw, db)`."""
    import ipywidgets as widgets

    def slider(description, lo, hi, value):
        return widgets.IntSlider(value=value, min=lo, max=hi, description=description, continuous_update=True,
                                 layout=widgets.Layout(width="260px"))

    mode = widgets.ToggleButtons(options=["dx pixel", "dw tap", "build dx"], value="dx pixel")
    size, k_h, k_w = slider("size H=W", 4, 7, 6), slider("K_h", 1, 4, 3), slider("K_w", 1, 4, 3)
    stride, pad = slider("stride", 1, 3, 2), slider("pad", 0, 2, 1)
    row, col = slider("x row r", 0, 5, 2), slider("x col c", 0, 5, 1)
    tap_m, tap_n = slider("tap m", 0, 2, 0), slider("tap n", 0, 2, 0)
    step = slider("step", 0, 1, 0)
    play = widgets.Play(min=0, max=1, interval=700, description="Play")
    widgets.jslink((play, "value"), (step, "value"))
    view = widgets.HTML()
    rows = {"dx pixel": widgets.HBox([row, col]), "dw tap": widgets.HBox([tap_m, tap_n]),
            "build dx": widgets.HBox([play, step])}
    state = {}

    def refresh(_=None):
        key = (size.value, k_h.value, k_w.value, stride.value, pad.value)
        if state.get("key") != key:
            state["key"], state["ex"] = key, make_example(*key, backward)
            row.max = col.max = size.value - 1
            tap_m.max, tap_n.max = k_h.value - 1, k_w.value - 1
            play.max = step.max = state["ex"]["plan"].steps - 1
        for name, box in rows.items():
            box.layout.display = "flex" if name == mode.value else "none"
        ex = state["ex"]
        view.value = {"dx pixel": lambda: render_dx_pixel(ex, row.value, col.value),
                      "dw tap": lambda: render_dw_tap(ex, tap_m.value, tap_n.value),
                      "build dx": lambda: render_build(ex, step.value)}[mode.value]()

    for control in (mode, size, k_h, k_w, stride, pad, row, col, tap_m, tap_n, step):
        control.observe(refresh, names="value")
    refresh()
    root = widgets.VBox([mode, widgets.HBox([size, stride, pad]), widgets.HBox([k_h, k_w]), *rows.values(), view])
    root.add_class("convlab-widget")
    return root
