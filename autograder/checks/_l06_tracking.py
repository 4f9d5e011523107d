"""Hidden checks of lesson 06's gradient and tracking functions (roi_max_pool_backward, smooth_l1,
associate, update_tracks, count_crossings); `l06_detection.parts` adds them to the lesson's parts.

Cases: RoI backward on random maps (float32 and float64), with regions that overlap, lie outside
the map or have zero size, on a map after a ReLU (whole bins of tied zeros) and on a map of small
whole numbers (ties inside bins); smooth L1 on values at, inside and beyond |z| = 1; association of
jittered boxes with a threshold, equal IoUs, stealing and empty sets; one tracker step from states
with tracks about to die, IDs already used by dead tracks (next_id beyond the live IDs) and no
detections; line crossing with interleaved, jittering, touching and returning tracks.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np

from autograder.grader.spec import Case, Part, Raised, Tol, compare

BugList = Iterator[tuple[str, Callable[[], Any]]]


# ---------------------------------------------------------------- RoI pooling backward
def _bins(rois, output_size, scale, H, W):
    """Per region and bin: (top, bottom, left, right), clipped to the map (empty when top >= bottom)."""
    out_h, out_w = output_size
    for r, (x1, y1, x2, y2) in enumerate(np.asarray(rois, float) * scale):
        for p in range(out_h):
            for q in range(out_w):
                top = int(max(np.floor(y1 + p * (y2 - y1) / out_h), 0))
                bottom = int(min(np.ceil(y1 + (p + 1) * (y2 - y1) / out_h), H))
                left = int(max(np.floor(x1 + q * (x2 - x1) / out_w), 0))
                right = int(min(np.ceil(x1 + (q + 1) * (x2 - x1) / out_w), W))
                yield r, p, q, top, bottom, left, right


def _roi_backward(d_pooled, fmap, rois, output_size, scale, route="argmax", accumulate=True, use_scale=True):
    """Loops over regions, bins and channels; `route` picks the cell(s) a bin's gradient goes to."""
    C, H, W = fmap.shape
    d_map = np.zeros((C, H, W))
    for r, p, q, top, bottom, left, right in _bins(rois, output_size, scale if use_scale else 1.0, H, W):
        if top >= bottom or left >= right:
            continue
        for ch in range(C):
            window = fmap[ch, top:bottom, left:right]
            g = d_pooled[r, ch, p, q]
            if route == "spread":
                d_map[ch, top:bottom, left:right] += g
                continue
            flat = {"argmax": lambda: int(np.argmax(window)), "first": lambda: 0,
                    "last_max": lambda: window.size - 1 - int(np.argmax(window.ravel()[::-1]))}[route]()
            i, j = top + flat // window.shape[1], left + flat % window.shape[1]
            d_map[ch, i, j] = d_map[ch, i, j] + g if accumulate else g
    return d_map


def _roi_backward_last_region_per_bin(d_pooled, fmap, rois, output_size, scale):
    """The bin loop vectorised over regions with a fancy-index `d_map[ch, rows, cols] += g`: within one
    bin (p, q) a cell that is the arg-max for several regions keeps the last region's gradient
    (numpy buffers the writes of repeated indices), while the bins still add up."""
    C, H, W = fmap.shape
    d_map = np.zeros((C, H, W))
    for p, q in np.ndindex(*output_size):
        writes = np.zeros((C, H, W))                    # one `+=` call: the last write of an index wins
        for r, p_r, q_r, top, bottom, left, right in _bins(rois, output_size, scale, H, W):
            if (p_r, q_r) != (p, q) or top >= bottom or left >= right:
                continue
            for ch in range(C):
                flat = int(np.argmax(fmap[ch, top:bottom, left:right]))
                writes[ch, top + flat // (right - left), left + flat % (right - left)] = d_pooled[r, ch, p, q]
        d_map += writes
    return d_map


def _roi_backward_bugs(d_pooled, fmap, rois, output_size, scale) -> BugList:
    args = (d_pooled, fmap, rois, output_size, scale)
    yield ("each bin's gradient goes to the first cell of the bin: route it to the cell holding the bin's "
           "maximum (np.argmax over the bin)", lambda: _roi_backward(*args, route="first"))
    yield ("a cell that wins several bins or regions keeps only one of their gradients: add them up "
           "(np.add.at; a fancy-index += keeps one of repeated indices)", lambda: _roi_backward(*args, accumulate=False))
    yield ("in one bin, a cell that is the arg-max for several regions keeps only the last region's gradient: "
           "a fancy-index d_map[ch, rows, cols] += g keeps one of repeated indices; add with np.add.at",
           lambda: _roi_backward_last_region_per_bin(*args))
    yield ("each bin's gradient is copied to every cell of the bin: only its arg-max cell receives it",
           lambda: _roi_backward(*args, route="spread"))
    yield ("of equal values in a bin the last one gets the gradient: the first in row-major order wins "
           "(np.argmax's rule)", lambda: _roi_backward(*args, route="last_max"))
    yield ("spatial_scale is ignored: the bins must be those of roi_max_pool",
           lambda: _roi_backward(*args, use_scale=False))


def _roi_backward_part(ref, rng, first_match) -> Part:
    cases = []
    configs = ((2, 6, 8, 1.0, (2, 2), np.float64, "normal"), (3, 7, 5, 0.5, (3, 3), np.float32, "normal"),
               (2, 9, 9, 0.25, (2, 4), np.float64, "relu"), (2, 6, 7, 0.5, (3, 2), np.float64, "integers"))
    for C, H, W, scale, out, dtype, kind in configs:
        fmap = rng.standard_normal((C, H, W))
        fmap = {"normal": fmap, "relu": np.maximum(fmap - 0.5, 0), "integers": rng.integers(0, 3, (C, H, W))}[kind]
        fmap = fmap.astype(dtype)
        extent = np.array([W, H]) / scale
        corner = rng.integers(-2, (extent - 1).astype(int), (6, 2))
        size = rng.integers(1, (extent // 1.5).astype(int) + 2, (6, 2))
        rois = np.concatenate([corner, corner + size], axis=1).astype(float)
        special = np.array([[0, 0, *extent], [*(extent + 3), *(extent + 6)], [2, 2, 2, 2], [1, 1, 2, 2]], float)
        rois = np.concatenate([rois, rois[:2], special])          # duplicates: the same cells win twice
        d_pooled = rng.standard_normal((len(rois), C, *out)).astype(dtype)
        args = (d_pooled, fmap, rois, out, scale)
        # each cell sums at most one gradient per region and bin: magnitude = the backward of |d_pooled|
        tol = Tol(ref.roi_max_pool_backward(np.abs(d_pooled), *args[1:]), len(rois) * out[0] * out[1])
        label = {"normal": "a random map", "relu": "a map after a ReLU (bins of tied zeros)",
                 "integers": "a map of small whole numbers (ties in the bins)"}[kind]
        cases.append(Case("roi_max_pool_backward", args, expected=ref.roi_max_pool_backward(*args), tol=tol,
                          label=f"{label}, {C}x{H}x{W} {np.dtype(dtype).name}, {len(rois)} regions (overlapping, "
                                f"outside, of zero size), output {out}, spatial_scale {scale}"))
    return Part("test_roi_max_pool_backward", cases,
                lambda case, actual: first_match(actual, _roi_backward_bugs(*case.args), case.tol))


# ---------------------------------------------------------------- smooth L1
def _smooth_l1(z, threshold=1.0, offset=0.5, half=0.5, grad_sign=True, grad_scale=1.0):
    small = np.abs(z) < threshold
    loss = np.where(small, half * z ** 2, np.abs(z) - offset)
    grad = np.where(small, grad_scale * z, np.sign(z) if grad_sign else 1.0)
    return loss, grad


def _smooth_l1_bugs(z) -> BugList:
    yield ("the linear part lacks the - 0.5: |z| - 0.5 is what meets 0.5 z**2 at |z| = 1",
           lambda: _smooth_l1(z, offset=0.0))
    yield ("the quadratic part lacks the factor 0.5 (and its gradient is then 2 z)",
           lambda: _smooth_l1(z, half=1.0, grad_scale=2.0))
    yield ("the quadratic part lacks the factor 0.5", lambda: _smooth_l1(z, half=1.0))
    for threshold in (0.5, 2.0):
        yield (f"the threshold is {threshold}: smooth L1 is quadratic where |z| < 1 and linear elsewhere",
               lambda threshold=threshold: _smooth_l1(z, threshold=threshold))
    yield ("the linear part's gradient is sign(z), not 1: it points towards the target",
           lambda: _smooth_l1(z, grad_sign=False))


def _smooth_l1_part(ref, rng, first_match) -> Part:
    inputs = [(np.array([-3., -1., -1. + 2 ** -20, -0.5, 0., 0.25, 1. - 2 ** -20, 1., 2.5]), "values at, just inside and beyond |z| = 1"),
              (rng.normal(0, 2, (5, 4)), "a (5, 4) array of random values"),
              (rng.normal(0, 1.5, (3, 2, 4)).astype(np.float32), "a (3, 2, 4) float32 array")]
    cases = [Case("smooth_l1", (z,), expected=tuple(ref.smooth_l1(z)), tol=(Tol(), Tol()), label=label) for z, label in inputs]
    return Part("test_smooth_l1", cases, lambda case, actual: first_match(actual, _smooth_l1_bugs(*case.args), case.tol))


# ---------------------------------------------------------------- association and tracking
def _associate(overlaps, threshold, order="iou", strict=False):
    """Greedy association on an IoU matrix; order 'iou' (correct), 'tracks' (each track in index order
    takes its best free detection) or 'detections' (likewise per detection)."""
    T, D = overlaps.shape
    track_free, det_free, pairs = np.ones(T, bool), np.ones(D, bool), []
    good = (lambda v: v > threshold) if strict else (lambda v: v >= threshold)
    if order == "iou":
        for flat in np.argsort(-overlaps, axis=None, kind="stable"):
            t, d = divmod(int(flat), D)
            if good(overlaps[t, d]) and track_free[t] and det_free[d]:
                pairs.append((t, d))
                track_free[t] = det_free[d] = False
    elif order == "tracks":
        for t in range(T):
            candidates = np.where(det_free, overlaps[t], -1.0)
            if D and good(candidates.max()):
                d = int(np.argmax(candidates))
                pairs.append((t, d))
                det_free[d] = False
    else:
        for d in range(D):
            candidates = np.where(track_free, overlaps[:, d], -1.0)
            if T and good(candidates.max()):
                t = int(np.argmax(candidates))
                pairs.append((t, d))
                track_free[t] = False
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _associate_bugs(overlaps, threshold) -> BugList:
    correct = _associate(overlaps, threshold)
    yield ("the pairs come in track order: take the pair of highest IoU first, then the best remaining one, and "
           "list the pairs in the order they are made",
           lambda: correct[np.argsort(correct[:, 0], kind="stable")])
    yield ("the tracks are visited in index order, each taking its best free detection: take the pair of "
           "highest IoU first", lambda: _associate(overlaps, threshold, "tracks"))
    yield ("the detections are visited in index order, each taking its best free track: take the pair of "
           "highest IoU first", lambda: _associate(overlaps, threshold, "detections"))
    yield ("IoU equal to iou_threshold does not pair: a pair needs IoU >= iou_threshold",
           lambda: _associate(overlaps, threshold, strict=True))


def _doubled_union_iou(a, b):
    """The IoU of an iou whose union is area_a + area_b (the intersection counted twice)."""
    w = np.maximum(0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    h = np.maximum(0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])      # noqa: E731
    total = area(a)[:, None] + area(b)[None, :]
    return np.divide(w * h, total, out=np.zeros(total.shape), where=total > 0)


_FIX_IOU = "your {} is right but your iou's union counts the intersection twice (area_a + area_b): fix iou"


def _exact_ints(actual: Any, case: Case, what: str) -> str | None:
    name = f"{case.func}(...)"
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, np.ndarray):
        return f"{name} returned {type(actual).__name__}: return a numpy int array"
    if actual.dtype.kind not in "iu":
        return f"{name} returned a {actual.dtype} array: {what} are integers (np.array(..., dtype=int))"
    if actual.shape != case.expected.shape:
        return f"{name} has shape {actual.shape}, expected {case.expected.shape} (gave {what} {actual.tolist()[:8]})"
    if not np.array_equal(actual, case.expected):   # hidden feedback never shows the correct answer
        first = int(np.flatnonzero((actual != case.expected).any(axis=tuple(range(1, actual.ndim))))[0])
        return f"{name} gave {what} {actual.tolist()[:8]}: not the correct ones from row {first} on"
    return None


def _jittered(rng, n, jitter):
    """n boxes on a 0.5 lattice and their copies moved by up to `jitter` pixels (a next frame), shuffled."""
    corner = np.round(rng.uniform(0, 80, (n, 2)) * 2) / 2
    boxes = np.concatenate([corner, corner + np.round(rng.uniform(4, 20, (n, 2)) * 2) / 2], axis=1)
    moved = boxes + np.round(rng.uniform(-jitter, jitter, (n, 1)) * 2) / 2 * np.array([1., 0., 1., 0.])
    return boxes, moved[rng.permutation(n)]


def _associate_part(ref, rng, first_match) -> Part:
    inputs = []
    for n, jitter, threshold in ((6, 3, 0.3), (9, 6, 0.3), (8, 4, 0.5)):
        tracks, dets = _jittered(rng, n, jitter)
        inputs.append((tracks, dets[: n - 1], threshold, f"{n} tracks, {n - 1} moved boxes, threshold {threshold}"))
    inputs.append((np.array([[0., 0., 10., 10.], [3., 0., 13., 10.]]), np.array([[-4., 0., 6., 10.], [2., 0., 12., 10.]]),
                   0.3, "a track that would steal the detection another track overlaps better"))
    inputs.append((np.array([[0., 0., 10., 10.], [10., 0., 20., 10.]]), np.array([[5., 0., 15., 10.], [0., 0., 10., 10.]]),
                   0.3, "equal IoUs"))
    inputs.append((np.array([[0., 0., 4., 1.], [9., 0., 13., 1.]]), np.array([[0., 0., 2., 1.], [9., 0., 11.5, 1.]]),
                   0.5, "IoU exactly equal to the threshold"))
    inputs.append((np.zeros((0, 4)), _jittered(rng, 3, 2)[0], 0.3, "no tracks"))
    inputs.append((_jittered(rng, 3, 2)[0], np.zeros((0, 4)), 0.3, "no detections"))
    cases = [Case("associate", (t, d, thr), expected=ref.associate(t, d, thr), label=label,
                  check=lambda actual, case: _exact_ints(actual, case, "pairs")) for t, d, thr, label in inputs]

    def diagnose(case: Case, actual: Any) -> str | None:
        tracks, dets, threshold = case.args
        if not (len(tracks) and len(dets)):
            return None
        if _exact_ints(actual, replace(case, expected=_associate(_doubled_union_iou(tracks, dets), threshold)), "") is None:
            return _FIX_IOU.format("association")
        return first_match(actual, _associate_bugs(ref.iou(tracks, dets), threshold))
    return Part("test_associate", cases, diagnose)


def _update(tracks, det_boxes, threshold, max_missed, overlaps, order="iou", reuse=None, die_at_max=False,
            keep_missed=False, drop_unpaired=False):
    """One tracker step with switchable bugs, from the IoU matrix of the tracks' boxes and det_boxes."""
    pairs = _associate(overlaps, threshold, order)
    boxes, missed = tracks["boxes"].astype(float).copy(), tracks["missed"] + 1
    det_ids = np.full(len(det_boxes), -1, np.int64)
    boxes[pairs[:, 0]] = det_boxes[pairs[:, 1]]
    missed[pairs[:, 0]] = tracks["missed"][pairs[:, 0]] if keep_missed else 0
    det_ids[pairs[:, 1]] = tracks["ids"][pairs[:, 0]]
    paired = np.zeros(len(missed), bool)
    paired[pairs[:, 0]] = True
    alive = paired if drop_unpaired else (missed < max_missed if die_at_max else missed <= max_missed)
    born = np.flatnonzero(det_ids < 0)
    first = {"max": int(tracks["ids"][alive].max(initial=-1)) + 1, "count": int(alive.sum()), None: tracks["next_id"]}[reuse]
    det_ids[born] = first + np.arange(len(born))
    new = {"ids": np.concatenate([tracks["ids"][alive], det_ids[born]]),
           "boxes": np.concatenate([boxes[alive], det_boxes[born]]),
           "missed": np.concatenate([missed[alive], np.zeros(len(born), np.int64)]),
           "next_id": first + len(born)}
    return new, det_ids


def _update_bugs(tracks, det_boxes, threshold, max_missed, overlaps) -> BugList:
    args = (tracks, det_boxes, threshold, max_missed, overlaps)
    yield ("a new track reuses a dead track's ID (the largest live ID + 1): IDs are never reused, births take "
           "next_id, next_id + 1, ...", lambda: _update(*args, reuse="max"))
    yield ("a new track's ID is the number of tracks: a dead track's ID is given again; births take next_id, "
           "next_id + 1, ...", lambda: _update(*args, reuse="count"))
    yield ("a track dies when missed reaches max_missed: it survives up to max_missed missed frames and is "
           "removed when missed > max_missed", lambda: _update(*args, die_at_max=True))
    yield ("an unpaired track is removed at once: it keeps its box and survives up to max_missed missed frames",
           lambda: _update(*args, drop_unpaired=True))
    yield ("a paired track keeps its count of missed frames: it returns to 0", lambda: _update(*args, keep_missed=True))
    yield ("the association visits the tracks in index order (is your associate greedy by IoU?)",
           lambda: _update(*args, order="tracks"))


def _state(rng, n, next_gap, max_missed):
    ids = np.sort(rng.choice(np.arange(2 * n + next_gap), n, replace=False)).astype(np.int64)
    boxes, moved = _jittered(rng, n, 3)
    missed = rng.integers(0, max_missed + 1, n).astype(np.int64)
    return {"ids": ids, "boxes": boxes, "missed": missed, "next_id": int(ids.max(initial=-1)) + 1 + next_gap}, moved


def _int_ids(det_ids: Any) -> np.ndarray | None:
    """det_ids as an int array when it is a sequence of ints (an int array, a list or tuple of ints, empty
    ones included), else None: the docstring asks for (D,) ints, any sequence of them is a correct answer."""
    try:
        ids = np.asarray(det_ids)
    except (TypeError, ValueError):
        return None
    if ids.size == 0 and ids.dtype.kind in "iuf":             # np.asarray([]) is float64
        return ids.astype(np.int64)
    return ids if ids.dtype.kind in "iu" else None


def _tracks_check(actual: Any, case: Case) -> str | None:
    if isinstance(actual, Raised):
        return actual.describe(case.func)
    if not isinstance(actual, (tuple, list)) or len(actual) != 2 or not isinstance(actual[0], dict):
        return f"{case.func}(...) should return (new_tracks, det_ids), new_tracks a dict; got {type(actual).__name__}"
    new, det_ids = actual
    expected, expected_ids = case.expected
    for key in ("ids", "missed", "next_id"):
        if key not in new:
            return f"new_tracks has no key {key!r}: it is a dict like tracks (ids, boxes, missed, next_id)"
        if not np.array_equal(np.asarray(new[key]), np.asarray(expected[key])) or np.shape(new[key]) != np.shape(expected[key]):
            return f"new_tracks[{key!r}] is {np.asarray(new[key]).tolist()}, which is not correct"
    if "boxes" not in new:
        return "new_tracks has no key 'boxes'"
    if problem := compare(new["boxes"], expected["boxes"], "new_tracks['boxes']"):
        return problem
    ids = _int_ids(det_ids)
    if ids is None or ids.shape != expected_ids.shape or not np.array_equal(ids, expected_ids):
        shown = ids.tolist() if ids is not None else repr(det_ids)[:80]
        return (f"det_ids is {shown}, which is not correct (ints, one ID per detection, {expected_ids.size} of them)")
    return None


def _same_tracks(actual: Any, candidate: Any) -> bool:
    if not isinstance(actual, (tuple, list)) or len(actual) != 2 or not isinstance(actual[0], dict):
        return False
    return _tracks_check(actual, Case("update_tracks", expected=candidate)) is None


def _update_part(ref, rng) -> Part:
    inputs = []
    for n, births, threshold, max_missed in ((5, 2, 0.3, 2), (7, 3, 0.3, 1), (6, 0, 0.5, 3)):
        state, moved = _state(rng, n, next_gap=int(rng.integers(1, 4)), max_missed=max_missed)
        keep = rng.permutation(n)[: n - 2]                                   # two tracks are missed this frame
        dets = np.concatenate([moved[keep], _jittered(rng, births, 0)[0] + 100.0])
        inputs.append((state, dets, threshold, max_missed,
                       f"{n} tracks (some about to die, next_id past IDs of dead tracks), {len(dets)} detections "
                       f"({births} new), threshold {threshold}, max_missed {max_missed}"))
    steal = {"ids": np.array([4, 9], np.int64), "boxes": np.array([[0., 0., 10., 10.], [3., 0., 13., 10.]]),
             "missed": np.array([1, 0], np.int64), "next_id": 12}
    inputs.append((steal, np.array([[-4., 0., 6., 10.], [2., 0., 12., 10.], [60., 0., 70., 10.]]), 0.3, 2,
                   "a track that would steal the detection another track overlaps better"))
    state, _ = _state(rng, 4, 2, 2)
    inputs.append((state, np.zeros((0, 4)), 0.3, 2, "no detections: every track misses a frame"))
    empty = {"ids": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)), "missed": np.zeros(0, np.int64), "next_id": 5}
    inputs.append((empty, _jittered(rng, 3, 0)[0], 0.3, 2, "no tracks yet, next_id 5: three births"))
    cases = [Case("update_tracks", (s, d), {"iou_threshold": thr, "max_missed": mm},
                  expected=tuple(ref.update_tracks(s, d, iou_threshold=thr, max_missed=mm)), check=_tracks_check,
                  label=label) for s, d, thr, mm, label in inputs]

    def diagnose(case: Case, actual: Any) -> str | None:
        tracks, dets = case.args
        overlaps = ref.iou(tracks["boxes"], dets) if len(tracks["boxes"]) and len(dets) else np.zeros((len(tracks["ids"]), len(dets)))
        options = (case.kwargs["iou_threshold"], case.kwargs["max_missed"])
        if len(tracks["boxes"]) and len(dets) and _same_tracks(
                actual, _update(tracks, dets, *options, _doubled_union_iou(tracks["boxes"], dets))):
            return _FIX_IOU.format("tracker")
        for name, compute in _update_bugs(tracks, dets, *options, overlaps):
            if _same_tracks(actual, compute()):
                return name
        return None
    return Part("test_update_tracks", cases, diagnose)


# ---------------------------------------------------------------- counting
def _count(ids, xs, line_x, grouped=True, once=True, touching_right=True, net=False):
    right = xs >= line_x if touching_right else xs > line_x
    if grouped:
        steps = {t: [(a, b) for a, b in zip(right[ids == t][:-1], right[ids == t][1:]) if a != b] for t in np.unique(ids)}
        if net:
            steps = {t: [(right[ids == t][0], right[ids == t][-1])] if right[ids == t][0] != right[ids == t][-1] else []
                     for t in np.unique(ids)}
    else:                               # consecutive entries of the array, whatever their IDs
        steps = {}
        for k in range(1, len(right)):
            if right[k] != right[k - 1]:
                steps.setdefault(ids[k], []).append((right[k - 1], right[k]))
    rightwards = leftwards = 0
    for track_steps in steps.values():
        for _, now_right in track_steps[:1] if once else track_steps:
            rightwards += bool(now_right)
            leftwards += not now_right
    return rightwards, leftwards


def _count_bugs(ids, xs, line_x) -> BugList:
    yield ("each observation is compared with the next entry of the array: compare it with the next observation "
           "of the same track (same ID)", lambda: _count(ids, xs, line_x, grouped=False))
    yield ("a track is counted at every crossing: count it once, in the direction of its first crossing",
           lambda: _count(ids, xs, line_x, once=False))
    yield ("centre_x == line_x counts as left of the line: an observation is right of it when centre_x >= line_x",
           lambda: _count(ids, xs, line_x, touching_right=False))
    yield ("only a track's first and last observations are compared: a track that crosses and comes back "
           "crossed too", lambda: _count(ids, xs, line_x, net=True))
    yield ("rightwards and leftwards are swapped", lambda: _count(ids, xs, line_x)[::-1])


def _crossing_inputs(rng, tracks, frames, line_x):
    """`tracks` vehicles moving at random speeds (some jittering on the line, some returning), observed
    frame by frame (interleaved), each visible on a random interval of frames."""
    ids, xs = [], []
    start = rng.uniform(line_x - 40, line_x + 40, tracks)
    speed = rng.choice([-4, -2, 2, 4], tracks) * rng.uniform(0.5, 1.5, tracks)
    first, last = rng.integers(0, frames // 2, tracks), rng.integers(frames // 2, frames, tracks)
    track_ids = rng.permutation(100)[:tracks]
    for t in range(frames):
        for k in range(tracks):
            if first[k] <= t <= last[k]:
                x = start[k] + speed[k] * (t - first[k])
                if k % 4 == 3:                                         # jitters around the line
                    x = line_x + rng.choice([-1.5, -0.5, 0.5, 1.5])
                if k % 5 == 4 and t > (first[k] + last[k]) / 2:        # turns back
                    x = start[k] + speed[k] * (last[k] + first[k] - 2 * t) / 2 + speed[k] * (last[k] - first[k]) / 2
                ids.append(track_ids[k])
                xs.append(np.round(x) + 0.5)                            # never exactly on the line
    return np.array(ids, dtype=np.int64), np.array(xs, dtype=np.float64)


def _count_part(ref, rng, first_match) -> Part:
    inputs = [(*_crossing_inputs(rng, n, frames, 60.0), 60.0, f"{n} tracks over {frames} frames, line x = 60")
              for n, frames in ((6, 20), (10, 30), (15, 25))]
    inputs.append((np.array([3, 3, 8, 8, 8]), np.array([59., 60., 61., 60., 59.]), 60.0,
                   "centres exactly on the line"))
    inputs.append((np.zeros(0, np.int64), np.zeros(0), 60.0, "no observations"))

    def exact_pair(actual: Any, case: Case) -> str | None:
        if isinstance(actual, Raised):
            return actual.describe(case.func)
        if not isinstance(actual, (tuple, list)) or len(actual) != 2:
            return f"count_crossings(...) should return a tuple (rightwards, leftwards), got {type(actual).__name__}"
        if any(isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) for c in actual):
            return f"count_crossings(...) returned {actual!r}: the counts are whole numbers (ints)"
        got = tuple(int(c) for c in actual)
        return None if got == case.expected else \
            f"count_crossings(...) is {got} (rightwards, leftwards), which is not the correct count"
    cases = [Case("count_crossings", (ids, xs, line), expected=tuple(int(c) for c in ref.count_crossings(ids, xs, line)),
                  check=exact_pair, label=label) for ids, xs, line, label in inputs]

    def diagnose(case: Case, actual: Any) -> str | None:
        if not isinstance(actual, (tuple, list)) or len(actual) != 2:
            return None
        got = tuple(int(c) for c in actual)
        if got == case.expected:        # right counts of the wrong type (floats): no bug to name
            return None
        for name, compute in _count_bugs(*case.args):
            if tuple(int(c) for c in compute()) == got:
                return name
        return None
    return Part("test_count_crossings", cases, diagnose)


def parts(ref, rng: np.random.Generator, first_match) -> list[Part]:
    """The parts in the notebook's order after roi_max_pool; `first_match` is l06_detection's."""
    return [_roi_backward_part(ref, rng, first_match), _smooth_l1_part(ref, rng, first_match)], \
        [_associate_part(ref, rng, first_match), _update_part(ref, rng), _count_part(ref, rng, first_match)]
