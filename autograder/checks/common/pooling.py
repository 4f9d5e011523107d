"""Max and average pooling, graded in lessons 02 and 04: rounding bounds, the typical bugs' outputs
(written out with loops here, independent of the reference) and lesson 02's diagnoses.

A diagnosis recomputes typical bugs and names the one the student's output matches: ties split or
sent to every maximum, overlapping windows overwriting instead of accumulating, stride ignored, the
1/pool**2 factor missing, ...
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import numpy as np

from autograder.grader.spec import Case, Tol
from convlab.diagnosis import first_matching_bug

FIRST_MAX = "send it whole to the first maximum in row-major order (what np.argmax of the flattened window gives)"
STRIDE_IGNORED = "stride ignored: window (i, j) starts at row stride * i and column stride * j"
STEPPED_BY_POOL = "the windows were stepped by pool instead of stride"


# ---- rounding bounds ------------------------------------------------------------------------------
def overlap(pool: int, stride: int) -> int:
    """The most windows one input pixel lies in: the longest sum in a pooling backward pass."""
    return -(-pool // stride) ** 2


def max_backward_tol(ref, dy, x, pool: int, stride: int) -> Tol:
    """Max-pooling backward routes each dy to one pixel, where up to `overlap` of them add up."""
    return Tol(ref.maxpool2d_backward(np.abs(dy), x, pool, stride), overlap(pool, stride))


# ---- typical bugs, written out with loops -----------------------------------------------------------
def max_routes(dy, x, pool, stride, tie="first", accumulate=True, step=None, upstream=True):
    """Max-pooling backward with a chosen (possibly wrong) rule; None where the rule is undefined."""
    step = stride if step is None else step
    dx = np.zeros(x.shape)
    for b, c, i, j in np.ndindex(*dy.shape):
        window = x[b, c, step * i:step * i + pool, step * j:step * j + pool]
        if window.shape != (pool, pool):
            return None
        winners = np.argwhere(window == window.max())             # row-major order
        winners = {"first": winners[:1], "last": winners[-1:]}.get(tie, winners)
        grad = dy[b, c, i, j] if upstream else 1.0
        for m, n in winners:
            share = grad / len(winners) if tie == "split" else grad
            if accumulate:
                dx[b, c, step * i + m, step * j + n] += share
            else:
                dx[b, c, step * i + m, step * j + n] = share
    return dx


def spread_windows(dy, x, pool, stride, accumulate=True, step=None, divisor=None):
    """dy[b, c, i, j] / divisor (default pool**2: average-pooling backward) written to every cell of
    window (i, j), the windows `step` apart (default: stride), added up or (accumulate=False) overwriting
    each other; None where a window does not fit."""
    step = stride if step is None else step
    divisor = pool**2 if divisor is None else divisor
    dx = np.zeros(x.shape)
    for b, c, i, j in np.ndindex(*dy.shape):
        rows, cols = slice(step * i, step * i + pool), slice(step * j, step * j + pool)
        if dx[b, c, rows, cols].shape != (pool, pool):
            return None
        if accumulate:
            dx[b, c, rows, cols] += dy[b, c, i, j] / divisor
        else:
            dx[b, c, rows, cols] = dy[b, c, i, j] / divisor
    return dx


def _shape_bugs(x, pool, stride, forward, H_out, W_out) -> Iterator[tuple[str, Callable]]:
    """Forward bugs about where windows sit: stride ignored, output size rounded up."""
    if stride != 1:
        yield STRIDE_IGNORED, lambda: forward(x, pool, 1)
        yield "stride ignored inside the loop: window (i, j) starts at row stride * i and column stride * j", \
            lambda: forward(x, pool, 1)[:, :, :H_out, :W_out]
    if pool != stride and pool <= min(x.shape[2:]):
        yield STEPPED_BY_POOL, lambda: forward(x, pool, pool)


def _step_bugs(pool, stride, backward: Callable[..., np.ndarray]) -> list[tuple[str, Callable]]:
    """Backward bugs about where windows sit; backward(step=...) routes with windows `step` apart."""
    bugs = []
    if stride != 1:
        bugs.append((STRIDE_IGNORED, lambda: backward(step=1)))
    if pool != stride:
        bugs.append((STEPPED_BY_POOL, lambda: backward(step=pool)))
    return bugs


# ---- lesson 02's diagnoses ------------------------------------------------------------------------
def diagnose_forward(ref, kind: str) -> Callable[[Case, Any], str | None]:
    """The diagnosis of {kind}pool2d_forward(x, pool=, stride=) (kind "max" or "avg")."""
    forward = ref.maxpool2d_forward if kind == "max" else ref.avgpool2d_forward

    def diagnose(case: Case, actual) -> str | None:
        (x,), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
        H_out, W_out = case.expected.shape[2:]
        rounded_up = tuple(-(-(size - pool) // stride) + 1 for size in x.shape[2:])
        if rounded_up != (H_out, W_out) and getattr(actual, "shape", ())[2:] == rounded_up:
            return "windows that do not fit entirely were kept: H_out = floor((H - pool) / stride) + 1"
        bugs = list(_shape_bugs(x, pool, stride, forward, H_out, W_out))
        if kind == "max":
            bugs += [("the running maximum starts at 0, so windows of negative values give 0",
                      lambda: np.maximum(case.expected, 0)),
                     ("computed the mean of each window instead of its maximum",
                      lambda: ref.avgpool2d_forward(x, pool, stride))]
        else:
            if pool > 1:                                  # a 1x1 window's sum is its mean
                bugs += [("summed each window instead of averaging: divide by pool**2",
                          lambda: case.expected * pool**2),
                         ("divided by pool instead of pool**2", lambda: case.expected * pool)]
            bugs += [("computed the maximum of each window instead of its mean",
                      lambda: ref.maxpool2d_forward(x, pool, stride))]
        return first_matching_bug(actual, bugs, case.tol)
    return diagnose


def tie_bugs(dy, x, pool: int, stride: int) -> list[tuple[str, Callable]]:
    """Max-pooling backward with a wrong tie rule, as first_matching_bug's (message, output) candidates."""
    return [(f"the gradient of a window with tied maxima was split among them: {FIRST_MAX}",
             lambda: max_routes(dy, x, pool, stride, tie="split")),
            (f"the whole gradient went to every tied maximum of a window: {FIRST_MAX}",
             lambda: max_routes(dy, x, pool, stride, tie="all")),
            (f"ties went to the last maximum of the window: {FIRST_MAX}",
             lambda: max_routes(dy, x, pool, stride, tie="last"))]


def diagnose_max_backward(ref) -> Callable[[Case, Any], str | None]:
    """The diagnosis of maxpool2d_backward(dy, x, pool=, stride=) and its naive form."""
    def diagnose(case: Case, actual) -> str | None:
        (dy, x), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
        bugs = [*tie_bugs(dy, x, pool, stride),
                ("overlapping windows overwrite each other's gradient (dx[...] = ..., or a fancy-indexed +=, "
                 "keeps only the last write): accumulate with += per window, or np.add.at",
                 lambda: max_routes(dy, x, pool, stride, accumulate=False)),
                ("routed 1 instead of the upstream gradient dy[b, c, i, j]",
                 lambda: max_routes(dy, x, pool, stride, upstream=False)),
                ("every cell of the window received dy: only the maximum should",
                 lambda: ref.avgpool2d_backward(dy, x, pool, stride) * pool**2)]
        bugs += _step_bugs(pool, stride, functools.partial(max_routes, dy, x, pool, stride))
        return first_matching_bug(actual, bugs, case.tol)
    return diagnose


def diagnose_avg_backward(case: Case, actual) -> str | None:
    """The diagnosis of avgpool2d_backward(dy, x, pool=, stride=)."""
    (dy, x), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
    bugs = [("missing the 1/pool**2 factor: each cell of a window receives dy / pool**2",
             lambda: case.expected * pool**2),
            ("divided by pool instead of pool**2", lambda: case.expected * pool),
            ("overlapping windows overwrite each other's gradient (dx[...] = ...): accumulate with +=",
             lambda: spread_windows(dy, x, pool, stride, accumulate=False))]
    bugs += _step_bugs(pool, stride, functools.partial(spread_windows, dy, x, pool, stride))
    return first_matching_bug(actual, bugs, case.tol)
