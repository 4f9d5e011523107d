"""The hidden reference: the solution cells of `solutions/<lesson>.py`, executed in this process.

`solutions/` is the single source of truth: the code students are graded against is the code the
instructor notebook shows in its solution cells (with reuse markers expanded to the earlier lesson's
cells, autograder.coursedir). It is loaded only by the grader, the tests and the benchmark, never
inside a student's sandbox.
"""
from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

from autograder.coursedir import SOLUTIONS, lesson_source


def reference_cells(lesson: str, solutions: Path = SOLUTIONS) -> list[str]:
    """The sources of the lesson's reference cells (LessonSource.reference_cells), expanded."""
    return [cell.source for cell in lesson_source(lesson, solutions).reference_cells()]


@functools.cache
def load_reference(lesson: str, solutions: Path = SOLUTIONS) -> SimpleNamespace:
    """Namespace of the lesson's reference functions, e.g. load_reference('01_conv_forward').conv2d_forward."""
    namespace: dict = {"__name__": f"convlab_reference_{lesson}"}
    for source in reference_cells(lesson, solutions):
        exec(compile(source, f"solutions/{lesson}.py", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def test_points(lesson: str, solutions: Path = SOLUTIONS) -> dict[str, float]:
    """grade_id -> points of every autograded test cell, read from the instructor source (never the submission)."""
    return lesson_source(lesson, solutions).test_points()


def manual_points(lesson: str, solutions: Path = SOLUTIONS) -> dict[str, float]:
    """grade_id -> points of every manually graded cell, left to the instructor in formgrader."""
    return lesson_source(lesson, solutions).manual_points()
