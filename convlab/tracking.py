"""Tracking the lesson-06 detections through a video, and scoring the tracks against the generator.

    track_video(boxes_per_frame, update_tracks, state)  -> (boxes_per_frame, ids_per_frame)
    observations(boxes_per_frame, ids_per_frame)        -> (ids, centres_x): count_crossings's input
    mot_metrics(video, boxes, ids, iou)                 -> CLEAR MOT counts and MOTA
    count_error(counted, true)                          -> |rightwards error| + |leftwards error|

The tracker and the counter are the student's (`update_tracks`, `count_crossings`, `iou` are passed
in). The scoring follows the CLEAR MOT metrics (Bernardin and Stiefelhagen, 2008): in every frame the
tracker's boxes are assigned one-to-one to the ground truth, maximising the total IoU among pairs
with IoU >= 0.5 (scipy's Hungarian algorithm, linear_sum_assignment); unassigned ground truth boxes
are misses, unassigned track boxes false positives (unless they cover a vehicle the generator lists
as ignored, being less than half inside the frame), and a ground-truth vehicle whose assigned track
ID differs from the one it last had is an ID switch. MOTA = 1 - (misses + false positives + ID
switches) / ground-truth boxes.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["track_video", "observations", "mot_metrics", "true_count", "tracked_count", "count_error"]


def track_video(boxes_per_frame: list, update_tracks, state: dict, **options) -> tuple[list, list]:
    """Run update_tracks(state, boxes, **options) frame by frame from `state`: each frame's boxes and
    the track ID the tracker gave each of them."""
    ids_per_frame = []
    for boxes in boxes_per_frame:
        state, det_ids = update_tracks(state, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), **options)
        ids_per_frame.append(np.asarray(det_ids, dtype=np.int64))
    return [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes_per_frame], ids_per_frame


def observations(boxes_per_frame: list, ids_per_frame: list) -> tuple[np.ndarray, np.ndarray]:
    """All (ID, box centre x) observations, frame by frame: the arrays count_crossings takes."""
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for i in ids_per_frame] or [np.zeros(0, np.int64)])
    boxes = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes_per_frame] or [np.zeros((0, 4))])
    return ids, (boxes[:, 0] + boxes[:, 2]) / 2


def true_count(video, count_crossings, line_x: float) -> tuple[int, int]:
    """(rightwards, leftwards) crossings of the generator's own vehicles (their true identities)."""
    return tuple(int(c) for c in count_crossings(*observations(video.boxes, video.track_ids), line_x))


def tracked_count(boxes_per_frame: list, ids_per_frame: list, count_crossings, line_x: float) -> tuple[int, int]:
    """(rightwards, leftwards) crossings of the tracker's tracks."""
    return tuple(int(c) for c in count_crossings(*observations(boxes_per_frame, ids_per_frame), line_x))


def count_error(counted: tuple, true: tuple) -> int:
    """Vehicles counted wrongly, both directions: |r - r_true| + |l - l_true|."""
    return int(sum(abs(int(c) - int(t)) for c, t in zip(counted, true)))


def mot_metrics(video, boxes_per_frame: list, ids_per_frame: list, iou, iou_threshold: float = 0.5) -> dict:
    """CLEAR MOT counts of tracks (boxes and IDs per frame) against video's ground truth; `iou` is
    the (N, 4) x (M, 4) -> (N, M) IoU function. Returns ground_truth, misses, false_positives,
    id_switches (ints) and mota (float)."""
    totals = dict(ground_truth=0, misses=0, false_positives=0, id_switches=0)
    last_track_of = {}                                        # ground-truth ID -> track ID it last had
    for t, (boxes, ids) in enumerate(zip(boxes_per_frame, ids_per_frame)):
        gt_boxes, gt_ids = video.boxes[t], video.track_ids[t]
        overlaps = iou(gt_boxes, boxes) if len(gt_boxes) and len(boxes) else np.zeros((len(gt_boxes), len(boxes)))
        rows, cols = linear_sum_assignment(np.where(overlaps >= iou_threshold, -overlaps, 1.0))
        good = overlaps[rows, cols] >= iou_threshold
        rows, cols = rows[good], cols[good]
        unmatched = np.setdiff1d(np.arange(len(boxes)), cols)
        if len(unmatched) and len(video.ignored[t]):         # a box on a half-visible vehicle is no error
            unmatched = unmatched[iou(boxes[unmatched], video.ignored[t]).max(axis=1) < iou_threshold]
        for g, h in zip(rows, cols):
            previous = last_track_of.get(int(gt_ids[g]))
            totals["id_switches"] += previous is not None and previous != int(ids[h])
            last_track_of[int(gt_ids[g])] = int(ids[h])
        totals["ground_truth"] += len(gt_boxes)
        totals["misses"] += len(gt_boxes) - len(rows)
        totals["false_positives"] += len(unmatched)
    errors = totals["misses"] + totals["false_positives"] + totals["id_switches"]
    return totals | {"mota": 1.0 - errors / max(totals["ground_truth"], 1)}
