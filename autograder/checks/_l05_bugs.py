"""Lesson 05's typical bugs as students write them, with the graded cells each must fail and the words
its feedback must contain (autograder.grader.bugs; BUGS is exported by autograder/checks/l05_tcn.py).

tcn_block_forward calls the student's own conv1d_causal_forward, so a forward bug also costs the
block's points, and its feedback says to fix the convolution first.
"""
from autograder.grader.bugs import Bug

_LOOP_FORWARD = '''def conv1d_causal_forward(x, w, b, dilation=1):
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    {padding}
    y = np.zeros((B, C_out, T), dtype=x.dtype)
    for t in range(T):
        window = x_pad[:, :, {window}]          # (B, C_in, K)
        y[:, :, t] = np.einsum("bik,oik->bo", window, w) + b
    return y
'''

_SYMMETRIC_PADDING = _LOOP_FORWARD.format(
    padding="pad = (K - 1) * dilation\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad // 2, pad - pad // 2)))",
    window="t:t + pad + 1:dilation")
_DILATION_IGNORED = _LOOP_FORWARD.format(
    padding="x_pad = np.pad(x, ((0, 0), (0, 0), (K - 1, 0)))", window="t:t + K")
_KERNEL_REVERSED = _LOOP_FORWARD.format(
    padding="pad = (K - 1) * dilation\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))",
    window="t + pad - np.arange(K) * dilation")

_DX_FROM_THE_PAST = '''def conv1d_causal_backward(dy, x, w, dilation=1):
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    pad = (K - 1) * dilation
    db = dy.sum(axis=(0, 2))
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (pad, 0)))      # padded like x: but the gradient needs the future
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for k in range(K):
        shift = (K - 1 - k) * dilation
        dw[:, :, k] = np.einsum("bot,bit->oi", dy, x_pad[:, :, pad - shift:pad - shift + T])
        dx += np.einsum("oi,bot->bit", w[:, :, k], dy_pad[:, :, pad - shift:pad - shift + T])
    return dx, dw, db
'''

_RECEPTIVE_FIELD_PRODUCT = '''def receptive_field(kernel_size, dilations):
    return 1 + (kernel_size - 1) * int(np.prod(dilations))
'''

_BLOCK = '''def tcn_block_forward(x, params, dilation):
    hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"], dilation), 0)
    residual = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation)
    return {result}
'''
_SKIP_WITHOUT_1X1 = _BLOCK.format(result="residual + x")
_FINAL_RELU = _BLOCK.format(result='np.maximum(residual + (conv1d_causal_forward(x, params["w_skip"], params["b_skip"])\n'
                                  '                              if "w_skip" in params else x), 0)')

_ONE_STEP_LATE = _LOOP_FORWARD.format(    # taps x[t-1-(K-1-k)*dilation]: the present is never read
    padding="pad = (K - 1) * dilation + 1\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))", window="t:t + pad:dilation")

_ONE_TAP_LATE = _LOOP_FORWARD.format(    # taps x[t-(K-k)*dilation]: (K-k) for (K-1-k), the present never read
    padding="pad = K * dilation\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))", window="t:t + pad:dilation")

_NO_PADDING = '''def conv1d_causal_forward(x, w, b, dilation=1):
    C_out, C_in, K = w.shape
    T_out = x.shape[-1] - (K - 1) * dilation          # "valid" convolution: no padding
    taps = np.stack([x[:, :, k * dilation:k * dilation + T_out] for k in range(K)], axis=-1)
    return np.einsum("bitk,oik->bot", taps, w) + b[:, None]
'''

_BLOCK_DILATIONS = '''def tcn_block_forward(x, params, dilation):
    hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"]{first}), 0)
    residual = conv1d_causal_forward(hidden, params["w2"], params["b2"]{second})
    skip = conv1d_causal_forward(x, params["w_skip"], params["b_skip"]) if "w_skip" in params else x
    return residual + skip
'''

BUGS = {
    "blank": Bug(base="release", fails_every=True, fails={"test_conv1d_causal_forward": "not implemented yet",
                                                          "test_receptive_field": "not implemented yet"}),
    "symmetric_padding": Bug({"conv1d_causal_forward": _SYMMETRIC_PADDING}, fails={
        "test_conv1d_causal_forward": "'same' padding", "test_conv1d_causal_forward_is_causal": "looks into the future",
        "test_tcn_block_forward": "fix conv1d_causal_forward first"}),
    "dilation_ignored": Bug({"conv1d_causal_forward": _DILATION_IGNORED}, fails={
        "test_conv1d_causal_forward": "dilation ignored",
        "test_tcn_block_forward": "dilation ignored"}),
    "kernel_reversed": Bug({"conv1d_causal_forward": _KERNEL_REVERSED}, fails={
        "test_conv1d_causal_forward": "kernel reversed",
        "test_tcn_block_forward": "fix conv1d_causal_forward first"}),
    "dx_from_the_past": Bug({"conv1d_causal_backward": _DX_FROM_THE_PAST},
                            fails={"test_conv1d_causal_backward": "dx reads dy from the past"}),
    "receptive_field_product": Bug({"receptive_field": _RECEPTIVE_FIELD_PRODUCT},
                                   fails={"test_receptive_field": "product of the dilations"}),
    "skip_without_1x1": Bug({"tcn_block_forward": _SKIP_WITHOUT_1X1},
                            fails={"test_tcn_block_forward": "needs the 1x1 conv"}),
    "final_relu": Bug({"tcn_block_forward": _FINAL_RELU}, fails={"test_tcn_block_forward": "ReLU applied after the sum"}),
    "one_step_late": Bug({"conv1d_causal_forward": _ONE_STEP_LATE}, fails={
        "test_conv1d_causal_forward": "one step late", "test_conv1d_causal_forward_is_causal": "current input",
        "test_tcn_block_forward": "fix conv1d_causal_forward first"}, shipped=False),
    "one_tap_late": Bug({"conv1d_causal_forward": _ONE_TAP_LATE}, fails={
        "test_conv1d_causal_forward": "never reads the current input",
        "test_conv1d_causal_forward_is_causal": "current input",
        "test_tcn_block_forward": "fix conv1d_causal_forward first"}, shipped=False),
    "no_padding": Bug({"conv1d_causal_forward": _NO_PADDING}, fails={
        "test_conv1d_causal_forward": "", "test_conv1d_causal_forward_is_causal": "shape",
        "test_tcn_block_forward": ""}, shipped=False),
    "block_first_conv_undilated": Bug({"tcn_block_forward": _BLOCK_DILATIONS.format(first="", second=", dilation")},
                                      fails={"test_tcn_block_forward": "the first convolution did not get"},
                                      shipped=False),
    "block_second_conv_undilated": Bug({"tcn_block_forward": _BLOCK_DILATIONS.format(first=", dilation", second="")},
                                       fails={"test_tcn_block_forward": "the second convolution did not get"},
                                       shipped=False),
    "block_convs_undilated": Bug({"tcn_block_forward": _BLOCK_DILATIONS.format(first="", second="")},
                                 fails={"test_tcn_block_forward": "dilation ignored in both convolutions"},
                                 shipped=False),
}
