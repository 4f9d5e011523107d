"""Hidden checks for lesson 06 (object detection: IoU, NMS, anchors, box coding, RoI pooling, AP;
the RoI backward, smooth L1, tracking and counting parts are in _l06_tracking.py, the multi-task
losses' in _l06_losses.py).

Cases: random boxes with degenerate ones mixed in (zero width, zero height, single points,
identical boxes, boxes touching along an edge, disjoint and nested boxes, empty sets); NMS on
clusters of overlapping boxes with tied scores, IoU exactly at the threshold and threshold 0; anchor
grids of random shapes, strides, scales and ratios; encode/decode on random pairs; RoI pooling with
regions partly or wholly outside the map, of zero size, and smaller than a cell (integer pixel
coordinates, spatial_scale 1, 1/2 or 1/4 and at most 4 bins per axis, so that every bin edge is
exact in floating point); matching and AP with duplicates, misses, no detections, only false
positives and perfect detections.

Each diagnose() recomputes typical bugs with small implementations written here and names the one
the student's output matches: union not subtracting the intersection, negative overlaps not clipped,
0/0 for zero-area boxes, NMS visiting boxes in index order or suppressing at IoU == threshold,
width and height swapped in anchors, the log missing in t_w/t_h, AP without the precision envelope...
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from autograder.grader.spec import Case, Part, Raised, Tol, compare, same_dtype
from autograder.checks._l06_bugs import BUGS  # noqa: F401  (the lesson's typical bugs, as students write them)
from convlab.diagnosis import first_matching_bug
from convlab.tolerance import sensitivity

LESSON = "06_detection"
_KEEP_DTYPE = same_dtype("a float32 feature map gives float32 pooled values")


# ---------------------------------------------------------------- inputs
def _random_boxes(rng: np.random.Generator, n: int, extent: float = 40.0, degenerate: float = 0.2) -> np.ndarray:
    """n boxes with corners on a 0.5-pixel lattice (so edges often touch exactly); a fraction
    `degenerate` has zero width and/or height."""
    corner = np.round(rng.uniform(0, extent, (n, 2)) * 2) / 2
    size = np.round(rng.uniform(1, extent / 2, (n, 2)) * 2) / 2
    flat = rng.random((n, 2)) < degenerate / 1.5
    size[flat] = 0.0
    return np.concatenate([corner, corner + size], axis=1)


def _clusters(rng: np.random.Generator, clusters: int, per_cluster: int, jitter: float = 0.15) -> np.ndarray:
    """Boxes in overlapping clusters, as a detector outputs them around objects."""
    centre = rng.uniform(10, 90, (clusters, 2)).repeat(per_cluster, axis=0)
    size = rng.uniform(6, 30, (clusters, 2)).repeat(per_cluster, axis=0)
    centre = centre + rng.normal(0, jitter, centre.shape) * size
    size = size * np.exp(rng.normal(0, jitter, size.shape))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return boxes[rng.permutation(len(boxes))]


def _fixed_iou_boxes() -> tuple[np.ndarray, np.ndarray]:
    """Degenerate and exact cases against a fixed set, row by row what they test."""
    a = np.array([[0., 0., 4., 4.],       # identical to b[0]
                  [4., 0., 8., 4.],       # touches b[0] along x = 4
                  [10., 10., 12., 12.],   # disjoint from everything
                  [1., 1., 3., 3.],       # inside b[0]
                  [2., 2., 2., 5.],       # zero width
                  [1., 1., 1., 1.],       # a point
                  [0., 5., 4., 5.]])      # zero height
    b = np.array([[0., 0., 4., 4.],
                  [2., 2., 6., 6.],
                  [2., 2., 2., 5.],       # zero width, identical to a[4]
                  [-3., -3., 0., 0.]])    # touches b[0] at a corner only
    return a, b


# ---------------------------------------------------------------- bug variants (written here, not from ref)
def _overlap(a: np.ndarray, b: np.ndarray, clip: bool = True) -> np.ndarray:
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.maximum(w, 0) * np.maximum(h, 0) if clip else w * h


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def _iou(a: np.ndarray, b: np.ndarray, double_union: bool = False) -> np.ndarray:
    """The (N, M) IoU matrix; double_union=True is the bug whose union is area_a + area_b."""
    inter = _overlap(a, b)
    return _divide(inter, _area(a)[:, None] + _area(b)[None, :] - (0 if double_union else inter))


def _iou_bugs(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[str, Callable[[], Any]]]:
    total = _area(a)[:, None] + _area(b)[None, :]
    yield ("the union is area_a + area_b, which counts the intersection twice: subtract the intersection",
           lambda: _iou(a, b, double_union=True))
    yield ("the intersection's width and height are not clipped at 0, so disjoint boxes get a positive overlap",
           lambda: _divide(_overlap(a, b, clip=False), total - _overlap(a, b, clip=False)))
    enclosing = ((np.maximum(a[:, None, 2], b[None, :, 2]) - np.minimum(a[:, None, 0], b[None, :, 0]))
                 * (np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])))
    yield ("the union is the area of the box enclosing both, not area_a + area_b - intersection",
           lambda: _divide(_overlap(a, b), enclosing))
    plus_one = lambda boxes: boxes + np.array([0., 0., 1., 1.])       # noqa: E731 - the "+1 pixel" convention
    yield ("widths are computed as x2 - x1 + 1: in this course a box's width is x2 - x1 (pixel edges)",
           lambda: _iou(plus_one(a), plus_one(b)))
    yield ("the result is transposed: rows must follow boxes_a and columns boxes_b", lambda: _iou(b, a))


def _nms(boxes, scores, threshold, order="stable", strict=True, by_all=False, overlap=None, index_sorted=False):
    """Greedy NMS with switchable bugs; overlap(a, b) -> (N, M) defaults to the correct IoU."""
    overlap = overlap or _iou
    visit = {"stable": lambda: np.argsort(-scores, kind="stable"), "index": lambda: np.arange(len(scores)),
             "reversed": lambda: np.argsort(scores, kind="stable")[::-1],
             "ascending": lambda: np.argsort(scores, kind="stable")}[order]()
    overlaps = overlap(boxes[visit], boxes[visit])
    suppressed, keep = np.zeros(len(visit), bool), []
    for rank in range(len(visit)):
        if not suppressed[rank]:
            keep.append(visit[rank])
        if not suppressed[rank] or by_all:
            suppressed[rank + 1:] |= (overlaps[rank, rank + 1:] > threshold) if strict else (overlaps[rank, rank + 1:] >= threshold)
    keep = np.array(keep, dtype=np.int64)
    return np.sort(keep) if index_sorted else keep


def _nms_bugs(boxes, scores, threshold) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield ("boxes are visited in index order: sort them by descending score first",
           lambda: _nms(boxes, scores, threshold, order="index"))
    yield ("a box whose IoU equals the threshold is suppressed: suppress only when IoU > threshold (not >=)",
           lambda: _nms(boxes, scores, threshold, strict=False))
    yield ("equal scores are not visited lowest index first: use np.argsort(-scores, kind='stable') "
           "(np.argsort(scores)[::-1] reverses the ties)", lambda: _nms(boxes, scores, threshold, order="reversed"))
    yield ("boxes are visited lowest score first: sort by descending score",
           lambda: _nms(boxes, scores, threshold, order="ascending"))
    yield ("the kept indices are sorted by index: return them best score first",
           lambda: _nms(boxes, scores, threshold, index_sorted=True))
    yield ("suppressed boxes also suppress others: only kept boxes may suppress",
           lambda: _nms(boxes, scores, threshold, by_all=True))
    yield ("your NMS is right but your iou's union counts the intersection twice (area_a + area_b): fix iou",
           lambda: _nms(boxes, scores, threshold, overlap=lambda a, b: _iou(a, b, double_union=True)))


def _anchors(feature_shape, stride, scales, ratios, swap=False, ratio_major=False, column_major=False,
             no_half=False, no_sqrt=False):
    H_f, W_f = feature_shape
    scales, ratios = np.asarray(scales, float), np.asarray(ratios, float)
    root = ratios if no_sqrt else np.sqrt(ratios)
    w, h = scales[:, None] / root[None, :], scales[:, None] * root[None, :]
    if swap:
        w, h = h, w
    if ratio_major:
        w, h = w.T, h.T
    w, h = w.ravel(), h.ravel()
    i, j = np.meshgrid(np.arange(H_f), np.arange(W_f), indexing="ij")
    if column_major:
        i, j = i.T, j.T
    offset = 0.0 if no_half else 0.5
    x, y = (j.reshape(-1, 1) + offset) * stride, (i.reshape(-1, 1) + offset) * stride
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1).reshape(-1, 4)


def _anchor_bugs(feature_shape, stride, scales, ratios) -> Iterator[tuple[str, Callable[[], Any]]]:
    args = (feature_shape, stride, scales, ratios)
    yield ("width and height are swapped: ratio = h / w, so w = scale / sqrt(ratio) and h = scale * sqrt(ratio)",
           lambda: _anchors(*args, swap=True))
    yield ("within a cell the anchors are ordered ratio by ratio: the order is scale-major (all ratios of "
           "scales[0] first)", lambda: _anchors(*args, ratio_major=True))
    yield ("the grid is walked column by column: the order is row-major (cell (i, j) at i * W_f + j)",
           lambda: _anchors(*args, column_major=True))
    yield ("anchors are centred on the cell's corner: the centre is ((j + 0.5) * stride, (i + 0.5) * stride)",
           lambda: _anchors(*args, no_half=True))
    yield ("the square root is missing: w = scale / sqrt(ratio) keeps the area at scale ** 2",
           lambda: _anchors(*args, no_sqrt=True))


def _centre_size(boxes):
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h


def _encode_bugs(anchors, gt) -> Iterator[tuple[str, Callable[[], Any]]]:
    xa, ya, wa, ha = _centre_size(anchors)
    xg, yg, wg, hg = _centre_size(gt)
    yield ("the log is missing in t_w and t_h: t_w = log(w_g / w_a)",
           lambda: np.stack([(xg - xa) / wa, (yg - ya) / ha, wg / wa, hg / ha], 1))
    yield ("t_w and t_h are relative differences: use t_w = log(w_g / w_a)",
           lambda: np.stack([(xg - xa) / wa, (yg - ya) / ha, (wg - wa) / wa, (hg - ha) / ha], 1))
    yield ("the centre shift is not divided by the anchor's size: t_x = (x_g - x_a) / w_a",
           lambda: np.stack([xg - xa, yg - ya, np.log(wg / wa), np.log(hg / ha)], 1))
    yield ("width and height are swapped: t_x and t_w use widths, t_y and t_h heights",
           lambda: np.stack([(xg - xa) / ha, (yg - ya) / wa, np.log(hg / ha), np.log(wg / wa)], 1))
    yield ("t_x and t_y use the top-left corners: use the box centres",
           lambda: np.stack([(gt[:, 0] - anchors[:, 0]) / wa, (gt[:, 1] - anchors[:, 1]) / ha,
                             np.log(wg / wa), np.log(hg / ha)], 1))
    yield ("the ratio is upside down: t_w = log(w_g / w_a), not log(w_a / w_g)",
           lambda: np.stack([(xg - xa) / wa, (yg - ya) / ha, np.log(wa / wg), np.log(ha / hg)], 1))


def _corners(x, y, w, h):
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


def _decode_bugs(anchors, deltas) -> Iterator[tuple[str, Callable[[], Any]]]:
    xa, ya, wa, ha = _centre_size(anchors)
    tx, ty, tw, th = deltas.T
    yield ("exp is missing: the width is w_a * exp(t_w)",
           lambda: _corners(xa + tx * wa, ya + ty * ha, wa * tw, ha * th))
    yield ("the centre shift is not scaled by the anchor's size: x = x_a + t_x * w_a",
           lambda: _corners(xa + tx, ya + ty, wa * np.exp(tw), ha * np.exp(th)))
    yield ("the result is (centre x, centre y, width, height): convert it back to corners (x1, y1, x2, y2)",
           lambda: np.stack([xa + tx * wa, ya + ty * ha, wa * np.exp(tw), ha * np.exp(th)], 1))
    yield ("width and height are swapped", lambda: _corners(xa + tx * ha, ya + ty * wa, ha * np.exp(tw), wa * np.exp(th)))


def _roi_pool(fmap, rois, output_size, scale, rule="floor_ceil", reduce=np.max, use_scale=True):
    """Loops over regions and bins; `rule` picks the bin edges."""
    C, H, W = fmap.shape
    out_h, out_w = output_size
    pooled = np.zeros((len(rois), C, out_h, out_w), dtype=fmap.dtype)
    for r, roi in enumerate(np.asarray(rois, float) * (scale if use_scale else 1.0)):
        x1, y1, x2, y2 = roi
        for p in range(out_h):
            for q in range(out_w):
                ys = (y1 + p * (y2 - y1) / out_h, y1 + (p + 1) * (y2 - y1) / out_h)
                xs = (x1 + q * (x2 - x1) / out_w, x1 + (q + 1) * (x2 - x1) / out_w)
                if rule == "floor_ceil":
                    top, bottom, left, right = np.floor(ys[0]), np.ceil(ys[1]), np.floor(xs[0]), np.ceil(xs[1])
                elif rule == "round":
                    top, bottom, left, right = np.round(ys[0]), np.round(ys[1]), np.round(xs[0]), np.round(xs[1])
                else:                                           # "floor": both edges rounded down
                    top, bottom, left, right = np.floor(ys[0]), np.floor(ys[1]), np.floor(xs[0]), np.floor(xs[1])
                top, left = int(max(top, 0)), int(max(left, 0))
                bottom, right = int(min(bottom, H)), int(min(right, W))
                if top < bottom and left < right:
                    pooled[r, :, p, q] = reduce(fmap[:, top:bottom, left:right], axis=(1, 2))
    return pooled


def _roi_bugs(fmap, rois, output_size, scale) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield ("spatial_scale is ignored: multiply the region's coordinates by spatial_scale first",
           lambda: _roi_pool(fmap, rois, output_size, scale, use_scale=False))
    yield ("bin edges are rounded to the nearest cell: use floor for the start and ceil for the end",
           lambda: _roi_pool(fmap, rois, output_size, scale, rule="round"))
    yield ("both bin edges are rounded down: the end of a bin is ceil(y1' + (p + 1) * bin_h)",
           lambda: _roi_pool(fmap, rois, output_size, scale, rule="floor"))
    yield ("each bin is averaged: RoI max pooling takes the maximum",
           lambda: _roi_pool(fmap, rois, output_size, scale, reduce=np.mean))


def _match(det_boxes, det_scores, gt_boxes, threshold, order="stable", claim=True, fallback=False, strict=False,
           double_union=False):
    hits = np.zeros(len(det_boxes), bool)
    if not len(det_boxes) or not len(gt_boxes):
        return hits
    overlaps = _iou(det_boxes, gt_boxes, double_union)
    claimed = np.zeros(len(gt_boxes), bool)
    visit = np.argsort(-det_scores, kind="stable") if order == "stable" else np.arange(len(det_boxes))
    for d in visit:
        candidates = np.where(claimed, -1.0, overlaps[d]) if fallback else overlaps[d]
        g = int(np.argmax(candidates))
        good = candidates[g] > threshold if strict else candidates[g] >= threshold
        if good and (not claim or not claimed[g]):
            hits[d], claimed[g] = True, True
    return hits


def _match_bugs(det_boxes, det_scores, gt_boxes, threshold) -> Iterator[tuple[str, Callable[[], Any]]]:
    args = (det_boxes, det_scores, gt_boxes, threshold)
    yield ("a ground-truth box is matched more than once: once claimed, later detections of it are false positives",
           lambda: _match(*args, claim=False))
    yield ("detections are visited in index order: visit them by descending score",
           lambda: _match(*args, order="index"))
    yield ("a detection falls back to its best *unclaimed* box: PASCAL VOC only looks at the best-overlapping "
           "box, and a detection whose best box is taken is a duplicate", lambda: _match(*args, fallback=True))
    yield ("IoU equal to the threshold is a miss: a hit needs IoU >= iou_threshold", lambda: _match(*args, strict=True))
    yield ("your matching is right but your iou's union counts the intersection twice (area_a + area_b): fix iou",
           lambda: _match(*args, double_union=True))


def _pr(scores, hits, num_gt, order="stable"):
    visit = np.argsort(-scores, kind="stable") if order == "stable" else np.arange(len(scores))
    tp = np.cumsum(hits[visit].astype(float))
    return tp / np.arange(1, len(visit) + 1), tp / num_gt


def _pr_bugs(scores, hits, num_gt) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield ("the detections are not sorted by descending score", lambda: _pr(scores, hits, num_gt, order="index"))
    precision, recall = _pr(scores, hits, num_gt)
    yield ("precision and recall are swapped in the returned tuple", lambda: (recall, precision))
    tp = precision * np.arange(1, len(scores) + 1)
    yield ("recall divides by the number of detections: divide by num_ground_truth",
           lambda: (precision, tp / max(len(scores), 1)))


def _ap(scores, hits, num_gt, envelope=True, order="stable", eleven=False):
    precision, recall = _pr(scores, hits, num_gt, order)
    if eleven:
        return float(np.mean([precision[recall >= r].max() if (recall >= r).any() else 0.0
                              for r in np.linspace(0, 1, 11)]))
    if envelope:
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _ap_bugs(scores, hits, num_gt) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield ("the precision is not made monotone: use the envelope max(precision[k:]) at each recall step",
           lambda: _ap(scores, hits, num_gt, envelope=False))
    yield ("this is the 11-point AP of VOC 2007: the course uses all points (VOC 2010+)",
           lambda: _ap(scores, hits, num_gt, eleven=True))
    yield ("the detections are not sorted by descending score", lambda: _ap(scores, hits, num_gt, order="index"))


def _first_match(actual: Any, bugs: Iterator[tuple[str, Callable[[], Any]]], tol: Any = None) -> str | None:
    """The name of the first bug whose output `actual` equals (_same within the case's bound); a bug
    variant that cannot run on this case is not the bug."""
    return first_matching_bug(actual, bugs, lambda got, candidate: _same(got, candidate, tol), skip=(Exception,))


def _same(actual: Any, candidate: Any, tol: Any) -> bool:
    """compare() within `tol`, except bool arrays: equal values match whatever the dtype of `actual`."""
    if isinstance(candidate, np.ndarray) and candidate.dtype.kind == "b":
        return isinstance(actual, np.ndarray) and actual.shape == candidate.shape and np.array_equal(actual, candidate)
    try:
        return compare(actual, candidate, tol=tol) is None
    except TypeError:        # a result of a kind compare() cannot handle matches no bug
        return False


# ---------------------------------------------------------------- result checks
def _int_indices(actual: Any, case: Case) -> str | None:
    """NMS must return a 1-D integer array equal to the expected indices, in order."""
    name = f"{case.func}(...)"
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, np.ndarray):
        return f"{name} returned {type(actual).__name__}: return a numpy int array, e.g. np.array(keep, dtype=int)"
    if actual.dtype.kind not in "iu":
        return f"{name} returned a {actual.dtype} array: indices must be integers (np.array(keep, dtype=int))"
    if actual.shape != case.expected.shape:
        return (f"{name} kept {actual.size} boxes (indices {actual.tolist()[:12]}): too "
                f"{'many' if actual.size > case.expected.size else 'few'}")
    if not np.array_equal(actual, case.expected):
        first = int(np.flatnonzero(actual != case.expected)[0])
        return (f"{name} kept indices {actual.tolist()[:12]}: the right number of boxes, but from position {first} "
                "on not the boxes NMS keeps, in order of decreasing score")
    return None


def _bool_array(actual: Any, case: Case) -> str | None:
    """match_detections must return a bool array equal to the expected one."""
    name = f"{case.func}(...)"
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, np.ndarray):
        return f"{name} returned {type(actual).__name__}: return a numpy bool array"
    if actual.shape != case.expected.shape:
        return f"{name} has shape {actual.shape}, expected {case.expected.shape}: one entry per detection"
    if actual.dtype.kind != "b":
        return f"{name} returned a {actual.dtype} array: return a bool array (np.zeros(D, dtype=bool))"
    if not np.array_equal(actual, case.expected):
        wrong = np.flatnonzero(actual != case.expected)
        return f"{name} marks {int(actual.sum())} true positives: {wrong.size} of {actual.size} detections are marked wrongly"
    return None


# ---------------------------------------------------------------- parts
def _iou_part(ref, rng) -> Part:
    fixed_a, fixed_b = _fixed_iou_boxes()
    inputs = [(fixed_a, fixed_b, "identical, touching, disjoint, nested and zero-area boxes"),
              (fixed_b, fixed_a, "the same boxes, the other way round"),
              (_random_boxes(rng, 7), _random_boxes(rng, 5), "7 x 5 random boxes, some of zero area"),
              (np.zeros((0, 4)), _random_boxes(rng, 3), "no boxes against 3")]
    many = _random_boxes(rng, 30, degenerate=0.1)
    inputs.append((many, np.concatenate([many[:10], _random_boxes(rng, 15)]), "30 x 25 random boxes with duplicates"))
    # IoU is a short nonlinear formula: its magnitude is its condition times its value (convlab.tolerance)
    cases = [Case("iou", (a, b), expected=ref.iou(a, b), label=label, tol=Tol(sensitivity(ref.iou, (a, b), (0, 1)), 12))
             for a, b, label in inputs]

    def diagnose(case: Case, actual: Any) -> str | None:
        a, b = case.args
        if isinstance(actual, np.ndarray) and actual.shape == case.expected.shape and np.isnan(actual).any():
            return "zero-area boxes give 0 / 0 = NaN: return 0 where the union is 0 (np.divide(..., where=union > 0))"
        return _first_match(actual, _iou_bugs(a, b), case.tol)
    return Part("test_iou", cases, diagnose)


def _nms_part(ref, rng) -> Part:
    inputs = []
    for clusters, per, threshold in ((5, 6, 0.5), (4, 8, 0.3), (6, 5, 0.7)):
        boxes = _clusters(rng, clusters, per)
        inputs.append((boxes, rng.random(len(boxes)), threshold, f"{len(boxes)} boxes in {clusters} clusters, threshold {threshold}"))
    boxes = _clusters(rng, 6, 6)
    inputs.append((boxes, np.round(rng.random(len(boxes)) * 4) / 4, 0.4, f"{len(boxes)} boxes, many tied scores"))
    halves = np.array([[0., 0., 4., 1.], [0., 0., 2., 1.], [2., 0., 4., 1.], [10., 0., 12., 1.]])
    inputs.append((halves, np.array([0.9, 0.8, 0.7, 0.6]), 0.5, "IoU exactly equal to the threshold"))
    grid = np.array([[x, y, x + 2., y + 2.] for x in (0., 2., 4.) for y in (0., 2.)])
    inputs.append((grid, rng.random(len(grid)), 0.0, "boxes touching along edges, threshold 0"))
    inputs.append((np.zeros((0, 4)), np.zeros(0), 0.5, "no boxes"))
    inputs.append((np.array([[1., 2., 3., 4.]]), np.array([0.3]), 0.5, "one box"))
    cases = [Case("non_max_suppression", (boxes, scores, threshold), expected=ref.non_max_suppression(boxes, scores, threshold),
                  check=_int_indices, label=label) for boxes, scores, threshold, label in inputs]
    return Part("test_non_max_suppression", cases, lambda case, actual: _first_match(actual, _nms_bugs(*case.args), case.tol))


def _anchor_part(ref, rng) -> Part:
    configs = [((1, 1), 16, [16.], [1.]), ((2, 3), 8, [8., 16.], [0.5, 1., 2.]), ((3, 2), 4, [12.], [0.25, 3.])]
    for _ in range(2):
        configs.append(((int(rng.integers(1, 6)), int(rng.integers(1, 6))), int(rng.choice([4, 8, 16])),
                        list(np.round(rng.uniform(4, 40, int(rng.integers(1, 4))), 1)),
                        list(np.round(np.exp(rng.uniform(-1.5, 1.5, int(rng.integers(1, 4)))), 2))))
    # corners are centre -/+ half sizes: their magnitude includes the half sizes' (through scales, ratios)
    cases = [Case("generate_anchors", config, expected=ref.generate_anchors(*config),
                  tol=Tol(sensitivity(ref.generate_anchors, config, (2, 3)), 6), label=f"grid {config[0]}, stride {config[1]}, scales {config[2]}, ratios {config[3]}") for config in configs]
    return Part("test_generate_anchors", cases, lambda case, actual: _first_match(actual, _anchor_bugs(*case.args), case.tol))


def _pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    corner = rng.uniform(0, 100, (n, 2))
    anchors = np.concatenate([corner, corner + rng.uniform(4, 40, (n, 2))], axis=1)
    x, y, w, h = _centre_size(anchors)
    gt = _corners(x + rng.normal(0, 0.3, n) * w, y + rng.normal(0, 0.3, n) * h,
                  w * np.exp(rng.normal(0, 0.4, n)), h * np.exp(rng.normal(0, 0.4, n)))
    return anchors, gt


def _coding_tol(func, anchors, other) -> Tol:
    """Box coding is a short formula (centres, sizes, a division, a log or exp): its magnitude is its
    condition times its value, the chain about 8 operations long."""
    return Tol(sensitivity(func, (anchors, other), (0, 1)), 8)


def _coding_parts(ref, rng) -> list[Part]:
    encode_cases, decode_cases = [], []
    for n in (1, 6, 25):
        anchors, gt = _pairs(rng, n)
        encode_cases.append(Case("encode_boxes", (anchors, gt), expected=ref.encode_boxes(anchors, gt),
                                 label=f"{n} random anchor/box pairs", tol=_coding_tol(ref.encode_boxes, anchors, gt)))
        deltas = rng.normal(0, 0.4, (n, 4))
        decode_cases.append(Case("decode_boxes", (anchors, deltas), expected=ref.decode_boxes(anchors, deltas),
                                 label=f"{n} random anchors and deltas", tol=_coding_tol(ref.decode_boxes, anchors, deltas)))
    anchors, gt = _pairs(rng, 8)
    deltas = ref.encode_boxes(anchors, gt)
    decode_cases.append(Case("decode_boxes", (anchors, deltas), expected=ref.decode_boxes(anchors, deltas),
                             label="decoding the encoding of 8 boxes (must give the boxes back)",
                             tol=_coding_tol(ref.decode_boxes, anchors, deltas)))
    return [Part("test_encode_boxes", encode_cases, lambda case, actual: _first_match(actual, _encode_bugs(*case.args), case.tol)),
            Part("test_decode_boxes", decode_cases, lambda case, actual: _first_match(actual, _decode_bugs(*case.args), case.tol))]


def _roi_part(ref, rng) -> Part:
    cases = []
    for C, H, W, scale, out, dtype in ((2, 6, 8, 1.0, (2, 2), np.float64), (3, 7, 5, 0.5, (3, 3), np.float32),
                                        (1, 9, 9, 0.25, (2, 4), np.float64), (2, 5, 6, 0.5, (1, 1), np.float64),
                                        (2, 8, 7, 1.0, (4, 3), np.float32)):
        fmap = rng.standard_normal((C, H, W)).astype(dtype)
        extent = np.array([W, H]) / scale
        corner = rng.integers(-2, (extent - 1).astype(int), (5, 2))
        size = rng.integers(1, (extent // 1.5).astype(int) + 2, (5, 2))
        rois = np.concatenate([corner, corner + size], axis=1).astype(float)
        special = np.array([[0, 0, *extent], [*(extent + 3), *(extent + 6)], [2, 2, 2, 2], [1, 1, 2, 2]], float)
        rois = np.concatenate([rois, special])           # whole map, outside it, zero size, smaller than a cell
        cases.append(Case("roi_max_pool", (fmap, rois, out, scale), expected=ref.roi_max_pool(fmap, rois, out, scale),
                          check=_KEEP_DTYPE, label=f"map {C}x{H}x{W} {np.dtype(dtype).name}, {len(rois)} regions "
                          f"(some outside, one of zero size), output {out}, spatial_scale {scale}"))
    return Part("test_roi_max_pool", cases, lambda case, actual: _first_match(actual, _roi_bugs(*case.args), case.tol))


def _detections(rng: np.random.Generator, num_gt: int, per_gt: int, false_positives: int):
    gt = _clusters(rng, num_gt, 1, jitter=0.0)
    around = np.repeat(gt, per_gt, axis=0)              # per_gt noisy copies of each box
    x, y, w, h = _centre_size(around)
    around = _corners(x + rng.normal(0, 0.12, len(x)) * w, y + rng.normal(0, 0.12, len(x)) * h,
                      w * np.exp(rng.normal(0, 0.2, len(x))), h * np.exp(rng.normal(0, 0.2, len(x))))
    boxes = np.concatenate([around, _random_boxes(rng, false_positives, extent=100, degenerate=0.0)])
    order = rng.permutation(len(boxes))
    return boxes[order], gt


def _match_part(ref, rng) -> Part:
    inputs = []
    for num_gt, per_gt, fps, threshold in ((4, 3, 3, 0.5), (6, 2, 5, 0.5), (5, 3, 2, 0.7)):
        boxes, gt = _detections(rng, num_gt, per_gt, fps)
        inputs.append((boxes, rng.random(len(boxes)), gt, threshold,
                       f"{len(boxes)} detections around {num_gt} boxes with duplicates, IoU {threshold}"))
    boxes, gt = _detections(rng, 5, 3, 3)
    inputs.append((boxes, np.round(rng.random(len(boxes)) * 3) / 3, gt, 0.5, f"{len(boxes)} detections, tied scores"))
    equal = np.array([[0., 0., 4., 1.]]), np.array([[0., 0., 2., 1.]])            # IoU exactly 0.5
    inputs.append((equal[0], np.array([0.9]), equal[1], 0.5, "IoU exactly equal to the threshold"))
    tied = np.array([[0., 0., 10., 10.], [-5., 0., 5., 10.]]), np.array([[-5., 0., 5., 10.], [5., 0., 15., 10.]])
    inputs.append((tied[0], np.array([0.9, 0.8]), tied[1], 0.3,
                   "a detection overlapping two boxes equally (the lower-index box counts as its best)"))
    inputs.append((boxes, rng.random(len(boxes)), np.zeros((0, 4)), 0.5, "no ground truth"))
    inputs.append((np.zeros((0, 4)), np.zeros(0), gt, 0.5, "no detections"))
    cases = [Case("match_detections", (b, s, g, t), expected=ref.match_detections(b, s, g, t), check=_bool_array,
                  label=label) for b, s, g, t, label in inputs]
    return Part("test_match_detections", cases, lambda case, actual: _first_match(actual, _match_bugs(*case.args), case.tol))


def _ranking_inputs(rng: np.random.Generator) -> list[tuple]:
    inputs = []
    for size, hit_rate in ((12, 0.6), (30, 0.4), (50, 0.7)):
        hits = rng.random(size) < hit_rate
        inputs.append((rng.random(size), hits, int(hits.sum() + rng.integers(0, 4)), f"{size} detections"))
    inputs.append((np.array([0.9, 0.1, 0.5, 0.7]), np.array([True, True, True, True]), 4, "a perfect detector"))
    inputs.append((np.array([0.9, 0.1, 0.5]), np.array([False, False, False]), 3, "false positives only"))
    inputs.append((np.array([0.2, 0.9, 0.6, 0.4]), np.array([True, False, False, True]), 5, "misses first, hits later"))
    inputs.append((np.zeros(0), np.zeros(0, dtype=bool), 3, "no detections"))
    return inputs


def _ranking_parts(ref, rng) -> list[Part]:
    inputs = _ranking_inputs(rng)
    pr_cases = [Case("precision_recall", (s, h, g), expected=tuple(ref.precision_recall(s, h, g)), label=label)
                for s, h, g, label in inputs]
    # AP sums one non-negative precision * recall step per detection: its magnitude is AP itself
    ap_cases = [Case("average_precision", (s, h, g), expected=ref.average_precision(s, h, g), label=label,
                     tol=Tol(None, len(s) + 4)) for s, h, g, label in inputs]
    return [Part("test_precision_recall", pr_cases, lambda case, actual: _first_match(actual, _pr_bugs(*case.args), case.tol)),
            Part("test_average_precision", ap_cases, lambda case, actual: _first_match(actual, _ap_bugs(*case.args), case.tol))]


def parts(ref, rng: np.random.Generator) -> list[Part]:
    from autograder.checks import _l06_losses, _l06_tracking      # they take _first_match from here: imported when called
    gradients, tracking = _l06_tracking.parts(ref, rng, _first_match)
    before = [_iou_part(ref, rng), *_coding_parts(ref, rng), _nms_part(ref, rng), _roi_part(ref, rng), *gradients]
    after = [_anchor_part(ref, rng), _match_part(ref, rng), *_ranking_parts(ref, rng), *tracking]
    losses = _l06_losses.parts(ref, rng, _first_match)     # drawn last: the other parts' inputs stay as they were
    return [*before, *losses, *after]
