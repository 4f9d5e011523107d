"""convlab.tolerance: the one rounding rule every comparison uses, tested on the case that broke the old
rule (a float32 dW of 131,072 products per entry), on bugs it must still catch, and on its messages."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from convlab.expect import CheckFailed, changed_argument, expect_close, expect_implemented, expect_near, hint_for
from convlab.tolerance import describe_violation, growth, rounding_bound, sensitivity, unit_roundoff


def _dw_im2col(dy, x, K):
    """dW = dY_mat @ cols.T in the inputs' dtype: lesson 03's section-5 recipe (stride 1, pad 1)."""
    B, C_in = x.shape[:2]
    C_out, H_out, W_out = dy.shape[1:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = sliding_window_view(x_pad, (K, K), axis=(2, 3)).transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K * K, -1)
    return (dy.transpose(1, 0, 2, 3).reshape(C_out, -1) @ cols.T).reshape(C_out, C_in, K, K)


@pytest.mark.parametrize("seed", range(4))
def test_a_float32_dw_of_the_speed_case_is_within_the_bound_and_its_bugs_are_not(seed):
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((32, 16, 64, 64)).astype(np.float32)
    x = rng.standard_normal((32, 3, 64, 64)).astype(np.float32)
    exact = _dw_im2col(dy.astype(np.float64), x.astype(np.float64), 3)
    magnitude = _dw_im2col(np.abs(dy.astype(np.float64)), np.abs(x.astype(np.float64)), 3)
    bound = rounding_bound(magnitude, 32 * 64 * 64, np.float32)
    got = _dw_im2col(dy, x, 3)
    assert describe_violation("dw", got, exact, bound) is None
    for wrong in (exact / 32, exact.transpose(0, 1, 3, 2), exact[..., ::-1, ::-1]):
        assert describe_violation("dw", wrong, exact, bound) is not None


def test_the_growth_factor_is_the_worst_case_for_short_sums_and_the_probabilistic_one_for_long_ones():
    assert growth(10) == 10 and growth(64) == 64
    assert growth(10_000) == pytest.approx(800)
    assert unit_roundoff(np.float32) == 2.0 ** -24 and unit_roundoff(np.float64) == 2.0 ** -53
    # float32 inputs: the bound is (n + 2)(u32 + u64) * magnitude
    assert rounding_bound(1.0, 10, np.float32) == pytest.approx(12 * (2.0 ** -24 + 2.0 ** -53))


def test_the_message_names_an_entry_that_fails_not_the_largest_error():
    expected = np.array([1000.0, 1.0])
    bound = np.array([1.0, 1e-3])          # entry 0 is off by 0.5 (allowed), entry 1 by 0.01 (not)
    message = describe_violation("y", np.array([1000.5, 1.01]), expected, bound)
    assert message.startswith("y is wrong at index (1,): got 1.01, expected 1, off by 0.01")
    assert "(1 of 2 entries off by more than rounding explains)" in message


def test_an_entry_of_zero_magnitude_must_be_exact():
    assert describe_violation("y", np.array([1e-300]), np.array([0.0]), np.zeros(1)) is not None


def test_sensitivity_of_a_product_is_its_condition_times_its_value():
    x, y = np.array([3.0, -2.0]), np.array([0.5, 4.0])
    assert np.allclose(sensitivity(lambda a, b: a * b, (x, y), (0, 1)), 3 * np.abs(x * y), rtol=1e-6)


def test_expect_close_accepts_rounding_within_the_magnitude_and_rejects_more():
    x = np.full(1000, 0.1)
    expect_close(np.float32(np.sum(x.astype(np.float32))), 100.0, "sum", magnitude=100.0, terms=1000)
    with pytest.raises(CheckFailed):
        expect_close(100.1, 100.0, "sum", magnitude=100.0, terms=1000)


def test_a_failed_check_renders_as_its_sentence_alone():
    with pytest.raises(CheckFailed) as info:
        expect_near(0.5, 0.0, 0.1, "mean")
    assert info.value._render_traceback_() == ["\x1b[0;31mTest failed:\x1b[0m mean is 0.5, expected 0 within 0.1"]


def test_hints_come_from_the_whole_output():
    flipped, no_bias = [[13.0, 15.0], [19.0, 21.0]], [[0.0, 2.0], [6.0, 8.0]]
    hints = {"flipped": flipped, "bias": no_bias}
    assert hint_for(np.array([[0.0, 9.0], [9.0, 9.0]]), hints) is None     # one entry alike is not enough
    assert hint_for(np.array(no_bias), hints) == "bias" and hint_for(np.zeros((4, 4)), hints) is None


def _rot180_in_place(w):
    w[...] = w[..., ::-1, ::-1].copy()
    return w


def test_a_function_that_writes_into_its_argument_is_named_in_its_own_test_and_by_the_runner():
    w = np.arange(8.0).reshape(2, 2, 2)
    with pytest.raises(CheckFailed, match=r"^_rot180_in_place changed its argument w in place: work on a copy"):
        expect_implemented(_rot180_in_place, w)
    params = {"w1": np.ones(3)}
    original = {"w1": np.ones(3)}

    def block(x, params):
        params["w1"] *= 2
        return x

    block(np.zeros(2), params)
    assert changed_argument(block, (np.zeros(2), params), {}, (np.zeros(2), original), {}) == "params['w1']"
    assert changed_argument(block, (np.zeros(2), original), {}, (np.zeros(2), {"w1": np.ones(3)}), {}) is None
