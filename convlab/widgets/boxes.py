"""Detection widgets for lesson 06: IoU explorer, NMS threshold, anchor overlay, video scrubber.

Pure logic first (tested without a browser), then thin ipywidgets views:

    two_box_iou(box_a, box_b)                         -> float: the widget's own formula for one pair
    iou_readout(box_a, box_b, iou_fn)                 -> (IoU, note saying whose function computed it)
    nms_state(boxes, scores, threshold, nms_fn, iou_fn) -> dict: kept/suppressed (student's NMS) or the
                                                         pairs above the threshold (before NMS exists)
    anchor_state(frame_shape, stride, scale, ratio, position, generate_fn, iou_fn, gt_boxes) -> dict
    scrubber_frame(video, t, detections, min_score)   -> (uint8 image, HTML caption)
    iou_explorer / nms_explorer / anchor_explorer / video_scrubber -> widgets (root DOM class `convlab-widget`)

Each view takes the student's functions and falls back to its own small helper (one pair of boxes,
one anchor) while a stub still raises NotImplementedError, and says which one it shows.
"""
from __future__ import annotations

import html
import io
import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
from PIL import Image

from convlab.fixed_detector import CLASS_COLOURS, paint_boxes
from convlab.widgets._student import call_student

__all__ = ["two_box_iou", "iou_readout", "nms_state", "anchor_state", "scrubber_frame", "png",
           "iou_explorer", "nms_explorer", "anchor_explorer", "video_scrubber"]

KEPT, SUPPRESSED, PAIR, NEUTRAL = (0.1, 0.9, 0.2), (1.0, 0.25, 0.2), (1.0, 0.6, 0.0), (0.85, 0.85, 0.85)


def two_box_iou(box_a, box_b) -> float:
    """IoU of two (x1, y1, x2, y2) boxes, written out for one pair; 0 when both areas are 0."""
    ax1, ay1, ax2, ay2 = map(float, box_a)
    bx1, by1, bx2, by2 = map(float, box_b)
    overlap = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - overlap
    return overlap / union if union > 0 else 0.0


def iou_readout(box_a, box_b, iou_fn: Callable | None) -> tuple[float, str]:
    """The IoU the explorer shows, and a note saying whether the student's iou computed it."""
    result, problem = call_student(iou_fn, np.array([box_a], float), np.array([box_b], float))
    if problem is None and np.shape(result) == (1, 1) and np.isfinite(result).all():
        own = two_box_iou(box_a, box_b)
        agree = "" if math.isclose(float(result[0, 0]), own, abs_tol=1e-9) else \
            f" (the widget's own formula says {own:.3f}: check your iou)"
        return float(result[0, 0]), "computed by your iou" + agree
    if problem is None:
        problem = f"your iou returned {np.shape(result)} for one box against one box, expected (1, 1) finite"
    return two_box_iou(box_a, box_b), f"computed by the widget's own two-box formula ({problem})"


def nms_state(boxes: np.ndarray, scores: np.ndarray, threshold: float, nms_fn: Callable | None,
              iou_fn: Callable | None = None, whose: str = "your") -> dict:
    """What the NMS view draws. With an NMS function: kept and suppressed indices. Before the student's
    works: the pairs whose IoU exceeds the threshold (the duplicates NMS will have to resolve). `whose`
    names the functions' author in the note ("your" in a lesson; the explorer passes its own)."""
    kept, problem = call_student(nms_fn, boxes, scores, threshold)
    if problem is None:
        kept = [int(k) for k in np.ravel(kept)]
        suppressed = [i for i in range(len(boxes)) if i not in kept]
        return dict(kept=kept, suppressed=suppressed, pairs=[], note=f"kept and suppressed by {whose} non_max_suppression")
    overlaps, iou_problem = call_student(iou_fn, boxes, boxes)
    if iou_problem is not None or np.shape(overlaps) != (len(boxes), len(boxes)):
        overlaps = np.array([[two_box_iou(a, b) for b in boxes] for a in boxes])
    pairs = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if overlaps[i, j] > threshold]
    return dict(kept=None, suppressed=None, pairs=pairs,
                note=f"{problem}: showing the pairs with IoU > threshold, the duplicates NMS must resolve")


def anchor_state(frame_shape: tuple, stride: int, scale: float, ratio: float, position: tuple,
                 generate_fn: Callable | None, iou_fn: Callable | None = None, gt_boxes=None,
                 whose: str = "your") -> dict:
    """Anchors of one shape (scale, ratio = h/w) over the grid of a frame (H, W), the one at grid
    `position` (i, j), and those with IoU >= 0.5 with a ground-truth box (the RPN's positives; counted
    only when iou works too: `positives` is None otherwise). `whose` as in nms_state."""
    H_f, W_f = frame_shape[0] // stride, frame_shape[1] // stride
    i, j = min(position[0], H_f - 1), min(position[1], W_f - 1)
    anchors, problem = call_student(generate_fn, (H_f, W_f), stride, [scale], [ratio])
    if problem is None and np.shape(anchors) == (H_f * W_f, 4):
        selected, note = anchors[i * W_f + j], f"anchors from {whose} generate_anchors"
        if gt_boxes is None or not len(gt_boxes):
            return dict(anchor=selected, positives=np.zeros((0, 4)), note=note)
        overlaps, iou_problem = call_student(iou_fn, anchors, np.asarray(gt_boxes, float))
        if iou_problem is None and np.shape(overlaps) != (len(anchors), len(gt_boxes)):
            iou_problem = f"your iou returned shape {np.shape(overlaps)}, expected {(len(anchors), len(gt_boxes))}"
        if iou_problem is not None:
            return dict(anchor=selected, positives=None, note=f"{note}; positives not counted: {iou_problem}")
        return dict(anchor=selected, positives=anchors[overlaps.max(axis=1) >= 0.5], note=f"{note}, IoU from {whose} iou")
    if problem is None:
        problem = f"your generate_anchors returned shape {np.shape(anchors)}, expected {(H_f * W_f, 4)}"
    cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
    w, h = scale / math.sqrt(ratio), scale * math.sqrt(ratio)          # w * h = scale^2, h / w = ratio
    return dict(anchor=np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), positives=None,
                note=f"one anchor from the widget's own formula, positives not counted ({problem})")


def scrubber_frame(video, t: int, detections: list | None = None, min_score: float = 0.5,
                   scale: int = 3) -> tuple[np.ndarray, str]:
    """Frame t with ground truth (white) and detections scoring >= min_score (class colours)."""
    boxes = [video.boxes[t]]
    colours = [np.ones((len(video.boxes[t]), 3))]
    widths = [np.ones(len(video.boxes[t]), dtype=int)]
    lines = [f"frame {t}: {len(video.boxes[t])} vehicles in the ground truth (white)"]
    if detections is not None:
        det_boxes, det_scores, det_labels = detections[t]
        shown = det_scores >= min_score
        boxes.append(det_boxes[shown])
        colours.append(np.array([CLASS_COLOURS[k] for k in det_labels[shown]]).reshape(-1, 3))
        widths.append(np.full(int(shown.sum()), 2))
        found = ", ".join(f"{video.class_names[k]} {s:.2f}" for k, s in zip(det_labels[shown], det_scores[shown]))
        lines.append(f"{int(shown.sum())} detections with score ≥ {min_score:.2f}: {found or 'none'}")
    image = paint_boxes(video.frames[t], np.concatenate(boxes), np.concatenate(colours), scale=scale,
                        thickness=np.concatenate(widths))
    return image, "<br>".join(html.escape(line) for line in lines)


def png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image. Pillow (matplotlib's own PNG writer) at its fastest
    compression: about 4x faster than the default for a few % more bytes, so a slider redraws promptly."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _root(*children) -> widgets.VBox:
    root = widgets.VBox(list(children))
    root.add_class("convlab-widget")
    return root


def _box_canvas(box_a, box_b, size: int) -> np.ndarray:
    canvas = np.ones((size, size, 3))
    for box, tint in ((box_a, (1.0, 0.8, 0.8)), (box_b, (0.8, 0.85, 1.0))):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        canvas[y1:y2, x1:x2] *= tint
    return canvas


IOU_MAX = 40                           # the largest corner coordinate and the largest width or height
IOU_CANVAS, IOU_SCALE = 2 * IOU_MAX, 4  # so every box fits the 80 x 80 canvas, drawn at 4 pixels per unit


def _at_display_size(image: widgets.Image, height: int, width: int) -> widgets.Image:
    """Show `image` at exactly its pixel size (no stretching to the cell's width, no blur)."""
    image.layout = widgets.Layout(width=f"{width}px", height=f"{height}px", flex="0 0 auto", object_fit="none")
    return image


def iou_explorer(iou_fn: Callable | None = None) -> widgets.HBox:
    """Two boxes on an 80 x 80 canvas, each with x, y, width and height sliders (0 to 40, so a box never
    leaves the canvas); shows their IoU. The picture is shown at its own 320 x 320 pixels, framed, the
    sliders and the readout beside it."""
    def slider(name, value):
        return widgets.IntSlider(value=value, min=0, max=IOU_MAX, description=name, continuous_update=True,
                                 layout=widgets.Layout(width="250px"))
    sliders = [slider(n, v) for n, v in zip(("A x1", "A y1", "A width", "A height",
                                             "B x1", "B y1", "B width", "B height"), (8, 10, 24, 20, 20, 18, 24, 26))]
    side = IOU_CANVAS * IOU_SCALE
    image, readout = _at_display_size(widgets.Image(format="png"), side, side), widgets.HTML()
    image.layout.border = "1px solid #999"

    def redraw(change=None):
        ax, ay, aw, ah, bx, by, bw, bh = (s.value for s in sliders)
        box_a, box_b = (ax, ay, ax + aw, ay + ah), (bx, by, bx + bw, by + bh)
        value, note = iou_readout(box_a, box_b, iou_fn)
        image.value = png(paint_boxes(_box_canvas(box_a, box_b, IOU_CANVAS), np.array([box_a, box_b], float),
                                      [(0.9, 0.1, 0.1), (0.1, 0.2, 0.9)], scale=IOU_SCALE, thickness=2))
        overlap = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
        readout.value = (f"<b>IoU = {value:.3f}</b> &nbsp; (intersection {overlap}, areas {aw * ah} and {bw * bh})"
                         f"<br><i>{html.escape(note)}</i>")

    for s in sliders:
        s.observe(redraw, "value")
    redraw()
    controls = widgets.VBox([widgets.HTML("<b>box A</b> (red)"), *sliders[:4], widgets.HTML("<b>box B</b> (blue)"),
                             *sliders[4:], readout], layout=widgets.Layout(width="320px"))
    root = widgets.HBox([image, controls], layout=widgets.Layout(align_items="flex-start"))
    root.add_class("convlab-widget")
    return root


PAIRS_LISTED = 12


def nms_explorer(boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray, nms_fn: Callable | None = None,
                 iou_fn: Callable | None = None, whose: str = "your") -> widgets.VBox:
    """Candidate boxes on a frame; an IoU-threshold slider; kept boxes green, suppressed red."""
    threshold = widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="IoU threshold",
                                    style={"description_width": "initial"})
    image, readout = widgets.Image(format="png"), widgets.HTML()

    def redraw(change=None):
        state = nms_state(boxes, scores, threshold.value, nms_fn, iou_fn, whose)
        if state["kept"] is not None:
            colours = [KEPT if i in state["kept"] else SUPPRESSED for i in range(len(boxes))]
            text = (f"kept {len(state['kept'])} of {len(boxes)} boxes: {state['kept']}; "
                    f"suppressed: {state['suppressed']}")
        else:
            in_pair = {i for pair in state["pairs"] for i in pair}
            colours = [PAIR if i in in_pair else NEUTRAL for i in range(len(boxes))]
            pairs = state["pairs"]
            listed = ", ".join(map(str, pairs[:PAIRS_LISTED])) + (f" and {len(pairs) - PAIRS_LISTED} more"
                                                                   if len(pairs) > PAIRS_LISTED else "")
            text = f"{len(pairs)} pairs overlap more than {threshold.value:.2f}" + (f": {listed}" if pairs else "")
        order = np.argsort(scores)                        # draw the best boxes last, on top
        image.value = png(paint_boxes(frame, boxes[order], np.array(colours)[order], scale=4, thickness=2))
        readout.value = f"{html.escape(text)}<br><i>{html.escape(state['note'])}</i>"

    threshold.observe(redraw, "value")
    redraw()
    return _root(threshold, image, readout)


def anchor_explorer(frame: np.ndarray, gt_boxes: np.ndarray, generate_fn: Callable | None = None,
                    iou_fn: Callable | None = None, stride: int = 4, whose: str = "your") -> widgets.VBox:
    """One anchor shape (scale, ratio) at a chosen grid cell, and every positive anchor of that shape."""
    H_f, W_f = frame.shape[0] // stride, frame.shape[1] // stride
    scale = widgets.FloatSlider(value=16, min=4, max=40, step=1, description="scale")
    ratio = widgets.FloatLogSlider(value=0.5, base=2, min=-3, max=2, step=0.25, description="ratio h/w")
    row = widgets.IntSlider(value=H_f // 2, min=0, max=H_f - 1, description="row i")
    col = widgets.IntSlider(value=W_f // 2, min=0, max=W_f - 1, description="column j")
    image, readout = widgets.Image(format="png"), widgets.HTML()

    def redraw(change=None):
        state = anchor_state(frame.shape, stride, scale.value, ratio.value, (row.value, col.value),
                             generate_fn, iou_fn, gt_boxes, whose)
        x1, y1, x2, y2 = state["anchor"]
        positives = state["positives"] if state["positives"] is not None else np.zeros((0, 4))
        boxes = np.concatenate([positives, state["anchor"][None]])
        colours = [KEPT] * len(positives) + [(1.0, 0.9, 0.0)]
        image.value = png(paint_boxes(frame, boxes, colours, scale=3, thickness=2))
        counted = ("positives (IoU ≥ 0.5 with a vehicle) not counted yet" if state["positives"] is None else
                   f"{len(positives)} anchors of this shape have IoU ≥ 0.5 with a vehicle (green)")
        readout.value = (f"anchor at cell ({row.value}, {col.value}): centre ({(x1 + x2) / 2:.1f}, {(y1 + y2) / 2:.1f}), "
                         f"{x2 - x1:.1f} wide × {y2 - y1:.1f} high, area {(x2 - x1) * (y2 - y1):.0f} "
                         f"(yellow); {counted}<br><i>{html.escape(state['note'])}</i>")

    for s in (scale, ratio, row, col):
        s.observe(redraw, "value")
    redraw()
    return _root(widgets.HBox([widgets.VBox([scale, ratio]), widgets.VBox([row, col])]), image, readout)


def video_scrubber(video, detections: list | None = None, interval_ms: int = 120) -> widgets.VBox:
    """Play button and frame slider through the video, with ground truth and detections drawn."""
    play = widgets.Play(value=0, min=0, max=len(video) - 1, interval=interval_ms, description="play")
    frame = widgets.IntSlider(value=0, min=0, max=len(video) - 1, description="frame")
    widgets.jslink((play, "value"), (frame, "value"))
    min_score = widgets.FloatSlider(value=0.5, min=0.05, max=1.0, step=0.05, description="min score",
                                    disabled=detections is None)
    image, readout = widgets.Image(format="png"), widgets.HTML()

    def redraw(change=None):
        picture, caption = scrubber_frame(video, frame.value, detections, min_score.value)
        image.value, readout.value = png(picture), caption

    frame.observe(redraw, "value")
    min_score.observe(redraw, "value")
    redraw()
    return _root(widgets.HBox([play, frame, min_score]), image, readout)
