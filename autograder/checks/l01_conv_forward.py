"""Hidden checks for lesson 01, convolution forward.

Randomized shapes (non-square inputs and kernels, B = 1, a kernel as big as the padded input),
strides 1 to 3, paddings 0 to 2, float32 and float64; conv2d_forward must keep the input dtype and be
vectorized (one large case with a short time limit). The diagnose functions name the classic bugs
by comparing the student's output with the reference run on buggy variants of the inputs.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.grader.bugs import Bug
from autograder.grader.spec import Case, Part, Raised, Tol, compare, same_dtype

LESSON = "01_conv_forward"
_KEEP_DTYPE = same_dtype("convert w and b with .astype(x.dtype)")

# (B, C_in, C_out, kernel (K_h, K_w) or None for random, stride, pad, dtype); sizes are drawn around these.
_CONV_CONFIGS = [
    (2, 3, 4, None, 1, 1, np.float64),
    (1, 1, 2, (2, 3), 2, 0, np.float64),
    (2, 2, 3, (3, 2), 3, 2, np.float64),
    (3, 3, 2, (1, 1), 2, 1, np.float64),
    (2, 3, 4, (3, 3), 2, 2, np.float32),
    (1, 2, 3, None, 3, 1, np.float32),
    (1, 2, 2, "input", 1, 0, np.float64),     # kernel exactly the input size: a 1x1 output
    (2, 1, 2, "padded", 2, 1, np.float32),    # kernel exactly the padded size
]


def parts(ref, rng: np.random.Generator) -> list[Part]:
    diagnose = functools.partial(diagnose_conv, ref)
    conv_cases = [_random_conv(rng, *config) for config in _CONV_CONFIGS]
    forward_cases = [_conv_case(ref, "conv2d_forward", *args) for args in conv_cases]
    forward_cases.append(_speed_case(ref, rng))
    return [
        Part("test_conv_output_size", _size_cases(ref, rng), diagnose=_diagnose_size),
        Part("test_zero_pad", _pad_cases(ref, rng), diagnose=_diagnose_pad),
        Part("test_conv_single_step", _step_cases(ref, rng), diagnose=_diagnose_step),
        Part("test_conv2d_forward_naive", [_conv_case(ref, "conv2d_forward_naive", *args) for args in conv_cases],
             diagnose=diagnose),
        Part("test_conv2d_forward", forward_cases, diagnose=diagnose),
    ]


# ---- conv_output_size ----------------------------------------------------------------------------
def _size_cases(ref, rng) -> list[Case]:
    # Ordered so that the first failing case tells the bugs apart: on (9, 5, 1, 2) a missing + 1, one-sided
    # padding (or `in_size + 2` for `in_size + 2 * pad`) and no padding give 8, 7 and 5; on (8, 3, 2, 0) the
    # `+ 2` bug would look like rounding up, which (10, 4, 3, 2) shows first.
    fixed = [(9, 5, 1, 2), (7, 3, 2, 1), (10, 4, 3, 2), (8, 3, 2, 0), (5, 5, 1, 0), (3, 5, 1, 1)]
    drawn = []
    while len(drawn) < 5:
        in_size, kernel, stride, pad = int(rng.integers(1, 40)), int(rng.integers(1, 8)), \
            int(rng.integers(1, 4)), int(rng.integers(0, 4))
        if kernel <= in_size + 2 * pad:
            drawn.append((in_size, kernel, stride, pad))
    fits = [Case("conv_output_size", (n, k), {"stride": s, "pad": p}, expected=ref.conv_output_size(n, k, s, p),
                 check=_whole_number, label=f"in_size={n}, kernel_size={k}, stride={s}, pad={p}")
            for n, k, s, p in fixed + drawn]
    # The docstring's contract: a window that does not fit raises ValueError (expected stays None).
    return fits + [Case("conv_output_size", (3, 6), {"stride": 1, "pad": 1}, check=_raises_value_error,
                        label="in_size=3, kernel_size=6, stride=1, pad=1: the window does not fit")]


def _raises_value_error(actual, case: Case) -> str | None:
    if isinstance(actual, Raised):            # another exception: say which (the label says what was expected)
        return None if actual.type == "ValueError" else actual.describe(case.func)
    return (f"conv_output_size(...) returned {actual!r} for a window that does not fit in the padded input: "
            "raise ValueError, as the docstring says")


def _whole_number(actual, case: Case) -> str | None:
    if isinstance(actual, (float, np.floating)) and float(actual).is_integer() and actual == case.expected:
        return (f"conv_output_size(...) returned the float {actual!r}, expected the int {case.expected}: "
                "use floor division // so the size can be used as an array shape")
    return compare(actual, case.expected, name="conv_output_size(...)")


def _diagnose_size(case: Case, actual) -> str | None:
    if case.expected is None:                 # the case that must raise: its message says it all
        return None
    (in_size, kernel), stride, pad = case.args, case.kwargs["stride"], case.kwargs["pad"]
    bugs = [(in_size + 2 * pad - kernel + 1, "stride ignored: divide by the stride"),
            ((in_size + 2 * pad - kernel) // stride, "the + 1 is missing: position 0 counts too"),
            ((in_size + pad - kernel) // stride + 1,
             "padding counted on one side only (or in_size + 2 for in_size + 2 * pad): pad zeros go on both sides"),
            ((in_size - kernel) // stride + 1, "padding ignored"),
            (-(-(in_size + 2 * pad - kernel) // stride) + 1, "rounded up instead of down: use floor division //")]
    return next((bug for value, bug in bugs if value != case.expected and _same_number(actual, value)), None)


def _same_number(actual, value, tol: Tol = Tol()) -> bool:
    return isinstance(actual, (int, float, np.integer, np.floating)) and not isinstance(actual, bool) \
        and tol.matches(float(actual), value)


# ---- zero_pad ------------------------------------------------------------------------------------
def _pad_cases(ref, rng) -> list[Case]:
    cases = []
    for pad, dtype in [(1, np.float64), (2, np.float32), (0, np.float64), (3, np.float64)]:
        shape = tuple(int(v) for v in rng.integers(1, 6, size=4))
        x = rng.standard_normal(shape).astype(dtype)
        cases.append(Case("zero_pad", (x, pad), expected=ref.zero_pad(x, pad),
                          label=f"x of shape {shape}, pad={pad}, {np.dtype(dtype).name}"))
    return cases


def _diagnose_pad(case: Case, actual) -> str | None:
    x, pad = case.args
    if not isinstance(actual, np.ndarray) or pad == 0:
        return None
    B, C, H, W = x.shape
    if actual.shape == (B + 2 * pad, C + 2 * pad, H + 2 * pad, W + 2 * pad):
        return "all four axes padded: pad only height and width, not batch and channels"
    if actual.shape == (B, C, H + pad, W + pad):
        return "padded on one side only: pad zeros before and after"
    if actual.shape == case.expected.shape and not np.allclose(actual[:, :, pad:-pad, pad:-pad], x):
        return "the input is not centred in the padded array"
    if actual.shape == case.expected.shape:
        return "the border is not all zeros"
    return None


# ---- conv_single_step ----------------------------------------------------------------------------
def _step_cases(ref, rng) -> list[Case]:
    cases = []
    for C_in, K_h, K_w in [(1, 2, 2), (3, 3, 3), (2, 1, 4), (4, 5, 2)]:
        x_patch, w = rng.standard_normal((2, C_in, K_h, K_w))
        b = float(rng.standard_normal())
        cases.append(Case("conv_single_step", (x_patch, w, b), expected=ref.conv_single_step(x_patch, w, b),
                          label=f"patch of shape {(C_in, K_h, K_w)}",
                          tol=Tol(float(np.sum(np.abs(x_patch * w))) + abs(b), x_patch.size + 1)))
    return cases


def _diagnose_step(case: Case, actual) -> str | None:
    x_patch, w, b = case.args
    products = float(np.sum(x_patch * w))
    bugs = [(products, "bias missing"),
            (float(np.sum(x_patch * w[:, ::-1, ::-1])) + b, "kernel flipped: do not flip w (cross-correlation)"),
            (products + b * x_patch.size, "bias added to every product instead of once"),
            (float(np.mean(x_patch * w)) + b, "mean instead of sum"),
            (float(np.sum(x_patch[0] * w[0])) + b, "only the first input channel summed")]
    if x_patch.shape[-1] == w.shape[-2]:
        bugs.append((float(np.sum(x_patch @ w)) + b, "matrix product @ instead of the elementwise product *"))
    return next((bug for value, bug in bugs if not case.tol.matches(value, case.expected)
                 and _same_number(actual, value, case.tol)), None)


# ---- conv2d_forward_naive and conv2d_forward -------------------------------------------------------
def _random_conv(rng, B, C_in, C_out, kernel, stride, pad, dtype):
    """Inputs (x, w, b, stride, pad) for one config; H != W and K_h != K_w where the config allows."""
    if kernel == "input":
        H, W = int(rng.integers(3, 6)), int(rng.integers(3, 6))
        K_h, K_w = H + 2 * pad, W + 2 * pad
    elif kernel == "padded":
        H, W = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        K_h, K_w = H + 2 * pad, W + 2 * pad
    else:
        K_h, K_w = kernel or (int(rng.integers(2, 4)), int(rng.integers(2, 5)))
        H, W = int(rng.integers(max(K_h, 4), 9)), int(rng.integers(max(K_w, 4), 10))
        W += W == H                                   # keep the input non-square
    x = rng.standard_normal((B, C_in, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, C_in, K_h, K_w)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    return x, w, b, stride, pad


def conv_tol(ref, x, w, b, stride, pad) -> Tol:
    """The rounding bound of a convolution: each output sums C_in*K_h*K_w products and the bias, so its
    magnitude is the same convolution of |x|, |w|, |b| (convlab.tolerance)."""
    magnitude = ref.conv2d_forward(*(np.abs(np.asarray(a, dtype=np.float64)) for a in (x, w, b)),
                                   stride=stride, pad=pad)
    return Tol(magnitude, int(np.prod(w.shape[1:])) + 1)


def _conv_case(ref, func, x, w, b, stride, pad, timeout=10.0, extra="") -> Case:
    expected = ref.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                  stride=stride, pad=pad).astype(x.dtype)
    label = (f"B={x.shape[0]}, C_in={x.shape[1]} -> C_out={w.shape[0]}, {x.shape[2]}x{x.shape[3]} input, "
             f"{w.shape[2]}x{w.shape[3]} kernel, stride {stride}, pad {pad}, {x.dtype.name}{extra}")
    return Case(func, (x, w, b), {"stride": stride, "pad": pad}, expected=expected, label=label, timeout=timeout,
                check=_KEEP_DTYPE if func == "conv2d_forward" else None, tol=conv_tol(ref, x, w, b, stride, pad))


def _speed_case(ref, rng) -> Case:
    """2 million outputs: instant when vectorized, far beyond the time limit with a loop over pixels."""
    x = rng.standard_normal((32, 3, 64, 64)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    return _conv_case(ref, "conv2d_forward", x, w, b, 1, 1, timeout=5.0,
                      extra=" (speed check: must be vectorized, no Python loop over pixels)")


def diagnose_conv(ref, case: Case, actual) -> str | None:
    if not isinstance(actual, np.ndarray):
        return None
    x, w, b = (a.astype(np.float64) for a in case.args)
    stride, pad = case.kwargs["stride"], case.kwargs["pad"]
    expected = case.expected.astype(np.float64)
    B, C_out, H_out, W_out = expected.shape
    C_in, K_h, K_w = w.shape[1:]
    kernel_axes = "kernel height and width swapped: w has shape (C_out, C_in, K_h, K_w), K_h goes with the rows"
    swapped_fits = K_h != K_w and K_w <= x.shape[2] + 2 * pad and K_h <= x.shape[3] + 2 * pad

    def conv(x_=x, w_=w, b_=b, stride_=stride, pad_=pad):
        return ref.conv2d_forward(x_, w_, b_, stride=stride_, pad=pad_)

    def crop(y):
        return y[:, :, :H_out, :W_out]

    bugs = [
        (lambda: conv(stride_=1), "stride ignored: the window must move `stride` pixels at a time"),
        (lambda: crop(conv(stride_=1)), "stride ignored: window (i, j) starts at row stride*i, column stride*j"),
        (lambda: conv(pad_=0), "padding ignored: pad the input with zeros first"),
        (lambda: conv(pad_=2 * pad), "padding applied twice"),
        (lambda: crop(conv(pad_=2 * pad)), "padding applied twice"),
        (lambda: conv(w_=w[:, :, ::-1, ::-1]),
         "kernel flipped: deep-learning convolution is cross-correlation, use w without flipping it"),
        (lambda: conv(b_=np.zeros_like(b)), "bias missing"),
        (lambda: expected + (C_in - 1) * b[None, :, None, None],
         "bias added once per input channel: add b[co] once per output value"),
        (lambda: conv(x_=x[:, :1], w_=w[:, :1]), "channels summed wrongly: only the first input channel is used"),
        (lambda: conv(w_=np.repeat(w[:1], C_out, axis=0), b_=np.repeat(b[:1], C_out)),
         "channels summed wrongly: every output channel uses the first kernel w[0]"),
        (lambda: conv(w_=w.transpose(1, 0, 2, 3)) if C_in == C_out else None,
         "channels summed wrongly: w indexed as w[ci, co] instead of w[co, ci]"),
        (lambda: conv(w_=w.reshape(C_out, C_in, K_w, K_h)) if swapped_fits else None, kernel_axes),
        (lambda: conv(w_=w.transpose(0, 1, 3, 2)) if swapped_fits else None, kernel_axes),
    ]
    for variant, bug in bugs:
        try:
            y = variant()
        except ValueError:                              # the buggy setting has no valid output
            continue
        if y is not None and y.shape == actual.shape and not _close(y, expected, case) and _close(actual, y, case):
            return bug
    return _diagnose_conv_shape(actual.shape, expected.shape, C_in)


def _close(a, b, case: Case) -> bool:
    return case.tol.matches(a, b)


def _diagnose_conv_shape(shape, expected_shape, C_in) -> str | None:
    if len(shape) != 4:
        return "the output must be 4-D: (B, C_out, H_out, W_out)"
    B, C_out, H_out, W_out = expected_shape
    if shape == (B, C_out, W_out, H_out) and H_out != W_out:
        return "height and width swapped"
    if shape != expected_shape and shape[:2] == (B, C_out) and max(abs(shape[2] - H_out), abs(shape[3] - W_out)) == 1:
        return "output size off by one: check the + 1 and the rounding down in the output-size formula"
    if shape[:2] == (C_out, B):
        return "batch and channel axes swapped: the output is (B, C_out, H_out, W_out)"
    if shape[0] == B and shape[1] == C_in != C_out:
        return "one output channel per input channel: the output has C_out = w.shape[0] channels"
    return None


# ---- typical bugs -------------------------------------------------------------------------------
_STRIDE_IGNORED = '''\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))
    y = np.einsum("bchwmn,ocmn->bohw", windows, w)
    return (y + b[None, :, None, None]).astype(x.dtype)
'''

_PADDED_TWICE = '''\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(zero_pad(x, pad), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.einsum("bchwmn,ocmn->bohw", windows, w)
    return (y + b[None, :, None, None]).astype(x.dtype)
'''

_FLOAT64_OUTPUT = '''\
def conv2d_forward(x, w, b, stride=1, pad=0):
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((B, C_out, H_out, W_out))
    for m in range(K_h):          # a loop over kernel taps is fine: each step is one big operation
        for n in range(K_w):
            taps = x_pad[:, :, m:m + stride * H_out:stride, n:n + stride * W_out:stride]
            y += np.einsum("bchw,oc->bohw", taps, w[:, :, m, n])
    return y + b[None, :, None, None]
'''

_KERNEL_FLIPPED_NAIVE = '''\
def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = conv_output_size(H, K_h, stride, pad)
    W_out = conv_output_size(W, K_w, stride, pad)
    x_pad = zero_pad(x, pad)
    y = np.zeros((B, C_out, H_out, W_out))
    for n in range(B):
        for f in range(C_out):
            kernel = np.flip(w[f], axis=(1, 2))     # "convolution flips the kernel"
            for i in range(H_out):
                for j in range(W_out):
                    patch = x_pad[n, :, i * stride:i * stride + K_h, j * stride:j * stride + K_w]
                    y[n, f, i, j] = np.sum(patch * kernel) + b[f]
    return y
'''

BUGS = {   # autograder.grader.bugs: each bug as students write it, and the cells it must fail
    "stride_ignored": Bug({"conv2d_forward": _STRIDE_IGNORED}, fails={"test_conv2d_forward": "stride ignored"}),
    "padded_twice": Bug({"conv2d_forward": _PADDED_TWICE}, fails={"test_conv2d_forward": "padding applied twice"}),
    "float64_output": Bug({"conv2d_forward": _FLOAT64_OUTPUT},
                          fails={"test_conv2d_forward": "returned float64 for float32 input"}),
    # The "vectorized" forward just calls the loops: correct, but caught by the speed check's time limit.
    "forward_calls_naive": Bug({"conv2d_forward": (
        "def conv2d_forward(x, w, b, stride=1, pad=0):\n"
        "    return conv2d_forward_naive(x, w, b, stride=stride, pad=pad).astype(x.dtype)\n")},
        fails={"test_conv2d_forward": "did not return within the time limit"}),
    "kernel_flipped_naive": Bug({"conv2d_forward_naive": _KERNEL_FLIPPED_NAIVE},
                                fails={"test_conv2d_forward_naive": "kernel flipped"}),
    # conv2d_forward_naive calls the student's conv_output_size, zero_pad and conv_single_step, so a bug in
    # one of those also costs the naive part.
    "bias_missing_single_step": Bug(
        {"conv_single_step": "def conv_single_step(x_patch, w, b):\n    return float(np.sum(x_patch * w))\n"},
        fails={"test_conv_single_step": "bias missing", "test_conv2d_forward_naive": "bias missing"}),
    "size_off_by_one": Bug(
        {"conv_output_size": "def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n"
                             "    return (in_size + 2 * pad - kernel_size) // stride\n"},
        fails={"test_conv_output_size": "the + 1 is missing", "test_conv2d_forward_naive": "off by one"}),
}
