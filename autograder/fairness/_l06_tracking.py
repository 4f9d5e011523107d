"""Independently written correct solutions of lesson 06's RoI backward, smooth L1, tracking and
counting, in three styles, and the lesson-04 layers each brings (lesson 04's own fairness variants);
l06_detection.VARIANTS merges them into its variants of the same names."""
from autograder.fairness.l04_train_cnn import VARIANTS as _LESSON04

_LAYER_STUBS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward", "Conv2D", "ReLU",
                "MaxPool2D", "sgd_momentum_step")


def _layers(variant: str) -> str:
    """One cell with a lesson-04 variant's layers, as a student pastes them."""
    return "\n\n".join(_LESSON04[variant][name] for name in _LAYER_STUBS)


# ---------------------------------------------------------------- "broadcast"
_ROI_BACKWARD_UNRAVEL = '''\
def roi_max_pool_backward(d_pooled, feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    grad = np.zeros((C, H, W))
    scaled = np.asarray(rois, dtype=float) * spatial_scale
    for r in range(len(scaled)):
        x1, y1, x2, y2 = scaled[r]
        for p in range(out_h):
            top = max(int(np.floor(y1 + p * (y2 - y1) / out_h)), 0)
            bottom = min(int(np.ceil(y1 + (p + 1) * (y2 - y1) / out_h)), H)
            for q in range(out_w):
                left = max(int(np.floor(x1 + q * (x2 - x1) / out_w)), 0)
                right = min(int(np.ceil(x1 + (q + 1) * (x2 - x1) / out_w)), W)
                if bottom <= top or right <= left:
                    continue
                window = feature_map[:, top:bottom, left:right].reshape(C, -1)
                i, j = np.unravel_index(window.argmax(axis=1), (bottom - top, right - left))
                grad[np.arange(C), top + i, left + j] += d_pooled[r, :, p, q]
    return grad
'''

_SMOOTH_L1_CLIP = '''\
def smooth_l1(z):
    a = np.abs(z)
    return np.where(a < 1, 0.5 * z * z, a - 0.5), np.clip(z, -1.0, 1.0)
'''

_ASSOCIATE_MASKED_ARGMAX = '''\
def associate(track_boxes, det_boxes, iou_threshold):
    pairs = []
    if len(track_boxes) and len(det_boxes):
        overlaps = iou(track_boxes, det_boxes).astype(float)
        while overlaps.size:
            t, d = np.unravel_index(np.argmax(overlaps), overlaps.shape)   # first max: lowest t, then d
            if overlaps[t, d] < iou_threshold:
                break
            pairs.append([t, d])
            overlaps[t, :] = -np.inf
            overlaps[:, d] = -np.inf
    return np.array(pairs, dtype=int).reshape(-1, 2)
'''

_UPDATE_LISTS = '''\
def update_tracks(tracks, det_boxes, iou_threshold=0.3, max_missed=2):
    paired = {int(t): int(d) for t, d in associate(tracks["boxes"], det_boxes, iou_threshold)}
    det_ids = [None] * len(det_boxes)
    ids, boxes, missed = [], [], []
    for t, track_id in enumerate(tracks["ids"]):
        if t in paired:
            det_ids[paired[t]] = int(track_id)
            ids.append(int(track_id)); boxes.append(list(det_boxes[paired[t]])); missed.append(0)
        elif tracks["missed"][t] + 1 <= max_missed:
            ids.append(int(track_id)); boxes.append(list(tracks["boxes"][t])); missed.append(int(tracks["missed"][t]) + 1)
    next_id = int(tracks["next_id"])
    for d in range(len(det_boxes)):
        if det_ids[d] is None:
            det_ids[d] = next_id
            ids.append(next_id); boxes.append(list(det_boxes[d])); missed.append(0)
            next_id += 1
    return ({"ids": np.array(ids, dtype=int), "boxes": np.array(boxes, dtype=float).reshape(-1, 4),
             "missed": np.array(missed, dtype=int), "next_id": next_id}, np.array(det_ids, dtype=int))
'''

_COUNT_STABLE_SORT = '''\
def count_crossings(ids, centres_x, line_x):
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")                 # by track, time order kept within a track
    ids, right = ids[order], (np.asarray(centres_x) >= line_x)[order]
    step = (ids[1:] == ids[:-1]) & (right[1:] != right[:-1])
    first = {}
    for k in np.flatnonzero(step):
        first.setdefault(int(ids[k]), bool(right[k + 1]))
    return sum(first.values()), len(first) - sum(first.values())
'''

# ---------------------------------------------------------------- "loops"
_ROI_BACKWARD_LOOPS = '''\
import math

def roi_max_pool_backward(d_pooled, feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    grad = np.zeros((C, H, W))
    for r in range(len(rois)):
        x1, y1, x2, y2 = [float(v) * spatial_scale for v in rois[r]]
        for p in range(out_h):
            for q in range(out_w):
                rows = range(max(math.floor(y1 + p * (y2 - y1) / out_h), 0), min(math.ceil(y1 + (p + 1) * (y2 - y1) / out_h), H))
                cols = range(max(math.floor(x1 + q * (x2 - x1) / out_w), 0), min(math.ceil(x1 + (q + 1) * (x2 - x1) / out_w), W))
                for ch in range(C):
                    best = None
                    for i in rows:
                        for j in cols:
                            if best is None or feature_map[ch, i, j] > feature_map[ch, best[0], best[1]]:
                                best = (i, j)
                    if best is not None:
                        grad[ch, best[0], best[1]] += d_pooled[r, ch, p, q]
    return grad
'''

_SMOOTH_L1_LOOPS = '''\
def smooth_l1(z):
    loss, grad = np.zeros(np.shape(z)), np.zeros(np.shape(z))
    for index in np.ndindex(*np.shape(z)):
        v = float(z[index])
        if abs(v) < 1:
            loss[index], grad[index] = 0.5 * v * v, v
        else:
            loss[index], grad[index] = abs(v) - 0.5, (1.0 if v > 0 else -1.0)
    return loss, grad
'''

_ASSOCIATE_SORTED_TRIPLES = '''\
def associate(track_boxes, det_boxes, iou_threshold):
    if len(track_boxes) == 0 or len(det_boxes) == 0:
        return np.zeros((0, 2), dtype=int)
    overlaps = iou(track_boxes, det_boxes)
    triples = sorted((-overlaps[t, d], t, d) for t in range(len(track_boxes)) for d in range(len(det_boxes)))
    used_t, used_d, pairs = set(), set(), []
    for negative, t, d in triples:
        if -negative < iou_threshold:
            break
        if t not in used_t and d not in used_d:
            pairs.append((t, d)); used_t.add(t); used_d.add(d)
    return np.array(pairs, dtype=int).reshape(-1, 2)
'''

_UPDATE_MASKS = '''\
def update_tracks(tracks, det_boxes, iou_threshold=0.3, max_missed=2):
    pairs = associate(tracks["boxes"], det_boxes, iou_threshold)
    T, D = len(tracks["ids"]), len(det_boxes)
    track_paired, det_paired = np.zeros(T, bool), np.zeros(D, bool)
    track_paired[pairs[:, 0]], det_paired[pairs[:, 1]] = True, True
    boxes = np.array(tracks["boxes"], dtype=float).reshape(-1, 4).copy()
    boxes[pairs[:, 0]] = det_boxes[pairs[:, 1]]
    missed = np.where(track_paired, 0, np.asarray(tracks["missed"]) + 1)
    keep = missed <= max_missed
    new_ids = tracks["next_id"] + np.arange((~det_paired).sum())
    det_ids = np.zeros(D, dtype=np.int64)
    det_ids[pairs[:, 1]] = np.asarray(tracks["ids"])[pairs[:, 0]]
    det_ids[~det_paired] = new_ids
    return ({"ids": np.concatenate([np.asarray(tracks["ids"])[keep], new_ids]).astype(np.int64),
             "boxes": np.concatenate([boxes[keep], np.asarray(det_boxes, float).reshape(-1, 4)[~det_paired]]),
             "missed": np.concatenate([missed[keep], np.zeros(len(new_ids))]).astype(np.int64),
             "next_id": int(tracks["next_id"] + len(new_ids))}, det_ids)
'''

_COUNT_LAST_SIDE = '''\
def count_crossings(ids, centres_x, line_x):
    last_side, counted = {}, {}
    for track, x in zip(np.asarray(ids).tolist(), np.asarray(centres_x).tolist()):
        side = "right" if x >= line_x else "left"
        if track in last_side and last_side[track] != side and track not in counted:
            counted[track] = side
        last_side[track] = side
    directions = list(counted.values())
    return directions.count("right"), directions.count("left")
'''

# ---------------------------------------------------------------- "outer_pop"
_ROI_BACKWARD_ONE_HOT = '''\
def roi_max_pool_backward(d_pooled, feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out_h, out_w = output_size
    grad = np.zeros((C, H * W), dtype=np.float64)
    rows, cols = np.arange(H)[:, None], np.arange(W)[None, :]
    flat = feature_map.reshape(C, H * W)
    for r, roi in enumerate(np.asarray(rois, dtype=np.float64)):
        x1, y1, x2, y2 = roi * spatial_scale
        bh, bw = (y2 - y1) / out_h, (x2 - x1) / out_w
        for p in range(out_h):
            for q in range(out_w):
                mask = ((rows >= np.floor(y1 + p * bh)) & (rows < np.ceil(y1 + (p + 1) * bh))
                        & (cols >= np.floor(x1 + q * bw)) & (cols < np.ceil(x1 + (q + 1) * bw))).ravel()
                if not mask.any():
                    continue
                cells = np.flatnonzero(mask)
                winners = cells[np.argmax(flat[:, cells], axis=1)]           # (C,) first max in row-major order
                one_hot = np.zeros((C, H * W))
                one_hot[np.arange(C), winners] = 1.0
                grad += one_hot * d_pooled[r, :, p, q][:, None]
    return grad.reshape(C, H, W)
'''

_SMOOTH_L1_HUBER = '''\
def smooth_l1(z):
    z = np.asarray(z)
    quadratic = np.minimum(np.abs(z), 1.0)                   # Huber's form with delta = 1
    linear = np.abs(z) - quadratic
    return 0.5 * quadratic ** 2 + linear, np.sign(z) * quadratic
'''

_ASSOCIATE_LEXSORT = '''\
def associate(track_boxes, det_boxes, iou_threshold):
    T, D = len(track_boxes), len(det_boxes)
    if T == 0 or D == 0:
        return np.empty((0, 2), dtype=np.int32)
    overlaps = iou(track_boxes, det_boxes)
    t_index, d_index = np.meshgrid(np.arange(T), np.arange(D), indexing="ij")
    order = np.lexsort((d_index.ravel(), t_index.ravel(), -overlaps.ravel()))
    free_t, free_d, pairs = np.ones(T, bool), np.ones(D, bool), []
    for k in order:
        t, d = t_index.ravel()[k], d_index.ravel()[k]
        if overlaps[t, d] >= iou_threshold and free_t[t] and free_d[d]:
            pairs.append((t, d))
            free_t[t] = free_d[d] = False
    return np.array(pairs, dtype=np.int32).reshape(-1, 2)
'''

_UPDATE_DICTS = '''\
def update_tracks(tracks, det_boxes, iou_threshold=0.3, max_missed=2):
    state = {int(i): (np.array(b, dtype=float), int(m)) for i, b, m in zip(tracks["ids"], tracks["boxes"], tracks["missed"])}
    order = [int(i) for i in tracks["ids"]]
    det_ids = np.empty(len(det_boxes), dtype=np.int64)
    paired_det = set()
    for t, d in associate(tracks["boxes"], det_boxes, iou_threshold):
        state[order[t]] = (np.array(det_boxes[d], dtype=float), -1)       # -1 + 1 = 0 below
        det_ids[d] = order[t]
        paired_det.add(int(d))
    survivors = [i for i in order if state[i][1] + 1 <= max_missed]
    next_id = tracks["next_id"]
    born = []
    for d in range(len(det_boxes)):
        if d not in paired_det:
            det_ids[d] = next_id
            born.append((next_id, np.array(det_boxes[d], dtype=float)))
            next_id += 1
    ids = survivors + [i for i, _ in born]
    boxes = [state[i][0] for i in survivors] + [b for _, b in born]
    missed = [state[i][1] + 1 for i in survivors] + [0] * len(born)
    return ({"ids": np.array(ids, dtype=np.int64), "boxes": np.array(boxes).reshape(-1, 4),
             "missed": np.array(missed, dtype=np.int64), "next_id": int(next_id)}, det_ids)
'''

_COUNT_PER_TRACK_DIFF = '''\
def count_crossings(ids, centres_x, line_x):
    ids, side = np.asarray(ids), np.sign(np.asarray(centres_x, dtype=float) - line_x + 0.0)
    side = np.where(side == 0, 1, side)                      # on the line counts as right
    rightwards = leftwards = 0
    for track in set(ids.tolist()):
        changes = np.diff(side[ids == track])
        nonzero = changes[changes != 0]
        if nonzero.size:
            rightwards += int(nonzero[0] > 0)
            leftwards += int(nonzero[0] < 0)
    return int(rightwards), int(leftwards)
'''

VARIANTS = {
    "broadcast": {"roi_max_pool_backward": _ROI_BACKWARD_UNRAVEL, "smooth_l1": _SMOOTH_L1_CLIP,
                  "associate": _ASSOCIATE_MASKED_ARGMAX, "update_tracks": _UPDATE_LISTS,
                  "count_crossings": _COUNT_STABLE_SORT, "lesson04_layers": _layers("windows_einsum")},
    "loops": {"roi_max_pool_backward": _ROI_BACKWARD_LOOPS, "smooth_l1": _SMOOTH_L1_LOOPS,
              "associate": _ASSOCIATE_SORTED_TRIPLES, "update_tracks": _UPDATE_MASKS,
              "count_crossings": _COUNT_LAST_SIDE, "lesson04_layers": _layers("taps_float64")},
    "outer_pop": {"roi_max_pool_backward": _ROI_BACKWARD_ONE_HOT, "smooth_l1": _SMOOTH_L1_HUBER,
                  "associate": _ASSOCIATE_LEXSORT, "update_tracks": _UPDATE_DICTS,
                  "count_crossings": _COUNT_PER_TRACK_DIFF, "lesson04_layers": _layers("im2col_matmul")},
}
