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
# # Lesson 01 · Convolution forward
#
# A photo of 32×32 pixels with 3 colour channels is 3 072 numbers. A fully connected layer that maps
# it to just 100 features needs 307 200 weights, and it has to learn *separately* that an edge in the
# top-left corner and the same edge in the bottom-right corner are the same thing. A convolutional
# layer fixes both problems with two ideas:
#
# * **Locality.** Each output looks at a small *window* of the input, say 3×3 pixels, because
#   nearby pixels are the ones that belong together.
# * **Weight sharing.** The same small set of weights, the *kernel* (or *filter*), slides over every
#   window. A 3×3 kernel on 3 channels has 27 weights plus one bias, whatever the image size, and a
#   pattern it detects in one place it detects everywhere: shift the input and the output shifts the
#   same way (*translation equivariance*).
#
# In this lesson you build the forward pass of a 2-D convolutional layer in numpy, one concept per
# function:
#
# | function | what it does |
# |---|---|
# | `conv_output_size` | how many window positions fit along one axis |
# | `zero_pad` | surround every image with zeros |
# | `conv_single_step` | one window times one kernel: a single output number |
# | `conv2d_forward_naive` | the whole layer with explicit loops: the formula, literally |
# | `conv2d_forward` | the same layer without a Python loop over pixels (im2col and one matrix product) |
#
# Each function has a stub cell (replace `raise NotImplementedError()` by your code) followed by a
# cell of visible tests whose messages say what looks wrong. Hidden tests grade the same functions on
# random shapes, strides, paddings and dtypes: write general code, not code that only passes the
# examples.
#
# **How answers are judged, in every lesson.** Each function must leave its array arguments
# unchanged (work on copies): a test that catches a function writing into its input names the
# argument. Whole numbers (sizes, indices) must be exact. A floating-point result is compared with
# the course's reference computed in float64 on the same inputs, and entry $i$ may differ by what
# rounding can do to a correct computation:
#
# $$|y_i - y_i^{\mathrm{ref}}| \le \bigl(\min(n, 8\sqrt{n}) + 2\bigr)\,(u + u_{64})\, \textstyle\sum_k |t_{ik}|,$$
#
# where $y_i = \sum_k t_{ik}$ is a sum of $n$ terms (products such as $x \cdot w$), $u$ is the unit
# roundoff of your inputs' dtype ($2^{-24}$ for float32, $2^{-53}$ for float64) and $u_{64}$ that of the
# reference. Loops, `einsum`, `tensordot` and one big matrix product all pass, in any order of
# summation, in float32 or float64. The visible tests use the same rule (`convlab.tolerance`).
#
# **Time limits, in every lesson.** The grader runs your notebook top to bottom in a fresh sandbox
# and stops what runs too long: a cell after 30 s of CPU time, one hidden-check call after 10 s, the
# whole notebook after 180 s. A function with a tighter limit says so in its docstring and its
# visible test applies it (`conv2d_forward` below: 2 s). Code that passes the visible tests in a
# few seconds is far inside all of them.
#
# **Conventions** (the "channels first" layout of PyTorch). An input batch `x` has shape
# `(B, C_in, H, W)`: batch, input channels, height, width. The weights `w` have shape
# `(C_out, C_in, K_h, K_w)`: one kernel of shape `(C_in, K_h, K_w)` per output channel. The bias `b`
# has shape `(C_out,)`, and the output `y` has shape `(B, C_out, H_out, W_out)`. In the formulas,
# arrays keep their code names in lower case ($x$, $x_{pad}$, $w$, $b$, $y$) and capitals are sizes
# ($B$, $C$, $H$, $W$, $K$): here $W$ is always a width, never the weights.

# %% tags=["reference"]
import numpy as np

# %%
import time

import convlab
from convlab.expect import expect_close, expect_dtype, expect_equal, expect_implemented, expect_shape, hint_for
from convlab.speed import SPEED_LABEL, expect_speed_rule, speed_problem
from convlab.widgets.conv_slider import conv_slider

# %% [markdown]
# ## 1. How many positions fit? The output size
#
# Take one axis, the height. The input has $H_{in}$ rows (`in_size`); we add `pad` $= p$ rows of
# zeros above and below, so the padded input has $H_{in} + 2p$ rows, numbered $0 \dots H_{in}+2p-1$.
# A window of $K$ rows (`kernel_size`) whose top row is $t$ covers rows $t, t+1, \dots, t+K-1$. It
# fits inside the padded input when
#
# $$0 \le t \quad\text{and}\quad t + K - 1 \le H_{in} + 2p - 1
#   \qquad\Longleftrightarrow\qquad 0 \le t \le H_{in} + 2p - K .$$
#
# With stride $s$ (`stride`) the window does not visit every $t$: output row $i$ uses the window
# that starts at $t = s \cdot i$, for $i = 0, 1, 2, \dots$ The allowed $i$ are those with
#
# $$s \cdot i \le H_{in} + 2p - K \qquad\Longleftrightarrow\qquad i \le \frac{H_{in} + 2p - K}{s}.$$
#
# $i$ is a whole number, so the largest allowed $i$ is
# $\left\lfloor \frac{H_{in} + 2p - K}{s} \right\rfloor$; counting $i = 0$ as well gives
#
# $$\boxed{\;H_{out} = \left\lfloor \frac{H_{in} + 2p - K}{s} \right\rfloor + 1\;}$$
#
# The width works the same way with $W_{in}$ and the kernel width $K_w$.
#
# **Worked example.** $H_{in} = 7$, $K = 3$, $p = 1$, $s = 2$. The padded input has $9$ rows, a
# window may start at any $t \le 9 - 3 = 6$, and the stride visits $t = 0, 2, 4, 6$: four positions.
# The formula agrees: $\lfloor (7 + 2 - 3)/2 \rfloor + 1 = 3 + 1 = 4$.
#
# **When the stride does not divide evenly**, the floor drops the leftover. $H_{in} = 8$, $K = 3$,
# $p = 0$, $s = 2$: $\lfloor 5/2 \rfloor + 1 = 3$ windows, starting at rows $0, 2, 4$. A fourth window
# would start at row 6 and need rows 6 to 8, but row 8 does not exist, so the last input row is
# never read. For non-negative integers the floor of a division is Python's `//`.
#
# **"Same" padding.** We often want the output to keep the input size, so that layers stack without
# the image shrinking. With $s = 1$ the formula gives $H_{out} = H_{in} + 2p - K + 1$, which equals
# $H_{in}$ exactly when
#
# $$2p = K - 1 \qquad\Longleftrightarrow\qquad p = \frac{K - 1}{2}.$$
#
# That is a whole number only for odd $K$, one reason kernels are almost always 1×1, 3×3, 5×5 or
# 7×7: a 3×3 kernel needs $p = 1$, a 5×5 kernel $p = 2$. Without padding (a "valid" convolution)
# every 3×3 layer shrinks the image by 2 pixels per axis, and border pixels take part in fewer
# windows than central ones.

# %% nbgrader={"grade": false, "grade_id": "conv_output_size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv_output_size(in_size, kernel_size, stride=1, pad=0):
    """Number of window positions along one axis: the output height (or width) of a convolution.

    in_size: input length along the axis; kernel_size: window length; stride: step between
    windows (>= 1); pad: zeros added on *each* side (>= 0). All ints. Returns an int.
    Raises ValueError when the window does not fit in the padded input.
    """
    ### BEGIN SOLUTION
    padded_size = in_size + 2 * pad
    if kernel_size > padded_size:
        raise ValueError(f"a window of {kernel_size} does not fit in a padded input of {padded_size}")
    return (padded_size - kernel_size) // stride + 1
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv_output_size", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# Each expected size below is worked out by hand from the boxed formula; `hints` name the mistake
# that would produce a given wrong answer.
def check_output_size(args, expected, hints):
    call = "conv_output_size(in_size={}, kernel_size={}, stride={}, pad={})".format(*args)
    got = expect_implemented(conv_output_size, *args)
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise AssertionError(f"{call} returned {type(got).__name__} {got!r}: return an int "
                             "(floor division // keeps the result whole)")
    expect_equal(got, expected, name=call, hint=hints.get(got))


check_output_size((7, 3, 2, 1), 4, {7: "did you forget the stride?", 3: "did you forget the + 1, or pad only one side?"})
check_output_size((5, 3, 1, 1), 5, {3: "did you forget the padding?", 4: "did you forget the + 1, or pad only one side?"})
check_output_size((6, 3, 3, 2), 3, {2: "the padded length is in_size + 2 * pad (pad zeros on each side), not in_size + 2",
                                    4: "round down (floor), not up: a window that does not fit is not counted",
                                    8: "did you forget the stride?"})
check_output_size((8, 3, 2, 0), 3, {4: "round down (floor), not up: a window that does not fit is not counted"})
check_output_size((32, 5, 1, 0), 28, {27: "did you forget the + 1? Position 0 counts too"})
check_output_size((4, 4, 1, 0), 1, {0: "a kernel as big as the input fits exactly once: did you forget the + 1?"})
try:                                       # a 5-wide window fits once in 3 + 2 * 1 = 5 padded inputs
    size = conv_output_size(3, 5, 1, 1)
except ValueError as error:
    raise AssertionError(f"conv_output_size(in_size=3, kernel_size=5, stride=1, pad=1) raised ValueError ({error}), "
                         "but the window fits once in the 3 + 2 * 1 = 5 padded inputs: does your fit test count "
                         "the padding on both sides?") from None
check_output_size((3, 5, 1, 1), 1, {0: "a kernel as big as the padded input fits exactly once: did you forget the + 1?"})
try:                                       # a 6-wide window in 3 + 2 * 1 = 5 padded inputs: no position at all
    size = conv_output_size(3, 6, 1, 1)
except ValueError:
    pass
else:
    raise AssertionError(f"conv_output_size(in_size=3, kernel_size=6, stride=1, pad=1) returned {size!r}: the window "
                         "does not fit in the 5 padded inputs, so raise ValueError (see the docstring)")
print("conv_output_size: all visible tests passed")

# %% [markdown]
# ## 2. Zero padding
#
# Padding puts `pad` rows of zeros above and below, and `pad` columns left and right, of every
# image in every channel; the batch and channel axes are untouched:
#
# $$x_{pad}[bi, ci, r + \text{pad}, c + \text{pad}] = x[bi, ci, r, c],
#   \qquad x_{pad} = 0 \text{ everywhere else},$$
#
# so `x_pad` has shape `(B, C_in, H + 2*pad, W + 2*pad)`. Here `bi` indexes the batch (we cannot call
# it `b`: that name is the bias) and `ci` the input channel. `np.pad` does this in one call once you
# tell it how many zeros go before and after on each of the four axes.

# %% nbgrader={"grade": false, "grade_id": "zero_pad", "locked": false, "schema_version": 3, "solution": true, "task": false}
def zero_pad(x, pad):
    """Surround each image with `pad` zeros on all four sides.

    x: (B, C, H, W) -> (B, C, H + 2*pad, W + 2*pad), same dtype as x.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_zero_pad", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# A 2x2 image padded by 1, written out by hand.
x = np.array([[[[1., 2.],
                [3., 4.]]]])                    # (1, 1, 2, 2)
expected = np.array([[[[0., 0., 0., 0.],
                       [0., 1., 2., 0.],
                       [0., 3., 4., 0.],
                       [0., 0., 0., 0.]]]])     # (1, 1, 4, 4)
x_pad = expect_implemented(zero_pad, x, 1)
expect_close(x_pad, expected, name="zero_pad(x, 1)", hint="the image sits in the middle, zeros all around")

# Shapes: only height and width grow, by 2 * pad each (pad on both sides).
x = np.ones((2, 3, 4, 5))
shape_hints = {(6, 7, 8, 9): "pad only the last two axes (height and width), not batch and channels",
               (2, 3, 6, 7): "pad both sides: `pad` zeros before *and* after"}
x_pad = zero_pad(x, 2)
expect_shape(x_pad, (2, 3, 8, 9), name="zero_pad(x, 2)", hint=shape_hints.get(np.shape(x_pad)))
expect_close(x_pad[:, :, 2:-2, 2:-2], x, name="the middle of zero_pad(x, 2)", hint="the input must sit unchanged in the middle")
expect_equal(float(np.abs(x_pad).sum()), float(x.size), name="sum of zero_pad(x, 2)", hint="the border must be zeros")
# pad = 0 must work too (careful: the slice pad:-pad is empty when pad is 0, since -0 is 0).
expect_shape(expect_implemented(zero_pad, x, 0), x.shape, name="zero_pad(x, 0)")
expect_dtype(zero_pad(x.astype(np.float32), 1), np.float32, "zero_pad of float32 input",
             hint="keep x's dtype: np.zeros defaults to float64, pass dtype=x.dtype")
print("zero_pad: all visible tests passed")

# %% [markdown]
# ## 3. One window, one number
#
# ### Cross-correlation, not convolution
#
# In signal processing, the *convolution* of a signal $x$ with a kernel $w$ is
#
# $$(x * w)[i] = \sum_m x[i - m]\; w[m]:$$
#
# the kernel is *flipped*, because as $m$ goes up the input index goes down. *Cross-correlation*
# slides the kernel without flipping it:
#
# $$(x \star w)[i] = \sum_m x[i + m]\; w[m].$$
#
# Take $x = [1, 2, 3]$ and $w = [1, 0, -1]$, one window. Cross-correlation gives
# $1 \cdot 1 + 2 \cdot 0 + 3 \cdot (-1) = -2$; convolution uses the flipped kernel $[-1, 0, 1]$ and
# gives $+2$.
#
# What PyTorch's `conv2d`, TensorFlow's `Conv2D` and every other deep-learning library call
# "convolution" is cross-correlation. Nothing is lost: the kernel is learned, so a network that
# needs the flipped kernel simply learns it flipped. **In this course "convolution" means
# cross-correlation: never flip `w` in the forward pass.** (A real flip appears in the backward pass,
# in lesson 03.)
#
# ### The single step
#
# One output number is the sum of the elementwise products of one input window `x_patch`, shape
# `(C_in, K_h, K_w)` (all input channels of the window), with one kernel `w` of the same shape, plus
# that kernel's bias `b`:
#
# $$\text{out} = \sum_{ci} \sum_{m} \sum_{n} x\_patch[ci, m, n] \; w[ci, m, n] \; + \; b .$$
#
# The sum runs over the input channels too: a colour filter mixes red, green and blue into one
# number. The bias is added once per window, not once per product.

# %% nbgrader={"grade": false, "grade_id": "conv_single_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv_single_step(x_patch, w, b):
    """One output value: sum of x_patch * w over all entries, plus the bias.

    x_patch: (C_in, K_h, K_w); w: (C_in, K_h, K_w); b: scalar. Returns a float.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    return float(np.sum(x_patch * w) + b)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv_single_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# One channel: 1*1 + 2*0 + 3*0 + 4*(-1) + 0.5 = -2.5
x_patch = np.array([[[1., 2.],
                     [3., 4.]]])
w = np.array([[[1., 0.],
               [0., -1.]]])
got = expect_implemented(conv_single_step, x_patch, w, 0.5)
if np.ndim(got) != 0:
    raise AssertionError(f"conv_single_step returned an array of shape {np.shape(got)}: sum everything to one number")
hints = {-3.0: "did you forget the bias?", 3.5: "you flipped the kernel: use w as it is (cross-correlation)",
         -0.25: "sum the products, do not average them", -1.0: "add the bias once, not to every product",
         -1.5: "multiply entry by entry (x_patch * w), not with the matrix product @"}
expect_close(got, -2.5, name="conv_single_step (one channel)", hint=hints.get(round(float(got), 4)))

# Two channels: channel 0 gives 1+2+3+4 = 10, channel 1 gives 2*8 = 16; 10 + 16 - 1 = 25
x_patch = np.array([[[1., 2.], [3., 4.]],
                    [[5., 6.], [7., 8.]]])
w = np.array([[[1., 1.], [1., 1.]],
              [[0., 0.], [0., 2.]]])
got = conv_single_step(x_patch, w, -1.0)
expect_close(got, 25.0, name="conv_single_step (two channels)",
             hint={9.0: "sum over all input channels, not only the first"}.get(round(float(got), 4)))
print("conv_single_step: all visible tests passed")

# %% [markdown]
# ## 4. The whole layer, with loops
#
# Output channel `co` uses the kernel `w[co]` (shape `(C_in, K_h, K_w)`) and the bias `b[co]`. Output
# pixel `(i, j)` of image `bi` is the single step of section 3 on the window whose top-left corner
# is at row `stride * i`, column `stride * j` of the padded input:
#
# $$y[bi, co, i, j] \;=\; \sum_{ci=0}^{C_{in}-1} \; \sum_{m=0}^{K_h-1} \; \sum_{n=0}^{K_w-1}
#   w[co, ci, m, n] \; x_{pad}[bi, ci,\; \text{stride} \cdot i + m,\; \text{stride} \cdot j + n]
#   \;+\; b[co]$$
#
# for every `bi < B`, `co < C_out`, `i < H_out`, `j < W_out`, with `H_out` and `W_out` from section 1.
# The two inner sums run over the kernel's rows `m` and columns `n`; the outer one over the input
# channels `ci`. Writing $x_{pad}$ in terms of the unpadded input (section 2) gives the same formula
# without a padded array,
#
# $$y[bi, co, i, j] = \sum_{ci} \sum_{m} \sum_{n} w[co, ci, m, n] \;
#   x[bi, ci,\; \text{stride} \cdot i + m - \text{pad},\; \text{stride} \cdot j + n - \text{pad}]
#   + b[co],$$
#
# where a term whose row or column falls outside the image counts as zero. The first form is the one
# to code: pad once, then hand the window
# `x_pad[bi, :, stride*i : stride*i + K_h, stride*j : stride*j + K_w]` and `w[co]`, `b[co]` to
# `conv_single_step`.
#
# **Cost.** Each output number takes $C_{in} K_h K_w$ multiply-adds, so the layer does
# $B \cdot C_{out} \cdot H_{out} \cdot W_{out} \cdot C_{in} \cdot K_h \cdot K_w$ of them. For a batch
# of 64 images of 32×32 pixels, 3 → 32 channels, a 3×3 kernel and "same" padding, that is
# $64 \cdot 32 \cdot 32 \cdot 32 \cdot 3 \cdot 9 \approx 57$ million. Section 6 counts a smaller layer's
# multiply-adds the same way to turn its timings into multiply-adds per second.
#
# ### Watch the window slide
#
# One channel, bias 0. Move **position** (or press ▶) to slide the window over the padded input
# (grey cells are padding): the highlighted patch, multiplied entry by entry with the kernel and
# summed, gives the highlighted output cell, and the dot product is written out below the grids.
# Change the input size, kernel size, stride and padding and check the output size against the
# formula of section 1. *Dilation* $d$ spreads the kernel's taps $d$ pixels apart: a 3×3 kernel with
# $d = 2$ covers a 5×5 area with 9 weights, so it acts like a kernel of size $d(K-1) + 1$ and
# $H_{out} = \lfloor (H_{in} + 2p - d(K-1) - 1)/s \rfloor + 1$ (you will use it in lesson 05).

# %%
conv_slider()

# %% nbgrader={"grade": false, "grade_id": "conv2d_forward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    """Convolution (cross-correlation) forward pass with explicit loops over the output.

    x: (B, C_in, H, W); w: (C_out, C_in, K_h, K_w); b: (C_out,); stride, pad: ints.
    Returns y: (B, C_out, H_out, W_out), the output height and width given by conv_output_size.
    Graded on its output with your own conv_output_size, zero_pad and conv_single_step where it calls
    them (as this section suggests), so a bug in one of those costs these points too: pass their tests first.
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = conv_output_size(H, K_h, stride, pad)
    W_out = conv_output_size(W, K_w, stride, pad)
    x_pad = zero_pad(x, pad)
    y = np.zeros((B, C_out, H_out, W_out))
    for bi in range(B):
        for co in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = stride * i, stride * j
                    x_patch = x_pad[bi, :, top:top + K_h, left:left + K_w]
                    y[bi, co, i, j] = conv_single_step(x_patch, w[co], b[co])
    return y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv2d_forward_naive", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# Shapes: x (2, 3, 7, 10), w (4, 3, 3, 2), stride 2, pad 1.
# H_out = (7 + 2 - 3) // 2 + 1 = 4, W_out = (10 + 2 - 2) // 2 + 1 = 6, one channel per kernel: C_out = 4.
rng = np.random.default_rng(0)
y = expect_implemented(conv2d_forward_naive, rng.standard_normal((2, 3, 7, 10)), rng.standard_normal((4, 3, 3, 2)),
                       rng.standard_normal(4), stride=2, pad=1)
shape_hints = {(2, 4, 7, 11): "did you forget the stride?", (2, 4, 3, 5): "did you forget the + 1, or the padding, or pad only one side?",
               (2, 4, 5, 7): "did you pad twice?", (2, 3, 4, 6): "the output has one channel per kernel: C_out = w.shape[0]",
               (2, 4, 6, 4): "are height and width swapped?",
               (2, 4, 4, 5): "the height goes with the kernel height K_h = w.shape[2], the width with K_w = w.shape[3]"}
expect_shape(y, (2, 4, 4, 6), name="output", hint=shape_hints.get(np.shape(y)))

# A 3x3 image, a 2x2 kernel, bias 1, computed by hand from the formula:
# y[0, 0, i, j] = 1*x[i, j] + 2*x[i, j+1] + 0*x[i+1, j] - 1*x[i+1, j+1] + 1
x = np.array([[[[1., 2., 3.],
                [4., 5., 6.],
                [7., 8., 9.]]]])                # (1, 1, 3, 3)
w = np.array([[[[1., 2.],
                [0., -1.]]]])                   # (1, 1, 2, 2)
b = np.array([1.])
# stride 1, pad 0: y[0,0,0,0] = 1 + 4 - 5 + 1 = 1    y[0,0,0,1] = 2 + 6 - 6 + 1 = 3
#                  y[0,0,1,0] = 4 + 10 - 8 + 1 = 7   y[0,0,1,1] = 5 + 12 - 9 + 1 = 9
y = conv2d_forward_naive(x, w, b)
expect_shape(y, (1, 1, 2, 2), name="conv2d_forward_naive(x, w, b) with stride 1, pad 0", hint=hint_for(np.shape(y), {
    "with pad=0 nothing is padded: did you pad by 1 instead of by `pad`?": (1, 1, 4, 4),
    "did you forget the + 1 in the output size?": (1, 1, 1, 1)}))
hint = hint_for(y, {"you flipped the kernel: the forward pass is a cross-correlation (section 3)": [[[[13., 15.], [19., 21.]]]],
                    "did you forget the bias?": [[[[0., 2.], [6., 8.]]]]})
expect_close(y, [[[[1., 3.], [7., 9.]]]], name="conv2d_forward_naive(x, w, b)", hint=hint)

# stride 2, pad 1: the padded input is 5x5 and the windows start at rows/columns 0 and 2.
# y[0,0,0,0] = -1*1 + 1 = 0       (window [[0, 0], [0, 1]])
# y[0,0,0,1] = 0*2 - 1*3 + 1 = -2  (window [[0, 0], [2, 3]])
# y[0,0,1,0] = 2*4 - 1*7 + 1 = 2   (window [[0, 4], [0, 7]])
# y[0,0,1,1] = 5 + 2*6 - 9 + 1 = 9 (window [[5, 6], [8, 9]])
y = conv2d_forward_naive(x, w, b, stride=2, pad=1)
expect_shape(y, (1, 1, 2, 2), name="output", hint={(1, 1, 4, 4): "did you forget the stride?",
                                                   (1, 1, 1, 1): "did you forget the padding?"}.get(np.shape(y)))
STRIDE_HINTS = {"window (i, j) starts at row stride * i, column stride * j: did you leave out the stride there?":
                [[[[0., -1.], [-1., 1.]]]]}      # windows at rows/columns 0 and 1 instead of 0 and 2
expect_close(y, [[[[0., -2.], [2., 9.]]]], name="conv2d_forward_naive(x, w, b, stride=2, pad=1)",
             hint=hint_for(y, STRIDE_HINTS))

# Two input channels, two kernels: each output channel sums over both input channels and adds its own bias.
# y[0, 0] = (1 + 2 + 3 + 4) + 0 + 1 = 11;   y[0, 1] = 0 + 40 - 1 = 39
x = np.array([[[[1., 2.], [3., 4.]],
               [[10., 20.], [30., 40.]]]])      # (1, 2, 2, 2)
w = np.array([[[[1., 1.], [1., 1.]], [[0., 0.], [0., 0.]]],
              [[[0., 0.], [0., 0.]], [[0., 0.], [0., 1.]]]])   # (2, 2, 2, 2)
y = conv2d_forward_naive(x, w, np.array([1., -1.]))
hint = {(12.0, 38.0): "add the bias once per output value, not once per input channel",
        (11.0, -1.0): "sum over all input channels"}.get(tuple(np.ravel(y).tolist()))
expect_close(y, [[[[11.]], [[39.]]]], name="conv2d_forward_naive with two channels", hint=hint)
print("conv2d_forward_naive: all visible tests passed")

# %% [markdown]
# ## 5. Vectorize: im2col and one matrix product
#
# The naive version runs its loop body $B \cdot C_{out} \cdot H_{out} \cdot W_{out}$ times, and every
# Python-level iteration costs about a microsecond of interpreter overhead before any arithmetic
# happens. numpy is fast only when each call does a lot of work. So reorganise the work.
#
# Look at the formula again. For a fixed output position `(bi, i, j)` the window
# `x_pad[bi, :, stride*i : stride*i + K_h, stride*j : stride*j + K_w]` is a block of
# $C_{in} K_h K_w$ numbers, and $y[bi, co, i, j]$ is its dot product with `w[co]` (flattened the same
# way) plus `b[co]`. All those dot products together are one matrix product:
#
# 1. **im2col** ("image to columns"): flatten every window into one column of a matrix `cols` with
#    $C_{in} K_h K_w$ rows, indexed by $(ci, m, n)$, and $B \cdot H_{out} \cdot W_{out}$ columns,
#    indexed by $(bi, i, j)$:
#    $$cols[(ci, m, n), (bi, i, j)] = x_{pad}[bi, ci,\; \text{stride} \cdot i + m,\; \text{stride} \cdot j + n].$$
# 2. Flatten each kernel into a row: `w_rows = w.reshape(C_out, C_in * K_h * K_w)`, so that
#    $w\_rows[co, (ci, m, n)] = w[co, ci, m, n]$.
# 3. One product does every dot product at once:
#    $$y_{mat}[co, (bi, i, j)] = \sum_{(ci, m, n)} w\_rows[co, (ci, m, n)] \; cols[(ci, m, n), (bi, i, j)] + b[co],$$
#    the forward formula of section 4 with its three sums merged into one, computed by an optimised
#    matrix-multiply routine (BLAS) instead of the interpreter.
# 4. `y_mat` has shape `(C_out, B * H_out * W_out)`: reshape it to `(C_out, B, H_out, W_out)` and
#    move the batch axis to the front.
#
# Here is im2col with a loop, to show *what* it builds: one 4×4 image, one channel, a 2×2 kernel,
# stride 1, so $3 \times 3 = 9$ windows and 9 columns of 4 numbers each.

# %%
image = np.arange(16).reshape(4, 4)
columns = [image[i:i + 2, j:j + 2].ravel() for i in range(3) for j in range(3)]
print("image:\n", image)
print("cols (one column per window, in the order (i, j) = (0, 0), (0, 1), ..., (2, 2)):\n", np.stack(columns, axis=1))

# %% [markdown]
# Column 0 is the top-left window `[[0, 1], [4, 5]]` read row by row; column 1 is the window one
# step to the right. Neighbouring windows overlap, so every input number appears in up to
# $K_h K_w$ columns: im2col trades memory (a matrix $K_h K_w$ times bigger than the input, divided
# by $\text{stride}^2$) for speed.
#
# **Without a Python loop.** numpy can hand you every window as a *view*, without copying anything:
# `numpy.lib.stride_tricks.sliding_window_view(a, (K_h, K_w), axis=(2, 3))` has shape
# `(B, C_in, H_pad - K_h + 1, W_pad - K_w + 1, K_h, K_w)`, and its entry `[bi, ci, r, c, m, n]` is
# `a[bi, ci, r + m, c + n]`. It only changes the array's *strides* (how many bytes to jump per index,
# the same trick as `as_strided`), so it is instant. Slicing `[:, :, ::stride, ::stride]` keeps the
# windows that start at multiples of the stride. Then `transpose` puts the axes in the order
# $(ci, m, n, bi, i, j)$ and `reshape` makes them two: this reshape is the one real copy, the `cols`
# matrix. On the small image above:

# %%
from numpy.lib.stride_tricks import sliding_window_view

windows = sliding_window_view(image, (2, 2))
print("windows.shape:", windows.shape, "  window (1, 2):\n", windows[1, 2])

# %% [markdown]
# **Keep the dtype.** Networks compute in `float32`: half the memory of `float64` and about twice
# the matrix-multiply speed. `conv2d_forward` must return the dtype of `x` (float32 in, float32
# out). Two traps: `np.zeros` defaults to float64, and any operation mixing a float32 array with a
# float64 one (say a float64 bias) gives float64, so convert `w` and `b` with `.astype(x.dtype)`.

# %% nbgrader={"grade": false, "grade_id": "conv2d_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, pad=0):
    """Vectorized convolution (cross-correlation) forward pass: im2col and one matrix product.

    x: (B, C_in, H, W); w: (C_out, C_in, K_h, K_w); b: (C_out,); stride, pad: ints.
    Returns y: (B, C_out, H_out, W_out) with the dtype of x (float32 stays float32).
    Speed: convlab.speed's problem (32 images of 3x64x64, 16 kernels of 3x3, stride 1, pad 1) within
    SPEED_SECONDS = 2 s of CPU time, as the grader stops it there: no Python loop over pixels.
    Graded with your own conv_output_size and zero_pad where it calls them (pass their tests first).
    Leaves its array arguments unchanged (works on copies).
    """
    ### BEGIN SOLUTION
    # Lesson 01's im2col (section 5) and one matrix product, organised for speed (`make bench`):
    # * CHUNK images at a time, so their columns are still in the CPU cache for the product;
    # * image grids laid out flat, so one tap's inputs for whole output rows form ONE contiguous
    #   run to copy (the product then also computes a few spare columns per row, which read past
    #   the row's end; the output leaves them out);
    # * the stride split into phases: grid (p, q) holds x_pad's rows p, p + s, ... and columns
    #   q, q + s, ..., so tap (m, n) reads phase (m % s, n % s) with step 1;
    # * the bias as one more column of w (b) times one more row of cols (ones).
    CHUNK = 8
    B, C_in, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    s = stride
    dtype = np.result_type(x.dtype, np.float32)   # floats keep their precision; ints become float64
    H_out, W_out = (H + 2 * pad - K_h) // s + 1, (W + 2 * pad - K_w) // s + 1
    H_g, W_g = H_out + (K_h - 1) // s, W_out + (K_w - 1) // s     # rows and columns of a phase grid
    phases, shared = [], W_g - W_out
    for p in range(s):
        for q in range(s):
            r0, c0 = -(-max(pad - p, 0) // s), -(-max(pad - q, 0) // s)   # first grid row/column inside x
            rows = range(s * r0 + p - pad, H, s)[:H_g - r0]                 # the x rows it holds
            columns = range(s * c0 + q - pad, W, s)[:W_g - c0]
            shared = max(0, min(shared, c0, W_g - c0 - len(columns)))     # zero columns at both ends
            phases.append((p, q, slice(r0, r0 + len(rows)), slice(c0, c0 + len(columns)),
                           slice(rows.start, rows.stop, s), slice(columns.start, columns.stop, s)))
    # a row's zero columns at its right end double as the next row's at its left: rows P apart;
    # the last output row's spare columns read past the grid, into room left for them
    P = W_g - shared
    n_chunk = max(1, min(CHUNK, B))
    grids = np.zeros((s, s, n_chunk, C_in, H_g * P + (K_w - 1) // s), dtype)   # the padding stays 0
    grid_rows = grids[..., :H_g * P].reshape(s, s, n_chunk, C_in, H_g, P)
    n_cols = H_out * P                                            # columns per image, spare ones included
    cols = np.empty((C_in * K_h * K_w + 1, n_chunk * n_cols), dtype)  # rows (ci, m, n), columns (bi, i, j)
    cols[-1] = 1
    taps = cols[:-1].reshape(C_in, K_h, K_w, n_chunk, n_cols)
    w_b = np.concatenate([w.reshape(C_out, -1), b.reshape(C_out, 1)], axis=1).astype(dtype, copy=False)
    y = np.empty((C_out, B, H_out, P), dtype)
    for lo in range(0, B, n_chunk):
        n_img = min(n_chunk, B - lo)
        for p, q, grid_r, grid_c, x_r, x_c in phases:
            grid_rows[p, q, :n_img, :, grid_r, grid_c] = x[lo:lo + n_img, :, x_r, x_c]
        for m in range(K_h):
            for n in range(K_w):
                start = (m // s) * P + n // s
                taps[:, m, n, :n_img] = grids[m % s, n % s, :n_img, :, start:start + n_cols].transpose(1, 0, 2)
        np.matmul(w_b, cols[:, :n_img * n_cols], out=y[:, lo:lo + n_img].reshape(C_out, n_img * n_cols))
    return y[:, :, :, :W_out].transpose(1, 0, 2, 3)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv2d_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
# Same shapes as for the naive version: x (2, 3, 7, 10), w (4, 3, 3, 2), stride 2, pad 1 -> (2, 4, 4, 6).
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((2, 3, 7, 10)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
y = expect_implemented(conv2d_forward, x, w, b, stride=2, pad=1)
shape_hints = {(2, 4, 7, 11): "did you forget the stride?", (2, 4, 3, 5): "did you forget the + 1, or the padding, or pad only one side?",
               (2, 4, 5, 7): "did you pad twice?", (2, 3, 4, 6): "the output has one channel per kernel: C_out = w.shape[0]",
               (2, 4, 6, 4): "are height and width swapped?", (4, 2, 4, 6): "move the batch axis first: (B, C_out, H_out, W_out)",
               (2, 4, 4, 5): "the height goes with the kernel height K_h = w.shape[2], the width with K_w = w.shape[3]"}
expect_shape(y, (2, 4, 4, 6), name="output", hint=shape_hints.get(np.shape(y)))

# The hand-computed cases of the naive test (see there for the arithmetic).
x = np.array([[[[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]]])
w = np.array([[[[1., 2.], [0., -1.]]]])
b = np.array([1.])
y = conv2d_forward(x, w, b)
expect_shape(y, (1, 1, 2, 2), name="conv2d_forward(x, w, b) with stride 1, pad 0", hint=hint_for(np.shape(y), {
    "with pad=0 nothing is padded: did you pad by 1 instead of by `pad`?": (1, 1, 4, 4),
    "did you forget the + 1 in the output size?": (1, 1, 1, 1)}))
hint = hint_for(y, {"you flipped the kernel: the forward pass is a cross-correlation (section 3)": [[[[13., 15.], [19., 21.]]]],
                    "did you forget the bias?": [[[[0., 2.], [6., 8.]]]]})
expect_close(y, [[[[1., 3.], [7., 9.]]]], name="conv2d_forward(x, w, b)", hint=hint)
y = conv2d_forward(x, w, b, stride=2, pad=1)
expect_shape(y, (1, 1, 2, 2), name="output", hint={(1, 1, 4, 4): "did you forget the stride?",
                                                   (1, 1, 1, 1): "did you forget the padding?"}.get(np.shape(y)))
expect_close(y, [[[[0., -2.], [2., 9.]]]], name="conv2d_forward(x, w, b, stride=2, pad=1)", hint=hint_for(y, {
    "window (i, j) starts at row stride * i, column stride * j: did you leave out the stride there?":
    [[[[0., -1.], [-1., 1.]]]]}))
x = np.array([[[[1., 2.], [3., 4.]], [[10., 20.], [30., 40.]]]])
w = np.array([[[[1., 1.], [1., 1.]], [[0., 0.], [0., 0.]]],
              [[[0., 0.], [0., 0.]], [[0., 0.], [0., 1.]]]])
y = conv2d_forward(x, w, np.array([1., -1.]))
hint = {(12.0, 38.0): "add the bias once per output value, not once per input channel",
        (11.0, -1.0): "sum over all input channels"}.get(tuple(np.ravel(y).tolist()))
expect_close(y, [[[[11.]], [[39.]]]], name="conv2d_forward with two channels", hint=hint)

# Two images, four kernels, all zero but w[1, 2, 2, 1] = 1: channel 1 copies one pixel per window,
# y[bi, 1, i, j] = x_pad[bi, 2, 2*i + 2, 2*j + 1] + b[1], and the other channels hold just their bias.
x = rng.standard_normal((2, 3, 7, 10))
w = np.zeros((4, 3, 3, 2))
w[1, 2, 2, 1] = 1.0
b = np.array([0.5, -1.0, 2.0, 3.0])
y = conv2d_forward(x, w, b, stride=2, pad=1)
expected = np.broadcast_to(b[None, :, None, None], (2, 4, 4, 6)).copy()
expected[:, 1] += np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))[:, 2, 2::2, 1::2]
scrambled = np.size(y) == expected.size and np.allclose(np.sort(np.ravel(y)), np.sort(expected.ravel()))
expect_close(y, expected, name="conv2d_forward with a one-hot kernel, 2 images, 4 output channels",
             hint="the right numbers in the wrong places: y_mat[co, (bi, i, j)] reshapes to (C_out, B, H_out, W_out), "
                  "then move the batch axis first" if scrambled else None)

# float32 in, float32 out (a float64 bias must not promote the result).
x32 = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
w32 = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
y = conv2d_forward(x32, w32, np.zeros(2), stride=1, pad=1)
expect_dtype(y, np.float32, "conv2d_forward of float32 input",
             hint="keep x's dtype (convert w and b with .astype(x.dtype), avoid np.zeros' float64 default)")

# The speed rule (convlab.speed), as the hidden check applies it: stopped at the limit. When graded,
# only the hidden check times it, so a slow answer spends its limit once.
expect_speed_rule(conv2d_forward, *speed_problem(rng, "x", "w", "b"), stride=1, pad=1,
                  name=f"conv2d_forward on {SPEED_LABEL}",
                  hint="vectorize it: im2col and one matrix product (section 5), no Python loop over pixels")
print("conv2d_forward: all visible tests passed")

# %% [markdown]
# ### Your `conv2d_forward` in the widget
#
# The widget now fills its output grid with **your** `conv2d_forward`. For dilation it passes your
# function a bigger kernel with zeros between the taps: a dilated convolution is an ordinary one
# with a larger, mostly-zero kernel. If your output disagrees with the dot product at the highlighted
# cell, the widget says so, and where.

# %%
conv_slider(conv2d_forward)

# %% [markdown]
# ## 6. How much faster?
#
# Both of your functions compute the same numbers. Here they race on a moderate layer (one batch
# through a small first layer with "same" padding), both on a single core, so the speed-up measures
# vectorization alone (numpy's matrix product can also use several cores: `make bench` measures
# that, and compares the course's reference with PyTorch on bigger layers). The naive time is one
# run, the vectorized time the best of twenty; the throughput counts multiply-adds per second, with
# section 4's cost formula.

# %%
from threadpoolctl import threadpool_limits


def best_time(func, repeats):
    """(fastest wall-clock time of `repeats` runs of func(), in seconds; func's result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


B, C_in, C_out, size = (2, 3, 4, 16) if convlab.FAST else (8, 3, 16, 32)
rng = np.random.default_rng(1)
x = rng.standard_normal((B, C_in, size, size)).astype(np.float32)
w = rng.standard_normal((C_out, C_in, 3, 3)).astype(np.float32)
b = np.zeros(C_out, dtype=np.float32)
mult_adds = B * C_out * size * size * C_in * 3 * 3
try:
    with threadpool_limits(limits=1):      # one core for both: the race measures vectorization alone
        t_naive, y_naive = best_time(lambda: conv2d_forward_naive(x, w, b, stride=1, pad=1), repeats=1)
        t_fast, y_fast = best_time(lambda: conv2d_forward(x, w, b, stride=1, pad=1), repeats=20)
except NotImplementedError:
    print("Implement conv2d_forward_naive and conv2d_forward first, then run this cell again.")
except Exception as error:  # a bug in either function: one line, not a traceback
    print(f"Your convolutions raised {type(error).__name__}: {error}. Make their tests pass, then run this cell again.")
else:
    print(f"layer: B={B}, {C_in} -> {C_out} channels, {size}x{size}, 3x3 kernel, pad 1 "
          f"({mult_adds / 1e6:.1f} million multiply-adds)")
    print(f"naive loops : {t_naive * 1e3:9.2f} ms  ({mult_adds / t_naive / 1e6:8.1f} million multiply-adds/s)")
    print(f"vectorized  : {t_fast * 1e3:9.2f} ms  ({mult_adds / t_fast / 1e6:8.1f} million multiply-adds/s)")
    agreement = (f"largest difference between the two outputs: {np.max(np.abs(y_naive - y_fast)):.2g}"
                 if np.shape(y_naive) == np.shape(y_fast) else "but the two outputs have different shapes!")
    print(f"speed-up    : {t_naive / t_fast:.0f}x, {agreement}")

# %% [markdown]
# Expect a speed-up in the hundreds or thousands (it grows with the layer and varies by machine).
# The arithmetic is identical; the difference is who runs the loops, the Python interpreter or a
# compiled matrix-multiply routine. This is why every deep-learning library turns convolutions into
# large matrix products (im2col, or cleverer variants of it), and why the rest of this course writes
# each layer twice: naive, to get the maths right, and vectorized, to make it usable.
#
# **Going further: where the remaining time goes.** Your im2col spends most of its time not in the
# matrix product but in *moving memory*: building `cols` copies every input value $K_h K_w$ times,
# in runs as short as one output row. The course's own reference (`make bench` races it against
# PyTorch) keeps your formula and changes only how the copy is organised:
#
# * **a few images at a time**, so `cols` still sits in the CPU cache when the product reads it;
# * **long runs**: with each padded image stored flat, row after row, the values tap $(m, n)$ needs
#   for *all* output rows are one contiguous stretch, starting at $m \cdot W_{pad} + n$. Copying it
#   whole also copies $K_w - 1$ values per row that belong to no window; the product computes
#   those spare columns and the output drops them, cheaper than many short copies;
# * **phases for the stride**: with stride $s$, split `x_pad` into its $s^2$ sub-grids
#   `x_pad[:, :, p::s, q::s]`; tap $(m, n)$ then reads sub-grid $(m \bmod s,\ n \bmod s)$ with step 1,
#   so the long runs work for strided layers too;
# * **the bias inside the product**: one more column of `w_rows` (holding `b`) times one more row
#   of `cols` (all ones).
#
# The result takes about 1.5 to 2.7 times as long as PyTorch's hand-written kernels on two cores,
# depending on the layer and the run (the README has the numbers). None of this changes a single output
# value; it is the same $y$ computed in a different order.
#
# ## Summary
#
# * Output size: $H_{out} = \lfloor (H_{in} + 2p - K)/s \rfloor + 1$; "same" padding $p = (K-1)/2$
#   for odd $K$ and stride 1.
# * Deep-learning convolution is cross-correlation: the kernel is not flipped.
# * $y[bi, co, i, j] = \sum_{ci, m, n} w[co, ci, m, n] \, x_{pad}[bi, ci, \text{stride}\cdot i + m,
#   \text{stride}\cdot j + n] + b[co]$.
# * im2col turns the whole layer into one matrix product, `w_rows @ cols`, at the price of memory.
#
# Next, lesson 02: what comes after a convolution, the ReLU non-linearity and pooling.
