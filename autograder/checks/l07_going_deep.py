"""Hidden checks of lesson 07 (going deep: batch norm, residual blocks, global average pooling, CAP depth).

Randomised shapes, channel means far from and near 0, a batch of one, float64 and float32. Expected values
are the reference in float64 on the same inputs. Batch norm is judged with the notebook's own
batchnorm_magnitudes (its first-order error analysis, stated in the lesson), the residual block with the
block evaluated on absolute values (ReLU never enlarges an error), convolutions as in lessons 01 and 03.
Typical bugs are recomputed here with the bug switched on (statistics over the wrong axes, test mode on the
batch, the unbiased variance, the variance's gradient without its 1/N, the identity path's gradient
missing) and named when the answer matches one.
"""
from __future__ import annotations

import numpy as np

from autograder.checks.common.conv import backward_tol, diagnose_forward, forward_case
from autograder.checks.l04_train_cnn import _softmax_part
from autograder.grader.spec import Case, Part, Raised, Tol, compare, tol_for
from autograder.checks._l07_bugs import BUGS  # noqa: F401  (the lesson's typical bugs, as students write them)

LESSON = "07_going_deep"
AXES = (0, 2, 3)


def _f64(value):
    if isinstance(value, dict):
        return {key: np.asarray(v, dtype=np.float64) for key, v in value.items()}
    return np.asarray(value, dtype=np.float64)


def _matches(actual, candidate, tol: Tol) -> bool:
    return isinstance(actual, np.ndarray) and tol.matches(actual, candidate)


def _item(result, index):
    return result[index] if isinstance(result, (tuple, list)) and len(result) > index else None


def _raises_value_error(func: str):
    """A Case.check: the call must raise ValueError (the docstring's contract for bad input)."""
    def check(actual, case: Case) -> str | None:
        if isinstance(actual, Raised) and actual.type == "ValueError":
            return None
        if isinstance(actual, Raised):
            return f"{func} raised {actual.type}: {actual.message}, expected a ValueError"
        return f"{func} returned {actual!r}, expected it to raise ValueError"
    return check


# ---- the pasted convolution --------------------------------------------------------------------------
def _conv_parts(ref, rng) -> list[Part]:
    forward, backward = [], []
    for stride, pad, k in [(1, 1, 3), (2, 0, 2), (int(rng.integers(1, 3)), int(rng.integers(0, 2)), 3)]:
        B, C_in, C_out, H, W = (int(v) for v in rng.integers(1, 4, size=3).tolist() + rng.integers(4, 8, size=2).tolist())
        x, w, b = rng.normal(size=(B, C_in, H, W)), rng.normal(size=(C_out, C_in, k, k)), rng.normal(size=C_out)
        y = ref.conv2d_forward(x, w, b, stride=stride, pad=pad)
        dy = rng.normal(size=y.shape)
        label = f"B={B}, C_in={C_in}, {H}x{W}, C_out={C_out}, K={k}, stride {stride}, pad {pad}"
        kwargs = {"stride": stride, "pad": pad}
        forward.append(forward_case(ref, "conv2d_forward", x, w, b, stride, pad, label))
        backward.append(Case("conv2d_backward", (dy, x, w), kwargs, ref.conv2d_backward(dy, x, w, **kwargs),
                             label=label, tol=backward_tol(ref, dy, x, w, stride, pad)))
    return [Part("test_conv2d_forward", forward, diagnose_forward(ref)),
            Part("test_conv2d_backward", backward)]


# ---- spatial batch norm, forward ---------------------------------------------------------------------
def batchnorm_with(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5,
                   axes=AXES, ddof=0, test_on_batch=False, swapped_momentum=False):
    """Spatial batch norm in float64 with a typical bug switched on: statistics over other `axes`, the unbiased
    variance (ddof=1), test mode normalising with the batch, or the momentum weighting the new statistic."""
    x, gamma, beta, running_mean, running_var = (_f64(a) for a in (x, gamma, beta, running_mean, running_var))
    channel = lambda v: v.reshape(1, -1, 1, 1)          # noqa: E731
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=ddof)
    keep = momentum if not swapped_momentum else 1 - momentum
    if mode == "train" and axes == AXES:
        new_mean = keep * running_mean + (1 - keep) * mean.ravel()
        new_var = keep * running_var + (1 - keep) * var.ravel()
    else:
        new_mean, new_var = running_mean, running_var
    if mode == "test" and not test_on_batch:
        mean, var = channel(running_mean), channel(running_var)
    y = channel(gamma) * (x - mean) / np.sqrt(var + eps) + channel(beta)
    return y, new_mean, new_var


def _forward_tol(ref, x, gamma, beta, running_mean, running_var, mode, momentum, eps):
    terms = ref.batchnorm_terms(x)
    if mode == "test":
        scale = np.abs(_f64(gamma)) / np.sqrt(_f64(running_var) + eps)
        magnitude = (scale[None, :, None, None] * (np.abs(_f64(x)) + np.abs(_f64(running_mean))[None, :, None, None])
                     + np.abs(_f64(beta))[None, :, None, None])
        return Tol(magnitude, 6), Tol(), Tol()
    y, mean, var = ref.batchnorm_magnitudes(x, gamma, beta, eps=eps)
    return (Tol(y, terms), Tol(momentum * np.abs(_f64(running_mean)) + (1 - momentum) * mean, terms),
            Tol(momentum * np.abs(_f64(running_var)) + (1 - momentum) * var, terms))


def _diagnose_bn_forward(case: Case, actual):
    if case.expected is None or not (isinstance(actual, (tuple, list)) and len(actual) == 3):
        return None                                     # a bad mode expects a ValueError: no value to miss
    x, gamma, beta, running_mean, running_var = case.args
    kwargs = dict(case.kwargs)
    mode = kwargs.get("mode", "train")
    tols = [tol_for(case.tol, i) for i in range(3)]
    y_bugs = {
        "the statistics run over the batch axis only (one mean per position); spatial batch norm takes each "
        "channel's mean and variance over batch, height and width: axis=(0, 2, 3)": {"axes": (0,)},
        "the statistics are per image (over height and width only); they must include the batch too: "
        "axis=(0, 2, 3)": {"axes": (2, 3)},
        "the statistics are taken over every axis, channels included; each channel has its own: axis=(0, 2, 3)":
            {"axes": (0, 1, 2, 3)},
        "the variance is the unbiased one (divided by N - 1); batch norm divides by N": {"ddof": 1},
        "test mode normalises with the batch's statistics; it must use running_mean and running_var":
            {"test_on_batch": True},
    }
    for bug, switches in y_bugs.items():
        if switches.get("test_on_batch") and mode != "test":
            continue
        if _matches(_item(actual, 0), batchnorm_with(*case.args, **kwargs, **switches)[0], tols[0]):
            return bug
    if mode == "train":
        swapped = batchnorm_with(*case.args, **kwargs, swapped_momentum=True)
        if _matches(_item(actual, 1), swapped[1], tols[1]) and _matches(_item(actual, 2), swapped[2], tols[2]):
            return ("the running averages weight the new batch by momentum; they are "
                    "momentum * running + (1 - momentum) * batch statistic")
        if _matches(_item(actual, 1), _f64(running_mean), tols[1]):
            return "train mode must return the running averages updated with this batch's statistics"
    else:
        if not _matches(_item(actual, 1), _f64(running_mean), tols[1]):
            return "test mode must return running_mean and running_var unchanged"
    return None


def _bn_inputs(rng, B, C, H, W, offset, dtype):
    loc = rng.normal(scale=offset, size=(1, C, 1, 1))
    scale = rng.uniform(0.5, 2.0, size=(1, C, 1, 1))
    x = (loc + scale * rng.normal(size=(B, C, H, W))).astype(dtype)
    gamma, beta = rng.normal(size=C).astype(dtype), rng.normal(size=C).astype(dtype)
    running_mean, running_var = rng.normal(size=C).astype(dtype), rng.uniform(0.5, 3.0, size=C).astype(dtype)
    return x, gamma, beta, running_mean, running_var


_BN_SHAPES = [(4, 3, 5, 6, 2.0, np.float64), (1, 2, 4, 4, 1.0, np.float64), (8, 4, 3, 3, 0.1, np.float64),
              (3, 2, 6, 5, 3.0, np.float32)]


def _bn_forward_part(ref, rng) -> Part:
    cases = []
    settings = [({}, "train, defaults"), ({"mode": "test"}, "test mode"),
                ({"momentum": 0.5, "eps": 1e-3}, "train, momentum 0.5, eps 1e-3"), ({"mode": "train"}, "train")]
    for (B, C, H, W, offset, dtype), (kwargs, how) in zip(_BN_SHAPES, settings):
        args = _bn_inputs(rng, B, C, H, W, offset, dtype)
        full = {"mode": "train", "momentum": 0.9, "eps": 1e-5} | kwargs
        expected = tuple(np.asarray(v, np.float64) for v in ref.spatial_batchnorm_forward(*(_f64(a) for a in args), **full))
        cases.append(Case("spatial_batchnorm_forward", args, kwargs, expected=expected,
                          label=f"x ({B}, {C}, {H}, {W}), {np.dtype(dtype).name}, {how}",
                          tol=_forward_tol(ref, *args, full["mode"], full["momentum"], full["eps"])))
    test_args = _bn_inputs(rng, 1, 3, 2, 2, 1.0, np.float64)
    cases.append(Case("spatial_batchnorm_forward", test_args, {"mode": "test"},
                      expected=tuple(ref.spatial_batchnorm_forward(*test_args, mode="test")),
                      label="test mode on a batch of one image", tol=_forward_tol(ref, *test_args, "test", 0.9, 1e-5)))
    cases.append(Case("spatial_batchnorm_forward", test_args, {"mode": "inference"}, label="mode='inference'",
                      check=_raises_value_error("spatial_batchnorm_forward(..., mode='inference')")))
    return Part("test_spatial_batchnorm_forward", cases, diagnose=_diagnose_bn_forward)


# ---- spatial batch norm, backward --------------------------------------------------------------------
def batchnorm_backward_with(dy, x, gamma, eps=1e-5, variance_scale=1.0, mean_path=True, variance_path=True):
    """dx by the three paths of the lesson's derivation, with a bug switched on: the variance's path scaled by
    `variance_scale` (N when its 1/N is missing), or a path left out."""
    dy, x, gamma = _f64(dy), _f64(x), _f64(gamma)
    N = x.shape[0] * x.shape[2] * x.shape[3]
    mu, s = x.mean(axis=AXES, keepdims=True), np.sqrt(x.var(axis=AXES, keepdims=True) + eps)
    dx_hat = gamma.reshape(1, -1, 1, 1) * dy
    dvar = (dx_hat * (x - mu)).sum(axis=AXES, keepdims=True) * -0.5 / s ** 3
    dmu = -dx_hat.sum(axis=AXES, keepdims=True) / s
    return (dx_hat / s + variance_path * variance_scale * dvar * 2 * (x - mu) / N + mean_path * dmu / N)


def _diagnose_bn_backward(case: Case, actual):
    dy, x, gamma = case.args
    dx = _item(actual, 0)
    tol = tol_for(case.tol, 0)
    N = x.shape[0] * x.shape[2] * x.shape[3]
    bugs = {"the variance's gradient is missing its 1/N: d(sigma^2)/dx[k] = 2 (x[k] - mu) / N": {"variance_scale": N},
            "dx leaves out the paths through the batch mean and variance: dx = gamma/(N s) (N dy - sum dy - "
            "x_hat sum(dy x_hat))": {"mean_path": False, "variance_path": False},
            "dx leaves out the path through the batch mean (the -sum(dy) term)": {"mean_path": False},
            "dx leaves out the path through the batch variance (the -x_hat sum(dy x_hat) term)": {"variance_path": False}}
    if not _matches(dx, case.expected[0], tol):
        for bug, switches in bugs.items():
            if _matches(dx, batchnorm_backward_with(dy, x, gamma, eps=case.kwargs.get("eps", 1e-5), **switches), tol):
                return bug
        return None
    dbeta = _item(actual, 2)
    if isinstance(dbeta, np.ndarray) and dbeta.shape == case.expected[2].shape and not _matches(
            dbeta, case.expected[2], tol_for(case.tol, 2)):
        if _matches(dbeta, case.expected[2] / N, tol_for(case.tol, 2)):
            return "dbeta is a mean; it is the sum of dy over batch, height and width"
    return None


def _bn_backward_part(ref, rng) -> Part:
    cases = []
    for B, C, H, W, offset, dtype in _BN_SHAPES + [(2, 3, 4, 4, 5.0, np.float64)]:
        x, gamma, beta, _, _ = _bn_inputs(rng, B, C, H, W, offset, dtype)
        dy = rng.normal(size=x.shape).astype(dtype)
        dx_m, dgamma_m, dbeta_m = ref.batchnorm_magnitudes(x, gamma, beta, dy=dy)
        terms = ref.batchnorm_terms(x)
        expected = tuple(np.asarray(v, np.float64) for v in ref.spatial_batchnorm_backward(_f64(dy), _f64(x), _f64(gamma)))
        cases.append(Case("spatial_batchnorm_backward", (dy, x, gamma), expected=expected,
                          label=f"x ({B}, {C}, {H}, {W}), channel means of size {offset}, {np.dtype(dtype).name}",
                          tol=(Tol(dx_m, terms), Tol(dgamma_m, terms), Tol(dbeta_m, terms))))
    x, gamma, _, _, _ = _bn_inputs(rng, 3, 2, 3, 3, 1.0, np.float64)
    dy = rng.normal(size=x.shape)
    cases.append(Case("spatial_batchnorm_backward", (dy, x, gamma), {"eps": 0.1},
                      expected=ref.spatial_batchnorm_backward(dy, x, gamma, eps=0.1), label="eps=0.1",
                      tol=tuple(Tol(m, ref.batchnorm_terms(x)) for m in ref.batchnorm_magnitudes(x, gamma, gamma, dy=dy, eps=0.1))))
    return Part("test_spatial_batchnorm_backward", cases, diagnose=_diagnose_bn_backward)


# ---- global average pooling ----------------------------------------------------------------------------
def _gap_parts(ref, rng) -> list[Part]:
    forward, backward = [], []
    for B, C, H, W, dtype in [(2, 3, 4, 5, np.float64), (1, 4, 7, 3, np.float64), (3, 2, 1, 1, np.float64),
                              (2, 5, 6, 6, np.float32)]:
        x = rng.normal(loc=1.0, size=(B, C, H, W)).astype(dtype)
        dy = rng.normal(size=(B, C)).astype(dtype)
        label = f"x ({B}, {C}, {H}, {W}), {np.dtype(dtype).name}"
        forward.append(Case("global_avg_pool_forward", (x,), expected=ref.global_avg_pool_forward(_f64(x)), label=label,
                            tol=Tol(ref.global_avg_pool_forward(np.abs(_f64(x))), H * W + 1)))
        backward.append(Case("global_avg_pool_backward", (dy, (B, C, H, W)),
                             expected=ref.global_avg_pool_backward(_f64(dy), (B, C, H, W)), label=label))

    def diagnose_forward(case, actual):
        x = _f64(case.args[0])
        if _matches(actual, x.sum(axis=(2, 3)), Tol(np.abs(x).sum(axis=(2, 3)).max(), 64)):
            return "the positions are summed; average them (divide by H*W)"
        return None

    def diagnose_backward(case, actual):
        dy, (B, C, H, W) = _f64(case.args[0]), case.args[1]
        if H * W > 1 and _matches(actual, np.broadcast_to(dy[:, :, None, None], (B, C, H, W)), Tol(np.abs(dy).max())):
            return "dy is copied to every position without dividing by H*W; each position took 1/(H*W) of the mean"
        return None

    return [Part("test_global_avg_pool_forward", forward, diagnose_forward),
            Part("test_global_avg_pool_backward", backward, diagnose_backward)]


# ---- residual blocks -------------------------------------------------------------------------------------
def block_with(ref, x, params, skip=True, final_relu=False, relu=True):
    """The residual block from the reference convolution, with a typical bug switched on."""
    x, params = _f64(x), _f64(params)
    hidden = ref.conv2d_forward(x, params["w1"], params["b1"], pad=1)
    residual = ref.conv2d_forward(np.maximum(hidden, 0) if relu else hidden, params["w2"], params["b2"], pad=1)
    if skip:
        residual = residual + (ref.conv2d_forward(x, params["w_proj"], params["b_proj"]) if "w_proj" in params else x)
    return np.maximum(residual, 0) if final_relu else residual


def _block_params(rng, C_in, C_out, dtype):
    params = {"w1": rng.normal(size=(C_out, C_in, 3, 3)) / np.sqrt(9 * C_in), "b1": rng.normal(size=C_out),
              "w2": rng.normal(size=(C_out, C_out, 3, 3)) / np.sqrt(9 * C_out), "b2": rng.normal(size=C_out)}
    if C_in != C_out:
        params |= {"w_proj": rng.normal(size=(C_out, C_in, 1, 1)) / np.sqrt(C_in), "b_proj": rng.normal(size=C_out)}
    return {key: value.astype(dtype) for key, value in params.items()}


_BLOCK_SHAPES = [(2, 3, 3, 5, 4, np.float64), (2, 2, 4, 4, 5, np.float64), (1, 4, 4, 6, 6, np.float32),
                 (3, 3, 2, 4, 4, np.float32)]


def _block_inputs(rng):
    for B, C_in, C_out, H, W, dtype in _BLOCK_SHAPES:
        x = rng.normal(size=(B, C_in, H, W)).astype(dtype)
        params = _block_params(rng, C_in, C_out, dtype)
        shortcut = "1x1 projection shortcut" if C_in != C_out else "identity shortcut"
        yield x, params, f"x ({B}, {C_in}, {H}, {W}), C_out={C_out}, {shortcut}, {np.dtype(dtype).name}"


def _block_forward_part(ref, rng) -> Part:
    cases = [Case("residual_block_forward", (x, params), expected=block_with(ref, x, params), label=label,
                  tol=Tol(ref.residual_block_forward(np.abs(_f64(x)), ref.absolute(params)), ref.block_terms(x, params)))
             for x, params, label in _block_inputs(rng)]

    def diagnose(case, actual):
        x, params = case.args
        if isinstance(actual, Raised) or not isinstance(actual, np.ndarray):
            return None
        bugs = {"the shortcut is missing: y = shortcut(x) + F(x)": {"skip": False},
                "a ReLU is applied after the sum; this block has none (the identity path must stay clean)":
                    {"final_relu": True},
                "the ReLU between the two convolutions is missing": {"relu": False}}
        for bug, switches in bugs.items():
            if _matches(actual, block_with(ref, x, params, **switches), case.tol):
                return bug
        if "b_proj" in params and _matches(actual, block_with(ref, x, dict(params, b_proj=np.zeros_like(params["b_proj"]))),
                                           case.tol):
            return "the projection shortcut's bias b_proj is missing"
        return None

    return Part("test_residual_block_forward", cases, diagnose)


def _block_backward_tol(ref, dy, x, params):
    dx, grads = ref.residual_block_backward(np.abs(_f64(dy)), np.abs(_f64(x)), ref.absolute(params))
    terms = ref.block_terms(x, params)
    return Tol(dx, terms), {key: Tol(value, terms) for key, value in grads.items()}


def _block_backward_check(actual, case: Case) -> str | None:
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        return f"residual_block_backward returned {type(actual).__name__}, expected a tuple (dx, grads)"
    dx, grads = actual
    if not isinstance(grads, dict) or sorted(grads) != sorted(case.expected[1]):
        keys = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        return f"grads is {keys}, expected a dict with the keys of params: {sorted(case.expected[1])}"
    return compare(dx, case.expected[0], "dx", tol_for(case.tol, 0)) or compare(
        grads, case.expected[1], "grads", tol_for(case.tol, 1))


def _block_backward_part(ref, rng) -> Part:
    cases = []
    for x, params, label in _block_inputs(rng):
        dy = rng.normal(size=block_with(ref, x, params).shape).astype(x.dtype)
        expected = ref.residual_block_backward(_f64(dy), _f64(x), _f64(params))
        cases.append(Case("residual_block_backward", (dy, x, params), expected=expected, label=label,
                          check=_block_backward_check, tol=_block_backward_tol(ref, dy, x, params)))

    def diagnose(case, actual):
        dy, x, params = case.args
        dx, tol = _item(actual, 0), tol_for(case.tol, 0)
        if not isinstance(dx, np.ndarray) or _matches(dx, case.expected[0], tol):
            return None
        shortcut = dy if "w_proj" not in params else ref.conv2d_backward(_f64(dy), _f64(x), _f64(params["w_proj"]))[0]
        branch = case.expected[0] - shortcut
        if _matches(dx, branch, tol):
            return "dx is missing the shortcut's gradient: the sum sends dy down both paths, dx = dx_F + dx_shortcut"
        if _matches(dx, shortcut, tol):
            return "dx is only the shortcut's gradient: add the gradient through F (the two convolutions)"
        return None

    return Part("test_residual_block_backward", cases, diagnose)


# ---- CAP depth -------------------------------------------------------------------------------------------------
def count_with(architecture, path="longest", counted=("conv", "dense")):
    """A CAP-depth count with a typical bug: `path` "longest" (right), "shortest", "both" (branch + shortcut) or
    "flat" (blocks ignored); `counted` the layer names that add depth."""
    depth = 0
    for entry in architecture:
        if isinstance(entry, dict):
            branch = count_with(entry["residual"], path, counted)
            shortcut = 1 if entry["shortcut"] == "projection" else 0
            depth += {"longest": max(branch, shortcut), "shortest": min(branch, shortcut),
                      "both": branch + shortcut, "flat": 0}[path]
        elif entry in counted:
            depth += 1
    return depth


_IDENTITY = {"residual": ["conv", "bn", "relu", "conv", "bn"], "shortcut": "identity"}
_PROJECTION = {"residual": ["conv", "bn", "relu", "conv"], "shortcut": "projection"}


def _random_architecture(rng, nesting=2) -> list:
    entries = []
    for _ in range(int(rng.integers(2, 7))):
        kind = rng.choice(["conv", "bn", "relu", "maxpool", "dense", "block"] if nesting else ["conv", "bn", "relu", "dense"])
        if kind == "block":
            entries.append({"residual": _random_architecture(rng, nesting - 1),
                            "shortcut": str(rng.choice(["identity", "projection"]))})
        else:
            entries.append(str(kind))
    return entries


def _cap_depth_part(ref, rng) -> Part:
    architectures = [
        (["flatten", "dense", "relu", "dense"], "an MLP with one hidden layer"),
        (["conv", "bn", "relu"] * 5 + ["gap", "dense"], "plain chain of 5 conv + BN + ReLU, gap, dense"),
        (["conv", "bn", "relu"] + [_IDENTITY] * 3 + ["gap", "dense"], "stem, 3 identity blocks, gap, dense"),
        (["conv", _PROJECTION, _IDENTITY, "avgpool", "flatten", "dense"], "a projection block and an identity block"),
        ([{"residual": ["bn", "relu"], "shortcut": "projection"}, "dense"], "a block whose branch learns nothing"),
        ([{"residual": [_IDENTITY, "conv"], "shortcut": "identity"}, "gap", "dense"], "nested blocks"),
        ([], "the empty network"),
        (_random_architecture(rng), "a random architecture"),
        (_random_architecture(rng), "another random architecture"),
    ]
    cases = [Case("cap_depth", (arch,), expected=ref.cap_depth(arch), label=label) for arch, label in architectures]
    for bad, label in [(["conv", "softmax", "dense"], "an unknown layer name 'softmax'"),
                       ([{"residual": ["conv"], "shortcut": "skip"}], "an unknown shortcut 'skip'")]:
        cases.append(Case("cap_depth", (bad,), label=label, check=_raises_value_error(f"cap_depth({bad!r})")))

    def diagnose(case, actual):
        if case.expected is None or isinstance(actual, Raised) or not isinstance(actual, (int, np.integer)):
            return None                                 # a bad entry expects a ValueError: no depth to miss
        (architecture,) = case.args
        bugs = {"the shortest path is counted; count the longest (through each block's branch)": {"path": "shortest"},
                "a block counts its branch and its shortcut together; it counts the longer of the two paths":
                    {"path": "both"},
                "residual blocks are skipped; count their branch (recursively) or their projection":
                    {"path": "flat"},
                "batch norm is counted; it learns a per-channel scale and shift, mixes nothing, adds no depth":
                    {"counted": ("conv", "dense", "bn")},
                "every layer is counted; only learnable ones (conv, dense) add depth":
                    {"counted": ("conv", "dense", "bn", "relu", "maxpool", "avgpool", "gap", "flatten")}}
        for bug, switches in bugs.items():
            if count_with(architecture, **switches) == actual != case.expected:
                return bug
        return None

    return Part("test_cap_depth", cases, diagnose)


def parts(ref, rng) -> list[Part]:
    return (_conv_parts(ref, rng) + [_softmax_part(ref, rng), _bn_forward_part(ref, rng), _bn_backward_part(ref, rng)]
            + _gap_parts(ref, rng) + [_block_forward_part(ref, rng), _block_backward_part(ref, rng),
                                      _cap_depth_part(ref, rng)])
