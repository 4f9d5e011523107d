"""Lesson 01 (convolution forward): the reference against independent oracles, the hidden checks'
coverage, and the kernel-sliding widget's logic. The typical bugs and their diagnoses are declared
once, as BUGS in autograder/checks/l01_conv_forward.py, and judged by tests/test_samples_inprocess.py."""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from autograder.checks import check_module
from autograder.grader.reference import load_reference
from autograder.grader.spec import Case, Part, Raised, call_in_process, judge_part
from convlab.expect import expect_fast
from convlab.speed import SPEED_SECONDS, SPEED_SHAPES, speed_problem
from convlab.widgets import conv_slider as cs
from tests.visible import visible_test_failure

LESSON = "01_conv_forward"


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


# ---- independent oracles -------------------------------------------------------------------------
def count_positions(in_size, kernel_size, stride, pad, dilation=1):
    """Output size by walking the window along the padded axis and counting where it fits."""
    span, count, start = dilation * (kernel_size - 1) + 1, 0, 0
    while start + span <= in_size + 2 * pad:
        count, start = count + 1, start + stride
    return count


def oracle_conv(x, w, b, stride, pad):
    """Y[bi, co, i, j] = sum_ci,m,n W[co, ci, m, n] X[bi, ci, stride*i + m - pad, stride*j + n - pad] + b[co],
    terms outside the image being zero: seven nested loops, no padded array, float64."""
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out, W_out = count_positions(H, K_h, stride, pad), count_positions(W, K_w, stride, pad)
    y = np.zeros((B, C_out, H_out, W_out))
    for bi, co, i, j in itertools.product(range(B), range(C_out), range(H_out), range(W_out)):
        total = float(b[co])
        for ci, m, n in itertools.product(range(C_in), range(K_h), range(K_w)):
            row, col = stride * i + m - pad, stride * j + n - pad
            if 0 <= row < H and 0 <= col < W:
                total += float(w[co, ci, m, n]) * float(x[bi, ci, row, col])
        y[bi, co, i, j] = total
    return y


CONFIGS = [  # (B, C_in, C_out, H, W, K_h, K_w, stride, pad)
    (2, 3, 4, 7, 9, 3, 2, 2, 1),
    (1, 1, 1, 5, 5, 5, 5, 1, 0),
    (1, 2, 3, 6, 4, 1, 3, 3, 2),
    (3, 2, 2, 8, 7, 3, 3, 1, 1),
    (1, 3, 2, 4, 6, 4, 2, 2, 0),
    (2, 1, 3, 3, 3, 5, 5, 2, 1),
]


def random_inputs(rng, B, C_in, C_out, H, W, K_h, K_w, dtype=np.float64):
    return (rng.standard_normal((B, C_in, H, W)).astype(dtype), rng.standard_normal((C_out, C_in, K_h, K_w)).astype(dtype),
            rng.standard_normal(C_out).astype(dtype))


# ---- the reference -------------------------------------------------------------------------------
def test_conv_output_size_counts_window_positions(ref):
    for in_size, kernel, stride, pad in itertools.product(range(1, 11), range(1, 7), range(1, 4), range(4)):
        if kernel > in_size + 2 * pad:
            with pytest.raises(ValueError):
                ref.conv_output_size(in_size, kernel, stride, pad)
        else:
            size = ref.conv_output_size(in_size, kernel, stride, pad)
            assert isinstance(size, int) and size == count_positions(in_size, kernel, stride, pad)


def test_zero_pad_places_the_input_in_a_zero_frame(ref):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for pad in range(4):
        expected = np.zeros((2, 3, 4 + 2 * pad, 5 + 2 * pad), dtype=np.float32)
        expected[:, :, pad:pad + 4, pad:pad + 5] = x
        got = ref.zero_pad(x, pad)
        assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_conv_single_step_is_the_sum_of_products_plus_bias(ref):
    assert ref.conv_single_step(np.array([[[1., 2.], [3., 4.]]]), np.array([[[1., 0.], [0., -1.]]]), 0.5) == -2.5
    rng = np.random.default_rng(1)
    x_patch, w = rng.standard_normal((2, 3, 2, 4))
    total = sum(x_patch[idx] * w[idx] for idx in np.ndindex(x_patch.shape)) - 0.7
    assert isinstance(ref.conv_single_step(x_patch, w, -0.7), float)
    assert np.isclose(ref.conv_single_step(x_patch, w, -0.7), total)


@pytest.mark.parametrize("config", CONFIGS)
def test_reference_convolutions_match_the_loop_oracle(ref, config):
    *shape, stride, pad = config
    x, w, b = random_inputs(np.random.default_rng(sum(config)), *shape)
    expected = oracle_conv(x, w, b, stride, pad)
    np.testing.assert_allclose(ref.conv2d_forward_naive(x, w, b, stride=stride, pad=pad), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_forward(x, w, b, stride=stride, pad=pad), expected, rtol=1e-10, atol=1e-12)
    y32 = ref.conv2d_forward(*(a.astype(np.float32) for a in (x, w)), b, stride=stride, pad=pad)   # float64 bias
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, expected, rtol=1e-4, atol=1e-4)


def test_hand_computed_cases(ref):
    x = np.arange(1., 10.).reshape(1, 1, 3, 3)
    w = np.array([[[[1., 2.], [0., -1.]]]])
    for conv in (ref.conv2d_forward_naive, ref.conv2d_forward):
        np.testing.assert_array_equal(conv(x, w, np.array([1.])), [[[[1., 3.], [7., 9.]]]])
        np.testing.assert_array_equal(conv(x, w, np.array([1.]), stride=2, pad=1), [[[[0., -2.], [2., 9.]]]])


def test_delta_kernels_copy_and_shift_the_input(ref):
    """A centred delta kernel with "same" padding reproduces the input; a delta in the top-left corner
    reads X[i - 1, j - 1], shifting the image down and right (a flipped kernel would shift it up and left)."""
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 6))
    centre, corner = np.zeros((3, 3, 3, 3)), np.zeros((3, 3, 3, 3))
    for c in range(3):
        centre[c, c, 1, 1] = corner[c, c, 0, 0] = 1.0
    for conv in (ref.conv2d_forward_naive, ref.conv2d_forward):
        np.testing.assert_allclose(conv(x, centre, np.zeros(3), pad=1), x)
        shifted = conv(x, corner, np.zeros(3), pad=1)
        np.testing.assert_allclose(shifted[:, :, 1:, 1:], x[:, :, :-1, :-1])
        assert np.all(shifted[:, :, 0, :] == 0) and np.all(shifted[:, :, :, 0] == 0)


def test_reference_matches_torch(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for (*shape, stride, pad), dtype in itertools.product(CONFIGS + [(4, 3, 8, 16, 12, 3, 3, 1, 1)], (np.float32, np.float64)):
        x, w, b = random_inputs(rng, *shape, dtype=dtype)
        expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                              stride=stride, padding=pad).numpy()
        tol = 1e-4 if dtype == np.float32 else 1e-10
        got = ref.conv2d_forward(x, w, b, stride=stride, pad=pad)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
        np.testing.assert_allclose(ref.conv2d_forward_naive(x, w, b, stride=stride, pad=pad), expected, rtol=tol, atol=tol)


# ---- hidden checks -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parts(ref):
    return {part.grade_id: part for part in check_module(LESSON).parts(ref, np.random.default_rng(0))}


def test_checks_cover_the_required_cases(parts):
    conv_cases = parts["test_conv2d_forward"].cases
    assert {c.kwargs["stride"] for c in conv_cases} >= {1, 2, 3}
    assert {c.kwargs["pad"] for c in conv_cases} >= {0, 1, 2}
    assert {c.args[0].dtype.name for c in conv_cases} == {"float32", "float64"}
    assert any(c.args[0].shape[0] == 1 for c in conv_cases)
    assert any(c.args[0].shape[2] != c.args[0].shape[3] for c in conv_cases)
    assert any(c.args[1].shape[2] != c.args[1].shape[3] for c in conv_cases)
    assert any(c.args[1].shape[2:] == c.args[0].shape[2:] and c.kwargs["pad"] == 0 for c in conv_cases)
    assert all(c.expected.dtype == c.args[0].dtype for c in conv_cases)
    assert len(parts["test_conv2d_forward_naive"].cases) >= 8


def test_oracle_passes_every_conv_case_and_float64_fails_the_dtype_check(parts):
    for grade_id in ("test_conv2d_forward_naive", "test_conv2d_forward"):
        for case in parts[grade_id].cases:
            if case.args[0].size > 10_000:
                continue  # the speed case: too big for the loop oracle
            x, w, b = case.args
            y = oracle_conv(x, w, b, **case.kwargs).astype(x.dtype)
            assert case.judge(y) is None, case.label
            if grade_id == "test_conv2d_forward" and x.dtype == np.float32:
                assert "returned float64 for float32 input" in case.judge(y.astype(np.float64))


def test_reference_earns_every_part(ref, parts):
    for part in parts.values():
        assert judge_part(part, [call_in_process(ref.__dict__, case) for case in part.cases]) is None, part.grade_id


def test_conv_single_step_may_return_a_0d_array_but_not_a_1_element_one(ref, parts):
    """"Returns a float": np.asarray(total), one number, earns the part as the visible test accepts it."""
    part = parts["test_conv_single_step"]
    results = [call_in_process(ref.__dict__, case) for case in part.cases]
    assert judge_part(part, [np.asarray(value) for value in results]) is None
    assert "returned ndarray, expected a number" in judge_part(part, [np.asarray([value]) for value in results])


# judges crafted results (another exception, a size for a window that does not fit), not a student's function
def test_a_window_that_does_not_fit_must_raise_value_error(ref, parts):
    size = parts["test_conv_output_size"]
    case = next(c for c in size.cases if c.expected is None)
    n, k, s, p = *case.args, case.kwargs["stride"], case.kwargs["pad"]
    with pytest.raises(ValueError):
        ref.conv_output_size(n, k, s, p)
    assert case.judge(Raised("ValueError", "does not fit")) is None
    assert "raise ValueError" in judge_part(Part(size.grade_id, [case], size.diagnose), [(n + 2 * p - k) // s + 1])
    assert "raised IndexError" in judge_part(Part(size.grade_id, [case], size.diagnose), [Raised("IndexError", "x")])


def test_a_fit_test_that_counts_one_sides_padding_fails_visibly_and_hidden_with_the_cause(ref, parts):
    student = ("def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n"
               "    if kernel_size > in_size + pad:\n        raise ValueError('window does not fit')\n"
               "    return (in_size + 2 * pad - kernel_size) // stride + 1\n")
    assert visible_test_failure(LESSON, "test_conv_output_size", {}) is None
    assert "count the padding on both sides" in visible_test_failure(LESSON, "test_conv_output_size",
                                                                     {"conv_output_size": student})


def test_a_naive_forward_whose_windows_ignore_the_stride_is_told_so_visibly():
    student = ("def conv2d_forward_naive(x, w, b, stride=1, pad=0):\n"
               "    B, C_in, H, W = x.shape\n    C_out, _, K_h, K_w = w.shape\n"
               "    H_out, W_out = conv_output_size(H, K_h, stride, pad), conv_output_size(W, K_w, stride, pad)\n"
               "    x_pad = zero_pad(x, pad)\n    y = np.zeros((B, C_out, H_out, W_out))\n"
               "    for bi, co, i, j in np.ndindex(y.shape):\n"
               "        y[bi, co, i, j] = conv_single_step(x_pad[bi, :, i:i + K_h, j:j + K_w], w[co], b[co])\n"
               "    return y\n")
    assert visible_test_failure(LESSON, "test_conv2d_forward_naive", {}) is None
    assert "did you leave out the stride there?" in visible_test_failure(
        LESSON, "test_conv2d_forward_naive", {"conv2d_forward_naive": student})


def test_one_sided_padding_is_named_where_it_differs_from_a_missing_plus_one(ref, parts):
    """Zeros after each axis only shift the windows; zeros before only give the correct output cropped,
    as a missing + 1 does, and the shape diagnosis names both."""
    part = parts["test_conv2d_forward"]
    rng = np.random.default_rng(3)
    x, w, b = random_inputs(rng, 2, 2, 3, 7, 8, 3, 3)
    case = Case("conv2d_forward", (x, w, b), {"stride": 1, "pad": 2}, expected=ref.conv2d_forward(x, w, b, 1, 2))
    one_side = ref.conv2d_forward(np.pad(x, ((0, 0), (0, 0), (0, 2), (0, 2))), w, b, 1, 0)
    assert part.diagnose(case, one_side).startswith("padding on one side only")
    short = case.expected[:, :, :-1, :-1]            # the + 1 missing: named by the shape
    assert "padding goes on both sides" in part.diagnose(case, short)


def test_the_speed_rule_passes_the_reference_and_stops_the_loops_at_the_limit(ref, parts):
    """convlab.speed's limit with the margins its docstring measures: the hidden check's speed case is its
    problem and limit, the reference is far inside it, the section-4 loops are stopped at it."""
    speed = parts["test_conv2d_forward"].cases[-1]
    assert speed.timeout == SPEED_SECONDS and tuple(speed.args[0].shape) == SPEED_SHAPES["x"]
    args = speed_problem(np.random.default_rng(0), "x", "w", "b")
    expect_fast(ref.conv2d_forward, *args, stride=1, pad=1, name="reference", seconds=SPEED_SECONDS / 10)
    started = time.process_time()
    with pytest.raises(AssertionError, match=f"more than {SPEED_SECONDS:g} s of CPU time"):
        expect_fast(ref.conv2d_forward_naive, *args, stride=1, pad=1, name="loops", seconds=SPEED_SECONDS)
    assert time.process_time() - started < SPEED_SECONDS + 1


# ---- widget --------------------------------------------------------------------------------------
def test_widget_output_size_and_window_cells_match_brute_force():
    for in_size, kernel, stride, pad, dilation in itertools.product(range(3, 10), range(1, 6), range(1, 4), range(4), range(1, 4)):
        expected = count_positions(in_size, kernel, stride, pad, dilation)
        if expected == 0:
            with pytest.raises(ValueError):
                cs.dilated_output_size(in_size, kernel, stride, pad, dilation)
            continue
        assert cs.dilated_output_size(in_size, kernel, stride, pad, dilation) == expected
        cells = cs.window_cells(expected - 1, expected - 1, kernel, stride, dilation)   # the last window fits
        assert len(cells) == kernel * kernel and max(max(cell) for cell in cells) < in_size + 2 * pad
    assert cs.window_cells(1, 2, 3, stride=2, dilation=2)[:4] == [(2, 4), (2, 6), (2, 8), (4, 4)]
    assert cs.window_cells(1, 2, 3, stride=2, dilation=2)[-1] == (6, 8)


def test_widget_dot_product_terms_and_text():
    x_pad = np.array([[1., 2., 5.], [3., 4., 6.]])
    w = np.array([[0., 1.], [-1., 2.]])
    terms = cs.dot_product_terms(x_pad, w, 0, 0)
    assert terms == [(1, 0), (2, 1), (3, -1), (4, 2)]
    assert cs.format_dot_product(terms) == "1·0 + 2·1 + 3·(-1) + 4·2 = 7"
    assert cs.format_dot_product(cs.dot_product_terms(x_pad, w, 0, 1)) == "2·0 + 5·1 + 4·(-1) + 6·2 = 13"


def test_every_demo_kernel_has_a_nonzero_weight_so_the_output_is_not_blank():
    assert all(cs.demo_kernel(size).any() for size in range(1, 8))


def test_widget_own_grid_matches_oracle_including_dilation():
    x, w = cs.demo_input(7), cs.demo_kernel(3)
    for stride, pad in itertools.product((1, 2), (0, 1)):
        grid, source, from_fn = cs.output_grid(x, w, stride, pad, 1)
        assert not from_fn and "own dot products" in source
        np.testing.assert_allclose(grid, oracle_conv(x[None, None], w[None, None], np.zeros(1), stride, pad)[0, 0])
    grid, _, _ = cs.output_grid(x, w, 1, 1, 2)
    dilated = cs.dilate_kernel(w, 2)
    assert dilated.shape == (5, 5) and np.count_nonzero(dilated[1::2]) == 0 and np.count_nonzero(dilated[:, 1::2]) == 0
    np.testing.assert_allclose(grid, oracle_conv(x[None, None], dilated[None, None], np.zeros(1), 1, 1)[0, 0])


def test_widget_uses_the_students_function_and_reports_disagreement(ref):
    x, w = cs.demo_input(6), cs.demo_kernel(3)

    def not_done(x, w, b, stride=1, pad=0):
        raise NotImplementedError()

    def crashes(x, w, b, stride=1, pad=0):
        return x[9]

    def flipped(x, w, b, stride=1, pad=0):
        return oracle_conv(x, w[:, :, ::-1, ::-1], b, stride, pad)

    assert cs.output_grid(x, w, 2, 1, 2, ref.conv2d_forward)[1:] == ("Output computed by your conv2d_forward.", True)
    assert "not_done is not implemented yet" in cs.output_grid(x, w, 1, 0, 1, not_done)[1]
    assert "crashes raised IndexError" in cs.output_grid(x, w, 1, 0, 1, crashes)[1]
    assert "returned shape (1, 1, 6, 6)" in cs.output_grid(x, w, 1, 0, 1, lambda x, w, b, stride, pad: x)[1]
    frames = [cs.conv_frame(x, w, 1, 1, 1, position, flipped) for position in range(36)]
    wrong = [f for f in frames if f["mismatch"]]
    assert wrong and all(f"gives {f['output'][f['position']]:g} at output {f['position']}" in f["mismatch"] for f in wrong)
    assert "error" in cs.conv_frame(cs.demo_input(3), cs.demo_kernel(5), 1, 0, 1, 0)


def test_widget_view_reacts_to_sliders_and_play(ref):
    widget = cs.conv_slider(ref.conv2d_forward)
    assert "convlab-widget" in widget._dom_classes
    assert widget.position.max == 8 and widget.play.max == 8          # 5x5 input, 3x3 kernel: 3x3 outputs
    before = widget.frame_html.value
    widget.position.value = 4
    assert widget.frame_html.value != before and "y[1, 1]" in widget.frame_html.value
    widget.play.value = 7
    assert widget.position.value == 7 and "y[2, 1]" in widget.frame_html.value
    widget.pad.value, widget.stride.value = 1, 2                       # (5 + 2 - 3) // 2 + 1 = 3
    assert widget.position.max == 8 and "padded input 7×7" in widget.frame_html.value
    widget.kernel_size.value, widget.pad.value, widget.input_size.value = 5, 0, 3
    assert widget.position.max == 0 and "does not fit" in widget.frame_html.value


def test_widget_falls_back_for_a_stub():
    def conv2d_forward(x, w, b, stride=1, pad=0):
        raise NotImplementedError()
    html = cs.conv_slider(conv2d_forward).frame_html.value
    assert "conv2d_forward is not implemented yet" in html and "y[0, 0]" in html


