"""The hidden reference: the solution cells of `solutions/<lesson>.py`, executed in this process.

`solutions/` is the single source of truth: the code students are graded against is the code the
instructor notebook shows in its solution cells. It is loaded only by the grader, the tests and
the benchmark, never inside a student's sandbox.
"""
from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import jupytext

from autograder.build import SOLUTIONS
from autograder.grader.notebook import is_solution


def reference_code_cells(lesson: str, solutions: Path = SOLUTIONS) -> list:
    """The cells the reference is made of: nbgrader solution cells, plus cells tagged `reference`
    (imports and instructor-provided helpers the solutions call), in notebook order, as jupytext
    cells. `solutions` is the instructor source folder (the grader's tests pass a fixture course's)."""
    nb = jupytext.read(solutions / f"{lesson}.py")
    return [cell for cell in nb.cells
            if cell.cell_type == "code" and (is_solution(cell) or "reference" in cell.metadata.get("tags", []))]


def reference_cells(lesson: str, solutions: Path = SOLUTIONS) -> list[str]:
    """The sources of `reference_code_cells`."""
    return [cell.source for cell in reference_code_cells(lesson, solutions)]


@functools.cache
def load_reference(lesson: str, solutions: Path = SOLUTIONS) -> SimpleNamespace:
    """Namespace of the lesson's reference functions, e.g. load_reference('01_conv_forward').conv2d_forward."""
    namespace: dict = {"__name__": f"convlab_reference_{lesson}"}
    for source in reference_cells(lesson, solutions):
        exec(compile(source, f"solutions/{lesson}.py", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def test_points(lesson: str, solutions: Path = SOLUTIONS) -> dict[str, float]:
    """grade_id -> points of every autograded test cell, read from the instructor source (never the submission)."""
    return _graded_points(lesson, solutions, manual=False)


def manual_points(lesson: str, solutions: Path = SOLUTIONS) -> dict[str, float]:
    """grade_id -> points of every manually graded cell (nbgrader's written answers, `grade` and
    `solution`, and tasks): left to the instructor in formgrader, never scored by the grader."""
    return _graded_points(lesson, solutions, manual=True)


def _graded_points(lesson: str, solutions: Path, manual: bool) -> dict[str, float]:
    nb = jupytext.read(solutions / f"{lesson}.py")
    return {meta["grade_id"]: float(meta.get("points", 0)) for cell in nb.cells
            if ((meta := cell.metadata.get("nbgrader", {})).get("grade") or meta.get("task"))
            and bool(meta.get("solution") or meta.get("task")) == manual}
