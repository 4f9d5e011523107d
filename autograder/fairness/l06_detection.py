"""Independently written correct solutions of lesson 06, in several styles (fairness corpus)."""
from autograder.fairness.stubs import filler
from autograder.fairness._l06_losses import VARIANTS as _LOSS_VARIANTS
from autograder.fairness._l06_tracking import VARIANTS as _TRACKING_VARIANTS

LESSON = "06_detection"
fill = filler(LESSON)

# =============================================================================================
# Variant "broadcast": the notebook's vectorised recipes, first-max ties (argmax), Python floats.
# =============================================================================================
_IOU_BROADCAST = fill("iou", '''\
    a = np.asarray(boxes_a, dtype=float)[:, None, :]          # (N, 1, 4)
    b = np.asarray(boxes_b, dtype=float)[None, :, :]          # (1, M, 4)
    inter_w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    inter_h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    intersection = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros(union.shape), where=union > 0)
''')

_ENCODE_HELPERS = fill("encode_boxes", '''\
    x_a, y_a, w_a, h_a = centre_size(anchors)
    x_g, y_g, w_g, h_g = centre_size(gt)
    return np.stack([(x_g - x_a) / w_a, (y_g - y_a) / h_a, np.log(w_g / w_a), np.log(h_g / h_a)], axis=1)
''')

_DECODE_HELPERS = fill("decode_boxes", '''\
    x_a, y_a, w_a, h_a = centre_size(anchors)
    t_x, t_y, t_w, t_h = deltas[:, 0], deltas[:, 1], deltas[:, 2], deltas[:, 3]
    return corners(x_a + t_x * w_a, y_a + t_y * h_a, w_a * np.exp(t_w), h_a * np.exp(t_h))
''')

_NMS_MATRIX_FLAGS = fill("non_max_suppression", '''\
    boxes, scores = np.asarray(boxes), np.asarray(scores)
    order = np.argsort(-scores, kind="stable")
    overlaps = iou(boxes[order], boxes[order])             # in visiting order, computed once
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        keep.append(order[rank])
        suppressed[rank + 1:] |= overlaps[rank, rank + 1:] > iou_threshold
    return np.array(keep, dtype=int)
''')

_ROI_BIN_MASKS = fill("roi_max_pool", '''\
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    rois = np.asarray(rois)
    x1, y1 = rois[:, 0] * spatial_scale, rois[:, 1] * spatial_scale
    x2, y2 = rois[:, 2] * spatial_scale, rois[:, 3] * spatial_scale
    bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
    rows, cols = np.arange(H), np.arange(W)
    pooled = np.zeros((len(rois), C, out_h, out_w), dtype=feature_map.dtype)
    for p in range(out_h):
        top, bottom = np.floor(y1 + p * bin_h), np.ceil(y1 + (p + 1) * bin_h)
        row_mask = (rows[None, :] >= top[:, None]) & (rows[None, :] < bottom[:, None])          # (R, H)
        for q in range(out_w):
            left, right = np.floor(x1 + q * bin_w), np.ceil(x1 + (q + 1) * bin_w)
            col_mask = (cols[None, :] >= left[:, None]) & (cols[None, :] < right[:, None])      # (R, W)
            mask = row_mask[:, :, None] & col_mask[:, None, :]                                  # (R, H, W)
            best = np.where(mask[:, None], feature_map[None], -np.inf).max(axis=(2, 3))        # (R, C)
            pooled[:, :, p, q] = np.where(mask.any(axis=(1, 2))[:, None], best, 0)
    return pooled
''')

_ANCHORS_MESHGRID = fill("generate_anchors", '''\
    H_f, W_f = feature_shape
    scales = np.asarray(scales, dtype=float)
    ratios = np.asarray(ratios, dtype=float)
    widths = (scales[:, None] / np.sqrt(ratios)[None, :]).ravel()          # (S * R,), scale-major
    heights = (scales[:, None] * np.sqrt(ratios)[None, :]).ravel()
    ii, jj = np.meshgrid(np.arange(H_f), np.arange(W_f), indexing="ij")
    cx = ((jj.ravel() + 0.5) * stride)[:, None]                             # (H_f * W_f, 1)
    cy = ((ii.ravel() + 0.5) * stride)[:, None]
    boxes = np.stack([cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2], axis=-1)
    return boxes.reshape(-1, 4)
''')

_MATCH_FIRST_MAX = fill("match_detections", '''\
    hits = np.zeros(len(det_boxes), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return hits
    overlaps = iou(det_boxes, gt_boxes)
    best_gt = overlaps.argmax(axis=1)                    # ties between gt boxes: the lower index
    best_iou = overlaps.max(axis=1)
    claimed = np.zeros(len(gt_boxes), dtype=bool)
    for d in np.argsort(-np.asarray(det_scores), kind="stable"):
        g = best_gt[d]
        if best_iou[d] >= iou_threshold and not claimed[g]:
            hits[d] = claimed[g] = True
    return hits
''')

_PR_CUMSUM = fill("precision_recall", '''\
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp_k = np.cumsum(np.asarray(is_true_positive, dtype=bool)[order])
    precision = tp_k / np.arange(1, len(order) + 1)
    recall = tp_k / num_ground_truth
    return precision.astype(float), recall.astype(float)
''')

_AP_ACCUMULATE = fill("average_precision", '''\
    if len(scores) == 0:
        return 0.0
    precision, recall = precision_recall(scores, is_true_positive, num_ground_truth)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    step = np.diff(recall, prepend=0.0)
    return float(np.sum(step * envelope))
''')

# =============================================================================================
# Variant "loops": plain Python loops where the notebook allows, float64 everywhere, best
# ground truth by a strict-greater scan, numpy scalar AP.
# =============================================================================================
_IOU_COLUMNS = fill("iou", '''\
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = boxes_a.T
    area_a = (ax2 - ax1) * (ay2 - ay1)
    result = np.zeros((len(boxes_a), len(boxes_b)))
    for m, (bx1, by1, bx2, by2) in enumerate(boxes_b):          # one column at a time
        inter_w = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
        inter_h = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
        inter = inter_w * inter_h
        union = area_a + (bx2 - bx1) * (by2 - by1) - inter
        nonempty = union > 0
        result[nonempty, m] = inter[nonempty] / union[nonempty]
    return result
''')

_ENCODE_COLUMNS = fill("encode_boxes", '''\
    a = np.asarray(anchors, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    w_a, h_a = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    w_g, h_g = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    dx = (g[:, 0] + g[:, 2]) / 2 - (a[:, 0] + a[:, 2]) / 2           # centre shift, as midpoints
    dy = (g[:, 1] + g[:, 3]) / 2 - (a[:, 1] + a[:, 3]) / 2
    return np.column_stack([dx / w_a, dy / h_a, np.log(w_g) - np.log(w_a), np.log(h_g) - np.log(h_a)])
''')

_DECODE_COLUMNS = fill("decode_boxes", '''\
    a = np.asarray(anchors, dtype=np.float64)
    t = np.asarray(deltas, dtype=np.float64)
    w_a, h_a = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    centre_x = a[:, 0] + 0.5 * w_a + t[:, 0] * w_a
    centre_y = a[:, 1] + 0.5 * h_a + t[:, 1] * h_a
    half_w = 0.5 * w_a * np.exp(t[:, 2])
    half_h = 0.5 * h_a * np.exp(t[:, 3])
    return np.column_stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h])
''')

_NMS_KEEP_LIST = fill("non_max_suppression", '''\
    scores = [float(s) for s in np.asarray(scores).ravel()]
    visit = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    overlaps = iou(np.asarray(boxes).reshape(-1, 4), np.asarray(boxes).reshape(-1, 4))   # index order
    keep = []
    for i in visit:
        if all(overlaps[k, i] <= iou_threshold for k in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)
''')

_ROI_LOOPS = fill("roi_max_pool", '''\
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    pooled = np.zeros((len(rois), C, out_h, out_w), dtype=feature_map.dtype)
    for r, roi in enumerate(np.asarray(rois, dtype=np.float64)):
        x1, y1, x2, y2 = (float(v) * spatial_scale for v in roi)
        for p in range(out_h):
            top = max(math.floor(y1 + p * (y2 - y1) / out_h), 0)
            bottom = min(math.ceil(y1 + (p + 1) * (y2 - y1) / out_h), H)
            for q in range(out_w):
                left = max(math.floor(x1 + q * (x2 - x1) / out_w), 0)
                right = min(math.ceil(x1 + (q + 1) * (x2 - x1) / out_w), W)
                if top < bottom and left < right:
                    pooled[r, :, p, q] = feature_map[:, top:bottom, left:right].max(axis=(1, 2))
    return pooled
''', before="import math\n\n\n")

_ANCHORS_LOOPS = fill("generate_anchors", '''\
    H_f, W_f = feature_shape
    shapes = [(float(s) / math.sqrt(float(r)), float(s) * math.sqrt(float(r))) for s in scales for r in ratios]
    rows = []
    for i in range(H_f):
        for j in range(W_f):
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            for w, h in shapes:
                rows.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)
''', before="import math\n\n\n")

_MATCH_SCAN = fill("match_detections", '''\
    D, G = len(det_boxes), len(gt_boxes)
    hits = np.zeros(D, dtype=bool)
    if G == 0:
        return hits
    overlaps = iou(np.asarray(det_boxes).reshape(-1, 4), np.asarray(gt_boxes).reshape(-1, 4))
    scores = [float(s) for s in np.asarray(det_scores).ravel()]
    claimed = set()
    for d in sorted(range(D), key=lambda i: (-scores[i], i)):
        best, best_iou = 0, overlaps[d, 0]
        for g in range(1, G):                            # strictly greater: equal IoU keeps the lower index
            if overlaps[d, g] > best_iou:
                best, best_iou = g, overlaps[d, g]
        if best_iou >= iou_threshold and best not in claimed:
            claimed.add(best)
            hits[d] = True
    return hits
''')

_PR_LOOP = fill("precision_recall", '''\
    scores = [float(s) for s in np.asarray(scores).ravel()]
    hits = [bool(h) for h in np.asarray(is_true_positive).ravel()]
    precision, recall, tp = [], [], 0
    for k, i in enumerate(sorted(range(len(scores)), key=lambda i: (-scores[i], i))):
        tp += hits[i]
        precision.append(tp / (k + 1))
        recall.append(tp / num_ground_truth)
    return np.array(precision, dtype=float), np.array(recall, dtype=float)
''')

_AP_LOOP = fill("average_precision", '''\
    precision, recall = precision_recall(scores, is_true_positive, num_ground_truth)
    ap, best_after = np.float64(0.0), 0.0
    for k in range(len(precision) - 1, -1, -1):          # walk backwards, carrying max(precision[k:])
        best_after = max(best_after, precision[k])
        previous = recall[k - 1] if k > 0 else 0.0
        ap += (recall[k] - previous) * best_after
    return ap                                            # np.float64 (a float subclass)
''')

# =============================================================================================
# Variant "outer_pop": ufunc.outer IoU, input dtype kept, pop-style NMS returning int32,
# per-region (out_h, out_w, H, W) masks, repeat/tile anchors, best ground truth as the first of the
# entries equal to the row max, VOC-devkit AP with equal scores visited higher index first.
# =============================================================================================
_IOU_OUTER = fill("iou", '''\
    ax1, ay1, ax2, ay2 = (np.asarray(boxes_a)[:, k] for k in range(4))
    bx1, by1, bx2, by2 = (np.asarray(boxes_b)[:, k] for k in range(4))
    inter_w = (np.minimum.outer(ax2, bx2) - np.maximum.outer(ax1, bx1)).clip(min=0)
    inter_h = (np.minimum.outer(ay2, by2) - np.maximum.outer(ay1, by1)).clip(min=0)
    inter = inter_w * inter_h
    union = np.add.outer((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)) - inter
    positive = union > 0
    return np.where(positive, inter / np.where(positive, union, 1), 0.0)
''')

_ENCODE_KEEP_DTYPE = fill("encode_boxes", '''\
    anchor_cs = np.stack(centre_size(anchors), axis=1)       # (N, 4): x, y, w, h
    gt_cs = np.stack(centre_size(gt), axis=1)
    deltas = np.empty(np.broadcast_shapes(anchor_cs.shape, gt_cs.shape), dtype=np.result_type(anchor_cs, gt_cs))
    deltas[:, :2] = (gt_cs[:, :2] - anchor_cs[:, :2]) / anchor_cs[:, 2:]
    deltas[:, 2:] = np.log(gt_cs[:, 2:] / anchor_cs[:, 2:])
    return deltas
''')

_DECODE_KEEP_DTYPE = fill("decode_boxes", '''\
    centre = np.stack(centre_size(anchors), axis=1)          # (N, 4): x, y, w, h
    size = centre[:, 2:] * np.exp(deltas[:, 2:])
    middle = centre[:, :2] + deltas[:, :2] * centre[:, 2:]
    return np.concatenate([middle - size / 2, middle + size / 2], axis=1)
''')

_NMS_POP = fill("non_max_suppression", '''\
    boxes, scores = np.asarray(boxes), np.asarray(scores)
    queue = np.lexsort((np.arange(len(scores)), -scores))   # by -score, then by index
    keep = []
    while queue.size:
        best, queue = queue[0], queue[1:]
        keep.append(best)
        if queue.size:
            queue = queue[iou(boxes[best][None], boxes[queue])[0] <= iou_threshold]
    return np.array(keep, dtype=np.int32)
''')

_ROI_PER_REGION = fill("roi_max_pool", '''\
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    result = np.zeros((len(rois), C, out_h, out_w), dtype=feature_map.dtype)
    rows, cols = np.arange(H), np.arange(W)
    for r, (x1, y1, x2, y2) in enumerate(np.asarray(rois) * spatial_scale):
        bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
        p, q = np.arange(out_h), np.arange(out_w)
        row_in = (rows >= np.floor(y1 + p * bin_h)[:, None]) & (rows < np.ceil(y1 + (p + 1) * bin_h)[:, None])
        col_in = (cols >= np.floor(x1 + q * bin_w)[:, None]) & (cols < np.ceil(x1 + (q + 1) * bin_w)[:, None])
        cells = row_in[:, None, :, None] & col_in[None, :, None, :]                 # (out_h, out_w, H, W)
        values = np.where(cells, feature_map[:, None, None], -np.inf).max(axis=(-2, -1))   # (C, out_h, out_w)
        result[r] = np.where(cells.any(axis=(-2, -1)), values, 0)
    return result
''')

_ANCHORS_REPEAT = fill("generate_anchors", '''\
    H_f, W_f = feature_shape
    s = np.repeat(np.asarray(scales, dtype=np.float64), len(ratios))     # s-major: s0 r0, s0 r1, ...
    r = np.tile(np.asarray(ratios, dtype=np.float64), len(scales))
    k = len(s)
    cell = np.arange(H_f * W_f)
    cx = np.repeat((cell % W_f + 0.5) * stride, k)                       # cell index i * W_f + j
    cy = np.repeat((cell // W_f + 0.5) * stride, k)
    w = np.tile(s / np.sqrt(r), H_f * W_f)
    h = np.tile(s * np.sqrt(r), H_f * W_f)
    return corners(cx, cy, w, h)
''')

_MATCH_FIRST_EQUAL = fill("match_detections", '''\
    det_scores = np.asarray(det_scores)
    is_tp = np.full(len(det_scores), False)
    if len(gt_boxes) == 0:
        return is_tp
    overlaps = iou(det_boxes, gt_boxes)
    free = np.ones(len(gt_boxes), dtype=bool)
    for d in np.lexsort((np.arange(len(det_scores)), -det_scores)):
        top = overlaps[d].max()
        if top < iou_threshold:
            continue
        best = np.flatnonzero(overlaps[d] == top)[0]    # of equally overlapping boxes, the lowest index
        if free[best]:
            free[best] = False
            is_tp[d] = True
    return is_tp
''')

_PR_LEXSORT = fill("precision_recall", '''\
    scores = np.asarray(scores)
    order = np.lexsort((np.arange(scores.size), -scores))
    tp_k = np.cumsum(np.asarray(is_true_positive)[order], dtype=np.float64)
    return tp_k / (np.arange(scores.size) + 1.0), tp_k / float(num_ground_truth)
''')

_AP_DEVKIT = fill("average_precision", '''\
    scores = np.asarray(scores, dtype=np.float64)
    # Equal scores: this docstring leaves their order open; visit them higher index first.
    order = np.lexsort((-np.arange(scores.size), -scores))
    tp = np.cumsum(np.asarray(is_true_positive, dtype=bool)[order])
    recall = tp / num_ground_truth
    precision = tp / np.arange(1, scores.size + 1)
    # PASCAL VOC devkit form: sentinels, envelope, area where recall changes
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    changed = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changed + 1] - mrec[changed]) * mpre[changed + 1]))
''')

VARIANTS = {
    "broadcast": {
        "iou": _IOU_BROADCAST,
        "encode_boxes": _ENCODE_HELPERS,
        "decode_boxes": _DECODE_HELPERS,
        "non_max_suppression": _NMS_MATRIX_FLAGS,
        "roi_max_pool": _ROI_BIN_MASKS,
        "generate_anchors": _ANCHORS_MESHGRID,
        "match_detections": _MATCH_FIRST_MAX,
        "precision_recall": _PR_CUMSUM,
        "average_precision": _AP_ACCUMULATE,
    },
    "loops": {
        "iou": _IOU_COLUMNS,
        "encode_boxes": _ENCODE_COLUMNS,
        "decode_boxes": _DECODE_COLUMNS,
        "non_max_suppression": _NMS_KEEP_LIST,
        "roi_max_pool": _ROI_LOOPS,
        "generate_anchors": _ANCHORS_LOOPS,
        "match_detections": _MATCH_SCAN,
        "precision_recall": _PR_LOOP,
        "average_precision": _AP_LOOP,
    },
    "outer_pop": {
        "iou": _IOU_OUTER,
        "encode_boxes": _ENCODE_KEEP_DTYPE,
        "decode_boxes": _DECODE_KEEP_DTYPE,
        "non_max_suppression": _NMS_POP,
        "roi_max_pool": _ROI_PER_REGION,
        "generate_anchors": _ANCHORS_REPEAT,
        "match_detections": _MATCH_FIRST_EQUAL,
        "precision_recall": _PR_LEXSORT,
        "average_precision": _AP_DEVKIT,
    },
}

for _name in VARIANTS:
    VARIANTS[_name].update(_TRACKING_VARIANTS[_name], **_LOSS_VARIANTS[_name])

STYLES = {
    "broadcast": "the notebook's recipes: (N, 1, 4) x (1, M, 4) broadcasting with np.divide(where=), centre_size/"
                 "corners helpers, NMS over a visiting-order IoU matrix with suppression flags, RoI bin loop with "
                 "(R, H)/(R, W) masks, meshgrid anchors, argmax (first, lower-index) ground truth on equal IoU, "
                 "cumsum PR, maximum.accumulate AP as a Python float",
    "loops": "plain Python loops, float64 throughout: IoU one column of boxes_b at a time, midpoint centres and "
             "log differences, NMS by a kept list checked with all(), RoI loops over regions and bins with "
             "math.floor/ceil of y1' + p*(y2'-y1')/out_h, anchor rows appended cell by cell, best ground truth "
             "by a strict-greater scan (equal IoU keeps the lower index), AP as np.float64",
    "outer_pop": "np.minimum.outer IoU keeping the input dtype, pop-style NMS recomputing IoU of the head "
                 "against the queue and returning int32, one (out_h, out_w, H, W) mask per region, repeat/tile "
                 "anchors via corners(), best ground truth as flatnonzero(row == max)[0], lexsort PR, "
                 "VOC-devkit AP (sentinels, changed-recall sum) visiting equal scores HIGHER index first",
}
