"""The typical bugs of a convolution's backward pass, named from whole gradients: one library for the
hidden checks and the visible tests of lesson 03.

Every bug's output is computed by calling a *correct* `backward(dy, x, w, stride, pad) -> (dx, dw,
db)` on transformed inputs (a flipped kernel, stride 1 on a cropped input, ...), so nothing here
computes a gradient of its own. The hidden checks pass the reference and the rounding bound; the
visible tests pass numerical gradients of the student's own, already tested forward pass and their
finite-difference error (`numerical_match`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from convlab.diagnosis import first_matching_bug
from convlab.gradcheck import relative_error

Backward = Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple]
Matches = Callable[[Any, np.ndarray], bool]      # does the student's gradient equal this bug's output?

KERNEL_NOT_FLIPPED = ("kernel not flipped in dX: the full convolution of dy must use the 180-degree rotated kernel "
                      "rot180(w), both spatial axes reversed")
STRIDE_IGNORED_DX = ("stride ignored in dX (dy not dilated): put stride-1 zeros between the entries of dy before "
                     "the full convolution, i.e. window (i, j) sends its gradient to x_pad[stride*i + m, stride*j + n]")
ONE_AXIS = "kernel flipped along one axis only: rot180 reverses both K_h and K_w"
CHANNELS_NOT_SWAPPED = ("kernel channel axes not swapped in dX: the kernel of the full convolution is "
                        "rot180(w).transpose(1, 0, 2, 3) (dy's C_out channels are its inputs)")
PADDING_NOT_CROPPED = "padding not cropped: dx must have the shape of x; crop dx_pad[:, :, pad:pad+H, pad:pad+W]"
WRONG_OFFSET = ("padding cropped at the wrong offset: remove pad rows/columns from each side, "
                "dx_pad[:, :, pad:pad+H, pad:pad+W]")
ROWS_MISSING = ("rows/columns no window reached are missing: when (H + 2*pad - K) is not a multiple of stride, "
                "the last rows of x get zero gradient; make dx_pad as large as x_pad before cropping")
STRIDE_IGNORED_DW = "stride ignored in dW: window (i, j) starts at x_pad[stride*i, stride*j]"
DW_AVERAGED = "dW divided by the batch size: the gradient of a sum over the batch is a sum, not a mean"
DB_WRONG_AXES = ("db summed over the wrong axes: sum dy over the batch and both spatial axes, "
                 "dy.sum(axis=(0, 2, 3)), giving shape (C_out,)")
DB_AVERAGED = "db averaged instead of summed: db[co] is the sum of dy[:, co] over batch and positions"


def numerical_match(got: Any, candidate: np.ndarray) -> bool:
    """Matches for numerical gradients: same shape and within their finite-difference error (1e-6)."""
    return (isinstance(got, np.ndarray) and got.shape == np.shape(candidate) and bool(np.all(np.isfinite(got)))
            and relative_error(got, candidate) < 1e-6)


def _padded(x: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def dx_bug(backward: Backward, dy, x, w, stride: int, pad: int, got: Any, matches: Matches = numerical_match):
    """Name the bug that turns the correct dx into `got`, or None."""
    if not isinstance(got, np.ndarray):
        return None
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out, W_out = dy.shape[2:]
    # the same layer on the padded input with pad 0 has the same output, and its dx is dx_pad
    dx_pad = backward(dy, _padded(x, pad), w, stride, 0)[0] if pad else None
    if pad and matches(got, dx_pad):
        return PADDING_NOT_CROPPED
    remainder = ((H + 2 * pad - K_h) % stride, (W + 2 * pad - K_w) % stride)
    shorter = [got_size == size or (got_size < size and left > 0)
               for got_size, size, left in zip(got.shape[2:], (H, W), remainder)]
    if got.ndim == 4 and got.shape[:2] == x.shape[:2] and got.shape != x.shape and all(shorter):
        return ROWS_MISSING
    if got.shape != x.shape:
        return None
    if pad and any(matches(got, dx_pad[:, :, a:a + H, c:c + W])
                   for a in range(2 * pad + 1) for c in range(2 * pad + 1) if (a, c) != (pad, pad)):
        return WRONG_OFFSET

    def dx_of(kernel):
        return backward(dy, x, np.ascontiguousarray(kernel), stride, pad)[0]

    def stride_ignored():
        # window (i, j) sending to x_pad[i + m, j + n]: the stride-1 layer whose input just fits the
        # windows, placed at the top left of x_pad and cropped like dx_pad
        covered = backward(dy, np.zeros((B, C_in, H_out + K_h - 1, W_out + K_w - 1)), w, 1, 0)[0]
        spread = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad))
        spread[:, :, :covered.shape[2], :covered.shape[3]] = covered
        return spread[:, :, pad:pad + H, pad:pad + W]

    bugs = [(KERNEL_NOT_FLIPPED, lambda: dx_of(w[..., ::-1, ::-1]))]
    if stride > 1:
        bugs.append((STRIDE_IGNORED_DX, stride_ignored))
    bugs += [(ONE_AXIS, lambda: dx_of(w[..., ::-1, :])), (ONE_AXIS, lambda: dx_of(w[..., :, ::-1]))]
    if C_in == C_out:
        bugs.append((CHANNELS_NOT_SWAPPED, lambda: dx_of(w.transpose(1, 0, 2, 3))))
    return first_matching_bug(got, bugs, matches)


def dw_bug(backward: Backward, dy, x, w, stride: int, pad: int, got: Any, matches: Matches = numerical_match):
    """Name the bug that turns the correct dw into `got`, or None."""
    if not isinstance(got, np.ndarray):
        return None
    dw = backward(dy, x, w, stride, pad)[1]
    H_out, W_out = dy.shape[2:]
    K_h, K_w = w.shape[2:]
    # stride ignored: the stride-1 layer on the corner of x_pad its windows then cover
    corner = _padded(x, pad)[:, :, :H_out + K_h - 1, :W_out + K_w - 1]
    bugs = [("dW has its C_out and C_in axes swapped: dw[co, ci, m, n] pairs dy's channel co with x's channel ci",
             lambda: dw.transpose(1, 0, 2, 3)),
            ("dW has its K_h and K_w axes swapped", lambda: dw.transpose(0, 1, 3, 2)),
            ("dW is rotated by 180 degrees: dW is a correlation of x_pad with dy, without a flip",
             lambda: dw[..., ::-1, ::-1]),
            (STRIDE_IGNORED_DW, lambda: backward(dy, corner, w, 1, 0)[1]),
            (DW_AVERAGED, lambda: dw / dy.shape[0])]
    return first_matching_bug(got, bugs, matches)


def db_bug(dy, got: Any, matches: Matches = numerical_match):
    """Name the bug that turns the correct db into `got`, or None."""
    B, C_out = dy.shape[:2]
    if np.ndim(got) != 1 or np.shape(got) != (C_out,):
        return DB_WRONG_AXES
    if (B > 1 and matches(got, dy.mean(axis=(0, 2, 3)))) or matches(got, dy.mean(axis=(2, 3)).sum(axis=0)):
        return DB_AVERAGED
    if B == C_out and matches(got, dy.sum(axis=(1, 2, 3))):
        return DB_WRONG_AXES
    return None


def backward_bug(backward: Backward, dy, x, w, stride: int, pad: int, grads: Any,
                 matches: dict[str, Matches] | None = None) -> str | None:
    """The likely bugs of a (dx, dw, db) result, "; "-joined, or None: each gradient that differs from the
    correct one is diagnosed by its own function. `matches` maps "dx", "dw", "db" to a Matches (default:
    numerical_match for all)."""
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        return None
    matches = matches or {}
    correct = backward(dy, x, w, stride, pad)
    found = []
    for name, got, want in zip(("dx", "dw", "db"), grads, correct):
        match = matches.get(name, numerical_match)
        if match(np.asarray(got) if np.ndim(got) else got, want):
            continue
        bug = (dx_bug(backward, dy, x, w, stride, pad, got, match) if name == "dx" else
               dw_bug(backward, dy, x, w, stride, pad, got, match) if name == "dw" else db_bug(dy, got, match))
        if bug:
            found.append(bug)
    return "; ".join(dict.fromkeys(found)) or None
