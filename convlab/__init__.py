"""ConvLab helper package: what the notebooks import (widgets, gradient checks, data, test messages).

Reference solutions are never here: students import this package.
"""
import os

#: Set by the grader and the browser check (CONVLAB_FAST=1): notebooks shrink demos and training.
FAST = os.environ.get("CONVLAB_FAST", "") not in ("", "0")

__all__ = ["FAST"]
