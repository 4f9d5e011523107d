"""Hidden checks for lesson 02 (ReLU and pooling).

Cases: randomized shapes; pool/stride combinations that tile, overlap (3/2, 3/1, 2/1), leave gaps
(2/3) or do nothing (1/1); sizes the window does not divide; float32 and float64 (the dtype must be
kept); all-negative inputs; inputs full of ties (small whole numbers) for the max-pooling tie rule;
exact zeros for ReLU. Upstream gradients `dy` take both signs.

Each diagnosis (the pooling ones in autograder.checks.common.pooling, shared with lesson 04)
recomputes typical bugs (with loops, or from `ref`) and names the one
the student's output matches: ties split or sent to every maximum, overlapping windows overwriting
instead of accumulating, stride ignored, the 1/pool**2 factor missing, the ReLU mask taken from dy
or including x == 0, ... A function that writes into its input (a running max or sum started on a
view of x) is caught before any diagnosis: the runner reports which argument changed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from autograder.checks.common import pooling
from autograder.grader.bugs import Bug
from autograder.grader.spec import Case, Part, Tol, compare, same_dtype
from convlab.diagnosis import first_matching_bug

LESSON = "02_relu_pooling"
_KEEP_DTYPE = same_dtype("np.zeros_like(x) rather than np.zeros(x.shape)")

POOLINGS = [(2, 2), (3, 2), (3, 1), (2, 1), (2, 3), (1, 1)]     # (pool, stride)


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
        return first_matching_bug(actual, [
            ("returned the mask x > 0 instead of the values max(0, x)", lambda: (x > 0).astype(x.dtype)),
            ("kept the negative part min(0, x): ReLU keeps the positive part", lambda: np.minimum(x, 0)),
            ("returned |x|: negative inputs must become 0", lambda: np.abs(x)),
        ], case.tol)

    def relu_bugs_backward(case, actual):
        dy, x = case.args
        return first_matching_bug(actual, [
            ("the mask uses dy > 0: it must come from the forward input, x > 0", lambda: dy * (dy > 0)),
            ("the mask includes x == 0: the gradient at 0 is 0 by convention, so use x > 0", lambda: dy * (x >= 0)),
            ("returned the mask x > 0 without multiplying it by dy", lambda: (x > 0).astype(x.dtype)),
            ("multiplied dy by relu(x) instead of by the mask x > 0", lambda: dy * np.maximum(x, 0)),
            ("returned dy unchanged: block it where x <= 0", lambda: dy),
        ], case.tol)

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
        overlap = pooling.overlap(pool, stride)
        # Expected values: the reference in float64 on the same inputs, cast to the case's dtype. The max
        # and its routing involve no rounding; a sum of `overlap` gradients or pool**2 inputs does.
        y_max = ref.maxpool2d_forward(x64, pool, stride).astype(dtype)
        dx_max = ref.maxpool2d_backward(dy64, x64, pool, stride).astype(dtype)
        max_bwd_tol = pooling.max_backward_tol(ref, dy64, x64, pool, stride)
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

    max_backward = pooling.diagnose_max_backward(ref)
    return [
        Part("test_relu_forward", relu_forward, diagnose=relu_bugs_forward),
        Part("test_relu_backward", relu_backward, diagnose=relu_bugs_backward),
        Part("test_pool_output_size", output_size, diagnose=_diagnose_pool_output_size),
        Part("test_maxpool2d_forward_naive", pooled["max_fwd_naive"], diagnose=pooling.diagnose_forward(ref, "max")),
        Part("test_maxpool2d_forward", pooled["max_fwd"], diagnose=pooling.diagnose_forward(ref, "max")),
        Part("test_maxpool2d_backward_naive", pooled["max_bwd_naive"], diagnose=max_backward),
        Part("test_maxpool2d_backward", pooled["max_bwd"], diagnose=max_backward),
        Part("test_avgpool2d_forward", pooled["avg_fwd"], diagnose=pooling.diagnose_forward(ref, "avg")),
        Part("test_avgpool2d_backward", pooled["avg_bwd"], diagnose=pooling.diagnose_avg_backward),
    ]


# ---------------------------------------------------------------- typical bugs
# Vectorized with fancy indexing: `dx[idx] += dy` is buffered, so when windows overlap and share
# a winner only the last window's gradient survives. Correct whenever stride >= pool.
_MAX_BACKWARD_FANCY_INDEX = '''\
def maxpool2d_backward(dy, x, pool=2, stride=2):
    B, C, H_out, W_out = dy.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    k = windows.reshape(B, C, H_out, W_out, pool * pool).argmax(axis=-1)
    rows = stride * np.arange(H_out)[:, None] + k // pool
    cols = stride * np.arange(W_out) + k % pool
    dx = np.zeros_like(x)
    dx[np.arange(B)[:, None, None, None], np.arange(C)[:, None, None], rows, cols] += dy
    return dx
'''

# Splits the gradient of a tied window equally among its maxima (a valid subgradient, not our rule).
_MAX_BACKWARD_NAIVE_SPLIT_TIES = '''\
def maxpool2d_backward_naive(dy, x, pool=2, stride=2):
    B, C, H_out, W_out = dy.shape
    dx = np.zeros_like(x)
    for b in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool]
                    is_max = window == window.max()
                    dx[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool] += \\
                        dy[b, c, i, j] * is_max / is_max.sum()
    return dx
'''

# Spreads dy over the window but forgets to divide it by the window's pool**2 cells.
_AVG_BACKWARD_NO_SCALE = '''\
def avgpool2d_backward(dy, x, pool=2, stride=2):
    H_out, W_out = dy.shape[2:]
    dx = np.zeros_like(x)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            dx[:, :, rows, cols] += dy
    return dx
'''

_RELU_BACKWARD_MASK_FROM_DY = '''\
def relu_backward(dy, x):
    return np.where(dy > 0, dy, 0)
'''

_RELU_BACKWARD_MASK_INCLUDES_ZERO = '''\
def relu_backward(dy, x):
    return dy * (x >= 0)
'''

# Loops over output pixels but starts window (i, j) at (i, j) instead of (stride * i, stride * j).
_MAX_FORWARD_NAIVE_STRIDE_IGNORED = '''\
def maxpool2d_forward_naive(x, pool=2, stride=2):
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    y = np.zeros((B, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            y[:, :, i, j] = x[:, :, i:i + pool, j:j + pool].max(axis=(2, 3))
    return y
'''

# Tested in process only (shipped=False): each names its bug or its in-place write.
_MAX_BACKWARD = '''\
def maxpool2d_backward(dy, x, pool=2, stride=2):
    H_out, W_out = dy.shape[2:]
    y = maxpool2d_forward(x, pool, stride)
    dx = np.zeros_like(x)
    pending = np.ones(y.shape, dtype=bool)      # windows whose gradient has not been routed yet
    for m, n in {taps}:
        rows, cols = tap_slices(m, n, stride, H_out, W_out)
        winner = {winner}
        dx[:, :, rows, cols] += dy * winner
        pending &= ~winner
    return dx
'''
_MAX_BACKWARD_ALL_MAXIMA = _MAX_BACKWARD.format(taps="np.ndindex(pool, pool)", winner="x[:, :, rows, cols] == y")
_MAX_BACKWARD_LAST_MAXIMUM = _MAX_BACKWARD.format(taps="reversed(list(np.ndindex(pool, pool)))",
                                                  winner="pending & (x[:, :, rows, cols] == y)")
_MAX_BACKWARD_NAIVE_STRIDE_IGNORED = '''\
def maxpool2d_backward_naive(dy, x, pool=2, stride=2):
    dx = np.zeros_like(x)
    for b, c, i, j in np.ndindex(*dy.shape):
        window = x[b, c, i:i + pool, j:j + pool]
        m, n = np.unravel_index(np.argmax(window), window.shape)
        dx[b, c, i + m, j + n] += dy[b, c, i, j]
    return dx
'''
_AVG_BACKWARD_OVERWRITES = '''\
def avgpool2d_backward(dy, x, pool=2, stride=2):
    dx = np.zeros_like(x)
    for i, j in np.ndindex(*dy.shape[2:]):
        dx[:, :, stride * i:stride * i + pool, stride * j:stride * j + pool] = dy[:, :, i:i + 1, j:j + 1] / pool**2
    return dx
'''

# lesson 02's tap loops with the {placeholders} filled in, one bug each
_MAX_FORWARD = '''\
def maxpool2d_forward(x, pool=2, stride=2):
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    {start}
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            np.maximum(y, x[:, :, rows, cols], out=y)
    return y
'''
_AVG_FORWARD = '''\
def avgpool2d_forward(x, pool=2, stride=2):
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    {start}
    for m, n in {taps}:
        rows, cols = tap_slices(m, n, stride, H_out, W_out)
        total += x[:, :, rows, cols]
    return {result}
'''
_FIRST_TAP_VIEW = "rows, cols = tap_slices(0, 0, stride, H_out, W_out)\n    {} = x[:, :, rows, cols]        # the first tap, a view of x"
_MAX_FORWARD_ZERO_START = _MAX_FORWARD.format(start="y = np.zeros((B, C, H_out, W_out), dtype=x.dtype)")
_MAX_FORWARD_FLOAT64 = _MAX_FORWARD.format(start="y = np.full((B, C, H_out, W_out), -np.inf)")
_MAX_FORWARD_ON_A_VIEW = _MAX_FORWARD.format(start=_FIRST_TAP_VIEW.format("y"))
_AVG_FORWARD_SUM = _AVG_FORWARD.format(start="total = np.zeros((B, C, H_out, W_out), dtype=x.dtype)",
                                       taps="np.ndindex(pool, pool)", result="total")
_AVG_FORWARD_SUM_ON_A_VIEW = _AVG_FORWARD.format(start=_FIRST_TAP_VIEW.format("total"),
                                                 taps="list(np.ndindex(pool, pool))[1:]", result="total / pool**2")

BUGS = {   # autograder.grader.bugs: each bug as students write it, and the cells it must fail
    "max_backward_overwrites_overlaps": Bug({"maxpool2d_backward": _MAX_BACKWARD_FANCY_INDEX},
                                            fails={"test_maxpool2d_backward": "overwrite each other's gradient"}),
    "max_backward_naive_splits_ties": Bug({"maxpool2d_backward_naive": _MAX_BACKWARD_NAIVE_SPLIT_TIES},
                                          fails={"test_maxpool2d_backward_naive": "split among them"}),
    "avg_backward_missing_scale": Bug({"avgpool2d_backward": _AVG_BACKWARD_NO_SCALE},
                                      fails={"test_avgpool2d_backward": "missing the 1/pool**2 factor"}),
    "relu_backward_mask_from_dy": Bug({"relu_backward": _RELU_BACKWARD_MASK_FROM_DY},
                                      fails={"test_relu_backward": "the mask uses dy > 0"}),
    "relu_backward_mask_includes_zero": Bug({"relu_backward": _RELU_BACKWARD_MASK_INCLUDES_ZERO},
                                            fails={"test_relu_backward": "the mask includes x == 0"}),
    "max_forward_naive_stride_ignored": Bug({"maxpool2d_forward_naive": _MAX_FORWARD_NAIVE_STRIDE_IGNORED},
                                            fails={"test_maxpool2d_forward_naive": "stride ignored"}),
    "max_backward_all_maxima": Bug({"maxpool2d_backward": _MAX_BACKWARD_ALL_MAXIMA}, shipped=False,
                                   fails={"test_maxpool2d_backward": "every tied maximum"}),
    "max_backward_last_maximum": Bug({"maxpool2d_backward": _MAX_BACKWARD_LAST_MAXIMUM}, shipped=False,
                                     fails={"test_maxpool2d_backward": "last maximum"}),
    "max_backward_naive_stride_ignored": Bug({"maxpool2d_backward_naive": _MAX_BACKWARD_NAIVE_STRIDE_IGNORED},
                                             shipped=False, fails={"test_maxpool2d_backward_naive": "stride ignored"}),
    "avg_backward_overwrites": Bug({"avgpool2d_backward": _AVG_BACKWARD_OVERWRITES}, shipped=False,
                                   fails={"test_avgpool2d_backward": "overwrite"}),
    "avg_forward_sums": Bug({"avgpool2d_forward": _AVG_FORWARD_SUM}, shipped=False,
                            fails={"test_avgpool2d_forward": "divide by pool**2"}),
    # maxpool2d_backward calls maxpool2d_forward: a forward bug costs its points too
    "max_forward_starts_at_zero": Bug({"maxpool2d_forward": _MAX_FORWARD_ZERO_START}, shipped=False,
                                      fails={"test_maxpool2d_forward": "starts at 0", "test_maxpool2d_backward": ""}),
    "max_forward_float64": Bug({"maxpool2d_forward": _MAX_FORWARD_FLOAT64}, shipped=False,
                               fails={"test_maxpool2d_forward": "keep the input's dtype"}),
    "max_forward_on_a_view": Bug({"maxpool2d_forward": _MAX_FORWARD_ON_A_VIEW}, shipped=False,
                                 fails={"test_maxpool2d_forward": "changed its argument x in place",
                                        "test_maxpool2d_backward": "changed its argument x in place"}),
    "avg_forward_on_a_view": Bug({"avgpool2d_forward": _AVG_FORWARD_SUM_ON_A_VIEW}, shipped=False,
                                 fails={"test_avgpool2d_forward": "changed its argument x in place"}),
    "relu_forward_returns_mask": Bug({"relu_forward": "def relu_forward(x):\n    return (x > 0).astype(x.dtype)\n"},
                                     shipped=False, fails={"test_relu_forward": "mask x > 0"}),
    # every pooling function sizes its output with pool_output_size
    "pool_output_size_rounds_up": Bug(
        {"pool_output_size": "def pool_output_size(size, pool, stride):\n"
                             "    return int(np.ceil((size - pool) / stride)) + 1\n"}, shipped=False,
        fails={"test_pool_output_size": "rounded up", "test_maxpool2d_forward_naive": "", "test_maxpool2d_forward": "",
               "test_maxpool2d_backward": "", "test_avgpool2d_forward": ""}),
}
