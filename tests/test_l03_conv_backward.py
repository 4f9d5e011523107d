"""Lesson 03 (convolution backward): the reference against independent oracles, the hidden checks'
coverage and gradient judging, and the gradient-flow widget's logic. The typical bugs and their
diagnoses are declared once, as BUGS in autograder/checks/l03_conv_backward.py, and judged by
tests/test_samples_inprocess.py.

Oracles: loops written here straight from the index formulas (forward and backward), central
differences (convlab.gradcheck), numpy's own convolve/correlate for 1-D, and PyTorch autograd when
torch is installed.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from autograder.checks import l03_conv_backward as checks
from autograder.grader.reference import load_reference
from autograder.grader.reference import test_points as graded_points
from autograder.grader.spec import Case, Raised
from convlab.gradcheck import numerical_gradient_array, relative_error
from convlab.widgets import gradflow

LESSON = "03_conv_backward"


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


# ---- oracles written from the formulas -------------------------------------------------------------
def forward_oracle(x, w, b, stride, pad):
    """Y[b, co, i, j] = sum_{ci, m, n} W[co, ci, m, n] X_pad[b, ci, stride*i + m, stride*j + n] + b[co]."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    (B, _, Hp, Wp), (C_out, C_in, K_h, K_w) = x_pad.shape, w.shape
    y = np.zeros((B, C_out, (Hp - K_h) // stride + 1, (Wp - K_w) // stride + 1))
    for bb, co, i, j in np.ndindex(*y.shape):
        y[bb, co, i, j] = b[co] + sum(w[co, ci, m, n] * x_pad[bb, ci, stride * i + m, stride * j + n]
                                      for ci, m, n in np.ndindex(C_in, K_h, K_w))
    return y


def backward_oracle(dy, x, w, stride, pad):
    """The gather form: for every x_pad position (u, v), sum over the outputs whose window covers it."""
    (B, _, H, W), (C_out, _, K_h, K_w), (_, _, H_out, W_out) = x.shape, w.shape, dy.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape)
    for bb, ci, u, v in np.ndindex(*x_pad.shape):
        dx_pad[bb, ci, u, v] = sum(dy[bb, co, i, j] * w[co, ci, u - stride * i, v - stride * j]
                                   for co, i, j in np.ndindex(C_out, H_out, W_out)
                                   if 0 <= u - stride * i < K_h and 0 <= v - stride * j < K_w)
    dw = np.zeros(w.shape)
    for co, ci, m, n in np.ndindex(*w.shape):
        dw[co, ci, m, n] = sum(dy[bb, co, i, j] * x_pad[bb, ci, stride * i + m, stride * j + n]
                               for bb, i, j in np.ndindex(B, H_out, W_out))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, dy.sum(axis=(0, 2, 3))


def random_layer(rng, B, C_in, C_out, H, W, K_h, K_w, stride, pad, dtype=np.float64):
    H_out, W_out = (H + 2 * pad - K_h) // stride + 1, (W + 2 * pad - K_w) // stride + 1
    shapes = [(B, C_out, H_out, W_out), (B, C_in, H, W), (C_out, C_in, K_h, K_w), (C_out,)]
    return tuple(rng.standard_normal(s).astype(dtype) for s in shapes)


# strides 1-3, pads 0-2, non-square kernels and inputs; the marked ones leave rows no window reaches
CONFIGS = [(2, 3, 2, 5, 5, 3, 3, 1, 1), (2, 2, 3, 8, 6, 3, 2, 2, 1),   # H: 8+2-3=7, odd with stride 2
           (1, 2, 2, 8, 7, 2, 3, 3, 0), (1, 1, 2, 4, 6, 4, 1, 2, 2),   # W: 7-3=4 with stride 3
           (2, 2, 2, 6, 5, 1, 2, 3, 1), (1, 3, 1, 7, 7, 4, 4, 1, 0)]


@pytest.mark.parametrize("config", CONFIGS)
def test_backward_references_match_the_index_formula_oracle(ref, config):
    rng = np.random.default_rng(sum(config))
    dy, x, w, b = random_layer(rng, *config)
    stride, pad = config[-2:]
    np.testing.assert_allclose(ref.conv2d_forward(x, w, b, stride, pad), forward_oracle(x, w, b, stride, pad),
                               rtol=1e-12, atol=1e-12)
    expected = backward_oracle(dy, x, w, stride, pad)
    for backward in (ref.conv2d_backward, ref.conv2d_backward_naive):
        for got, want in zip(backward(dy, x, w, stride=stride, pad=pad), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_dx_rotated(dy, w, x.shape, stride=stride, pad=pad), expected[0],
                               rtol=1e-12, atol=1e-12)


def test_rows_no_window_reaches_get_zero_gradient(ref):
    dy, x, w, _ = random_layer(np.random.default_rng(0), 1, 2, 2, 6, 6, 3, 3, 2, 0)   # rows 0-4 covered
    for dx in (ref.conv2d_backward(dy, x, w, stride=2)[0], ref.conv2d_dx_rotated(dy, w, x.shape, stride=2)):
        assert np.all(dx[:, :, 5, :] == 0) and np.all(dx[:, :, :, 5] == 0)
        assert np.count_nonzero(dx[:, :, :5, :5]) > 0


@pytest.mark.parametrize("config", CONFIGS[:4])
def test_backward_matches_central_differences(ref, config):
    rng = np.random.default_rng(10 + sum(config))
    dy, x, w, b = random_layer(rng, *config)
    stride, pad = config[-2:]
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride=stride, pad=pad)
    numeric = [numerical_gradient_array(lambda v: forward_oracle(v, w, b, stride, pad), x, dy),
               numerical_gradient_array(lambda v: forward_oracle(x, v, b, stride, pad), w, dy),
               numerical_gradient_array(lambda v: forward_oracle(x, w, v, stride, pad), b, dy)]
    # the loss is linear in x, w and b: only float64 rounding, ~1e-11 relative, is left
    assert max(relative_error(a, n) for a, n in zip((dx, dw, db), numeric)) < 1e-8


def test_conv1d_backward_against_numpy_and_central_differences(ref):
    rng = np.random.default_rng(1)
    for N, K in [(7, 3), (5, 1), (6, 6), (9, 4)]:
        x, w, dy = rng.standard_normal(N), rng.standard_normal(K), rng.standard_normal(N - K + 1)
        dx, dw, db = ref.conv1d_backward(dy, x, w)
        np.testing.assert_allclose(dx, np.convolve(dy, w, "full"), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, np.correlate(x, dy, "valid"), rtol=1e-12, atol=1e-12)
        forward = lambda v: np.correlate(v, w, "valid")   # noqa: E731 - y[i] = sum_m w[m] x[i+m]
        assert relative_error(dx, numerical_gradient_array(forward, x, dy)) < 1e-8
        assert db == pytest.approx(dy.sum())


def test_rot180_and_dilate(ref):
    w = np.arange(24.0).reshape(2, 3, 4, 1)
    np.testing.assert_array_equal(ref.rot180(w), np.rot90(w, 2, axes=(2, 3)))
    dy = np.random.default_rng(2).standard_normal((2, 3, 3, 4)).astype(np.float32)
    spread = ref.dilate(dy, 3)
    assert spread.shape == (2, 3, 7, 10) and spread.dtype == np.float32
    np.testing.assert_array_equal(spread[:, :, ::3, ::3], dy)
    assert np.count_nonzero(spread) == np.count_nonzero(dy)


def test_float32_in_float32_out(ref):
    dy, x, w, b = random_layer(np.random.default_rng(3), 2, 3, 4, 9, 8, 3, 2, 2, 1, dtype=np.float32)
    grads64 = ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, w)), stride=2, pad=1)
    for func in (ref.conv2d_backward, ref.conv2d_backward_naive):
        for got, want in zip(func(dy, x, w, stride=2, pad=1), grads64):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert ref.conv2d_forward(x, w, b, 2, 1).dtype == np.float32
    assert ref.conv2d_dx_rotated(dy, w, x.shape, 2, 1).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_against_torch_autograd(ref, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    for config in CONFIGS + [(3, 4, 5, 11, 9, 3, 4, 2, 2)]:
        dy, x, w, b = random_layer(rng, *config, dtype=dtype)
        stride, pad = config[-2:]
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
        yt.backward(torch.tensor(dy))
        tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-4}
        np.testing.assert_allclose(ref.conv2d_forward(x, w, b, stride, pad), yt.detach().numpy(), **tol)
        for got, want in zip(ref.conv2d_backward(dy, x, w, stride=stride, pad=pad), (xt.grad, wt.grad, bt.grad)):
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want.numpy(), **tol)


# ---- hidden checks: every graded cell has a part; gradients are judged as tuples --------------------
def test_parts_cover_the_graded_cells(ref):
    parts = checks.parts(ref, np.random.default_rng(0))
    assert [p.grade_id for p in parts] == list(graded_points(LESSON))


def _bug_case(ref, config, func="conv2d_backward"):
    dy, x, w, _ = random_layer(np.random.default_rng(5), *config)
    stride, pad = config[-2:]
    expected = ref.conv2d_backward(dy, x, w, stride=stride, pad=pad)
    case = Case(func, (dy, x, w), {"stride": stride, "pad": pad}, expected=expected, check=checks.check_gradients,
                tol=checks.backward_tol(ref, dy, x, w, stride, pad))
    return case, expected


# judges crafted results (a NaN, a bare array, an exception, float64 for float32), not a student's function
def test_check_gradients_messages(ref):
    case, expected = _bug_case(ref, (1, 2, 2, 5, 5, 3, 3, 2, 1))
    assert case.judge(expected) is None
    assert "NaN" in case.judge((expected[0] * np.nan, expected[1], expected[2]))
    assert "tuple (dx, dw, db)" in case.judge(expected[0])
    assert "not implemented" in case.judge(Raised("NotImplementedError", ""))
    f32 = Case("conv2d_backward", case.args, case.kwargs, check=checks.check_gradients,
               expected=tuple(e.astype(np.float32) for e in expected))
    assert "dtype float64" in f32.judge(expected)
    assert checks.WRONG_DTYPE == checks._diagnose_backward(ref)(f32, expected)


# ---- the gradient-flow widget's logic ------------------------------------------------------------
OK, BAD = "<div class='gf-ok'>", "<div class='gf-bad'>"


@pytest.mark.parametrize("config", CONFIGS[:4])
def test_term_listings_sum_to_the_oracle(config):
    dy, x, w, _ = random_layer(np.random.default_rng(6), *config)
    stride, pad = config[-2:]
    dx, dw, _ = backward_oracle(dy, x, w, stride, pad)
    for b, ci, r, c in np.ndindex(*x.shape):
        terms = gradflow.dx_terms(dy, w, stride, pad, b, ci, r, c)
        assert gradflow.term_sum(terms) == pytest.approx(dx[b, ci, r, c], abs=1e-12)
        assert all(t.m == r + pad - stride * t.i and t.n == c + pad - stride * t.j for t in terms)
    for co, ci, m, n in np.ndindex(*w.shape):
        assert gradflow.term_sum(gradflow.dw_terms(dy, x, stride, pad, co, ci, m, n)) == pytest.approx(dw[co, ci, m, n])


@pytest.mark.parametrize("size, K_h, K_w, stride, pad", [(5, 3, 3, 1, 0), (6, 3, 2, 2, 1), (7, 2, 4, 3, 2)])
def test_full_convolution_frames_rebuild_dx(size, K_h, K_w, stride, pad):
    dy, x, w, _ = random_layer(np.random.default_rng(7), 1, 1, 1, size, size, K_h, K_w, stride, pad)
    plan = gradflow.full_conv_plan(dy[0, 0], w[0, 0], stride, pad, (size, size))
    dx_pad = np.zeros(plan.x_pad_hw)
    for step in range(plan.steps):
        u, v, window, value = gradflow.full_conv_frame(plan, step)
        assert window.shape == (K_h, K_w)
        dx_pad[u, v] = value
    np.testing.assert_allclose(dx_pad[pad:pad + size, pad:pad + size], backward_oracle(dy, x, w, stride, pad)[0][0, 0],
                               atol=1e-12)
    assert np.count_nonzero(plan.kinds == "dy") == dy.size
    assert np.count_nonzero(plan.grid) == np.count_nonzero(dy)


def test_widget_reports_the_students_function():
    def stub(dy, x, w, stride=1, pad=0):
        raise NotImplementedError()

    example = gradflow.make_example(5, 3, 3, 2, 1, stub)
    assert example["grads"] is None and "not implemented yet" in example["note"]
    assert "not implemented yet" in gradflow.render_dx_pixel(example, 2, 2)

    def off_by_one_tap(dy, x, w, stride=1, pad=0):
        dx, dw, db = backward_oracle(dy, x, w, stride, pad)
        return dx + 1.0, dw, db

    example = gradflow.make_example(5, 3, 3, 2, 1, off_by_one_tap)
    assert "showing your off_by_one_tap" in example["note"]
    assert BAD in gradflow.render_dx_pixel(example, 2, 2) and OK in gradflow.render_dw_tap(example, 1, 1)
    arrays = example["dy"], example["x"], example["w"]
    assert "raised ValueError" in gradflow.run_backward(lambda *a, **k: int("x"), *arrays, 2, 1)[1]
    assert "did not return" in gradflow.run_backward(lambda *a, **k: 3, *arrays, 2, 1)[1]


def test_widget_sliders_change_the_rendered_frame(ref):
    root = gradflow.gradflow_widget(ref.conv2d_backward)
    assert "convlab-widget" in root._dom_classes
    view = root.children[-1]
    frames = [view.value]
    sliders = {c.description: c for box in root.children[1:-1] for c in box.children if hasattr(c, "description")}
    for description, value in [("x row r", 4), ("stride", 1), ("pad", 2)]:
        sliders[description].value = value
        frames.append(view.value)
    root.children[0].value = "build dx"
    frames.append(view.value)
    sliders["step"].value = 7
    frames.append(view.value)
    assert all(a != b for a, b in itertools.pairwise(frames))
    assert BAD not in "".join(frames) and OK in frames[1] and "agrees with the term sum" in frames[1]
