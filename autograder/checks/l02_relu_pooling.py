"""Hidden checks for lesson 02 (ReLU and pooling).

Cases: randomized shapes; pool/stride combinations that tile, overlap (3/2, 3/1, 2/1), leave gaps
(2/3) or do nothing (1/1); sizes the window does not divide; float32 and float64 (the dtype must be
kept); all-negative inputs; inputs full of ties (small whole numbers) for the max-pooling tie rule;
exact zeros for ReLU. Upstream gradients `dy` take both signs.

Each diagnose() recomputes typical bugs (with loops written here, or from `ref`) and names the one
the student's output matches: ties split or sent to every maximum, overlapping windows overwriting
instead of accumulating, stride ignored, the 1/pool**2 factor missing, the ReLU mask taken from dy
or including x == 0, ... A function that writes into its input (a running max or sum started on a
view of x) is caught before any diagnosis: the runner reports which argument changed.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import numpy as np

from autograder.grader.spec import Case, Part, Tol, compare, same_dtype

LESSON = "02_relu_pooling"
_KEEP_DTYPE = same_dtype("np.zeros_like(x) rather than np.zeros(x.shape)")

POOLINGS = [(2, 2), (3, 2), (3, 1), (2, 1), (2, 3), (1, 1)]     # (pool, stride)
FIRST_MAX = "send it whole to the first maximum in row-major order (what np.argmax of the flattened window gives)"


# ---------------------------------------------------------------- inputs
def _values(rng: np.random.Generator, shape: tuple, dtype, kind: str) -> np.ndarray:
    if kind == "negative":
        values = -0.5 - rng.random(shape)                          # every value in (-1.5, -0.5]
    elif kind == "ties":
        values = rng.integers(0, 3, size=shape).astype(float)      # most windows have tied maxima
    elif kind == "zeros":
        values = rng.standard_normal(shape) * (rng.random(shape) > 0.3)   # ~30% exact zeros
    else:
        values = rng.standard_normal(shape)
    return values.astype(dtype)


def _pool_configs(rng: np.random.Generator) -> list[tuple]:
    """(B, C, H, W, pool, stride, dtype, kind) for the pooling parts: fixed edge cases, then random."""
    configs = [
        (2, 3, 8, 8, 2, 2, np.float64, "normal"),      # the usual halving
        (2, 2, 7, 9, 2, 2, np.float32, "normal"),      # sizes the window does not divide
        (2, 3, 7, 7, 3, 2, np.float64, "normal"),      # overlapping windows (AlexNet)
        (1, 2, 6, 5, 3, 1, np.float32, "normal"),      # heavily overlapping
        (2, 2, 8, 7, 2, 3, np.float64, "normal"),      # gaps between windows
        (2, 2, 6, 6, 2, 2, np.float64, "negative"),
        (1, 2, 7, 7, 3, 2, np.float32, "negative"),
        (2, 3, 6, 8, 2, 2, np.float64, "ties"),
        (2, 2, 7, 6, 3, 1, np.float32, "ties"),
        (1, 1, 5, 5, 1, 1, np.float64, "normal"),      # pool 1: the identity
    ]
    for _ in range(3):
        pool, stride = POOLINGS[rng.integers(len(POOLINGS))]
        H, W = (int(v) for v in rng.integers(pool, 11, size=2))
        configs.append((int(rng.integers(1, 4)), int(rng.integers(1, 4)), H, W, pool, stride,
                        (np.float32, np.float64)[rng.integers(2)], ("normal", "ties")[rng.integers(2)]))
    return configs


def _label(shape: tuple, dtype, kind: str, pool: int | None = None, stride: int | None = None) -> str:
    text = f"x {'x'.join(str(s) for s in shape)} {np.dtype(dtype).name}"
    if pool is not None:
        text += f", pool {pool}, stride {stride}"
    return text + {"negative": ", all negative", "ties": ", with tied maxima", "zeros": ", with exact zeros"}.get(kind, "")


def _first_match(actual: Any, bugs: Iterator[tuple[str, Callable[[], Any]]], tol: Tol) -> str | None:
    """The name of the first bug whose output `actual` matches (shape, and values within the case's bound)."""
    if not isinstance(actual, np.ndarray) or actual.dtype.kind not in "biuf":
        return None
    for name, output in bugs:
        candidate = output()
        if isinstance(candidate, np.ndarray) and tol.matches(actual, candidate):
            return name
    return None


# ---------------------------------------------------------------- typical bugs, written out with loops
def _max_routes(dy, x, pool, stride, tie="first", accumulate=True, step=None, upstream=True):
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


def _avg_spreads(dy, x, pool, stride, accumulate=True, step=None):
    """Average-pooling backward with overwrite or a wrong window step; None where undefined."""
    step = stride if step is None else step
    dx = np.zeros(x.shape)
    for b, c, i, j in np.ndindex(*dy.shape):
        rows, cols = slice(step * i, step * i + pool), slice(step * j, step * j + pool)
        if dx[b, c, rows, cols].shape != (pool, pool):
            return None
        if accumulate:
            dx[b, c, rows, cols] += dy[b, c, i, j] / pool**2
        else:
            dx[b, c, rows, cols] = dy[b, c, i, j] / pool**2
    return dx


STRIDE_IGNORED = "stride ignored: window (i, j) starts at row stride * i and column stride * j"
STEPPED_BY_POOL = "the windows were stepped by pool instead of stride"


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


def _diagnose_pool_output_size(case: Case, actual: Any) -> str | None:
    size, pool, stride = case.args
    if isinstance(actual, (float, np.floating)) and float(actual).is_integer():
        return "return an int (use floor division //)"
    bugs = {-(-(size - pool) // stride) + 1: "rounded up: a window that does not fit entirely is not counted (use //)",
            (size - pool) // stride: "forgot the + 1 for the window that starts at 0",
            size // stride: "ignored the window size: (size - pool) // stride + 1",
            (size - pool) // pool + 1: "divided by pool instead of stride"}
    return bugs.get(actual) if isinstance(actual, (int, np.integer)) and actual != case.expected else None


def _int_check(actual: Any, case: Case) -> str | None:
    if problem := compare(actual, case.expected, "pool_output_size(...)"):
        return problem
    if not isinstance(actual, (int, np.integer)):
        return f"pool_output_size(...) returned {actual!r} ({type(actual).__name__}), expected an int"
    return None


# ---------------------------------------------------------------- parts
def parts(ref, rng: np.random.Generator) -> list[Part]:
    def relu_bugs_forward(case, actual):
        (x,) = case.args
        return _first_match(actual, iter([
            ("returned the mask x > 0 instead of the values max(0, x)", lambda: (x > 0).astype(x.dtype)),
            ("kept the negative part min(0, x): ReLU keeps the positive part", lambda: np.minimum(x, 0)),
            ("returned |x|: negative inputs must become 0", lambda: np.abs(x)),
        ]), case.tol)

    def relu_bugs_backward(case, actual):
        dy, x = case.args
        return _first_match(actual, iter([
            ("the mask uses dy > 0: it must come from the forward input, x > 0", lambda: dy * (dy > 0)),
            ("the mask includes x == 0: the gradient at 0 is 0 by convention, so use x > 0", lambda: dy * (x >= 0)),
            ("returned the mask x > 0 without multiplying it by dy", lambda: (x > 0).astype(x.dtype)),
            ("multiplied dy by relu(x) instead of by the mask x > 0", lambda: dy * np.maximum(x, 0)),
            ("returned dy unchanged: block it where x <= 0", lambda: dy),
        ]), case.tol)

    def pool_bugs_forward(kind):
        forward = ref.maxpool2d_forward if kind == "max" else ref.avgpool2d_forward

        def diagnose(case, actual):
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
            return _first_match(actual, iter(bugs), case.tol)
        return diagnose

    def max_bugs_backward(case, actual):
        (dy, x), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
        bugs = [(f"the gradient of a window with tied maxima was split among them: {FIRST_MAX}",
                 lambda: _max_routes(dy, x, pool, stride, tie="split")),
                (f"the whole gradient went to every tied maximum of a window: {FIRST_MAX}",
                 lambda: _max_routes(dy, x, pool, stride, tie="all")),
                (f"ties went to the last maximum of the window: {FIRST_MAX}",
                 lambda: _max_routes(dy, x, pool, stride, tie="last")),
                ("overlapping windows overwrite each other's gradient (dx[...] = ..., or a fancy-indexed +=, "
                 "keeps only the last write): accumulate with += per window, or np.add.at",
                 lambda: _max_routes(dy, x, pool, stride, accumulate=False)),
                ("routed 1 instead of the upstream gradient dy[b, c, i, j]",
                 lambda: _max_routes(dy, x, pool, stride, upstream=False)),
                ("every cell of the window received dy: only the maximum should",
                 lambda: ref.avgpool2d_backward(dy, x, pool, stride) * pool**2)]
        bugs += _step_bugs(pool, stride, functools.partial(_max_routes, dy, x, pool, stride))
        return _first_match(actual, iter(bugs), case.tol)

    def avg_bugs_backward(case, actual):
        (dy, x), pool, stride = case.args, case.kwargs["pool"], case.kwargs["stride"]
        bugs = [("missing the 1/pool**2 factor: each cell of a window receives dy / pool**2",
                 lambda: case.expected * pool**2),
                ("divided by pool instead of pool**2", lambda: case.expected * pool),
                ("overlapping windows overwrite each other's gradient (dx[...] = ...): accumulate with +=",
                 lambda: _avg_spreads(dy, x, pool, stride, accumulate=False))]
        bugs += _step_bugs(pool, stride, functools.partial(_avg_spreads, dy, x, pool, stride))
        return _first_match(actual, iter(bugs), case.tol)

    # ReLU: 4-D batches and one 2-D array (lesson 04 applies ReLU to dense layers too)
    relu_configs = [((2, 3, 5, 4), np.float64, "zeros"), ((2, 3, 6, 6), np.float32, "zeros"),
                    ((1, 2, 4, 5), np.float64, "negative"), ((3, 7), np.float32, "normal"),
                    (tuple(int(v) for v in rng.integers(1, 6, size=4)), np.float32, "zeros")]
    relu_forward, relu_backward = [], []
    for shape, dtype, kind in relu_configs:
        x = _values(rng, shape, dtype, kind)
        dy = _values(rng, shape, dtype, "normal")
        label = _label(shape, dtype, kind)
        relu_forward.append(Case("relu_forward", (x,), expected=ref.relu_forward(x), check=_KEEP_DTYPE, label=label))
        relu_backward.append(Case("relu_backward", (dy, x), expected=ref.relu_backward(dy, x), check=_KEEP_DTYPE,
                                  label=label))

    sizes = [(8, 2, 2), (7, 2, 2), (7, 3, 2), (5, 3, 1), (9, 3, 3), (10, 4, 3), (6, 1, 1), (8, 2, 3), (7, 2, 3)]
    output_size = [Case("pool_output_size", args, expected=ref.pool_output_size(*args), check=_int_check,
                        label=f"size {args[0]}, pool {args[1]}, stride {args[2]}") for args in sizes]

    pooled = {name: [] for name in ("max_fwd", "max_fwd_naive", "max_bwd", "max_bwd_naive", "avg_fwd", "avg_bwd")}
    for B, C, H, W, pool, stride, dtype, kind in _pool_configs(rng):
        x = _values(rng, (B, C, H, W), dtype, kind)
        dy = _values(rng, (B, C, ref.pool_output_size(H, pool, stride), ref.pool_output_size(W, pool, stride)),
                     dtype, "normal")
        kwargs, label = {"pool": pool, "stride": stride}, _label((B, C, H, W), dtype, kind, pool, stride)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        overlap = -(-pool // stride) ** 2            # the most windows one input pixel lies in
        # Expected values: the reference in float64 on the same inputs, cast to the case's dtype. The max
        # and its routing involve no rounding; a sum of `overlap` gradients or pool**2 inputs does.
        y_max = ref.maxpool2d_forward(x64, pool, stride).astype(dtype)
        dx_max = ref.maxpool2d_backward(dy64, x64, pool, stride).astype(dtype)
        max_bwd_tol = Tol(ref.maxpool2d_backward(np.abs(dy64), x64, pool, stride), overlap)
        for key, func, args, expected, tol in [
                ("max_fwd_naive", "maxpool2d_forward_naive", (x,), y_max, Tol()),
                ("max_fwd", "maxpool2d_forward", (x,), y_max, Tol()),
                ("max_bwd_naive", "maxpool2d_backward_naive", (dy, x), dx_max, max_bwd_tol),
                ("max_bwd", "maxpool2d_backward", (dy, x), dx_max, max_bwd_tol),
                ("avg_fwd", "avgpool2d_forward", (x,), ref.avgpool2d_forward(x64, pool, stride).astype(dtype),
                 Tol(ref.avgpool2d_forward(np.abs(x64), pool, stride), pool**2 + 1)),
                ("avg_bwd", "avgpool2d_backward", (dy, x), ref.avgpool2d_backward(dy64, x64, pool, stride).astype(dtype),
                 Tol(ref.avgpool2d_backward(np.abs(dy64), x64, pool, stride), overlap + 1))]:
            pooled[key].append(Case(func, args, kwargs, expected=expected, check=_KEEP_DTYPE, label=label, tol=tol))

    return [
        Part("test_relu_forward", relu_forward, diagnose=relu_bugs_forward),
        Part("test_relu_backward", relu_backward, diagnose=relu_bugs_backward),
        Part("test_pool_output_size", output_size, diagnose=_diagnose_pool_output_size),
        Part("test_maxpool2d_forward_naive", pooled["max_fwd_naive"], diagnose=pool_bugs_forward("max")),
        Part("test_maxpool2d_forward", pooled["max_fwd"], diagnose=pool_bugs_forward("max")),
        Part("test_maxpool2d_backward_naive", pooled["max_bwd_naive"], diagnose=max_bugs_backward),
        Part("test_maxpool2d_backward", pooled["max_bwd"], diagnose=max_bugs_backward),
        Part("test_avgpool2d_forward", pooled["avg_fwd"], diagnose=pool_bugs_forward("avg")),
        Part("test_avgpool2d_backward", pooled["avg_bwd"], diagnose=avg_bugs_backward),
    ]
