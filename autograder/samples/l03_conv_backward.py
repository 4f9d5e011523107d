"""Sample submissions of lesson 03 with their exact expected scores (15 points in all).

Points: conv2d_forward 1, conv1d_backward 2, conv2d_backward_naive 3, rot180 1, dilate 1,
conv2d_dx_rotated 3, conv2d_backward 4. A stub that other stubs call (conv2d_forward, dilate) costs
the points of its callers too, as it would in a student's notebook.
"""
from autograder.grader.spec import Sample

LESSON = "03_conv_backward"

# The reference's conv2d_backward with the {placeholders} filled in: correct by default, one bug per sample.
_BACKWARD = '''def conv2d_backward(dy, x, w, stride=1, pad=0):
    B, C_out, H_out, W_out = dy.shape
    _, C_in, K_h, K_w = w.shape
    _, _, H, W = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K_h * K_w, B * H_out * W_out)
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(C_out, B * H_out * W_out)
    dw = {dw}
    dcols = (w.reshape(C_out, -1).T @ dy_mat).reshape(C_in, K_h, K_w, B, H_out, W_out)
    dx_pad = np.zeros((C_in, B, H + 2 * pad, W + 2 * pad), dtype={dtype})
    for m in range(K_h):
        for n in range(K_w):
            dx_pad[:, :, {rows}, {cols}] += dcols[:, m, n]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W].transpose(1, 0, 2, 3)
    return dx, dw, {db}
'''
_CORRECT = {"dw": "(dy_mat @ cols.T).reshape(w.shape)", "dtype": "dcols.dtype", "db": "dy.sum(axis=(0, 2, 3))",
            "rows": "m:m + stride * H_out:stride", "cols": "n:n + stride * W_out:stride"}


def _backward(**bug: str) -> str:
    return _BACKWARD.format(**(_CORRECT | bug))


# The rotated-kernel form without the rotation: dy convolved with w itself.
_DX_NOT_FLIPPED = '''def conv2d_dx_rotated(dy, w, x_shape, stride=1, pad=0):
    _, C_in, H, W = x_shape
    _, _, K_h, K_w = w.shape
    dy_full = np.pad(dilate(dy, stride), ((0, 0), (0, 0), (K_h - 1, K_h - 1), (K_w - 1, K_w - 1)))
    covered = conv2d_forward(dy_full, w.transpose(1, 0, 2, 3), np.zeros(C_in))
    dx_pad = np.zeros((dy.shape[0], C_in, H + 2 * pad, W + 2 * pad))
    dx_pad[:, :, :covered.shape[2], :covered.shape[3]] = covered
    return dx_pad[:, :, pad:pad + H, pad:pad + W]
'''

# The loops, returning dx_pad itself.
_NAIVE_NOT_CROPPED = '''def conv2d_backward_naive(dy, x, w, stride=1, pad=0):
    B, C_out, H_out, W_out = dy.shape
    _, _, K_h, K_w = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for b in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(stride * i, stride * i + K_h), slice(stride * j, stride * j + K_w)
                    dx_pad[b, :, rows, cols] += dy[b, co, i, j] * w[co]
                    dw[co] += dy[b, co, i, j] * x_pad[b, :, rows, cols]
    return dx_pad, dw, dy.sum(axis=(0, 2, 3))
'''

SAMPLES = {
    "full": Sample(base="solution", score=15),
    "blank": Sample(base="release", score=0),
    "kernel_not_flipped": Sample(base="solution", replace={"conv2d_dx_rotated": _DX_NOT_FLIPPED}, score=12,
                                 messages={"test_conv2d_dx_rotated": "kernel not flipped in dX"}),
    # col2im scattering with step 1: the same as forgetting to dilate dy.
    "stride_ignored_in_dx": Sample(base="solution", score=11,
                                   replace={"conv2d_backward": _backward(rows="m:m + H_out", cols="n:n + W_out")},
                                   messages={"test_conv2d_backward": "stride ignored in dX"}),
    # dilate() that inserts nothing: conv2d_dx_rotated, which calls it, loses its stride too.
    "no_dilation": Sample(base="solution", replace={"dilate": "def dilate(dy, stride):\n    return dy\n"}, score=11,
                          messages={"test_dilate": "nothing inserted",
                                    "test_conv2d_dx_rotated": "stride ignored in dX"}),
    "padding_not_cropped": Sample(base="solution", replace={"conv2d_backward_naive": _NAIVE_NOT_CROPPED}, score=12,
                                  messages={"test_conv2d_backward_naive": "padding not cropped"}),
    "db_wrong_axes": Sample(base="solution", replace={"conv2d_backward": _backward(db="dy.sum(axis=(2, 3))")},
                            score=11, messages={"test_conv2d_backward": "db summed over the wrong axes"}),
    "dw_transposed": Sample(base="solution", score=11, replace={"conv2d_backward": _backward(
        dw="(cols @ dy_mat.T).reshape(C_in, K_h, K_w, C_out).transpose(0, 3, 1, 2)")},
        messages={"test_conv2d_backward": "C_out and C_in axes swapped"}),
    "float64_gradients": Sample(base="solution", replace={"conv2d_backward": _backward(dtype="np.float64")},
                                score=11, messages={"test_conv2d_backward": "wrong dtype"}),
    # The "vectorized" backward just calls the loops: correct, but caught by the speed check's time limit.
    "backward_calls_naive": Sample(base="solution", score=11, replace={"conv2d_backward": (
        "def conv2d_backward(dy, x, w, stride=1, pad=0):\n"
        "    return conv2d_backward_naive(dy, x, w, stride=stride, pad=pad)\n")},
        messages={"test_conv2d_backward": "did not return within the time limit"}),
    # Lesson 01's forward not pasted: its own test and the rotated form that calls it fail.
    "forward_not_pasted": Sample(base="solution", score=11, replace={
        "conv2d_forward": "def conv2d_forward(x, w, b, stride=1, pad=0):\n    raise NotImplementedError()\n"},
        messages={"test_conv2d_forward": "not implemented",
                  "test_conv2d_dx_rotated": "a function it calls (conv2d_forward"}),
}
