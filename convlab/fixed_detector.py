"""The lesson-06 detector: a two-stage, Faster-R-CNN-shaped pipeline small enough to train in seconds.

    features  fixed colour/edge channels of the frame (nothing learned), pooled over boxes with an
              integral image: a 3x3 grid of bin means inside the box plus four context strips
    stage 1   region proposal network: for each of the A anchor shapes, a logistic "object?" score
              and a linear regressor of (tx, ty, tw, th), like the RPN's 1x1 convolutions
    stage 2   box classifier on the proposals: softmax over background + classes and one linear box
              regressor per class, like Fast R-CNN's head on RoI-pooled features

Every box operation is the student's: `ops` maps names (iou, non_max_suppression, encode_boxes,
decode_boxes, match_detections, average_precision) to their functions, so the detector runs on
the student's code. A real Faster R-CNN learns the features too (the CNN of lesson 04) and trains
everything by backpropagation; here the features are fixed so that each stage is a convex problem:
logistic/softmax regression by gradient descent, box regression in closed form (ridge regression,
as R-CNN's box regressor was trained).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FEATURE_NAMES", "feature_channels", "integral_image", "region_means", "box_features",
           "feature_map", "Detector", "train_detector", "propose", "detect", "class_results",
           "per_class_results", "mean_average_precision", "evaluate",
           "CLASS_COLOURS", "paint_boxes"]

FEATURE_NAMES = ("saturation", "distance to road colour", "brightness", "|d/dx|", "|d/dy|")
BINS = 3                  # BINS x BINS bins inside the box, then left, right, top, bottom context strips


def feature_channels(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) frame -> (C, H, W) fixed feature channels, C = len(FEATURE_NAMES)."""
    frame = frame.astype(np.float64)
    gray = frame.mean(axis=-1)
    road = np.median(frame.reshape(-1, 3), axis=0)            # most pixels are road
    d_dx, d_dy = np.zeros_like(gray), np.zeros_like(gray)
    d_dx[:, 1:] = np.abs(np.diff(gray, axis=1))
    d_dy[1:, :] = np.abs(np.diff(gray, axis=0))
    return np.stack([frame.max(-1) - frame.min(-1), np.linalg.norm(frame - road, axis=-1), gray, d_dx, d_dy])


def feature_map(frame: np.ndarray, stride: int = 4) -> np.ndarray:
    """(C, H // stride, W // stride): the feature channels averaged over stride x stride cells, the
    coarse grid a CNN backbone would hand to RoI pooling and to the RPN."""
    channels = feature_channels(frame)
    C, H, W = channels.shape
    cells = channels[:, :H - H % stride, :W - W % stride].reshape(C, H // stride, stride, W // stride, stride)
    return cells.mean(axis=(2, 4))


def integral_image(channels: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H+1, W+1) with S[c, y, x] = sum of channels[c, :y, :x]."""
    C, H, W = channels.shape
    summed = np.zeros((C, H + 1, W + 1))
    summed[:, 1:, 1:] = channels.cumsum(axis=1).cumsum(axis=2)
    return summed


def region_means(summed: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Mean of each channel over each region: regions (..., 4) integer (x1, y1, x2, y2), already
    clipped to the image, -> (..., C). Four look-ups per region, whatever its size; empty -> 0."""
    C, _, W1 = summed.shape
    x1, y1, x2, y2 = np.moveaxis(regions, -1, 0)
    corners = summed.reshape(C, -1).T                        # (H+1 * W+1, C): one row per corner, gathered whole
    def at(y, x):
        return np.take(corners, y * W1 + x, axis=0)          # np.take: several times faster than corners[index]
    total = at(y2, x2) - at(y1, x2) - at(y2, x1) + at(y1, x1)
    area = (x2 - x1) * (y2 - y1)
    return total / np.maximum(area, 1)[..., None]


def box_regions(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 4) float boxes -> (N, 13, 4) integer regions: 3x3 bins of the box, then context strips
    half the box's size wide on its left, right, top and bottom; rounded and clipped to the image."""
    x1, y1, x2, y2 = boxes.T
    w, h = x2 - x1, y2 - y1
    edges = np.linspace(0, 1, BINS + 1)
    xs = x1[:, None] + w[:, None] * edges                                  # bin edges, (N, BINS + 1)
    ys = y1[:, None] + h[:, None] * edges
    bins = [np.stack([xs[:, j], ys[:, i], xs[:, j + 1], ys[:, i + 1]], axis=1)
            for i in range(BINS) for j in range(BINS)]
    context = [np.stack([x1 - w / 2, y1, x1, y2], 1), np.stack([x2, y1, x2 + w / 2, y2], 1),
               np.stack([x1, y1 - h / 2, x2, y1], 1), np.stack([x1, y2, x2, y2 + h / 2], 1)]
    regions = np.round(np.stack(bins + context, axis=1)).astype(np.int64)
    regions[..., 0::2] = np.clip(regions[..., 0::2], 0, width)
    regions[..., 1::2] = np.clip(regions[..., 1::2], 0, height)
    return regions


def box_features(summed: np.ndarray, boxes: np.ndarray, regions: np.ndarray | None = None) -> np.ndarray:
    """(N, 4) boxes -> (N, 13 * C) pooled features (RoI *average* pooling on a 3x3 grid + context);
    `regions`: their box_regions, when already computed."""
    _, H1, W1 = summed.shape
    regions = box_regions(boxes, H1 - 1, W1 - 1) if regions is None else regions
    return region_means(summed, regions).reshape(len(boxes), -1)


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def fit_softmax(x: np.ndarray, y: np.ndarray, num_classes: int, steps: int, lr: float = 0.5,
                weight_decay: float = 1e-3) -> tuple[np.ndarray, list[float]]:
    """Softmax regression by full-batch gradient descent with momentum. x (n, D) standardised,
    y (n,) int -> weights (D+1, num_classes), loss per step. dL/dlogits = p - onehot(y)."""
    xb = _with_bias(x)
    weights, velocity, losses = np.zeros((xb.shape[1], num_classes)), 0.0, []
    onehot = np.eye(num_classes)[y]
    for _ in range(steps):
        p = _softmax(xb @ weights)
        losses.append(float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))))
        grad = xb.T @ (p - onehot) / len(y) + weight_decay * weights
        velocity = 0.9 * velocity - lr * grad
        weights = weights + velocity
    return weights, losses


def fit_ridge(x: np.ndarray, targets: np.ndarray, lam: float = 10.0) -> np.ndarray:
    """Closed-form ridge regression: (D+1, 4) weights minimising |Xw - t|^2 + lam |w|^2."""
    xb = _with_bias(x)
    return np.linalg.solve(xb.T @ xb + lam * np.eye(xb.shape[1]), xb.T @ targets)


@dataclass
class Detector:
    anchors: np.ndarray                     # (N, 4), A shapes per position (anchor index % A = shape)
    num_shapes: int
    num_classes: int
    rpn_scale: tuple = None                 # (mean, std) of anchor features
    rpn_cls: np.ndarray = None              # (A, D+1, 2) objectness weights per anchor shape
    rpn_reg: np.ndarray = None              # (A, D+1, 4) box regression per anchor shape
    head_scale: tuple = None
    head_cls: np.ndarray = None             # (D+3, K+1) softmax over background + classes
    head_reg: np.ndarray = None             # (K, D+3, 4) one box regressor per class
    losses: dict = field(default_factory=dict)
    anchor_regions: dict = field(default_factory=dict, repr=False)   # (H, W) -> box_regions of the anchors


def _rpn_outputs(det: Detector, summed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objectness (N,) and deltas (N, 4) for every anchor of one frame."""
    size = (summed.shape[1] - 1, summed.shape[2] - 1)
    if size not in det.anchor_regions:                       # the same for every frame of a size
        det.anchor_regions[size] = box_regions(det.anchors, *size)
    x = _with_bias((box_features(summed, det.anchors, det.anchor_regions[size]) - det.rpn_scale[0]) / det.rpn_scale[1])
    A = det.num_shapes                                       # anchor n has shape n % A: x as (positions, A, D+1)
    x = x.reshape(-1, A, x.shape[1]).transpose(1, 0, 2)                   # (A, positions, D+1)
    logits = np.matmul(x, det.rpn_cls).transpose(1, 0, 2).reshape(-1, 2)
    deltas = np.matmul(x, det.rpn_reg).transpose(1, 0, 2).reshape(-1, 4)
    return _softmax(logits)[:, 1], deltas


def _head_inputs(det: Detector, summed: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.log(np.maximum(np.stack([w, h], axis=1), 1.0))         # stage 2 sees the box size
    return np.concatenate([box_features(summed, boxes), size], axis=1)


MAX_LOG_SCALE = 3.0       # |t_w|, |t_h| at most log(20): exp() of a wild regression must stay finite


def _decode(ops: dict, boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    deltas = np.concatenate([deltas[:, :2], np.clip(deltas[:, 2:], -MAX_LOG_SCALE, MAX_LOG_SCALE)], axis=1)
    return ops["decode_boxes"](boxes, deltas)


def _clip(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.clip(boxes, 0, [width, height, width, height])


def propose(det: Detector, summed: np.ndarray, ops: dict, pre_nms: int = 600, post_nms: int = 60,
            nms_threshold: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 on one frame: decoded, clipped anchors, the pre_nms best, NMS, the post_nms best."""
    _, H1, W1 = summed.shape
    objectness, deltas = _rpn_outputs(det, summed)
    boxes = _clip(_decode(ops, det.anchors, deltas), H1 - 1, W1 - 1)
    big_enough = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 2
    best = np.flatnonzero(big_enough)[np.argsort(-objectness[big_enough], kind="stable")[:pre_nms]]
    keep = best[np.asarray(ops["non_max_suppression"](boxes[best], objectness[best], nms_threshold), dtype=int)]
    return boxes[keep[:post_nms]], objectness[keep[:post_nms]]


def _sample(rng: np.random.Generator, positive: np.ndarray, negative: np.ndarray, size: int,
            max_positive: int) -> np.ndarray:
    """Indices of a training mini-batch: up to max_positive positives, negatives fill `size`."""
    pos = rng.permutation(positive)[:max_positive]
    neg = rng.permutation(negative)[:size - len(pos)]
    return np.concatenate([pos, neg]).astype(int)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), x.std(axis=0) + 1e-6


def train_detector(video, anchors: np.ndarray, num_shapes: int, ops: dict, steps: int = 300,
                   seed: int = 0) -> Detector:
    """Two-stage training (the 'alternating' recipe of Faster R-CNN, in two steps):
    1. RPN: label anchors by IoU with ground truth (>= 0.5 object, < 0.3 background, each box's best
       anchor is an object), sample 256 per frame (at most half objects), fit objectness and deltas.
    2. Head: run the trained RPN on every training frame, add the ground-truth boxes as proposals,
       label proposals (IoU >= 0.5: the box's class, else background), sample 64 per frame (at most
       a quarter objects), fit the softmax classifier and the per-class box regressors."""
    rng = np.random.default_rng(seed)
    num_classes = len(video.class_names)
    det = Detector(anchors, num_shapes, num_classes)
    summed = [integral_image(feature_channels(frame)) for frame in video.frames]

    feats, labels, shapes, targets = [], [], [], []
    for t, frame_sum in enumerate(summed):
        gt, ignored = video.boxes[t], video.ignored[t]
        label = np.zeros(len(anchors), dtype=int)
        if len(gt):
            overlaps = ops["iou"](anchors, gt)
            best_gt = overlaps.argmax(axis=1)
            best = overlaps.max(axis=1)
            label[(best >= 0.3) & (best < 0.5)] = -1
            label[best >= 0.5] = 1
            label[overlaps.argmax(axis=0)] = 1
        if len(ignored):
            label[(label == 0) & (ops["iou"](anchors, ignored).max(axis=1) >= 0.3)] = -1
        batch = _sample(rng, np.flatnonzero(label == 1), np.flatnonzero(label == 0), 256, 128)
        feats.append(box_features(frame_sum, anchors[batch]))
        labels.append(label[batch])
        shapes.append(batch % num_shapes)
        tgt = np.zeros((len(batch), 4))
        positive = label[batch] == 1
        if positive.any():
            tgt[positive] = ops["encode_boxes"](anchors[batch][positive], gt[best_gt[batch][positive]])
        targets.append(tgt)
    x, y, shape, t_rpn = map(np.concatenate, (feats, labels, shapes, targets))
    det.rpn_scale = _standardise(x)
    x = (x - det.rpn_scale[0]) / det.rpn_scale[1]
    det.rpn_cls = np.zeros((num_shapes, x.shape[1] + 1, 2))
    det.rpn_reg = np.zeros((num_shapes, x.shape[1] + 1, 4))
    det.losses["rpn"] = []
    for k in range(num_shapes):
        mine = shape == k
        if len(np.unique(y[mine])) == 2:
            det.rpn_cls[k], loss = fit_softmax(x[mine], y[mine], 2, steps)
            det.losses["rpn"].append(loss)
        if (mine & (y == 1)).sum() > 4:
            det.rpn_reg[k] = fit_ridge(x[mine & (y == 1)], t_rpn[mine & (y == 1)])

    feats, labels, targets = [], [], []
    for t, frame_sum in enumerate(summed):
        gt, ignored = video.boxes[t], video.ignored[t]
        proposals = np.concatenate([propose(det, frame_sum, ops)[0], gt])
        label = np.zeros(len(proposals), dtype=int)
        tgt = np.zeros((len(proposals), 4))
        if len(gt):
            overlaps = ops["iou"](proposals, gt)
            match = overlaps.argmax(axis=1)
            fg = overlaps.max(axis=1) >= 0.5
            label[fg] = video.labels[t][match[fg]] + 1
            tgt[fg] = ops["encode_boxes"](proposals[fg], gt[match[fg]])
        if len(ignored):
            label[(label == 0) & (ops["iou"](proposals, ignored).max(axis=1) >= 0.5)] = -1
        batch = _sample(rng, np.flatnonzero(label > 0), np.flatnonzero(label == 0), 64, 16)
        feats.append(_head_inputs(det, frame_sum, proposals[batch]))
        labels.append(label[batch])
        targets.append(tgt[batch])
    x, y, t_head = map(np.concatenate, (feats, labels, targets))
    det.head_scale = _standardise(x)
    x = (x - det.head_scale[0]) / det.head_scale[1]
    det.head_cls, det.losses["head"] = fit_softmax(x, y, num_classes + 1, steps)
    det.head_reg = np.stack([fit_ridge(x[y == c + 1], t_head[y == c + 1]) if (y == c + 1).sum() > 4
                             else np.zeros((x.shape[1] + 1, 4)) for c in range(num_classes)])
    return det


def detect(det: Detector, frame: np.ndarray, ops: dict, score_threshold: float = 0.05,
           nms_threshold: float = 0.45) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both stages on one frame -> boxes (D, 4), scores (D,), labels (D,), best score first."""
    summed = integral_image(feature_channels(frame))
    H, W = frame.shape[:2]
    proposals, _ = propose(det, summed, ops)
    x = _with_bias((_head_inputs(det, summed, proposals) - det.head_scale[0]) / det.head_scale[1])
    probs = _softmax(x @ det.head_cls)
    return per_class_detections(ops, probs, lambda c, confident: _clip(
        _decode(ops, proposals[confident], x[confident] @ det.head_reg[c]), H, W), score_threshold, nms_threshold)


def per_class_detections(ops: dict, probs: np.ndarray, refine, score_threshold: float, nms_threshold: float):
    """Each class's confident proposals, refined (`refine(c, mask)` -> boxes) and NMS-ed per class ->
    boxes (D, 4), scores (D,), labels (D,), best score first. probs: (P, classes + 1), background first."""
    boxes, scores, labels = [], [], []
    for c in range(probs.shape[1] - 1):
        confident = probs[:, c + 1] > score_threshold
        if not confident.any():
            continue
        refined = refine(c, confident)
        keep = np.asarray(ops["non_max_suppression"](refined, probs[confident, c + 1], nms_threshold), dtype=int)
        boxes.append(refined[keep])
        scores.append(probs[confident, c + 1][keep])
        labels.append(np.full(len(keep), c))
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int)
    boxes, scores, labels = map(np.concatenate, (boxes, scores, labels))
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order], labels[order]


def class_results(detections: list, video, ops: dict, label: int, iou_threshold: float = 0.5):
    """All frames' detections of one class: (scores (D,), is_true_positive (D,), number of ground-truth
    boxes). Detections on ignored (mostly out-of-frame) vehicles count neither as hits nor as misses."""
    scores, hits, num_gt = [], [], 0
    for t, (boxes, frame_scores, labels) in enumerate(detections):
        mine = labels == label
        boxes, frame_scores = boxes[mine], frame_scores[mine]
        gt = video.boxes[t][video.labels[t] == label]
        is_tp = np.asarray(ops["match_detections"](boxes, frame_scores, gt, iou_threshold), dtype=bool)
        if len(video.ignored[t]) and len(boxes):
            counted = is_tp | (ops["iou"](boxes, video.ignored[t]).max(axis=1) < iou_threshold)
            frame_scores, is_tp = frame_scores[counted], is_tp[counted]
        scores.append(frame_scores)
        hits.append(is_tp)
        num_gt += len(gt)
    return np.concatenate(scores), np.concatenate(hits), num_gt


def per_class_results(detections: list, video, ops: dict, iou_threshold: float = 0.5) -> dict:
    """{class name: class_results(...)} for every class of the video, in class order: the matching
    of all frames, run once, for both the APs and the precision-recall curves."""
    return {name: class_results(detections, video, ops, label, iou_threshold)
            for label, name in enumerate(video.class_names)}


def mean_average_precision(results: dict, ops: dict) -> tuple[float, dict]:
    """PASCAL VOC mAP from per_class_results(...): the mean over classes with ground truth of each
    class's AP. Returns (mAP, {class name: AP}); a class without ground truth is left out."""
    per_class = {name: float(ops["average_precision"](scores, hits, num_gt))
                 for name, (scores, hits, num_gt) in results.items() if num_gt}
    return float(np.mean(list(per_class.values()))), per_class


def evaluate(detect_frame, video, ops: dict) -> tuple[list, float, dict, float]:
    """Run detect_frame(frame) -> (boxes, scores, labels) on every frame of `video` and score it:
    (detections, mAP@0.5, {class: AP}, milliseconds per frame)."""
    start = time.perf_counter()
    detections = [detect_frame(frame) for frame in video.frames]
    milliseconds = 1000 * (time.perf_counter() - start) / max(len(video), 1)
    mean_ap, per_class = mean_average_precision(per_class_results(detections, video, ops), ops)
    return detections, mean_ap, per_class, milliseconds


CLASS_COLOURS = ((1.0, 0.2, 0.2), (0.2, 1.0, 0.3), (0.25, 0.6, 1.0))


def paint_boxes(frame: np.ndarray, boxes: np.ndarray, colours, scale: int = 3, thickness=1) -> np.ndarray:
    """(H, W, 3) frame -> (H*scale, W*scale, 3) uint8 image with box outlines painted in `colours`
    (one RGB triple per box, or one for all), `thickness` pixels wide (one number per box, or one
    for all). Pure numpy: fast enough for a video scrubber."""
    image = np.repeat(np.repeat(np.clip(frame, 0, 1), scale, axis=0), scale, axis=1)
    H, W = image.shape[:2]
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    colours = np.broadcast_to(np.asarray(colours, dtype=float).reshape(-1, 3), (len(boxes), 3))
    widths = np.broadcast_to(np.asarray(thickness, dtype=int), (len(boxes),))
    for box, colour, t in zip(boxes, colours, widths):
        x1, y1, x2, y2 = np.clip(np.round(box * scale).astype(int), 0, [W, H, W, H])
        if x2 <= x1 or y2 <= y1:
            continue
        image[y1:y1 + t, x1:x2] = image[max(y2 - t, y1):y2, x1:x2] = colour
        image[y1:y2, x1:x1 + t] = image[y1:y2, max(x2 - t, x1):x2] = colour
    return (image * 255).astype(np.uint8)
