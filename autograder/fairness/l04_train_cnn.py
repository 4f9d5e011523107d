"""Independently written correct solutions of lesson 04, in several styles (fairness corpus); the
layer classes each style wrote are in _l04_layers."""
from autograder.fairness._l04_layers import LAYERS
from autograder.fairness.l01_conv_forward import CONV_SHAPES
from autograder.fairness.stubs import filler

LESSON = "04_train_cnn"
fill = filler(LESSON)

# The notebook's first cell already has: import time; import numpy as np;
# from numpy.lib.stride_tricks import sliding_window_view; import convlab; from convlab.data import ...

# =============================================================================================
# Variant "im2col_matmul": im2col built tap by tap, one batched matmul, col2im by tap slices;
# pooling by strided tap slices with a "first max wins" mask; Python-float loss.
# =============================================================================================
_IM2COL_HELPERS = '''\
def conv_output_size(in_size, kernel_size, stride=1, pad=0):
    """Number of window positions along one axis."""
    span = in_size + 2 * pad - kernel_size
    if span < 0:
        raise ValueError(f"a window of {kernel_size} does not fit in {in_size} padded by {pad}")
    return span // stride + 1


def im2col(x, kernel_h, kernel_w, stride, pad):
    """x (B, C, H, W) -> columns (B, C * K_h * K_w, H_out * W_out), rows in (c, p, q) order."""
    B, C, H, W = x.shape
    H_out = conv_output_size(H, kernel_h, stride, pad)
    W_out = conv_output_size(W, kernel_w, stride, pad)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((B, C, kernel_h, kernel_w, H_out, W_out), dtype=x.dtype)
    for p in range(kernel_h):
        for q in range(kernel_w):
            cols[:, :, p, q] = x_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride]
    return cols.reshape(B, C * kernel_h * kernel_w, H_out * W_out), H_out, W_out


'''

_CONV_FWD_IM2COL = _IM2COL_HELPERS + fill("conv2d_forward", '''\
    C_out, C_in, K_h, K_w = w.shape
    cols, H_out, W_out = im2col(x, K_h, K_w, stride, pad)
    y = w.reshape(C_out, C_in * K_h * K_w) @ cols + b.reshape(1, C_out, 1)      # (B, C_out, H_out * W_out)
    return y.reshape(x.shape[0], C_out, H_out, W_out).astype(x.dtype, copy=False)
''')

_CONV_BWD_COL2IM = _IM2COL_HELPERS + fill("conv2d_backward", '''\
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    cols, H_out, W_out = im2col(x, K_h, K_w, stride, pad)                  # (B, C_in*K_h*K_w, H_out*W_out)
    dy_mat = dy.reshape(B, C_out, H_out * W_out)
    dw = np.einsum("bop,bkp->ok", dy_mat, cols).reshape(w.shape)
    db = dy.sum(axis=(0, 2, 3))
    dcols = (w.reshape(C_out, -1).T @ dy_mat).reshape(B, C_in, K_h, K_w, H_out, W_out)
    dx_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    for p in range(K_h):
        for q in range(K_w):
            dx_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride] += dcols[:, :, p, q]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw.astype(w.dtype, copy=False), db
''')

_TAP_SLICES = '''\
def tap_slices(m, n, stride, H_out, W_out):
    """Slices (rows, cols) with x[:, :, rows, cols][b, c, i, j] == x[b, c, stride * i + m, stride * j + n]."""
    rows = slice(m, m + stride * (H_out - 1) + 1, stride)
    cols = slice(n, n + stride * (W_out - 1) + 1, stride)
    return rows, cols


'''

_POOL_FWD_TAPS = _TAP_SLICES + fill("maxpool2d_forward", '''\
    H_out = (x.shape[2] - pool) // stride + 1
    W_out = (x.shape[3] - pool) // stride + 1
    y = None
    for m in range(pool):
        for n in range(pool):
            tap = x[(slice(None), slice(None)) + tap_slices(m, n, stride, H_out, W_out)]
            y = tap.copy() if y is None else np.maximum(y, tap)
    return y
''')

_POOL_BWD_TAKEN = _TAP_SLICES + fill("maxpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    y = maxpool2d_forward(x, pool, stride)
    dx = np.zeros_like(x)
    taken = np.zeros(y.shape, dtype=bool)                  # window already gave its gradient away
    for m in range(pool):                                  # taps in row-major order: first max wins
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            first = (x[:, :, rows, cols] == y) & ~taken
            dx[:, :, rows, cols] += np.where(first, dy, 0)
            taken |= first
    return dx
''')

_SOFTMAX_A = fill("softmax_cross_entropy", '''\
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_p[rows, y].mean()
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    return float(loss), dlogits / N
''')

_HE_A = fill("he_init", '''\
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
''')

_SGD_A = fill("sgd_momentum_step", '''\
    new_velocity = momentum * velocity - lr * grad
    return param + new_velocity, new_velocity
''')

# =============================================================================================
# Variant "windows_einsum": sliding_window_view + einsum; dx as the full correlation of the
# dilated dy with the rotated kernel; argmax + np.add.at pooling; numpy-scalar loss; pure functions.
# =============================================================================================
_CONV_FWD_WINDOWS = fill("conv2d_forward", '''\
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]   # (B, C, Ho, Wo, Kh, Kw)
    y = np.einsum("bchwij,ocij->bohw", windows, w, optimize=True)
    return (y + b[None, :, None, None]).astype(x.dtype, copy=False)
''')

_CONV_BWD_ROTATED = fill("conv2d_backward", '''\
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out, W_out = dy.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    dw = np.einsum("bohw,bchwij->ocij", dy, windows, optimize=True)
    db = dy.sum(axis=(0, 2, 3))
    # dx: insert stride - 1 zeros between the dy entries, pad by K - 1, correlate with rot180(w)
    dilated = np.zeros((B, C_out, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1), dtype=dy.dtype)
    dilated[:, :, ::stride, ::stride] = dy
    full = np.pad(dilated, ((0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)))
    rotated = w[:, :, ::-1, ::-1]
    reach = sliding_window_view(full, (K_h, K_w), axis=(2, 3))          # (B, C_out, Hc, Wc, Kh, Kw)
    covered = np.einsum("bohwij,ocij->bchw", reach, rotated, optimize=True)   # rows/cols the windows covered
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(dy, w))
    dx_pad[:, :, :covered.shape[2], :covered.shape[3]] = covered         # rows past the last window get 0
    return dx_pad[:, :, pad:pad + H, pad:pad + W].astype(x.dtype, copy=False), dw.astype(w.dtype, copy=False), db
''')

_POOL_FWD_WINDOWS = fill("maxpool2d_forward", '''\
    return sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(4, 5))
''')

_POOL_BWD_ADD_AT = fill("maxpool2d_backward", '''\
    B, C, H_out, W_out = dy.shape
    windows = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    first = windows.reshape(B, C, H_out, W_out, pool * pool).argmax(axis=-1)   # first max, row-major
    bi, ci, i, j = np.indices((B, C, H_out, W_out))
    dx = np.zeros(x.shape, dtype=x.dtype)
    np.add.at(dx, (bi, ci, stride * i + first // pool, stride * j + first % pool), dy)
    return dx
''')

_SOFTMAX_B = fill("softmax_cross_entropy", '''\
    N, K = logits.shape
    z = logits - np.max(logits, axis=1, keepdims=True)
    log_sum = np.log(np.sum(np.exp(z), axis=1))             # log-sum-exp of the shifted row, >= 0
    loss = np.mean(log_sum - z[np.arange(N), y])            # a numpy scalar of the logits' dtype
    probabilities = np.exp(z - log_sum[:, None])
    one_hot = np.eye(K, dtype=logits.dtype)[y]
    return loss, (probabilities - one_hot) / N
''')

_HE_B = fill("he_init", '''\
    fan_in = math.prod(shape[1:])
    return rng.standard_normal(shape) * math.sqrt(2 / fan_in)
''', before="import math\n\n\n")

_SGD_B = fill("sgd_momentum_step", '''\
    velocity = np.multiply(velocity, momentum)
    velocity = np.subtract(velocity, np.multiply(grad, lr))
    param = np.add(param, velocity)
    return param, velocity
''')

# =============================================================================================
# Variant "taps_float64": tap-by-tap accumulation in float64, cast back to the input dtype;
# pooling by a stacked-taps argmax; float32 draws in he_init; momentum update by in-place operators on copies.
# =============================================================================================
_CONV_FWD_TAPS64 = fill("conv2d_forward", CONV_SHAPES + '''\
    x_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad), dtype=np.float64)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    w64 = np.asarray(w, dtype=np.float64)
    y = np.zeros((B, H_out, W_out, C_out))
    for p in range(K_h):                      # one (B, C_in, H_out, W_out) tap of every window at a time
        for q in range(K_w):
            tap = x_pad[:, :, p:p + stride * (H_out - 1) + 1:stride, q:q + stride * (W_out - 1) + 1:stride]
            y += np.tensordot(tap, w64[:, :, p, q], axes=([1], [1]))          # (B, H_out, W_out, C_out)
    y += np.asarray(b, dtype=np.float64)
    return y.transpose(0, 3, 1, 2).astype(x.dtype)
''')

_CONV_BWD_TAPS64 = fill("conv2d_backward", '''\
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out, W_out = dy.shape[2], dy.shape[3]
    dy64 = np.asarray(dy, dtype=np.float64)
    w64 = np.asarray(w, dtype=np.float64)
    x_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad))
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros(w.shape)
    for p in range(K_h):
        for q in range(K_w):
            rows = slice(p, p + stride * (H_out - 1) + 1, stride)
            cols = slice(q, q + stride * (W_out - 1) + 1, stride)
            dw[:, :, p, q] = np.tensordot(dy64, x_pad[:, :, rows, cols], axes=([0, 2, 3], [0, 2, 3]))
            dx_pad[:, :, rows, cols] += np.tensordot(w64[:, :, p, q], dy64, axes=([0], [1])).transpose(1, 0, 2, 3)
    db = dy64.sum(axis=(0, 2, 3))
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx.astype(x.dtype), dw.astype(w.dtype), db.astype(np.result_type(dy, w))
''')

_POOL_FWD_STACK = fill("maxpool2d_forward", '''\
    B, C, H, W = x.shape
    H_out, W_out = (H - pool) // stride + 1, (W - pool) // stride + 1
    taps = np.stack([x[:, :, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride]
                     for m in range(pool) for n in range(pool)])          # (pool*pool, B, C, H_out, W_out), a copy
    return taps.max(axis=0)
''')

_POOL_BWD_STACK = fill("maxpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    spots = [(slice(m, m + stride * (H_out - 1) + 1, stride), slice(n, n + stride * (W_out - 1) + 1, stride))
             for m in range(pool) for n in range(pool)]
    winner = np.stack([x[:, :, rows, cols] for rows, cols in spots]).argmax(axis=0)   # first max in tap order
    dx = np.zeros(x.shape, dtype=np.float64)
    for t, (rows, cols) in enumerate(spots):
        dx[:, :, rows, cols] += np.where(winner == t, dy, 0.0)
    return dx.astype(x.dtype)
''')

_SOFTMAX_C = fill("softmax_cross_entropy", '''\
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(y)
    N = z.shape[0]
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))        # log sum_j exp z[n, j], computed stably
    loss = np.float64(np.sum(lse - z[np.arange(N), labels]) / N)
    grad = np.exp(z - lse[:, None])
    np.subtract.at(grad, (np.arange(N), labels), 1.0)
    grad /= N
    return loss, grad.astype(np.asarray(logits).dtype)
''')

_HE_C = fill("he_init", '''\
    shape = tuple(int(n) for n in shape)
    fan_in = 1
    for n in shape[1:]:
        fan_in *= n
    std = np.float32(np.sqrt(2.0 / fan_in))
    return rng.standard_normal(shape, dtype=np.float32) * std      # float32 draws, the dtype the network uses
''')

_SGD_C = fill("sgd_momentum_step", '''\
    new_velocity = np.array(velocity, dtype=np.result_type(velocity, grad), copy=True)
    new_velocity *= momentum             # in place, but on a copy: first the velocity ...
    new_velocity -= lr * grad
    new_param = np.array(param, dtype=np.result_type(param, new_velocity), copy=True)
    new_param += new_velocity            # ... then the parameter, by the new velocity
    return new_param, new_velocity
''')


_SOFTMAX_D = fill("softmax_cross_entropy", '''\
    N = len(y)
    shifted = logits - logits.max(axis=1, keepdims=True)            # every exponent <= 0
    log_p = shifted - np.logaddexp.reduce(shifted, axis=1, keepdims=True)   # (z - m) - log sum exp(z - m)
    labels = np.asarray(y).reshape(-1, 1)
    picked = np.take_along_axis(log_p, labels, axis=1)                  # log p[n, y[n]], (N, 1)
    dlogits = np.exp(log_p)
    np.put_along_axis(dlogits, labels, np.exp(picked) - 1, axis=1)      # p - one_hot(y)
    return float(-picked.mean()), dlogits / N
''')


def _student(conv_fwd, conv_bwd, pool_fwd, pool_bwd, layers, softmax, he, sgd):
    return {"conv2d_forward": conv_fwd, "conv2d_backward": conv_bwd, "maxpool2d_forward": pool_fwd,
            "maxpool2d_backward": pool_bwd, **layers, "softmax_cross_entropy": softmax, "he_init": he,
            "sgd_momentum_step": sgd}


_IM2COL_MATMUL = _student(_CONV_FWD_IM2COL, _CONV_BWD_COL2IM, _POOL_FWD_TAPS, _POOL_BWD_TAKEN, LAYERS["im2col_matmul"],
                          _SOFTMAX_A, _HE_A, _SGD_A)
_WINDOWS_EINSUM = _student(_CONV_FWD_WINDOWS, _CONV_BWD_ROTATED, _POOL_FWD_WINDOWS, _POOL_BWD_ADD_AT,
                           LAYERS["windows_einsum"], _SOFTMAX_B, _HE_B, _SGD_B)
_WINDOWS_FUNCTIONS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward", "sgd_momentum_step")

VARIANTS = {
    "im2col_matmul": _IM2COL_MATMUL,
    "windows_einsum": _WINDOWS_EINSUM,
    "windows_logaddexp": {**_IM2COL_MATMUL, **{name: _WINDOWS_EINSUM[name] for name in _WINDOWS_FUNCTIONS},
                          "softmax_cross_entropy": _SOFTMAX_D},
    "taps_float64": _student(_CONV_FWD_TAPS64, _CONV_BWD_TAPS64, _POOL_FWD_STACK, _POOL_BWD_STACK,
                             LAYERS["taps_float64"], _SOFTMAX_C, _HE_C, _SGD_C),
}

STYLES = {
    "im2col_matmul": "im2col filled tap by tap (helpers conv_output_size/im2col/tap_slices in the cells), one "
                     "batched matmul, col2im by strided tap slices; pooling by tap slices with a 'first max "
                     "wins' mask; loss returned as a Python float; rng.normal he_init",
    "windows_einsum": "sliding_window_view + einsum(optimize=True); dx as the full correlation of the dilated, "
                      "(K-1)-padded dy with rot180(w); pooling by window max and argmax + np.add.at; ReLU by a "
                      "stored mask; loss returned as a numpy scalar of the logits' dtype (np.float32 in training)",
    "windows_logaddexp": "windows_einsum's convolution and pooling with im2col_matmul's layers; softmax exactly as "
                         "the markdown writes log p = (z - m) - log sum_j exp(z_j - m), the log-sum-exp taken by "
                         "np.logaddexp.reduce (a different order of rounding than log(np.sum(np.exp(...))))",
    "taps_float64": "tap-by-tap tensordot accumulation in float64 cast back to the input dtype; pooling by a stack "
                    "of taps and its argmax; softmax in float64 with np.subtract.at (loss np.float64); he_init "
                    "draws float32 normals (rng.standard_normal(dtype=float32)); momentum update by in-place "
                    "operators on copies of velocity and param",
}
