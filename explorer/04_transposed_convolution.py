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
# # Transposed convolution: zeros in between, then a full convolution
#
# A convolution with stride $s$, padding $p$ and dilation $d$ turns an input $x$ of size $H_x$ into an
# output $y$ of size $H_y$; its **transpose** goes back the other way, from $H_y$ values to
# $H_x = (H_y - 1)\,s - 2p + d\,(K - 1) + \text{output\_padding} + 1$.
# It is computed by inserting $s - 1$ zeros between neighbouring inputs, padding by the dilated
# kernel's span minus one, sliding the 180°-rotated kernel over that grid (a full convolution) and
# cropping $p$ off each side. That is exactly $dL/dx$ of a convolution (lesson 03), with the input
# playing the part of $dy$. The bottom row shows the forward convolution it transposes: the same
# output cell is a pixel of that convolution's input, and its terms are the outputs whose windows
# read that pixel. The matrix is that forward convolution written as $y = Mx$: reading down the
# highlighted column gives the weights of $z = M^\top y$ for this cell.
#
# **What to try**
# * Press **Play** and compare the two term lists under the grids for each output cell: always the same.
# * **stride** 2, then 3: more zeros between the inputs, a bigger output (the "upsampling" of decoders and
#   GANs). With kernel 2 and stride 2 the windows never overlap; with kernel 3 some cells get two terms.
# * **output padding** 1 (only possible with stride ≥ 2): one more row and column of output. A forward
#   convolution with stride 2 maps inputs of size 5 and 6 to the same size; output padding picks which.
# * **padding** crops the result; **dilation** spreads the kernel's taps, like the forward convolution's.

# %%
from convlab.widgets.transposed import transposed_widget

transposed_widget()
