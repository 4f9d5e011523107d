"""Figures for lesson 06, drawn with matplotlib from the lesson's own data: the R-CNN family's
pipelines and training schedule, proposals and warping, box-regression targets, RoI pooling bins,
anchors, precision-recall curves and detections on video frames. Each returns the Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from convlab.fixed_detector import CLASS_COLOURS
from convlab.video import CLASS_NAMES

__all__ = ["draw_boxes", "show_frames", "crop_and_warp", "jittered_proposals", "proposals_figure",
           "pipelines_figure", "training_figure", "regression_figure", "roi_pool_figure",
           "anchors_figure", "losses_figure", "pr_figure"]


def draw_boxes(ax, boxes, labels=None, scores=None, class_names=None, colour=None, style="-", width=1.5):
    """Outline (x1, y1, x2, y2) boxes on ax, in class colours (or `colour`), with optional captions."""
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        c = colour or (CLASS_COLOURS[labels[k]] if labels is not None else "white")
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=c, ls=style, lw=width))
        caption = " ".join(filter(None, [class_names[labels[k]] if class_names is not None and labels is not None else "",
                                         f"{scores[k]:.2f}" if scores is not None else ""]))
        if caption:
            ax.text(x1, y1 - 1, caption, color=c, fontsize=7, va="bottom")


def show_frames(video, frames, detections=None, min_score=0.5, title=None):
    """Frames of the video with ground truth (dashed white) and detections (class colours, scores)."""
    fig, axes = plt.subplots(len(frames), 1, figsize=(9, 2.9 * len(frames)), squeeze=False)
    for ax, t in zip(axes[:, 0], frames):
        ax.imshow(video.frames[t])
        draw_boxes(ax, video.boxes[t], style="--", colour="white", width=1)
        if detections is None:
            draw_boxes(ax, video.boxes[t], video.labels[t], class_names=video.class_names, width=0)
        else:
            boxes, scores, labels = detections[t]
            keep = scores >= min_score
            draw_boxes(ax, boxes[keep], labels[keep], scores[keep], video.class_names)
        ax.set_title(f"frame {t}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def crop_and_warp(frame: np.ndarray, box, size: int = 32) -> np.ndarray:
    """R-CNN's warp: the box's pixels resampled (nearest neighbour) to size x size, aspect ratio ignored."""
    x1, y1, x2, y2 = box
    rows = np.clip((y1 + (np.arange(size) + 0.5) * (y2 - y1) / size).astype(int), 0, frame.shape[0] - 1)
    cols = np.clip((x1 + (np.arange(size) + 0.5) * (x2 - x1) / size).astype(int), 0, frame.shape[1] - 1)
    return frame[rows[:, None], cols[None, :]]


def jittered_proposals(gt_boxes: np.ndarray, height: int, width: int, rng: np.random.Generator,
                       per_box: int = 4, random_boxes: int = 12, jitter: float = 0.2) -> np.ndarray:
    """Stand-ins for selective search: ground-truth boxes shifted (by `jitter` times their size, one
    standard deviation) and resized at random, plus random boxes."""
    w, h = gt_boxes[:, 2] - gt_boxes[:, 0], gt_boxes[:, 3] - gt_boxes[:, 1]
    centre = np.stack([gt_boxes[:, 0] + w / 2, gt_boxes[:, 1] + h / 2], 1).repeat(per_box, 0)
    size = np.stack([w, h], 1).repeat(per_box, 0)
    centre = centre + rng.normal(0, jitter, centre.shape) * size
    size = size * np.exp(rng.normal(0, 1.25 * jitter, size.shape))
    random_size = rng.uniform(6, 40, (random_boxes, 2))
    random_corner = rng.uniform(0, 1, (random_boxes, 2)) * ([width, height] - random_size)
    boxes = np.concatenate([np.concatenate([centre - size / 2, centre + size / 2], 1),
                            np.concatenate([random_corner, random_corner + random_size], 1)])
    return np.clip(boxes, 0, [width, height, width, height])


def proposals_figure(frame, proposals, best_iou, num_warped: int = 8):
    """Left: the proposals on the frame. Right: some of them warped to a fixed square, with their best IoU."""
    fig = plt.figure(figsize=(11, 3.4))
    ax = fig.add_axes([0.0, 0.05, 0.55, 0.85])
    ax.imshow(frame)
    draw_boxes(ax, proposals, colour="yellow", width=0.8)
    ax.set_title(f"{len(proposals)} region proposals")
    ax.axis("off")
    shown = np.linspace(0, len(proposals) - 1, num_warped).astype(int)
    for k, p in enumerate(shown):
        sub = fig.add_axes([0.57 + (k % 4) * 0.108, 0.5 - (k // 4) * 0.45, 0.1, 0.38])
        sub.imshow(crop_and_warp(frame, proposals[p]))
        sub.set_title(f"IoU {best_iou[p]:.2f}", fontsize=8, color="green" if best_iou[p] >= 0.5 else "black")
        sub.axis("off")
    fig.text(0.78, 0.93, "each warped to 32×32, then classified", ha="center")
    return fig


def _chain(ax, y, stages, colours, label):
    """One row of boxes joined by arrows at height y (axes coordinates 0..1 horizontally)."""
    ax.text(0.0, y, label, fontsize=11, fontweight="bold", va="center")
    xs = np.linspace(0.17, 0.93, len(stages))
    for k, (x, stage) in enumerate(zip(xs, stages)):
        ax.add_patch(FancyBboxPatch((x - 0.055, y - 0.07), 0.11, 0.14, boxstyle="round,pad=0.01",
                                    fc=colours.get(k, "#eeeeee"), ec="#555555"))
        ax.text(x, y, stage, ha="center", va="center", fontsize=7.5)
        if k:
            ax.add_patch(FancyArrowPatch((xs[k - 1] + 0.058, y), (x - 0.058, y), arrowstyle="-|>",
                                         mutation_scale=10, color="#333333"))


def pipelines_figure():
    """R-CNN -> Fast R-CNN -> Faster R-CNN as three pipelines; shaded stages are the expensive or new ones."""
    fig, ax = plt.subplots(figsize=(12, 4.6))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    _chain(ax, 0.83, ["image", "selective search:\n~2000 proposals\n(CPU, 2 s)", "crop + warp\neach to\n227×227",
                      "CNN run\n2000 times", "SVM per class\n+ linear box\nregressor", "NMS per\nclass"],
           {3: "#f4b6b6"}, "R-CNN\n2014")
    _chain(ax, 0.5, ["image", "CNN run once:\nfeature map\n(stride 16)", "selective search\nproposals,\nprojected",
                     "RoI max pooling\n→ 7×7 per RoI", "FC layers:\nsoftmax + box\nregression", "NMS per\nclass"],
           {1: "#b6d7f4", 3: "#b6d7f4"}, "Fast R-CNN\n2015")
    _chain(ax, 0.17, ["image", "CNN run once:\nfeature map", "RPN: k anchors\nper position,\nobjectness + deltas",
                      "NMS → ~300\nproposals", "RoI pooling\n+ FC head", "NMS per\nclass"],
           {1: "#b6d7f4", 2: "#bff4b6", 3: "#bff4b6"}, "Faster R-CNN\n2015")
    fig.tight_layout()
    return fig


def training_figure():
    """Faster R-CNN's four-step alternating training, and the two steps our fixed-feature detector needs."""
    fig, ax = plt.subplots(figsize=(12, 3.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    _chain(ax, 0.72, ["1. train RPN\n(CNN from\nImageNet)", "2. train Fast R-CNN\non step-1 proposals\n(its own CNN)",
                      "3. freeze shared\nconv layers,\nfine-tune RPN", "4. fine-tune the\nFast R-CNN\nhead"],
           {0: "#bff4b6", 1: "#b6d7f4", 2: "#bff4b6", 3: "#b6d7f4"}, "Faster R-CNN")
    _chain(ax, 0.25, ["fixed features\n(colour, edges):\nnothing to learn", "1. fit RPN heads\n(logistic + ridge)\non sampled anchors",
                      "2. fit box head\n(softmax + ridge)\non step-1 proposals", "done: steps 3-4\nonly share learned\nfeatures"],
           {1: "#bff4b6", 2: "#b6d7f4"}, "this lesson")
    fig.tight_layout()
    return fig


def regression_figure(anchor, gt, deltas):
    """An anchor (dashed), its ground-truth box, the centre offset and the four targets."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for box, style, colour, name in ((anchor, "--", "tab:blue", "anchor"), (gt, "-", "tab:red", "ground truth")):
        x1, y1, x2, y2 = box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ls=style, ec=colour, lw=2, label=name))
        ax.plot((x1 + x2) / 2, (y1 + y2) / 2, "o", color=colour)
    ax.annotate("", xy=((gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2), xytext=((anchor[0] + anchor[2]) / 2,
                (anchor[1] + anchor[3]) / 2), arrowprops=dict(arrowstyle="->", lw=1.5))
    tx, ty, tw, th = deltas
    ax.set_title(f"t_x = {tx:.2f}, t_y = {ty:.2f}, t_w = {tw:.2f}, t_h = {th:.2f}")
    everything = np.array([anchor, gt])
    ax.set_xlim(everything[:, 0].min() - 4, everything[:, 2].max() + 4)
    ax.set_ylim(everything[:, 3].max() + 4, everything[:, 1].min() - 4)     # image convention: y down
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def roi_pool_figure(channel, roi, spatial_scale, output_size, pooled):
    """One feature channel with a RoI projected onto it and its continuous bin grid, next to the
    pooled output of that channel (from the student's roi_max_pool)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw=dict(width_ratios=[3, 1]))
    colours = dict(cmap="viridis", vmin=channel.min(), vmax=channel.max())
    left.imshow(channel, extent=(0, channel.shape[1], channel.shape[0], 0), **colours)
    x1, y1, x2, y2 = np.asarray(roi) * spatial_scale
    out_h, out_w = output_size
    for p in range(out_h + 1):
        left.plot([x1, x2], [y1 + p * (y2 - y1) / out_h] * 2, color="white", lw=1)
    for q in range(out_w + 1):
        left.plot([x1 + q * (x2 - x1) / out_w] * 2, [y1, y2], color="white", lw=1)
    left.set_title(f"feature map ({channel.shape[0]}×{channel.shape[1]} cells) and the RoI × {spatial_scale:g}")
    right.imshow(pooled, **colours)
    for (p, q), value in np.ndenumerate(pooled):
        right.text(q, p, f"{value:.2f}", ha="center", va="center", color="white", fontsize=8)
    right.set_title(f"RoI max pooled: {out_h}×{out_w}")
    right.axis("off")
    fig.tight_layout()
    return fig


def anchors_figure(frame, anchors_at_one_position, positives, negatives, gt_boxes):
    """Left: the k anchors of one grid position. Right: anchors labelled for RPN training."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.2))
    for ax in (left, right):
        ax.imshow(frame)
        ax.axis("off")
    draw_boxes(left, anchors_at_one_position, colour="yellow", width=1)
    left.set_title(f"the {len(anchors_at_one_position)} anchors of one position")
    draw_boxes(right, negatives, colour="#ff6666", width=0.5)
    draw_boxes(right, positives, colour="#33ff33", width=1)
    draw_boxes(right, gt_boxes, colour="white", style="--", width=1)
    right.set_title(f"labels: {len(positives)} positive (IoU ≥ 0.5), a sample of negatives (IoU < 0.3)")
    fig.tight_layout()
    return fig


def losses_figure(losses: dict):
    """Training loss of each RPN head (one per anchor shape) and of the box head."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
    for k, curve in enumerate(losses["rpn"]):
        left.plot(curve, lw=1, label=f"shape {k}")
    left.set_title("RPN objectness loss, one head per anchor shape")
    left.set_xlabel("gradient step")
    left.set_yscale("log")
    right.plot(losses["head"], color="black")
    right.set_title("box head: softmax cross-entropy")
    right.set_xlabel("gradient step")
    fig.tight_layout()
    return fig


def pr_figure(curves: dict):
    """Precision-recall curves: curves[name] = (precision, recall, AP); a class keeps its colour
    from the video's boxes whichever classes are present."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (precision, recall, ap) in curves.items():
        colour = CLASS_COLOURS[CLASS_NAMES.index(name)] if name in CLASS_NAMES else None
        ax.step(np.concatenate([[0], recall]), np.concatenate([[1], precision]), where="post",
                color=colour, label=f"{name}: AP = {ap:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left")
    ax.set_title("precision-recall on held-out frames")
    return fig


def joint_losses_figure(losses: dict, window: int = 10):
    """The learned detector's RPN and head losses per training step, as running means over `window` steps."""
    fig, axis = plt.subplots(figsize=(7, 2.8))
    for name, label in (("rpn", "RPN: logistic + smooth L1"), ("head", "head: cross-entropy + smooth L1")):
        curve = np.asarray(losses[name], dtype=float)
        k = max(1, min(window, len(curve)))
        axis.plot(np.convolve(curve, np.ones(k) / k, mode="valid"), label=label)
    axis.set_xlabel("training step (one frame)")
    axis.set_ylabel("loss")
    axis.legend()
    fig.tight_layout()
    return fig
