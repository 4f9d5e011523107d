"""Sample submissions of lesson 05 with their exact expected scores (out of 10).

Points: conv1d_causal_forward 3, causality 1, conv1d_causal_backward 3, receptive_field 1,
tcn_block_forward 2. tcn_block_forward calls the student's own conv1d_causal_forward, so a forward
bug also costs the block's points, and its feedback says to fix the convolution first.
"""
from autograder.grader.spec import Sample

LESSON = "05_tcn"

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

SYMMETRIC_PADDING = _LOOP_FORWARD.format(
    padding="pad = (K - 1) * dilation\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad // 2, pad - pad // 2)))",
    window="t:t + pad + 1:dilation")
DILATION_IGNORED = _LOOP_FORWARD.format(
    padding="x_pad = np.pad(x, ((0, 0), (0, 0), (K - 1, 0)))", window="t:t + K")
KERNEL_REVERSED = _LOOP_FORWARD.format(
    padding="pad = (K - 1) * dilation\n    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))",
    window="t + pad - np.arange(K) * dilation")

DX_FROM_THE_PAST = '''def conv1d_causal_backward(dy, x, w, dilation=1):
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

RECEPTIVE_FIELD_PRODUCT = '''def receptive_field(kernel_size, dilations):
    return 1 + (kernel_size - 1) * int(np.prod(dilations))
'''

_BLOCK = '''def tcn_block_forward(x, params, dilation):
    hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"], dilation), 0)
    residual = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation)
    return {result}
'''
SKIP_WITHOUT_1X1 = _BLOCK.format(result="residual + x")
FINAL_RELU = _BLOCK.format(result='np.maximum(residual + (conv1d_causal_forward(x, params["w_skip"], params["b_skip"])\n'
                                  '                              if "w_skip" in params else x), 0)')

SAMPLES = {
    "full": Sample(base="solution", score=10),
    "blank": Sample(base="release", score=0,
                    messages={"test_conv1d_causal_forward": "not implemented yet",
                              "test_receptive_field": "not implemented yet"}),
    "symmetric_padding": Sample(replace={"conv1d_causal_forward": SYMMETRIC_PADDING}, score=4,
                                messages={"test_conv1d_causal_forward": "'same' padding",
                                          "test_conv1d_causal_forward_is_causal": "looks into the future",
                                          "test_tcn_block_forward": "fix conv1d_causal_forward first"}),
    "dilation_ignored": Sample(replace={"conv1d_causal_forward": DILATION_IGNORED}, score=5,
                               messages={"test_conv1d_causal_forward": "dilation ignored",
                                         "test_tcn_block_forward": "dilation ignored"}),
    "kernel_reversed": Sample(replace={"conv1d_causal_forward": KERNEL_REVERSED}, score=5,
                              messages={"test_conv1d_causal_forward": "kernel reversed",
                                        "test_tcn_block_forward": "fix conv1d_causal_forward first"}),
    "dx_from_the_past": Sample(replace={"conv1d_causal_backward": DX_FROM_THE_PAST}, score=7,
                               messages={"test_conv1d_causal_backward": "dx reads dy from the past"}),
    "receptive_field_product": Sample(replace={"receptive_field": RECEPTIVE_FIELD_PRODUCT}, score=9,
                                      messages={"test_receptive_field": "product of the dilations"}),
    "skip_without_1x1": Sample(replace={"tcn_block_forward": SKIP_WITHOUT_1X1}, score=8,
                               messages={"test_tcn_block_forward": "needs the 1x1 conv"}),
    "final_relu": Sample(replace={"tcn_block_forward": FINAL_RELU}, score=8,
                         messages={"test_tcn_block_forward": "ReLU applied after the sum"}),
}
