"""Lesson 07 (going deep): the reference against independent oracles, the hidden checks' bug models and
the gradient-flow widget's logic (the samples are graded by tests/test_samples_inprocess.py and in the sandbox).

Oracles: explicit Python loops over the lesson's formulas (per channel, per position), central differences
of those loops, a brute-force enumeration of every input-to-output path for the CAP depth, and PyTorch's
batch_norm, conv2d and autograd when torch is installed.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from autograder.checks import l07_going_deep as checks
from autograder.grader.reference import load_reference
from autograder.grader.spec import Part, call_in_process, judge_part
from convlab.gradcheck import numerical_gradient_array, relative_error
from convlab.widgets import depthflow
from tests.visible import visible_test_failure

LESSON = "07_going_deep"


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


# ---- oracles -------------------------------------------------------------------------------------------
def loop_batchnorm(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5):
    B, C, H, W = x.shape
    y, new_mean, new_var = np.zeros(x.shape), np.array(running_mean, float), np.array(running_var, float)
    for c in range(C):
        values = [float(x[b, c, i, j]) for b in range(B) for i in range(H) for j in range(W)]
        if mode == "train":
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / len(values)
            new_mean[c] = momentum * running_mean[c] + (1 - momentum) * mean
            new_var[c] = momentum * running_var[c] + (1 - momentum) * var
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        for b, i, j in itertools.product(range(B), range(H), range(W)):
            y[b, c, i, j] = gamma[c] * (x[b, c, i, j] - mean) / (var + eps) ** 0.5 + beta[c]
    return y, new_mean, new_var


def loop_conv_same(x, w, b):
    """3x3 (or 1x1) convolution with 'same' zero padding, one multiply-add at a time."""
    B, C_in, H, W = x.shape
    C_out, _, K, _ = w.shape
    pad = K // 2
    y = np.zeros((B, C_out, H, W))
    for n, o, i, j in itertools.product(range(B), range(C_out), range(H), range(W)):
        total = float(b[o])
        for c, p, q in itertools.product(range(C_in), range(K), range(K)):
            r, s = i + p - pad, j + q - pad
            if 0 <= r < H and 0 <= s < W:
                total += float(w[o, c, p, q]) * float(x[n, c, r, s])
        y[n, o, i, j] = total
    return y


def loop_block(x, params):
    hidden = np.maximum(loop_conv_same(x, params["w1"], params["b1"]), 0)
    shortcut = loop_conv_same(x, params["w_proj"], params["b_proj"]) if "w_proj" in params else x
    return loop_conv_same(hidden, params["w2"], params["b2"]) + shortcut


def enumerate_paths(architecture) -> list[int]:
    """Every input-to-output path's count of learnable layers, by expanding each block into its two paths."""
    paths = [0]
    for entry in architecture:
        if isinstance(entry, dict):
            options = enumerate_paths(entry["residual"]) + [1 if entry["shortcut"] == "projection" else 0]
        else:
            options = [1 if entry in ("conv", "dense") else 0]
        paths = [p + o for p in paths for o in options]
    return paths


def block_params(rng, C_in, C_out):
    return checks._block_params(rng, C_in, C_out, np.float64)


# ---- batch norm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 3), (6, 1, 2, 4)])
def test_batchnorm_forward_matches_loops(ref, shape, mode):
    args = checks._bn_inputs(np.random.default_rng(sum(shape)), *shape, 2.0, np.float64)
    got = ref.spatial_batchnorm_forward(*args, mode=mode, momentum=0.8, eps=1e-3)
    want = loop_batchnorm(*args, mode=mode, momentum=0.8, eps=1e-3)
    for g, w in zip(got, want):
        assert relative_error(g, w) < 1e-12


def test_batchnorm_leaves_its_arguments_and_raises_on_a_bad_mode(ref):
    args = checks._bn_inputs(np.random.default_rng(0), 2, 3, 4, 4, 1.0, np.float64)
    copies = [a.copy() for a in args]
    ref.spatial_batchnorm_forward(*args)
    _, mean, _ = ref.spatial_batchnorm_forward(*args, mode="test")
    assert all(np.array_equal(a, c) for a, c in zip(args, copies)) and mean is not args[3]
    with pytest.raises(ValueError):
        ref.spatial_batchnorm_forward(*args, mode="eval")


@pytest.mark.parametrize("shape,offset", [((3, 2, 4, 5), 1.0), ((1, 3, 3, 3), 4.0), ((5, 2, 2, 2), 0.0)])
def test_batchnorm_backward_matches_central_differences_of_the_loops(ref, shape, offset):
    rng = np.random.default_rng(7)
    x, gamma, beta, mean, var = checks._bn_inputs(rng, *shape, offset, np.float64)
    dy = rng.normal(size=shape)
    dx, dgamma, dbeta = ref.spatial_batchnorm_backward(dy, x, gamma)
    forward = lambda x_, g_=gamma, b_=beta: loop_batchnorm(x_, g_, b_, mean, var)[0]   # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dy)) < 1e-7
    assert relative_error(dgamma, numerical_gradient_array(lambda g: forward(x, g_=g), gamma, dy)) < 1e-7
    assert relative_error(dbeta, numerical_gradient_array(lambda b: forward(x, b_=b), beta, dy)) < 1e-7


def test_batchnorm_matches_pytorch(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, gamma, beta, mean, var = checks._bn_inputs(rng, 4, 3, 5, 5, 2.0, np.float64)
    dy = rng.normal(size=x.shape)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    running_mean, running_var = torch.tensor(mean), torch.tensor(var)
    yt = torch.nn.functional.batch_norm(xt, running_mean, running_var, gt, bt, training=True, momentum=0.1, eps=1e-5)
    yt.backward(torch.tensor(dy))
    y, new_mean, _ = ref.spatial_batchnorm_forward(x, gamma, beta, mean, var)
    assert relative_error(y, yt.detach().numpy()) < 1e-12
    assert relative_error(new_mean, running_mean.numpy()) < 1e-12      # torch's momentum 0.1 is our 0.9
    for ours, theirs in zip(ref.spatial_batchnorm_backward(dy, x, gamma), (xt.grad, gt.grad, bt.grad)):
        assert relative_error(ours, theirs.numpy()) < 1e-10
    y_test = torch.nn.functional.batch_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var), torch.tensor(gamma),
                                            torch.tensor(beta), training=False, eps=1e-5)
    assert relative_error(ref.spatial_batchnorm_forward(x, gamma, beta, mean, var, mode="test")[0], y_test.numpy()) < 1e-12


def test_batchnorm_magnitudes_bound_a_float32_one_pass_variance(ref):
    """The tolerance's reason to exist: a float32 E[x^2] - E[x]^2 on channels with means far from 0 is correct
    and must pass; its error is far above a sum's bound but within batchnorm_magnitudes' condition."""
    from convlab.tolerance import within_bound
    x, gamma, beta, mean, var = checks._bn_inputs(np.random.default_rng(5), 8, 3, 6, 6, 20.0, np.float32)
    one_pass = (x ** 2).mean(axis=(0, 2, 3)) - x.mean(axis=(0, 2, 3)) ** 2
    y32 = (gamma[None, :, None, None] * (x - x.mean(axis=(0, 2, 3))[None, :, None, None])
           / np.sqrt(one_pass[None, :, None, None] + np.float32(1e-5)) + beta[None, :, None, None])
    exact = ref.spatial_batchnorm_forward(*(a.astype(np.float64) for a in (x, gamma, beta, mean, var)))[0]
    magnitude = ref.batchnorm_magnitudes(x, gamma, beta)[0]
    assert within_bound(y32, exact, magnitude, ref.batchnorm_terms(x), np.float32)
    assert not within_bound(y32, exact, np.abs(exact), 8, np.float32)     # a plain |y| bound would fail it


# ---- global average pooling --------------------------------------------------------------------------
def test_global_avg_pool_matches_loops_and_its_gradient(ref):
    rng = np.random.default_rng(1)
    x, dy = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3))
    loops = np.array([[sum(float(v) for v in x[b, c].ravel()) / 20 for c in range(3)] for b in range(2)])
    assert relative_error(ref.global_avg_pool_forward(x), loops) < 1e-14
    dx = ref.global_avg_pool_backward(dy, (2, 3, 4, 5))
    assert dx.shape == x.shape and dx.flags.writeable
    assert relative_error(dx, numerical_gradient_array(ref.global_avg_pool_forward, x, dy)) < 1e-8


# ---- residual blocks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("C_in,C_out", [(3, 3), (2, 4)])
def test_residual_block_matches_loops_and_central_differences(ref, C_in, C_out):
    rng = np.random.default_rng(C_in * 10 + C_out)
    x, params = rng.normal(size=(2, C_in, 4, 5)), block_params(rng, C_in, C_out)
    y = ref.residual_block_forward(x, params)
    assert relative_error(y, loop_block(x, params)) < 1e-12
    dy = rng.normal(size=y.shape)
    dx, grads = ref.residual_block_backward(dy, x, params)
    assert sorted(grads) == sorted(params)
    assert relative_error(dx, numerical_gradient_array(lambda v: loop_block(v, params), x, dy)) < 1e-7
    for key in params:
        numeric = numerical_gradient_array(lambda v: loop_block(x, dict(params, **{key: v})), params[key], dy)
        assert relative_error(grads[key], numeric) < 1e-7, key


def test_identity_path_carries_dy_undiminished(ref):
    """With a silent branch (w2 = 0) the block is the identity and so is its gradient: dx = dy exactly."""
    rng = np.random.default_rng(4)
    x, params = rng.normal(size=(2, 3, 4, 4)), block_params(rng, 3, 3)
    params["w2"] = np.zeros_like(params["w2"])
    dy = rng.normal(size=x.shape)
    assert np.array_equal(ref.residual_block_backward(dy, x, params)[0], dy)


def test_residual_block_matches_pytorch(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x, params = rng.normal(size=(2, 2, 5, 4)), block_params(rng, 2, 3)
    dy = rng.normal(size=(2, 3, 5, 4))
    xt = torch.tensor(x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    conv = torch.nn.functional.conv2d
    yt = (conv(torch.relu(conv(xt, pt["w1"], pt["b1"], padding=1)), pt["w2"], pt["b2"], padding=1)
          + conv(xt, pt["w_proj"], pt["b_proj"]))
    yt.backward(torch.tensor(dy))
    assert relative_error(ref.residual_block_forward(x, params), yt.detach().numpy()) < 1e-12
    dx, grads = ref.residual_block_backward(dy, x, params)
    assert relative_error(dx, xt.grad.numpy()) < 1e-12
    for key in params:
        assert relative_error(grads[key], pt[key].grad.numpy()) < 1e-12, key


# ---- CAP depth ---------------------------------------------------------------------------------------
BLOCK = {"residual": ["conv", "bn", "relu", "conv", "bn"], "shortcut": "identity"}


@pytest.mark.parametrize("architecture,depth", [
    (["flatten", "dense"], 1),
    (["conv", "relu", "conv", "relu", "maxpool", "flatten", "dense", "relu", "dense"], 4),   # lesson 04's build_cnn
    (["conv", "bn", "relu"] + [BLOCK] * 8 + ["gap", "dense"], 18),                           # 17 conv layers
    ([{"residual": ["relu"], "shortcut": "projection"}], 1),
    ([{"residual": [BLOCK, {"residual": ["conv"], "shortcut": "projection"}], "shortcut": "identity"}], 3),
    ([], 0)])
def test_cap_depth_by_hand_and_by_enumerating_every_path(ref, architecture, depth):
    assert ref.cap_depth(architecture) == depth == max(enumerate_paths(architecture))


def test_cap_depth_of_random_architectures_is_the_longest_enumerated_path(ref):
    rng = np.random.default_rng(0)
    for _ in range(50):
        architecture = checks._random_architecture(rng)
        assert ref.cap_depth(architecture) == max(enumerate_paths(architecture))
        assert checks.count_with(architecture, path="shortest") == min(enumerate_paths(architecture))


@pytest.mark.parametrize("bad", [["conv", "softmax"], [{"residual": ["conv"], "shortcut": "skip"}],
                                 [{"residual": ["conv"]}]])
def test_cap_depth_rejects_unknown_entries(ref, bad):
    with pytest.raises(ValueError):
        ref.cap_depth(bad)


# ---- the hidden checks' bug models (the typical bugs themselves are BUGS in autograder/checks/_l07_bugs.py) --
# A property of the diagnoses' bug models, not a bug: no whole-notebook Bug can state it.
def test_bug_models_without_a_bug_are_the_reference(ref):
    rng = np.random.default_rng(2)
    args = checks._bn_inputs(rng, 3, 2, 4, 4, 1.0, np.float64)
    for mode in ("train", "test"):
        for ours, theirs in zip(checks.batchnorm_with(*args, mode=mode), ref.spatial_batchnorm_forward(*args, mode=mode)):
            assert relative_error(ours, theirs) < 1e-12
    dy = rng.normal(size=args[0].shape)
    assert relative_error(checks.batchnorm_backward_with(dy, args[0], args[1]),
                          ref.spatial_batchnorm_backward(dy, args[0], args[1])[0]) < 1e-12
    x, params = rng.normal(size=(2, 2, 4, 4)), block_params(rng, 2, 3)
    assert relative_error(checks.block_with(ref, x, params), ref.residual_block_forward(x, params)) < 1e-12


@pytest.mark.parametrize("grade_id,returned", [("test_cap_depth", 0), ("test_cap_depth", 1), ("test_cap_depth", 2),
                                                 ("test_spatial_batchnorm_forward", "train mode's answer")])
def test_a_case_expecting_value_error_names_no_likely_bug(ref, grade_id, returned):
    """Returning a value where a ValueError is due is the whole mistake: no count or statistic is wrong."""
    part = next(p for p in checks.parts(ref, np.random.default_rng(0)) if p.grade_id == grade_id)
    raising = [case for case in part.cases if case.expected is None]
    assert raising
    for case in raising:
        actual = (ref.spatial_batchnorm_forward(*case.args, mode="train") if returned == "train mode's answer"
                  else returned)
        message = judge_part(Part(grade_id, [case], part.diagnose), [actual])
        assert "expected it to raise ValueError" in message and "Likely bug" not in message, message


# Rules the hidden checks enforce, each caught by a visible test too (a correct answer never loses a point unseen).
_SHIFTS_LOGITS_IN_PLACE = """def softmax_cross_entropy(logits, y):
    N = len(y)
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(N), y].mean()), (np.exp(log_p) - np.eye(logits.shape[1])[y]) / N
"""
_ANY_SHORTCUT = """def cap_depth(architecture):
    depth = 0
    for entry in architecture:
        if isinstance(entry, dict):
            depth += max(cap_depth(entry["residual"]), 1 if entry["shortcut"] == "projection" else 0)
        elif entry in ("conv", "dense"):
            depth += 1
        elif entry not in ("bn", "relu", "maxpool", "avgpool", "gap", "flatten"):
            raise ValueError(f"unknown layer {entry!r}")
    return depth
"""

_SUMS_THE_PATHS = _ANY_SHORTCUT.replace('max(cap_depth(entry["residual"]), 1 if', 'cap_depth(entry["residual"]) + (1 if')


@pytest.mark.parametrize("test_id,stub,student,words", [
    ("test_softmax_cross_entropy", "softmax_cross_entropy", _SHIFTS_LOGITS_IN_PLACE, "changed its argument logits in place"),
    ("test_cap_depth", "cap_depth", _ANY_SHORTCUT, "an unknown shortcut must raise ValueError"),
    ("test_cap_depth", "cap_depth", _SUMS_THE_PATHS, "the maximum, not the sum")],
    ids=["softmax_shifts_logits_in_place", "cap_depth_takes_any_shortcut", "cap_depth_sums_a_blocks_two_paths"])
def test_visible_tests_catch_what_the_hidden_checks_reject(ref, test_id, stub, student, words):
    assert visible_test_failure(LESSON, test_id, {}) is None
    assert words in (visible_test_failure(LESSON, test_id, {stub: student}) or "passed")
    part = next(p for p in checks.parts(ref, np.random.default_rng(0)) if p.grade_id == test_id)
    namespace = {"np": np}
    exec(student, namespace)
    assert judge_part(part, [call_in_process(namespace, case) for case in part.cases]) is not None


# ---- the widget's logic ------------------------------------------------------------------------------
def test_stand_in_profile_shapes_and_the_residual_path():
    plain = depthflow.stand_in_profile(25, False, False, 3)
    assert plain.shape == (4, 25) and np.all(np.isfinite(plain)) and np.all(plain > 0)
    # Without normalisation the residual sum grows layer by layer; its gradient at the first layer has at
    # least the identity path's share, so it cannot be smaller than the plain chain's by orders of magnitude.
    residual = depthflow.stand_in_profile(25, False, True, 3)
    assert np.all(residual[:, 0] >= plain[:, 0] * 0.1)
    normed = depthflow.stand_in_profile(9, True, False, 2)
    assert normed.shape == (3, 9) and np.all(np.isfinite(normed))


def test_log_scale_and_render():
    assert depthflow.log_scale(np.array([[0.02, 3.0], [np.inf, 0.0]])) == (-2, 1)
    assert depthflow.log_scale(np.zeros((2, 2))) == (-1, 0)
    svg = depthflow.render_flow_svg(np.array([1e-3, 0.0, np.nan, 2.0]), -3, 1, "t")
    assert svg.count("<rect") == 2 and "inf/NaN" in svg and ">0<" in svg and "layer 4" in svg
    assert "vanishes" in depthflow.flow_report(np.array([1e-4, 1.0]))
    assert "shrinks" in depthflow.flow_report(np.array([0.1, 1.0]))
    assert "about the size" in depthflow.flow_report(np.array([0.5, 1.0]))
    assert "grows" in depthflow.flow_report(np.array([10.0, 1.0]))
    assert "explodes" in depthflow.flow_report(np.array([1000.0, 1.0]))
    assert "diverged" in depthflow.flow_report(np.array([np.nan, 1.0]))


def _html(widget):
    return [child.value for child in widget.children if hasattr(child, "value") and isinstance(child.value, str)]


def test_widget_uses_the_profile_and_falls_back_saying_why():
    calls = []

    def profile(depth, batchnorm, residual, steps):
        calls.append((depth, batchnorm, residual, steps))
        return np.outer(np.arange(1, steps + 2), np.logspace(-3, 0, depth))

    widget = depthflow.depth_flow(profile, max_steps=3)
    assert "convlab-widget" in widget._dom_classes
    picture, report = _html(widget)
    assert "your layers" in report and calls == [(9, False, False, 3)]
    step = widget.children[0].children[0]
    step.value = 2
    assert _html(widget)[0] != picture and len(calls) == 1          # a step only redraws
    widget.children[1].children[0].value = True                     # batch norm on: a new profile
    assert calls[-1] == (9, True, False, 3)

    def stub(depth, batchnorm, residual, steps):
        raise NotImplementedError

    report = _html(depthflow.depth_flow(stub, max_steps=2))[1]
    assert "stand-in" in report and "not implemented yet" in report
    report = _html(depthflow.depth_flow(lambda *a: np.ones((2, 2)), max_steps=2))[1]
    assert "stand-in" in report and "shape" in report


def test_toggling_a_setting_keeps_the_axis_of_the_settings_shown_so_far():
    # plain norms near 1e0, residual ones near 1e6: after the toggle both fit one axis, so the plain
    # network's bars are drawn shorter than the residual's, not rescaled to the same length
    def profile(depth, batchnorm, residual, steps):
        return np.full((steps + 1, depth), 1e6 if residual else 1.0)

    widget = depthflow.depth_flow(profile, max_steps=2)
    assert ">1e0<" in _html(widget)[0] and ">1e6<" not in _html(widget)[0]
    widget.children[1].children[1].value = True                     # residual on
    residual_svg = _html(widget)[0]
    assert ">1e0<" in residual_svg and ">1e6<" in residual_svg
    widget.children[1].children[1].value = False                    # and back: the axis stays wide
    assert ">1e6<" in _html(widget)[0]


def test_the_notebooks_widget_shows_the_students_layers(monkeypatch):
    """Run the solution notebook as a script in FAST mode (the grader's size), then its widget must show the
    finished student's layers, not the stand-in (a profile of the wrong shape once made it fall back)."""
    import matplotlib
    matplotlib.use("Agg")
    import convlab
    from autograder.coursedir import SOLUTIONS
    monkeypatch.setattr(convlab, "FAST", True)
    namespace = {"__name__": "lesson_07"}
    exec(compile((SOLUTIONS / f"{LESSON}.py").read_text(), LESSON, "exec"), namespace)
    for switches in ((False, False), (True, True)):
        widget = namespace["depth_flow"](namespace["gradient_profile"], max_steps=2)
        widget.children[1].children[0].value, widget.children[1].children[1].value = switches
        assert "your layers" in _html(widget)[1], (switches, _html(widget)[1])


# ---- batch norm with the unbiased variance: the visible tests name it, and do not blame the backward ------
_UNBIASED_BATCHNORM = """def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9,
                              eps=1e-5):
    if mode not in ("train", "test"):
        raise ValueError(mode)
    if mode == "test":
        mean, var = running_mean, running_var
    else:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    x_hat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None], running_mean.copy(), running_var.copy()
"""


@pytest.mark.parametrize("test_id,words", [
    ("test_spatial_batchnorm_forward", "the variance is the biased one: divide by N = 120, not N - 1"),
    ("test_spatial_batchnorm_backward", "this check differentiates your spatial_batchnorm_forward")])
def test_an_unbiased_variance_is_named_and_not_blamed_on_a_correct_backward(test_id, words):
    assert visible_test_failure(LESSON, test_id, {}) is None
    message = visible_test_failure(LESSON, test_id, {"spatial_batchnorm_forward": _UNBIASED_BATCHNORM})
    assert message is not None and words in message, message
