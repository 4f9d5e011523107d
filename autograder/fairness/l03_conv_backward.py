"""Independently written correct solutions of lesson 03, in several styles (fairness corpus)."""
from autograder.fairness.l01_conv_forward import CONV_SHAPES, VARIANTS as LESSON01
from autograder.fairness.stubs import filler

LESSON = "03_conv_backward"
fill = filler(LESSON)

# The opening lines of a convolution's backward pass: the sizes it reads off dy, w and x.
BACKWARD_SHAPES = '''\
    B, C_out, H_out, W_out = dy.shape
    _, C_in, K_h, K_w = w.shape
    H, W = x.shape[2], x.shape[3]
'''

VARIANTS = {
    "im2col_recipe": {
        "conv2d_forward": fill("conv2d_forward", CONV_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K_h * K_w, B * H_out * W_out)
    y_mat = w.astype(x.dtype).reshape(C_out, -1) @ cols + b.astype(x.dtype)[:, None]
    return y_mat.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3)
'''),
        "conv1d_backward": fill("conv1d_backward", '''\
    K, N_out = w.shape[0], dy.shape[0]
    dy_full = np.pad(dy, (K - 1, K - 1))
    dx = sliding_window_view(dy_full, K) @ w[::-1]
    dw = sliding_window_view(x, N_out) @ dy
    db = float(np.sum(dy))
    return dx, dw, db
'''),
        "conv2d_backward_naive": fill("conv2d_backward_naive", '''\
    B, C_out, H_out, W_out = dy.shape
    _, _, K_h, K_w = w.shape
    H, W = x.shape[2], x.shape[3]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros(C_out, dtype=dy.dtype)
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    g = dy[bi, co, i, j]
                    r, c = stride * i, stride * j
                    dx_pad[bi, :, r:r + K_h, c:c + K_w] += g * w[co]
                    dw[co] += g * x_pad[bi, :, r:r + K_h, c:c + K_w]
                    db[co] += g
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
        "rot180": fill("rot180", '''\
    return w[..., ::-1, ::-1]
'''),
        "dilate": fill("dilate", '''\
    B, C, H_out, W_out = dy.shape
    result = np.zeros((B, C, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1), dtype=dy.dtype)
    result[:, :, ::stride, ::stride] = dy
    return result
'''),
        "conv2d_dx_rotated": fill("conv2d_dx_rotated", '''\
    B, C_in, H, W = x_shape
    K_h, K_w = w.shape[2], w.shape[3]
    spread = dilate(dy, stride)
    spread = np.pad(spread, ((0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)))
    kernel = rot180(w).transpose(1, 0, 2, 3)                      # (C_in, C_out, K_h, K_w)
    core = conv2d_forward(spread, kernel, np.zeros(C_in, dtype=dy.dtype), stride=1, pad=0)
    dx_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad), dtype=dy.dtype)
    dx_pad[:, :, :core.shape[2], :core.shape[3]] = core           # rows no window reached stay 0
    return dx_pad[:, :, pad:pad + H, pad:pad + W]
'''),
        "conv2d_backward": fill("conv2d_backward", BACKWARD_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K_h * K_w, B * H_out * W_out)
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(C_out, B * H_out * W_out)
    w_mat = w.reshape(C_out, C_in * K_h * K_w)

    dw = (dy_mat @ cols.T).reshape(w.shape)
    db = dy_mat.sum(axis=1)
    dcols = (w_mat.T @ dy_mat).reshape(C_in, K_h, K_w, B, H_out, W_out)

    dx_pad = np.zeros(x_pad.shape, dtype=x.dtype)
    for m in range(K_h):                                   # col2im: one strided slice += per tap
        for n in range(K_w):
            rows = slice(m, m + stride * (H_out - 1) + 1, stride)
            cols_ = slice(n, n + stride * (W_out - 1) + 1, stride)
            dx_pad[:, :, rows, cols_] += dcols[:, m, n].transpose(1, 0, 2, 3)
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
    },
    "einsum_windows": {
        "conv2d_forward": LESSON01["einsum_windows"]["conv2d_forward"],     # lesson 01's, as the student wrote it
        "conv1d_backward": fill("conv1d_backward", '''\
    dx = np.convolve(dy, w, mode="full")           # np.convolve flips w: the full convolution
    dw = np.correlate(x, dy, mode="valid")          # dw[m] = sum_i x[i + m] dy[i]
    db = dy.sum()                                   # a numpy scalar
    return dx, dw, db
'''),
        "conv2d_backward_naive": fill("conv2d_backward_naive", BACKWARD_SHAPES + '''\
    x_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for bi in range(B):                 # loops over images and output pixels; all channels at once
        for i in range(H_out):
            for j in range(W_out):
                g = dy[bi, :, i, j]                                          # (C_out,)
                win = (bi, slice(None), slice(stride * i, stride * i + K_h), slice(stride * j, stride * j + K_w))
                dx_pad[win] += np.einsum("o,ocmn->cmn", g, w)
                dw += np.einsum("o,cmn->ocmn", g, x_pad[win])
    db = dy.sum(axis=(0, 2, 3))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
        "rot180": fill("rot180", '''\
    return np.flip(w, axis=(-2, -1))
'''),
        "dilate": fill("dilate", '''\
    B, C, H_out, W_out = dy.shape
    blocks = np.zeros((B, C, H_out, stride, W_out, stride), dtype=dy.dtype)
    blocks[:, :, :, 0, :, 0] = dy                      # each value at the corner of its stride x stride block
    grid = blocks.reshape(B, C, H_out * stride, W_out * stride)
    return grid[:, :, :(H_out - 1) * stride + 1, :(W_out - 1) * stride + 1]
'''),
        "conv2d_dx_rotated": fill("conv2d_dx_rotated", '''\
    _, C_in, H, W = x_shape
    C_out, _, K_h, K_w = w.shape
    dy_full = np.pad(dilate(dy, stride), [(0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)])
    core = conv2d_forward(dy_full, np.ascontiguousarray(rot180(w).transpose(1, 0, 2, 3)),
                          np.zeros(C_in), stride=1, pad=0)
    missing_h = H + 2 * pad - core.shape[2]                # (H + 2 pad - K_h) mod stride
    missing_w = W + 2 * pad - core.shape[3]
    dx_pad = np.pad(core, [(0, 0), (0, 0), (0, missing_h), (0, missing_w)])
    return dx_pad[:, :, pad:pad + H, pad:pad + W].astype(dy.dtype, copy=False)
'''),
        "conv2d_backward": fill("conv2d_backward", BACKWARD_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    dw = np.einsum("bcijmn,boij->ocmn", windows, dy, optimize=True).astype(w.dtype, copy=False)
    db = np.einsum("boij->o", dy)
    d_windows = np.einsum("ocmn,boij->bcmnij", w, dy, optimize=True)   # gradient of every window entry
    dx_pad = np.zeros(x_pad.shape, dtype=x.dtype)
    for m in range(K_h):
        for n in range(K_w):
            dx_pad[:, :, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride] += \\
                d_windows[:, :, m, n]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
    },
    "tap_accumulate": {
        "conv2d_forward": LESSON01["tap_accumulate"]["conv2d_forward"],     # lesson 01's, as the student wrote it
        "conv1d_backward": fill("conv1d_backward", '''\
    K, N_out = w.shape[0], dy.shape[0]
    dx = np.zeros(x.shape, dtype=np.result_type(dy, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
    for m in range(K):                       # tap m: output i used x[i + m] with weight w[m]
        dx[m:m + N_out] += dy * w[m]
        dw[m] = np.dot(dy, x[m:m + N_out])
    db = np.add.reduce(dy).item()
    return dx, dw, db
'''),
        "conv2d_backward_naive": fill("conv2d_backward_naive", BACKWARD_SHAPES + '''\
    H_pad, W_pad = H + 2 * pad, W + 2 * pad
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # dw and db: scatter, visiting every output (bi, co, i, j) once
    dw = np.zeros_like(w)
    db = np.zeros(C_out, dtype=dy.dtype)
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    dw[co] += dy[bi, co, i, j] * x_pad[bi, :, stride * i:stride * i + K_h, stride * j:stride * j + K_w]
                    db[co] += dy[bi, co, i, j]
    # dx: gather, for every padded position (u, v) the outputs whose window covered it (section 3.3)
    dx_pad = np.zeros((B, C_in, H_pad, W_pad), dtype=x.dtype)
    for bi in range(B):
        for u in range(H_pad):
            rows = [i for i in range(H_out) if 0 <= u - stride * i < K_h]
            for v in range(W_pad):
                cols = [j for j in range(W_out) if 0 <= v - stride * j < K_w]
                for co in range(C_out):
                    for i in rows:
                        for j in cols:
                            dx_pad[bi, :, u, v] += dy[bi, co, i, j] * w[co, :, u - stride * i, v - stride * j]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
        "rot180": fill("rot180", '''\
    return np.rot90(w, 2, axes=(-2, -1))      # two quarter turns in the kernel plane
'''),
        "dilate": fill("dilate", '''\
    if stride == 1:
        return dy                                  # nothing to insert: dy itself
    B, C, H_out, W_out = dy.shape
    result = np.zeros((B, C, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1), dtype=dy.dtype)
    for i in range(H_out):                         # one row of dy at a time
        result[:, :, stride * i, ::stride] = dy[:, :, i, :]
    return result
'''),
        "conv2d_dx_rotated": fill("conv2d_dx_rotated", '''\
    _, C_in, H, W = x_shape
    K_h, K_w = w.shape[2], w.shape[3]
    spread = dilate(dy, stride)
    # pad K-1 on each side, plus the never-reached rows/columns at the bottom/right: the full
    # correlation then has exactly H + 2 pad rows, the extra ones computed from zeros (= 0)
    extra_h = H + 2 * pad - (spread.shape[2] + K_h - 1)
    extra_w = W + 2 * pad - (spread.shape[3] + K_w - 1)
    padded = np.pad(spread, ((0, 0), (0, 0), (K_h - 1, K_h - 1 + extra_h), (K_w - 1, K_w - 1 + extra_w)))
    dx_pad = conv2d_forward(padded, rot180(w).transpose(1, 0, 2, 3), np.zeros(C_in, dtype=dy.dtype))
    return dx_pad[:, :, pad:pad + H, pad:pad + W]
'''),
        "conv2d_backward": fill("conv2d_backward", BACKWARD_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=x.dtype)
    dw = np.empty(w.shape, dtype=w.dtype)
    for m in range(K_h):                 # tap by tap: all images, channels and pixels at once
        for n in range(K_w):
            rows = slice(m, m + stride * (H_out - 1) + 1, stride)
            cols = slice(n, n + stride * (W_out - 1) + 1, stride)
            seen = x_pad[:, :, rows, cols]                                       # (B, C_in, H_out, W_out)
            dw[:, :, m, n] = np.tensordot(dy, seen, axes=([0, 2, 3], [0, 2, 3]))  # (C_out, C_in)
            back = np.tensordot(w[:, :, m, n], dy, axes=([0], [1]))              # (C_in, B, H_out, W_out)
            dx_pad[:, :, rows, cols] += back.transpose(1, 0, 2, 3)
    db = dy.sum(axis=(0, 2, 3))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''),
    },
    "float64_accumulate": {
        # lesson 01's as_strided im2col pasted again, its comment dropped and its last two lines folded
        "conv2d_forward": LESSON01["float64_accumulate"]["conv2d_forward"]
        .replace("    # cols6[ci, m, n, bi, i, j] = x_pad[bi, ci, stride*i + m, stride*j + n]\n", "")
        .replace("    y = y_mat.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3)\n    return y.astype(x.dtype)\n",
                 "    return y_mat.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3).astype(x.dtype)\n"),
        "conv1d_backward": fill("conv1d_backward", '''\
    N, K, N_out = x.shape[0], w.shape[0], dy.shape[0]
    dy64, x64, w64 = (np.asarray(a, dtype=np.float64) for a in (dy, x, w))
    # dx[k] = sum over i with 0 <= k - i < K of dy[i] w[k - i]   (index form, exactly rounded sums)
    dx = np.array([math.fsum(dy64[i] * w64[k - i] for i in range(max(0, k - K + 1), min(N_out, k + 1)))
                   for k in range(N)])
    dw = np.array([math.fsum(dy64 * x64[m:m + N_out]) for m in range(K)])
    db = math.fsum(dy64)
    return dx.astype(x.dtype), dw.astype(w.dtype), db
''', before="import math\n\n\n"),
        "conv2d_backward_naive": fill("conv2d_backward_naive", BACKWARD_SHAPES + '''\
    x_pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w64, dy64 = w.astype(np.float64), dy.astype(np.float64)
    dx_pad = np.zeros(x_pad.shape)                      # float64 accumulators
    dw = np.zeros(w.shape)
    db = np.zeros(C_out)
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    g = dy64[bi, co, i, j]
                    rs = slice(i * stride, i * stride + K_h)
                    cs = slice(j * stride, j * stride + K_w)
                    dx_pad[bi, :, rs, cs] += g * w64[co]
                    dw[co] += g * x_pad[bi, :, rs, cs]
                    db[co] += g
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx.astype(x.dtype), dw.astype(w.dtype), db.astype(dy.dtype)
'''),
        "rot180": fill("rot180", '''\
    K_h, K_w = w.shape[-2], w.shape[-1]
    rows = (K_h - 1 - np.arange(K_h))[:, None]
    cols = (K_w - 1 - np.arange(K_w))[None, :]
    return w[..., rows, cols]                  # fancy indexing: a new array
'''),
        "dilate": fill("dilate", '''\
    B, C, H_out, W_out = dy.shape
    result = np.zeros((B, C, (H_out - 1) * stride + 1, (W_out - 1) * stride + 1), dtype=dy.dtype)
    rows = stride * np.arange(H_out)
    cols = stride * np.arange(W_out)
    result[:, :, rows[:, None], cols[None, :]] = dy
    return result
'''),
        "conv2d_dx_rotated": fill("conv2d_dx_rotated", '''\
    B, C_in, H, W = x_shape
    K_h, K_w = w.shape[2], w.shape[3]
    spread = dilate(dy.astype(np.float64), stride)
    full = np.pad(spread, ((0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)))
    core = conv2d_forward(full, rot180(w.astype(np.float64)).transpose(1, 0, 2, 3), np.zeros(C_in))
    dx_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad))
    dx_pad[:, :, :core.shape[2], :core.shape[3]] = core
    return dx_pad[:, :, pad:H + pad, pad:W + pad].astype(dy.dtype)
'''),
        "conv2d_backward": fill("conv2d_backward", BACKWARD_SHAPES + '''\
    x_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad))          # float64 throughout, cast at the end
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    sb, sc, sh, sw = x_pad.strides
    cols = as_strided(x_pad, shape=(C_in, K_h, K_w, B, H_out, W_out),
                      strides=(sc, sh, sw, sb, stride * sh, stride * sw),
                      writeable=False).reshape(C_in * K_h * K_w, B * H_out * W_out)
    dy_mat = dy.astype(np.float64).transpose(1, 0, 2, 3).reshape(C_out, -1)
    w_mat = w.astype(np.float64).reshape(C_out, -1)
    dw = (dy_mat @ cols.T).reshape(w.shape)
    db = dy_mat.sum(axis=1)
    dcols = (w_mat.T @ dy_mat).reshape(C_in, K_h, K_w, B, H_out, W_out).transpose(3, 0, 1, 2, 4, 5)
    dx_pad = np.zeros(x_pad.shape)
    for m in range(K_h):
        for n in range(K_w):
            dx_pad[:, :, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride] += \\
                dcols[:, :, m, n]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx.astype(x.dtype), dw.astype(w.dtype), db.astype(dy.dtype)
''', before="from numpy.lib.stride_tricks import as_strided\n\n\n"),
    },
}
STYLES = {
    "im2col_recipe": "section 5 literally in the input dtype (float32 stays float32 throughout): sliding_window_view "
                     "im2col, dW_mat = dY_mat @ cols.T, dcols = W_mat.T @ dY_mat, tap-loop col2im; scatter loops "
                     "for the naive pass; rot180 as a view w[..., ::-1, ::-1]; zeros-then-fill for dx_rotated",
    "einsum_windows": "np.convolve/np.correlate 1-D (db a numpy scalar), naive loops over (bi, i, j) with einsum over "
                      "channels, np.flip, block-reshape dilate, np.pad fill in dx_rotated, einsum on "
                      "sliding_window_view for dw and the window gradients, then a tap-loop scatter",
    "tap_accumulate": "tap-by-tap everywhere: 1-D tap loop (db via .item()), naive dw by scatter and dx by gather "
                      "(index form of 3.3), np.rot90(k=2), dilate returns dy itself for stride 1, dx_rotated pads "
                      "the fill rows into dy so the conv output is already H + 2 pad, conv2d_backward as K_h*K_w "
                      "tensordots",
    "float64_accumulate": "everything accumulated in float64 and cast back: math.fsum 1-D (index form), float64 "
                          "scatter loops, fancy-index rot180 and dilate, float64 dx_rotated, as_strided im2col "
                          "backward in float64 cast to x/w/dy dtypes",
}
