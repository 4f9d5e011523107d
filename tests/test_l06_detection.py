"""Lesson 06 (object detection): the reference against independent oracles (loops, brute-force NMS
over all subsets, AP by enumerating score thresholds, exact-fraction RoI bins, PyTorch's adaptive max
pooling when installed), the road video, the detector's helpers, the widgets' logic and the hidden
checks' coverage (the typical bugs are BUGS in autograder/checks/_l06_bugs.py, judged by
tests/test_samples_inprocess.py)."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from autograder.checks import check_module
from autograder.grader.reference import load_reference
from autograder.grader.reference import test_points as graded_points
from autograder.grader.spec import call_in_process, judge_part
from convlab import fixed_detector
from convlab.rcnn_figures import pr_figure
from convlab.video import CLASS_NAMES, draw_vehicle, make_road_video
from convlab.widgets import boxes as wd
from tests.visible import visible_test_failure

LESSON = "06_detection"


@pytest.fixture(scope="module")
def ref():
    return load_reference(LESSON)


def random_boxes(rng, n, extent=30.0, degenerate=0.25):
    """Boxes on a 0.5 lattice (edges often touch), some of zero width, height or both."""
    corner = np.round(rng.uniform(0, extent, (n, 2)) * 2) / 2
    size = np.round(rng.uniform(0, extent / 2, (n, 2)) * 2) / 2
    size[rng.random((n, 2)) < degenerate] = 0.0
    return np.concatenate([corner, corner + size], axis=1)


# ---- oracles ---------------------------------------------------------------------------------------
def loop_iou(a, b):
    """IoU of two boxes from the definition, in Python floats."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union == 0 else inter / union


def brute_force_nms(boxes, scores, threshold):
    """The kept set is the unique subset K (checked over all subsets) in which no box has IoU >
    threshold with a higher-priority box of K, and every box outside K has one; priority = higher
    score, then lower index. Returned in priority order."""
    n = len(boxes)
    priority = sorted(range(n), key=lambda i: (-scores[i], i))
    rank = {i: r for r, i in enumerate(priority)}
    dup = [[loop_iou(boxes[i], boxes[j]) > threshold for j in range(n)] for i in range(n)]
    solutions = []
    for mask in range(1 << n):
        kept = [i for i in range(n) if mask >> i & 1]
        ok = all(not any(dup[k][i] and rank[k] < rank[i] for k in kept) for i in kept)
        ok = ok and all(any(dup[k][i] and rank[k] < rank[i] for k in kept) for i in range(n) if i not in kept)
        if ok:
            solutions.append(sorted(kept, key=rank.get))
    assert len(solutions) == 1, "the greedy NMS result must be the unique consistent subset"
    return solutions[0]


def threshold_ap(scores, hits, num_gt):
    """AP from its definition: for each recall level k/G the best precision of any score threshold
    reaching that recall, averaged over the G levels (scores must be distinct)."""
    points = []
    for tau in scores:
        chosen = scores >= tau
        tp = int(np.sum(hits & chosen))
        points.append((tp / chosen.sum(), tp / num_gt))
    return sum(max([p for p, r in points if r >= k / num_gt - 1e-12], default=0.0)
               for k in range(1, num_gt + 1)) / num_gt


def exact_roi_pool(fmap, rois, output_size, scale):
    """RoI max pooling with loops and exact fractions for the bin edges."""
    C, H, W = fmap.shape
    out_h, out_w = output_size
    pooled = np.zeros((len(rois), C, out_h, out_w))
    for r, roi in enumerate(rois):
        x1, y1, x2, y2 = (Fraction(float(v)) * Fraction(scale) for v in roi)
        for p, q in itertools.product(range(out_h), range(out_w)):
            top = max(math.floor(y1 + p * (y2 - y1) / out_h), 0)
            bottom = min(math.ceil(y1 + (p + 1) * (y2 - y1) / out_h), H)
            left = max(math.floor(x1 + q * (x2 - x1) / out_w), 0)
            right = min(math.ceil(x1 + (q + 1) * (x2 - x1) / out_w), W)
            for c in range(C):
                cells = [fmap[c, row, col] for row in range(top, bottom) for col in range(left, right)]
                pooled[r, c, p, q] = max(cells) if cells else 0.0
    return pooled


# ---- the reference ---------------------------------------------------------------------------------
def test_iou_matches_the_loop_oracle_on_degenerate_boxes(ref):
    rng = np.random.default_rng(0)
    for n, m in ((7, 5), (12, 12), (1, 9)):
        a, b = random_boxes(rng, n), random_boxes(rng, m)
        b[: min(n, m) // 2] = a[: min(n, m) // 2]                  # some identical pairs
        expected = np.array([[loop_iou(x, y) for y in b] for x in a])
        got = ref.iou(a, b)
        assert got.shape == (n, m) and np.all(np.isfinite(got))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert ref.iou(np.zeros((0, 4)), random_boxes(rng, 3)).shape == (0, 3)
    edge = ref.iou(np.array([[0., 0., 2., 2.]]), np.array([[2., 0., 4., 2.], [0., 0., 2., 2.], [3., 3., 4., 4.]]))
    np.testing.assert_array_equal(edge, [[0.0, 1.0, 0.0]])


def test_nms_equals_the_brute_force_definition(ref):
    rng = np.random.default_rng(1)
    for trial in range(12):
        n = int(rng.integers(1, 10))
        centres = rng.uniform(0, 20, (n, 2))
        boxes = np.concatenate([centres, centres + rng.uniform(2, 10, (n, 2))], axis=1)
        scores = np.round(rng.random(n) * 3) / 3                   # many ties
        threshold = float(rng.choice([0.0, 0.3, 0.5, 0.7]))
        keep = ref.non_max_suppression(boxes, scores, threshold)
        assert keep.dtype.kind == "i"
        assert keep.tolist() == brute_force_nms(boxes, scores, threshold), f"trial {trial}"


def test_nms_threshold_is_strict_and_ties_keep_index_order(ref):
    halves = np.array([[0., 0., 4., 1.], [0., 0., 2., 1.]])        # IoU exactly 0.5
    assert ref.non_max_suppression(halves, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert ref.non_max_suppression(halves, np.array([0.8, 0.9]), 0.49).tolist() == [1]
    same = np.tile([[0., 0., 5., 5.]], (40, 1))                    # 40 identical boxes, equal scores
    assert ref.non_max_suppression(same, np.full(40, 0.5), 0.5).tolist() == [0]
    assert ref.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def test_anchors_match_explicit_loops(ref):
    for shape, stride, scales, ratios in (((2, 3), 8, [8., 16.], [0.5, 1., 2.]), ((3, 1), 4, [5.], [0.3, 3.]),
                                          ((1, 1), 16, [16., 32., 64.], [1.])):
        expected = []
        for i, j, s, r in itertools.product(range(shape[0]), range(shape[1]), scales, ratios):
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            assert math.isclose(w * h, s * s) and math.isclose(h / w, r)
            expected.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        np.testing.assert_allclose(ref.generate_anchors(shape, stride, scales, ratios), expected, rtol=1e-12)


def test_encode_decode_match_loops_and_round_trip(ref):
    rng = np.random.default_rng(2)
    corner = rng.uniform(0, 50, (20, 2))
    anchors = np.concatenate([corner, corner + rng.uniform(1, 30, (20, 2))], axis=1)
    gt = np.concatenate([corner + rng.uniform(-5, 5, (20, 2)), corner + rng.uniform(6, 40, (20, 2))], axis=1)
    expected = []
    for (ax1, ay1, ax2, ay2), (gx1, gy1, gx2, gy2) in zip(anchors, gt):
        aw, ah, gw, gh = ax2 - ax1, ay2 - ay1, gx2 - gx1, gy2 - gy1
        expected.append([((gx1 + gx2) / 2 - (ax1 + ax2) / 2) / aw, ((gy1 + gy2) / 2 - (ay1 + ay2) / 2) / ah,
                         math.log(gw / aw), math.log(gh / ah)])
    deltas = ref.encode_boxes(anchors, gt)
    np.testing.assert_allclose(deltas, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.decode_boxes(anchors, deltas), gt, rtol=1e-10, atol=1e-10)
    random_deltas = rng.normal(0, 0.5, (20, 4))
    np.testing.assert_allclose(ref.encode_boxes(anchors, ref.decode_boxes(anchors, random_deltas)), random_deltas,
                               rtol=1e-9, atol=1e-10)


def test_roi_max_pool_matches_exact_fraction_bins(ref):
    rng = np.random.default_rng(3)
    for trial in range(25):
        C, H, W = int(rng.integers(1, 3)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
        scale = float(rng.choice([1.0, 0.5, 0.25]))
        out = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        fmap = rng.standard_normal((C, H, W))
        corner = rng.integers(-3, int(max(H, W) / scale), (6, 2))
        rois = np.concatenate([corner, corner + rng.integers(0, int(6 / scale) + 1, (6, 2))], axis=1).astype(float)
        np.testing.assert_array_equal(ref.roi_max_pool(fmap, rois, out, scale), exact_roi_pool(fmap, rois, out, scale),
                                      err_msg=f"trial {trial}")
    fmap32 = rng.standard_normal((2, 4, 4)).astype(np.float32)
    assert ref.roi_max_pool(fmap32, np.array([[0., 0., 4., 4.]]), (2, 2), 1.0).dtype == np.float32


def test_roi_max_pool_matches_pytorch_adaptive_max_pool_on_aligned_regions(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    fmap = rng.standard_normal((3, 12, 10))
    for _ in range(10):
        x1, y1 = int(rng.integers(0, 8)), int(rng.integers(0, 10))
        x2, y2 = int(rng.integers(x1 + 1, 11)), int(rng.integers(y1 + 1, 13))
        out = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        crop = torch.from_numpy(fmap[:, y1:y2, x1:x2].copy())[None]
        expected = torch.nn.functional.adaptive_max_pool2d(crop, out).numpy()
        got = ref.roi_max_pool(fmap, np.array([[x1 * 4., y1 * 4., x2 * 4., y2 * 4.]]), out, 0.25)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_matching_and_average_precision_match_their_definitions(ref):
    rng = np.random.default_rng(5)
    for _ in range(10):
        gt = random_boxes(rng, 4, degenerate=0.0)
        det = np.concatenate([gt[rng.integers(0, 4, 6)] + rng.normal(0, 1.0, (6, 4)), random_boxes(rng, 3, degenerate=0.0)])
        scores = rng.random(len(det))
        claimed, expected = set(), []
        for d in sorted(range(len(det)), key=lambda k: -scores[k]):
            overlaps = [loop_iou(det[d], g) for g in gt]
            g = int(np.argmax(overlaps))
            expected.append((d, overlaps[g] >= 0.5 and g not in claimed))
            if expected[-1][1]:
                claimed.add(g)
        hits = ref.match_detections(det, scores, gt)
        assert hits.dtype == bool and hits.tolist() == [h for _, h in sorted(expected)]
        num_gt = int(hits.sum()) + int(rng.integers(0, 3)) or 1
        assert math.isclose(ref.average_precision(scores, hits, num_gt), threshold_ap(scores, hits, num_gt), abs_tol=1e-12)
        precision, recall = ref.precision_recall(scores, hits, num_gt)
        order = np.argsort(-scores)
        for k in range(len(scores)):
            tp = int(hits[order[:k + 1]].sum())
            assert math.isclose(precision[k], tp / (k + 1)) and math.isclose(recall[k], tp / num_gt)
    assert ref.average_precision(np.zeros(0), np.zeros(0, bool), 3) == 0.0
    assert ref.average_precision(np.array([0.3, 0.2]), np.array([False, False]), 2) == 0.0
    assert ref.average_precision(np.array([0.3, 0.2]), np.array([True, True]), 2) == 1.0


# ---- the road video --------------------------------------------------------------------------------
def test_video_is_deterministic_and_well_formed():
    a, b = make_road_video(30, seed=7), make_road_video(30, seed=7)
    assert a.frames.shape == (30, 96, 192, 3) and a.frames.dtype == np.float32
    assert 0.0 <= a.frames.min() and a.frames.max() <= 1.0
    np.testing.assert_array_equal(a.frames, b.frames)
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert not np.array_equal(a.frames, make_road_video(30, seed=8).frames)
    for boxes, labels in zip(a.boxes, a.labels):
        assert boxes.shape == (len(labels), 4) and set(labels.tolist()) <= {0, 1, 2}
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


def test_each_box_is_the_tight_extent_of_its_vehicle_and_nothing_else_is_drawn():
    video = make_road_video(60, seed=3, noise=0.0)
    H, W = video.frames.shape[1:3]
    for t in range(0, 60, 3):
        boxes = {tuple(b) for b in video.boxes[t]} | {tuple(b) for b in video.ignored[t]}
        changed = np.any(video.frames[t] != video.background, axis=-1)
        covered = np.zeros((H, W), bool)
        for vehicle in video.vehicles[t]:
            canvas = np.full((H, W, 3), np.nan, dtype=np.float32)
            draw_vehicle(canvas, vehicle)
            rows, cols = np.nonzero(~np.isnan(canvas[..., 0]))
            if not len(rows):
                continue
            box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            assert tuple(vehicle.box(H, W)) == box and box in boxes
            covered[box[1]:box[3], box[0]:box[2]] = True
        assert not np.any(changed & ~covered), "pixels changed outside every vehicle's box"


def test_the_hard_video_is_deterministic_and_hard_where_fixed_colour_features_look():
    """Same traffic rules, same shapes; grey vehicles near the asphalt's colour, shadows outside the
    boxes, light that changes over time, a footbridge over the road; the easy video is unchanged by
    the option."""
    from convlab import video as road
    a, b = make_road_video(40, seed=5, hard=True), make_road_video(40, seed=5, hard=True)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.frames.shape == (40, 96, 192, 3) and 0.0 <= a.frames.min() and a.frames.max() <= 1.0
    colours = np.array([v.colour for vehicles in a.vehicles for v in vehicles])
    saturation = colours.max(axis=1) - colours.min(axis=1)
    assert 0.3 < np.mean(saturation < 0.1) < 0.8, "about half the vehicles should be grey"
    easy = make_road_video(40, seed=5)
    assert not np.array_equal(a.frames, easy.frames)
    np.testing.assert_array_equal(easy.frames, make_road_video(40, seed=5, hard=False).frames)
    road_rows = slice(road._road_top(96) + 2, road._road_top(96) + 78)
    brightness = a.frames[:, road_rows, :40].mean(axis=(1, 2, 3))
    assert brightness.max() - brightness.min() > 0.1, "the light should change over time"
    bridge = a.frames[:, :, road.BRIDGE_COLUMNS]
    assert np.all(np.abs(bridge - bridge.mean(axis=0)) < 0.4), "the footbridge hides what drives under it"
    noiseless = make_road_video(5, seed=5, hard=True, noise=0.0)
    t = 0
    inside = np.zeros((96, 192), bool)
    for box in np.concatenate([noiseless.boxes[t], noiseless.ignored[t]]).astype(int):
        inside[box[1]:box[3], box[0]:box[2]] = True
    inside[:, road.BRIDGE_COLUMNS] = True
    ratio = noiseless.frames[t].mean(-1) / np.maximum(noiseless.background.mean(-1), 1e-6)
    assert np.any((ratio < 0.8 * np.median(ratio)) & ~inside), "shadows darken the road outside the boxes"


def test_traffic_has_every_class_overlaps_and_half_visible_rule():
    video = make_road_video(150, seed=1)
    labels = np.concatenate(video.labels)
    assert set(labels.tolist()) == {0, 1, 2} and len(CLASS_NAMES) == 3
    overlaps = sum(int((load_reference(LESSON).iou(b, b) > 0).sum() - len(b)) for b in video.boxes)
    assert overlaps > 0, "vehicles should sometimes overlap"
    for t in range(0, 150, 10):
        by_id = {v.track_id: v for v in video.vehicles[t]}
        for box, track in zip(video.boxes[t], video.track_ids[t]):
            assert box[2] - box[0] >= 0.5 * by_id[track].w


# ---- detector helpers ------------------------------------------------------------------------------
def test_integral_image_means_match_direct_means():
    rng = np.random.default_rng(6)
    channels = rng.random((3, 9, 11))
    summed = fixed_detector.integral_image(channels)
    regions = np.array([[0, 0, 11, 9], [2, 3, 5, 4], [4, 4, 4, 8], [10, 8, 11, 9]])
    got = fixed_detector.region_means(summed, regions)
    for (x1, y1, x2, y2), row in zip(regions, got):
        expected = channels[:, y1:y2, x1:x2].mean(axis=(1, 2)) if x2 > x1 and y2 > y1 else np.zeros(3)
        np.testing.assert_allclose(row, expected, atol=1e-12)
    fmap = fixed_detector.feature_map(rng.random((8, 12, 3)), stride=4)
    assert fmap.shape == (5, 2, 3)


def test_a_small_detector_trained_on_the_reference_finds_vehicles(ref):
    ops = {name: getattr(ref, name) for name in ("iou", "non_max_suppression", "encode_boxes", "decode_boxes",
                                                 "match_detections", "average_precision")}
    train, test = make_road_video(40, seed=0, frame_step=4), make_road_video(10, seed=1)
    anchors = ref.generate_anchors((24, 48), 4, (8, 16, 24), (0.35, 0.5, 1.0))
    det = fixed_detector.train_detector(train, anchors, 9, ops, steps=40)
    detections = [fixed_detector.detect(det, frame, ops) for frame in test.frames]
    mean_ap, per_class = fixed_detector.mean_average_precision(fixed_detector.per_class_results(detections, test, ops), ops)
    assert len(per_class) == 3 and mean_ap > 0.5, f"mAP {mean_ap:.3f}"
    boxes = np.concatenate([d[0] for d in detections])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2] >= boxes[:, 0])


def test_each_average_precision_keeps_its_own_class_when_a_middle_class_has_no_ground_truth(ref):
    """Truck (the middle class) has no ground truth: it is left out of the mean, and bike's AP stays
    bike's. Car: its one box found, AP 1. Bike: one of two boxes found, AP 1/2. mAP 3/4."""
    ops = {name: getattr(ref, name) for name in ("iou", "match_detections", "average_precision")}
    none = np.zeros((0, 4))
    video = SimpleNamespace(class_names=CLASS_NAMES, ignored=[none, none],
                            boxes=[np.array([[0.0, 0, 20, 10], [40, 0, 52, 6]]), np.array([[60.0, 20, 72, 26]])],
                            labels=[np.array([0, 2]), np.array([2])])
    detections = [(np.array([[0.0, 0, 20, 10], [40, 0, 52, 6], [100, 50, 140, 65]]), np.array([0.9, 0.8, 0.7]),
                   np.array([0, 2, 1])),
                  (none, np.zeros(0), np.zeros(0, dtype=int))]
    results = fixed_detector.per_class_results(detections, video, ops)
    assert list(results) == list(CLASS_NAMES) and [num_gt for _, _, num_gt in results.values()] == [1, 0, 2]
    mean_ap, per_class = fixed_detector.mean_average_precision(results, ops)
    assert per_class == {"car": 1.0, "bike": 0.5} and mean_ap == 0.75
    fig = pr_figure({name: (*ref.precision_recall(*results[name]), ap) for name, ap in per_class.items()})
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    plt.close(fig)
    assert colours == [fixed_detector.CLASS_COLOURS[0], fixed_detector.CLASS_COLOURS[2]], "bike drawn in truck's colour"


# ---- widgets ---------------------------------------------------------------------------------------
def _stub(*args):
    raise NotImplementedError


def test_iou_readout_uses_the_students_function_or_says_it_does_not(ref):
    rng = np.random.default_rng(7)
    for a, b in zip(random_boxes(rng, 20), random_boxes(rng, 20)):
        assert math.isclose(wd.two_box_iou(a, b), loop_iou(a, b))
    value, note = wd.iou_readout((0, 0, 2, 2), (1, 1, 3, 3), ref.iou)
    assert math.isclose(value, 1 / 7) and note == "computed by your iou"
    value, note = wd.iou_readout((0, 0, 2, 2), (1, 1, 3, 3), _stub)
    assert math.isclose(value, 1 / 7) and "widget's own" in note and "not implemented" in note
    _, note = wd.iou_readout((0, 0, 2, 2), (1, 1, 3, 3), lambda a, b: np.full((1, 1), 0.125))
    assert "check your iou" in note


def test_nms_state_shows_kept_boxes_or_overlapping_pairs(ref):
    boxes = np.array([[0., 0., 10., 10.], [1., 0., 10., 10.], [30., 0., 40., 10.]])
    scores = np.array([0.9, 0.8, 0.7])
    state = wd.nms_state(boxes, scores, 0.5, ref.non_max_suppression, ref.iou)
    assert state["kept"] == [0, 2] and state["suppressed"] == [1]
    assert wd.nms_state(boxes, scores, 0.95, ref.non_max_suppression, ref.iou)["kept"] == [0, 1, 2]
    fallback = wd.nms_state(boxes, scores, 0.5, _stub, _stub)
    assert fallback["kept"] is None and fallback["pairs"] == [(0, 1)] and "not implemented" in fallback["note"]
    assert wd.nms_state(boxes, scores, 0.95, _stub, ref.iou)["pairs"] == []


def test_anchor_state_with_and_without_generate_anchors(ref):
    gt = np.array([[40., 40., 64., 52.]])
    state = wd.anchor_state((96, 192), 4, 17, 0.5, (11, 12), ref.generate_anchors, ref.iou, gt)
    np.testing.assert_allclose(state["anchor"], ref.generate_anchors((24, 48), 4, [17], [0.5])[11 * 48 + 12])
    assert len(state["positives"]) > 0 and np.all(ref.iou(state["positives"], gt) >= 0.5)
    fallback = wd.anchor_state((96, 192), 4, 17, 0.5, (11, 12), _stub, ref.iou, gt)
    np.testing.assert_allclose(fallback["anchor"], state["anchor"])
    assert fallback["positives"] is None and "not counted" in fallback["note"] and "not implemented" in fallback["note"]
    no_iou = wd.anchor_state((96, 192), 4, 17, 0.5, (11, 12), ref.generate_anchors, _stub, gt)
    assert no_iou["positives"] is None and "positives not counted: your _stub is not implemented" in no_iou["note"]


def test_widgets_carry_the_dom_class_and_redraw_when_a_slider_moves(ref):
    video = make_road_video(5, seed=2)
    detections = [(b + 1.0, np.linspace(0.9, 0.3, len(b)), l) for b, l in zip(video.boxes, video.labels)]
    image, caption = wd.scrubber_frame(video, 1, detections, 0.5)
    assert image.shape == (96 * 3, 192 * 3, 3) and image.dtype == np.uint8 and "frame 1" in caption
    built = [wd.iou_explorer(ref.iou), wd.nms_explorer(video.boxes[0], np.linspace(1, 0.5, len(video.boxes[0])),
                                                       video.frames[0], _stub, ref.iou),
             wd.anchor_explorer(video.frames[0], video.boxes[0], ref.generate_anchors, ref.iou),
             wd.video_scrubber(video, detections)]
    for widget in built:
        assert "convlab-widget" in widget._dom_classes
        slider = next(w for w in _descendants(widget) if hasattr(w, "value") and hasattr(w, "max")
                      and type(w).__name__ in ("IntSlider", "FloatSlider", "FloatLogSlider"))
        shown = [w for w in _descendants(widget) if type(w).__name__ in ("Image", "HTML")]
        before = [w.value for w in shown]
        slider.value = slider.max if slider.value != slider.max else slider.min
        assert [w.value for w in shown] != before, f"{type(widget).__name__}: moving {slider.description} changed nothing"


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


# ---- hidden checks -----------------------------------------------------------------------------------
def test_hidden_checks_cover_every_graded_cell_and_pass_the_reference(ref):
    parts = check_module(LESSON).parts(ref, np.random.default_rng(0))
    assert sorted(p.grade_id for p in parts) == sorted(graded_points(LESSON))
    assert sum(graded_points(LESSON).values()) == 36
    for part in parts:
        assert judge_part(part, [call_in_process(ref, case) for case in part.cases]) is None, part.grade_id


def _part(ref, grade_id):
    return next(p for p in check_module(LESSON).parts(ref, np.random.default_rng(0)) if p.grade_id == grade_id)


def test_the_tracker_check_takes_any_pair_and_any_sequence_of_int_ids_but_not_float_ids(ref):
    for case in _part(ref, "test_update_tracks").cases:
        new_tracks, det_ids = case.expected
        as_ints = [int(i) for i in det_ids]
        assert case.judge([new_tracks, as_ints]) is None and case.judge((new_tracks, tuple(as_ints))) is None
        if len(det_ids):
            assert "det_ids is" in case.judge((new_tracks, det_ids.astype(float)))
            assert "det_ids is" in case.judge((new_tracks, det_ids.astype(bool)))


def test_right_counts_as_floats_fail_without_naming_a_bug(ref):
    part = _part(ref, "test_count_crossings")
    case = part.cases[0]
    message = judge_part(part, [tuple(float(c) for c in case.expected)] + [c.expected for c in part.cases[1:]])
    assert "whole numbers (ints)" in message and "Likely bug" not in message


# ---- gradients, tracking and counting ---------------------------------------------------------------
def test_roi_max_pool_backward_equals_the_numerical_gradient_of_the_reference_forward(ref):
    from convlab.gradcheck import numerical_gradient_array, relative_error
    rng = np.random.default_rng(4)
    fmap = rng.standard_normal((3, 7, 9))
    rois = np.array([[0., 0., 18., 14.], [3., 2., 11., 9.], [3., 2., 11., 9.], [5., 5., 6., 6.], [30., 30., 40., 40.]])
    d_pooled = rng.standard_normal((len(rois), 3, 3, 2))
    numeric = numerical_gradient_array(lambda f: ref.roi_max_pool(f, rois, (3, 2), 0.5), fmap.copy(), d_pooled)
    assert relative_error(ref.roi_max_pool_backward(d_pooled, fmap, rois, (3, 2), 0.5), numeric) < 1e-8


def test_roi_max_pool_backward_matches_pytorch_autograd_on_aligned_regions(ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    fmap = rng.standard_normal((2, 8, 8))
    d_pooled = rng.standard_normal((1, 2, 4, 4))
    mine = ref.roi_max_pool_backward(d_pooled, fmap, np.array([[0., 0., 8., 8.]]), (4, 4), 1.0)
    x = torch.tensor(fmap[None], requires_grad=True)
    torch.nn.functional.adaptive_max_pool2d(x, (4, 4)).backward(torch.tensor(d_pooled))
    np.testing.assert_allclose(mine, x.grad.numpy()[0], rtol=0, atol=1e-12)


def test_smooth_l1_gradient_is_the_numerical_derivative_and_the_pieces_meet(ref):
    z = np.linspace(-3, 3, 601) + 1e-3                     # no point exactly on the kink at +-1
    loss, grad = ref.smooth_l1(z)
    numeric = (ref.smooth_l1(z + 1e-6)[0] - ref.smooth_l1(z - 1e-6)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-6)
    np.testing.assert_allclose(loss, np.where(np.abs(z) < 1, z ** 2 / 2, np.abs(z) - 0.5))
    assert ref.smooth_l1(np.array([1.0]))[0][0] == 0.5 == ref.smooth_l1(np.array([1 - 1e-12]))[0][0].round(9)


def _torch_rpn_loss(torch, x, deltas, labels, targets, weight):
    """PyTorch's BCE-with-logits and smooth L1 (beta 1) on the positives, both sums over S, and autograd."""
    x, deltas = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, deltas))
    y, positive = torch.tensor(labels, dtype=torch.float64), torch.tensor(labels == 1)
    F = torch.nn.functional
    loss = (F.binary_cross_entropy_with_logits(x, y, reduction="sum") + weight * F.smooth_l1_loss(
        deltas[positive], torch.tensor(targets)[positive], reduction="sum", beta=1.0)) / len(labels)
    loss.backward()
    return loss.item(), x.grad.numpy(), deltas.grad.numpy()


def _torch_head_loss(torch, z, box_deltas, labels, targets, weight):
    """PyTorch's cross-entropy and smooth L1 on the true class's deltas of foreground regions, over R."""
    z, box_deltas = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (z, box_deltas))
    u = torch.tensor(labels)
    fg = torch.nonzero(u > 0)[:, 0]
    F = torch.nn.functional
    loss = (F.cross_entropy(z, u, reduction="sum") + weight * F.smooth_l1_loss(
        box_deltas[fg, u[fg] - 1], torch.tensor(targets)[fg], reduction="sum", beta=1.0)) / len(labels)
    loss.backward()
    return loss.item(), z.grad.numpy(), box_deltas.grad.numpy()


@pytest.mark.parametrize("scale", [2.0, 30.0, 1000.0])
def test_the_multi_task_losses_match_pytorch_and_stay_finite(ref, scale):
    """rpn_loss and head_loss against PyTorch's losses and autograd, also for logits of +-1000 (where
    PyTorch's losses are stable too) and with negatives' and background regions' targets non-zero."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(int(scale))
    x, deltas, targets = rng.normal(0, scale, 20), rng.normal(0, 1.5, (20, 4)), rng.normal(0, 0.7, (20, 4))
    labels = rng.permutation(np.r_[np.ones(7, int), np.zeros(13, int)])
    for got, want in zip(ref.rpn_loss(x, deltas, labels, targets, 1.5), _torch_rpn_loss(torch, x, deltas, labels, targets, 1.5)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    z, box, targets = rng.normal(0, scale, (15, 4)), rng.normal(0, 1.5, (15, 3, 4)), rng.normal(0, 0.7, (15, 4))
    labels = rng.integers(0, 4, 15)
    labels[:3] = [0, 3, 1]
    for got, want in zip(ref.head_loss(z, box, labels, targets, 1.5), _torch_head_loss(torch, z, box, labels, targets, 1.5)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_the_loss_checks_name_non_finite_results_and_take_a_correct_float32_answer(ref):
    """Hidden checks of the losses, on crafted results (what no whole notebook expresses): NaN on the
    large-logit case is named; the reference's results rounded to float32 pass the float32 cases."""
    parts = {p.grade_id: p for p in check_module(LESSON).parts(ref, np.random.default_rng(1))}
    for grade_id, func in (("test_rpn_loss", ref.rpn_loss), ("test_head_loss", ref.head_loss)):
        part = parts[grade_id]
        large = next(case for case in part.cases if "1000" in case.label)
        loss, d_logits, d_deltas = func(*large.args)
        message = judge_part(part, [call_in_process(ref, case) if case is not large else (np.nan, d_logits, d_deltas)
                                    for case in part.cases])
        assert message is not None and "inf or NaN for large logits" in message, message
        float32_cases = [case for case in part.cases if "float32" in case.label]
        rounded = [tuple(np.asarray(v).astype(np.float32) if np.ndim(v) else np.float32(v) for v in func(*case.args))
                   for case in float32_cases]
        assert float32_cases and all(case.judge(result) is None for case, result in zip(float32_cases, rounded))


def brute_force_associate(tracks, dets, threshold):
    """Greedy by IoU from its definition: scan every remaining (track, detection) pair with Python loops
    for the best one (ties: lower track, then lower detection), until none reaches the threshold."""
    pairs, free_t, free_d = [], set(range(len(tracks))), set(range(len(dets)))
    while True:
        best = None
        for t in sorted(free_t):
            for d in sorted(free_d):
                value = loop_iou(tracks[t], dets[d])
                if value >= threshold and (best is None or value > best[0]):
                    best = (value, t, d)
        if best is None:
            return pairs
        pairs.append((best[1], best[2]))
        free_t.discard(best[1])
        free_d.discard(best[2])


def test_associate_equals_the_brute_force_greedy_definition(ref):
    rng = np.random.default_rng(6)
    for _ in range(30):
        tracks, dets = random_boxes(rng, rng.integers(0, 8), degenerate=0.1), random_boxes(rng, rng.integers(0, 8), degenerate=0.1)
        threshold = float(rng.choice([0.1, 0.3, 0.5]))
        assert [tuple(p) for p in ref.associate(tracks, dets, threshold).tolist()] == brute_force_associate(tracks, dets, threshold)


def test_tracker_never_reuses_an_id_and_follows_every_vehicle_of_the_video(ref):
    """On the video's ground-truth boxes with 20% of them dropped at random, every ID the tracker
    gives after a track died is new, and a vehicle keeps its ID through single dropouts."""
    video = make_road_video(60, seed=2)
    rng = np.random.default_rng(0)
    state = ref.no_tracks()
    dead, seen = set(), set()
    for boxes in video.boxes:
        kept = boxes[rng.random(len(boxes)) > 0.2]
        before = set(state["ids"].tolist())
        state, det_ids = ref.update_tracks(state, kept, iou_threshold=0.3, max_missed=2)
        dead |= before - set(state["ids"].tolist())
        assert not dead & set(state["ids"].tolist())
        assert len(set(det_ids.tolist())) == len(det_ids)
        seen |= set(det_ids.tolist())
    assert state["next_id"] == max(seen) + 1 and len(seen) == state["next_id"]


def brute_force_crossings(ids, xs, line_x):
    rightwards = leftwards = 0
    for track in set(ids.tolist()):
        sides = [x >= line_x for i, x in zip(ids.tolist(), xs.tolist()) if i == track]
        for a, b in zip(sides, sides[1:]):
            if a != b:
                rightwards, leftwards = rightwards + b, leftwards + (not b)
                break
    return rightwards, leftwards


def test_count_crossings_equals_the_brute_force_count(ref):
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(0, 30))
        ids, xs = rng.integers(0, 6, n), np.round(rng.uniform(40, 60, n))
        assert tuple(int(c) for c in ref.count_crossings(ids, xs, 50.0)) == brute_force_crossings(ids, xs, 50.0)


def test_mot_metrics_count_switches_misses_and_false_positives(ref):
    from convlab import tracking
    video = make_road_video(30, seed=3)
    perfect = tracking.mot_metrics(video, video.boxes, video.track_ids, ref.iou)
    assert perfect == dict(ground_truth=sum(map(len, video.boxes)), misses=0, false_positives=0, id_switches=0, mota=1.0)
    # relabel one vehicle from frame 10 on: exactly one ID switch; drop frame 5's boxes: misses
    target = int(video.track_ids[10][0])
    ids = [np.where((i == target) & (t >= 10), 999, i) for t, i in enumerate(video.track_ids)]
    boxes = [b if t != 5 else b[:0] for t, b in enumerate(video.boxes)]
    ids[5] = ids[5][:0]
    far = [np.concatenate([b, [[0., 0., 3., 3.]]]) for b in boxes]        # a false box on the verge every frame
    far_ids = [np.concatenate([i, [500]]) for i in ids]
    scores = tracking.mot_metrics(video, far, far_ids, ref.iou)
    assert scores["id_switches"] == 1 and scores["misses"] == len(video.boxes[5]) and scores["false_positives"] == 30
    assert scores["mota"] == pytest.approx(1 - (len(video.boxes[5]) + 30 + 1) / scores["ground_truth"])
    assert tracking.true_count(video, ref.count_crossings, 96.0) == brute_force_crossings(
        *tracking.observations(video.boxes, video.track_ids), 96.0)


def test_iou_explorer_shows_its_picture_at_display_size_beside_its_controls(ref):
    widget = wd.iou_explorer(ref.iou)
    image, controls = widget.children
    assert type(image).__name__ == "Image" and image.layout.width == image.layout.height == "320px"
    width, height = plt.imread(__import__("io").BytesIO(image.value), format="png").shape[1::-1]
    assert (width, height) == (320, 320), "the PNG must have the displayed size: no stretching, no blur"
    assert type(widget).__name__ == "HBox" and any(type(w).__name__ == "IntSlider" for w in controls.children)
    assert any("IoU =" in getattr(w, "value", "") for w in controls.children if type(w).__name__ == "HTML")


def test_tracked_frame_draws_ids_trails_line_and_the_students_running_count(ref):
    from convlab import tracking
    from convlab.widgets import tracking as wt
    video = make_road_video(40, seed=1)
    tracked = tracking.track_video(video.boxes, ref.update_tracks, ref.no_tracks())
    image, caption = wt.tracked_frame(video, 39, tracked, ref.count_crossings, 96.0)
    assert image.shape == (96 * 3, 192 * 3, 3)
    expected = ref.count_crossings(*tracking.observations(*tracked), 96.0)
    assert f"{expected[0]} rightwards, {expected[1]} leftwards" in caption
    assert all(str(int(i)) in caption for i in tracked[1][39])
    line = image[:, 96 * 3 - 1:96 * 3 + 2]
    on_line = np.any(np.all(line == (wt.LINE_COLOUR * 255).astype(np.uint8), axis=-1), axis=1)
    assert on_line.mean() > 0.8, "the counting line runs down the frame (vehicles' boxes may cover parts)"
    colour = (np.array(wt.track_colour(tracked[1][39][0])) * 255).astype(np.uint8)
    assert np.any(np.all(image == colour, axis=-1)), "a track's box is drawn in its ID's colour"
    _, broken = wt.tracked_frame(video, 5, tracked, _stub, 96.0)
    assert "no count" in broken and "not implemented" in broken


def test_feature_panels_and_explorer_show_fixed_and_learned_channels():
    from convlab.widgets import tracking as wt
    video = make_road_video(3, seed=1)
    fixed = fixed_detector.feature_map(video.frames[0])
    learned = np.random.default_rng(0).random((16, 24, 48))
    panels = wt.feature_panels(video.frames[0], fixed, learned, 1, 5)
    assert panels.shape == (3 * 96 * 2, 192 * 2, 3) and panels.dtype == np.uint8
    assert not np.array_equal(panels[96 * 2:2 * 96 * 2], panels[2 * 96 * 2:])
    widget = wt.feature_map_explorer(video.frames, fixed_detector.feature_map, lambda f: learned, fixed_detector.FEATURE_NAMES)
    assert "convlab-widget" in widget._dom_classes
    image = next(w for w in _descendants(widget) if type(w).__name__ == "Image")
    slider = next(w for w in _descendants(widget) if getattr(w, "description", "") == "learned")
    before = image.value
    slider.value = 7
    assert image.value != before
    without = wt.feature_map_explorer(video.frames, fixed_detector.feature_map, None, fixed_detector.FEATURE_NAMES)
    assert "no learned detector yet" in next(w.value for w in _descendants(without) if type(w).__name__ == "HTML")


def test_the_learned_detector_trains_on_the_students_layers_and_its_loss_falls(ref):
    """A few steps of approximate joint training on the reference's lesson-04 layers: every layer's
    parameters move, both losses fall, and detection returns well-formed boxes."""
    from convlab import cnn_detector
    lesson04 = load_reference("04_train_cnn")
    layers = dict(Conv2D=lesson04.Conv2D, ReLU=lesson04.ReLU, MaxPool2D=lesson04.MaxPool2D,
                  sgd_momentum_step=lesson04.sgd_momentum_step)
    ops = {name: getattr(ref, name) for name in cnn_detector.STUDENT_OPS}
    video = make_road_video(6, seed=0, frame_step=4)
    det = cnn_detector.build_detector(layers, ref.generate_anchors((24, 48), 4, (8, 16, 24), (0.35, 0.5, 1.0)), 9, 3)
    before = [{k: v.copy() for k, v in layer.params.items()} for layer in det.layers()]
    from convlab.widgets import training
    lines: list[str] = []
    monitor = training.TrainingMonitor(3, 6, widgets=False, printer=lines.append, total_steps=17)   # 6 + 6 + 5 steps
    cnn_detector.train_cnn_detector(video, det, layers, ops, steps=17, monitor=monitor)
    assert monitor.steps == 17 and [line.split()[:2] for line in lines] == [["epoch", "1/3"], ["epoch", "2/3"],
                                                                           ["epoch", "3/3"]]
    assert np.allclose(monitor.history["rpn_loss"], [np.mean(det.losses["rpn"][a:b]) for a, b in ((0, 6), (6, 12), (12, 17))])
    assert all(not np.allclose(layer.params["w"], old["w"]) for layer, old in zip(det.layers(), before) if "w" in old)
    for name in ("rpn", "head"):
        assert np.mean(det.losses[name][-6:]) < np.mean(det.losses[name][:6]), name
    assert len(training.history_figure(monitor.history).axes) == 1   # losses only: no empty accuracy panel
    boxes, scores, labels = cnn_detector.detect_cnn(det, video.frames[0], ops)
    assert boxes.shape == (len(scores), 4) and np.all(np.diff(scores) <= 0) and set(labels.tolist()) <= {0, 1, 2}


# ---- the visible tests state what the hidden checks enforce ------------------------------------------
_ROI_FLOAT64 = '''def roi_max_pool(feature_map, rois, output_size, spatial_scale):
    C, H, W = feature_map.shape
    out = np.zeros((len(rois), C) + tuple(output_size))          # float64 whatever the map's dtype
    for r, (x1, y1, x2, y2) in enumerate(np.asarray(rois, float) * spatial_scale):
        bin_h, bin_w = (y2 - y1) / output_size[0], (x2 - x1) / output_size[1]
        for p in range(output_size[0]):
            for q in range(output_size[1]):
                top, bottom = max(int(np.floor(y1 + p * bin_h)), 0), min(int(np.ceil(y1 + (p + 1) * bin_h)), H)
                left, right = max(int(np.floor(x1 + q * bin_w)), 0), min(int(np.ceil(x1 + (q + 1) * bin_w)), W)
                if top < bottom and left < right:
                    out[r, :, p, q] = feature_map[:, top:bottom, left:right].max(axis=(1, 2))
    return out
'''
_IOU_LOOP = '''def iou(boxes_a, boxes_b):
    def one(a, b):
        inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * max(0., min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0
    return np.array([[one(a, b) for b in boxes_b] for a in boxes_a])
'''
_TRACKER_IN_PLACE = '''def update_tracks(tracks, det_boxes, iou_threshold=0.3, max_missed=2):
    pairs = associate(tracks["boxes"], det_boxes, iou_threshold)
    boxes, missed = tracks["boxes"], tracks["missed"]
    missed += 1                                   # writes into the caller's state
    boxes[pairs[:, 0]] = det_boxes[pairs[:, 1]]
    missed[pairs[:, 0]] = 0
    det_ids = np.full(len(det_boxes), -1, dtype=np.int64)
    det_ids[pairs[:, 1]] = tracks["ids"][pairs[:, 0]]
    alive, born = missed <= max_missed, np.flatnonzero(det_ids < 0)
    det_ids[born] = tracks["next_id"] + np.arange(len(born))
    return {"ids": np.concatenate([tracks["ids"][alive], det_ids[born]]),
            "boxes": np.concatenate([boxes[alive], det_boxes[born]]),
            "missed": np.concatenate([missed[alive], np.zeros(len(born), dtype=np.int64)]),
            "next_id": tracks["next_id"] + len(born)}, det_ids
'''
_COUNT_FLOATS = '''def count_crossings(ids, centres_x, line_x):
    ids, right = np.asarray(ids), np.asarray(centres_x) >= line_x
    rightwards = leftwards = 0.0
    for track in np.unique(ids):
        sides = right[ids == track]
        changes = np.flatnonzero(sides[1:] != sides[:-1])
        if len(changes):
            rightwards, leftwards = (rightwards + 1, leftwards) if sides[changes[0] + 1] else (rightwards, leftwards + 1)
    return rightwards, leftwards
'''
_RPN_EPSILON = '''def rpn_loss(objectness, deltas, labels, targets, box_weight=1.0):
    x, y = np.asarray(objectness, float), (np.asarray(labels) == 1).astype(float)
    with np.errstate(over="ignore"):
        p = 1 / (1 + np.exp(-x))
    logistic = -(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
    positive = y == 1
    box_loss, box_grad = smooth_l1(np.asarray(deltas)[positive] - np.asarray(targets)[positive])
    d_deltas = np.zeros(np.shape(deltas))
    d_deltas[positive] = box_weight * np.asarray(box_grad) / len(x)
    return float((logistic.sum() + box_weight * np.sum(box_loss)) / len(x)), (p - y) / len(x), d_deltas
'''


@pytest.mark.parametrize("test_id,stub,source,words", [
    ("test_roi_max_pool", "roi_max_pool", _ROI_FLOAT64, "dtype=feature_map.dtype"),
    ("test_iou", "iou", _IOU_LOOP, "(N, M) even when N = 0"),
    ("test_update_tracks", "update_tracks", _TRACKER_IN_PLACE, "tracks.copy() is not enough"),
    ("test_count_crossings", "count_crossings", _COUNT_FLOATS, "return two ints"),
    ("test_rpn_loss", "rpn_loss", _RPN_EPSILON, "np.log(p + 1e-12)"),
], ids=["roi_float64", "iou_loop", "tracker_in_place", "count_floats", "rpn_epsilon"])
def test_each_hidden_rule_fails_its_visible_test_with_a_hint(test_id, stub, source, words):
    assert visible_test_failure(LESSON, test_id, {}) is None
    message = visible_test_failure(LESSON, test_id, {stub: source})
    assert message is not None and words in message, message
