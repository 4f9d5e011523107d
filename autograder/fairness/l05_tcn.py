"""Independently written correct solutions of lesson 05, in several styles (fairness corpus)."""
from autograder.fairness.stubs import filler

LESSON = "05_tcn"
fill = filler(LESSON)

# ---------------------------------------------------------------------------------------------
# Variant "index_gather": the notebook's recipe, an index array (K, T) into the padded signal,
# one matrix product; dx from the right-padded dy gathered the same way.
# ---------------------------------------------------------------------------------------------
_GATHER_FORWARD = fill("conv1d_causal_forward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    pad = (K - 1) * dilation
    x_pad = np.concatenate([np.zeros((B, C_in, pad), dtype=x.dtype), x], axis=2)
    index = np.arange(K)[:, None] * dilation + np.arange(T)[None, :]        # (K, T) padded positions
    columns = x_pad[:, :, index].reshape(B, C_in * K, T)                   # (B, C_in * K, T)
    y = w.reshape(C_out, C_in * K) @ columns                               # (B, C_out, T)
    return y + b[:, None]
''')

_GATHER_BACKWARD = fill("conv1d_causal_backward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    pad = (K - 1) * dilation
    past = np.arange(K)[:, None] * dilation + np.arange(T)[None, :]               # into the left-padded x
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))
    windows = x_pad[:, :, past]                                                   # (B, C_in, K, T)
    dw = np.einsum("bot,bckt->ock", dy, windows)
    db = dy.sum(axis=(0, 2))
    future = (K - 1 - np.arange(K))[:, None] * dilation + np.arange(T)[None, :]   # into the right-padded dy
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (0, pad)))
    dy_windows = dy_pad[:, :, future]                                             # (B, C_out, K, T)
    dx = np.einsum("ock,bokt->bct", w, dy_windows)
    return dx, dw, db
''')

_CLOSED_FORM_RF = fill("receptive_field", '''\
    return int(1 + (kernel_size - 1) * sum(int(d) for d in dilations))
''')

_BLOCK_KEY_TEST = fill("tcn_block_forward", '''\
    hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"], dilation), 0)
    residual = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation)
    if "w_skip" in params:
        return residual + conv1d_causal_forward(x, params["w_skip"], params["b_skip"], 1)
    return residual + x
''')

# ---------------------------------------------------------------------------------------------
# Variant "tap_loop": one shifted slice per kernel tap (a loop over K, never over t).
# ---------------------------------------------------------------------------------------------
_TAP_FORWARD = fill("conv1d_causal_forward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    y = np.zeros((B, C_out, T), dtype=np.result_type(x, w, b))
    for k in range(K):
        lag = (K - 1 - k) * dilation          # tap k reads x[t - lag]
        if lag >= T:                          # reads only the zeros before t = 0
            continue
        y[:, :, lag:] += np.einsum("oc,bct->bot", w[:, :, k], x[:, :, :T - lag])
    y += b[None, :, None]
    return y
''')

_TAP_BACKWARD = fill("conv1d_causal_backward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    dx = np.zeros(x.shape, dtype=np.result_type(dy, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
    for k in range(K):
        lag = (K - 1 - k) * dilation
        if lag >= T:                          # this tap only ever saw padding: no gradient
            continue
        dx[:, :, :T - lag] += np.einsum("oc,bot->bct", w[:, :, k], dy[:, :, lag:])
        dw[:, :, k] = np.einsum("bot,bct->oc", dy[:, :, lag:], x[:, :, :T - lag])
    db = np.sum(dy, axis=(0, 2))
    return dx, dw, db
''')

_LOOP_RF = fill("receptive_field", '''\
    oldest_lag = 0
    for d in dilations:                       # each layer reaches (K - 1) * d further back
        oldest_lag += (int(kernel_size) - 1) * int(d)
    return oldest_lag + 1
''')

_BLOCK_SHAPE_TEST = fill("tcn_block_forward", '''\
    c_in, c_out = x.shape[1], params["w1"].shape[0]
    pre = conv1d_causal_forward(x, params["w1"], params["b1"], dilation=dilation)
    hidden = np.where(pre > 0, pre, 0.0)
    y = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation=dilation)
    if c_in != c_out:
        skip = conv1d_causal_forward(x, params["w_skip"], params["b_skip"], dilation=dilation)
    else:
        skip = x
    return y + skip
''')

# ---------------------------------------------------------------------------------------------
# Variant "windows_float64": sliding_window_view over the left-padded signal, every dilation-th
# column of each window, tensordot accumulated in float64, then cast back to the input dtype.
# ---------------------------------------------------------------------------------------------
_WINDOWS_FORWARD = fill("conv1d_causal_forward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    span = (K - 1) * dilation + 1
    x_pad = np.zeros((B, C_in, T + span - 1), dtype=np.float64)
    x_pad[:, :, span - 1:] = x
    taps = sliding_window_view(x_pad, span, axis=2)[..., ::dilation]   # (B, C_in, T, K): x[t - (K-1-k) d]
    y = np.tensordot(taps, w.astype(np.float64), axes=([1, 3], [1, 2]))  # (B, T, C_out)
    y = y.transpose(0, 2, 1) + np.asarray(b, dtype=np.float64)[None, :, None]
    return y.astype(np.result_type(x, w, b), copy=False)
''', before="from numpy.lib.stride_tricks import sliding_window_view\n\n\n")

_WINDOWS_BACKWARD = fill("conv1d_causal_backward", '''\
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    span = (K - 1) * dilation + 1
    dy64 = np.asarray(dy, dtype=np.float64)
    x_pad = np.zeros((B, C_in, T + span - 1))
    x_pad[:, :, span - 1:] = x
    past = sliding_window_view(x_pad, span, axis=2)[..., ::dilation]       # (B, C_in, T, K)
    dw = np.tensordot(dy64, past, axes=([0, 2], [0, 2]))                   # (C_out, C_in, K)
    dy_pad = np.zeros((B, C_out, T + span - 1))
    dy_pad[:, :, :T] = dy64
    future = sliding_window_view(dy_pad, span, axis=2)[..., ::dilation]    # (B, C_out, T, J): dy[s + j d]
    # tap k reaches dy[s + (K-1-k) d], i.e. j = K-1-k: reverse the kernel's tap axis
    dx = np.tensordot(future, w[:, :, ::-1].astype(np.float64), axes=([1, 3], [0, 2]))   # (B, T, C_in)
    dx = dx.transpose(0, 2, 1)
    db = dy64.sum(axis=(0, 2))
    return (dx.astype(np.result_type(dy, w), copy=False), dw.astype(np.result_type(dy, x), copy=False),
            db.astype(np.asarray(dy).dtype, copy=False))
''', before="from numpy.lib.stride_tricks import sliding_window_view\n\n\n")

_NUMPY_RF = fill("receptive_field", '''\
    reach = (kernel_size - 1) * np.asarray(dilations, dtype=np.int64).sum()
    return 1 + reach                          # a numpy integer (np.int64)
''')

_BLOCK_EINSUM_SKIP = fill("tcn_block_forward", '''\
    hidden = conv1d_causal_forward(x, params["w1"], params["b1"], dilation)
    hidden *= hidden > 0
    out = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation)
    w_skip = params.get("w_skip")
    if w_skip is None:
        return out + x
    # a 1x1 causal convolution is a linear map of the channels at every time step
    return out + np.einsum("oc,bct->bot", w_skip[:, :, 0], x) + params["b_skip"][None, :, None]
''')

VARIANTS = {
    "index_gather": {
        "conv1d_causal_forward": _GATHER_FORWARD,
        "conv1d_causal_backward": _GATHER_BACKWARD,
        "receptive_field": _CLOSED_FORM_RF,
        "tcn_block_forward": _BLOCK_KEY_TEST,
    },
    "tap_loop": {
        "conv1d_causal_forward": _TAP_FORWARD,
        "conv1d_causal_backward": _TAP_BACKWARD,
        "receptive_field": _LOOP_RF,
        "tcn_block_forward": _BLOCK_SHAPE_TEST,
    },
    "windows_float64": {
        "conv1d_causal_forward": _WINDOWS_FORWARD,
        "conv1d_causal_backward": _WINDOWS_BACKWARD,
        "receptive_field": _NUMPY_RF,
        "tcn_block_forward": _BLOCK_EINSUM_SKIP,
    },
}

STYLES = {
    "index_gather": "(K, T) index array into the left-padded x and one matmul (the notebook's recipe); dx from "
                    "the right-padded dy gathered the same way; closed-form R as a Python int; skip chosen by "
                    "'w_skip' in params",
    "tap_loop": "loop over the K taps only, shifted slices + einsum, taps reaching before t = 0 skipped; R by a "
                "Python loop; skip chosen by comparing C_in with C_out, skip conv with the block's dilation",
    "windows_float64": "sliding_window_view over the padded signal, every dilation-th window column, tensordot in "
                       "float64 cast back to the input dtype; dx with the tap-reversed kernel; R returned as "
                       "np.int64; 1x1 skip conv as a channel einsum, skip chosen by params.get('w_skip')",
}
