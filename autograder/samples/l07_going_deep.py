"""Sample submissions of lesson 07 with their exact expected scores (out of 18).

Points: conv2d_forward 1, conv2d_backward 1, softmax_cross_entropy 1, spatial_batchnorm_forward 3,
spatial_batchnorm_backward 3, global_avg_pool_forward 1, global_avg_pool_backward 1,
residual_block_forward 2, residual_block_backward 3, cap_depth 2. The hidden checks grade each function on
its own inputs, so a batch-norm bug costs only that function's points.
"""
from autograder.grader.spec import Sample

LESSON = "07_going_deep"

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
STATISTICS_PER_POSITION = _FORWARD.format(
    axes="0", test_statistics="mean, var = running_mean[None, :, None, None], running_var[None, :, None, None]")
TEST_MODE_ON_THE_BATCH = _FORWARD.format(axes="(0, 2, 3)", test_statistics="pass   # forgot: use the running averages")

VARIANCE_WITHOUT_ONE_OVER_N = '''def spatial_batchnorm_backward(dy, x, gamma, eps=1e-5):
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

IDENTITY_GRADIENT_MISSING = '''def residual_block_backward(dy, x, params):
    h = conv2d_forward(x, params["w1"], params["b1"], pad=1)
    dr, dw2, db2 = conv2d_backward(dy, np.maximum(h, 0), params["w2"], pad=1)
    dx, dw1, db1 = conv2d_backward(dr * (h > 0), x, params["w1"], pad=1)
    grads = {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}
    if "w_proj" in params:
        _, grads["w_proj"], grads["b_proj"] = conv2d_backward(dy, x, params["w_proj"])
    return dx, grads                                        # the shortcut's dx never added
'''

CAP_SHORTEST_PATH = '''def cap_depth(architecture):
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

SAMPLES = {
    "full": Sample(base="solution", score=18),
    "blank": Sample(base="release", score=0,
                    messages={"test_spatial_batchnorm_forward": "not implemented yet",
                              "test_cap_depth": "not implemented yet"}),
    "statistics_per_position": Sample(replace={"spatial_batchnorm_forward": STATISTICS_PER_POSITION}, score=15,
                                      messages={"test_spatial_batchnorm_forward": "batch axis only"}),
    "test_mode_on_the_batch": Sample(replace={"spatial_batchnorm_forward": TEST_MODE_ON_THE_BATCH}, score=15,
                                     messages={"test_spatial_batchnorm_forward": "test mode normalises with the batch"}),
    "variance_without_one_over_n": Sample(replace={"spatial_batchnorm_backward": VARIANCE_WITHOUT_ONE_OVER_N}, score=15,
                                          messages={"test_spatial_batchnorm_backward": "missing its 1/N"}),
    "identity_gradient_missing": Sample(replace={"residual_block_backward": IDENTITY_GRADIENT_MISSING}, score=15,
                                        messages={"test_residual_block_backward": "missing the shortcut's gradient"}),
    "cap_shortest_path": Sample(replace={"cap_depth": CAP_SHORTEST_PATH}, score=16,
                                messages={"test_cap_depth": "shortest path is counted"}),
}
