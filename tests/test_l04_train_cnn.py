"""Lesson 04 (train a CNN): the reference against independent oracles, the data loader, the hidden
checks' crafted-case feedback, and the training/feature-map widgets' logic.

Oracles: loops written here from the index formulas, central differences (convlab.gradcheck), closed
forms (momentum under a constant gradient, softmax in long double) and PyTorch when installed.
"""
from __future__ import annotations

import ast

import numpy as np
import pytest

from autograder.checks import l04_train_cnn as checks
from autograder.checks.l04_train_cnn import LESSON
from autograder.coursedir import grade_id, lesson_source
from autograder.grader.inprocess import grade_in_process
from autograder.grader.reference import load_reference
from autograder.grader.reference import test_points as graded_points
from autograder.grader.spec import Sample, judge_part
from convlab.widgets import training
from convlab.data import load_digits_split, random_shift
from convlab.gradcheck import numerical_gradient, numerical_gradient_array, relative_error


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """Tiny matrices: BLAS threads cost more than they bring (as in the sandbox, OPENBLAS_NUM_THREADS=1)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


CONV_CONFIGS = [((2, 3, 5, 6), (4, 3, 3, 3), 1, 1), ((1, 2, 7, 7), (3, 2, 3, 2), 2, 0),
                ((2, 1, 6, 5), (2, 1, 2, 3), 3, 2), ((1, 2, 4, 4), (1, 2, 1, 1), 1, 0)]


def conv_loops(x, w, b, stride, pad):
    """Y[b, co, i, j] = b[co] + sum_{ci, p, q} x_pad[b, ci, i*stride + p, j*stride + q] w[co, ci, p, q]."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    (B, _, H, W), (C_out, _, K_h, K_w) = x_pad.shape, w.shape
    y = np.zeros((B, C_out, (H - K_h) // stride + 1, (W - K_w) // stride + 1))
    for n, co, i, j in np.ndindex(*y.shape):
        y[n, co, i, j] = b[co] + np.sum(x_pad[n, :, i * stride:i * stride + K_h, j * stride:j * stride + K_w] * w[co])
    return y


def maxpool_loops(x, pool, stride):
    B, C, H, W = x.shape
    y = np.zeros((B, C, (H - pool) // stride + 1, (W - pool) // stride + 1))
    for n, c, i, j in np.ndindex(*y.shape):
        y[n, c, i, j] = x[n, c, i * stride:i * stride + pool, j * stride:j * stride + pool].max()
    return y


# ---- the reference against oracles -------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CONFIGS)
def test_conv_reference_matches_loops_and_numerical_gradients(ref, x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])
    y = ref.conv2d_forward(x, w, b, stride=stride, pad=pad)
    np.testing.assert_allclose(y, conv_loops(x, w, b, stride, pad), rtol=1e-10, atol=1e-12)
    dy = rng.normal(size=y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride=stride, pad=pad)
    for got, (arg, f) in zip((dx, dw, db), [(x, lambda v: conv_loops(v, w, b, stride, pad)),
                                             (w, lambda v: conv_loops(x, v, b, stride, pad)),
                                             (b, lambda v: conv_loops(x, w, v, stride, pad))]):
        assert relative_error(got, numerical_gradient_array(f, arg, dy)) < 1e-7


@pytest.mark.parametrize("pool, stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_maxpool_reference_matches_loops_and_numerical_gradients(ref, pool, stride):
    x = np.random.default_rng(pool * 10 + stride).normal(size=(2, 2, 7, 6))
    y = ref.maxpool2d_forward(x, pool=pool, stride=stride)
    np.testing.assert_array_equal(y, maxpool_loops(x, pool, stride))
    dy = np.random.default_rng(1).normal(size=y.shape)
    dx = ref.maxpool2d_backward(dy, x, pool=pool, stride=stride)
    assert relative_error(dx, numerical_gradient_array(lambda v: maxpool_loops(v, pool, stride), x, dy)) < 1e-7


def test_layer_probes_match_numerical_gradients(ref):
    rng = np.random.default_rng(2)
    x, W, b = rng.normal(size=(4, 5)), rng.normal(size=(3, 5)), rng.normal(size=3)
    dy = rng.normal(size=(4, 3))
    y, dx, dW, db = ref.probe_dense_layer(x, W, b, dy)
    np.testing.assert_allclose(y, np.einsum("ni,oi->no", x, W) + b)
    assert relative_error(dx, numerical_gradient_array(lambda v: v @ W.T + b, x, dy)) < 1e-8
    assert relative_error(dW, numerical_gradient_array(lambda v: x @ v.T + b, W, dy)) < 1e-8
    assert relative_error(db, numerical_gradient_array(lambda v: x @ W.T + v, b, dy)) < 1e-8

    x = rng.normal(size=(2, 3, 4, 4))
    dy = rng.normal(size=x.shape)
    y, dx = ref.probe_relu_layer(x, dy)
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.0))
    assert relative_error(dx, numerical_gradient_array(lambda v: np.where(v > 0, v, 0.0), x, dy)) < 1e-8
    assert np.array_equal(ref.probe_relu_layer(np.zeros((1, 2)), np.ones((1, 2)))[1], np.zeros((1, 2)))

    y, dx = ref.probe_flatten_layer(x, dy.reshape(2, -1))
    assert y.shape == (2, 48) and np.array_equal(y[1, 16:32], x[1, 1].ravel()) and np.array_equal(dx, dy)

    w, b = rng.normal(size=(2, 3, 3, 3)), rng.normal(size=2)
    dy = rng.normal(size=(2, 2, 2, 2))
    y, dx, dw, db = ref.probe_conv2d_layer(x, w, b, dy, stride=2, pad=1)
    np.testing.assert_allclose(y, conv_loops(x, w, b, 2, 1), rtol=1e-10)
    assert relative_error(dw, numerical_gradient_array(lambda v: conv_loops(x, v, b, 2, 1), w, dy)) < 1e-7
    dy = rng.normal(size=(2, 3, 2, 2))
    y, dx = ref.probe_maxpool_layer(x, dy, pool=2, stride=2)
    assert relative_error(dx, numerical_gradient_array(lambda v: maxpool_loops(v, 2, 2), x, dy)) < 1e-7


def softmax_oracle(logits, y):
    """Loss and gradient in long double, straight from the definitions (no max subtraction needed
    for moderate logits at that precision)."""
    z = logits.astype(np.longdouble)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    return float(-np.log(p[np.arange(n), y]).mean()), ((p - np.eye(z.shape[1])[y]) / n).astype(np.float64)


def test_softmax_cross_entropy_matches_oracle_gradient_and_survives_huge_logits(ref):
    rng = np.random.default_rng(3)
    logits, y = rng.normal(scale=4, size=(6, 7)), rng.integers(0, 7, size=6)
    loss, dlogits = ref.softmax_cross_entropy(logits, y)
    want_loss, want_grad = softmax_oracle(logits, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(dlogits, want_grad, rtol=1e-10, atol=1e-15)
    assert relative_error(dlogits, numerical_gradient(lambda v: ref.softmax_cross_entropy(v, y)[0], logits)) < 1e-7
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow, NaN or log(0) anywhere
        loss, dlogits = ref.softmax_cross_entropy(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]]), np.array([1, 0]))
    assert loss == pytest.approx((2e4 + 1e4 + np.log(2)) / 2)
    np.testing.assert_allclose(dlogits, [[0.5, -0.5, 0.0], [-0.5, 0.25, 0.25]], atol=1e-12)


def test_he_init_has_the_derived_variance_and_uses_the_rng(ref):
    for shape in [(64, 32, 3, 3), (300, 40)]:
        w = ref.he_init(shape, np.random.default_rng(0))
        assert w.shape == shape
        assert w.std() == pytest.approx(np.sqrt(2 / np.prod(shape[1:])), rel=0.03)
        assert abs(w.mean()) < 4 * w.std() / np.sqrt(w.size)
    assert np.array_equal(ref.he_init((5, 4), np.random.default_rng(7)), ref.he_init((5, 4), np.random.default_rng(7)))


def test_sgd_momentum_matches_the_closed_form_under_a_constant_gradient(ref):
    """With a constant gradient g from rest: velocity_k = -lr g (1 - momentum^k) / (1 - momentum)."""
    lr, momentum, grad = 0.1, 0.9, np.array([1.0, -2.0])
    param, velocity = np.zeros(2), np.zeros(2)
    for k in range(1, 6):
        param, velocity = ref.sgd_momentum_step(param, grad, velocity, lr, momentum)
        np.testing.assert_allclose(velocity, -lr * grad * (1 - momentum ** k) / (1 - momentum))
    steps = sum((1 - momentum ** k) / (1 - momentum) for k in range(1, 6))
    np.testing.assert_allclose(param, -lr * grad * steps)


def test_network_forward_backward_and_sgd_match_torch(ref):
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(4)
    layers = ref.build_cnn(rng)
    for layer in layers:   # float64 on both sides: compare to 1e-9, not to float32 rounding
        layer.params = {name: value.astype(np.float64) for name, value in layer.params.items()}
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 10)).double()
    ours = [layer for layer in layers if layer.params]
    theirs = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for a, m in zip(ours, theirs):
            weight, bias = a.params.values()
            m.weight.copy_(torch.from_numpy(weight))
            m.bias.copy_(torch.from_numpy(bias))
    data = load_digits_split()
    x, y = data.x_train[:16].astype(np.float64), data.y_train[:16]
    logits = ref.forward(layers, x)
    loss, dlogits = ref.softmax_cross_entropy(logits, y)
    ref.backward(layers, dlogits)
    x_t = torch.from_numpy(x)
    torch_loss = F.cross_entropy(model(x_t), torch.from_numpy(y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-10)
    for a, m in zip(ours, theirs):
        weight_name, bias_name = a.params   # ("w", "b") for Conv2D, ("W", "b") for Dense
        np.testing.assert_allclose(a.grads[weight_name], m.weight.grad.numpy(), rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(a.grads[bias_name], m.bias.grad.numpy(), rtol=1e-7, atol=1e-12)
    # SGD with momentum: torch keeps buf = momentum*buf + grad and steps -lr*buf; ours is the same
    # trajectory with velocity = -lr*buf (constant lr). Three steps from rest on a fixed gradient field.
    p, v, g = np.array([0.5, -1.0]), np.zeros(2), lambda q: 2 * q + 1
    p_t = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p_t], lr=0.1, momentum=0.9)
    for _ in range(3):
        p, v = ref.sgd_momentum_step(p, g(p), v, 0.1, 0.9)
        opt.zero_grad()
        (p_t ** 2 + p_t).sum().backward()
        opt.step()
    np.testing.assert_allclose(p, p_t.detach().numpy(), rtol=1e-12)


def test_conv_references_match_torch(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for x_shape, w_shape, c_stride, pad in CONV_CONFIGS:
        x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])
        x_t, w_t, b_t = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        y_t = torch.nn.functional.conv2d(x_t, w_t, b_t, stride=c_stride, padding=pad)
        dy = rng.normal(size=tuple(y_t.shape))
        y_t.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(ref.conv2d_forward(x, w, b, stride=c_stride, pad=pad), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        for got, want in zip(ref.conv2d_backward(dy, x, w, stride=c_stride, pad=pad), (x_t.grad, w_t.grad, b_t.grad)):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pool, stride", [(2, 2), (3, 2)])
def test_maxpool_references_match_torch(ref, pool, stride):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.normal(size=(2, 3, 7, 8)), requires_grad=True)
    y = torch.nn.functional.max_pool2d(x, pool, stride)
    dy = rng.normal(size=tuple(y.shape))
    y.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(ref.maxpool2d_forward(x.detach().numpy(), pool, stride), y.detach().numpy())
    np.testing.assert_allclose(ref.maxpool2d_backward(dy, x.detach().numpy(), pool, stride), x.grad.numpy())


def test_the_pipeline_overfits_a_tiny_batch(ref):
    result = ref.probe_overfit(0)
    labels = load_digits_split().y_train[:ref.OVERFIT_EXAMPLES]
    assert np.array_equal(result["predictions"], labels)
    assert result["losses"][-1] < 0.1 * result["losses"][0]


# ---- data -------------------------------------------------------------------------------------------
def test_digits_split_is_stratified_deterministic_and_disjoint():
    from convlab.data import _split_indices
    first, again = load_digits_split(), load_digits_split()
    assert [a.shape for a in first] == [(1077, 1, 8, 8), (1077,), (360, 1, 8, 8), (360,), (360, 1, 8, 8), (360,)]
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int64
    assert first.x_train.min() == 0.0 and first.x_train.max() == 1.0
    for labels in (first.y_val, first.y_test):   # stratified: every digit 35..37 times in 360
        assert np.bincount(labels, minlength=10).min() >= 35 and np.bincount(labels).max() <= 37
    indices = np.concatenate(_split_indices(360, 360, 0))
    assert np.array_equal(np.sort(indices), np.arange(1797))
    first.x_train[:] = -1   # a caller's edits do not leak into the next call
    assert load_digits_split().x_train.min() == 0.0
    assert not np.array_equal(load_digits_split(seed=1).y_test, first.y_test)
    with pytest.raises(ValueError, match="n_val"):
        load_digits_split(n_val=0)


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    x = np.random.default_rng(6).random((50, 1, 8, 8)).astype(np.float32) + 1   # no zeros inside
    shifted = random_shift(x, np.random.default_rng(0))
    assert shifted.shape == x.shape and shifted.dtype == x.dtype
    seen = set()
    for image, moved in zip(x[:, 0], shifted[:, 0]):
        padded = np.pad(image, 1)
        offsets = [(r, c) for r in range(3) for c in range(3) if np.array_equal(padded[r:r + 8, c:c + 8], moved)]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert len(seen) == 9
    assert np.array_equal(random_shift(x, np.random.default_rng(0), max_shift=0), x)


# ---- hidden checks: diagnoses, without training ---------------------------------------------------------
def _judge(part, fn):
    """Feedback for `part` when its cases are answered by fn(case) (a buggy implementation)."""
    return judge_part(part, [fn(case) for case in part.cases])


@pytest.fixture(scope="module")
def parts(ref):
    return {part.grade_id: part for part in checks.parts(ref, np.random.default_rng(0))}


def test_every_graded_cell_has_a_part_and_the_reference_passes_the_fast_ones(ref, parts):
    assert set(parts) == set(graded_points(LESSON))
    for grade_id, part in parts.items():
        if grade_id not in ("test_overfit_tiny_batch", "test_probe_train"):
            assert _judge(part, lambda case: getattr(ref, case.func)(*case.args, **case.kwargs)) is None, grade_id


# Crafted predictions (an exact 83.3 %, a rising loss, a wrong shape): no whole-notebook Bug produces them.
def test_training_checks_report_the_accuracy_gap_and_the_loss_trend(parts):
    labels = load_digits_split().y_test
    part = parts["test_probe_train"]
    wrong = np.where(np.arange(360) < 300, labels, (labels + 1) % 10)   # 300 of 360 right: 83.3 %
    feedback = _judge(part, lambda case: {"test_predictions": wrong, "losses": np.array([2.3, 2.5])})
    assert "83.3%" in feedback and "6.7 percentage points below the required 90%" in feedback
    assert "went up" in feedback
    assert _judge(part, lambda case: {"test_predictions": labels, "losses": np.array([2.3, 0.1])}) is None
    feedback = _judge(part, lambda case: {"test_predictions": labels[:10], "losses": np.array([1.0])})
    assert "should be an array of 360 predicted labels" in feedback


# ---- the typical bugs are BUGS in autograder/checks/_l04_bugs.py (tests/test_samples_inprocess.py) ----
def test_the_earlier_lessons_functions_pasted_in_earn_full_marks():
    """What the paste cells ask for: lessons 01-03's own solutions (with their helpers) work here."""
    from autograder.grader.reference import SOLUTIONS, reference_cells
    earlier = ["01_conv_forward", "02_relu_pooling", "03_conv_backward"]
    if not all((SOLUTIONS / f"{lesson}.py").exists() for lesson in earlier):
        pytest.skip("lessons 01-03 are not all written yet")
    pasted = {stub: "\n\n".join(reference_cells(lesson)) for stub, lesson in
              [("conv2d_forward", "01_conv_forward"), ("maxpool2d_forward", "02_relu_pooling"),
               ("conv2d_backward", "03_conv_backward")]}
    score, messages = grade_in_process(LESSON, Sample(replace=pasted | {"maxpool2d_backward": ""}))
    assert (score, messages) == (sum(graded_points(LESSON).values()), {})


# ---- widgets and training helpers -----------------------------------------------------------------------
def test_progress_and_epoch_lines():
    assert training.format_duration(42.04) == "42.0 s" and training.format_duration(185) == "3 min 05 s"
    assert training.progress_text(10, 40, 5.0, 0.5) == "step 10/40 · loss 0.500 · 5.0 s · ETA 15.0 s"
    assert "ETA" not in training.progress_text(40, 40, 20.0)
    assert training.epoch_line(3, 10, {"loss": 0.25, "val_acc": 0.9}, 1.5) == "epoch  3/10  loss 0.2500  val_acc 0.9000  (1.5 s)"


def test_monitor_prints_without_a_notebook_and_draws_with_widgets():
    lines = []
    plain = training.TrainingMonitor(2, 3, widgets=False, printer=lines.append)
    for epoch in range(2):
        for _ in range(3):
            plain.step(1.0)
        plain.end_epoch(loss=1.0 / (epoch + 1), val_acc=0.5)
    assert plain.view is None and len(lines) == 2 and lines[1].startswith("epoch 2/2  loss 0.5000")
    assert plain.history == {"loss": [1.0, 0.5], "val_acc": [0.5, 0.5]}

    live = training.TrainingMonitor(2, 2, widgets=True)
    assert "convlab-widget" in live.view._dom_classes
    pictures = []
    for epoch in range(2):
        live.step(1.0)
        live.step(0.8)
        live.end_epoch(loss=0.9 - 0.3 * epoch, train_acc=0.5 + 0.2 * epoch)
        pictures.append(bytes(live._plot.value))
    assert live._bar.value == 4 and live._epoch.max == 2 and live._epoch.value == 2
    assert pictures[0].startswith(b"\x89PNG") and pictures[0] != pictures[1]
    status = live._status.value
    live._epoch.value = 1   # the slider goes back in time: new mark, that epoch's numbers
    assert bytes(live._plot.value) != pictures[1] and live._status.value != status and "loss 0.9000" in live._status.value


def test_figures_and_feature_map_explorer():
    fig = training.history_figure({"loss": [1.0, 0.5], "train_acc": [0.6, 0.8], "val_acc": [0.5, 0.7]})
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 2
    assert len(training.filters_figure(np.random.default_rng(0).normal(size=(16, 1, 3, 3))).axes) == 16
    images, labels = np.random.default_rng(1).random((3, 1, 8, 8)), np.array([4, 7, 1])
    explorer = training.FeatureMapExplorer(images, labels, lambda x: np.concatenate([x, -x], axis=1))
    assert "convlab-widget" in explorer.view._dom_classes
    first = bytes(explorer.picture.value)
    explorer.slider.value = 2
    assert bytes(explorer.picture.value) != first and "digit 1" in explorer.text.value

    def stub(x):
        raise NotImplementedError()
    waiting = training.FeatureMapExplorer(images, labels, stub)
    assert "implement it" in waiting.text.value and waiting.picture.layout.display == "none"


def test_bench_measure_reports_accuracy_and_cpu_time():
    from bench import lesson04
    result = lesson04.measure(epochs=1)
    assert 0.5 < result["test_accuracy"] <= 1 and result["cpu_seconds"] > 0 and result["met"] in (True, False)


@pytest.mark.parametrize("test_id", ["test_Conv2D", "test_MaxPool2D", "test_Dense"])
def test_layer_tests_do_not_bind_x_so_a_backward_reading_the_global_x_fails_them(test_id):
    # a backward that uses the notebook's global `x` instead of the input its forward remembered passed
    # these tests while they named their input `x` (the same values); with another name it gets another array
    cell = next(c for c in lesson_source(LESSON).cells if grade_id(c) == test_id)
    bound = {node.id for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Name)
             and isinstance(node.ctx, ast.Store)}
    assert "x" not in bound, f"{test_id} binds x"


def test_the_tie_rule_the_hidden_check_enforces_is_checked_by_the_visible_test():
    from autograder.checks._l04_bugs import _POOL_TIES_TO_EVERY_MAX
    from tests.visible import visible_test_failure
    assert visible_test_failure(LESSON, "test_maxpool2d_backward", {}) is None
    failure = visible_test_failure(LESSON, "test_maxpool2d_backward", {"maxpool2d_backward": _POOL_TIES_TO_EVERY_MAX})
    assert "with tied maxima" in failure and "first maximum in row-major order" in failure
