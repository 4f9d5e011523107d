"""Hidden checks for lesson 01, convolution forward.

Randomized shapes (non-square inputs and kernels, B = 1, a kernel as big as the padded input),
strides 1 to 3, paddings 0 to 2, float32 and float64; conv2d_forward must keep the input dtype and be
vectorized (one large case with a short time limit). The diagnose functions name the classic bugs
by comparing the student's output with the reference run on buggy variants of the inputs.
"""
from __future__ import annotations

import numpy as np

from autograder.checks.common.conv import diagnose_forward, forward_case
from autograder.grader.bugs import Bug
from autograder.grader.spec import Case, Part, Raised, Tol, compare, same_dtype
from convlab.diagnosis import first_matching_bug
from convlab.speed import SPEED_CHECK_NOTE, SPEED_SECONDS, speed_problem

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
    diagnose = diagnose_forward(ref)
    conv_cases = [_random_conv(rng, *config) for config in _CONV_CONFIGS]
    forward_cases = [_conv_case(ref, "conv2d_forward", *args) for args in conv_cases]
    forward_cases.append(_speed_case(ref, rng))
    return [
        Part("test_conv_output_size", _size_cases(ref, rng), diagnose=_diagnose_size),
        Part("test_zero_pad", _pad_cases(ref, rng), diagnose=_diagnose_pad),
        Part("test_conv_single_step", _step_cases(ref, rng), diagnose=_diagnose_step),
        # the naive form is graded with the student's own helpers where it calls them (section 4 says to)
        Part("test_conv2d_forward_naive", [_conv_case(ref, "conv2d_forward_naive", *args) for args in conv_cases],
             diagnose=diagnose, built_on=("test_conv_output_size", "test_zero_pad", "test_conv_single_step")),
        Part("test_conv2d_forward", forward_cases, diagnose=diagnose,
             built_on=("test_conv_output_size", "test_zero_pad")),
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
    if isinstance(actual, Raised) and actual.type == "ValueError":
        (in_size, kernel), pad = case.args, case.kwargs["pad"]
        return (f"conv_output_size(...) raised ValueError ({actual.message}), but a window of {kernel} fits in "
                f"{in_size} + 2 * {pad} = {in_size + 2 * pad} padded inputs: does your fit test count the padding "
                "on both sides?")
    if isinstance(actual, (float, np.floating)) and float(actual).is_integer() and actual == case.expected:
        return (f"conv_output_size(...) returned the float {actual!r}, expected the int {case.expected}: "
                "use floor division // so the size can be used as an array shape")
    return compare(actual, case.expected, name="conv_output_size(...)")


def _diagnose_size(case: Case, actual) -> str | None:
    if case.expected is None:                 # the case that must raise: its message says it all
        return None
    (in_size, kernel), stride, pad = case.args, case.kwargs["stride"], case.kwargs["pad"]
    bugs = [("stride ignored: divide by the stride", in_size + 2 * pad - kernel + 1),
            ("the + 1 is missing: position 0 counts too", (in_size + 2 * pad - kernel) // stride),
            ("padding counted on one side only (or in_size + 2 for in_size + 2 * pad): pad zeros go on both sides",
             (in_size + pad - kernel) // stride + 1),
            ("padding ignored", (in_size - kernel) // stride + 1),
            ("rounded up instead of down: use floor division //", -(-(in_size + 2 * pad - kernel) // stride) + 1)]
    return first_matching_bug(actual, bugs, _same_number, correct=case.expected)


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
    bugs = [("bias missing", products),
            ("kernel flipped: do not flip w (cross-correlation)", float(np.sum(x_patch * w[:, ::-1, ::-1])) + b),
            ("bias added to every product instead of once", products + b * x_patch.size),
            ("mean instead of sum", float(np.mean(x_patch * w)) + b),
            ("only the first input channel summed", float(np.sum(x_patch[0] * w[0])) + b)]
    if x_patch.shape[-1] == w.shape[-2]:
        bugs.append(("matrix product @ instead of the elementwise product *", float(np.sum(x_patch @ w)) + b))
    return first_matching_bug(actual, bugs, lambda got, value: _same_number(got, value, case.tol),
                              correct=case.expected)


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


def _conv_case(ref, func, x, w, b, stride, pad, timeout=10.0, extra="") -> Case:
    label = (f"B={x.shape[0]}, C_in={x.shape[1]} -> C_out={w.shape[0]}, {x.shape[2]}x{x.shape[3]} input, "
             f"{w.shape[2]}x{w.shape[3]} kernel, stride {stride}, pad {pad}, {x.dtype.name}{extra}")
    return forward_case(ref, func, x, w, b, stride, pad, label, timeout=timeout,
                        check=_KEEP_DTYPE if func == "conv2d_forward" else None)


def _speed_case(ref, rng) -> Case:
    """convlab.speed's problem and limit: instant when vectorized, far beyond the limit with a loop over pixels."""
    x, w, b = speed_problem(rng, "x", "w", "b")
    return _conv_case(ref, "conv2d_forward", x, w, b, 1, 1, timeout=SPEED_SECONDS,
                      extra=f" {SPEED_CHECK_NOTE}")


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

# im2col with rows (bi, i, j), reshaped straight to (B, C_out, ...) with no axis moved: {reshape} varies
_IM2COL = '''\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    C_out, C_in, K_h, K_w = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), {pad_h}, {pad_w}))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    B, _, H_out, W_out = windows.shape[:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(B * H_out * W_out, C_in * K_h * K_w)
    y = cols @ w.reshape(C_out, -1).T + b                        # (B * H_out * W_out, C_out)
    return {reshape}.astype(x.dtype)
'''
_IM2COL_CORRECT = {"pad_h": "(pad, pad)", "pad_w": "(pad, pad)",
                   "reshape": "y.reshape(B, H_out, W_out, C_out).transpose(0, 3, 1, 2)"}

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

# The reference's conv2d_forward_naive with the {placeholders} filled in: correct by default, one bug each.
_NAIVE = '''\
def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    B, C_in, H, W = x.shape
    C_out, _, {kernel} = w.shape
    H_out = {H_out}
    W_out = {W_out}
    x_pad = {x_pad}
    y = np.zeros(({y_shape}))
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = {top_left}
                    x_patch = x_pad[bi, :, top:top + K_h, left:left + K_w]
                    y[{y_index}] = {value}
    return y
'''
_CORRECT_NAIVE = {"kernel": "K_h, K_w", "H_out": "conv_output_size(H, K_h, stride, pad)",
                  "W_out": "conv_output_size(W, K_w, stride, pad)", "x_pad": "zero_pad(x, pad)",
                  "y_shape": "B, C_out, H_out, W_out", "top_left": "stride * i, stride * j", "y_index": "bi, co, i, j",
                  "value": "conv_single_step(x_patch, w[co], b[co])"}


def _naive(**bug: str) -> dict[str, str]:
    """lesson 01's conv2d_forward_naive with one bug filled in."""
    return {"conv2d_forward_naive": _NAIVE.format(**(_CORRECT_NAIVE | bug))}

def _size(body: str) -> dict[str, str]:
    return {"conv_output_size": f"def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n    return {body}\n"}


def _step(body: str) -> dict[str, str]:
    return {"conv_single_step": f"def conv_single_step(x_patch, w, b):\n    return {body}\n"}


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
    # one of those also costs the naive part (stated in its docstring), whose feedback says to fix that first.
    "bias_missing_single_step": Bug(
        {"conv_single_step": "def conv_single_step(x_patch, w, b):\n    return float(np.sum(x_patch * w))\n"},
        fails={"test_conv_single_step": "bias missing",
               "test_conv2d_forward_naive": "graded with your own conv_single_step where it calls it"}),
    "size_off_by_one": Bug(
        {"conv_output_size": "def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n"
                             "    return (in_size + 2 * pad - kernel_size) // stride\n"},
        fails={"test_conv_output_size": "the + 1 is missing",
               "test_conv2d_forward_naive": "your own conv_output_size where it calls it, and that fails its own check"}),
    # Tested in process only (shipped=False). conv2d_forward_naive calls the three small functions.
    "naive_stride_ignored": Bug(_naive(top_left="i, j"), shipped=False,
                                fails={"test_conv2d_forward_naive": "stride ignored"}),
    "naive_padding_ignored": Bug(_naive(H_out="conv_output_size(H, K_h, stride)", W_out="conv_output_size(W, K_w, stride)",
                                        x_pad="x"), shipped=False, fails={"test_conv2d_forward_naive": "padding ignored"}),
    "naive_padded_twice": Bug(_naive(x_pad="zero_pad(zero_pad(x, pad), pad)"), shipped=False,
                              fails={"test_conv2d_forward_naive": "padding applied twice"}),
    "naive_bias_per_input_channel": Bug(
        _naive(value="sum(conv_single_step(x_patch[ci], w[co, ci], b[co]) for ci in range(C_in))"), shipped=False,
        fails={"test_conv2d_forward_naive": "bias added once per input channel"}),
    "naive_first_channel_only": Bug(_naive(value="conv_single_step(x_patch[0], w[co, 0], b[co])"), shipped=False,
                                    fails={"test_conv2d_forward_naive": "only the first input channel"}),
    "naive_size_off_by_one": Bug(_naive(H_out="(H + 2 * pad - K_h) // stride", W_out="(W + 2 * pad - K_w) // stride"),
                                 shipped=False, fails={"test_conv2d_forward_naive": "off by one"}),
    "naive_height_width_swapped": Bug(_naive(y_shape="B, C_out, W_out, H_out", y_index="bi, co, j, i"), shipped=False,
                                      fails={"test_conv2d_forward_naive": "height and width swapped"}),
    # K_h, K_w unpacked in the wrong order, and the kernel reshaped to the patch to silence the error
    "naive_kernel_axes_swapped": Bug(
        _naive(kernel="K_w, K_h", value="conv_single_step(x_patch, w[co].reshape(x_patch.shape), b[co])"),
        shipped=False, fails={"test_conv2d_forward_naive": "kernel height and width swapped"}),
    "size_stride_ignored": Bug(_size("in_size + 2 * pad - kernel_size + 1"), shipped=False,
                               fails={"test_conv_output_size": "stride ignored", "test_conv2d_forward_naive": "fix it first"}),
    "size_true_division": Bug(_size("(in_size + 2 * pad - kernel_size) / stride + 1"), shipped=False,
                              fails={"test_conv_output_size": "use floor division", "test_conv2d_forward_naive": ""}),
    "size_plus_two": Bug(_size("(in_size + 2 - kernel_size) // stride + 1"), shipped=False,
                         fails={"test_conv_output_size": "both sides", "test_conv2d_forward_naive": ""}),
    "step_kernel_flipped": Bug(_step("float(np.sum(x_patch * w[:, ::-1, ::-1]) + b)"), shipped=False,
                               fails={"test_conv_single_step": "kernel flipped", "test_conv2d_forward_naive": "fix it first). Likely bug: kernel flipped"}),
    "step_bias_every_product": Bug(_step("float(np.sum(x_patch * w + b))"), shipped=False,
                                   fails={"test_conv_single_step": "bias added to every product",
                                          "test_conv2d_forward_naive": ""}),
    "fit_test_one_side": Bug({"conv_output_size": (
        "def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n"
        "    if kernel_size > in_size + pad:\n"
        "        raise ValueError('window does not fit')\n"
        "    return (in_size + 2 * pad - kernel_size) // stride + 1\n")}, shipped=False,
        fails={"test_conv_output_size": "count the padding on both sides", "test_conv2d_forward_naive": "fix it first"}),
    "reshape_axes_not_moved": Bug({"conv2d_forward": _IM2COL.format(**_IM2COL_CORRECT | {
        "reshape": "y.reshape(B, C_out, H_out, W_out)"})}, shipped=False,
        fails={"test_conv2d_forward": "the right numbers in the wrong places"}),
    "pad_one_side": Bug({"conv2d_forward": _IM2COL.format(**_IM2COL_CORRECT | {
        "pad_h": "(pad, 0)", "pad_w": "(pad, 0)"})}, shipped=False,
        fails={"test_conv2d_forward": "padding goes on both sides"}),
    "im2col_correct": Bug({"conv2d_forward": _IM2COL.format(**_IM2COL_CORRECT)}, shipped=False),
    "pad_all_axes": Bug({"zero_pad": "def zero_pad(x, pad):\n    return np.pad(x, pad)\n"}, shipped=False,
                        fails={"test_zero_pad": "all four axes", "test_conv2d_forward_naive": "your own zero_pad"}),
}
