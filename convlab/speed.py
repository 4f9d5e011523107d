"""The speed rule of the vectorized convolution passes (lessons 01 and 03): one problem size and one
limit of CPU time, used the same way by the visible test (`expect_speed_rule`) and the hidden check
(a probe with timeout=SPEED_SECONDS, stopped by the grader's CPU-time alarm).

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

import convlab
from convlab.expect import expect_fast

SPEED_SECONDS = 2.0
SPEED_SHAPES = {"x": (32, 3, 64, 64), "w": (16, 3, 3, 3), "dy": (32, 16, 64, 64)}   # stride 1, pad 1
SPEED_LABEL = "32 images of 3x64x64, 16 kernels of 3x3, stride 1, pad 1 (2 million outputs)"
#: in the hidden speed case's label, so in its message (and the class report finds it there)
SPEED_CHECK_NOTE = "(speed check: must be vectorized, no Python loop over pixels)"
#: in the line a visible speed test prints when graded instead of timing (and the class report finds it there)
NOT_TIMED_WHEN_GRADED = "not timed in this cell when graded"


def speed_problem(rng: np.random.Generator, *names: str) -> tuple[np.ndarray, ...]:
    """The speed problem's arrays `names` (of "x", "w", "b", "dy"), float32 standard normal, drawn in that order."""
    shapes = dict(SPEED_SHAPES, b=(SPEED_SHAPES["w"][0],))
    return tuple(rng.standard_normal(shapes[name]).astype(np.float32) for name in names)


def expect_speed_rule(func, *args, name: str, hint: str, **kwargs) -> None:
    """The speed rule's visible test: func(*args, **kwargs) within SPEED_SECONDS of CPU time, stopped
    at the limit (convlab.expect.expect_fast). When the grader runs the notebook (convlab.GRADING) the
    call is not made and a line says so: the hidden check times the same problem (new random
    arrays of the same shapes) against the same limit right after, and it cannot trust a timing made in
    the student's cells, so a slow answer would otherwise spend its limit twice. Call it last in its
    cell (only prints may follow; tests/test_release.py checks): when graded nothing stops a slow answer
    here, so a later call on a big problem would run it to the cell's timeout."""
    if convlab.GRADING:
        print(f"{name}: {NOT_TIMED_WHEN_GRADED}; the hidden speed check times the same problem "
              f"(new random arrays) against the same {SPEED_SECONDS:g} s limit, and its result is in your score")
        return
    expect_fast(func, *args, name=name, seconds=SPEED_SECONDS, hint=hint, **kwargs)
