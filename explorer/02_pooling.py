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
# # Pooling, and where its gradient goes
#
# Max pooling keeps the largest value of each window; average pooling keeps the mean. Backward,
# max pooling sends each upstream gradient whole to the window's (first) maximum, average pooling
# spreads it evenly over the window.
#
# **What to try**
# * In **forward** mode press **Play**: each output is the maximum (or mean) of the highlighted window.
# * Switch to **backward**: dy = 1, 2, 3, ... so you can tell which window each gradient in dx came from.
#   With **max**, most input cells get nothing; with **avg**, every covered cell gets a share.
# * Set **pool** 3 and **stride** 1 or 2: the windows overlap and one input cell can collect gradient from
#   several windows; the cells add up.

# %%
from convlab.widgets.pooling import pooling_widget

pooling_widget()
