"""The speed rule of the vectorized convolution passes (lessons 01 and 03): one problem size and one
limit of CPU time, used the same way by the visible test (`expect_fast`) and the hidden check (a
probe with timeout=SPEED_SECONDS, stopped by the grader's CPU-time alarm).

The problem: 32 images of 3x64x64, 16 kernels of 3x3, stride 1, pad 1 (2,097,152 outputs).
Why SPEED_SECONDS = 2 (CPU seconds of one thread, measured on the development machine, a 2-core
cloud Xeon):
- correct vectorized styles take 0.004-0.4 s on the forward (im2col and one product 0.009, einsum
  on sliding windows 0.004-0.12, a loop over images and output channels summing windows 0.4) and
  0.02-0.04 s on the backward (autograder/fairness/l01_conv_forward.py, l03_conv_backward.py);
- the loops of lesson 01 section 4 take 7.7 s (forward, about 3.7 us per output), the backward's
  8-30 s.
So a grading machine 5x slower than this one still passes every correct style, and one 3.8x
faster still stops the loops (the limit was 5 s, which a machine 1.5x faster let the loops pass).
"""
from __future__ import annotations

import numpy as np

SPEED_SECONDS = 2.0
SPEED_SHAPES = {"x": (32, 3, 64, 64), "w": (16, 3, 3, 3), "dy": (32, 16, 64, 64)}   # stride 1, pad 1
SPEED_LABEL = "32 images of 3x64x64, 16 kernels of 3x3, stride 1, pad 1 (2 million outputs)"


def speed_problem(rng: np.random.Generator, *names: str) -> tuple[np.ndarray, ...]:
    """The speed problem's arrays `names` (of "x", "w", "b", "dy"), float32 standard normal, drawn in that order."""
    shapes = dict(SPEED_SHAPES, b=(SPEED_SHAPES["w"][0],))
    return tuple(rng.standard_normal(shapes[name]).astype(np.float32) for name in names)
