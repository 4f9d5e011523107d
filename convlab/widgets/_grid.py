"""The SVG grid of numbers the pooling and gradient-flow widgets draw: one CELL-pixel square per
value, a fill colour per cell, numbers centred, and thick outlines around windows. Each widget adds
its own title and wrapper around these cells and passes its own number format."""
from __future__ import annotations

from typing import Callable

import numpy as np

CELL = 30
LINE, INK, FAINT = "#9ca3af", "#111827", "#9ca3af"    # cell borders, numbers, greyed-out numbers


def grid_cells(values: np.ndarray, fmt: Callable[[float], str], top: int, fills: dict | None = None,
               boxes: list | None = None, bold: set | None = None, faint: set | None = None) -> str:
    """The cells of `values` (rows, cols) as SVG elements, the grid's top edge `top` pixels down.

    fmt writes one value; fills maps (row, col) -> colour (default white); boxes are (row, col, rows,
    cols, colour) outlines; faint holds the (row, col) whose numbers are grey. bold holds the (row, col)
    whose numbers are bold: given (even empty), every number gets a font-weight; None leaves it out.
    """
    parts = []
    for (r, c), value in np.ndenumerate(values):
        fill = (fills or {}).get((r, c), "white")
        weight = "" if bold is None else f" font-weight='{'bold' if (r, c) in bold else 'normal'}'"
        colour = FAINT if faint and (r, c) in faint else INK
        parts.append(f"<rect x='{c * CELL + 2}' y='{r * CELL + top}' width='{CELL}' height='{CELL}' fill='{fill}' "
                     f"stroke='{LINE}'/><text x='{c * CELL + CELL / 2 + 2}' y='{r * CELL + top + 19}' "
                     f"text-anchor='middle'{weight} fill='{colour}'>{fmt(float(value))}</text>")
    for r, c, h, w, colour in boxes or []:
        parts.append(f"<rect x='{c * CELL + 2}' y='{r * CELL + top}' width='{w * CELL}' height='{h * CELL}' "
                     f"fill='none' stroke='{colour}' stroke-width='3'/>")
    return "".join(parts)
