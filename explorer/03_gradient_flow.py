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
# # The gradient flow of a convolution
#
# Backward through $y = x \star w$, each input pixel collects $dy[i, j]\cdot w[m, n]$ from every
# output window $(i, j)$ that covered it, through the tap $(m, n)$ it sat under; each weight collects
# the pixels it saw, each weighted by its window's upstream gradient.
#
# **What to try**
# * **dx pixel**: move the row and column sliders; the blue outputs and green taps are the terms of that
#   pixel's gradient. With stride 2 and pad 0, the last row gets no gradient: no window reaches it.
# * **dw tap**: a corner tap sees fewer real pixels when there is padding (grey zeros contribute nothing).
# * **build dx**: press Play. The same numbers come out of sliding the 180°-rotated kernel over dy with
#   zeros inserted: the transposed convolution (next page).

# %%
from convlab.widgets.gradflow import gradflow_widget

gradflow_widget()
