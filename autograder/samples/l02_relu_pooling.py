"""Sample submissions for lesson 02 (ReLU and pooling), with their exact expected scores.

Points: relu_forward 1, relu_backward 2, pool_output_size 1, maxpool2d_forward_naive 2,
maxpool2d_forward 2, maxpool2d_backward_naive 3, maxpool2d_backward 3, avgpool2d_forward 2,
avgpool2d_backward 2; 18 in all. Each bug below is one a student really writes; it fails exactly
its own part, and the feedback must name it.
"""
from autograder.grader.spec import Sample

LESSON = "02_relu_pooling"

# Vectorized with fancy indexing: `dx[idx] += dy` is buffered, so when windows overlap and share
# a winner only the last window's gradient survives. Correct whenever stride >= pool.
MAX_BACKWARD_FANCY_INDEX = '''\
def maxpool2d_backward(dy, x, pool=2, stride=2):
    B, C, H_out, W_out = dy.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (pool, pool), axis=(2, 3))[:, :, ::stride, ::stride]
    k = windows.reshape(B, C, H_out, W_out, pool * pool).argmax(axis=-1)
    rows = stride * np.arange(H_out)[:, None] + k // pool
    cols = stride * np.arange(W_out) + k % pool
    dx = np.zeros_like(x)
    dx[np.arange(B)[:, None, None, None], np.arange(C)[:, None, None], rows, cols] += dy
    return dx
'''

# Splits the gradient of a tied window equally among its maxima (a valid subgradient, not our rule).
MAX_BACKWARD_NAIVE_SPLIT_TIES = '''\
def maxpool2d_backward_naive(dy, x, pool=2, stride=2):
    B, C, H_out, W_out = dy.shape
    dx = np.zeros_like(x)
    for b in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool]
                    is_max = window == window.max()
                    dx[b, c, stride * i:stride * i + pool, stride * j:stride * j + pool] += \\
                        dy[b, c, i, j] * is_max / is_max.sum()
    return dx
'''

# Spreads dy over the window but forgets to divide it by the window's pool**2 cells.
AVG_BACKWARD_NO_SCALE = '''\
def avgpool2d_backward(dy, x, pool=2, stride=2):
    H_out, W_out = dy.shape[2:]
    dx = np.zeros_like(x)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            dx[:, :, rows, cols] += dy
    return dx
'''

RELU_BACKWARD_MASK_FROM_DY = '''\
def relu_backward(dy, x):
    return np.where(dy > 0, dy, 0)
'''

RELU_BACKWARD_MASK_INCLUDES_ZERO = '''\
def relu_backward(dy, x):
    return dy * (x >= 0)
'''

# Loops over output pixels but starts window (i, j) at (i, j) instead of (stride * i, stride * j).
MAX_FORWARD_NAIVE_STRIDE_IGNORED = '''\
def maxpool2d_forward_naive(x, pool=2, stride=2):
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    y = np.zeros((B, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            y[:, :, i, j] = x[:, :, i:i + pool, j:j + pool].max(axis=(2, 3))
    return y
'''

SAMPLES = {
    "full": Sample(base="solution", score=18),
    "blank": Sample(base="release", score=0),
    "max_backward_overwrites_overlaps": Sample(
        base="solution", replace={"maxpool2d_backward": MAX_BACKWARD_FANCY_INDEX}, score=15,
        messages={"test_maxpool2d_backward": "overwrite each other's gradient"}),
    "max_backward_naive_splits_ties": Sample(
        base="solution", replace={"maxpool2d_backward_naive": MAX_BACKWARD_NAIVE_SPLIT_TIES}, score=15,
        messages={"test_maxpool2d_backward_naive": "split among them"}),
    "avg_backward_missing_scale": Sample(
        base="solution", replace={"avgpool2d_backward": AVG_BACKWARD_NO_SCALE}, score=16,
        messages={"test_avgpool2d_backward": "missing the 1/pool**2 factor"}),
    "relu_backward_mask_from_dy": Sample(
        base="solution", replace={"relu_backward": RELU_BACKWARD_MASK_FROM_DY}, score=16,
        messages={"test_relu_backward": "the mask uses dy > 0"}),
    "relu_backward_mask_includes_zero": Sample(
        base="solution", replace={"relu_backward": RELU_BACKWARD_MASK_INCLUDES_ZERO}, score=16,
        messages={"test_relu_backward": "the mask includes x == 0"}),
    "max_forward_naive_stride_ignored": Sample(
        base="solution", replace={"maxpool2d_forward_naive": MAX_FORWARD_NAIVE_STRIDE_IGNORED}, score=16,
        messages={"test_maxpool2d_forward_naive": "stride ignored"}),
}
