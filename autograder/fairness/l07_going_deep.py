"""Independently written correct solutions of lesson 07, in several styles (fairness corpus).

The three functions pasted from lesson 04 (conv2d_forward, conv2d_backward, softmax_cross_entropy) are
lesson 04's own fairness variants: a student brings whichever correct version they wrote there.
"""
from autograder.fairness.l04_train_cnn import (_CONV_BWD_COL2IM, _CONV_BWD_ROTATED, _CONV_BWD_TAPS64, _CONV_FWD_IM2COL,
                                               _CONV_FWD_TAPS64, _CONV_FWD_WINDOWS, _SOFTMAX_A, _SOFTMAX_B, _SOFTMAX_C)

LESSON = "07_going_deep"

# ---------------------------------------------------------------------------------------------
# Variant "channel_loops": one channel at a time, the three-path derivation written out literally.
# ---------------------------------------------------------------------------------------------
_BN_FORWARD_LOOPS = '''\
def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5):
    if mode not in ("train", "test"):
        raise ValueError("mode must be 'train' or 'test'")
    y = np.empty_like(x)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    for c in range(x.shape[1]):
        values = x[:, c]
        if mode == "train":
            mu = values.mean()
            var = ((values - mu) ** 2).mean()
            new_mean[c] = momentum * running_mean[c] + (1 - momentum) * mu
            new_var[c] = momentum * running_var[c] + (1 - momentum) * var
        else:
            mu, var = running_mean[c], running_var[c]
        y[:, c] = gamma[c] * (values - mu) / np.sqrt(var + eps) + beta[c]
    return y, new_mean, new_var
'''

_BN_BACKWARD_PATHS = '''\
def spatial_batchnorm_backward(dy, x, gamma, eps=1e-5):
    dx = np.empty_like(x)
    C = x.shape[1]
    dgamma, dbeta = np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        xc, dyc = x[:, c], dy[:, c]
        N = xc.size
        mu = xc.mean()
        var = ((xc - mu) ** 2).mean()
        s = np.sqrt(var + eps)
        x_hat = (xc - mu) / s
        dbeta[c] = dyc.sum()
        dgamma[c] = (dyc * x_hat).sum()
        dx_hat = gamma[c] * dyc
        dvar = (dx_hat * (xc - mu)).sum() * -0.5 * (var + eps) ** -1.5
        dmu = -dx_hat.sum() / s
        dx[:, c] = dx_hat / s + dvar * 2 * (xc - mu) / N + dmu / N
    return dx, dgamma, dbeta
'''

_GAP_FORWARD_SUM = '''\
def global_avg_pool_forward(x):
    H, W = x.shape[2], x.shape[3]
    return x.sum(axis=3).sum(axis=2) / (H * W)
'''

_GAP_BACKWARD_REPEAT = '''\
def global_avg_pool_backward(dy, x_shape):
    B, C, H, W = x_shape
    share = (dy / (H * W)).reshape(B, C, 1, 1)
    return np.repeat(np.repeat(share, H, axis=2), W, axis=3)
'''

_BLOCK_FORWARD_KEYS = '''\
def residual_block_forward(x, params):
    h = conv2d_forward(x, params["w1"], params["b1"], stride=1, pad=1)
    f = conv2d_forward(np.where(h > 0, h, 0), params["w2"], params["b2"], stride=1, pad=1)
    if "w_proj" in params:
        return f + conv2d_forward(x, params["w_proj"], params["b_proj"], stride=1, pad=0)
    return f + x
'''

_BLOCK_BACKWARD_KEYS = '''\
def residual_block_backward(dy, x, params):
    h = conv2d_forward(x, params["w1"], params["b1"], stride=1, pad=1)
    r = np.where(h > 0, h, 0)
    dr, dw2, db2 = conv2d_backward(dy, r, params["w2"], stride=1, pad=1)
    dh = np.where(h > 0, dr, 0)
    dx_f, dw1, db1 = conv2d_backward(dh, x, params["w1"], stride=1, pad=1)
    grads = {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}
    if "w_proj" in params:
        dx_s, dwp, dbp = conv2d_backward(dy, x, params["w_proj"], stride=1, pad=0)
        grads["w_proj"], grads["b_proj"] = dwp, dbp
    else:
        dx_s = dy
    return dx_f + dx_s, grads
'''

_CAP_RECURSIVE = '''\
LEARNABLE, PASSIVE = {"conv", "dense"}, {"bn", "relu", "maxpool", "avgpool", "gap", "flatten"}


def cap_depth(architecture):
    total = 0
    for layer in architecture:
        if isinstance(layer, dict):
            if sorted(layer) != ["residual", "shortcut"]:
                raise ValueError(f"bad block keys {sorted(layer)}")
            shortcut = {"identity": 0, "projection": 1}.get(layer["shortcut"])
            if shortcut is None:
                raise ValueError(f"unknown shortcut {layer['shortcut']!r}")
            total += max(shortcut, cap_depth(layer["residual"]))
        elif layer in LEARNABLE:
            total += 1
        elif layer not in PASSIVE:
            raise ValueError(f"unknown layer {layer!r}")
    return total
'''

# ---------------------------------------------------------------------------------------------
# Variant "channel_matrix": x moved to a (C, N) matrix; one-pass variance E[x^2] - E[x]^2; the compact dx.
# ---------------------------------------------------------------------------------------------
_BN_FORWARD_MATRIX = '''\
def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5):
    B, C, H, W = x.shape
    columns = np.moveaxis(x, 1, 0).reshape(C, -1)          # (C, N)
    if mode == "train":
        mean = columns.mean(axis=1)
        var = (columns ** 2).mean(axis=1) - mean ** 2         # one pass
        out_mean = momentum * running_mean + (1 - momentum) * mean
        out_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        mean, var = running_mean, running_var
        out_mean, out_var = np.array(running_mean), np.array(running_var)
    else:
        raise ValueError(f"unknown mode {mode}")
    normed = (columns - mean[:, None]) / np.sqrt(var[:, None] + eps)
    y = gamma[:, None] * normed + beta[:, None]
    return np.moveaxis(y.reshape(C, B, H, W), 0, 1), out_mean, out_var
'''

_BN_BACKWARD_MATRIX = '''\
def spatial_batchnorm_backward(dy, x, gamma, eps=1e-5):
    B, C, H, W = x.shape
    to_matrix = lambda a: np.moveaxis(a, 1, 0).reshape(C, -1)
    xm, dym = to_matrix(x), to_matrix(dy)
    N = xm.shape[1]
    mean = xm.mean(axis=1, keepdims=True)
    s = np.sqrt(((xm - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    x_hat = (xm - mean) / s
    dbeta = dym.sum(axis=1)
    dgamma = np.einsum("cn,cn->c", dym, x_hat)
    dxm = gamma[:, None] / (N * s) * (N * dym - dbeta[:, None] - x_hat * dgamma[:, None])
    return np.moveaxis(dxm.reshape(C, B, H, W), 0, 1), dgamma, dbeta
'''

_GAP_FORWARD_EINSUM = '''\
def global_avg_pool_forward(x):
    return np.einsum("bchw->bc", x) / (x.shape[2] * x.shape[3])
'''

_GAP_BACKWARD_ONES = '''\
def global_avg_pool_backward(dy, x_shape):
    B, C, H, W = x_shape
    return np.ones((B, C, H, W), dtype=dy.dtype) * dy[:, :, None, None] / (H * W)
'''

_BLOCK_FORWARD_SHAPES = '''\
def residual_block_forward(x, params):
    C_in, C_out = x.shape[1], params["w1"].shape[0]
    hidden = np.maximum(conv2d_forward(x, params["w1"], params["b1"], 1, 1), 0)
    out = conv2d_forward(hidden, params["w2"], params["b2"], 1, 1)
    shortcut = x if C_in == C_out else conv2d_forward(x, params["w_proj"], params["b_proj"])
    return out + shortcut
'''

_BLOCK_BACKWARD_SHAPES = '''\
def residual_block_backward(dy, x, params):
    C_in, C_out = x.shape[1], params["w1"].shape[0]
    pre = conv2d_forward(x, params["w1"], params["b1"], 1, 1)
    active = pre > 0
    d_hidden, dw2, db2 = conv2d_backward(dy, pre * active, params["w2"], 1, 1)
    dx, dw1, db1 = conv2d_backward(d_hidden * active, x, params["w1"], 1, 1)
    grads = dict(w1=dw1, b1=db1, w2=dw2, b2=db2)
    if C_in == C_out:
        dx = dx + dy
    else:
        d_short, grads["w_proj"], grads["b_proj"] = conv2d_backward(dy, x, params["w_proj"])
        dx = dx + d_short
    return dx, grads
'''

_CAP_STACK = '''\
def cap_depth(architecture):
    weights = {"conv": 1, "dense": 1, "bn": 0, "relu": 0, "maxpool": 0, "avgpool": 0, "gap": 0, "flatten": 0}

    def longest(entries):
        depth = 0
        for entry in entries:
            if type(entry) is dict:
                if set(entry.keys()) != {"residual", "shortcut"} or entry["shortcut"] not in ("identity", "projection"):
                    raise ValueError("a block is {'residual': [...], 'shortcut': 'identity' | 'projection'}")
                depth += max(longest(entry["residual"]), int(entry["shortcut"] == "projection"))
            elif entry in weights:
                depth += weights[entry]
            else:
                raise ValueError("unknown layer: " + str(entry))
        return depth

    return int(longest(architecture))
'''

# ---------------------------------------------------------------------------------------------
# Variant "float64_keepdims": every statistic in float64 with keepdims, cast back to the input dtype.
# ---------------------------------------------------------------------------------------------
_BN_FORWARD_F64 = '''\
def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, mode="train", momentum=0.9, eps=1e-5):
    x64 = x.astype(np.float64)
    if mode == "test":
        mean = running_mean.astype(np.float64).reshape(1, -1, 1, 1)
        var = running_var.astype(np.float64).reshape(1, -1, 1, 1)
        updated = (running_mean.copy(), running_var.copy())
    elif mode == "train":
        mean = x64.mean(axis=(0, 2, 3), keepdims=True)
        var = np.square(x64 - mean).mean(axis=(0, 2, 3), keepdims=True)
        updated = (momentum * running_mean + (1 - momentum) * mean.ravel().astype(x.dtype),
                   momentum * running_var + (1 - momentum) * var.ravel().astype(x.dtype))
    else:
        raise ValueError("mode")
    y = gamma.reshape(1, -1, 1, 1) * ((x64 - mean) / np.sqrt(var + eps)) + beta.reshape(1, -1, 1, 1)
    return y.astype(x.dtype), updated[0], updated[1]
'''

_BN_BACKWARD_F64 = '''\
def spatial_batchnorm_backward(dy, x, gamma, eps=1e-5):
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    axes = (0, 2, 3)
    N = x.size // x.shape[1]
    mean = x64.mean(axis=axes, keepdims=True)
    inv_s = 1.0 / np.sqrt(np.square(x64 - mean).mean(axis=axes, keepdims=True) + eps)
    x_hat = (x64 - mean) * inv_s
    dbeta = dy64.sum(axis=axes, keepdims=True)
    dgamma = (dy64 * x_hat).sum(axis=axes, keepdims=True)
    dx = gamma.reshape(1, -1, 1, 1) * inv_s * (dy64 - dbeta / N - x_hat * dgamma / N)
    return dx.astype(x.dtype), dgamma.ravel().astype(x.dtype), dbeta.ravel().astype(x.dtype)
'''

_GAP_FORWARD_F64 = '''\
def global_avg_pool_forward(x):
    return x.astype(np.float64).mean(axis=(2, 3)).astype(x.dtype)
'''

_GAP_BACKWARD_BROADCAST = '''\
def global_avg_pool_backward(dy, x_shape):
    H, W = x_shape[2:]
    return np.broadcast_to((dy / (H * W))[..., None, None], tuple(x_shape)).copy()
'''

_BLOCK_FORWARD_GET = '''\
def residual_block_forward(x, params):
    z = conv2d_forward(x, params["w1"], params["b1"], pad=1)
    z = conv2d_forward(z * (z > 0), params["w2"], params["b2"], pad=1)
    w_proj = params.get("w_proj")
    return z + (x if w_proj is None else conv2d_forward(x, w_proj, params["b_proj"]))
'''

_BLOCK_BACKWARD_GET = '''\
def residual_block_backward(dy, x, params):
    z1 = conv2d_forward(x, params["w1"], params["b1"], pad=1)
    mask = (z1 > 0).astype(x.dtype)
    g = {}
    d_act, g["w2"], g["b2"] = conv2d_backward(dy, z1 * mask, params["w2"], pad=1)
    dx, g["w1"], g["b1"] = conv2d_backward(d_act * mask, x, params["w1"], pad=1)
    if params.get("w_proj") is None:
        return dx + dy, g
    d_skip, g["w_proj"], g["b_proj"] = conv2d_backward(dy, x, params["w_proj"])
    return dx + d_skip, g
'''


def _student(conv_fwd, conv_bwd, softmax, bn_fwd, bn_bwd, gap_fwd, gap_bwd, block_fwd, block_bwd, cap):
    return {"conv2d_forward": conv_fwd, "conv2d_backward": conv_bwd, "softmax_cross_entropy": softmax,
            "spatial_batchnorm_forward": bn_fwd, "spatial_batchnorm_backward": bn_bwd,
            "global_avg_pool_forward": gap_fwd, "global_avg_pool_backward": gap_bwd,
            "residual_block_forward": block_fwd, "residual_block_backward": block_bwd, "cap_depth": cap}


VARIANTS = {
    "channel_loops": _student(_CONV_FWD_IM2COL, _CONV_BWD_COL2IM, _SOFTMAX_A, _BN_FORWARD_LOOPS, _BN_BACKWARD_PATHS,
                              _GAP_FORWARD_SUM, _GAP_BACKWARD_REPEAT, _BLOCK_FORWARD_KEYS, _BLOCK_BACKWARD_KEYS,
                              _CAP_RECURSIVE),
    "channel_matrix": _student(_CONV_FWD_WINDOWS, _CONV_BWD_ROTATED, _SOFTMAX_B, _BN_FORWARD_MATRIX, _BN_BACKWARD_MATRIX,
                               _GAP_FORWARD_EINSUM, _GAP_BACKWARD_ONES, _BLOCK_FORWARD_SHAPES, _BLOCK_BACKWARD_SHAPES,
                               _CAP_STACK),
    "float64_keepdims": _student(_CONV_FWD_TAPS64, _CONV_BWD_TAPS64, _SOFTMAX_C, _BN_FORWARD_F64, _BN_BACKWARD_F64,
                                 _GAP_FORWARD_F64, _GAP_BACKWARD_BROADCAST, _BLOCK_FORWARD_GET, _BLOCK_BACKWARD_GET,
                                 _CAP_RECURSIVE),
}

STYLES = {
    "channel_loops": "lesson 04's im2col convolution; batch norm one channel at a time, the backward pass by the "
                     "derivation's three paths (x_hat, variance, mean) literally; average pooling as two sums; "
                     "residual shortcut chosen by 'w_proj' in params; CAP depth by recursion over name sets",
    "channel_matrix": "sliding windows + einsum convolution; x moved to a (C, N) matrix, the ONE-PASS variance "
                      "E[x^2] - E[x]^2 (the numerically weaker correct formula), the compact dx; einsum pooling; "
                      "shortcut chosen by comparing channel counts; CAP depth by an inner function and a table",
    "float64_keepdims": "tap-by-tap float64 convolution; batch norm in float64 with keepdims, cast back to the input "
                        "dtype; running averages in the input dtype; dx written as gamma/s (dy - mean dy - x_hat mean(dy "
                        "x_hat)); shortcut chosen by params.get('w_proj')",
}
