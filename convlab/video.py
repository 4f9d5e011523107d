"""A synthetic road video for lesson 06: a fixed camera looks straight down on a four-lane road.

    video = make_road_video(num_frames=120, seed=0)
    video.frames        (T, H, W, 3) float32 in [0, 1]
    video.boxes[t]      (n_t, 4) float64 ground-truth boxes (x1, y1, x2, y2) in pixel edges
    video.labels[t]     (n_t,) int: index into CLASS_NAMES
    video.ignored[t]    (k_t, 4) boxes of vehicles less than half inside the frame (neither
                        objects to find nor background to learn: "difficult", as in PASCAL VOC)

Vehicles (cars, trucks, bikes) are coloured shapes of several sizes. They enter at one end of
their lane, drive at their own speed, sometimes change lanes, and overlap when a fast one catches
up with a slow one (the later one is drawn on top: an occlusion). A box is the vehicle's whole
extent clipped to the frame, even when another vehicle hides part of it. Pixel (row r, column c)
covers [c, c+1) x [r, r+1), so a vehicle drawn on columns 10..33 has x1 = 10, x2 = 34.
Everything is generated from `seed`: no downloads, identical output on every machine.

`hard=True` makes a video where fixed colour features struggle: half the vehicles are painted in
greys close to the asphalt's, every vehicle casts a dark shadow (a road-coloured blob that is no
object), the light changes over time (a global gain and a cloud shadow drifting across), a
footbridge hides part of every lane, and the sensor noise is stronger. The traffic itself is drawn
by the same rules, so the two kinds of video are alike in everything else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.colors import hsv_to_rgb

__all__ = ["CLASS_NAMES", "Vehicle", "RoadVideo", "make_road_video", "concat_videos", "first_frames", "draw_vehicle", "road_background"]

CLASS_NAMES = ("car", "truck", "bike")
#: (width range, height range) in pixels, inclusive, per class
SIZES = {0: ((21, 27), (11, 13)), 1: ((36, 46), (14, 16)), 2: ((11, 13), (5, 7))}
#: speed range in pixels per frame, per class
SPEEDS = {0: (1.6, 3.0), 1: (1.0, 1.8), 2: (2.2, 3.4)}
CLASS_FREQUENCIES = (0.55, 0.15, 0.3)
LANE_HEIGHT = 20
NUM_LANES = 4
LANE_CHANGE_FRAMES = 12
WINDOW = np.array([0.12, 0.14, 0.18])     # windscreens and riders: dark blue-grey
#: the hard video: share of grey vehicles, shadow offset (dx, dy) and darkening, footbridge columns
GREY_FRACTION = 0.5
SHADOW_OFFSET, SHADOW_FACTOR = (3, 3), 0.55
BRIDGE_COLUMNS = slice(124, 133)
HARD_NOISE = 0.05


@dataclass(frozen=True)
class Vehicle:
    """One vehicle as drawn in one frame: top-left pixel (x, y), size (w, h), facing +1 (right) or -1."""
    track_id: int
    label: int
    x: int
    y: int
    w: int
    h: int
    direction: int
    colour: tuple
    cargo_colour: tuple

    def box(self, height: int, width: int) -> np.ndarray:
        """(x1, y1, x2, y2) of the drawn pixels, clipped to a height x width frame."""
        return np.array([max(self.x, 0), max(self.y, 0), min(self.x + self.w, width),
                         min(self.y + self.h, height)], dtype=np.float64)


@dataclass
class RoadVideo:
    frames: np.ndarray
    boxes: list
    labels: list
    track_ids: list
    ignored: list
    vehicles: list          # per frame, the list of Vehicle drawn (to redraw or check a frame)
    background: np.ndarray  # (H, W, 3): the empty road, without sensor noise
    class_names: tuple = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.frames)


def _road_top(height: int) -> int:
    """First row of the road (its top edge line): the NUM_LANES lanes are centred vertically."""
    return (height - NUM_LANES * LANE_HEIGHT) // 2


def road_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32: grass verges, asphalt with a fine texture, lane markings."""
    top = _road_top(height)
    bottom = top + NUM_LANES * LANE_HEIGHT
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = np.array([0.25, 0.45, 0.2]) + 0.04 * rng.standard_normal((height, width, 1))
    image[top:bottom] = 0.38 + 0.015 * rng.standard_normal((bottom - top, width, 1))
    white, yellow = np.array([0.92, 0.92, 0.9]), np.array([0.9, 0.78, 0.2])
    image[top] = image[bottom - 1] = white                                # edges
    middle = top + 2 * LANE_HEIGHT
    image[middle - 1] = image[middle + 1] = yellow                        # double centre line
    dashes = (np.arange(width) % 16) < 8
    for k in (1, 3):                                                      # dashed lane dividers
        image[top + k * LANE_HEIGHT, dashes] = white
    return np.clip(image, 0, 1)


def draw_vehicle(canvas: np.ndarray, vehicle: Vehicle) -> None:
    """Paint `vehicle` (seen from above) into canvas (H, W, 3) in place, clipped to the canvas.

    Every pixel painted lies inside the rectangle (x, y, w, h): the body fills it, details
    (windscreen, cargo box, rider) are painted over the body.
    """
    patch = np.empty((vehicle.h, vehicle.w, 3), dtype=canvas.dtype)
    patch[:] = vehicle.colour
    w, h = vehicle.w, vehicle.h
    if vehicle.label == 0:                                   # car: windscreen and rear window
        patch[1:h - 1, int(0.62 * w):int(0.78 * w)] = WINDOW
        patch[1:h - 1, int(0.12 * w):int(0.22 * w)] = WINDOW
    elif vehicle.label == 1:                                 # truck: cargo box behind the cab
        cab = int(0.72 * w)
        patch[:, :cab - 1] = vehicle.cargo_colour
        patch[:, 3:cab - 3:5] = 0.8 * np.asarray(vehicle.cargo_colour)    # ribs of the cargo box
        patch[:, cab - 1] = WINDOW * 0.5
        patch[1:h - 1, w - 4:w - 2] = WINDOW
    else:                                                    # bike: a rider in the middle
        patch[1:h - 1, w // 2 - 2:w // 2 + 2] = WINDOW
    if vehicle.direction < 0:
        patch = patch[:, ::-1]
    x1, y1, x2, y2 = vehicle.box(*canvas.shape[:2]).astype(int)
    if x1 < x2 and y1 < y2:
        canvas[y1:y2, x1:x2] = patch[y1 - vehicle.y:y2 - vehicle.y, x1 - vehicle.x:x2 - vehicle.x]


def _random_colour(rng: np.random.Generator, grey_fraction: float = 0.0) -> tuple:
    """A saturated colour, or (with probability grey_fraction) a grey close to the asphalt's 0.38."""
    if grey_fraction and rng.uniform() < grey_fraction:
        return tuple(hsv_to_rgb([rng.uniform(), rng.uniform(0.0, 0.15), rng.uniform(0.3, 0.55)]))
    return tuple(hsv_to_rgb([rng.uniform(), rng.uniform(0.55, 0.95), rng.uniform(0.6, 0.95)]))


def _shadow(canvas: np.ndarray, vehicle: Vehicle) -> None:
    """Darken, in place, the road under `vehicle` shifted by SHADOW_OFFSET (the sun is low)."""
    dx, dy = SHADOW_OFFSET
    height, width = canvas.shape[:2]
    x1, y1 = max(vehicle.x + dx, 0), max(vehicle.y + dy, 0)
    x2, y2 = min(vehicle.x + vehicle.w + dx, width), min(vehicle.y + vehicle.h + dy, height)
    if x1 < x2 and y1 < y2:
        canvas[y1:y2, x1:x2] *= SHADOW_FACTOR


def _lighting(frame: np.ndarray, t: int, phase: float) -> None:
    """Scale `frame` in place by the light of time t: a slow global gain times a drifting cloud shadow."""
    width = frame.shape[1]
    gain = 1.0 + 0.25 * np.sin(2 * np.pi * t / 60 + phase)
    cloud_x = (phase * 40 + 3 * t) % (width + 80) - 40
    cloud = 1.0 - 0.35 * np.exp(-(((np.arange(width) - cloud_x) / 30.0) ** 2))
    frame *= (gain * cloud)[None, :, None].astype(frame.dtype)


class _Traffic:
    """The simulation: vehicles with float positions, spawned at lane ends, removed when gone."""

    def __init__(self, height: int, width: int, rng: np.random.Generator, spawn_rate: float, grey_fraction: float = 0.0):
        self.height, self.width, self.rng, self.spawn_rate = height, width, rng, spawn_rate
        self.grey_fraction = grey_fraction
        self.road_top = _road_top(height)
        self.cars: list[dict] = []
        self.next_id = 0

    def lane_centre(self, lane: float) -> float:
        return self.road_top + (lane + 0.5) * LANE_HEIGHT

    def spawn(self) -> None:
        for lane in range(NUM_LANES):
            if self.rng.uniform() >= self.spawn_rate:
                continue
            direction = -1 if lane < NUM_LANES // 2 else 1
            label = int(self.rng.choice(3, p=CLASS_FREQUENCIES))
            (w_lo, w_hi), (h_lo, h_hi) = SIZES[label]
            w, h = int(self.rng.integers(w_lo, w_hi + 1)), int(self.rng.integers(h_lo, h_hi + 1))
            x = -w if direction > 0 else self.width
            entry_busy = any(abs(c["lane"] - lane) < 0.5 and
                             (c["x"] < 8 if direction > 0 else c["x"] + c["w"] > self.width - 8)
                             for c in self.cars)
            if entry_busy:
                continue
            self.cars.append(dict(id=self.next_id, label=label, w=w, h=h, x=float(x), lane=float(lane),
                                  target=lane, direction=direction,
                                  speed=self.rng.uniform(*SPEEDS[label]),
                                  colour=_random_colour(self.rng, self.grey_fraction),
                                  cargo=tuple(np.full(3, self.rng.uniform(0.75, 0.95)))
                                  if self.rng.uniform() < 0.6 else _random_colour(self.rng)))
            self.next_id += 1

    def _gap_ahead(self, car: dict) -> tuple[float, dict | None]:
        """Free pixels between `car` and the next vehicle ahead in its lane, and that vehicle."""
        gap, leader = np.inf, None
        for other in self.cars:
            if other is car or abs(other["lane"] - car["lane"]) >= 0.5:
                continue
            ahead = (other["x"] - car["x"] - car["w"] if car["direction"] > 0
                     else car["x"] - other["x"] - other["w"])
            if -car["w"] < ahead < gap:
                gap, leader = ahead, other
        return gap, leader

    def step(self) -> None:
        for car in self.cars:
            gap, leader = self._gap_ahead(car)
            speed = car["speed"]
            if leader is not None and gap < 14:                  # brake behind a slower vehicle...
                speed = min(speed, leader["speed"], max(gap - 6, 0))
            car["x"] += car["direction"] * speed
            blocked = leader is not None and gap < 16 and leader["speed"] < car["speed"]
            if car["lane"] == car["target"] and (self.rng.uniform() < (0.08 if blocked else 0.005)):
                pair = 0 if car["target"] < NUM_LANES // 2 else 2     # ...or overtake: change lanes
                car["target"] = pair + 1 - (car["target"] - pair)
            if car["lane"] != car["target"]:
                move = np.sign(car["target"] - car["lane"]) / LANE_CHANGE_FRAMES
                car["lane"] = car["target"] if abs(car["target"] - car["lane"]) <= abs(move) else car["lane"] + move
        self.cars = [c for c in self.cars if -c["w"] <= c["x"] <= self.width]
        self.spawn()

    def vehicles(self) -> list[Vehicle]:
        return [Vehicle(c["id"], c["label"], int(round(c["x"])),
                        int(round(self.lane_centre(c["lane"]) - c["h"] / 2)), c["w"], c["h"],
                        c["direction"], c["colour"], c["cargo"]) for c in self.cars]


def make_road_video(num_frames: int = 120, height: int = 96, width: int = 192, seed: int = 0,
                    noise: float | None = None, spawn_rate: float = 0.035, warmup: int = 90, frame_step: int = 1,
                    hard: bool = False) -> RoadVideo:
    """Generate the video; `noise` is the std of per-frame sensor noise (0 for exact pixels; default
    0.02, or HARD_NOISE for a hard video).
    `frame_step` k keeps one simulated frame in k: more different vehicles for the same number of
    frames (a training set), at the cost of jerky motion. `hard`: grey vehicles, shadows, changing
    light, a footbridge and noise HARD_NOISE (see the module's docstring)."""
    if height < NUM_LANES * LANE_HEIGHT + 2:
        raise ValueError(f"height must be at least {NUM_LANES * LANE_HEIGHT + 2} to hold the road, got {height}")
    rng = np.random.default_rng(seed)
    background = road_background(height, width, rng)
    traffic = _Traffic(height, width, rng, spawn_rate, GREY_FRACTION if hard else 0.0)
    noise = (HARD_NOISE if hard else 0.02) if noise is None else noise
    effects = np.random.default_rng([seed, 1])                 # the hard video's light and footbridge
    phase = float(effects.uniform(0, 2 * np.pi))
    bridge = (0.5 + 0.03 * effects.standard_normal((height, len(range(width)[BRIDGE_COLUMNS]), 1))).astype(np.float32)
    for _ in range(warmup):                      # start with traffic already on the road
        traffic.step()
    frames = np.empty((num_frames, height, width, 3), dtype=np.float32)
    boxes, labels, track_ids, ignored, drawn = [], [], [], [], []
    for t in range(num_frames):
        vehicles = traffic.vehicles()
        frame = background.copy()
        if hard:
            for vehicle in vehicles:
                _shadow(frame, vehicle)
        for vehicle in vehicles:
            draw_vehicle(frame, vehicle)
        if hard:
            frame[:, BRIDGE_COLUMNS] = bridge
            _lighting(frame, t, phase)
        if noise:
            frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 1)
        all_boxes = np.array([v.box(height, width) for v in vehicles]).reshape(-1, 4)
        visible = (all_boxes[:, 2] - all_boxes[:, 0]) >= 0.5 * np.array([v.w for v in vehicles])
        boxes.append(all_boxes[visible])
        labels.append(np.array([v.label for v in vehicles], dtype=np.int64)[visible])
        track_ids.append(np.array([v.track_id for v in vehicles], dtype=np.int64)[visible])
        ignored.append(all_boxes[~visible])
        drawn.append(vehicles)
        for _ in range(frame_step):
            traffic.step()
    return RoadVideo(frames, boxes, labels, track_ids, ignored, drawn, background)


def concat_videos(*videos: RoadVideo) -> RoadVideo:
    """The frames of several videos one after the other (a training set mixing easy and hard
    videos); the background is the first video's."""
    return RoadVideo(np.concatenate([v.frames for v in videos]), *([x for v in videos for x in getattr(v, name)]
                     for name in ("boxes", "labels", "track_ids", "ignored", "vehicles")), videos[0].background)


def first_frames(video: RoadVideo, count: int) -> RoadVideo:
    """The video's first `count` frames (a quick run's smaller test set)."""
    return RoadVideo(video.frames[:count], *(getattr(video, name)[:count] for name in
                                             ("boxes", "labels", "track_ids", "ignored", "vehicles")), video.background)
