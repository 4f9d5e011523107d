"""Sample submissions for lesson 01 with their exact expected scores (points: conv_output_size 1,
zero_pad 1, conv_single_step 2, conv2d_forward_naive 3, conv2d_forward 3).

Each bug is written the way students write it; `messages` pins the feedback that must name it.
conv2d_forward_naive calls the student's conv_output_size, zero_pad and conv_single_step, so a bug
in one of those also costs the naive part.
"""
from autograder.grader.spec import Sample

LESSON = "01_conv_forward"

_STRIDE_IGNORED = '''\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))
    y = np.einsum("bchwmn,ocmn->bohw", windows, w)
    return (y + b[None, :, None, None]).astype(x.dtype)
'''

_PADDED_TWICE = '''\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(zero_pad(x, pad), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.einsum("bchwmn,ocmn->bohw", windows, w)
    return (y + b[None, :, None, None]).astype(x.dtype)
'''

_FLOAT64_OUTPUT = '''\
def conv2d_forward(x, w, b, stride=1, pad=0):
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((B, C_out, H_out, W_out))
    for m in range(K_h):          # a loop over kernel taps is fine: each step is one big operation
        for n in range(K_w):
            taps = x_pad[:, :, m:m + stride * H_out:stride, n:n + stride * W_out:stride]
            y += np.einsum("bchw,oc->bohw", taps, w[:, :, m, n])
    return y + b[None, :, None, None]
'''

_KERNEL_FLIPPED_NAIVE = '''\
def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = conv_output_size(H, K_h, stride, pad)
    W_out = conv_output_size(W, K_w, stride, pad)
    x_pad = zero_pad(x, pad)
    y = np.zeros((B, C_out, H_out, W_out))
    for n in range(B):
        for f in range(C_out):
            kernel = np.flip(w[f], axis=(1, 2))     # "convolution flips the kernel"
            for i in range(H_out):
                for j in range(W_out):
                    patch = x_pad[n, :, i * stride:i * stride + K_h, j * stride:j * stride + K_w]
                    y[n, f, i, j] = np.sum(patch * kernel) + b[f]
    return y
'''

SAMPLES = {
    "full": Sample(base="solution", score=10),
    "blank": Sample(base="release", score=0),
    "stride_ignored": Sample(base="solution", replace={"conv2d_forward": _STRIDE_IGNORED}, score=7,
                             messages={"test_conv2d_forward": "stride ignored"}),
    "padded_twice": Sample(base="solution", replace={"conv2d_forward": _PADDED_TWICE}, score=7,
                           messages={"test_conv2d_forward": "padding applied twice"}),
    "float64_output": Sample(base="solution", replace={"conv2d_forward": _FLOAT64_OUTPUT}, score=7,
                             messages={"test_conv2d_forward": "returned float64 for float32 input"}),
    # The "vectorized" forward just calls the loops: correct, but caught by the speed check's time limit.
    "forward_calls_naive": Sample(base="solution", score=7, replace={"conv2d_forward": (
        "def conv2d_forward(x, w, b, stride=1, pad=0):\n"
        "    return conv2d_forward_naive(x, w, b, stride=stride, pad=pad).astype(x.dtype)\n")},
        messages={"test_conv2d_forward": "did not return within the time limit"}),
    "kernel_flipped_naive": Sample(base="solution", replace={"conv2d_forward_naive": _KERNEL_FLIPPED_NAIVE},
                                   score=7, messages={"test_conv2d_forward_naive": "kernel flipped"}),
    "bias_missing_single_step": Sample(
        base="solution", replace={"conv_single_step": "def conv_single_step(x_patch, w, b):\n"
                                                      "    return float(np.sum(x_patch * w))\n"},
        score=5, messages={"test_conv_single_step": "bias missing", "test_conv2d_forward_naive": "bias missing"}),
    "size_off_by_one": Sample(
        base="solution", replace={"conv_output_size": "def conv_output_size(in_size, kernel_size, stride=1, pad=0):\n"
                                                      "    return (in_size + 2 * pad - kernel_size) // stride\n"},
        score=6, messages={"test_conv_output_size": "the + 1 is missing",
                           "test_conv2d_forward_naive": "off by one"}),
}
