"""python -m bench.detector06 [--steps N] [--widths 8,16] [--baseline] [--save PATH] [--opt key=value ...]

Lesson 06's accuracy figures for one configuration of the learned detector (convlab.cnn_detector),
on the reference solutions, as the notebook's full run sets them up: trained on the 300-frame mixed
easy/hard training video, scored (mAP@0.5) on the 150 held-out easy and 150 held-out hard frames.
With --baseline the fixed-feature detector is trained and scored in the same run. Prints one JSON
line: the configuration, both mAPs, and training's CPU seconds (time.process_time: the machine is
shared) and wall seconds. Set OPENBLAS_NUM_THREADS yourself (the notebook's figures use 1).
`--opt` passes build/train/detect options: build_*= to build_detector, detect_*= to detect_cnn,
anything else to train_cnn_detector (lr, momentum, box_weight, head_batch, fg_fraction, ...).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import time

from autograder.grader.reference import load_reference
from convlab import cnn_detector, fixed_detector
from convlab.video import concat_videos, make_road_video

SCALES, RATIOS, STRIDE, GRID = (8, 16, 24), (0.35, 0.5, 1.0), 4, (24, 48)
N_TRAIN, N_TEST, BASELINE_STEPS = 300, 150, 300


def references():
    """(layers, ops, anchors) from the lesson-04 and lesson-06 reference solutions."""
    l04, l06 = load_reference("04_train_cnn"), load_reference("06_detection")
    layers = {name: getattr(l04, name) for name in ("Conv2D", "ReLU", "MaxPool2D", "sgd_momentum_step")}
    ops = {name: getattr(l06, name) for name in (*cnn_detector.STUDENT_OPS, "match_detections", "average_precision")}
    return layers, ops, l06.generate_anchors(GRID, STRIDE, SCALES, RATIOS)


def videos():
    train = concat_videos(make_road_video(N_TRAIN // 2, seed=0, frame_step=4),
                          make_road_video(N_TRAIN // 2, seed=2, frame_step=4, hard=True))
    return train, make_road_video(N_TEST, seed=1), make_road_video(N_TEST, seed=1, hard=True)


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--baseline", action="store_true", help="train and score the fixed-feature detector too")
    parser.add_argument("--save", help="pickle the trained detector's parameters here")
    parser.add_argument("--load", help="score pickled parameters (of the same --opt build_*) instead of training")
    parser.add_argument("--opt", nargs="*", default=[], help="key=value options (see above)")
    args = parser.parse_args()
    options = dict((key, _value(value)) for key, value in (item.split("=", 1) for item in args.opt))
    build = {k[6:]: v for k, v in options.items() if k.startswith("build_")}
    detect = {k[7:]: v for k, v in options.items() if k.startswith("detect_")}
    train_opts = {k: v for k, v in options.items() if not k.startswith(("build_", "detect_"))}
    layers, ops, anchors = references()
    train, easy, hard = videos()
    row = {"steps": args.steps, **options, "threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    if args.baseline:
        base = fixed_detector.train_detector(train, anchors, len(SCALES) * len(RATIOS), ops, steps=BASELINE_STEPS)
        for name, video in (("easy", easy), ("hard", hard)):
            row[f"base_{name}"] = round(fixed_detector.evaluate(
                lambda frame: fixed_detector.detect(base, frame, ops), video, ops)[1], 3)
    det = cnn_detector.build_detector(layers, anchors, len(SCALES) * len(RATIOS), len(easy.class_names), **build)
    if args.load:
        with open(args.load, "rb") as file:
            for layer, params in zip(det.layers(), pickle.load(file)):
                layer.params.update(params)
    else:
        cpu, wall = time.process_time(), time.perf_counter()
        cnn_detector.train_cnn_detector(train, det, layers, ops, steps=args.steps, **train_opts)
        row["cpu_s"], row["wall_s"] = round(time.process_time() - cpu, 1), round(time.perf_counter() - wall, 1)
    if args.save:
        with open(args.save, "wb") as file:
            pickle.dump([dict(layer.params) for layer in det.layers()], file)
    for name, video in (("easy", easy), ("hard", hard)):
        _, mean_ap, per_class, ms = fixed_detector.evaluate(
            lambda frame: cnn_detector.detect_cnn(det, frame, ops, **detect), video, ops)
        row[name] = round(mean_ap, 3)
        row[f"{name}_classes"] = {k: round(v, 3) for k, v in per_class.items()}
        row["ms_per_frame"] = round(ms, 1)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
