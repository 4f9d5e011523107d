"""Lesson 06's box widgets beyond the lesson: the explorer page's own IoU, NMS and anchors (learners
write no code) against the lesson's references and the loop oracle, and what the views say and draw."""
from __future__ import annotations

import jupytext
import numpy as np
import pytest

from autograder.grader.reference import load_reference
from convlab.widgets import boxes as wd
from explorer.serve import SOURCES
from tests.test_l06_detection import brute_force_nms, loop_iou, random_boxes


@pytest.fixture(scope="module")
def ref():
    return load_reference("06_detection")


@pytest.fixture(scope="module")
def page():
    """The names the explorer's detection page defines in its first code cell."""
    cells = [c for c in jupytext.read(SOURCES / "06_detection.py").cells if c.cell_type == "code"]
    names: dict = {}
    exec(compile(cells[0].source.replace("iou_explorer()", ""), "06_detection", "exec"), names)
    return names


def test_the_explorers_iou_nms_and_anchors_are_the_lessons(ref, page):
    rng = np.random.default_rng(4)
    a, b = random_boxes(rng, 25), random_boxes(rng, 30)
    np.testing.assert_allclose(page["pairwise_iou"](a, b), [[loop_iou(x, y) for y in b] for x in a], rtol=1e-12)
    assert page["pairwise_iou"](a[:0], b).shape == (0, 30)
    for trial in range(10):
        n = int(rng.integers(1, 10))
        centres = rng.uniform(0, 20, (n, 2))
        boxes = np.concatenate([centres, centres + rng.uniform(2, 10, (n, 2))], axis=1)
        scores, threshold = rng.random(n), float(rng.choice([0.0, 0.3, 0.5, 0.7]))
        assert page["greedy_nms"](boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)
    for scale, ratio in ((16.0, 0.5), (7.0, 3.0)):
        np.testing.assert_allclose(page["one_shape_anchors"]((5, 7), 4, [scale], [ratio]),
                                   ref.generate_anchors((5, 7), 4, [scale], [ratio]))


def test_the_explorers_anchor_view_counts_the_positives_and_names_the_explorer(ref, page):
    video = page["video"]
    shown = wd.anchor_state(video.frames[0].shape, 4, 16, 0.5, (12, 24), page["one_shape_anchors"],
                            page["pairwise_iou"], video.boxes[0], whose=page["EXPLORERS"])
    lesson = wd.anchor_state(video.frames[0].shape, 4, 16, 0.5, (12, 24), ref.generate_anchors, ref.iou,
                             video.boxes[0])
    assert len(shown["positives"]) == len(lesson["positives"]) > 0
    assert shown["note"] == "anchors from the explorer's generate_anchors, IoU from the explorer's iou"
    assert lesson["note"] == "anchors from your generate_anchors, IoU from your iou"


def test_nms_view_lists_at_most_twelve_pairs_and_says_how_many_more():
    boxes = np.array([[0., 0., 10., 10.]] * 7)         # 21 identical pairs
    view = wd.nms_explorer(boxes, np.linspace(1, 0.4, 7), np.zeros((20, 20, 3)), None, None)
    readout = view.children[-1].value
    assert readout.startswith("21 pairs overlap more than 0.50: (0, 1), ") and readout.count("(") == 12
    assert "and 9 more" in readout


def test_iou_explorer_keeps_both_boxes_on_the_canvas():
    widget = wd.iou_explorer()
    sliders = [w for w in widget.children[1].children if type(w).__name__ == "IntSlider"]
    for slider in sliders:
        slider.value = slider.max
    assert max(s.max for s in sliders[:2]) + max(s.max for s in sliders[2:4]) <= wd.IOU_CANVAS
    assert "areas 1600 and 1600" in widget.children[1].children[-1].value and "IoU = 1.000" in \
        widget.children[1].children[-1].value
