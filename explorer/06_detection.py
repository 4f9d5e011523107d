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
# # Object detection: IoU, non-maximum suppression, anchors
#
# A detector scores many boxes and keeps the good ones. Three tools decide which: the overlap of two
# boxes (IoU), the suppression of duplicates (NMS), and the anchor boxes a region proposal network
# starts from. The frames come from the course's synthetic road video (generated here, nothing is
# downloaded).
#
# **What to try (IoU)**: slide box B over box A. IoU is intersection over union: 1 only when they
# coincide; two boxes offset by a third of their width already fall to about 0.5.

# %%
from convlab.rcnn_figures import jittered_proposals
from convlab.video import make_road_video
from convlab.widgets.boxes import anchor_explorer, iou_explorer, nms_explorer
import numpy as np

video = make_road_video(8, seed=1)
iou_explorer()

# %% [markdown]
# **What to try (NMS)**: candidate boxes around the vehicles of one frame. Move the **IoU threshold**: at
# 0 every pair of overlapping boxes is a duplicate, near 1 only near-identical boxes are. Detectors use
# 0.3 to 0.5.

# %%
rng = np.random.default_rng(3)
candidates = jittered_proposals(video.boxes[5], *video.frames.shape[1:3], rng=rng, per_box=4, random_boxes=0,
                                jitter=0.08)
nms_explorer(candidates, rng.uniform(0.3, 1.0, len(candidates)), video.frames[5])

# %% [markdown]
# **What to try (anchors)**: one anchor shape placed at a grid cell every 4 pixels. Change **scale** and
# **ratio** (height / width) and move it around the frame: which shapes fit a car, which a truck?

# %%
anchor_explorer(video.frames[0], video.boxes[0], stride=4)
