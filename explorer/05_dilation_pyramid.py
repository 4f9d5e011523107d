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
# # The dilation pyramid of a temporal convolutional network
#
# Stacked causal convolutions with dilations 1, 2, 4, ... reach far into the past with few layers:
# the receptive field is $R = 1 + (K - 1)\sum_\ell d_\ell$. The picture traces which past inputs
# reach the chosen output.
#
# **What to try**
# * Add **layers** with the powers-of-2 schedule: R doubles with each layer.
# * Switch the dilations to **all 1s**: R grows by only K - 1 per layer.
# * Choose **custom growth** with growth 4 and kernel 2: the dilations grow faster than the kernel fills
#   the gaps, and some past inputs are never reached (the report says how many).
# * Move **output t** to the start: the window begins before t = 0 and reads zero padding.

# %%
from convlab.widgets.dilation import dilation_pyramid

dilation_pyramid()
