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
# # The kernel sliding over its input
#
# One output cell is one dot product: the kernel (blue) laid over a window of the padded input
# (orange), multiplied cell by cell and summed. The output has
# $\lfloor (H + 2p - d(K-1) - 1) / s \rfloor + 1$ cells along each axis.
#
# **What to try**
# * Press **Play** and read the dot product under the grids as the window moves.
# * Raise **stride** to 2: the window jumps, the output shrinks. With input size 6 and kernel 3, part of the
#   input is never read; which part?
# * Raise **padding** to 1 with kernel 3 and stride 1: the output is as big as the input ("same" padding).
# * Raise **dilation** to 2: the kernel's taps spread out and see a 5×5 area with only 9 weights.

# %%
from convlab.widgets.conv_slider import conv_slider

conv_slider()
