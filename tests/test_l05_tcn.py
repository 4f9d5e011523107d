"""Lesson 05 (TCN): the reference against independent oracles, the hidden checks' coverage, the
widget's logic and the generated data.

Oracles: explicit loops over the formula y[b, co, t] = b[co] + sum_ci sum_k w[co, ci, k] x[b, ci, t - (K-1-k) d],
central differences of those loops, impulse responses of a stack of loops, and PyTorch's conv1d with
left padding and dilation when torch is installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.checks import check_module
from autograder.grader.reference import load_reference, test_points as points_of_graded_cells
from autograder.grader.spec import call_in_process
from convlab.gradcheck import numerical_gradient_array, relative_error
from convlab.sequences import multi_sine_forecasting
from convlab.widgets import dilation as pyramid
from tests.visible import visible_test_failure

LESSON = "05_tcn"


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


def loop_conv(x, w, b, dilation=1):
    """The causal dilated convolution, one multiply-add at a time, in float64."""
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    y = np.zeros((B, C_out, T))
    for n in range(B):
        for co in range(C_out):
            for t in range(T):
                total = float(b[co])
                for ci in range(C_in):
                    for k in range(K):
                        s = t - (K - 1 - k) * dilation
                        if s >= 0:
                            total += float(w[co, ci, k]) * float(x[n, ci, s])
                y[n, co, t] = total
    return y


def random_conv(rng, B, C_in, C_out, T, K, dtype=np.float64):
    return (rng.standard_normal((B, C_in, T)).astype(dtype), rng.standard_normal((C_out, C_in, K)).astype(dtype),
            rng.standard_normal(C_out).astype(dtype))


SHAPES = [(2, 3, 4, 17, 3, 1), (1, 2, 3, 30, 4, 8), (3, 1, 2, 12, 1, 5), (2, 2, 2, 6, 3, 8), (2, 4, 1, 25, 2, 3)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B, C_in, C_out, T, K, dilation", SHAPES)
def test_forward_matches_explicit_loops(ref, B, C_in, C_out, T, K, dilation, dtype):
    x, w, b = random_conv(np.random.default_rng(K * 10 + dilation), B, C_in, C_out, T, K, dtype)
    y = ref.conv1d_causal_forward(x, w, b, dilation)
    assert y.shape == (B, C_out, T) and y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, loop_conv(x, w, b, dilation), rtol=tol, atol=tol)


@pytest.mark.parametrize("B, C_in, C_out, T, K, dilation", SHAPES[:4])
def test_backward_matches_central_differences_of_the_loops(ref, B, C_in, C_out, T, K, dilation):
    rng = np.random.default_rng(K + dilation)
    x, w, b = random_conv(rng, B, C_in, C_out, T, K)
    dy = rng.standard_normal((B, C_out, T))
    dx, dw, db = ref.conv1d_causal_backward(dy, x, w, dilation)
    # loop_conv is linear in each argument: central differences are exact up to rounding (~1e-10)
    assert relative_error(dx, numerical_gradient_array(lambda v: loop_conv(v, w, b, dilation), x, dy)) < 1e-8
    assert relative_error(dw, numerical_gradient_array(lambda v: loop_conv(x, v, b, dilation), w, dy)) < 1e-8
    assert relative_error(db, numerical_gradient_array(lambda v: loop_conv(x, w, v, dilation), b, dy)) < 1e-8


def test_forward_and_backward_match_pytorch(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for B, C_in, C_out, T, K, dilation in SHAPES:
        x, w, b = random_conv(rng, B, C_in, C_out, T, K)
        dy = rng.standard_normal((B, C_out, T))
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv1d(torch.nn.functional.pad(tx, ((K - 1) * dilation, 0)), tw, tb, dilation=dilation)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(ref.conv1d_causal_forward(x, w, b, dilation), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        for mine, theirs in zip(ref.conv1d_causal_backward(dy, x, w, dilation), (tx.grad, tw.grad, tb.grad)):
            np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-10, atol=1e-10)


def test_forward_is_causal(ref):
    rng = np.random.default_rng(6)
    x, w, b = random_conv(rng, 1, 2, 3, 40, 3)
    changed = x.copy()
    changed[:, :, 21:] += rng.standard_normal((1, 2, 19))
    for dilation in (1, 2, 4, 8):
        y, y_changed = ref.conv1d_causal_forward(x, w, b, dilation), ref.conv1d_causal_forward(changed, w, b, dilation)
        assert np.array_equal(y[..., :21], y_changed[..., :21])
        assert not np.allclose(y[..., 21], y_changed[..., 21])


def impulse_span(K, dilations, T=200):
    """How many past inputs reach y[T-1] through a stack of loop convs with positive weights."""
    x = np.eye(T)[:, None, :]                         # batch entry s is an impulse at time s
    for dilation in dilations:
        x = loop_conv(x, np.ones((1, 1, K)), np.zeros(1), dilation)
    reached = np.flatnonzero(x[:, 0, T - 1])
    return T - reached.min(), len(reached)


@pytest.mark.parametrize("K, dilations", [(3, [1, 2, 4, 8]), (2, [1, 1, 1]), (4, [1, 3, 9]), (1, [1, 2, 4]),
                                          (2, [1, 3, 9]), (3, [5]), (3, [])])
def test_receptive_field_against_impulse_responses_and_graph_traversal(ref, K, dilations):
    span, count = impulse_span(K, dilations) if dilations else (1, 1)
    assert ref.receptive_field(K, dilations) == span
    assert isinstance(ref.receptive_field(K, dilations), int)
    assert pyramid.receptive_field_by_traversal(K, dilations) == (span, count)


def test_traversal_matches_the_formula_on_random_schedules():
    rng = np.random.default_rng(7)
    for _ in range(50):
        K, dilations = int(rng.integers(1, 5)), [int(d) for d in rng.integers(1, 9, size=int(rng.integers(1, 6)))]
        span, count = pyramid.receptive_field_by_traversal(K, dilations)
        assert span == 1 + (K - 1) * sum(dilations) and count <= span
    for K in (2, 3, 4):   # doubling dilations leave no holes: every lag up to R - 1 is reached
        for kind in ("all 1s", "powers of 2"):
            span, count = pyramid.receptive_field_by_traversal(K, pyramid.dilation_schedule(kind, 5))
            assert count == span


def test_block_matches_loop_composition(ref):
    rng = np.random.default_rng(8)
    for C_in, C_out, dilation in [(3, 3, 2), (2, 4, 5)]:
        x = rng.standard_normal((2, C_in, 20))
        params = {"w1": rng.standard_normal((C_out, C_in, 3)), "b1": rng.standard_normal(C_out),
                  "w2": rng.standard_normal((C_out, C_out, 3)), "b2": rng.standard_normal(C_out)}
        skip = x
        if C_in != C_out:
            params |= {"w_skip": rng.standard_normal((C_out, C_in, 1)), "b_skip": rng.standard_normal(C_out)}
            skip = np.einsum("oi,bit->bot", params["w_skip"][:, :, 0], x) + params["b_skip"][:, None]
        hidden = np.maximum(loop_conv(x, params["w1"], params["b1"], dilation), 0)
        expected = loop_conv(hidden, params["w2"], params["b2"], dilation) + skip
        np.testing.assert_allclose(ref.tcn_block_forward(x, params, dilation), expected, rtol=1e-12, atol=1e-12)


def test_hidden_checks_cover_every_graded_cell_and_the_required_ranges(ref):
    parts = check_module(LESSON).parts(ref, np.random.default_rng(0))
    assert sorted(p.grade_id for p in parts) == sorted(points_of_graded_cells(LESSON))
    conv_cases = [c for p in parts for c in p.cases if c.func in ("conv1d_causal_forward", "conv1d_causal_backward")]
    assert {c.args[-1].shape[-1] for c in conv_cases} == {1, 2, 3, 4}                  # kernel sizes
    assert {c.kwargs.get("dilation", 1) for c in conv_cases} >= {1, 8}
    assert {c.args[0].dtype for c in conv_cases} == {np.dtype(np.float32), np.dtype(np.float64)}
    for part in parts:   # the reference passes its own checks
        assert all(c.judge(call_in_process(ref, c)) is None for c in part.cases), part.grade_id


# The typical bugs (a look-ahead, a conv ignoring the present or the padding, a block conv without the
# dilation, ...) are BUGS in autograder/checks/_l05_bugs.py, judged by tests/test_samples_inprocess.py.


# ---- widget ------------------------------------------------------------------------------------------
def test_schedules():
    assert pyramid.dilation_schedule("all 1s", 3) == [1, 1, 1]
    assert pyramid.dilation_schedule("powers of 2", 4) == [1, 2, 4, 8]
    assert pyramid.dilation_schedule("custom growth", 3, growth=3) == [1, 3, 9]
    with pytest.raises(ValueError, match="unknown schedule"):
        pyramid.dilation_schedule("fibonacci", 3)


@pytest.mark.parametrize("K, dilations, t_out", [(3, [1, 2, 4], 40), (2, [1, 3, 9], 30), (3, [1, 2, 4, 8], 10)])
def test_traced_inputs_are_the_impulses_that_reach_the_output(K, dilations, t_out):
    units = pyramid.trace_pyramid(K, dilations, t_out).units
    x = np.eye(t_out + 1)[:, None, :]
    for dilation in dilations:
        x = loop_conv(x, np.ones((1, 1, K)), np.zeros(1), dilation)
    assert units[0] == sorted(np.flatnonzero(x[:, 0, t_out]).tolist())
    assert units[-1] == [t_out] and len(units) == len(dilations) + 1


def test_report_uses_the_students_function_and_flags_problems():
    right = lambda K, d: 1 + (K - 1) * sum(d)  # noqa: E731
    assert "computed by your receptive_field" in pyramid.receptive_field_report(3, [1, 2], 20, right)
    assert "Disagreement" in pyramid.receptive_field_report(3, [1, 2], 20, lambda K, d: (K - 1) * sum(d))

    def stub(K, d):
        raise NotImplementedError()
    text = pyramid.receptive_field_report(3, [1, 2, 4], 3, stub)
    assert "widget's own count" in text and "not implemented" in text and "<b>15</b>" in text
    assert "zero padding" in text                    # R = 15 > t_out + 1 = 4
    assert "ZeroDivisionError" in pyramid.receptive_field_report(2, [1], 5, lambda K, d: 1 / 0)
    assert "Only 8 of those 14" in pyramid.receptive_field_report(2, [1, 3, 9], 30, right)


@pytest.mark.parametrize("kernel_size, dilations, t_out", [(2, [1, 4, 16, 64, 256, 1024], 63), (3, [1, 2, 4, 8], 10),
                                                           (2, [1, 3, 9], 5), (4, [1, 1, 1], 2)])
def test_report_counts_the_real_inputs_the_picture_draws_when_the_window_starts_before_zero(kernel_size, dilations,
                                                                                             t_out):
    text = pyramid.receptive_field_report(kernel_size, dilations, t_out)
    drawn = len(pyramid.trace_pyramid(kernel_size, dilations, t_out).units[0])   # the inputs at t >= 0 reached
    assert f"so y[{t_out}] depends on {drawn} real inputs (drawn above)" in text


def test_widget_root_class_and_slider_changes_the_picture():
    root = pyramid.dilation_pyramid(lambda K, d: 1 + (K - 1) * sum(d))
    assert "convlab-widget" in root._dom_classes
    sliders = {c.description: c for box in root.children for c in getattr(box, "children", [box])
               if hasattr(c, "description")}
    picture, report = root.children[-2], root.children[-1]
    before = picture.value
    sliders["kernel K"].value = 2
    assert picture.value != before and "K = 2" in report.value
    before = picture.value
    sliders["dilations"].value = "custom growth"
    assert not sliders["growth"].disabled and picture.value != before


# ---- data --------------------------------------------------------------------------------------------
def test_forecasting_data_is_seeded_and_shifted():
    a, b = multi_sine_forecasting(4, 50, horizon=6, seed=3), multi_sine_forecasting(4, 50, horizon=6, seed=3)
    assert a.x.shape == a.target.shape == (4, 1, 50)
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, multi_sine_forecasting(4, 50, horizon=6, seed=4).x)
    clean = multi_sine_forecasting(4, 50, horizon=6, noise=0.0, seed=3)
    np.testing.assert_allclose(clean.target[..., :-6], clean.x[..., 6:])     # target = the clean input 6 steps later
    assert np.std(a.x - clean.x) == pytest.approx(0.3, rel=0.15)
    with pytest.raises(ValueError):
        multi_sine_forecasting(0, 50)


# ---- the visible tests catch a per-tap slicing that breaks when a tap's shift exceeds T ---------------
_SLICED = {
    "conv1d_causal_forward": '''def conv1d_causal_forward(x, w, b, dilation=1):
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    y = np.zeros((B, C_out, T), dtype=np.result_type(x, w)) + b[:, None]
    for k in range(K):
        s = (K - 1 - k) * dilation
        y[..., s:] += np.einsum("oc,bct->bot", w[:, :, k], x[..., :T - s])
    return y
''',
    "conv1d_causal_backward": '''def conv1d_causal_backward(dy, x, w, dilation=1):
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for k in range(K):
        s = (K - 1 - k) * dilation
        dx[..., :T - s] += np.einsum("oc,bot->bct", w[:, :, k], dy[..., s:])
        dw[:, :, k] = np.einsum("bot,bct->oc", dy[..., s:], x[..., :T - s])
    return dx, dw, dy.sum(axis=(0, 2))
'''}


@pytest.mark.parametrize("test_id", ["test_conv1d_causal_forward", "test_conv1d_causal_backward",
                                     "test_tcn_block_forward"])
def test_a_tap_slice_that_breaks_past_t_fails_each_visible_test_with_the_hint(test_id):
    assert visible_test_failure(LESSON, test_id, {}) is None
    message = visible_test_failure(LESSON, test_id, _SLICED)
    assert message is not None and "raised ValueError" in message and "shift (K-1-k)*dilation is >= T" in message


# ---- a wrong forward is named in the visible tests built on it, not blamed on a correct function --------
_LATE_FORWARDS = {   # each fails section 2's hand example; the backward and block of the reference stay
    "padding on the right": "    x_pad = np.pad(x, ((0, 0), (0, 0), (0, (K - 1) * dilation)))\n"
                            "    return sum(np.einsum('oc,bct->bot', w[:, :, k], x_pad[..., k * dilation:k * dilation + T])"
                            " for k in range(K)) + b[:, None]\n",
    "one tap late": "    x_pad = np.pad(x, ((0, 0), (0, 0), (K * dilation, 0)))\n"
                    "    return sum(np.einsum('oc,bct->bot', w[:, :, k], x_pad[..., k * dilation:k * dilation + T])"
                    " for k in range(K)) + b[:, None]\n",
}


def _late_forward(bug: str) -> str:
    return "def conv1d_causal_forward(x, w, b, dilation=1):\n    T, K = x.shape[-1], w.shape[-1]\n" + _LATE_FORWARDS[bug]


@pytest.mark.parametrize("bug", sorted(_LATE_FORWARDS))
@pytest.mark.parametrize("test_id", ["test_conv1d_causal_backward", "test_tcn_block_forward"])
def test_a_wrong_forward_is_named_by_the_visible_tests_built_on_it(test_id, bug):
    forward = _late_forward(bug)
    assert "y for dilation=1" in (visible_test_failure(LESSON, "test_conv1d_causal_forward",
                                                       {"conv1d_causal_forward": forward}) or "passed")
    message = visible_test_failure(LESSON, test_id, {"conv1d_causal_forward": forward})
    assert message is not None and "gets section 2's hand example wrong: fix it first" in message, message
    assert visible_test_failure(LESSON, test_id, {}) is None


def test_a_forward_that_never_reads_the_present_fails_the_causality_cell_with_one_sentence():
    forward = _late_forward("one tap late")
    message = visible_test_failure(LESSON, "test_conv1d_causal_forward_is_causal", {"conv1d_causal_forward": forward})
    assert message is not None and message.startswith("y[11] did not change when x[11] changed"), message
