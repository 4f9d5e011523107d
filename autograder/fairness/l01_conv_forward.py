"""Independently written correct solutions of lesson 01, in several styles (fairness corpus)."""
from autograder.fairness.stubs import filler

LESSON = "01_conv_forward"
fill = filler(LESSON)

# The opening lines of a convolution written out by hand: alike in every student's code that has them.
CONV_SHAPES = '''\
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
'''

# The opening lines of the looped convolution, from the functions written above it.
NAIVE_SHAPES = '''\
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = conv_output_size(H, K_h, stride, pad)
    W_out = conv_output_size(W, K_w, stride, pad)
'''

VARIANTS = {
    "loops": {
        "conv_output_size": fill("conv_output_size", '''\
    padded = in_size + 2 * pad
    if kernel_size > padded:
        raise ValueError(f"a window of {kernel_size} does not fit in {padded} padded inputs")
    count = 0
    top = 0
    while top + kernel_size <= padded:     # window rows top .. top + kernel_size - 1 all exist
        count += 1
        top += stride
    return count
'''),
        "zero_pad": fill("zero_pad", '''\
    B, C, H, W = x.shape
    x_pad = np.zeros((B, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    return x_pad
'''),
        "conv_single_step": fill("conv_single_step", '''\
    return float(np.sum(x_patch * w)) + float(b)
'''),
        "conv2d_forward_naive": fill("conv2d_forward_naive", NAIVE_SHAPES + '''\
    x_pad = zero_pad(x, pad)
    y = np.zeros((B, C_out, H_out, W_out), dtype=np.result_type(x, w, b))
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = stride * i, stride * j
                    window = x_pad[bi, :, top:top + K_h, left:left + K_w]
                    y[bi, co, i, j] = conv_single_step(window, w[co], b[co])
    return y
'''),
        "conv2d_forward": fill("conv2d_forward", CONV_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    windows = windows[:, :, :H_out, :W_out]                       # (B, C_in, H_out, W_out, K_h, K_w)
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C_in * K_h * K_w, B * H_out * W_out)
    w_rows = w.astype(x.dtype).reshape(C_out, C_in * K_h * K_w)
    y_mat = w_rows @ cols + b.astype(x.dtype)[:, None]
    return y_mat.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3)
'''),
    },
    "einsum_windows": {
        "conv_output_size": fill("conv_output_size", '''\
    last_start = in_size + 2 * pad - kernel_size
    if last_start < 0:
        raise ValueError("the window does not fit in the padded input")
    return int(last_start // stride + 1)
'''),
        "zero_pad": fill("zero_pad", '''\
    if pad == 0:
        return x                                # nothing to add: the input itself
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant", constant_values=0)
'''),
        "conv_single_step": fill("conv_single_step", '''\
    return np.einsum("cmn,cmn->", x_patch, w) + b     # a numpy floating-point scalar
'''),
        "conv2d_forward_naive": fill("conv2d_forward_naive", '''\
    B = x.shape[0]
    C_out, _, K_h, K_w = w.shape
    H_out = conv_output_size(x.shape[2], K_h, stride, pad)
    W_out = conv_output_size(x.shape[3], K_w, stride, pad)
    x_pad = zero_pad(x, pad)
    y = np.empty((B, C_out, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):                      # loop over output pixels; batch and channels at once
        for j in range(W_out):
            window = x_pad[:, :, stride * i:stride * i + K_h, stride * j:stride * j + K_w]
            y[:, :, i, j] = np.einsum("bcmn,ocmn->bo", window, w) + b
    return y
'''),
        "conv2d_forward": fill("conv2d_forward", '''\
    K_h, K_w = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (K_h, K_w), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.einsum("bcijmn,ocmn->boij", windows, w.astype(x.dtype), optimize=True)
    return (y + b.astype(x.dtype)[None, :, None, None]).astype(x.dtype, copy=False)
'''),
    },
    "float64_accumulate": {
        "conv_output_size": fill("conv_output_size", '''\
    padded = in_size + 2 * pad
    if padded < kernel_size:
        raise ValueError(f"kernel_size={kernel_size} > in_size + 2 * pad = {padded}")
    return len(range(0, padded - kernel_size + 1, stride))     # the window starts 0, s, 2s, ...
'''),
        "zero_pad": fill("zero_pad", '''\
    B, C, H, W = x.shape
    side = np.zeros((B, C, H, pad), dtype=x.dtype)
    middle = np.concatenate([side, x, side], axis=3)
    cap = np.zeros((B, C, pad, W + 2 * pad), dtype=x.dtype)
    return np.concatenate([cap, middle, cap], axis=2)
'''),
        "conv_single_step": fill("conv_single_step", '''\
    products = np.asarray(x_patch, dtype=np.float64) * np.asarray(w, dtype=np.float64)
    return math.fsum(products.ravel().tolist() + [float(b)])    # exactly rounded float64 sum
''', before="import math\n\n\n"),
        "conv2d_forward_naive": fill("conv2d_forward_naive", NAIVE_SHAPES + '''\
    x_pad = zero_pad(x.astype(np.float64), pad)
    w64 = w.astype(np.float64).reshape(C_out, -1)
    b64 = np.asarray(b, dtype=np.float64)
    y = np.zeros((B, C_out, H_out, W_out))          # float64 accumulator and result
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[bi, :, i * stride:i * stride + K_h, j * stride:j * stride + K_w]
                    y[bi, co, i, j] = np.dot(window.ravel(), w64[co]) + b64[co]
    return y
'''),
        "conv2d_forward": fill("conv2d_forward", CONV_SHAPES + '''\
    x_pad = np.zeros((B, C_in, H + 2 * pad, W + 2 * pad), dtype=np.float64)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    sb, sc, sh, sw = x_pad.strides
    # cols6[ci, m, n, bi, i, j] = x_pad[bi, ci, stride*i + m, stride*j + n]
    cols6 = as_strided(x_pad, shape=(C_in, K_h, K_w, B, H_out, W_out),
                       strides=(sc, sh, sw, sb, stride * sh, stride * sw), writeable=False)
    cols = cols6.reshape(C_in * K_h * K_w, B * H_out * W_out)
    y_mat = w.astype(np.float64).reshape(C_out, -1) @ cols
    y_mat += np.asarray(b, dtype=np.float64).reshape(C_out, 1)
    y = y_mat.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3)
    return y.astype(x.dtype)
''').replace("import sliding_window_view", "import as_strided, sliding_window_view"),
    },
    "tap_accumulate": {
        "conv_output_size": fill("conv_output_size", '''\
    room = in_size + 2 * pad - kernel_size
    if room < 0:
        raise ValueError("window larger than the padded input")
    steps, _leftover = divmod(room, stride)
    return steps + 1
'''),
        "zero_pad": fill("zero_pad", '''\
    widths = [(0, 0), (0, 0), (pad, pad), (pad, pad)]
    return np.pad(x, widths)
'''),
        "conv_single_step": fill("conv_single_step", '''\
    total = np.dot(np.ravel(x_patch), np.ravel(w)) + b
    return np.asarray(total).item()
'''),
        "conv2d_forward_naive": fill("conv2d_forward_naive", NAIVE_SHAPES + '''\
    x_pad = zero_pad(x, pad)
    y = np.zeros((B, C_out, H_out, W_out), dtype=x.dtype)
    for bi in range(B):
        for i in range(H_out):
            for j in range(W_out):
                window = x_pad[bi, :, stride * i:stride * i + K_h, stride * j:stride * j + K_w]
                y[bi, :, i, j] = np.tensordot(w, window, axes=3) + b   # all output channels at once
    return y
'''),
        "conv2d_forward": fill("conv2d_forward", CONV_SHAPES + '''\
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w = w.astype(x.dtype)
    y = np.zeros((B, H_out, W_out, C_out), dtype=x.dtype)
    for m in range(K_h):                        # a loop over the K_h * K_w taps, not over pixels
        for n in range(K_w):
            tap = x_pad[:, :, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride]
            y += np.tensordot(tap, w[:, :, m, n], axes=([1], [1]))      # (B, H_out, W_out, C_out)
    y += b.astype(x.dtype)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
'''),
    },
}
STYLES = {
    "loops": "counting while-loop for the size, zeros+slice padding, 4 nested loops calling conv_single_step "
             "(result dtype = result_type(x, w, b)), im2col via sliding_window_view + transpose/reshape + matmul",
    "einsum_windows": "floor formula, np.pad (pad 0 returns x itself, no copy), conv_single_step returns a numpy "
                      "scalar (float32 for float32 inputs) via einsum, naive loops only over (i, j) with einsum, "
                      "einsum on sliding_window_view for the vectorized pass",
    "float64_accumulate": "len(range(...)) for the size, concatenate-built padding, math.fsum single step, naive "
                          "loops in float64 returning float64, as_strided im2col in float64 cast back to x.dtype",
    "tap_accumulate": "divmod size, np.pad, np.dot(...).item() single step, naive loops over (bi, i, j) with "
                      "tensordot over all channels, vectorized pass as K_h*K_w tap-by-tap tensordot accumulation "
                      "in x.dtype",
}
