"""Kernel-sliding widget: a window slides over a padded input, one dot product per output cell.

Pure logic first (tested without a browser), then a thin ipywidgets view:

    dilated_output_size(in_size, kernel_size, stride, pad, dilation) -> int
    window_cells(i, j, kernel_size, stride, dilation)   -> [(row, col), ...] the window covers in the padded input
    dot_product_terms(x_pad, w, i, j, stride, dilation) -> [(x value, w value), ...] in kernel order
    format_dot_product(terms)                           -> "1·0 + 2·1 + 3·(-1) = -1"
    dilate_kernel(w, dilation)                          -> the kernel with dilation - 1 zeros between its taps
    output_grid(x, w, stride, pad, dilation, conv_fn)   -> (grid, source note, came from conv_fn?)
    conv_frame(x, w, stride, pad, dilation, position, conv_fn) -> dict: everything one frame shows
    render_frame(frame)                                 -> HTML of the three grids and the dot product
    conv_slider(conv_fn)                                -> the widget (root DOM class `convlab-widget`)

One channel, bias 0. The widget's own numbers come from single dot products, never from a
convolution routine, so it checks the student's `conv2d_forward` rather than trusting it.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import numpy as np

from convlab.widgets._student import call_student

__all__ = ["dilated_output_size", "window_cells", "dot_product_terms", "format_dot_product", "dilate_kernel",
           "output_grid", "conv_frame", "render_frame", "demo_input", "demo_kernel", "ConvSlider", "conv_slider"]


def dilated_output_size(in_size: int, kernel_size: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    """Window positions along one axis; a dilated kernel spans dilation * (kernel_size - 1) + 1 cells."""
    span = dilation * (kernel_size - 1) + 1
    if span > in_size + 2 * pad:
        raise ValueError(f"the kernel spans {span} cells (with dilation) and does not fit in the padded input "
                         f"of {in_size + 2 * pad}: make the input or the padding bigger")
    return (in_size + 2 * pad - span) // stride + 1


def window_cells(i: int, j: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> list[tuple[int, int]]:
    """(row, col) in the padded input read by tap (m, n) of the window of output (i, j), taps row by row."""
    return [(stride * i + dilation * m, stride * j + dilation * n)
            for m in range(kernel_size) for n in range(kernel_size)]


def dot_product_terms(x_pad: np.ndarray, w: np.ndarray, i: int, j: int, stride: int = 1,
                      dilation: int = 1) -> list[tuple[float, float]]:
    """(x_pad value, kernel value) pairs whose products sum to output (i, j). x_pad: (H, W); w: (K, K)."""
    cells = window_cells(i, j, w.shape[0], stride, dilation)
    return [(float(x_pad[cell]), float(weight)) for cell, weight in zip(cells, w.ravel())]


def _number(value: float) -> str:
    text = f"{value:g}"
    return f"({text})" if value < 0 else text


def format_dot_product(terms: list[tuple[float, float]]) -> str:
    """'1·0 + 2·1 + 3·(-1) = -1': the products written out, then their sum."""
    total = sum(x_value * weight for x_value, weight in terms)
    return " + ".join(f"{_number(x_value)}·{_number(weight)}" for x_value, weight in terms) + f" = {total:g}"


def dilate_kernel(w: np.ndarray, dilation: int) -> np.ndarray:
    """(K, K) -> (d(K-1)+1, d(K-1)+1) with the taps d apart and zeros between: a dilated convolution is
    an ordinary one with this kernel, so a conv2d_forward without dilation can compute it."""
    size = dilation * (w.shape[0] - 1) + 1
    dilated = np.zeros((size, size), dtype=w.dtype)
    dilated[::dilation, ::dilation] = w
    return dilated


def _own_grid(x_pad: np.ndarray, w: np.ndarray, out_shape: tuple[int, int], stride: int, dilation: int) -> np.ndarray:
    return np.array([[sum(a * b for a, b in dot_product_terms(x_pad, w, i, j, stride, dilation))
                      for j in range(out_shape[1])] for i in range(out_shape[0])])


def output_grid(x: np.ndarray, w: np.ndarray, stride: int, pad: int, dilation: int,
                conv_fn: Callable | None = None) -> tuple[np.ndarray, str, bool]:
    """The (H_out, W_out) output, from conv_fn(x[None, None], kernel[None, None], zeros(1), stride=, pad=)
    when it works, else from the widget's own dot products; plus a sentence saying which, and whether
    the grid is conv_fn's."""
    out_shape = (dilated_output_size(x.shape[0], w.shape[0], stride, pad, dilation),
                 dilated_output_size(x.shape[1], w.shape[0], stride, pad, dilation))
    own = _own_grid(np.pad(x, pad), w, out_shape, stride, dilation)
    if conv_fn is None:
        return own, "Output: the widget's own dot products.", False
    name = getattr(conv_fn, "__name__", "your function")
    fallback = "so the output shows the widget's own dot products."
    y, problem = call_student(conv_fn, x[None, None], dilate_kernel(w, dilation)[None, None], np.zeros(1),
                              stride=stride, pad=pad)
    if problem is not None:
        return own, f"{problem}, {fallback}", False
    expected_shape = (1, 1) + out_shape
    if np.shape(y) != expected_shape:
        return own, f"{name} returned shape {np.shape(y)}, expected {expected_shape}, {fallback}", False
    return np.asarray(y, dtype=float)[0, 0], f"Output computed by your {name}.", True


def conv_frame(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, dilation: int = 1,
               position: int = 0, conv_fn: Callable | None = None) -> dict:
    """Everything one frame shows: x (H, W) and w (K, K) one channel, the window at output position
    `position` (row-major), its dot product, the output grid and where it came from. When the kernel
    does not fit, the dict has only 'error'."""
    try:
        grid, source, from_fn = output_grid(x, w, stride, pad, dilation, conv_fn)
    except ValueError as exc:
        return {"error": str(exc)}
    i, j = divmod(min(position, grid.size - 1), grid.shape[1])
    x_pad = np.pad(x, pad)
    terms = dot_product_terms(x_pad, w, i, j, stride, dilation)
    value = sum(a * b for a, b in terms)
    mismatch = None
    if from_fn and not np.isclose(grid[i, j], value):
        mismatch = (f"Your {getattr(conv_fn, '__name__', 'function')} gives {grid[i, j]:g} at output ({i}, {j}), but the dot product "
                    f"of the highlighted window with the kernel is {value:g}.")
    return {"x_pad": x_pad, "pad": pad, "w": w, "stride": stride, "dilation": dilation, "position": (i, j),
            "cells": window_cells(i, j, w.shape[0], stride, dilation), "terms": terms, "value": value,
            "output": grid, "source": source, "mismatch": mismatch}


# ---- rendering -----------------------------------------------------------------------------------
_CELL = "width:2em;height:2em;text-align:center;font:13px monospace;border:1px solid #ccc;"
_PADDING = "background:#eeeeee;color:#999999;"
_HIGHLIGHT = "background:#ffd27f;border:2px solid #e07b00;font-weight:bold;"   # window and current output cell
_KERNEL = "background:#9fd3ff;"


def _table(values: np.ndarray, styles: dict[tuple[int, int], str], shown=lambda cell: True) -> str:
    rows = []
    for r in range(values.shape[0]):
        cells = "".join(f'<td style="{_CELL}{styles.get((r, c), "")}">'
                        f'{f"{values[r, c]:g}" if shown((r, c)) else ""}</td>' for c in range(values.shape[1]))
        rows.append(f"<tr>{cells}</tr>")
    return f'<table style="border-collapse:collapse;margin:4px">{"".join(rows)}</table>'


def _figure(title: str, table: str) -> str:
    return f'<div style="margin-right:24px"><div style="font-weight:bold">{html.escape(title)}</div>{table}</div>'


def render_frame(frame: dict) -> str:
    """HTML: padded input (padding grey, window orange), kernel, output filled up to the current cell."""
    if "error" in frame:
        return f'<div class="convlab-conv-frame" style="color:#b00020">{html.escape(frame["error"])}</div>'
    x_pad, pad, w, out = frame["x_pad"], frame["pad"], frame["w"], frame["output"]
    i, j = frame["position"]
    styles = {(r, c): _PADDING for r in range(x_pad.shape[0]) for c in range(x_pad.shape[1])
              if not (pad <= r < x_pad.shape[0] - pad and pad <= c < x_pad.shape[1] - pad)}
    styles.update({cell: _HIGHLIGHT for cell in frame["cells"]})
    kernel_styles = {(m, n): _KERNEL for m in range(w.shape[0]) for n in range(w.shape[1])}
    grids = "".join([
        _figure(f"padded input {x_pad.shape[0]}×{x_pad.shape[1]} (pad {pad})", _table(x_pad, styles)),
        _figure(f"kernel {w.shape[0]}×{w.shape[1]} (dilation {frame['dilation']})", _table(w, kernel_styles)),
        _figure(f"output {out.shape[0]}×{out.shape[1]} (stride {frame['stride']})",
                _table(out, {(i, j): _HIGHLIGHT}, shown=lambda cell: cell <= (i, j))),
    ])
    lines = [f"<b>y[{i}, {j}]</b> = {html.escape(format_dot_product(frame['terms']))}", html.escape(frame["source"])]
    if frame["mismatch"]:
        lines.append(f'<span style="color:#b00020;font-weight:bold">{html.escape(frame["mismatch"])}</span>')
    text = "".join(f'<div style="font:13px monospace;margin:2px 4px">{line}</div>' for line in lines)
    return f'<div class="convlab-conv-frame"><div style="display:flex;align-items:flex-start">{grids}</div>{text}</div>'


# ---- the widget ----------------------------------------------------------------------------------
def demo_input(size: int) -> np.ndarray:
    """The widget's (size, size) input: small whole numbers, the same for a given size."""
    return np.random.default_rng(size).integers(0, 10, (size, size)).astype(float)


def demo_kernel(size: int) -> np.ndarray:
    """The widget's (size, size) kernel: whole numbers from -1 to 2, the same for a given size; the 1x1
    kernel is 2 (its random draw is 0, which would zero the whole output)."""
    if size == 1:
        return np.array([[2.0]])
    return np.random.default_rng(100 + size).integers(-1, 3, (size, size)).astype(float)


class ConvSlider(widgets.VBox):
    """Sliders for the layer's settings, a position slider linked to a Play button, and the frame."""

    def __init__(self, conv_fn: Callable | None = None, input_size: int = 5, kernel_size: int = 3,
                 stride: int = 1, pad: int = 0, dilation: int = 1):
        super().__init__()
        self.conv_fn = conv_fn
        style, layout = {"description_width": "initial"}, widgets.Layout(width="220px")

        def slider(description, value, low, high):
            return widgets.IntSlider(value=value, min=low, max=high, description=description, style=style,
                                     layout=layout, continuous_update=False)

        self.input_size = slider("input size", input_size, 3, 9)
        self.kernel_size = slider("kernel size", kernel_size, 1, 5)
        self.stride = slider("stride", stride, 1, 3)
        self.pad = slider("padding", pad, 0, 3)
        self.dilation = slider("dilation", dilation, 1, 3)
        self.position = widgets.IntSlider(value=0, min=0, max=0, description="position", style=style,
                                          layout=widgets.Layout(width="420px"))
        self.play = widgets.Play(value=0, min=0, max=0, interval=900, description="slide the window")
        widgets.link((self.play, "value"), (self.position, "value"))
        self.frame_html = widgets.HTML()
        for control in (self.input_size, self.kernel_size, self.stride, self.pad, self.dilation):
            control.observe(self._settings_changed, "value")
        self.position.observe(self._redraw, "value")
        self.children = [widgets.HBox([self.input_size, self.kernel_size, self.stride]),
                         widgets.HBox([self.pad, self.dilation]),
                         widgets.HBox([self.play, self.position]), self.frame_html]
        self.add_class("convlab-widget")
        self._settings_changed()

    def _settings_changed(self, change=None) -> None:
        try:
            size = dilated_output_size(self.input_size.value, self.kernel_size.value, self.stride.value,
                                       self.pad.value, self.dilation.value)
            last = size * size - 1
        except ValueError:
            last = 0
        if self.position.value > last:
            self.position.value = 0
        self.position.max = self.play.max = last
        self._redraw()

    def _redraw(self, change=None) -> None:
        frame = conv_frame(demo_input(self.input_size.value), demo_kernel(self.kernel_size.value),
                           self.stride.value, self.pad.value, self.dilation.value, self.position.value,
                           self.conv_fn)
        self.frame_html.value = render_frame(frame)


def conv_slider(conv_fn: Callable | None = None, **settings) -> ConvSlider:
    """The kernel-sliding widget, run on conv_fn (e.g. your conv2d_forward) where it works.

    settings: input_size, kernel_size, stride, pad, dilation (initial slider values).
    """
    return ConvSlider(conv_fn, **settings)
