"""Lesson 02 (ReLU and pooling): the reference against independent oracles (scalar loops written
here, numerical gradients, PyTorch when installed), the tie rule, the hidden checks' coverage, and the
pooling widget's logic. The typical bugs and their diagnoses are declared once, as BUGS in
autograder/checks/l02_relu_pooling.py, and judged by tests/test_samples_inprocess.py."""
from __future__ import annotations

import numpy as np
import pytest

from autograder.checks.l02_relu_pooling import parts
from autograder.grader.reference import load_reference
from autograder.grader.reference import test_points as graded_points   # not collected as a test
from autograder.grader.spec import call_in_process, judge_part
from convlab.gradcheck import numerical_gradient_array, relative_error
from convlab.widgets import pooling
from tests.visible import visible_test_failure

LESSON = "02_relu_pooling"
CONFIGS = [(2, 2), (3, 2), (3, 1), (2, 1), (2, 3), (1, 1), (4, 4)]       # (pool, stride)


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


# ---------------------------------------------------------------- oracles: scalar loops, nothing shared
def out_size(size, pool, stride):
    return len(range(0, size - pool + 1, stride))


def loop_max_forward(x, pool, stride):
    B, C, H, W = x.shape
    y = np.zeros((B, C, out_size(H, pool, stride), out_size(W, pool, stride)))
    for b, c, i, j in np.ndindex(*y.shape):
        y[b, c, i, j] = max(x[b, c, stride * i + m, stride * j + n] for m in range(pool) for n in range(pool))
    return y


def loop_max_backward(dy, x, pool, stride):
    """Scan each window row by row; a strictly larger value replaces the winner, so ties keep the first."""
    dx = np.zeros(x.shape)
    for b, c, i, j in np.ndindex(*dy.shape):
        best = (stride * i, stride * j)
        for m in range(pool):
            for n in range(pool):
                if x[b, c, stride * i + m, stride * j + n] > x[(b, c, *best)]:
                    best = (stride * i + m, stride * j + n)
        dx[(b, c, *best)] += dy[b, c, i, j]
    return dx


def loop_avg_forward(x, pool, stride):
    B, C, H, W = x.shape
    y = np.zeros((B, C, out_size(H, pool, stride), out_size(W, pool, stride)))
    for b, c, i, j in np.ndindex(*y.shape):
        y[b, c, i, j] = sum(float(x[b, c, stride * i + m, stride * j + n])
                            for m in range(pool) for n in range(pool)) / (pool * pool)
    return y


def loop_avg_backward(dy, x, pool, stride):
    dx = np.zeros(x.shape)
    for b, c, i, j in np.ndindex(*dy.shape):
        for m in range(pool):
            for n in range(pool):
                dx[b, c, stride * i + m, stride * j + n] += dy[b, c, i, j] / (pool * pool)
    return dx


def case_arrays(pool, stride, dtype, ties, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(2, 3, 9, 8)) if ties else rng.standard_normal((2, 3, 9, 8))
    x = x.astype(dtype)
    dy = rng.standard_normal((2, 3, out_size(9, pool, stride), out_size(8, pool, stride))).astype(dtype)
    return x, dy


# ---------------------------------------------------------------- the reference against the oracles
@pytest.mark.parametrize("pool,stride", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_pooling_reference_matches_loops(ref, pool, stride, dtype, ties):
    x, dy = case_arrays(pool, stride, dtype, ties)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    results = {
        "maxpool2d_forward_naive": (ref.maxpool2d_forward_naive(x, pool, stride), loop_max_forward(x, pool, stride)),
        "maxpool2d_forward": (ref.maxpool2d_forward(x, pool, stride), loop_max_forward(x, pool, stride)),
        "maxpool2d_backward_naive": (ref.maxpool2d_backward_naive(dy, x, pool, stride), loop_max_backward(dy, x, pool, stride)),
        "maxpool2d_backward": (ref.maxpool2d_backward(dy, x, pool, stride), loop_max_backward(dy, x, pool, stride)),
        "avgpool2d_forward": (ref.avgpool2d_forward(x, pool, stride), loop_avg_forward(x, pool, stride)),
        "avgpool2d_backward": (ref.avgpool2d_backward(dy, x, pool, stride), loop_avg_backward(dy, x, pool, stride)),
    }
    for name, (got, want) in results.items():
        assert got.dtype == dtype, f"{name} returned {got.dtype} for {np.dtype(dtype)} input"
        np.testing.assert_allclose(got, want, **tol, err_msg=name)


def test_pool_output_size_counts_the_windows(ref):
    for size in range(1, 12):
        for pool in range(1, size + 1):
            for stride in range(1, 5):
                assert ref.pool_output_size(size, pool, stride) == out_size(size, pool, stride), (size, pool, stride)


# Rules the hidden checks enforce, each caught by a visible test too (a correct answer never loses a point unseen).
_FLOAT_SIZE = "def pool_output_size(size, pool, stride):\n    return np.floor((size - pool) / stride) + 1\n"
_FOUR_AXES_FORWARD = "def relu_forward(x):\n    B, C, H, W = x.shape\n    return np.maximum(x, 0)\n"
_FOUR_AXES_BACKWARD = "def relu_backward(dy, x):\n    B, C, H, W = x.shape\n    return dy * (x > 0)\n"


@pytest.mark.parametrize("test_id,stub,student,words", [
    ("test_pool_output_size", "pool_output_size", _FLOAT_SIZE, "return an int (use // (floor division), not np.floor"),
    ("test_relu_forward", "relu_forward", _FOUR_AXES_FORWARD, "raised ValueError"),
    ("test_relu_backward", "relu_backward", _FOUR_AXES_BACKWARD, "raised ValueError")],
    ids=["size_is_a_float", "relu_forward_assumes_4_axes", "relu_backward_assumes_4_axes"])
def test_visible_tests_catch_what_the_hidden_checks_reject(ref, test_id, stub, student, words):
    assert visible_test_failure(LESSON, test_id, {}) is None
    assert words in (visible_test_failure(LESSON, test_id, {stub: student}) or "passed")
    part = next(p for p in parts(ref, np.random.default_rng(0)) if p.grade_id == test_id)
    namespace = {"np": np}
    exec(student, namespace)
    assert judge_part(part, [call_in_process(namespace, case) for case in part.cases]) is not None


def test_relu_reference_and_the_gradient_at_zero(ref):
    x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0], dtype=np.float32)
    dy = np.array([5.0, 5.0, -5.0, -5.0, 5.0], dtype=np.float32)
    assert ref.relu_forward(x).dtype == np.float32 and ref.relu_backward(dy, x).dtype == np.float32
    np.testing.assert_array_equal(ref.relu_forward(x), np.array([0, 0, 0, 1e-30, 3.0], dtype=np.float32))
    np.testing.assert_array_equal(ref.relu_backward(dy, x), [0, 0, 0, -5.0, 5.0])   # 0 at x == 0, sign of dy kept


def test_max_tie_rule_first_maximum_row_major(ref):
    x = np.array([[[[1.0, 5.0, 7.0, 7.0],
                    [5.0, 2.0, 7.0, 7.0]]]])
    dy = np.array([[[[3.0, 4.0]]]])
    expected = np.array([[[[0, 3.0, 4.0, 0], [0, 0, 0, 0]]]])
    for backward in (ref.maxpool2d_backward, ref.maxpool2d_backward_naive):
        np.testing.assert_array_equal(backward(dy, x, 2, 2), expected)


def test_gradients_match_numerical_gradients(ref):
    """Distinct values 0.1 apart (a shuffled arange): h = 1e-5 never flips a window's winner."""
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.1
    for pool, stride in [(2, 2), (3, 2), (3, 1), (2, 3)]:
        dy = rng.standard_normal(ref.maxpool2d_forward(x, pool, stride).shape)
        for forward, backward in [(ref.maxpool2d_forward, ref.maxpool2d_backward),
                                  (ref.avgpool2d_forward, ref.avgpool2d_backward)]:
            numeric = numerical_gradient_array(lambda v: forward(v, pool, stride), x, dy)
            assert relative_error(backward(dy, x, pool, stride), numeric) < 1e-8, (forward.__name__, pool, stride)
    x = rng.choice([-1.0, 1.0], size=(3, 4, 5)) * rng.uniform(0.1, 1.0, size=(3, 4, 5))
    dy = rng.standard_normal(x.shape)
    assert relative_error(ref.relu_backward(dy, x), numerical_gradient_array(ref.relu_forward, x, dy)) < 1e-8


def test_against_pytorch(ref):
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    for ties in (False, True):
        for pool, stride in CONFIGS:
            x, dy = case_arrays(pool, stride, np.float64, ties, seed=2)
            for torch_pool, forward, backward in [(fn.max_pool2d, ref.maxpool2d_forward, ref.maxpool2d_backward),
                                                  (fn.avg_pool2d, ref.avgpool2d_forward, ref.avgpool2d_backward)]:
                xt = torch.tensor(x, requires_grad=True)
                yt = torch_pool(xt, pool, stride)
                yt.backward(torch.tensor(dy))
                np.testing.assert_allclose(forward(x, pool, stride), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(backward(dy, x, pool, stride), xt.grad.numpy(), rtol=1e-12, atol=1e-12,
                                           err_msg=f"{torch_pool.__name__} pool {pool} stride {stride} ties {ties}")
    x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    torch.relu(x).backward(torch.tensor([3.0, 3.0, 3.0]))
    np.testing.assert_array_equal(ref.relu_backward(np.full(3, 3.0), x.detach().numpy()), x.grad.numpy())


# ---------------------------------------------------------------- hidden checks and samples
def test_parts_cover_every_graded_cell_with_the_required_cases(ref):
    built = parts(ref, np.random.default_rng(0))
    assert [p.grade_id for p in built] == list(graded_points(LESSON))
    backward = next(p for p in built if p.grade_id == "test_maxpool2d_backward").cases
    combos = {(c.kwargs["pool"], c.kwargs["stride"]) for c in backward}
    assert {(2, 2), (3, 2), (3, 1), (2, 3)} <= combos
    assert {c.args[1].dtype for c in backward} == {np.dtype(np.float32), np.dtype(np.float64)}
    assert any("tied maxima" in c.label for c in backward) and any("all negative" in c.label for c in backward)
    assert any(c.args[1].shape[2] % c.kwargs["stride"] for c in backward), "a size the stride does not divide"
    relu = next(p for p in built if p.grade_id == "test_relu_backward").cases
    assert any(np.any(c.args[1] == 0) for c in relu)
    for part in built:   # the reference passes its own checks
        assert judge_part(part, [call_in_process(ref, case) for case in part.cases]) is None, part.grade_id


# ---------------------------------------------------------------- the widget's logic
def test_window_helpers():
    assert pooling.window_starts(7, 3, 2) == [0, 2, 4]
    assert pooling.window_starts(6, 2, 3) == [0, 3]
    window = np.array([[1.0, 4.0], [4.0, 0.0]])
    np.testing.assert_array_equal(pooling.window_gradient(window, 6.0, "max"), [[0, 6.0], [0, 0]])
    np.testing.assert_array_equal(pooling.window_gradient(window, 6.0, "avg"), np.full((2, 2), 1.5))
    assert pooling.window_value(window, "max") == 4.0 and pooling.window_value(window, "avg") == 2.25


def student_stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("kind", pooling.KINDS)
@pytest.mark.parametrize("pool,stride", [(2, 2), (3, 1), (2, 3)])
def test_frames_fallback_matches_loops(kind, pool, stride):
    x = pooling.demo_input(7)
    y_full = (loop_max_forward if kind == "max" else loop_avg_forward)(x[None, None], pool, stride)[0, 0]
    dy = pooling.demo_upstream(*y_full.shape)
    loop_backward = loop_max_backward if kind == "max" else loop_avg_backward
    last = y_full.size - 1
    frame = pooling.forward_frame(x, pool, stride, last, kind, student_stub)
    assert "window-by-window" in frame.source and "not implemented" in frame.note
    np.testing.assert_allclose(frame.out, y_full)
    middle = pooling.forward_frame(x, pool, stride, 2, kind)
    assert np.isnan(middle.out.flat[3:]).all() and not np.isnan(middle.out.flat[:3]).any()
    for position in (0, 2, last):
        frame = pooling.backward_frame(x, dy, pool, stride, position, kind, None)
        partial = np.where(np.arange(dy.size).reshape(dy.shape) <= position, dy, 0)
        np.testing.assert_allclose(frame.dx, loop_backward(partial[None, None], x[None, None], pool, stride)[0, 0])


def test_frames_use_the_students_function(ref):
    calls = []

    def maxpool2d_backward(dy, x, pool, stride):
        calls.append(dy.shape)
        return ref.maxpool2d_backward(dy, x, pool, stride)

    x = pooling.demo_input(6)
    frame = pooling.backward_frame(x, pooling.demo_upstream(3, 3), 2, 2, 4, "max", maxpool2d_backward)
    assert calls and frame.source == "your maxpool2d_backward" and frame.note == ""
    assert frame.local.sum() == 5.0 and np.count_nonzero(frame.local) == 1      # dy[1, 1] = 5, to one cell

    def avgpool2d_forward(x, pool, stride):       # a wrong student function: the frame says so
        return ref.maxpool2d_forward(x, pool, stride)

    frame = pooling.forward_frame(np.arange(36.0).reshape(6, 6), 2, 2, 0, "avg", avgpool2d_forward)
    assert frame.source == "your avgpool2d_forward" and "window's avg is 3.5" in frame.note
    broken = pooling.backward_frame(x, pooling.demo_upstream(3, 3), 2, 2, 0, "avg", lambda dy, x, pool, stride: dy)
    assert "window-by-window" in broken.source and "expected shape (1, 1, 6, 6)" in broken.note


def test_render_and_widget_change_with_the_position(ref):
    x = pooling.demo_input(6)
    first, second = (pooling.render_frame(pooling.backward_frame(x, pooling.demo_upstream(3, 3), 2, 2, p, "max"))
                     for p in (0, 1))
    assert first != second and "<svg" in first and "dy[0, 1] = 2" in second
    root = pooling.pooling_widget(maxpool2d_forward=ref.maxpool2d_forward, maxpool2d_backward=student_stub)
    assert "convlab-widget" in root._dom_classes
    controls = {c.description: c for box in root.children[:3] for c in box.children if hasattr(c, "description")}
    view = root.children[-1]
    before = view.value
    assert "your maxpool2d_forward" in before
    controls["position"].value = 3
    assert view.value != before and "y[1, 0]" in view.value
    controls["stride"].value = 1                 # 5x5 windows now: the position range follows
    assert controls["position"].max == 24
    root.children[0].children[0].value = "backward"
    assert "not implemented" in view.value and "dx so far" in view.value
