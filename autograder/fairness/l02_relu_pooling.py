"""Independently written correct solutions of lesson 02, in several styles (fairness corpus)."""
from autograder.fairness.stubs import filler

LESSON = "02_relu_pooling"
fill = filler(LESSON)

_SUM_OWN_ENTRIES = (" Sum each window's own pool**2\n    entries (prefix sums over the whole image would cancel other "
                    "windows' values and lose float64 accuracy).")


def _older_avgpool(body: str, before: str = "") -> str:
    """avgpool2d_forward as these variants wrote it, on an older stub whose docstring did not yet ask
    to sum each window's own entries."""
    return fill("avgpool2d_forward", body, before=before).replace(_SUM_OWN_ENTRIES, "")


# The opening lines of a pooling pass, from pool_output_size.
POOL_SHAPES = '''\
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
'''

VARIANTS = {
    "loops": {
        "relu_forward": fill("relu_forward", '''\
    return np.maximum(x, 0)
'''),
        "relu_backward": fill("relu_backward", '''\
    return np.where(x > 0, dy, 0).astype(x.dtype, copy=False)
'''),
        "pool_output_size": fill("pool_output_size", '''\
    count, start = 0, 0
    while start + pool <= size:
        count += 1
        start += stride
    return count
'''),
        "maxpool2d_forward_naive": fill("maxpool2d_forward_naive", POOL_SHAPES + '''\
    y = np.empty((B, C, H_out, W_out), dtype=x.dtype)
    for b in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    y[b, c, i, j] = x[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool].max()
    return y
'''),
        "maxpool2d_forward": fill("maxpool2d_forward", '''\
    H_out, W_out = pool_output_size(x.shape[2], pool, stride), pool_output_size(x.shape[3], pool, stride)
    rows, cols = tap_slices(0, 0, stride, H_out, W_out)
    y = x[:, :, rows, cols].copy()
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            np.maximum(y, x[:, :, rows, cols], out=y)
    return y
'''),
        "maxpool2d_backward_naive": fill("maxpool2d_backward_naive", '''\
    B, C, H_out, W_out = dy.shape
    dx = np.zeros_like(x)
    for b in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool]
                    m, n = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, c, stride * i + m, stride * j + n] += dy[b, c, i, j]
    return dx
'''),
        "maxpool2d_backward": fill("maxpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    y = maxpool2d_forward(x, pool, stride)
    dx = np.zeros_like(x)
    pending = np.ones(y.shape, dtype=bool)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            winner = pending & (x[:, :, rows, cols] == y)
            dx[:, :, rows, cols] += np.where(winner, dy, 0)
            pending &= ~winner
    return dx
'''),
        "avgpool2d_forward": _older_avgpool('''\
    H_out, W_out = pool_output_size(x.shape[2], pool, stride), pool_output_size(x.shape[3], pool, stride)
    total = np.zeros((x.shape[0], x.shape[1], H_out, W_out), dtype=x.dtype)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            total += x[:, :, rows, cols]
    return total / (pool * pool)
'''),
        "avgpool2d_backward": fill("avgpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    dx = np.zeros(x.shape, dtype=x.dtype)
    share = (dy / (pool * pool)).astype(x.dtype, copy=False)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            dx[:, :, rows, cols] += share
    return dx
'''),
    },
    "windows": {
        "relu_forward": fill("relu_forward", '''\
    return x * (x > 0)          # negative entries become (-)0.0, which equals 0
'''),
        "relu_backward": fill("relu_backward", '''\
    return dy * (x > 0)
'''),
        "pool_output_size": fill("pool_output_size", '''\
    if pool > size:
        raise ValueError(f"a pooling window of {pool} does not fit in an axis of length {size}")
    return (size - pool) // stride + 1
'''),
        "maxpool2d_forward_naive": fill("maxpool2d_forward_naive", POOL_SHAPES + '''\
    y = np.zeros((B, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, stride * i:stride * i + pool, stride * j:stride * j + pool]
            y[:, :, i, j] = np.max(window, axis=(2, 3))
    return y
'''),
        "maxpool2d_forward": fill("maxpool2d_forward", '''\
    windows = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(4, 5))
''', before="from numpy.lib.stride_tricks import sliding_window_view\n\n\n"),
        "maxpool2d_backward_naive": fill("maxpool2d_backward_naive", '''\
    B, C, H_out, W_out = dy.shape
    dx = np.zeros(x.shape, dtype=x.dtype)
    b_idx, c_idx = np.meshgrid(np.arange(B), np.arange(C), indexing="ij")
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, stride * i:stride * i + pool, stride * j:stride * j + pool].reshape(B, C, pool * pool)
            first = np.argmax(window, axis=2)               # first maximum, row-major, per (b, c)
            # one window (i, j): distinct (b, c) pairs, so this fancy += never repeats a cell
            dx[b_idx, c_idx, stride * i + first // pool, stride * j + first % pool] += dy[:, :, i, j]
    return dx
'''),
        "maxpool2d_backward": fill("maxpool2d_backward", '''\
    B, C, H_out, W_out = dy.shape
    windows = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    first = windows.reshape(B, C, H_out, W_out, pool * pool).argmax(axis=4)
    b_idx = np.arange(B)[:, None, None, None]
    c_idx = np.arange(C)[None, :, None, None]
    rows = stride * np.arange(H_out)[None, None, :, None] + first // pool
    cols = stride * np.arange(W_out)[None, None, None, :] + first % pool
    dx = np.zeros(x.shape, dtype=x.dtype)
    np.add.at(dx, (b_idx, c_idx, rows, cols), dy.astype(x.dtype, copy=False))     # unbuffered scatter-add
    return dx
''', before="from numpy.lib.stride_tricks import sliding_window_view\n\n\n"),
        "avgpool2d_forward": _older_avgpool('''\
    windows = sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.mean(axis=(4, 5), dtype=x.dtype)
''', before="from numpy.lib.stride_tricks import sliding_window_view\n\n\n"),
        "avgpool2d_backward": fill("avgpool2d_backward", '''\
    H, W = x.shape[2], x.shape[3]
    H_out, W_out = dy.shape[2], dy.shape[3]
    # cover_h[h, i] = 1 when row h lies in window row-range i: 0 <= h - stride * i < pool (same for columns)
    offset_h = np.arange(H)[:, None] - stride * np.arange(H_out)[None, :]
    offset_w = np.arange(W)[:, None] - stride * np.arange(W_out)[None, :]
    cover_h = ((offset_h >= 0) & (offset_h < pool)).astype(x.dtype)
    cover_w = ((offset_w >= 0) & (offset_w < pool)).astype(x.dtype)
    dx = np.einsum("hi,bcij,wj->bchw", cover_h, dy.astype(x.dtype, copy=False), cover_w, optimize=True)
    return (dx / (pool * pool)).astype(x.dtype, copy=False)
'''),
    },
    "float64_accumulate": {
        "relu_forward": fill("relu_forward", '''\
    y = np.array(x, copy=True)
    y[y < 0] = 0
    return y
'''),
        "relu_backward": fill("relu_backward", '''\
    dx = np.zeros_like(x)
    active = x > 0
    dx[active] = dy[active]
    return dx
'''),
        "pool_output_size": fill("pool_output_size", '''\
    return len(range(0, size - pool + 1, stride))
'''),
        "maxpool2d_forward_naive": fill("maxpool2d_forward_naive", POOL_SHAPES + '''\
    y = np.empty((B, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            best = x[:, :, stride * i, stride * j].copy()      # start from the window's own first value
            for m in range(pool):
                for n in range(pool):
                    best = np.maximum(best, x[:, :, stride * i + m, stride * j + n])
            y[:, :, i, j] = best
    return y
'''),
        "maxpool2d_forward": fill("maxpool2d_forward", '''\
    H_out, W_out = pool_output_size(x.shape[2], pool, stride), pool_output_size(x.shape[3], pool, stride)
    taps = np.stack([x[:, :, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride]
                     for m in range(pool) for n in range(pool)])
    return taps.max(axis=0)
'''),
        "maxpool2d_backward_naive": fill("maxpool2d_backward_naive", '''\
    B, C, H_out, W_out = dy.shape
    dx = np.zeros(x.shape, dtype=np.float64)          # accumulate in float64
    for b in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    best_r, best_c = stride * i, stride * j
                    for m in range(pool):           # row-major scan; only a strictly larger value wins
                        for n in range(pool):
                            r, q = stride * i + m, stride * j + n
                            if x[b, c, r, q] > x[b, c, best_r, best_c]:
                                best_r, best_c = r, q
                    dx[b, c, best_r, best_c] += float(dy[b, c, i, j])
    return dx.astype(x.dtype)
'''),
        "maxpool2d_backward": fill("maxpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    spans = [(slice(m, m + stride * (H_out - 1) + 1, stride), slice(n, n + stride * (W_out - 1) + 1, stride))
             for m in range(pool) for n in range(pool)]              # taps in row-major order
    taps = np.stack([x[:, :, rows, cols] for rows, cols in spans])
    winner = taps.argmax(axis=0)                                     # index of the first maximal tap
    dy64 = dy.astype(np.float64)
    dx = np.zeros(x.shape, dtype=np.float64)
    for t, (rows, cols) in enumerate(spans):
        dx[:, :, rows, cols] += np.where(winner == t, dy64, 0.0)
    return dx.astype(x.dtype)
'''),
        "avgpool2d_forward": _older_avgpool(POOL_SHAPES + '''\
    # separable window sums in float64: first the pool rows of every window, then its pool columns
    x64 = x.astype(np.float64)
    row_sums = np.zeros((B, C, H_out, W))
    for m in range(pool):
        row_sums += x64[:, :, m:m + stride * (H_out - 1) + 1:stride, :]
    sums = np.zeros((B, C, H_out, W_out))
    for n in range(pool):
        sums += row_sums[:, :, :, n:n + stride * (W_out - 1) + 1:stride]
    return (sums / (pool * pool)).astype(x.dtype)
'''),
        "avgpool2d_backward": fill("avgpool2d_backward", '''\
    H_out, W_out = dy.shape[2], dy.shape[3]
    i, j, m, n = np.ix_(np.arange(H_out), np.arange(W_out), np.arange(pool), np.arange(pool))
    rows, cols = stride * i + m, stride * j + n                      # (H_out, 1, pool, 1), (1, W_out, 1, pool)
    dx = np.zeros(x.shape, dtype=np.float64)
    share = dy.astype(np.float64)[:, :, :, :, None, None] / (pool * pool)
    np.add.at(dx, (slice(None), slice(None), rows, cols), share)   # scatter-add, repeats accumulate
    return dx.astype(x.dtype)
'''),
    },
}
STYLES = {
    "loops": "np.maximum / np.where, counting while-loop, 4-nested loops with .max() and argmax+unravel_index, "
             "tap loops with the pending mask, tap-loop sums in the input dtype",
    "windows": "x * (x > 0) (negatives become -0.0) and dy * mask, pool_output_size raises ValueError when "
               "pool > size, (i, j) loops vectorised over (b, c) with fancy-index +=, sliding_window_view max/mean, "
               "np.add.at scatter of argmax winners, separable einsum of 0/1 coverage matrices for avg backward",
    "float64_accumulate": "copy + boolean assignment, len(range(...)) size, running np.maximum over taps, scalar "
                          "strict-> scan, stacked-taps argmax with float64 accumulation, separable (rows then "
                          "columns) window sums in float64, np.add.at avg backward in float64, all cast back to x.dtype",
}
