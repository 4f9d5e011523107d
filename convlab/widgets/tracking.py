"""Lesson 06's tracking and feature-map widgets. Pure logic first (tested without a browser), then
thin ipywidgets views:
    track_colour(track_id)                               -> RGB triple, the same for an ID in every frame
    tracked_frame(video, t, tracked, count_fn, line_x)   -> (uint8 image, HTML caption): track IDs, trails,
                                                            the counting line and the running count
    feature_panels(frame, fixed, learned, i, j)          -> uint8 image: the frame, fixed channel i and
                                                            learned channel j, one above the other
    tracking_scrubber / feature_map_explorer             -> widgets (root DOM class `convlab-widget`)
The tracks come from the student's update_tracks and the count from the student's count_crossings
(passed in); a count that raises is reported in the caption instead.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps

from convlab.fixed_detector import paint_boxes
from convlab.tracking import observations
from convlab.widgets._student import call_student
from convlab.widgets.boxes import png

__all__ = ["track_colour", "tracked_frame", "feature_panels", "tracking_scrubber", "feature_map_explorer"]

LINE_COLOUR = np.array([1.0, 0.9, 0.0])


def track_colour(track_id: int) -> tuple:
    """A bright colour per ID, spread around the colour wheel by the golden ratio."""
    return tuple(colormaps["hsv"]((int(track_id) * 0.618034) % 1.0)[:3])


def tracked_frame(video, t: int, tracked: tuple, count_fn: Callable | None, line_x: float, trail: int = 12,
                  scale: int = 3) -> tuple[np.ndarray, str]:
    """Frame t with the tracker's boxes in their ID's colour, each track's centres over the last
    `trail` frames as dots, the counting line x = line_x, and the count of frames 0..t."""
    boxes_per_frame, ids_per_frame = tracked
    dots, dot_colours = [], []
    for past in range(max(0, t - trail), t + 1):
        for box, track in zip(boxes_per_frame[past], ids_per_frame[past]):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            dots.append([cx - 0.5, cy - 0.5, cx + 0.5, cy + 0.5])
            dot_colours.append(track_colour(track))
    H = video.frames.shape[1]
    shapes = [np.array([[line_x - 0.5, 0.0, line_x + 0.5, float(H)]]), np.array(dots).reshape(-1, 4), boxes_per_frame[t]]
    colours = [LINE_COLOUR[None], np.array(dot_colours).reshape(-1, 3),
               np.array([track_colour(i) for i in ids_per_frame[t]]).reshape(-1, 3)]
    widths = [np.ones(1, int), np.ones(len(dots), int), np.full(len(boxes_per_frame[t]), 2)]
    image = paint_boxes(video.frames[t], np.concatenate(shapes), np.concatenate(colours), scale=scale,
                        thickness=np.concatenate(widths))
    counted, problem = call_student(count_fn, *observations(boxes_per_frame[:t + 1], ids_per_frame[:t + 1]), line_x)
    count = (f"counted at x = {line_x:.0f} so far: {int(counted[0])} rightwards, {int(counted[1])} leftwards"
             if problem is None else f"no count: {problem}")
    ids = ", ".join(str(int(i)) for i in ids_per_frame[t]) or "none"
    caption = f"frame {t}: track IDs {ids}<br>{html.escape(count)}"
    return image, caption


def _normalised(channel: np.ndarray) -> np.ndarray:
    low, high = float(channel.min()), float(channel.max())
    return (channel - low) / (high - low) if high > low else np.zeros_like(channel)


def feature_panels(frame: np.ndarray, fixed: np.ndarray, learned: np.ndarray, fixed_channel: int,
                   learned_channel: int, scale: int = 2) -> np.ndarray:
    """(3 H scale, W scale, 3) uint8: the frame, then fixed[fixed_channel] and learned[learned_channel]
    (maps of any size, each scaled to its own min..max and stretched to the frame's size, viridis)."""
    H, W = frame.shape[:2]
    panels = [np.clip(frame, 0, 1)]
    for maps, channel in ((fixed, fixed_channel), (learned, learned_channel)):
        values = _normalised(np.asarray(maps[channel], dtype=np.float64))
        rows = (np.arange(H) * values.shape[0]) // H
        cols = (np.arange(W) * values.shape[1]) // W
        panels.append(colormaps["viridis"](values[rows][:, cols])[..., :3])
    image = np.concatenate(panels, axis=0)
    return (np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) * 255).astype(np.uint8)


def _root(*children) -> widgets.VBox:
    root = widgets.VBox(list(children))
    root.add_class("convlab-widget")
    return root


def tracking_scrubber(video, tracked: tuple, count_fn: Callable | None, line_x: float,
                      interval_ms: int = 120) -> widgets.VBox:
    """Play button and frame slider through the tracked video: IDs, trails, the line and the count."""
    play = widgets.Play(value=0, min=0, max=len(video) - 1, interval=interval_ms, description="play")
    frame = widgets.IntSlider(value=0, min=0, max=len(video) - 1, description="frame")
    widgets.jslink((play, "value"), (frame, "value"))
    image, readout = widgets.Image(format="png"), widgets.HTML()

    def redraw(change=None):
        picture, caption = tracked_frame(video, frame.value, tracked, count_fn, line_x)
        image.value, readout.value = png(picture), caption

    frame.observe(redraw, "value")
    redraw()
    return _root(widgets.HBox([play, frame]), image, readout)


def feature_map_explorer(frames: np.ndarray, fixed_fn: Callable, learned_fn: Callable | None,
                         fixed_names: tuple) -> widgets.HBox:
    """Pick a frame, a fixed channel and a learned backbone channel: see what each responds to.
    fixed_fn(frame) -> (C, h, w) and learned_fn(frame) -> (C', h', w') feature maps; without a learned
    detector (learned_fn None) the learned panel repeats the fixed channel and the caption says so."""
    first_learned = learned_fn(frames[0]) if learned_fn is not None else None
    frame = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="frame")
    fixed_channel = widgets.Dropdown(options=[(name, k) for k, name in enumerate(fixed_names)], value=0,
                                     description="fixed")
    learned_channel = widgets.IntSlider(value=0, min=0, max=(len(first_learned) - 1) if first_learned is not None else 0,
                                        description="learned", disabled=first_learned is None)
    image, readout = widgets.Image(format="png"), widgets.HTML()
    H, W = frames.shape[1:3]
    image.layout = widgets.Layout(width=f"{2 * W}px", height=f"{6 * H}px", flex="0 0 auto")

    def redraw(change=None):
        fixed = fixed_fn(frames[frame.value])
        learned = learned_fn(frames[frame.value]) if learned_fn is not None else fixed
        shown = learned_channel.value if learned_fn is not None else fixed_channel.value
        image.value = png(feature_panels(frames[frame.value], fixed, learned, fixed_channel.value, shown))
        which = (f"learned backbone channel {shown} of {len(learned)}" if learned_fn is not None
                 else "no learned detector yet: the bottom panel repeats the fixed channel")
        readout.value = (f"top: frame {frame.value}; middle: fixed channel <b>{html.escape(fixed_names[fixed_channel.value])}"
                         f"</b>; bottom: {html.escape(which)} (each scaled to its own range, yellow = high)")

    for control in (frame, fixed_channel, learned_channel):
        control.observe(redraw, "value")
    redraw()
    root = widgets.HBox([image, widgets.VBox([frame, fixed_channel, learned_channel, readout],
                                             layout=widgets.Layout(width="320px"))])
    root.add_class("convlab-widget")
    return root
