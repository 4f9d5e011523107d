# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 05: temporal convolutional networks
#
# A sequence (a sensor reading, an audio signal, a price) is an image with one row. This lesson turns
# the 2-D convolution of lessons 01–03 into the building block of **temporal convolutional networks**
# (TCNs): a 1-D convolution that is
#
# - **causal**: the output at time $t$ uses inputs up to time $t$ only, so the network can forecast;
# - **dilated**: its taps are `dilation` steps apart, so a few layers see a long history.
#
# You will implement the forward and backward pass, the receptive field of a stack, and a residual
# TCN block, then train a small TCN to forecast a noisy signal and compare it with a stack of the
# same depth without dilation.
#
# Answers are judged as lesson 01 explains: array arguments left unchanged, whole numbers exact,
# floating-point results within the rounding error of a correct computation (`convlab.tolerance`).
#
# Shapes follow lessons 01–03 with the image axes replaced by one time axis: `x` is `(B, C_in, T)`,
# the kernel `w` is `(C_out, C_in, K)`, the bias `b` is `(C_out,)`, and the output `y` is `(B, C_out, T)`.

# %% tags=["reference"]
import numpy as np

# %%
import matplotlib.pyplot as plt

from convlab import FAST
from convlab.expect import CheckFailed, expect_close, expect_equal, expect_implemented, expect_shape
from convlab.gradcheck import gradient_check, numerical_gradient_array
from convlab.sequences import multi_sine_forecasting
from convlab.widgets.dilation import dilation_pyramid

AXES = ("batch", "channels", "time")   # axis names for the shape messages of (B, C, T) arrays
LONG_HISTORY = ("a tap whose shift (K-1-k)*dilation is >= T reads only the zeros before t = 0: skip it or clip "
                "its slice (x[..., :T - shift] with shift > T is not empty, it drops entries from the end)")


def expect_implemented_or_hint(hint, func, *args, **kwargs):
    """expect_implemented(func, *args, **kwargs), with `hint` added when func raised an error."""
    try:
        return expect_implemented(func, *args, **kwargs)
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}: {hint}" if " raised " in str(failure) else str(failure)) from None


# Section 2's hand example, K = 2, w = [1, 10]: y[t] = 10 * x[t] + 1 * x[t - dilation] + 0.5, x = 0 before t = 0.
HAND = {"x": np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), "w": np.array([[[1.0, 10.0]]]), "b": np.array([0.5])}
HAND_Y = {1: [[[10.5, 21.5, 32.5, 43.5, 54.5]]], 2: [[[10.5, 20.5, 31.5, 42.5, 53.5]]]}


def forward_first(hint=None):
    """`hint`, led by a warning if conv1d_causal_forward gets the hand example wrong: the checks after
    section 2 are built on it (the numerical gradients differentiate it, the block calls it)."""
    try:
        right = all(np.allclose(conv1d_causal_forward(HAND["x"], HAND["w"], HAND["b"], dilation=d), y)
                    for d, y in HAND_Y.items())
    except Exception:  # noqa: BLE001 - a forward that raises is as wrong as one that miscomputes
        right = False
    if right:
        return hint
    first = ("this check is built on your conv1d_causal_forward, which gets section 2's hand example wrong: "
             "fix it first")
    return f"{first}; then: {hint}" if hint else first

# %% [markdown]
# ## 1. From 2-D to 1-D convolution
#
# Lesson 01's convolution with stride 1 (a cross-correlation, as in every deep-learning library) reads
#
# $$y[bi, co, i, j] = b[co] + \sum_{ci=0}^{C_{in}-1} \sum_{k_h=0}^{K_h-1} \sum_{k_w=0}^{K_w-1}
#   w[co, ci, k_h, k_w]\; x_{pad}[bi, ci, i + k_h, j + k_w].$$
#
# A sequence is an image of height $H = 1$ with a kernel of height $K_h = 1$: the only row is $i = 0$,
# the only kernel row is $k_h = 0$, and the sum over $k_h$ disappears. Renaming the column $j$ to the time
# $t$ and $k_w$ to $k$, $K_w$ to $K$:
#
# $$y[bi, co, t] = b[co] + \sum_{ci=0}^{C_{in}-1} \sum_{k=0}^{K-1} w[co, ci, k]\; x_{pad}[bi, ci, t + k].$$
#
# With `pad` zeros on each side the output has length $T + 2\,\text{pad} - K + 1$, exactly as in 2-D.

# %% [markdown]
# ## 2. Causal padding and dilation
#
# **Causal.** A forecaster may not peek: $y[\dots, t]$ must depend on $x[\dots, t']$ for $t' \le t$ only.
# Pad $P$ zeros on the **left** and none on the right, so $x_{pad}[\dots, t + k] = x[\dots, t + k - P]$.
# The newest input tap $k = K-1$ reads is $t + K - 1 - P$, which is $\le t$ exactly when $P \ge K - 1$;
# and the output length $T + P - K + 1$ equals $T$ exactly when $P = K - 1$. So $P = K - 1$, on the left.
# ('same' padding, $(K-1)/2$ on each side, keeps the length too, but lets $y[t]$ see $(K-1)/2$ future steps.)
#
# **Dilated.** Spread the $K$ taps `dilation` steps apart: tap $k$ reads $x_{pad}[\dots, t + k\cdot\text{dilation}]$,
# and the kernel now spans $(K-1)\cdot\text{dilation} + 1$ steps, so the causal left padding becomes
# $\text{pad} = (K-1)\cdot\text{dilation}$. Substituting $x_{pad}[t + k\cdot\text{dilation}] = x[t + k\cdot\text{dilation} - \text{pad}]$:
#
# $$\boxed{\;y[bi, co, t] = b[co] + \sum_{ci=0}^{C_{in}-1} \sum_{k=0}^{K-1} w[co, ci, k]\;
#   x[bi, ci,\; t - (K-1-k)\cdot\text{dilation}]\;}\qquad x[\dots, t'] = 0 \text{ for } t' < 0.$$
#
# Tap $k = K-1$ multiplies the current input $x[t]$; tap $k = 0$ the oldest, $(K-1)\cdot\text{dilation}$ steps back.
#
# **Vectorising** (as with im2col in lesson 01): gather, for every tap `k` and time `t`, the padded index
# `t + k * dilation` into an index array of shape `(K, T)`; `x_pad[:, :, index]` is then `(B, C_in, K, T)`,
# and one matrix product with `w` reshaped to `(C_out, C_in * K)` does all the sums. No Python loop over
# `t` is needed.

# %% nbgrader={"grade": false, "grade_id": "conv1d_causal_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv1d_causal_forward(x, w, b, dilation=1):
    """Causal dilated 1-D convolution (a cross-correlation, like lesson 01), stride 1, output as long as x.

    x (B, C_in, T), w (C_out, C_in, K), b (C_out,), dilation an int >= 1  ->  y (B, C_out, T) with
    y[bi, co, t] = b[co] + sum_ci sum_k w[co, ci, k] * x[bi, ci, t - (K-1-k)*dilation], x = 0 before t = 0.
    A tap's shift (K-1-k)*dilation may exceed T: such a tap reads only zeros.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    pad = (K - 1) * dilation
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))                  # zeros on the left only: causal
    t_pad = np.arange(K)[:, None] * dilation + np.arange(T)        # (K, T): x_pad index read by tap k at time t
    windows = x_pad[:, :, t_pad].reshape(B, C_in * K, T)           # rows ordered (ci, k), like w's last two axes
    return w.reshape(C_out, C_in * K) @ windows + b[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv1d_causal_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# The hand example (HAND, set up above): K = 2, w = [1, 10], so y[t] = 10 * x[t] + 1 * x[t - dilation] + 0.5.
x, w, b = HAND["x"], HAND["w"], HAND["b"]
y = expect_implemented(conv1d_causal_forward, x, w, b)
expect_shape(y, (1, 1, 5), "y", axes=AXES, hint="a causal convolution keeps the length T")
expect_close(y, HAND_Y[1], "y for dilation=1", hint="y[t] = 10*x[t] + x[t-1] + 0.5, and x[-1] = 0")
expect_close(expect_implemented(conv1d_causal_forward, x, w, b, dilation=2), HAND_Y[2], "y for dilation=2",
             hint="y[t] = 10*x[t] + x[t-2] + 0.5: pad (K - 1) * dilation zeros on the left")
# A history longer than the sequence: tap 0 reaches 7 steps back, past the start of all T = 5 inputs.
expect_close(expect_implemented_or_hint(LONG_HISTORY, conv1d_causal_forward, x, w, b, dilation=7),
             [[[10.5, 20.5, 30.5, 40.5, 50.5]]], "y for dilation=7 > T = 5",
             hint="y[t] = 10*x[t] + x[t-7] + 0.5 with x[t-7] = 0 for every t: " + LONG_HISTORY)

# Channels: the output sums over input channels and keeps output channels apart.
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((2, 3, 12)), rng.standard_normal((4, 3, 3)), rng.standard_normal(4)
y = expect_implemented(conv1d_causal_forward, x, w, b, dilation=3)
expect_shape(y, (2, 4, 12), "y", axes=AXES)
per_channel = sum(conv1d_causal_forward(x[:, ci:ci + 1], w[:, ci:ci + 1], np.zeros(4), dilation=3) for ci in range(3))
# Each output sums C_in * K = 9 products and the bias; its rounding scale is the same conv of |x|, |w|, |b|.
magnitude = conv1d_causal_forward(np.abs(x), np.abs(w), np.abs(b), dilation=3)
expect_close(y, per_channel + b[:, None], "y", axes=AXES, hint="y must be the sum over input channels ci plus b[co]",
             magnitude=magnitude, terms=10)
expect_close(y[:, 1:2], conv1d_causal_forward(x, w[1:2], b[1:2], dilation=3), "output channel 1", axes=AXES,
             hint="output channel co uses only w[co] and b[co]", magnitude=magnitude[:, 1:2], terms=10)
print("conv1d_causal_forward passes the visible tests")

# %% [markdown]
# Causality is a property you can test without knowing any output: change the inputs after some time
# `t0`, and the outputs up to `t0` must not move, while the output at `t0 + 1` (which reads the changed
# $x[t_0 + 1]$ through tap $K-1$) must.

# %% nbgrader={"grade": true, "grade_id": "test_conv1d_causal_forward_is_causal", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
rng = np.random.default_rng(1)
x, w, b = rng.standard_normal((1, 2, 20)), rng.standard_normal((3, 2, 3)), rng.standard_normal(3)
x_changed = x.copy()
x_changed[:, :, 11:] = rng.standard_normal((1, 2, 9))          # a different future after t0 = 10
for dilation in (1, 2, 4):
    y = expect_implemented(conv1d_causal_forward, x, w, b, dilation=dilation)
    y_changed = conv1d_causal_forward(x_changed, w, b, dilation=dilation)
    expect_close(y_changed[:, :, :11], y[:, :, :11], f"y up to t0 = 10 (dilation={dilation})",
                 hint="changing inputs after t0 must not change outputs up to t0: pad on the left only",
                 magnitude=2 * conv1d_causal_forward(np.abs(x), np.abs(w), np.abs(b), dilation)[:, :, :11], terms=7)
    if np.allclose(y_changed[:, :, 11], y[:, :, 11]):
        raise CheckFailed("y[11] did not change when x[11] changed: y[t] must use the current input x[t] (tap k = K-1)")
print("conv1d_causal_forward is causal")

# %% [markdown]
# ## 3. The backward pass
#
# Given the upstream gradient `dy` $= \partial L / \partial y$ (shape `(B, C_out, T)`), the chain rule
# through the boxed formula gives, exactly as in lesson 03:
#
# $$db[co] = \sum_{bi}\sum_{t} dy[bi, co, t], \qquad
#   dw[co, ci, k] = \sum_{bi}\sum_{t} dy[bi, co, t]\; x[bi, ci, t - (K-1-k)\cdot\text{dilation}].$$
#
# For `dx`, ask which outputs input $x[bi, ci, s]$ feeds: $y[bi, co, t]$ with $t - (K-1-k)\cdot\text{dilation} = s$,
# that is $t = s + (K-1-k)\cdot\text{dilation}$, for every `co` and `k` (while $t < T$):
#
# $$dx[bi, ci, s] = \sum_{co=0}^{C_{out}-1} \sum_{k=0}^{K-1} w[co, ci, k]\; dy[bi, co,\; s + (K-1-k)\cdot\text{dilation}],
#   \qquad dy[\dots, t] = 0 \text{ for } t \ge T.$$
#
# The forward pass looks into the past; its gradient looks into the **future**: pad `dy` with
# $(K-1)\cdot\text{dilation}$ zeros on the **right**. This is the 1-D form of lesson 03's "full
# convolution with the rotated kernel". The same index-array trick vectorises `dw` (the forward's windows
# of `x`) and `dx` (windows of the right-padded `dy`).

# %% nbgrader={"grade": false, "grade_id": "conv1d_causal_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv1d_causal_backward(dy, x, w, dilation=1):
    """Gradients of conv1d_causal_forward(x, w, b, dilation).

    dy (B, C_out, T) = dL/dy, x (B, C_in, T) and w (C_out, C_in, K) as in the forward pass (a tap's
    shift (K-1-k)*dilation may exceed T)  ->  dx (B, C_in, T), dw (C_out, C_in, K), db (C_out,).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C_in, T = x.shape
    C_out, _, K = w.shape
    pad = (K - 1) * dilation
    db = dy.sum(axis=(0, 2))
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, 0)))
    t_pad = np.arange(K)[:, None] * dilation + np.arange(T)                # x[t - (K-1-k)*dilation], as in the forward
    windows = x_pad[:, :, t_pad].reshape(B, C_in * K, T)
    dw = np.einsum("bot,bjt->oj", dy, windows).reshape(C_out, C_in, K)     # j runs over (ci, k)
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (0, pad)))                       # the gradient looks into the future
    s_pad = (K - 1 - np.arange(K))[:, None] * dilation + np.arange(T)      # dy[s + (K-1-k)*dilation]
    dy_windows = dy_pad[:, :, s_pad].reshape(B, C_out * K, T)             # rows ordered (co, k)
    dx = w.transpose(1, 0, 2).reshape(C_in, C_out * K) @ dy_windows
    return dx, dw, db
    ### END SOLUTION


# %% [markdown]
# The gradient check compares your gradients with central differences (`convlab.gradcheck`). The
# convolution is linear in `x`, `w` and `b`, so central differences have no truncation error here: a
# correct gradient agrees to rounding, a relative error around $10^{-10}$. The tolerance is $10^{-7}$;
# a wrong index gives errors of order 1.

# %% nbgrader={"grade": true, "grade_id": "test_conv1d_causal_backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
rng = np.random.default_rng(2)
# the second reaches back 5 of T = 7 steps; the third 6 > T = 5 (tap 0's shift exceeds T: its dw is 0)
for B, C_in, C_out, T, K, dilation in [(2, 3, 2, 10, 3, 2), (1, 2, 3, 7, 2, 5), (2, 2, 3, 5, 3, 3)]:
    x, w, b = rng.standard_normal((B, C_in, T)), rng.standard_normal((C_out, C_in, K)), rng.standard_normal(C_out)
    dy = rng.standard_normal((B, C_out, T))
    grads = expect_implemented_or_hint(LONG_HISTORY, conv1d_causal_backward, dy, x, w, dilation=dilation)
    assert isinstance(grads, tuple) and len(grads) == 3, "conv1d_causal_backward must return (dx, dw, db)"
    dx, dw, db = grads
    expect_shape(dx, x.shape, "dx", axes=AXES)
    expect_shape(dw, w.shape, "dw")
    expect_shape(db, b.shape, "db")
    where = f"(K={K}, dilation={dilation})"
    long_history = LONG_HISTORY if (K - 1) * dilation >= T else None
    gradient_check(dx, numerical_gradient_array(lambda v: conv1d_causal_forward(v, w, b, dilation), x, dy),
                   f"dx {where}", tol=1e-7, hint=lambda: forward_first(long_history))
    gradient_check(dw, numerical_gradient_array(lambda v: conv1d_causal_forward(x, v, b, dilation), w, dy),
                   f"dw {where}", tol=1e-7, hint=lambda: forward_first(long_history))
    gradient_check(db, numerical_gradient_array(lambda v: conv1d_causal_forward(x, w, v, dilation), b, dy),
                   f"db {where}", tol=1e-7, hint=forward_first)
print("conv1d_causal_backward passes the gradient checks")

# %% [markdown]
# ## 4. The receptive field of a stack
#
# One causal layer with kernel size $K$ and dilation $d$ lets $y[t]$ see $x[t - (K-1)\,d], \dots, x[t]$:
# $(K-1)\,d + 1$ inputs. Stack $L$ layers with dilations $d_1, \dots, d_L$ (`dilations[l-1]` in code, the
# same `kernel_size` $= K$ everywhere). The newest input any output reaches is always $x[t]$ (every tap
# $K-1$ looks at the current step). The oldest: layer $L$ reaches back $(K-1)\,d_L$ steps into layer
# $L-1$, which reaches back $(K-1)\,d_{L-1}$ further, and so on. The reaches **add**:
#
# $$\boxed{\;R = 1 + (\mathrm{kernel\_size} - 1) \sum_{l=1}^{L} d_l\;}$$
#
# **Why dilations 1, 2, 4, 8, …** A plain stack ($d_l = 1$) grows linearly, $R = 1 + (K-1)\,L$.
# Doubling dilations give $\sum_{l=1}^{L} 2^{l-1} = 2^L - 1$, so $R = 1 + (K-1)(2^L - 1)$: exponential in
# depth. With $K = 3$:
#
# | layers $L$ | plain $d_l = 1$ | $d_l = 2^{l-1}$ |
# |---|---|---|
# | 4 | 9 | 31 |
# | 6 | 13 | 127 |
# | 8 | 17 | 511 |
#
# A history of 500 steps needs 8 dilated layers, or 250 plain ones. And no step in the window is skipped:
# with $K \ge 2$ the offsets $\sum_l k_l\, 2^{l-1}$ hit every lag from 0 to $R-1$ (binary numbers). Grow the
# dilations faster than the kernel can fill (say $K = 2$ and $d_l = 3^{l-1}$) and the window gets holes:
# the widget below shows them.

# %% nbgrader={"grade": false, "grade_id": "receptive_field", "locked": false, "schema_version": 3, "solution": true, "task": false}
def receptive_field(kernel_size, dilations):
    """Receptive field R of a stack of causal convolutions: y[t] depends on x[t - R + 1], ..., x[t].

    kernel_size: int K >= 1, the same in every layer; dilations: sequence of ints, one per layer
    (empty for no layers)  ->  R, an int.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return 1 + (kernel_size - 1) * int(sum(dilations))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_receptive_field", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
R = expect_implemented(receptive_field, 3, [1, 2, 4, 8])
assert isinstance(R, (int, np.integer)), f"receptive_field should return an int, got {type(R).__name__}"
expect_equal(R, 31, "receptive_field(3, [1, 2, 4, 8])", hint="see the table above")
expect_equal(receptive_field(3, [1, 1, 1, 1]), 9, "receptive_field(3, [1, 1, 1, 1])")
expect_equal(receptive_field(1, [1, 2, 4]), 1, "receptive_field(1, [1, 2, 4])", hint="a 1x1 kernel sees only x[t]")
print("receptive_field passes the visible tests")

# %% [markdown]
# ## 5. The dilation pyramid
#
# Pick a kernel size, a depth and a dilation schedule, and an output time. The highlighted units are
# the ones that reach that output, with the connections they use; the widget prints the receptive field
# from **your** `receptive_field` (or its own count by walking the graph, until you have implemented it)
# and warns if the two disagree. Try `K = 2` with growth 3 to see holes, and an early output time to
# see the window run into the zero padding.

# %%
dilation_pyramid(receptive_field)

# %% [markdown]
# ## 6. A residual TCN block
#
# A TCN stacks **residual blocks** (Bai, Kolter and Koltun, 2018). Ours is
#
# $$\text{hidden} = \mathrm{ReLU}\big(\text{conv}(x;\ w1, b1, \text{dilation})\big), \qquad
#   y = \text{conv}(\text{hidden};\ w2, b2, \text{dilation}) + \text{skip}(x),$$
#
# with both convolutions causal, so the block is causal, with receptive field $1 + 2(K-1)\cdot\text{dilation}$.
# The skip path lets the block learn a correction to its input (and lets gradients reach early layers
# unchanged). When the channels change, $x$ (`C_in` channels) cannot be added to the `C_out` channels of
# the residual, so the skip path is a **1×1 convolution** ($K = 1$: a linear map of the channels at each
# time step), $\text{skip}(x) = \text{conv}(x;\ w\_skip, b\_skip)$; otherwise $\text{skip}(x) = x$.
# (The original TCN also applies a ReLU after the sum, and weight normalisation and dropout: we leave them out.)
#
# `params` holds the arrays: `w1` `(C_out, C_in, K)`, `b1` `(C_out,)`, `w2` `(C_out, C_out, K)`,
# `b2` `(C_out,)`, and, exactly when `C_in != C_out`, `w_skip` `(C_out, C_in, 1)` and `b_skip` `(C_out,)`.
# Use your `conv1d_causal_forward` for all three convolutions.

# %% nbgrader={"grade": false, "grade_id": "tcn_block_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tcn_block_forward(x, params, dilation):
    """Residual TCN block: y = conv(ReLU(conv(x; w1, b1)); w2, b2) + skip(x), both convs causal with `dilation`.

    x (B, C_in, T), params a dict of arrays: w1 (C_out, C_in, K), b1 (C_out,), w2 (C_out, C_out, K),
    b2 (C_out,), and when C_in != C_out also w_skip (C_out, C_in, 1), b_skip (C_out,) for the 1x1 skip
    conv (without them the skip is the identity); dilation an int >= 1, (K-1)*dilation may exceed T
    ->  y (B, C_out, T).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"], dilation), 0)
    residual = conv1d_causal_forward(hidden, params["w2"], params["b2"], dilation)
    skip = conv1d_causal_forward(x, params["w_skip"], params["b_skip"]) if "w_skip" in params else x
    return residual + skip
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_tcn_block_forward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
rng = np.random.default_rng(3)
x = rng.standard_normal((2, 4, 16))
params = {"w1": rng.standard_normal((4, 4, 3)), "b1": rng.standard_normal(4),
          "w2": rng.standard_normal((4, 4, 3)), "b2": rng.standard_normal(4)}
y = expect_implemented(tcn_block_forward, x, params, 2)
expect_shape(y, (2, 4, 16), "y", axes=AXES)
silent = dict(params, w2=np.zeros((4, 4, 3)), b2=np.zeros(4))     # the residual branch outputs 0
expect_close(tcn_block_forward(x, silent, 2), x, "y with w2 = 0, b2 = 0", axes=AXES,
             hint=forward_first("with a silent residual branch the block must return its input (the skip path)"))
dead = dict(params, w1=np.zeros((4, 4, 3)), b1=-np.ones(4))      # ReLU(-1) = 0: the second conv sees zeros
expect_close(tcn_block_forward(x, dead, 2), x + params["b2"][:, None], "y with a dead hidden layer", axes=AXES,
             hint=forward_first("conv -> ReLU -> conv: ReLU(-1) = 0, so only b2 and the skip are left"))
# The whole block, built from your conv1d_causal_forward by hand.
hidden = np.maximum(conv1d_causal_forward(x, params["w1"], params["b1"], 2), 0)
# the block on absolute values bounds the rounding of both convolutions (ReLU never enlarges an error)
abs_params = {key: np.abs(value) for key, value in params.items()}
expect_close(y, conv1d_causal_forward(hidden, params["w2"], params["b2"], 2) + x, "y", axes=AXES,
             hint=forward_first("y = conv(ReLU(conv(x; w1, b1, dilation)); w2, b2, dilation) + x, "
                                "both convs with the dilation"),
             magnitude=conv1d_causal_forward(conv1d_causal_forward(np.abs(x), abs_params["w1"], abs_params["b1"], 2),
                                             abs_params["w2"], abs_params["b2"], 2) + np.abs(x), terms=2 * (12 + 12 + 2))

# Channels change 3 -> 5: the skip path is the 1x1 conv.
x3 = rng.standard_normal((2, 3, 16))
params35 = {"w1": rng.standard_normal((5, 3, 2)), "b1": rng.standard_normal(5),
            "w2": np.zeros((5, 5, 2)), "b2": np.zeros(5),
            "w_skip": rng.standard_normal((5, 3, 1)), "b_skip": rng.standard_normal(5)}
skip = np.einsum("oi,bit->bot", params35["w_skip"][:, :, 0], x3) + params35["b_skip"][:, None]
y35 = expect_implemented(tcn_block_forward, x3, params35, 4)
expect_close(y35, skip, "y for 3 -> 5 channels with w2 = 0", axes=AXES,
             hint=forward_first("when C_in != C_out the skip path is the 1x1 conv with w_skip, b_skip"), terms=4,
             magnitude=np.einsum("oi,bit->bot", np.abs(params35["w_skip"][:, :, 0]), np.abs(x3)) + np.abs(params35["b_skip"])[:, None])

# A history longer than the sequence: K = 3, dilation 4, T = 6. Taps 0 and 1 reach 8 and 4 steps back;
# tap 0 reads only zeros, so each conv is its taps 1 and 2 alone (a K = 2 conv with the same dilation).
x6 = rng.standard_normal((2, 4, 6))
y6 = expect_implemented_or_hint(LONG_HISTORY, tcn_block_forward, x6, params, 4)
late = {key: value[..., 1:] if key.startswith("w") else value for key, value in params.items()}   # taps 1, 2
hidden6 = np.maximum(conv1d_causal_forward(x6, late["w1"], late["b1"], 4), 0)
expect_close(y6, conv1d_causal_forward(hidden6, late["w2"], late["b2"], 4) + x6, "y for dilation 4, K = 3, T = 6",
             axes=AXES, hint=forward_first(LONG_HISTORY), terms=2 * (12 + 12 + 2),
             magnitude=conv1d_causal_forward(conv1d_causal_forward(np.abs(x6), abs_params["w1"], abs_params["b1"], 4),
                                             abs_params["w2"], abs_params["b2"], 4) + np.abs(x6))
print("tcn_block_forward passes the visible tests")

# %% [markdown]
# ## 7. Forecasting a noisy signal: dilated vs plain
#
# Each series is a sum of three sines with periods 9, 23 and 61 steps (random amplitudes and phases),
# observed with noise; the target at time $t$ is the **clean** signal 8 steps later
# (`convlab.sequences.multi_sine_forecasting`). We train two networks of the same depth and size with
# your convolution: 4 causal layers of 8 channels, $K = 3$, each followed by a ReLU, then a 1×1
# convolution to one output channel.
#
# - dilated: dilations 1, 2, 4, 8, receptive field 31;
# - plain: dilations 1, 1, 1, 1, receptive field 9.
#
# The backward pass chains your `conv1d_causal_backward` through the layers: at each ReLU the gradient
# passes where the layer's output was positive. The loss is the mean squared error over times
# $t \ge 30$, where the dilated stack's window lies entirely in the data, for both networks.

# %% nbgrader={"grade": false, "grade_id": "forecasting_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def init_stack(dilations, channels=8, kernel_size=3, seed=0):
    """He-initialised layers [{'w', 'b'}]: one causal conv per dilation, then a 1x1 readout to 1 channel."""
    rng = np.random.default_rng(seed)
    layers, c_in = [], 1
    for _ in dilations:
        scale = np.sqrt(2 / (c_in * kernel_size))
        layers.append({"w": scale * rng.standard_normal((channels, c_in, kernel_size)), "b": np.zeros(channels)})
        c_in = channels
    layers.append({"w": rng.standard_normal((1, channels, 1)) / np.sqrt(channels), "b": np.zeros(1)})
    return layers


def stack_forward(x, layers, dilations):
    """x (B, 1, T) -> prediction (B, 1, T), and the input of every layer (kept for the backward pass)."""
    inputs = [x]
    for layer, dilation in zip(layers, dilations):
        inputs.append(np.maximum(conv1d_causal_forward(inputs[-1], layer["w"], layer["b"], dilation), 0))
    return conv1d_causal_forward(inputs[-1], layers[-1]["w"], layers[-1]["b"]), inputs


def stack_backward(dprediction, layers, dilations, inputs):
    """Chain rule from dL/dprediction back through the readout and every conv + ReLU layer."""
    dh, dw, db = conv1d_causal_backward(dprediction, inputs[-1], layers[-1]["w"])
    grads = [{"w": dw, "b": db}]
    for index in reversed(range(len(dilations))):
        dz = dh * (inputs[index + 1] > 0)          # ReLU passes the gradient where its output was positive
        dh, dw, db = conv1d_causal_backward(dz, inputs[index], layers[index]["w"], dilations[index])
        grads.insert(0, {"w": dw, "b": db})
    return grads


def train_forecaster(dilations, steps, warmup, lr=3e-3, seed=0):
    """Adam on the MSE over times t >= warmup, a fresh batch of 32 series each step -> (layers, losses)."""
    layers = init_stack(dilations, seed=seed)
    moments = [{key: [np.zeros_like(value), np.zeros_like(value)] for key, value in layer.items()} for layer in layers]
    losses = []
    for step in range(1, steps + 1):
        batch = multi_sine_forecasting(32, 128, seed=1000 + step)
        prediction, inputs = stack_forward(batch.x, layers, dilations)
        error = (prediction - batch.target)[:, :, warmup:]
        losses.append(float(np.mean(error ** 2)))
        dprediction = np.zeros_like(prediction)
        dprediction[:, :, warmup:] = 2 * error / error.size
        for layer, grad, moment in zip(layers, stack_backward(dprediction, layers, dilations, inputs), moments):
            for key, (m, v) in moment.items():
                m += 0.1 * (grad[key] - m)
                v += 0.001 * (grad[key] ** 2 - v)
                layer[key] -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return layers, losses


# %%
STEPS = 80 if FAST else 600
WARMUP = 30                       # R - 1 of the dilated stack (K = 3, dilations 1, 2, 4, 8)
STACKS = {"dilated 1, 2, 4, 8 (R = 31)": [1, 2, 4, 8], "plain 1, 1, 1, 1 (R = 9)": [1, 1, 1, 1]}
trained = {}                      # stays empty until training succeeds; the next cell waits for it
try:
    trained = {name: train_forecaster(dilations, STEPS, WARMUP) for name, dilations in STACKS.items()}
except NotImplementedError:
    print("Implement conv1d_causal_forward and conv1d_causal_backward above, then run this cell again.")

# %%
if trained:
    val = multi_sine_forecasting(64, 128, seed=1)
    _, (ax_loss, ax_series) = plt.subplots(1, 2, figsize=(13, 4.5), width_ratios=[1, 2], layout="constrained")
    ax_series.plot(val.x[0, 0], ".", color="0.6", markersize=3, label="noisy input x")
    ax_series.plot(val.target[0, 0], "k", label=f"target: clean signal {val.horizon} steps ahead")
    for name, dilations in STACKS.items():
        layers, losses = trained[name]
        prediction = stack_forward(val.x, layers, dilations)[0]
        mse = np.mean((prediction - val.target)[:, :, WARMUP:] ** 2)
        print(f"{name}: validation MSE {mse:.3f}")
        ax_loss.plot(losses, label=name)
        ax_series.plot(prediction[0, 0], label=name)
    print(f"predicting 0 everywhere: validation MSE {np.mean(val.target[:, :, WARMUP:] ** 2):.3f}")
    ax_series.axvspan(0, WARMUP, color="0.9", label="warm-up (not in the loss)")
    ax_loss.set(yscale="log", xlabel="training step", ylabel="training MSE", title="training")
    ax_series.set(xlabel="time t", title="one validation series")
    ax_loss.legend(fontsize=8)
    ax_series.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    plt.show()
else:
    print("No trained forecasters yet: run the training cell above until it finishes without an error.")

# %% [markdown]
# The plain stack sees 9 noisy samples: a sixth of the slowest sine's period, too little to tell where
# that wave is heading 8 steps later or to average the noise away. The dilated stack, with the same
# depth, parameters and cost per step, sees 31. To see a longer history, a plain stack would have to
# grow linearly, a dilated one only logarithmically.
#
# **Summary.** A 1-D convolution is the 2-D one with $H = K_h = 1$. Left padding of $(K-1)\cdot\text{dilation}$
# makes it causal and keeps the length; its gradient with respect to the input looks into the future
# by the same amount. A stack's receptive field is $1 + (K-1)\sum_l d_l$, so doubling dilations cover a
# history exponential in depth; residual blocks with 1×1 skip convolutions make such stacks deep and trainable.
