"""The transposed-convolution widget's logic against independent oracles: the transpose of the
forward convolution's matrix (built here by running a naive forward convolution on every basis
image), lesson 03's dL/dX by the index formula, and PyTorch's conv_transpose2d where installed."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from autograder.grader.reference import load_reference
from convlab.expect import expect_close
from convlab.widgets import transposed

# (H_y, K, stride, pad, output_pad, dilation): every slider at its ends and a few in between
CONFIGS = [(2, 3, 2, 0, 0, 1), (3, 3, 2, 1, 1, 1), (2, 2, 3, 0, 2, 1), (3, 3, 1, 0, 0, 2),
           (2, 3, 2, 1, 1, 3), (4, 1, 3, 0, 1, 1), (1, 3, 1, 2, 0, 2), (3, 2, 2, 2, 1, 3)]


def naive_forward(x, w, stride, pad, dilation):
    """y[i, j] = sum_{m, n} w[m, n] x_pad[stride*i + dilation*m, stride*j + dilation*n], by loops."""
    x_pad = np.pad(x, pad)
    K = w.shape[0]
    span = dilation * (K - 1) + 1
    rows, cols = (x_pad.shape[0] - span) // stride + 1, (x_pad.shape[1] - span) // stride + 1
    y = np.zeros((rows, cols))
    for i, j, m, n in itertools.product(range(rows), range(cols), range(K), range(K)):
        y[i, j] += w[m, n] * x_pad[stride * i + dilation * m, stride * j + dilation * n]
    return y


def matrix_oracle(x_hw, w, stride, pad, dilation):
    """The forward convolution as a matrix, column k = the convolution of the k-th basis image."""
    columns = [naive_forward(np.eye(x_hw[0] * x_hw[1])[k].reshape(x_hw), w, stride, pad, dilation).ravel()
               for k in range(x_hw[0] * x_hw[1])]
    return np.stack(columns, axis=1)


def problem(config, seed=0):
    H_y, K, *_ = config
    rng = np.random.default_rng(seed)
    return rng.standard_normal((H_y, H_y)), rng.standard_normal((K, K))


def magnitude(y, w):
    return np.abs(y).sum() * np.abs(w).max()     # every output is a sum of at most all |y|·max|w|


@pytest.mark.parametrize("config", CONFIGS)
def test_transposed_convolution_is_the_transpose_of_the_forward_matrix(config):
    H_y, K, stride, pad, output_pad, dilation = config
    y, w = problem(config)
    plan = transposed.transposed_plan(y, w, stride, pad, output_pad, dilation)
    side = (H_y - 1) * stride - 2 * pad + dilation * (K - 1) + output_pad + 1
    assert plan.z.shape == (side, side)
    oracle = matrix_oracle(plan.z.shape, w, stride, pad, dilation)
    assert oracle.shape == (y.size, plan.z.size), "the forward convolution of z's shape does not give y's shape back"
    expect_close(plan.z, (oracle.T @ y.ravel()).reshape(plan.z.shape), "z", magnitude=magnitude(y, w), terms=K * K)
    expect_close(transposed.forward_matrix(plan.z.shape, w, stride, pad, dilation), oracle, "forward_matrix")


@pytest.mark.parametrize("config", CONFIGS)
def test_each_window_holds_exactly_the_forward_terms_of_its_cell(config):
    H_y, K, stride, pad, output_pad, dilation = config
    y, w = problem(config, seed=1)
    plan = transposed.transposed_plan(y, w, stride, pad, output_pad, dilation)
    oracle = matrix_oracle(plan.z.shape, w, stride, pad, dilation)
    for r, c in np.ndindex(*plan.z.shape):
        window = transposed.window_terms(plan, r, c)
        assert window == transposed.forward_terms(y, w, stride, pad, dilation, r, c)
        # the terms are the nonzero entries of column (r, c) of the forward matrix, one per output (i, j)
        column = oracle[:, r * plan.z.shape[1] + c]
        assert sorted(t.i * H_y + t.j for t in window) == list(np.flatnonzero(column))
        expect_close(sum(t.y * t.w for t in window), plan.z[r, c], f"z[{r},{c}]",
                     magnitude=magnitude(y, w), terms=K * K)
    assert np.count_nonzero(plan.kinds == "y") == y.size
    assert np.count_nonzero(plan.kinds == "output pad") == (2 * plan.grid.shape[0] - output_pad) * output_pad


@pytest.mark.parametrize("config", CONFIGS)
def test_transposed_convolution_is_lesson_03s_dx(config):
    """With y as dY, z is dL/dX of the forward convolution (lesson 03's reference, dilated kernel)."""
    H_y, K, stride, pad, output_pad, dilation = config
    y, w = problem(config, seed=2)
    plan = transposed.transposed_plan(y, w, stride, pad, output_pad, dilation)
    dx, note = transposed.student_dx(load_reference("03_conv_backward").conv2d_dx_rotated, plan)
    assert dx is not None, note
    expect_close(dx, plan.z, "lesson 03's dx", magnitude=magnitude(y, w), terms=K * K)


@pytest.mark.parametrize("config", CONFIGS)
def test_against_torch_conv_transpose2d(config):
    torch = pytest.importorskip("torch")
    H_y, K, stride, pad, output_pad, dilation = config
    y, w = problem(config, seed=3)
    plan = transposed.transposed_plan(y, w, stride, pad, output_pad, dilation)
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(y)[None, None], torch.tensor(w)[None, None], stride=stride, padding=pad,
        output_padding=output_pad, dilation=dilation)[0, 0].numpy()
    expect_close(plan.z, expected, "z vs torch", magnitude=magnitude(y, w), terms=K * K)


@pytest.mark.parametrize("args, phrase", [((2, 3, 2, 0, 2, 1), "smaller than the stride"),
                                          ((2, 3, 1, 0, 1, 1), "smaller than the stride"),
                                          ((1, 1, 1, 1, 0, 1), "lower the padding")])
def test_impossible_settings_say_why(args, phrase):
    with pytest.raises(ValueError, match=phrase):
        transposed.transposed_output_size(*args)


def test_widget_reports_the_students_function():
    y, w = transposed.demo_values(2, 3)
    plan = transposed.transposed_plan(y, w, 2, 1, 1, 2)

    def stub(dy, w, x_shape, stride=1, pad=0):
        raise NotImplementedError()

    assert "not implemented yet" in transposed.student_dx(stub, plan)[1]
    wrong_shape = transposed.student_dx(lambda dy, w, x_shape, stride=1, pad=0: np.zeros((1, 1, 2, 2)), plan)
    assert wrong_shape[0] is None and "expected (1, 1, 6, 6)" in wrong_shape[1]
    off_by_one = (plan.z + 1.0, "z computed by your off_by_one as dL/dx")
    assert "✗" in transposed.render_plan(plan, 0, off_by_one)
    assert "✓</div>" in transposed.render_plan(plan, 0, (plan.z.copy(), "yours"))


def test_the_highlighted_output_cell_keeps_its_row_and_column_when_z_changes_shape():
    root = transposed.transposed_widget()
    sliders = {c.description: c for box in root.children[:-1] for c in box.children if hasattr(c, "description")}
    sliders["output cell"].value = 12                    # z is 5 x 5 (H_y 2, K 3, stride 2): z[2, 2]
    sliders["output padding"].value = 1                  # z becomes 6 x 6: z[2, 2] is cell 14
    assert sliders["output cell"].value == 14
    sliders["stride"].value = 1                          # 4 x 4 (output padding back to 0): z[2, 2] is cell 10
    assert sliders["output cell"].value == 10
    sliders["input size H_y"].value = 1                  # 3 x 3: still z[2, 2], the last cell
    assert sliders["output cell"].value == 8


def test_widget_sliders_change_the_rendered_frame():
    root = transposed.transposed_widget(load_reference("03_conv_backward").conv2d_dx_rotated)
    assert "convlab-widget" in root._dom_classes
    view = root.children[-1]
    sliders = {c.description: c for box in root.children[:-1] for c in box.children if hasattr(c, "description")}
    frames = [view.value]
    for description, value in [("output cell", 3), ("stride", 3), ("output padding", 2), ("dilation", 2),
                               ("padding", 1), ("kernel K", 2), ("input size H_y", 3), ("stride", 1)]:
        sliders[description].value = value
        frames.append(view.value)
    assert sliders["output padding"].value == 0, "output padding must follow the stride down to stay below it"
    assert all(a != b for a, b in itertools.pairwise(frames))
    assert all("the same terms ✓" in frame and "as dL/dx" in frame and "✗" not in frame for frame in frames)
    sliders["padding"].value, sliders["kernel K"].value, sliders["input size H_y"].value = 2, 1, 1
    assert "lower the padding" in view.value
