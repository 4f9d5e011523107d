"""Lesson 07's typical bugs as students write them, with the graded cells each must fail and the words
its feedback must contain (autograder.grader.bugs; BUGS is exported by autograder/checks/l07_going_deep.py).
The hidden checks grade each function on its own inputs, so a batch-norm bug costs only that function's points.
"""
from autograder.grader.bugs import Bug

_FORWARD = '''def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5):
    if mode not in ("train", "test"):
        raise ValueError(mode)
    g, bt = gamma[None, :, None, None], beta[None, :, None, None]
    mean, var = x.mean(axis={axes}, keepdims=True), x.var(axis={axes}, keepdims=True)
    if mode == "train":
        new_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=(0, 2, 3))
        new_var = momentum * running_var + (1 - momentum) * x.var(axis=(0, 2, 3))
    else:
        new_mean, new_var = running_mean.copy(), running_var.copy()
        {test_statistics}
    return g * (x - mean) / np.sqrt(var + eps) + bt, new_mean, new_var
'''
_STATISTICS_PER_POSITION = _FORWARD.format(
    axes="0", test_statistics="mean, var = running_mean[None, :, None, None], running_var[None, :, None, None]")
_TEST_MODE_ON_THE_BATCH = _FORWARD.format(axes="(0, 2, 3)", test_statistics="pass   # forgot: use the running averages")

_VARIANCE_WITHOUT_ONE_OVER_N = '''def spatial_batchnorm_backward(dy, x, gamma, eps=1e-5):
    axes = (0, 2, 3)
    N = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=axes, keepdims=True)
    s = np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = (x - mu) / s
    dx_hat = gamma[None, :, None, None] * dy
    dvar = (dx_hat * (x - mu)).sum(axis=axes, keepdims=True) * -0.5 * s ** -3
    dmu = -dx_hat.sum(axis=axes, keepdims=True) / s
    dx = dx_hat / s + dvar * 2 * (x - mu) + dmu / N          # the 1/N of d(var)/dx forgotten
    return dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)
'''

_IDENTITY_GRADIENT_MISSING = '''def residual_block_backward(dy, x, params):
    h = conv2d_forward(x, params["w1"], params["b1"], pad=1)
    dr, dw2, db2 = conv2d_backward(dy, np.maximum(h, 0), params["w2"], pad=1)
    dx, dw1, db1 = conv2d_backward(dr * (h > 0), x, params["w1"], pad=1)
    grads = {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}
    if "w_proj" in params:
        _, grads["w_proj"], grads["b_proj"] = conv2d_backward(dy, x, params["w_proj"])
    return dx, grads                                        # the shortcut's dx never added
'''

_CAP_SHORTEST_PATH = '''def cap_depth(architecture):
    depth = 0
    for entry in architecture:
        if isinstance(entry, dict):
            if entry.get("shortcut") not in ("identity", "projection") or set(entry) != {"residual", "shortcut"}:
                raise ValueError(f"bad block {entry!r}")
            depth += min(cap_depth(entry["residual"]), int(entry["shortcut"] == "projection"))
        elif entry in ("conv", "dense"):
            depth += 1
        elif entry not in ("bn", "relu", "maxpool", "avgpool", "gap", "flatten"):
            raise ValueError(f"unknown layer {entry!r}")
    return depth
'''

_BLOCK_RELU_AFTER_THE_SUM = '''def residual_block_forward(x, params):
    h = conv2d_forward(x, params["w1"], params["b1"], pad=1)
    f = conv2d_forward(np.maximum(h, 0), params["w2"], params["b2"], pad=1)
    if "w_proj" in params:
        x = conv2d_forward(x, params["w_proj"], params["b_proj"])
    return np.maximum(x + f, 0)                 # a ReLU after the sum, as in the original ResNet
'''

_CAP_COUNTS_BATCH_NORM = (_CAP_SHORTEST_PATH.replace("min(", "max(")     # the longest path, but bn counted as a layer
                          .replace('("conv", "dense")', '("conv", "dense", "bn")'))

BUGS = {
    "blank": Bug(base="release", fails_every=True, fails={"test_spatial_batchnorm_forward": "not implemented yet",
                                                          "test_cap_depth": "not implemented yet"}),
    "statistics_per_position": Bug({"spatial_batchnorm_forward": _STATISTICS_PER_POSITION},
                                   fails={"test_spatial_batchnorm_forward": "batch axis only"}),
    "test_mode_on_the_batch": Bug({"spatial_batchnorm_forward": _TEST_MODE_ON_THE_BATCH},
                                  fails={"test_spatial_batchnorm_forward": "test mode normalises with the batch"}),
    "variance_without_one_over_n": Bug({"spatial_batchnorm_backward": _VARIANCE_WITHOUT_ONE_OVER_N},
                                       fails={"test_spatial_batchnorm_backward": "missing its 1/N"}),
    "identity_gradient_missing": Bug({"residual_block_backward": _IDENTITY_GRADIENT_MISSING},
                                     fails={"test_residual_block_backward": "missing the shortcut's gradient"}),
    "cap_shortest_path": Bug({"cap_depth": _CAP_SHORTEST_PATH}, fails={"test_cap_depth": "shortest path is counted"}),
    "block_relu_after_the_sum": Bug({"residual_block_forward": _BLOCK_RELU_AFTER_THE_SUM},
                                    fails={"test_residual_block_forward": "a ReLU is applied after the sum"},
                                    shipped=False),
    "cap_counts_batch_norm": Bug({"cap_depth": _CAP_COUNTS_BATCH_NORM},
                                 fails={"test_cap_depth": "batch norm is counted"}, shipped=False),
}
