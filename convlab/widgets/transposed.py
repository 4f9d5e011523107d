"""Transposed-convolution widget: zeros inserted between the inputs, then a full convolution.

A convolution with stride s, padding p and dilation d maps an H_x-long input to H_y outputs. Its
transpose maps H_y values back to H_x: insert s - 1 zeros between neighbouring inputs, pad by the
dilated kernel's span minus one (plus `output_pad` more rows at the bottom and columns at the right),
slide the 180°-rotated dilated kernel over that grid (a full convolution, stride 1), and crop p off
each side. That is lesson 03's dL/dx with y as dy: transposed convolution *is* the backward pass
of a convolution with respect to its input.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    transposed_output_size(in_size, kernel_size, stride, pad, output_pad, dilation) -> H_x
    transposed_plan(y, w, stride, pad, output_pad, dilation)  -> TransposedPlan: the zero-inserted grid,
                                                                 the rotated kernel, z_pad and z
    window_terms(plan, r, c)                   -> [Term]: the nonzero products of z[r, c]'s window
    forward_terms(y, w, stride, pad, dilation, r, c) -> [Term]: forward outputs whose windows read x[r, c]
    forward_matrix(x_hw, w, stride, pad, dilation)   -> M with y.ravel() = M @ x.ravel(); z = Mᵀ y
    transposed_widget(dx_fn)                   the widget (root DOM class `convlab-widget`)

Coordinates: y (H_y, W_y) indexed (i, j); kernel taps (m, n); z and the forward input x (H_x, W_x)
indexed (r, c); the forward window (i, j) reads x_pad[s*i + d*m, s*j + d*n] = x[s*i + d*m - p, ...].
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

import numpy as np

from convlab.tolerance import within_bound
from convlab.widgets._student import call_student, student_name
from convlab.widgets.conv_slider import dilate_kernel
from convlab.widgets.gradflow import BLUE, GREEN, GREY, LILAC, ORANGE, grid_svg

OUTPUT_PAD = "#d1d5db"       # the output-padding rows and columns of the grid
MATRIX_MAX_COLUMNS = 100     # forward matrices wider than this are described, not drawn


def transposed_output_size(in_size: int, kernel_size: int, stride: int = 1, pad: int = 0, output_pad: int = 0,
                           dilation: int = 1) -> int:
    """H_x = (H_y - 1)·stride - 2·pad + dilation·(kernel_size - 1) + output_pad + 1 along one axis.

    output_pad must be smaller than stride: a forward convolution maps `stride` neighbouring input
    sizes to the same output size, and output_pad says which of them the transpose gives back.
    """
    if not 0 <= output_pad < stride:
        raise ValueError(f"output padding {output_pad} must be at least 0 and smaller than the stride {stride}: "
                         "it picks one of the stride input sizes the forward convolution maps to the same size")
    size = (in_size - 1) * stride - 2 * pad + dilation * (kernel_size - 1) + output_pad + 1
    if size < 1:
        raise ValueError(f"the output would have {size} rows: padding {pad} crops away more than the full "
                         "convolution produces; lower the padding or raise the kernel size, stride or dilation")
    return size


@dataclass(frozen=True)
class Term:
    """One product y[i, j]·w[m, n] of a transposed-convolution output."""
    i: int
    j: int
    m: int
    n: int
    y: float
    w: float


@dataclass(frozen=True)
class TransposedPlan:
    """z as the rotated, dilated kernel sliding over the zero-inserted, padded y (one channel).

    grid: y with stride - 1 zeros between entries, padded by span - 1 (and output_pad at the bottom
    and right); kinds: 'y' | 'inserted' | 'pad' | 'output pad' per grid cell; origin: grid[(row, col)]
    holds y[i, j] at origin + stride·(i, j); kernel: rot180 of the dilated w; z_pad: every window's sum;
    z: z_pad cropped by pad on each side.
    """
    y: np.ndarray
    w: np.ndarray
    stride: int
    pad: int
    output_pad: int
    dilation: int
    grid: np.ndarray
    kinds: np.ndarray
    kernel: np.ndarray
    z_pad: np.ndarray
    z: np.ndarray

    @property
    def span(self) -> int:
        return self.kernel.shape[0]


def transposed_plan(y: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, output_pad: int = 0,
                    dilation: int = 1) -> TransposedPlan:
    """The plan for y (H_y, W_y) and a square kernel w (K, K); ValueError when the sizes do not work."""
    (H_y, W_y), K = y.shape, w.shape[0]
    H_x = transposed_output_size(H_y, K, stride, pad, output_pad, dilation)
    W_x = transposed_output_size(W_y, K, stride, pad, output_pad, dilation)
    kernel = dilate_kernel(w, dilation)[::-1, ::-1]
    edge = kernel.shape[0] - 1
    rows, cols = (H_y - 1) * stride + 1, (W_y - 1) * stride + 1
    shape = (rows + 2 * edge + output_pad, cols + 2 * edge + output_pad)
    grid, kinds = np.zeros(shape), np.full(shape, "output pad", dtype=object)
    kinds[:rows + 2 * edge, :cols + 2 * edge] = "pad"
    kinds[edge:edge + rows, edge:edge + cols] = "inserted"
    kinds[edge:edge + rows:stride, edge:edge + cols:stride] = "y"
    grid[edge:edge + rows:stride, edge:edge + cols:stride] = y
    span = kernel.shape[0]
    z_pad = np.array([[np.sum(grid[u:u + span, v:v + span] * kernel) for v in range(W_x + 2 * pad)]
                      for u in range(H_x + 2 * pad)])
    return TransposedPlan(y, w, stride, pad, output_pad, dilation, grid, kinds, kernel, z_pad,
                          z_pad[pad:pad + H_x, pad:pad + W_x])


def window_terms(plan: TransposedPlan, r: int, c: int) -> list[Term]:
    """The products of z[r, c]'s window that can be nonzero: a y cell of the grid under a real tap of
    the kernel (inserted zeros, padding and the dilation's zeros contribute nothing)."""
    u, v, edge, d, s = r + plan.pad, c + plan.pad, plan.span - 1, plan.dilation, plan.stride
    terms = []
    for a in range(plan.span):
        for b in range(plan.span):
            row, col = u + a, v + b
            if plan.kinds[row, col] == "y" and (edge - a) % d == 0 and (edge - b) % d == 0:
                i, j, m, n = (row - edge) // s, (col - edge) // s, (edge - a) // d, (edge - b) // d
                terms.append(Term(i, j, m, n, float(plan.y[i, j]), float(plan.w[m, n])))
    return sorted(terms, key=lambda t: (t.i, t.j))


def forward_terms(y: np.ndarray, w: np.ndarray, stride: int, pad: int, dilation: int, r: int, c: int) -> list[Term]:
    """Every forward output (i, j) whose window reads x[r, c], with the tap (m, n) it reads it through:
    s·i + d·m - p = r and s·j + d·n - p = c. Their products y[i, j]·w[m, n] sum to z[r, c]."""
    (H_y, W_y), K = y.shape, w.shape[0]
    return [Term(i, j, m, n, float(y[i, j]), float(w[m, n]))
            for i in range(H_y) for j in range(W_y) for m in range(K) for n in range(K)
            if stride * i + dilation * m - pad == r and stride * j + dilation * n - pad == c]


def forward_matrix(x_hw: tuple[int, int], w: np.ndarray, stride: int, pad: int, dilation: int) -> np.ndarray:
    """M of shape (H_y·W_y, H_x·W_x), row-major, with conv(x).ravel() = M @ x.ravel(): row (i, j) holds
    w[m, n] at column (s·i + d·m - p, s·j + d·n - p) (taps that land in the padding drop out)."""
    (H_x, W_x), K = x_hw, w.shape[0]
    span = dilation * (K - 1) + 1
    H_y, W_y = (H_x + 2 * pad - span) // stride + 1, (W_x + 2 * pad - span) // stride + 1
    matrix = np.zeros((H_y * W_y, H_x * W_x))
    for i in range(H_y):
        for j in range(W_y):
            for m in range(K):
                for n in range(K):
                    r, c = stride * i + dilation * m - pad, stride * j + dilation * n - pad
                    if 0 <= r < H_x and 0 <= c < W_x:
                        matrix[i * W_y + j, r * W_x + c] += w[m, n]
    return matrix


def student_dx(dx_fn: Callable | None, plan: TransposedPlan) -> tuple[np.ndarray | None, str]:
    """z from lesson 03's conv2d_dx_rotated(dy, w, x_shape, stride=, pad=) with dy = y and the dilated
    kernel (a dilated convolution is an ordinary one with that kernel), or None and why not."""
    if dx_fn is None:
        return None, "the grids are the widget's own sums"
    x_shape = (1, 1) + plan.z.shape
    dx, problem = call_student(dx_fn, plan.y[None, None].copy(), dilate_kernel(plan.w, plan.dilation)[None, None],
                               x_shape, stride=plan.stride, pad=plan.pad)
    if problem is not None:
        return None, f"{problem}: the grids are the widget's own sums"
    if np.shape(dx) != x_shape:
        return None, f"your {student_name(dx_fn)} returned shape {np.shape(dx)}, expected {x_shape}"
    return np.asarray(dx, dtype=float)[0, 0], f"z computed by your {student_name(dx_fn)} as dL/dx"


# ---------------------------------------------------------------------------- rendering (HTML / SVG)
def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _products(terms: list[Term]) -> str:
    return " + ".join(f"y[{t.i},{t.j}]·w[{t.m},{t.n}]" for t in terms) or "nothing (no window reaches it)"


def matrix_svg(matrix: np.ndarray, column: int, rows_used: set[int]) -> str:
    """The forward matrix M as small squares (nonzero entries dark), column `column` outlined:
    read down it, it is row `column` of Mᵀ, the weights that build that output of the transpose."""
    n_rows, n_cols = matrix.shape
    if n_cols > MATRIX_MAX_COLUMNS:
        return (f"<div class='tc-note'>the forward matrix M is {n_rows}×{n_cols}: too wide to draw "
                "(lower the input size or the stride)</div>")
    size = 10
    cells = "".join(f"<rect x='{c * size}' y='{r * size + 16}' width='{size}' height='{size}' "
                    f"fill='{(ORANGE if r in rows_used and c == column else '#374151') if value else 'white'}' "
                    f"stroke='#e5e7eb'/>" for (r, c), value in np.ndenumerate(matrix))
    outline = (f"<rect x='{column * size}' y='16' width='{size}' height='{n_rows * size}' fill='none' "
               f"stroke='#ea580c' stroke-width='2'/>")
    return (f"<svg width='{max(n_cols * size, 260)}' height='{n_rows * size + 20}' font-family='monospace' "
            f"font-size='12'><text x='0' y='12' font-weight='bold'>forward matrix M ({n_rows}×{n_cols}); "
            f"z = Mᵀy</text>{cells}{outline}</svg>")


def render_plan(plan: TransposedPlan, position: int, student: tuple[np.ndarray | None, str]) -> str:
    """One frame: output cell `position` (row-major over z) in the zero-inserted full convolution and
    in the forward convolution it transposes, with the formula and, if given, the student's z."""
    H_x, W_x = plan.z.shape
    r, c = divmod(min(position, plan.z.size - 1), W_x)
    u, v, span, pad = r + plan.pad, c + plan.pad, plan.span, plan.pad
    window, forward = window_terms(plan, r, c), forward_terms(plan.y, plan.w, plan.stride, pad, plan.dilation, r, c)
    kind_fill = {"pad": GREY, "inserted": LILAC, "y": BLUE, "output pad": OUTPUT_PAD}
    grid_fills = {rc: kind_fill[kind] for rc, kind in np.ndenumerate(plan.kinds)}
    grid_fills |= {(span - 1 + plan.stride * t.i, span - 1 + plan.stride * t.j): ORANGE for t in window}
    rows, cols = np.indices(plan.z_pad.shape)
    pending = rows * plan.z_pad.shape[1] + cols > u * plan.z_pad.shape[1] + v
    x_hw_pad = (H_x + 2 * pad, W_x + 2 * pad)
    pad_fills = {(a, b): GREY for a in range(x_hw_pad[0]) for b in range(x_hw_pad[1])
                 if not (pad <= a < pad + H_x and pad <= b < pad + W_x)}
    top = [grid_svg(plan.grid, f"y (blue), {plan.stride - 1} zero(s) inserted (lilac), padded by {span - 1} (grey)"
                    + (f" + output padding {plan.output_pad} (dark grey)" if plan.output_pad else ""),
                    grid_fills, [(u, v, span, span, "#ea580c")]),
           grid_svg(plan.kernel, f"rot180(w dilated by {plan.dilation})",
                    {(a, b): GREEN for a in range(span) for b in range(span)
                     if (span - 1 - a) % plan.dilation == 0 and (span - 1 - b) % plan.dilation == 0}),
           grid_svg(plan.z_pad, "z_pad (blue box: z after cropping pad)", {(u, v): ORANGE},
                    [(pad, pad, H_x, W_x, "#2563eb")], pending)]
    bottom = [grid_svg(np.zeros(x_hw_pad), f"forward input x ({H_x}×{W_x}, pad {pad}): its values do not matter",
                       pad_fills | {(u, v): ORANGE}, faint=np.ones(x_hw_pad, bool)),
              grid_svg(plan.y, "forward output y", {(t.i, t.j): BLUE for t in forward}),
              grid_svg(plan.w, "w", {(t.m, t.n): GREEN for t in forward})]
    matrix = forward_matrix((H_x, W_x), plan.w, plan.stride, pad, plan.dilation)
    used = {t.i * plan.y.shape[1] + t.j for t in forward}
    value = sum(t.y * t.w for t in window)
    numbers = " + ".join(f"({_fmt(t.y)})·({_fmt(t.w)})" for t in window)
    H_y, K = plan.y.shape[0], plan.w.shape[0]
    lines = [f"<div class='tc-eq'>output size H_x = (H_y − 1)·stride − 2·pad + dilation·(K − 1) + output_pad + 1 = "
             f"({H_y} − 1)·{plan.stride} − 2·{pad} + {plan.dilation}·({K} − 1) + {plan.output_pad} + 1 = <b>{H_x}</b>, "
             "the size of the forward convolution's input x</div>",
             f"<div class='tc-eq'>full convolution: z[{r},{c}] = Σ window·rot180(w) = {_products(window)}"
             f"{' = ' + numbers if window else ''} = <b>{_fmt(value)}</b></div>",
             f"<div class='tc-eq'>forward convolution: x[{r},{c}] is read by {_products(forward)} "
             f"(s·i + d·m − p = {r}, s·j + d·n − p = {c}): "
             + ("the same terms ✓" if window == forward else "<b>different terms ✗</b>") + "</div>"]
    dx, note = student
    if dx is None:
        lines.append(f"<div class='tc-note'>{html.escape(note)}</div>")
    elif within_bound(dx[r, c], value, sum(abs(t.y * t.w) for t in window), max(len(window), 1)):
        lines.append(f"<div class='tc-ok'>{html.escape(note)}: z[{r},{c}] = {_fmt(dx[r, c])} ✓</div>")
    else:
        lines.append(f"<div class='tc-bad'>{html.escape(note)}: z[{r},{c}] = {_fmt(dx[r, c])}, "
                     f"but the window sums to {_fmt(value)} ✗</div>")
    style = ("<style>.tc-ok{color:#166534}.tc-bad{color:#b91c1c;font-weight:bold}.tc-note{color:#92400e}"
             ".tc-eq{font-family:monospace;margin:4px 0;overflow-wrap:anywhere}"
             ".gf-title{font:bold 12px monospace;max-width:320px;margin-bottom:2px}</style>")
    row = "<div style='display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap'>{}</div>"
    return (f"<div class='convlab-transposed'>{style}{row.format(''.join(top))}{row.format(''.join(bottom))}"
            f"{matrix_svg(matrix, r * W_x + c, used)}{''.join(lines)}</div>")


def demo_values(size: int, kernel_size: int) -> tuple[np.ndarray, np.ndarray]:
    """y (size, size) with whole numbers 1..3 and w (K, K) with -1..2: easy to multiply by eye."""
    rng = np.random.default_rng(10 * size + kernel_size)
    return rng.integers(1, 4, (size, size)).astype(float), rng.integers(-1, 3, (kernel_size, kernel_size)).astype(float)


def transposed_widget(dx_fn: Callable | None = None):
    """The transposed-convolution widget; dx_fn, if given, is lesson 03's conv2d_dx_rotated."""
    import ipywidgets as widgets

    def slider(description, lo, hi, value):
        return widgets.IntSlider(value=value, min=lo, max=hi, description=description,
                                 style={"description_width": "initial"}, layout=widgets.Layout(width="240px"))

    size, kernel, stride = slider("input size H_y", 1, 4, 2), slider("kernel K", 1, 3, 3), slider("stride", 1, 3, 2)
    pad, output_pad, dilation = slider("padding", 0, 2, 0), slider("output padding", 0, 1, 0), slider("dilation", 1, 3, 1)
    position = slider("output cell", 0, 0, 0)
    play = widgets.Play(min=0, max=0, interval=800, description="Play")
    widgets.jslink((play, "value"), (position, "value"))
    view = widgets.HTML()
    shown = {"shape": None}                           # z's shape in the last frame drawn

    def refresh(_=None):
        output_pad.max = stride.value - 1            # clamps output_pad, which calls refresh again
        y, w = demo_values(size.value, kernel.value)
        try:
            plan = transposed_plan(y, w, stride.value, pad.value, output_pad.value, dilation.value)
        except ValueError as error:
            view.value = f"<div class='convlab-transposed' style='color:#b00020'>{html.escape(str(error))}</div>"
            return
        (H_z, W_z), before = plan.z.shape, shown["shape"]
        shown["shape"], cell = plan.z.shape, position.value
        if before is not None and before != plan.z.shape:   # z changed shape: keep the cell's row and column
            r, c = divmod(cell, before[1])
            cell = min(r, H_z - 1) * W_z + min(c, W_z - 1)
        play.max = position.max = plan.z.size - 1
        position.value = cell                         # when it moves, refresh draws once more, shape unchanged
        view.value = render_plan(plan, position.value, student_dx(dx_fn, plan))

    for control in (size, kernel, stride, pad, output_pad, dilation, position):
        control.observe(refresh, names="value")
    refresh()
    root = widgets.VBox([widgets.HBox([size, kernel, stride]), widgets.HBox([pad, output_pad, dilation]),
                         widgets.HBox([play, position]), view])
    root.add_class("convlab-widget")
    return root
