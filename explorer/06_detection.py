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
EXPLORERS = "the explorer's"      # the widgets name whose functions they show


# Learners write no code, so this page brings its own IoU, NMS and anchors (the lesson's widgets show the
# student's). They live here, not in convlab, which students import while they write these functions.
def pairwise_iou(boxes_a, boxes_b):
    """(N, M) IoU of every box of boxes_a (N, 4) with every box of boxes_b (M, 4); 0 where both areas are 0."""
    a, b = np.asarray(boxes_a, float)[:, None], np.asarray(boxes_b, float)[None]
    overlap = (np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])).clip(0) * \
              (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])).clip(0)
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
             - overlap)
    return np.divide(overlap, union, out=np.zeros_like(union), where=union > 0)


def greedy_nms(boxes, scores, threshold):
    """Visit boxes best score first; keep one, then drop every box overlapping it by IoU > threshold."""
    overlaps, remaining, kept = pairwise_iou(boxes, boxes), list(np.argsort(-scores, kind="stable")), []
    while remaining:
        best = remaining.pop(0)
        kept.append(int(best))
        remaining = [i for i in remaining if overlaps[best, i] <= threshold]
    return np.array(kept, dtype=int)


def one_shape_anchors(feature_shape, stride, scales, ratios):
    """The anchor of shape (scales[0], ratios[0] = h / w) at every cell of the grid, row by row."""
    rows, cols = np.meshgrid(np.arange(feature_shape[0]), np.arange(feature_shape[1]), indexing="ij")
    cx, cy = (cols.ravel() + 0.5) * stride, (rows.ravel() + 0.5) * stride
    w, h = scales[0] / np.sqrt(ratios[0]), scales[0] * np.sqrt(ratios[0])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


iou_explorer()

# %% [markdown]
# **What to try (NMS)**: candidate boxes around the vehicles of one frame. Move the **IoU threshold**: at
# 0 every pair of overlapping boxes is a duplicate, near 1 only near-identical boxes are. Kept boxes are
# green, suppressed ones red. Detectors use 0.3 to 0.5.

# %%
rng = np.random.default_rng(3)
candidates = jittered_proposals(video.boxes[5], *video.frames.shape[1:3], rng=rng, per_box=4, random_boxes=0,
                                jitter=0.08)
nms_explorer(candidates, rng.uniform(0.3, 1.0, len(candidates)), video.frames[5], greedy_nms, pairwise_iou,
             whose=EXPLORERS)

# %% [markdown]
# **What to try (anchors)**: one anchor shape placed at a grid cell every 4 pixels (yellow); in green,
# every anchor of that shape with IoU ≥ 0.5 with a vehicle, the region proposal network's positive
# examples. Change **scale** and **ratio** (height / width): which shapes fit a car, which a truck?

# %%
anchor_explorer(video.frames[0], video.boxes[0], one_shape_anchors, pairwise_iou, stride=4, whose=EXPLORERS)
