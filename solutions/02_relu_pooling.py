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
# # Lesson 02: ReLU and pooling
#
# A convolutional network is rarely convolutions alone. The classic block is
# **convolution → ReLU → pooling**: the convolution detects patterns, the ReLU makes the network
# *nonlinear*, and pooling shrinks the feature maps while keeping the strongest responses.
# In this lesson you derive and implement both layers, forward **and** backward:
#
# 1. why a stack of convolutions needs a nonlinearity in between;
# 2. `relu_forward` and `relu_backward` (the derivative is a mask);
# 3. `pool_output_size`: lesson 01's output-size formula, once more;
# 4. max pooling, forward and backward, first with loops, then vectorized: where does the gradient go?
# 5. average pooling, forward and backward;
# 6. a widget that slides a pooling window and shows where each upstream gradient lands.
#
# Answers are judged as lesson 01 explains: array arguments left unchanged, whole numbers exact,
# floating-point results within the rounding error of a correct computation (`convlab.tolerance`).
#
# Arrays follow lesson 01's layout: `x` has shape `(B, C, H, W)` (batch, channels, height, width).
# Throughout, `dy` is the **upstream gradient** $\mathrm{dy} = \partial L / \partial y$ of some scalar
# loss $L$ with respect to a layer's output `y`, and a backward function returns
# $\mathrm{dx} = \partial L / \partial x$, an array shaped like `x`.

# %% tags=["reference"]
import numpy as np

import convlab
from convlab.expect import expect_close, expect_equal, expect_implemented, expect_shape
from convlab.gradcheck import gradient_check, numerical_gradient_array

# %% [markdown]
# ## 1. Why a nonlinearity?
#
# A convolution (with its bias) is an *affine* map of its input: every output is a weighted sum of
# inputs plus a constant. Compose two of them,
#
# $$ y = W_2 * (W_1 * x + b_1) + b_2 = (W_2 * W_1) * x + (W_2 * b_1 + b_2), $$
#
# and you get another affine map: one convolution whose kernel is the convolution $W_2 * W_1$ of the
# two kernels. However many layers you stack, the network can only represent what a single (larger)
# convolution can: depth buys nothing. Let's check this numerically in 1-D.

# %%
rng = np.random.default_rng(0)
signal, kernel_1, kernel_2 = rng.standard_normal(12), rng.standard_normal(3), rng.standard_normal(3)
two_layers = np.convolve(np.convolve(signal, kernel_1), kernel_2)
one_layer = np.convolve(signal, np.convolve(kernel_1, kernel_2))     # a single 5-tap kernel
print("two stacked convolutions == one convolution:", np.allclose(two_layers, one_layer))

# %% [markdown]
# A nonlinearity between the layers breaks this collapse. The **rectified linear unit** is the
# simplest one that works well in practice:
#
# $$ y[bi, c, u, v] = \max\bigl(0,\ x[bi, c, u, v]\bigr). $$
#
# It is not linear: for $a = 1$ and $a' = -1$, $\max(0, a + a') = 0$ but
# $\max(0, a) + \max(0, a') = 1$. Yet it is *piecewise* linear, cheap, and its gradient is
# either 0 or 1, so it does not shrink gradients the way a saturating sigmoid does.
#
# ## 2. ReLU forward
#
# Implement `relu_forward`. It works elementwise, so the shape does not matter. Keep the input's
# dtype: a `float32` input gives a `float32` output (networks run in `float32`, and an accidental
# `float64` copy doubles memory and time).

# %% nbgrader={"grade": false, "grade_id": "relu_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def relu_forward(x):
    """Rectified linear unit, elementwise: y = max(0, x).

    x: float array of any shape, e.g. (B, C, H, W).
    Returns y: same shape and dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return np.maximum(x, 0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_relu_forward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=np.float32).reshape(1, 1, 1, 5)
y = expect_implemented(relu_forward, x)
expect_close(y, np.array([0, 0, 0, 0.5, 3.0]).reshape(1, 1, 1, 5), "relu_forward(x)",
             hint="negative inputs become 0, positive inputs pass through unchanged")
expect_equal(y.dtype, np.dtype(np.float32), "relu_forward(float32 input).dtype",
             hint="keep the input's dtype (compare with the Python number 0, not a float64 array)")
# Any shape: lesson 04 applies ReLU to a dense layer's (N, D) output too.
dense_output = np.array([[-1.0, 2.0, 0.0], [3.0, -4.0, 0.5]])
expect_close(expect_implemented(relu_forward, dense_output), np.array([[0, 2.0, 0], [3.0, 0, 0.5]]),
             "relu_forward of a 2-D (2, 3) array", hint="ReLU is elementwise: do not assume 4 axes (B, C, H, W)")
print("relu_forward: all checks passed")

# %% [markdown]
# ## 3. ReLU backward: the derivative is a mask
#
# Each output depends on exactly one input, $y[bi,c,u,v] = \max(0, x[bi,c,u,v])$, so the chain rule
# has a single term:
#
# $$ \mathrm{dx}[bi,c,u,v] = \frac{\partial L}{\partial y[bi,c,u,v]}\,\frac{\partial y[bi,c,u,v]}{\partial x[bi,c,u,v]}
#    = \mathrm{dy}[bi,c,u,v]\cdot \mathbb{1}\bigl[x[bi,c,u,v] > 0\bigr]. $$
#
# The upstream gradient passes where the unit was active and is blocked where it was not. Two details:
#
# * **The mask comes from `x`, not from `dy`.** Whether a unit was active is a fact about the forward
#   pass; a negative `dy` flowing into an active unit must pass unchanged.
# * **At $x = 0$ the derivative does not exist**: the slope is 0 on the left and 1 on the right.
#   Any value in $[0, 1]$ is a valid *subgradient*; we use **0**, as PyTorch and most frameworks do.
#   So the mask is $x > 0$, strictly. (It hardly matters in practice, but a test must pin it down.)

# %%
import matplotlib.pyplot as plt

fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(8, 2.6))
ax_f.plot([-3, 0, 3], [0, 0, 3], lw=2)
ax_f.set_title("relu(x)")
ax_d.plot([-3, 0], [0, 0], "C1", lw=2)
ax_d.plot([0, 3], [1, 1], "C1", lw=2)
ax_d.plot([0], [0], "C1o")
ax_d.plot([0], [1], "o", mfc="white", mec="C1")
ax_d.set_title("its derivative (we use 0 at x = 0)")
for ax in (ax_f, ax_d):
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
plt.tight_layout()
plt.show()


# %% nbgrader={"grade": false, "grade_id": "relu_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def relu_backward(dy, x):
    """Gradient of the loss with respect to ReLU's input.

    dy: upstream gradient dL/dy, any shape, e.g. (B, C, H, W).  x: the forward input, same shape and dtype.
    Returns dx: dy where x > 0, and 0 where x <= 0 (gradient 0 at x == 0); same shape and dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return dy * (x > 0)
    ### END SOLUTION


# %% [markdown]
# The test below ends with a **numerical gradient check** (`convlab.gradcheck`): it perturbs each
# input by $\pm h$ ($h = 10^{-5}$), measures how $L = \sum y \cdot \mathrm{dy}$ changes, and
# compares with your `dx` by relative error. Central differences are exact for a function that is
# linear on $[x - h, x + h]$, so away from the kink the error is pure rounding ($\approx 10^{-10}$)
# and the tolerance is $10^{-8}$. Near the kink it would be meaningless, so the test draws every
# $|x| \ge 0.1 \gg h$: a check must never straddle a point where the function is not differentiable.

# %% nbgrader={"grade": true, "grade_id": "test_relu_backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0]).reshape(1, 1, 1, 5)
dy = np.array([1.0, -1.0, 2.0, -3.0, 4.0]).reshape(1, 1, 1, 5)
dx = expect_implemented(relu_backward, dy, x)
expect_close(dx, np.array([0, 0, 0, -3.0, 4.0]).reshape(1, 1, 1, 5), "relu_backward(dy, x)",
             hint="dx = dy where x > 0 and 0 elsewhere, also at x == 0; the mask comes from x, not from dy")
expect_equal(relu_backward(dy.astype(np.float32), x.astype(np.float32)).dtype, np.dtype(np.float32),
             "relu_backward(float32 inputs).dtype", hint="keep the inputs' dtype")
expect_close(expect_implemented(relu_backward, dy.reshape(5, 1), x.reshape(5, 1)),
             np.array([[0], [0], [0], [-3.0], [4.0]]), "relu_backward of 2-D (5, 1) arrays",
             hint="ReLU is elementwise: do not assume 4 axes (B, C, H, W)")
rng = np.random.default_rng(0)
x = rng.choice([-1.0, 1.0], size=(2, 3, 4, 4)) * rng.uniform(0.1, 1.0, size=(2, 3, 4, 4))
dy = rng.standard_normal(x.shape)
error = gradient_check(relu_backward(dy, x), numerical_gradient_array(relu_forward, x, dy),
                       "relu_backward", tol=1e-8)
print(f"relu_backward: all checks passed (relative error {error:.1e})")

# %% [markdown]
# ## 4. Pooling windows and the output size
#
# A pooling layer slides a `pool` × `pool` window over each channel separately, `stride` pixels at a
# time, and summarises each window by one number. Window $(i, j)$ covers rows
# $\mathtt{stride}\cdot i + m$ and columns $\mathtt{stride}\cdot j + n$ for $0 \le m, n < \mathtt{pool}$.
#
# How many windows fit along an axis of length $H$? The last window $i = H_{out} - 1$ must end inside
# the input: $\mathtt{stride}\,(H_{out} - 1) + \mathtt{pool} - 1 \le H - 1$, so
# $H_{out} - 1 \le (H - \mathtt{pool}) / \mathtt{stride}$, and the largest whole number of steps is
#
# $$ H_{out} = \left\lfloor \frac{H - \mathtt{pool}}{\mathtt{stride}} \right\rfloor + 1 . $$
#
# This is lesson 01's $H_{out} = \lfloor (H + 2p - K)/s \rfloor + 1$ with kernel size $K = \mathtt{pool}$
# and no padding: pooling slides exactly like a convolution; only the operation inside the window differs.
# Worked examples:
#
# * $H = 8$, `pool` 2, `stride` 2: $\lfloor 6/2 \rfloor + 1 = 4$, the usual halving.
# * $H = 7$, `pool` 2, `stride` 2: $\lfloor 5/2 \rfloor + 1 = 3$; the last row is never looked at.
# * $H = 7$, `pool` 3, `stride` 2: windows start at rows 0, 2, 4, so 3 windows that **overlap**
#   (rows 2 and 4 belong to two windows each). AlexNet pooled this way.
# * `stride` > `pool` leaves gaps: rows no window covers, whose gradient will be 0.

# %% nbgrader={"grade": false, "grade_id": "pool_output_size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pool_output_size(size, pool, stride):
    """Number of pooling windows along one axis of length `size` (no padding), an int.

    Windows start at 0, stride, 2 * stride, ... and must lie entirely inside the axis (pool <= size).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return (size - pool) // stride + 1
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_pool_output_size", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
def check_pool_output_size(args, expected, hint=None):
    """pool_output_size(*args) must be the int `expected` (an integer-valued float such as 4.0 fails)."""
    call = f"pool_output_size{args}"
    got = expect_implemented(pool_output_size, *args)
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise AssertionError(f"{call} returned {got} ({type(got).__name__}): return an int "
                             "(use // (floor division), not np.floor, which returns a float)")
    expect_equal(got, expected, call, hint=hint)


check_pool_output_size((8, 2, 2), 4)
check_pool_output_size((7, 2, 2), 3, hint="the last row is left over: round down with //")
check_pool_output_size((7, 3, 2), 3, hint="windows start at rows 0, 2 and 4; one at row 6 would need rows 6 to 8")
check_pool_output_size((5, 3, 1), 3, hint="with stride 1 there is one window per start row 0, 1, 2")
print("pool_output_size: all checks passed")

# %% [markdown]
# ## 5. Max pooling forward
#
# Max pooling keeps the largest value of each window:
#
# $$ y[bi, c, i, j] = \max_{0 \le m, n < \mathtt{pool}} x[bi, c,\ \mathtt{stride}\cdot i + m,\ \mathtt{stride}\cdot j + n]. $$
#
# It answers "did the feature appear somewhere in this neighbourhood?", and the answer barely changes
# when the input shifts by a pixel: a little translation invariance, for free.
#
# Write it first with loops over the output pixels `i`, `j` (the batch and channel axes can be
# handled with numpy reductions inside the loop). Careful with inputs that are all negative: a
# running maximum that starts at 0 gives wrong answers.

# %% nbgrader={"grade": false, "grade_id": "maxpool2d_forward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def maxpool2d_forward_naive(x, pool=2, stride=2):
    """Max pooling with explicit loops over the output pixels.

    x: (B, C, H, W). Returns y: (B, C, H_out, W_out), same dtype as x, where
    y[bi, c, i, j] = max over 0 <= m, n < pool of x[bi, c, stride * i + m, stride * j + n].
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    y = np.empty((B, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, stride * i:stride * i + pool, stride * j:stride * j + pool]
            y[:, :, i, j] = window.max(axis=(2, 3))
    return y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_maxpool2d_forward_naive", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
x = np.array([[1, 3, 2, 0],
              [4, 2, 1, 5],
              [0, 1, 7, 6],
              [2, 8, 3, 1]], dtype=np.float32).reshape(1, 1, 4, 4)
y = expect_implemented(maxpool2d_forward_naive, x)
expect_close(y, np.array([[4, 5], [8, 7]]).reshape(1, 1, 2, 2), "maxpool2d_forward_naive(x)",
             hint="each output is the largest of its 2x2 block")
expect_equal(y.dtype, np.dtype(np.float32), "maxpool2d_forward_naive(float32 input).dtype")
expect_close(maxpool2d_forward_naive(x, pool=3, stride=1), np.array([[7, 7], [8, 8]]).reshape(1, 1, 2, 2),
             "maxpool2d_forward_naive(x, pool=3, stride=1)", hint="window (i, j) starts at row stride * i, column stride * j")
x = -1 - np.random.default_rng(1).random((2, 3, 7, 5))
y = maxpool2d_forward_naive(x)
expect_shape(y, (2, 3, 3, 2), "maxpool2d_forward_naive(x) for a 7x5 input",
             hint="use pool_output_size: floor((7 - 2) / 2) + 1 = 3 rows, floor((5 - 2) / 2) + 1 = 2 columns")
assert np.all(y < 0), ("all inputs are negative, so every maximum must be negative: "
                       "did the running maximum start at 0 instead of at the window's values?")
print("maxpool2d_forward_naive: all checks passed")

# %% [markdown]
# ## 6. Vectorizing: loop over the window taps, not over the pixels
#
# The loop above runs $H_{out} \cdot W_{out}$ times. Swap the roles: fix a **tap** $(m, n)$, a
# position inside the window, and look at it for *all* windows at once. The values
# $x[b, c, \mathtt{stride}\cdot i + m, \mathtt{stride}\cdot j + n]$ for all $i, j$ form a regular grid:
# rows $m, m + \mathtt{stride}, m + 2\,\mathtt{stride}, \dots$, which is a numpy **strided slice**,
# a view of `x` without any copy. The helper `tap_slices` below builds those slices. Then
#
# $$ y = \max_{m, n}\ x[:, :, \mathtt{rows}_m, \mathtt{cols}_n], $$
#
# an elementwise maximum of `pool`² arrays of shape `(B, C, H_out, W_out)`: a loop of `pool`² (4 or 9)
# whole-array steps instead of hundreds of small ones. (`np.maximum(a, b, out=a)` updates `a` in place,
# so `a` must be an array of your own: started as the view `x[:, :, rows, cols]`, it would overwrite the
# caller's `x`. Start from a copy, `x[:, :, rows, cols].copy()`, or a new array.)

# %% tags=["reference"]
def tap_slices(m, n, stride, H_out, W_out):
    """Slices (rows, cols) with x[:, :, rows, cols][bi, c, i, j] == x[bi, c, stride * i + m, stride * j + n].

    So x[:, :, rows, cols] is tap (m, n) of every window at once: a (B, C, H_out, W_out) view of x.
    """
    rows = slice(m, m + stride * (H_out - 1) + 1, stride)
    cols = slice(n, n + stride * (W_out - 1) + 1, stride)
    return rows, cols


# %%
demo = np.arange(36.0).reshape(1, 1, 6, 6)
rows, cols = tap_slices(1, 0, stride=2, H_out=2, W_out=3)     # pool 3, stride 2 on a 6x6 input
print("input:\n", demo[0, 0], "\ntap (1, 0) of each of the 2x3 windows:\n", demo[:, :, rows, cols][0, 0])


# %% nbgrader={"grade": false, "grade_id": "maxpool2d_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def maxpool2d_forward(x, pool=2, stride=2):
    """Max pooling, vectorized: no Python loop over output pixels (a loop over the pool**2 taps is fine).

    x: (B, C, H, W). Returns y: (B, C, H_out, W_out), same dtype as x (see maxpool2d_forward_naive).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    y = np.full((B, C, H_out, W_out), -np.inf, dtype=x.dtype)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            np.maximum(y, x[:, :, rows, cols], out=y)
    return y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_maxpool2d_forward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
x = np.array([[1, 3, 2, 0],
              [4, 2, 1, 5],
              [0, 1, 7, 6],
              [2, 8, 3, 1]], dtype=np.float32).reshape(1, 1, 4, 4)
x_before = x.copy()
y = expect_implemented(maxpool2d_forward, x)
assert np.array_equal(x, x_before), (
    "maxpool2d_forward(x) changed its input x: a strided slice x[:, :, rows, cols] is a view of x, so writing into "
    "it (np.maximum(..., out=y)) writes into x; start y from a copy (.copy()) or a new array")
expect_close(y, np.array([[4, 5], [8, 7]]).reshape(1, 1, 2, 2), "maxpool2d_forward(x)")
expect_equal(y.dtype, np.dtype(np.float32), "maxpool2d_forward(float32 input).dtype")
expect_close(maxpool2d_forward(x, pool=3, stride=1), np.array([[7, 7], [8, 8]]).reshape(1, 1, 2, 2),
             "maxpool2d_forward(x, pool=3, stride=1)")
x = np.random.default_rng(2).standard_normal((2, 3, 7, 8))
for pool, stride in [(2, 2), (3, 2), (3, 1), (2, 3)]:
    expect_close(maxpool2d_forward(x, pool, stride), expect_implemented(maxpool2d_forward_naive, x, pool, stride),
                 f"maxpool2d_forward(x, pool={pool}, stride={stride})",
                 hint="your vectorized and naive versions disagree (the naive one passed its test)")
print("maxpool2d_forward: all checks passed")

# %% [markdown]
# ## 7. Max pooling backward: gradient routing
#
# Every output $y[bi,c,i,j]$ depends on the `pool`² inputs of its window, so the chain rule sums
# over all outputs:
#
# $$ \mathrm{dx}[bi,c,u,v] = \sum_{i, j} \mathrm{dy}[bi,c,i,j]\ \frac{\partial y[bi,c,i,j]}{\partial x[bi,c,u,v]} . $$
#
# Inside window $(i, j)$ the max equals one of its entries, the **winner** at tap $(m^*, n^*)$, and
# small changes of the other entries do not change it. So the local derivative is 1 for the winner
# and 0 for everything else:
#
# $$ \frac{\partial y[bi,c,i,j]}{\partial x[bi,c,u,v]} = \mathbb{1}\bigl[u = \mathtt{stride}\cdot i + m^*,\ v = \mathtt{stride}\cdot j + n^*\bigr],
#    \qquad
#    \mathrm{dx}[bi,c,u,v] = \sum_{\substack{(i, j):\ \text{the winner of window } (i,j)\\ \text{is } (u, v)}} \mathrm{dy}[bi,c,i,j]. $$
#
# Max pooling **routes** each upstream gradient, whole, to the position the maximum came from; all
# other inputs get 0. Two consequences:
#
# * **Overlapping windows accumulate.** With `stride` < `pool` one input can win several windows,
#   and its gradient is the *sum* of their `dy`s: in code `dx[...] += ...`, never `dx[...] = ...`
#   (which keeps only the last window's gradient). With `stride` ≥ `pool` the sum has at most one
#   term, which is why the overwrite bug hides until windows overlap.
# * **Ties.** If two entries of a window are equal and maximal, the max has a kink there: raising
#   either one raises $y$ (slope 1), lowering it does not (slope 0). No derivative exists, and any
#   split $\alpha, 1 - \alpha$ between the tied entries is a valid *subgradient*. We pick the
#   simplest: **the whole gradient goes to the first maximum in row-major order** within the window,
#   exactly what `np.argmax` over the flattened window returns. One winner, not a split: the backward
#   pass then only needs one index per window (frameworks store exactly that, PyTorch's
#   `max_pool2d` returns it with `return_indices=True` and breaks ties the same way), and `dx` is the
#   gradient of the function that picks that one entry, so it stays consistent with the forward pass.
#
# Ties also explain how the numerical gradient checks below are built: at a tie, a central
# difference averages the slopes 0 and 1 and reports 0.5, a value no rule produces. So the checks use
# inputs whose values are all **distinct and spaced 0.1 apart** (a shuffled `arange`): a perturbation
# of $h = 10^{-5}$ then never changes a winner, max pooling is linear around the point, and the
# relative error is rounding only ($\approx 10^{-11}$; tolerance $10^{-8}$). The tie rule itself is
# tested on hand-made windows instead.

# %% nbgrader={"grade": false, "grade_id": "maxpool2d_backward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def maxpool2d_backward_naive(dy, x, pool=2, stride=2):
    """Gradient of max pooling with explicit loops: each dy[bi, c, i, j] goes to the first maximum
    (row-major) of window (i, j); windows sharing a winner add up.

    dy: (B, C, H_out, W_out) upstream gradient.  x: (B, C, H, W) forward input.
    Returns dx: (B, C, H, W), same dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C, H_out, W_out = dy.shape
    dx = np.zeros_like(x)
    for bi in range(B):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[bi, c, stride * i:stride * i + pool, stride * j:stride * j + pool]
                    m, n = np.unravel_index(np.argmax(window), window.shape)   # first maximum, row-major
                    dx[bi, c, stride * i + m, stride * j + n] += dy[bi, c, i, j]  # += : windows may share a winner
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_maxpool2d_backward_naive", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
def check_max_backward(backward, forward, name):
    """Visible checks shared by the naive and vectorized max-pooling backward."""
    x = np.array([[1.0, 5.0], [5.0, 2.0]]).reshape(1, 1, 2, 2)
    dx = expect_implemented(backward, np.full((1, 1, 1, 1), 3.0), x, 2, 2)
    expect_close(dx, np.array([[0, 3.0], [0, 0]]).reshape(1, 1, 2, 2), f"{name} on a window with a tie",
                 hint="the whole gradient goes to the FIRST maximum in row-major order, not split, not to both")
    x = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], dtype=np.float32).reshape(1, 1, 3, 3)
    dy = np.array([[1, 2], [3, 4]], dtype=np.float32).reshape(1, 1, 2, 2)
    dx = backward(dy, x, 2, 1)
    expect_equal(dx.dtype, np.dtype(np.float32), f"{name}(float32 inputs).dtype")
    expect_close(dx, np.array([[0, 0, 0], [0, 10, 0], [0, 0, 0]]).reshape(1, 1, 3, 3),
                 f"{name} with overlapping windows (pool 2, stride 1)",
                 hint="the 9 wins all four windows, so its gradient is 1 + 2 + 3 + 4 = 10: accumulate with +=")
    rng = np.random.default_rng(3)
    for pool, stride in [(2, 2), (3, 2), (3, 1)]:
        x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.1      # distinct values, 0.1 apart
        dy = rng.standard_normal(forward(x, pool, stride).shape)
        numeric = numerical_gradient_array(lambda v: forward(v, pool, stride), x, dy)
        gradient_check(backward(dy, x, pool, stride), numeric, f"{name} (pool {pool}, stride {stride})", tol=1e-8)


check_max_backward(maxpool2d_backward_naive, maxpool2d_forward_naive, "maxpool2d_backward_naive")
print("maxpool2d_backward_naive: all checks passed")

# %% [markdown]
# ## 8. Max pooling backward, vectorized: a scatter-add
#
# Regroup the chain-rule sum by taps instead of by windows. For a fixed tap $(m, n)$, window $(i, j)$
# sends $\mathrm{dy}[bi,c,i,j]$ to $x[bi,c,\mathtt{stride}\cdot i+m,\mathtt{stride}\cdot j+n]$ if that
# tap is its winner:
#
# $$ \mathrm{dx}[:, :, \mathtt{rows}_m, \mathtt{cols}_n] \mathrel{+}= \mathrm{dy} \cdot \mathtt{winner}_{m,n},
#    \qquad \text{for each tap } (m, n). $$
#
# This is a **scatter-add**: values are added into positions given by an index, and several values may
# target the same position. Numpy's `a[idx] += v` is *not* a scatter-add when `idx` repeats: it reads
# `a[idx]`, adds, and writes back, so a repeated position keeps only the last write. `np.add.at(a, idx, v)`
# is the unbuffered version that really accumulates:

# %%
cells, targets, values = np.zeros(3), np.array([1, 1, 2]), np.array([10.0, 20.0, 30.0])
buffered = cells.copy()
buffered[targets] += values
np.add.at(cells, targets, values)
print("a[idx] += v         :", buffered, " <- the 10 sent to cell 1 is lost")
print("np.add.at(a, idx, v):", cells)

# %% [markdown]
# The tap loop needs neither index arrays nor `np.add.at`: within one tap, distinct windows hit
# distinct cells ($\mathtt{stride}\cdot i + m$ is different for every $i$), so each `+=` on the
# strided slice touches every cell at most once; the repeats (overlapping windows) come from
# *different* taps, i.e. different loop iterations, which add up. It is an exact scatter-add.
#
# What remains is $\mathtt{winner}_{m,n}$, a boolean array of shape `(B, C, H_out, W_out)`: tap
# $(m, n)$ holds the window's maximum `y` **and** no earlier tap did (that is the tie rule). Visit the
# taps in row-major order and keep a mask of the windows whose gradient is still `pending`.

# %% nbgrader={"grade": false, "grade_id": "maxpool2d_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def maxpool2d_backward(dy, x, pool=2, stride=2):
    """Gradient of max pooling, vectorized (no Python loop over output pixels); same rule as
    maxpool2d_backward_naive: first maximum in row-major order, overlapping windows accumulate.

    dy: (B, C, H_out, W_out) upstream gradient.  x: (B, C, H, W) forward input.
    Returns dx: (B, C, H, W), same dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    H_out, W_out = dy.shape[2:]
    y = maxpool2d_forward(x, pool, stride)
    dx = np.zeros_like(x)
    pending = np.ones(y.shape, dtype=bool)      # windows whose gradient has not been routed yet
    for m in range(pool):                       # row-major order, so ties go to the first maximum
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            winner = pending & (x[:, :, rows, cols] == y)
            dx[:, :, rows, cols] += dy * winner
            pending &= ~winner
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_maxpool2d_backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check_max_backward(maxpool2d_backward, maxpool2d_forward, "maxpool2d_backward")
rng = np.random.default_rng(4)
for pool, stride in [(2, 2), (3, 2), (3, 1), (2, 3)]:
    x = rng.integers(0, 3, size=(2, 3, 8, 7)).astype(float)            # many ties
    dy = rng.standard_normal((2, 3, pool_output_size(8, pool, stride), pool_output_size(7, pool, stride)))
    # overlapping windows add up to ceil(pool / stride)**2 gradients in one cell, in any order
    expect_close(maxpool2d_backward(dy, x, pool, stride), expect_implemented(maxpool2d_backward_naive, dy, x, pool, stride),
                 f"maxpool2d_backward(dy, x, pool={pool}, stride={stride}) on an input with ties",
                 hint="your vectorized and naive versions disagree (the naive one passed its test)",
                 magnitude=maxpool2d_backward_naive(np.abs(dy), x, pool, stride), terms=-(-pool // stride) ** 2)
print("maxpool2d_backward: all checks passed")

# %% [markdown]
# ## 9. Average pooling
#
# Average pooling replaces the max by the mean of the window:
#
# $$ y[bi,c,i,j] = \frac{1}{\mathtt{pool}^2} \sum_{m=0}^{\mathtt{pool}-1} \sum_{n=0}^{\mathtt{pool}-1}
#    x[b,c,\ \mathtt{stride}\cdot i + m,\ \mathtt{stride}\cdot j + n]. $$
#
# Now every entry of the window matters equally, $\partial y[bi,c,i,j] / \partial x[bi,c,\mathtt{stride}\cdot i+m,\mathtt{stride}\cdot j+n] = 1/\mathtt{pool}^2$,
# so the backward pass **spreads** each upstream gradient evenly over its window, and overlapping
# windows again add up:
#
# $$ \mathrm{dx}[:, :, \mathtt{rows}_m, \mathtt{cols}_n] \mathrel{+}= \frac{\mathrm{dy}}{\mathtt{pool}^2}
#    \qquad \text{for each tap } (m, n). $$
#
# Average pooling is linear, so it has no kinks and no tie rule. Each window hands out exactly its
# `dy`, so `dx.sum()` equals `dy.sum()` whether windows overlap or not (max pooling shares this
# property: a quick sanity check for both). Implement both directions vectorized, with the tap loop.

# %% nbgrader={"grade": false, "grade_id": "avgpool2d_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def avgpool2d_forward(x, pool=2, stride=2):
    """Average pooling, vectorized: y[bi, c, i, j] = mean of x[bi, c, stride*i : stride*i + pool, stride*j : stride*j + pool].

    x: (B, C, H, W). Returns y: (B, C, H_out, W_out), same dtype as x. Sum each window's own pool**2
    entries (prefix sums over the whole image would cancel other windows' values and lose float64 accuracy).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C, H, W = x.shape
    H_out, W_out = pool_output_size(H, pool, stride), pool_output_size(W, pool, stride)
    total = np.zeros((B, C, H_out, W_out), dtype=x.dtype)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            total += x[:, :, rows, cols]
    return total / pool**2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_avgpool2d_forward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
x = np.array([[1, 3, 2, 0],
              [4, 2, 1, 5],
              [0, 1, 7, 6],
              [2, 8, 3, 1]], dtype=np.float32).reshape(1, 1, 4, 4)
x_before = x.copy()
y = expect_implemented(avgpool2d_forward, x)
assert np.array_equal(x, x_before), (
    "avgpool2d_forward(x) changed its input x: a strided slice x[:, :, rows, cols] is a view of x, so adding into "
    "it (total += ...) writes into x; start the sum from a copy (.copy()) or a new array")
expect_close(y, np.array([[2.5, 2.0], [2.75, 4.25]]).reshape(1, 1, 2, 2), "avgpool2d_forward(x)",
             hint="each output is the mean of its 2x2 block: divide the sum by pool**2 = 4")
expect_equal(y.dtype, np.dtype(np.float32), "avgpool2d_forward(float32 input).dtype")
expect_close(avgpool2d_forward(x, pool=3, stride=1), np.array([[21, 27], [28, 34]]).reshape(1, 1, 2, 2) / 9,
             "avgpool2d_forward(x, pool=3, stride=1)", hint="window (i, j) starts at row stride * i, column stride * j")
expect_shape(avgpool2d_forward(np.ones((2, 3, 7, 9)), 3, 2), (2, 3, 3, 4), "avgpool2d_forward(7x9 input, pool 3, stride 2)")
print("avgpool2d_forward: all checks passed")


# %% nbgrader={"grade": false, "grade_id": "avgpool2d_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def avgpool2d_backward(dy, x, pool=2, stride=2):
    """Gradient of average pooling, vectorized: each dy[bi, c, i, j] is spread as dy / pool**2 over
    window (i, j); overlapping windows accumulate.

    dy: (B, C, H_out, W_out) upstream gradient.  x: (B, C, H, W) forward input (only its shape matters).
    Returns dx: (B, C, H, W), same dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    H_out, W_out = dy.shape[2:]
    share = dy / pool**2
    dx = np.zeros_like(x)
    for m in range(pool):
        for n in range(pool):
            rows, cols = tap_slices(m, n, stride, H_out, W_out)
            dx[:, :, rows, cols] += share
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_avgpool2d_backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
dy = np.array([[4, 8], [12, 16]], dtype=np.float32).reshape(1, 1, 2, 2)
dx = expect_implemented(avgpool2d_backward, dy, np.zeros((1, 1, 4, 4), dtype=np.float32))
expect_close(dx, np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]).reshape(1, 1, 4, 4),
             "avgpool2d_backward(dy, x)", hint="each of the pool**2 cells of a window receives dy / pool**2")
expect_equal(dx.dtype, np.dtype(np.float32), "avgpool2d_backward(float32 inputs).dtype")
dx = avgpool2d_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), pool=2, stride=1)
expect_close(dx, np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]).reshape(1, 1, 3, 3) / 4,
             "avgpool2d_backward with overlapping windows (pool 2, stride 1)",
             hint="the centre belongs to all four windows: their shares must add up (+=)")
rng = np.random.default_rng(5)
for pool, stride in [(3, 2), (3, 1), (2, 3)]:
    x = rng.standard_normal((2, 2, 7, 6))
    dy = rng.standard_normal(avgpool2d_forward(x, pool, stride).shape)
    numeric = numerical_gradient_array(lambda v: avgpool2d_forward(v, pool, stride), x, dy)
    gradient_check(avgpool2d_backward(dy, x, pool, stride), numeric,
                   f"avgpool2d_backward (pool {pool}, stride {stride})", tol=1e-8)
print("avgpool2d_backward: all checks passed")

# %% [markdown]
# ## 10. Watch the window slide
#
# The explorer below runs **your** functions (the "showing:" line under the grids says whose code
# computed the numbers; while a stub is not implemented it falls back to its own window-by-window logic). In *forward* mode it highlights the window and the
# output cell it produces. In *backward* mode the upstream gradients are `dy = 1, 2, 3, ...`, so you
# can follow each one: the highlighted window hands its `dy` to its winner (max) or spreads it evenly
# (avg), and `dx` accumulates as the position advances. Things to try:
#
# * max, `pool` 3, `stride` 1, backward: watch a large value collect the gradient of several windows;
# * a window with two equal maxima: which one receives the gradient?
# * `stride` 3 with `pool` 2: which inputs never receive any gradient?

# %%
from convlab.widgets.pooling import pooling_widget

pooling_widget(maxpool2d_forward=maxpool2d_forward, maxpool2d_backward=maxpool2d_backward,
               avgpool2d_forward=avgpool2d_forward, avgpool2d_backward=avgpool2d_backward)

# %% [markdown]
# ## 11. How much did vectorizing buy?
#
# Both versions compute the same numbers; the naive ones pay Python's overhead once per output pixel
# (and the backward once per pixel *and* channel), the vectorized ones once per tap.

# %%
import time


def median_seconds(func, *args, repeats=3):
    """Median wall time of func(*args) over `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


shape = (4, 8, 16, 16) if convlab.FAST else (16, 16, 32, 32)
x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
dy = np.ones((shape[0], shape[1], shape[2] // 2, shape[3] // 2), dtype=np.float32)
try:
    for name, naive, fast, args in [("forward", maxpool2d_forward_naive, maxpool2d_forward, (x,)),
                                    ("backward", maxpool2d_backward_naive, maxpool2d_backward, (dy, x))]:
        t_naive, t_fast = median_seconds(naive, *args), median_seconds(fast, *args)
        print(f"max pooling {name} on {shape}: naive {t_naive * 1e3:7.1f} ms, "
              f"vectorized {t_fast * 1e3:6.2f} ms ({t_naive / t_fast:.0f}x faster)")
except NotImplementedError:
    print("Implement the naive and vectorized max pooling above to see the timings.")

# %% [markdown]
# ## 12. What pooling does to an image
#
# A small generated image of a corner shape, and the same image shifted one pixel to the right.
# After 2×2 max pooling, most of the pooled map is unchanged by the shift: the strong responses
# survive wherever they sit inside their window. Average pooling blurs instead, and the shift changes
# more of its output.

# %%
image = np.zeros((1, 1, 16, 16))
image[0, 0, 3:13, 4:6] = 1.0
image[0, 0, 11:13, 4:13] = 1.0
shifted = np.roll(image, 1, axis=3)
try:
    panels = {"image": image, "shifted by 1 px": shifted,
              "max pool 2x2": maxpool2d_forward(image), "max pool of shifted": maxpool2d_forward(shifted),
              "avg pool 2x2": avgpool2d_forward(image), "avg pool of shifted": avgpool2d_forward(shifted)}
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.4))
    for ax, (title, panel) in zip(axes, panels.items()):
        ax.imshow(panel[0, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.show()
    for kind, pooled, pooled_shifted in [("max", panels["max pool 2x2"], panels["max pool of shifted"]),
                                         ("avg", panels["avg pool 2x2"], panels["avg pool of shifted"])]:
        print(f"{kind} pooling: {np.mean(pooled == pooled_shifted):.0%} of the pooled values unchanged by the shift")
except NotImplementedError:
    print("Implement maxpool2d_forward and avgpool2d_forward above to see the pooled images.")

# %% [markdown]
# ## Summary
#
# * Without a nonlinearity, stacked convolutions collapse into one. ReLU, $\max(0, x)$, is the
#   cheapest fix; its backward pass multiplies `dy` by the mask $x > 0$ (gradient 0 at $x = 0$).
# * Pooling slides a window like a convolution, so $H_{out} = \lfloor (H - \mathtt{pool})/\mathtt{stride} \rfloor + 1$.
# * Max pooling **routes** each `dy` whole to its window's first maximum (row-major); average pooling
#   **spreads** it as $\mathrm{dy}/\mathtt{pool}^2$. When windows overlap, gradients arriving at the
#   same input **add up**: a scatter-add (`+=` per tap, or `np.add.at`), never an overwrite.
# * Vectorize by looping over the `pool`² taps instead of the output pixels.
#
# Next, lesson 03 derives the backward pass of the convolution itself, where every input receives
# gradient from many outputs at once, and the same accumulation appears again.
