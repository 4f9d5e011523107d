"""Hidden checks of lesson 03 (convolution backward).

Randomised shapes: batch 1-3, channels 1-5 (some cases with C_in == C_out so that a transposed dW
has the right shape), non-square inputs and kernels (K 1-4), strides 1-3, paddings 0-2, and input
sizes where (H + 2*pad - K_h) is not a multiple of stride (the last rows of x get zero gradient).
float64 and float32 (float32 in must give float32 out for conv2d_backward; dilate and
conv2d_dx_rotated return the dtype of dy, as their docstrings say), and conv2d_backward
on a layer too big for Python loops over pixels (convlab.speed: 2 s of CPU time, as lesson 01's forward).

Expected values are computed by the reference in float64 and cast to the case's dtype. Each
gradient is a sum of products, judged by convlab.tolerance's rounding bound: its magnitude is the
same backward pass of |dy|, |x|, |w|, its length C_out*K_h*K_w for dx and B*H_out*W_out for dw and db
(autograder.checks.common.conv.backward_tol). The forward pass is judged, and diagnosed, as in
lessons 01 and 04 (common.conv).
"""
from __future__ import annotations

import numpy as np

from autograder.checks.common.conv import backward_tol, diagnose_forward, forward_case
from autograder.grader.bugs import Bug
from autograder.grader.spec import Case, Part, Raised, Tol, compare, same_dtype, tol_for
from convlab import conv_bugs
from convlab.diagnosis import first_matching_bug
from convlab.speed import SPEED_CHECK_NOTE, SPEED_SECONDS, speed_problem

LESSON = "03_conv_backward"
GRADIENTS = ("dx", "dw", "db")


# ---- random problems ------------------------------------------------------------------------------
def _size(rng, k: int, stride: int, pad: int, divisible: bool | None) -> int:
    """An input size giving at least 2 windows (so that stride matters), with (size + 2*pad - k) % stride
    == 0 when divisible, != 0 when not divisible (only possible for stride > 1), either when None."""
    sizes = [n for n in range(max(k - 2 * pad + stride, 1), k - 2 * pad + 4 * stride + 4)
             if n > 0 and (divisible is None or stride == 1 or ((n + 2 * pad - k) % stride == 0) == divisible)]
    return int(rng.choice(sizes))


def _problem(rng, stride, pad, dtype=np.float64, divisible=None, k_min=1, same_channels=False, big=False):
    """(dy, x, w, b, label): a random layer with the given stride and padding."""
    B = int(rng.integers(1, 4))
    C_in, C_out = (int(c) for c in rng.integers(1, 6 if big else 4, size=2))
    if same_channels:
        C_out = C_in = max(C_in, 2)
    K_h, K_w = (int(k) for k in rng.integers(k_min, 5, size=2))
    H = _size(rng, K_h, stride, pad, divisible) + (int(rng.integers(0, 6)) * stride if big else 0)
    W = _size(rng, K_w, stride, pad, None)
    H_out, W_out = (H + 2 * pad - K_h) // stride + 1, (W + 2 * pad - K_w) // stride + 1
    dy, x, w, b = (rng.standard_normal(s) for s in ((B, C_out, H_out, W_out), (B, C_in, H, W),
                                                    (C_out, C_in, K_h, K_w), (C_out,)))
    label = (f"B={B}, C_in={C_in}, C_out={C_out}, {H}x{W} input, K {K_h}x{K_w}, stride {stride}, pad {pad}, "
             f"{np.dtype(dtype).name}")
    return dy.astype(dtype), x.astype(dtype), w.astype(dtype), b.astype(dtype), label


def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


# ---- judging a (dx, dw, db) tuple ---------------------------------------------------------------
def _as_number(value):
    """A 0-d or one-element array counts as a number (for the scalar db of conv1d_backward)."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        return value.reshape(-1)[0]
    return value


def check_gradients(actual, case: Case) -> str | None:
    """actual must be (dx, dw, db) matching case.expected, each with the expected dtype when that is float32."""
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, (tuple, list)) or len(actual) != 3:
        got = f"{len(actual)} items" if isinstance(actual, (tuple, list)) else f"a {type(actual).__name__}"
        return f"{case.func} returned {got}, expected the tuple (dx, dw, db)"
    for name, got, want, tol in zip(GRADIENTS, actual, case.expected, (tol_for(case.tol, i) for i in range(3))):
        got = _as_number(got) if not isinstance(want, np.ndarray) else got
        if problem := compare(got, want, f"{name} from {case.func}", tol):
            return problem
    for name, got, want in zip(GRADIENTS, actual, case.expected):
        if isinstance(want, np.ndarray) and want.dtype == np.float32 and got.dtype != np.float32:
            return f"{name} from {case.func} has dtype {got.dtype}, expected float32 (the inputs are float32)"
    return None


def _close(got, want, tol: Tol | None = None) -> bool:
    return isinstance(got, np.ndarray) and (tol or Tol()).matches(got, want)


# ---- typical bugs: convlab.conv_bugs, shared with the visible tests, on the reference -------------
def _reference_backward(ref):
    """The reference as conv_bugs' `backward(dy, x, w, stride, pad)`, in float64."""
    def backward(dy, x, w, stride, pad):
        return ref.conv2d_backward(*_f64(dy, x, w), stride=stride, pad=pad)
    return backward


WRONG_DTYPE = ("gradients with the wrong dtype: float32 inputs must give float32 gradients (np.zeros defaults "
               "to float64: allocate with dtype=x.dtype or np.zeros_like)")


def _diagnose_backward(ref):
    backward = _reference_backward(ref)

    def diagnose(case: Case, actual) -> str | None:
        if not isinstance(actual, (tuple, list)) or len(actual) != 3:
            return None
        dy, x, w = _f64(*case.args)
        tols = {name: tol_for(case.tol, i) for i, name in enumerate(GRADIENTS)}
        found = conv_bugs.backward_bug(backward, dy, x, w, case.kwargs["stride"], case.kwargs["pad"], actual,
                                       {name: tol.matches for name, tol in tols.items()})
        if not found and any(isinstance(g, np.ndarray) and g.dtype != e.dtype for g, e in zip(actual, case.expected)):
            return WRONG_DTYPE
        return found
    return diagnose


_KEEP_DY_DTYPE = same_dtype("np.zeros defaults to float64: pass dtype=dy.dtype")   # dilate, conv2d_dx_rotated


def check_dx_rotated(actual, case: Case) -> str | None:
    """_KEEP_DY_DTYPE, but a NotImplementedError may come from a function conv2d_dx_rotated calls, and an
    error where the kernel's channels do not fit may be that its channel axes were not swapped."""
    if isinstance(actual, Raised) and actual.type == "NotImplementedError":
        return ("conv2d_dx_rotated raised NotImplementedError: it, or a function it calls (conv2d_forward, "
                "rot180, dilate), is not implemented yet")
    w = case.args[1]
    if isinstance(actual, Raised) and actual.type in ("ValueError", "IndexError", "AssertionError") and \
            w.shape[0] != w.shape[1]:   # (Part.diagnose sees no Raised) the channels that do not fit tell
        return f"{actual.describe(case.func)} (here C_in != C_out; a likely bug: {conv_bugs.CHANNELS_NOT_SWAPPED})"
    return _KEEP_DY_DTYPE(actual, case)


def _diagnose_dx_rotated(ref):
    def diagnose(case: Case, actual) -> str | None:
        dy, w, x_shape = _f64(*case.args[:2]) + (case.args[2],)
        return conv_bugs.dx_bug(_reference_backward(ref), dy, np.zeros(x_shape), w, case.kwargs["stride"],
                                case.kwargs["pad"], actual, tol_for(case.tol, 0).matches)
    return diagnose


def _diagnose_conv1d(case: Case, actual) -> str | None:
    if not isinstance(actual, (tuple, list)) or len(actual) != 3:
        return None
    dy, x, w = case.args
    dx, dw, db = actual
    if isinstance(dx, np.ndarray) and dx.shape == dy.shape != x.shape:
        return ("dx has the length of dy, but it needs one entry per input: pad dy with K-1 zeros on both sides "
                "(the full convolution)")
    dx_tol, dw_tol = tol_for(case.tol, 0), tol_for(case.tol, 1)
    if _close(dx, np.convolve(dy, w[::-1], "full"), dx_tol) and not _close(dx, case.expected[0], dx_tol):
        return "kernel not flipped in dx: slide the flipped kernel w[::-1] over the padded dy"
    if _close(dw, case.expected[1][::-1], dw_tol) and not _close(dw, case.expected[1], dw_tol):
        return "dw is reversed: dw[m] = sum_i dy[i] x[i + m], no flip"
    if np.size(db) != 1:
        return "db must be a single number, the sum of dy (the bias is a scalar)"
    return None


def _expected(compute, dtype):
    """compute() in float64 (the reference on float64 copies), cast to the case's dtype (tuples element-wise)."""
    out = compute()
    if isinstance(out, tuple):
        return tuple(np.asarray(o, dtype=dtype) for o in out)
    return np.asarray(out, dtype=dtype)


def _diagnose_rot180(case: Case, actual) -> str | None:
    w = case.args[0]
    if not isinstance(actual, np.ndarray):
        return None
    if actual.shape == w.shape[:-2] + w.shape[:-3:-1] and actual.shape != w.shape:
        return ("rot180 swapped K_h and K_w (a transpose or np.rot90 once): reverse both axes instead, "
                "w[..., ::-1, ::-1]")
    bugs = [("only the rows reversed: reverse the columns too", w[..., ::-1, :]),
            ("only the columns reversed: reverse the rows too", w[..., :, ::-1])]
    if w.ndim > 2:
        bugs[:0] = [("all axes reversed, the channel axes too: flip only the last two, w[..., ::-1, ::-1]", np.flip(w)),
                    ("the first two axes reversed (np.rot90 and w[::-1, ::-1] act on axes 0 and 1): reverse the "
                     "last two, w[..., ::-1, ::-1] or np.rot90(w, 2, axes=(-2, -1))", w[::-1, ::-1])]
    return None if _close(actual, case.expected, case.tol) else first_matching_bug(actual, bugs, case.tol)


def _diagnose_dilate(case: Case, actual) -> str | None:
    dy, stride = case.args
    if not isinstance(actual, np.ndarray) or actual.ndim != 4:
        return None
    B, C, H_out, W_out = dy.shape
    if stride > 1 and _close(actual, dy, case.tol):
        return "nothing inserted: dilate must put stride - 1 zeros between neighbouring rows and columns"
    if actual.shape == (B, C, H_out * stride, W_out * stride) and stride > 1:
        return ("zeros after the last row/column: the result has (H_out - 1)*stride + 1 rows, "
                "zeros only between entries")
    if actual.shape != case.expected.shape and actual.shape in (
            (B, C, (H_out - 1) * stride + 1, W_out), (B, C, H_out, (W_out - 1) * stride + 1)):
        return "zeros inserted along one axis only: dilate both rows and columns"
    if actual.shape[:2] != (B, C):
        return "the batch and channel axes must stay as they are: dilate only the last two axes"
    return None


# ---- the parts ------------------------------------------------------------------------------------
# (stride, pad, dtype, divisible, k_min, same_channels): simple first, so that the first failing
# case names the most specific bug (a stride bug shows first on a stride > 1 case, and so on).
NAIVE_SPECS = [(1, 0, np.float64, None, 2, False), (1, 1, np.float64, None, 2, True),
               (2, 0, np.float64, False, 2, False), (2, 1, np.float64, False, 1, True),
               (3, 2, np.float64, False, 1, False)]
FULL_SPECS = NAIVE_SPECS + [(1, 2, np.float32, None, 1, False), (2, 1, np.float32, False, 2, True),
                            (3, 1, np.float32, None, 1, False), (3, 0, np.float64, True, 2, False)]
ROTATED_SPECS = NAIVE_SPECS + [(2, 1, np.float32, False, 2, True)]


def _backward_cases(ref, rng, func, specs, big=False):
    cases = []
    for stride, pad, dtype, divisible, k_min, same in specs:
        dy, x, w, _, label = _problem(rng, stride, pad, dtype, divisible, k_min, same, big)
        kwargs = {"stride": stride, "pad": pad}
        expected = _expected(lambda: ref.conv2d_backward(*_f64(dy, x, w), **kwargs), dtype)
        cases.append(Case(func, (dy, x, w), kwargs, expected=expected, check=check_gradients, label=label,
                          tol=backward_tol(ref, dy, x, w, **kwargs)))
    return cases


def _speed_case(ref, rng) -> Case:
    """convlab.speed's problem and limit for the backward: instant when vectorized, far beyond the limit
    when conv2d_backward loops over every (image, channel, pixel) as the naive one does."""
    dy, x, w = speed_problem(rng, "dy", "x", "w")
    kwargs = {"stride": 1, "pad": 1}
    expected = _expected(lambda: ref.conv2d_backward(*_f64(dy, x, w), **kwargs), np.float32)
    return Case("conv2d_backward", (dy, x, w), kwargs, expected=expected, check=check_gradients, timeout=SPEED_SECONDS,
                label=f"B=32, C_in=3, C_out=16, 64x64 input, K 3x3, stride 1, pad 1, float32 {SPEED_CHECK_NOTE}",
                tol=backward_tol(ref, dy, x, w, **kwargs))


def parts(ref, rng) -> list[Part]:
    forward_cases = []
    for stride, pad, dtype in [(1, 0, np.float64), (2, 1, np.float64), (3, 2, np.float32), (1, 1, np.float64)]:
        _, x, w, b, label = _problem(rng, stride, pad, dtype, divisible=False, k_min=2)
        forward_cases.append(forward_case(ref, "conv2d_forward", x, w, b, stride, pad, label))

    conv1d_cases = []
    for N, K in [(int(rng.integers(5, 12)), 3), (int(rng.integers(4, 9)), int(rng.integers(2, 5))),
                 (int(rng.integers(2, 6)), 1), (4, 4)]:
        x, w, dy = rng.standard_normal(N), rng.standard_normal(K), rng.standard_normal(N - K + 1)
        dx, dw, db = ref.conv1d_backward(dy, x, w)
        magnitudes = ref.conv1d_backward(np.abs(dy), np.abs(x), np.abs(w))   # dx sums K products, dw and db N-K+1
        tol = (Tol(magnitudes[0], K), Tol(magnitudes[1], N - K + 1), Tol(float(magnitudes[2]), N - K + 1))
        conv1d_cases.append(Case("conv1d_backward", (dy, x, w), expected=(dx, dw, float(db)),
                                 check=check_gradients, label=f"N={N}, K={K}", tol=tol))

    kernels = [rng.standard_normal(shape) for shape in [(2, 3, 2, 3), (3, 1, 4, 2), (3, 4), (2, 1, 1, 3)]]
    rot_cases = [Case("rot180", (w,), expected=np.array(ref.rot180(w)), label=f"w of shape {w.shape}") for w in kernels]

    dilate_cases = []
    for stride, shape, dtype in [(2, (1, 1, 2, 2), np.float64), (3, (2, 3, 3, 4), np.float64),
                                 (1, (2, 2, 3, 3), np.float64), (2, (1, 2, 1, 4), np.float64),
                                 (3, (2, 1, 4, 1), np.float64), (2, (2, 1, 3, 2), np.float32),
                                 (1, (1, 2, 2, 3), np.float32)]:
        dy = rng.standard_normal(shape).astype(dtype)
        dilate_cases.append(Case("dilate", (dy, stride), expected=ref.dilate(dy, stride), check=_KEEP_DY_DTYPE,
                                 label=f"dy of shape {shape}, stride {stride}, {np.dtype(dtype).name}"))

    rotated_cases = []
    for stride, pad, dtype, divisible, k_min, same in ROTATED_SPECS:
        dy, x, w, _, label = _problem(rng, stride, pad, dtype, divisible, k_min, same)
        kwargs = {"stride": stride, "pad": pad}
        expected = _expected(lambda: ref.conv2d_dx_rotated(*_f64(dy, w), x.shape, **kwargs), dtype)
        rotated_cases.append(Case("conv2d_dx_rotated", (dy, w, x.shape), kwargs, expected=expected,
                                  check=check_dx_rotated, label=label, tol=backward_tol(ref, dy, x, w, **kwargs)[0]))

    backward_diagnose = _diagnose_backward(ref)
    return [
        Part("test_conv2d_forward", forward_cases, diagnose=diagnose_forward(ref)),
        Part("test_conv1d_backward", conv1d_cases, diagnose=_diagnose_conv1d),
        Part("test_conv2d_backward_naive", _backward_cases(ref, rng, "conv2d_backward_naive", NAIVE_SPECS),
             diagnose=backward_diagnose),
        Part("test_rot180", rot_cases, diagnose=_diagnose_rot180),
        Part("test_dilate", dilate_cases, diagnose=_diagnose_dilate),
        Part("test_conv2d_dx_rotated", rotated_cases, diagnose=_diagnose_dx_rotated(ref)),
        Part("test_conv2d_backward", _backward_cases(ref, rng, "conv2d_backward", FULL_SPECS, big=True)
             + [_speed_case(ref, rng)], diagnose=backward_diagnose),
    ]


# ---- typical bugs ---------------------------------------------------------------------------------
# The reference's conv2d_backward with the {placeholders} filled in: correct by default, one bug per sample.
_BACKWARD = '''def conv2d_backward(dy, x, w, stride=1, pad=0):
    B, C_out, H_out, W_out = dy.shape
    _, C_in, K_h, K_w = w.shape
    _, _, H, W = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K_h * K_w, B * H_out * W_out)
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(C_out, B * H_out * W_out)
    dw = {dw}
    dcols = (w.reshape(C_out, -1).T @ dy_mat).reshape(C_in, K_h, K_w, B, H_out, W_out)
    dx_pad = np.zeros(({dx_pad_shape}), dtype={dtype})
    for m in range(K_h):
        for n in range(K_w):
            dx_pad[:, :, {rows}, {cols}] += dcols[:, m, n]
    dx = dx_pad[:, :, {crop}].transpose(1, 0, 2, 3)
    return dx, dw, {db}
'''
_CORRECT = {"dw": "(dy_mat @ cols.T).reshape(w.shape)", "dtype": "dcols.dtype", "db": "dy.sum(axis=(0, 2, 3))",
            "rows": "m:m + stride * H_out:stride", "cols": "n:n + stride * W_out:stride",
            "dx_pad_shape": "C_in, B, H + 2 * pad, W + 2 * pad", "crop": "pad:pad + H, pad:pad + W"}


def _backward(**bug: str) -> str:
    return _BACKWARD.format(**(_CORRECT | bug))


def _rot180(body: str) -> dict[str, str]:
    return {"rot180": f"def rot180(w):\n    return {body}\n"}


# The rotated-kernel form, its kernel left as a {placeholder}; without the rotation: dy convolved with w itself.
_DX_ROTATED = '''def conv2d_dx_rotated(dy, w, x_shape, stride=1, pad=0):
    _, C_in, H, W = x_shape
    _, _, K_h, K_w = w.shape
    dy_full = np.pad(dilate(dy, stride), ((0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)))
    covered = conv2d_forward(dy_full, {kernel}, np.zeros(C_in))
    dx_pad = np.zeros((dy.shape[0], C_in, H + 2 * pad, W + 2 * pad))
    dx_pad[:, :, :covered.shape[2], :covered.shape[3]] = covered
    return dx_pad[:, :, pad:pad + H, pad:pad + W]
'''
_DX_NOT_FLIPPED = _DX_ROTATED.format(kernel="w.transpose(1, 0, 2, 3)")

# The loops, returning dx_pad itself.
_NAIVE_NOT_CROPPED = '''def conv2d_backward_naive(dy, x, w, stride=1, pad=0):
    B, C_out, H_out, W_out = dy.shape
    _, _, K_h, K_w = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for b in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(stride * i, stride * i + K_h), slice(stride * j, stride * j + K_w)
                    dx_pad[b, :, rows, cols] += dy[b, co, i, j] * w[co]
                    dw[co] += dy[b, co, i, j] * x_pad[b, :, rows, cols]
    return dx_pad, dw, dy.sum(axis=(0, 2, 3))
'''

BUGS = {   # autograder.grader.bugs: each bug as students write it, and the cells it must fail
    "kernel_not_flipped": Bug({"conv2d_dx_rotated": _DX_NOT_FLIPPED},
                              fails={"test_conv2d_dx_rotated": "kernel not flipped in dX"}),
    # col2im scattering with step 1: the same as forgetting to dilate dy.
    "stride_ignored_in_dx": Bug({"conv2d_backward": _backward(rows="m:m + H_out", cols="n:n + W_out")},
                                fails={"test_conv2d_backward": "stride ignored in dX"}),
    # dilate() that inserts nothing: conv2d_dx_rotated, which calls it, loses its stride too.
    "no_dilation": Bug({"dilate": "def dilate(dy, stride):\n    return dy\n"},
                       fails={"test_dilate": "nothing inserted", "test_conv2d_dx_rotated": "stride ignored in dX"}),
    "padding_not_cropped": Bug({"conv2d_backward_naive": _NAIVE_NOT_CROPPED},
                               fails={"test_conv2d_backward_naive": "padding not cropped"}),
    "db_wrong_axes": Bug({"conv2d_backward": _backward(db="dy.sum(axis=(2, 3))")},
                         fails={"test_conv2d_backward": "db summed over the wrong axes"}),
    "dw_transposed": Bug({"conv2d_backward": _backward(
        dw="(cols @ dy_mat.T).reshape(C_in, K_h, K_w, C_out).transpose(0, 3, 1, 2)")},
        fails={"test_conv2d_backward": "C_out and C_in axes swapped"}),
    "float64_gradients": Bug({"conv2d_backward": _backward(dtype="np.float64")},
                             fails={"test_conv2d_backward": "wrong dtype"}),
    # The "vectorized" backward just calls the loops: correct, but caught by the speed check's time limit.
    "backward_calls_naive": Bug({"conv2d_backward": (
        "def conv2d_backward(dy, x, w, stride=1, pad=0):\n"
        "    return conv2d_backward_naive(dy, x, w, stride=stride, pad=pad)\n")},
        fails={"test_conv2d_backward": "did not return within the time limit"}),
    # Lesson 01's forward not pasted: its own test and the rotated form that calls it fail.
    "forward_not_pasted": Bug({"conv2d_forward": "def conv2d_forward(x, w, b, stride=1, pad=0):\n"
                                                "    raise NotImplementedError()\n"},
                              fails={"test_conv2d_forward": "not implemented",
                                     "test_conv2d_dx_rotated": "a function it calls (conv2d_forward"}),
    # Tested in process only (shipped=False); conv2d_dx_rotated calls rot180.
    "dx_channels_not_swapped": Bug({"conv2d_dx_rotated": _DX_ROTATED.format(kernel="rot180(w)")}, shipped=False,
                                   fails={"test_conv2d_dx_rotated": "channel axes not swapped"}),
    # dtype=dy.dtype forgotten: right values, float64 for float32 dy (the rule of both docstrings).
    "dilate_float64": Bug({"dilate": "def dilate(dy, stride):\n"
                                     "    B, C, H_out, W_out = dy.shape\n"
                                     "    out = np.zeros((B, C, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1))\n"
                                     "    out[:, :, ::stride, ::stride] = dy\n"
                                     "    return out\n"}, shipped=False,
                          fails={"test_dilate": "returned float64 for float32 input",
                                 "test_conv2d_dx_rotated": "returned float64 for float32 input"}),
    "dx_rotated_float64": Bug({"conv2d_dx_rotated": _DX_ROTATED.format(kernel="rot180(w).transpose(1, 0, 2, 3)")},
                              shipped=False, fails={"test_conv2d_dx_rotated": "returned float64 for float32 input"}),
    "dx_cropped_at_wrong_offset": Bug({"conv2d_backward": _backward(crop=":H, :W")}, shipped=False,
                                      fails={"test_conv2d_backward": "cropped at the wrong offset"}),
    "dx_rows_missing": Bug({"conv2d_backward": _backward(
        dx_pad_shape="C_in, B, (H_out - 1) * stride + K_h, (W_out - 1) * stride + K_w")}, shipped=False,
        fails={"test_conv2d_backward": "no window reached"}),
    "dw_rotated": Bug({"conv2d_backward": _backward(dw="(dy_mat @ cols.T).reshape(w.shape)[..., ::-1, ::-1]")},
                      shipped=False, fails={"test_conv2d_backward": "rotated by 180"}),
    "dw_kernel_axes_swapped": Bug({"conv2d_backward": _backward(dw="(dy_mat @ cols.T).reshape(w.shape).swapaxes(2, 3)")},
                                  shipped=False, fails={"test_conv2d_backward": "K_h and K_w axes swapped"}),
    "dw_averaged": Bug({"conv2d_backward": _backward(dw="(dy_mat @ cols.T).reshape(w.shape) / B")}, shipped=False,
                       fails={"test_conv2d_backward": "divided by the batch size"}),
    "db_averaged": Bug({"conv2d_backward": _backward(db="dy.mean(axis=(0, 2, 3))")}, shipped=False,
                       fails={"test_conv2d_backward": "averaged instead of summed"}),
    "db_summed_to_a_number": Bug({"conv2d_backward": _backward(db="dy.sum()")}, shipped=False,
                                 fails={"test_conv2d_backward": "db summed over the wrong axes"}),
    "rot180_transposed": Bug(_rot180("w.swapaxes(-1, -2)"), shipped=False,
                             fails={"test_rot180": "swapped K_h and K_w", "test_conv2d_dx_rotated": ""}),
    "rot180_flips_every_axis": Bug(_rot180("np.flip(w)"), shipped=False,
                                   fails={"test_rot180": "all axes reversed", "test_conv2d_dx_rotated": ""}),
    "rot180_first_two_axes": Bug(_rot180("np.rot90(w, 2)"), shipped=False,
                                 fails={"test_rot180": "first two axes reversed", "test_conv2d_dx_rotated": ""}),
    "rot180_rows_only": Bug(_rot180("w[..., ::-1, :]"), shipped=False,
                            fails={"test_rot180": "only the rows reversed", "test_conv2d_dx_rotated": "one axis only"}),
}
