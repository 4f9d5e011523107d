"""Lesson 06's typical bugs as students write them, with the graded cells each must fail and the words
its feedback must contain (autograder.grader.bugs; BUGS is exported by autograder/checks/l06_detection.py).

Each bug is one students write. non_max_suppression, match_detections and associate (and so update_tracks)
call the student's iou, so a wrong union also costs those parts (and their feedback says to fix iou).
A bug worth pinning but not shipping gets shipped=False: each lesson-06 sample takes about 20 s in the sandbox.
"""
from autograder.grader.bugs import Bug

_IOU_UNION_NOT_SUBTRACTED = '''\
def iou(boxes_a, boxes_b):
    a, b = boxes_a[:, None, :], boxes_b[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :]
    return np.divide(w * h, union, out=np.zeros_like(w * h), where=union > 0)
'''

# 0 / 0 for two zero-area boxes: NaN (numpy only warns).
_IOU_NO_GUARD = '''\
def iou(boxes_a, boxes_b):
    a, b = boxes_a[:, None, :], boxes_b[None, :, :]
    w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = w * h
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    with np.errstate(invalid="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)
'''

_NMS_NOT_SORTED = '''\
def non_max_suppression(boxes, scores, iou_threshold):
    keep = []
    for i in range(len(boxes)):
        if all(iou(boxes[i:i + 1], boxes[k:k + 1])[0, 0] <= iou_threshold for k in keep):
            keep.append(i)
    return np.array(keep, dtype=int)
'''

_NMS_GREATER_OR_EQUAL = '''\
def non_max_suppression(boxes, scores, iou_threshold):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[iou(boxes[best:best + 1], boxes[order])[0] < iou_threshold]
    return np.array(keep, dtype=int)
'''

_ANCHORS_WH_SWAPPED = '''\
def generate_anchors(feature_shape, stride, scales, ratios):
    H_f, W_f = feature_shape
    anchors = []
    for i in range(H_f):
        for j in range(W_f):
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            for s in scales:
                for r in ratios:
                    w, h = s * np.sqrt(r), s / np.sqrt(r)
                    anchors.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(anchors)
'''

_ENCODE_NO_LOG = '''\
def encode_boxes(anchors, gt):
    x_a, y_a, w_a, h_a = centre_size(anchors)
    x_g, y_g, w_g, h_g = centre_size(gt)
    return np.stack([(x_g - x_a) / w_a, (y_g - y_a) / h_a, w_g / w_a, h_g / h_a], axis=1)
'''

_ROI_POOL_ROUNDED_BINS = '''\
def roi_max_pool(feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    pooled = np.zeros((len(rois), C, out_h, out_w), dtype=feature_map.dtype)
    for r, (x1, y1, x2, y2) in enumerate(rois * spatial_scale):
        bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
        for p in range(out_h):
            for q in range(out_w):
                top, bottom = int(max(round(y1 + p * bin_h), 0)), int(min(round(y1 + (p + 1) * bin_h), H))
                left, right = int(max(round(x1 + q * bin_w), 0)), int(min(round(x1 + (q + 1) * bin_w), W))
                if top < bottom and left < right:
                    pooled[r, :, p, q] = feature_map[:, top:bottom, left:right].max(axis=(1, 2))
    return pooled
'''

_AP_NO_ENVELOPE = '''\
def average_precision(scores, is_true_positive, num_ground_truth):
    precision, recall = precision_recall(scores, is_true_positive, num_ground_truth)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
'''

_ROI_BACKWARD_FIRST_CELL = '''\
def roi_max_pool_backward(d_pooled, feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    d_map = np.zeros(feature_map.shape)
    for r, (x1, y1, x2, y2) in enumerate(rois * spatial_scale):
        bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
        for p in range(out_h):
            for q in range(out_w):
                top, bottom = int(max(np.floor(y1 + p * bin_h), 0)), int(min(np.ceil(y1 + (p + 1) * bin_h), H))
                left, right = int(max(np.floor(x1 + q * bin_w), 0)), int(min(np.ceil(x1 + (q + 1) * bin_w), W))
                if top < bottom and left < right:
                    d_map[:, top, left] += d_pooled[r, :, p, q]
    return d_map
'''

# The bin loop vectorised over regions with a fancy-index +=: in one bin, regions that share an
# arg-max cell keep only the last region's gradient (the bins still add up). np.add.at is the fix.
_ROI_BACKWARD_FANCY_INDEX_PER_BIN = '''\
def roi_max_pool_backward(d_pooled, feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    d_map = np.zeros(feature_map.shape)
    scaled = np.asarray(rois, dtype=float) * spatial_scale
    x1, y1, x2, y2 = scaled.T
    bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
    rows, cols = np.arange(H)[:, None], np.arange(W)[None, :]
    for p in range(out_h):
        for q in range(out_w):
            top = np.clip(np.floor(y1 + p * bin_h), 0, H)
            bottom = np.clip(np.ceil(y1 + (p + 1) * bin_h), 0, H)
            left = np.clip(np.floor(x1 + q * bin_w), 0, W)
            right = np.clip(np.ceil(x1 + (q + 1) * bin_w), 0, W)
            mask = ((rows >= top[:, None, None]) & (rows < bottom[:, None, None])
                    & (cols >= left[:, None, None]) & (cols < right[:, None, None]))       # (R, H, W)
            masked = np.where(mask[:, None], feature_map[None], -np.inf)                 # (R, C, H, W)
            winner = masked.reshape(len(scaled), C, H * W).argmax(axis=-1)               # (R, C)
            full = np.broadcast_to(mask.any(axis=(1, 2))[:, None], winner.shape)
            channels = np.broadcast_to(np.arange(C), winner.shape)
            d_map[channels[full], winner[full] // W, winner[full] % W] += d_pooled[:, :, p, q][full]
    return d_map
'''

_SMOOTH_L1_THRESHOLD_HALF = '''\
def smooth_l1(z):
    small = np.abs(z) < 0.5
    return np.where(small, 0.5 * z ** 2, np.abs(z) - 0.5), np.where(small, z, np.sign(z))
'''

_ASSOCIATE_TRACKS_IN_ORDER = '''\
def associate(track_boxes, det_boxes, iou_threshold):
    pairs, taken = [], set()
    if len(track_boxes) and len(det_boxes):
        overlaps = iou(track_boxes, det_boxes)
        for t in range(len(track_boxes)):
            free = [d for d in np.argsort(-overlaps[t], kind="stable") if d not in taken]
            if free and overlaps[t, free[0]] >= iou_threshold:
                pairs.append((t, free[0]))
                taken.add(free[0])
    return np.array(pairs, dtype=int).reshape(-1, 2)
'''

_TRACKER_REUSES_IDS = '''\
def update_tracks(tracks, det_boxes, iou_threshold=0.3, max_missed=2):
    pairs = associate(tracks["boxes"], det_boxes, iou_threshold)
    ids, boxes, missed = list(tracks["ids"]), [b for b in tracks["boxes"]], [m + 1 for m in tracks["missed"]]
    det_ids = np.full(len(det_boxes), -1)
    for t, d in pairs:
        boxes[t], missed[t], det_ids[d] = det_boxes[d], 0, ids[t]
    alive = [k for k in range(len(ids)) if missed[k] <= max_missed]
    ids, boxes, missed = [ids[k] for k in alive], [boxes[k] for k in alive], [missed[k] for k in alive]
    next_id = max(ids, default=-1) + 1
    for d in range(len(det_boxes)):
        if det_ids[d] < 0:
            det_ids[d] = next_id
            ids.append(next_id); boxes.append(det_boxes[d]); missed.append(0)
            next_id += 1
    return {"ids": np.array(ids, dtype=int), "boxes": np.array(boxes, dtype=float).reshape(-1, 4),
            "missed": np.array(missed, dtype=int), "next_id": next_id}, det_ids
'''

_COUNT_NOT_GROUPED_BY_ID = '''\
def count_crossings(ids, centres_x, line_x):
    right = np.asarray(centres_x) >= line_x
    counted, rightwards, leftwards = set(), 0, 0
    for k in range(1, len(right)):
        if right[k] != right[k - 1] and ids[k] not in counted:
            counted.add(ids[k])
            rightwards += bool(right[k])
            leftwards += not right[k]
    return rightwards, leftwards
'''

_IOU_NOT_CLIPPED = '''\
def iou(boxes_a, boxes_b):
    x1 = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    y1 = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    x2 = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    y2 = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = (x2 - x1) * (y2 - y1)              # disjoint boxes: two negative sides make a positive overlap
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
'''

# The swapped-anchors sample with width and height right, but centred on the cell's corner.
_ANCHORS_ON_THE_CELL_CORNER = (_ANCHORS_WH_SWAPPED.replace("s * np.sqrt(r), s / np.sqrt(r)", "s / np.sqrt(r), s * np.sqrt(r)")
                               .replace("(j + 0.5) * stride, (i + 0.5) * stride", "j * stride, i * stride"))

_ENCODE_CORNER_SHIFT = '''\
def encode_boxes(anchors, gt):
    _, _, w_a, h_a = centre_size(anchors)
    _, _, w_g, h_g = centre_size(gt)
    shift = (gt[:, :2] - anchors[:, :2]) / np.stack([w_a, h_a], axis=1)      # top-left corners, not centres
    return np.concatenate([shift, np.log(np.stack([w_g / w_a, h_g / h_a], axis=1))], axis=1)
'''

_RPN_BOX_LOSS_ON_NEGATIVES = '''\
def rpn_loss(objectness, deltas, labels, targets, box_weight=1.0):
    S = len(objectness)
    y = (labels == 1).astype(float)
    logistic = np.where(y == 1, np.logaddexp(0, -objectness), np.logaddexp(0, objectness))
    p = 1 / (1 + np.exp(-objectness))
    box_loss, box_grad = smooth_l1(deltas - targets)          # every sampled anchor, negatives too
    loss = (logistic.sum() + box_weight * box_loss.sum()) / S
    return float(loss), (p - y) / S, box_weight * box_grad / S
'''

_RPN_BOX_OVER_POSITIVES = '''\
def rpn_loss(objectness, deltas, labels, targets, box_weight=1.0):
    S = len(objectness)
    positive = labels == 1
    P = max(int(positive.sum()), 1)
    logistic = np.where(positive, np.logaddexp(0, -objectness), np.logaddexp(0, objectness))
    p = 1 / (1 + np.exp(-objectness))
    box_loss, box_grad = smooth_l1(deltas[positive] - targets[positive])
    d_deltas = np.zeros_like(deltas, dtype=float)
    d_deltas[positive] = box_weight * box_grad / P
    return float(logistic.sum() / S + box_weight * box_loss.sum() / P), (p - positive) / S, d_deltas
'''

_RPN_NAIVE_LOG = '''\
def rpn_loss(objectness, deltas, labels, targets, box_weight=1.0):
    S = len(objectness)
    y = (labels == 1).astype(float)
    p = 1 / (1 + np.exp(-objectness))
    logistic = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    positive = labels == 1
    box_loss, box_grad = smooth_l1(deltas[positive] - targets[positive])
    d_deltas = np.zeros(deltas.shape)
    d_deltas[positive] = box_weight * box_grad / S
    return float((logistic.sum() + box_weight * box_loss.sum()) / S), (p - y) / S, d_deltas
'''

# label 0 - 1 = -1: numpy reads the last class's deltas for every background region, silently
_HEAD_BOX_LOSS_ON_BACKGROUND = '''\
def head_loss(class_logits, box_deltas, labels, targets, box_weight=1.0):
    R = len(class_logits)
    rows = np.arange(R)
    shifted = class_logits - class_logits.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(shifted).sum(axis=1))
    probs = np.exp(shifted - log_total[:, None])
    onehot = np.eye(class_logits.shape[1])[labels]
    box_loss, box_grad = smooth_l1(box_deltas[rows, labels - 1] - targets)
    d_box = np.zeros(box_deltas.shape)
    d_box[rows, labels - 1] = box_weight * box_grad / R
    loss = (np.sum(log_total - shifted[rows, labels]) + box_weight * box_loss.sum()) / R
    return float(loss), (probs - onehot) / R, d_box
'''

_HEAD_NO_ONEHOT = (_HEAD_BOX_LOSS_ON_BACKGROUND
                   .replace("    box_loss, box_grad = smooth_l1(box_deltas[rows, labels - 1] - targets)\n",
                            "    fg = rows[labels > 0]\n    box_loss, box_grad = smooth_l1(box_deltas[fg, labels[fg] - 1] - targets[fg])\n")
                   .replace("d_box[rows, labels - 1]", "d_box[fg, labels[fg] - 1]")
                   .replace("(probs - onehot) / R", "probs / R"))

BUGS = {   # base "solution": every other function is the instructor's
    "iou_union_not_subtracted": Bug({"iou": _IOU_UNION_NOT_SUBTRACTED}, fails={
        "test_iou": "counts the intersection twice", "test_non_max_suppression": "fix iou",
        "test_match_detections": "fix iou", "test_associate": "fix iou", "test_update_tracks": ""}),
    "iou_no_zero_area_guard": Bug({"iou": _IOU_NO_GUARD}, fails={"test_iou": "0 / 0 = NaN"}),
    "nms_not_sorted_by_score": Bug({"non_max_suppression": _NMS_NOT_SORTED},
                                   fails={"test_non_max_suppression": "sort them by descending score"}),
    "nms_greater_or_equal": Bug({"non_max_suppression": _NMS_GREATER_OR_EQUAL},
                                fails={"test_non_max_suppression": "not >="}),
    "anchors_width_height_swapped": Bug({"generate_anchors": _ANCHORS_WH_SWAPPED},
                                        fails={"test_generate_anchors": "width and height are swapped"}),
    "encode_without_log": Bug({"encode_boxes": _ENCODE_NO_LOG}, fails={"test_encode_boxes": "the log is missing"}),
    "roi_pool_rounded_bins": Bug({"roi_max_pool": _ROI_POOL_ROUNDED_BINS},
                                 fails={"test_roi_max_pool": "rounded to the nearest cell"}),
    "roi_backward_first_cell": Bug({"roi_max_pool_backward": _ROI_BACKWARD_FIRST_CELL},
                                   fails={"test_roi_max_pool_backward": "first cell of the bin"}),
    # in process only: a shipped lesson-06 sample costs ~10 s of sandbox time in every CI run
    "roi_backward_fancy_index_per_bin": Bug({"roi_max_pool_backward": _ROI_BACKWARD_FANCY_INDEX_PER_BIN},
                                            fails={"test_roi_max_pool_backward": "keeps only the last region's gradient"},
                                            shipped=False),
    "smooth_l1_threshold_half": Bug({"smooth_l1": _SMOOTH_L1_THRESHOLD_HALF}, fails={    # the losses call smooth_l1
        "test_smooth_l1": "the threshold is 0.5", "test_rpn_loss": "fix smooth_l1", "test_head_loss": "fix smooth_l1"}),
    "associate_tracks_in_index_order": Bug({"associate": _ASSOCIATE_TRACKS_IN_ORDER}, fails={
        "test_associate": "highest IoU first", "test_update_tracks": "greedy by IoU"}),
    "tracker_reuses_ids": Bug({"update_tracks": _TRACKER_REUSES_IDS}, fails={"test_update_tracks": "never reused"}),
    "count_not_grouped_by_id": Bug({"count_crossings": _COUNT_NOT_GROUPED_BY_ID},
                                   fails={"test_count_crossings": "same track"}),
    "ap_without_envelope": Bug({"average_precision": _AP_NO_ENVELOPE}, fails={"test_average_precision": "envelope"}),
    "iou_not_clipped": Bug({"iou": _IOU_NOT_CLIPPED}, fails={"test_iou": "not clipped at 0", **dict.fromkeys(
        ("test_non_max_suppression", "test_match_detections", "test_associate", "test_update_tracks"), "")},
        shipped=False),
    "anchors_on_the_cell_corner": Bug({"generate_anchors": _ANCHORS_ON_THE_CELL_CORNER},
                                      fails={"test_generate_anchors": "centred on the cell's corner"}, shipped=False),
    "encode_corner_shift": Bug({"encode_boxes": _ENCODE_CORNER_SHIFT},
                               fails={"test_encode_boxes": "use the box centres"}, shipped=False),
    "head_box_loss_on_background": Bug({"head_loss": _HEAD_BOX_LOSS_ON_BACKGROUND},
                                       fails={"test_head_loss": "background regions got a box term"}),
    "head_gradient_without_onehot": Bug({"head_loss": _HEAD_NO_ONEHOT},
                                        fails={"test_head_loss": "one-hot of the true class is not subtracted"},
                                        shipped=False),
    "rpn_box_loss_on_negatives": Bug({"rpn_loss": _RPN_BOX_LOSS_ON_NEGATIVES},
                                     fails={"test_rpn_loss": "counts the negative anchors too"}, shipped=False),
    "rpn_box_divided_by_positives": Bug({"rpn_loss": _RPN_BOX_OVER_POSITIVES},
                                        fails={"test_rpn_loss": "divided by the number of positives"}, shipped=False),
    "rpn_naive_log": Bug({"rpn_loss": _RPN_NAIVE_LOG}, fails={"test_rpn_loss": "inf or NaN for large logits"},
                         shipped=False),
}
