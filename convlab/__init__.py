"""ConvLab helper package: what the notebooks import (widgets, gradient checks, data, test messages).

Reference solutions are never here: students import this package.
"""
import os

#: Set by the grader and the browser check (CONVLAB_FAST=1): notebooks shrink demos and training.
FAST = os.environ.get("CONVLAB_FAST", "") not in ("", "0")
#: Set by the grader's sandbox only (CONVLAB_GRADING=1): the visible speed tests leave the timing to the
#: hidden check (convlab.speed.expect_speed_rule).
GRADING = os.environ.get("CONVLAB_GRADING", "") not in ("", "0")

__all__ = ["FAST", "GRADING"]
