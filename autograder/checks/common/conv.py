"""conv2d_forward, graded in lessons 01, 03, 04 and 07: its case, its rounding bound and its diagnosis;
and conv2d_backward's rounding bound (lessons 03, 04, 07).

A lesson draws its own inputs (x, w, b, stride, pad) and labels them; `forward_case` turns them into a
Case judged against the reference, `diagnose_forward` names the classic bug the student's output
matches by running the reference on buggy variants of the inputs.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from autograder.grader.spec import Case, Tol
from convlab.diagnosis import first_matching_bug

KERNEL_AXES = "kernel height and width swapped: w has shape (C_out, C_in, K_h, K_w), K_h goes with the rows"


def conv_tol(ref, x, w, b, stride, pad) -> Tol:
    """The rounding bound of a convolution: each output sums C_in*K_h*K_w products and the bias, so its
    magnitude is the same convolution of |x|, |w|, |b| (convlab.tolerance)."""
    magnitude = ref.conv2d_forward(*(np.abs(np.asarray(a, dtype=np.float64)) for a in (x, w, b)),
                                   stride=stride, pad=pad)
    return Tol(magnitude, int(np.prod(w.shape[1:])) + 1)


def backward_tol(ref, dy, x, w, stride, pad) -> tuple[Tol, Tol, Tol]:
    """Rounding bounds of conv2d_backward's (dx, dw, db): the backward pass of |dy|, |x|, |w| is each sum's
    magnitude; dx[bi, ci, h, w_] sums at most C_out*K_h*K_w products, dw and db sum over B*H_out*W_out positions."""
    magnitudes = ref.conv2d_backward(*(np.abs(np.asarray(a, dtype=np.float64)) for a in (dy, x, w)),
                                     stride=stride, pad=pad)
    C_out, _, K_h, K_w = w.shape
    positions = int(np.prod(dy.shape)) // C_out
    return Tol(magnitudes[0], C_out * K_h * K_w), Tol(magnitudes[1], positions), Tol(magnitudes[2], positions)


def forward_case(ref, func: str, x, w, b, stride: int, pad: int, label: str, timeout: float = 10.0,
                 check=None) -> Case:
    """The Case `func(x, w, b, stride=stride, pad=pad)` (conv2d_forward or its naive form): expected is the
    reference in float64 cast to x's dtype, judged within `conv_tol`."""
    expected = ref.conv2d_forward(*(np.asarray(a, dtype=np.float64) for a in (x, w, b)),
                                  stride=stride, pad=pad).astype(x.dtype)
    return Case(func, (x, w, b), {"stride": stride, "pad": pad}, expected=expected, label=label, timeout=timeout,
                check=check, tol=conv_tol(ref, x, w, b, stride, pad))


def diagnose_forward(ref) -> Callable[[Case, Any], str | None]:
    """The diagnosis of a forward_case: the first classic bug whose output (the reference on buggy inputs)
    the student's output matches, else what its shape says."""
    def diagnose(case: Case, actual) -> str | None:
        if not isinstance(actual, np.ndarray):
            return None
        x, w, b = (a.astype(np.float64) for a in case.args)
        stride, pad = case.kwargs["stride"], case.kwargs["pad"]
        expected = case.expected.astype(np.float64)
        bug = first_matching_bug(actual, _bug_outputs(ref, x, w, b, stride, pad, expected), case.tol,
                                 correct=expected, skip=(ValueError,))   # ValueError: the setting has no output
        return bug or _diagnose_shape(actual.shape, expected.shape, w.shape[1]) or _scrambled(actual, expected)
    return diagnose


def _bug_outputs(ref, x, w, b, stride, pad, expected) -> list[tuple[str, Callable]]:
    """(message, output) of each classic bug, in order of preference; an output is None where the bug
    cannot happen on these shapes."""
    _, C_out, H_out, W_out = expected.shape
    C_in, K_h, K_w = w.shape[1:]
    swapped_fits = K_h != K_w and K_w <= x.shape[2] + 2 * pad and K_h <= x.shape[3] + 2 * pad

    def conv(x_=x, w_=w, b_=b, stride_=stride, pad_=pad):
        return ref.conv2d_forward(x_, w_, b_, stride=stride_, pad=pad_)

    def crop(y):
        return y[:, :, :H_out, :W_out]

    def one_side(before_after):
        """x padded on one side of each axis; None where that looks exactly like a missing + 1 (the
        correct output cropped), which the shape diagnosis names. Zeros before each axis only always
        give the correct output cropped, so only zeros after are tried."""
        if not pad:
            return None
        y = conv(x_=np.pad(x, ((0, 0), (0, 0), before_after, before_after)), pad_=0)
        same = expected[:, :, :y.shape[2], :y.shape[3]]
        return None if same.shape == y.shape and np.allclose(y, same, rtol=1e-5, atol=1e-6) else y

    return [
        ("stride ignored: the window must move `stride` pixels at a time", lambda: conv(stride_=1)),
        ("stride ignored: window (i, j) starts at row stride*i, column stride*j", lambda: crop(conv(stride_=1))),
        ("padding ignored: pad the input with zeros first", lambda: conv(pad_=0)),
        ("padding on one side only: pad zeros before and after each axis", lambda: one_side((0, pad))),
        ("padding applied twice", lambda: conv(pad_=2 * pad)),
        ("padding applied twice", lambda: crop(conv(pad_=2 * pad))),
        ("kernel flipped: deep-learning convolution is cross-correlation, use w without flipping it",
         lambda: conv(w_=w[:, :, ::-1, ::-1])),
        ("bias missing", lambda: conv(b_=np.zeros_like(b))),
        ("bias added once per input channel: add b[co] once per output value",
         lambda: expected + (C_in - 1) * b[None, :, None, None]),
        ("channels summed wrongly: only the first input channel is used", lambda: conv(x_=x[:, :1], w_=w[:, :1])),
        ("channels summed wrongly: every output channel uses the first kernel w[0]",
         lambda: conv(w_=np.repeat(w[:1], C_out, axis=0), b_=np.repeat(b[:1], C_out))),
        ("channels summed wrongly: w indexed as w[ci, co] instead of w[co, ci]",
         lambda: conv(w_=w.transpose(1, 0, 2, 3)) if C_in == C_out else None),
        (KERNEL_AXES, lambda: conv(w_=w.reshape(C_out, C_in, K_w, K_h)) if swapped_fits else None),
        (KERNEL_AXES, lambda: conv(w_=w.transpose(0, 1, 3, 2)) if swapped_fits else None),
    ]


def _diagnose_shape(shape, expected_shape, C_in) -> str | None:
    if len(shape) != 4:
        return "the output must be 4-D: (B, C_out, H_out, W_out)"
    B, C_out, H_out, W_out = expected_shape
    if shape == (B, C_out, W_out, H_out) and H_out != W_out:
        return "height and width swapped"
    if shape != expected_shape and shape[:2] == (B, C_out) and max(abs(shape[2] - H_out), abs(shape[3] - W_out)) == 1:
        return ("output size off by one: check the + 1 and the rounding down in the output-size formula, and "
                "that the padding goes on both sides")
    if shape[:2] == (C_out, B):
        return "batch and channel axes swapped: the output is (B, C_out, H_out, W_out)"
    if shape[0] == B and shape[1] == C_in != C_out:
        return "one output channel per input channel: the output has C_out = w.shape[0] channels"
    return None


def _scrambled(actual: np.ndarray, expected: np.ndarray) -> str | None:
    """The right numbers in the wrong places, as a reshape without moving an axis leaves them."""
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return None
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    if np.allclose(np.sort(actual, axis=None), np.sort(expected, axis=None), rtol=0, atol=1e-4 * scale) \
            and not np.allclose(actual, expected, rtol=0, atol=1e-4 * scale):
        return ("the right numbers in the wrong places: a reshape that needs an axis moved first "
                "(the product's rows or columns are (bi, i, j); move them to (B, C_out, H_out, W_out) with "
                "transpose before or after the reshape)")
    return None

