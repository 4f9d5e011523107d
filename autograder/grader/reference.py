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

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def reference_cells(lesson: str, solutions: Path = SOLUTIONS) -> list[str]:
    """Sources of the cells the reference is made of: nbgrader solution cells, plus cells tagged
    `reference` (imports and instructor-provided helpers the solutions call), in notebook order.
    `solutions` is the instructor source folder (the grader's tests pass a fixture course's)."""
    nb = jupytext.read(solutions / f"{lesson}.py")
    return [cell.source for cell in nb.cells if cell.cell_type == "code"
            and (cell.metadata.get("nbgrader", {}).get("solution") or "reference" in cell.metadata.get("tags", []))]


@functools.cache
def load_reference(lesson: str, solutions: Path = SOLUTIONS) -> SimpleNamespace:
    """Namespace of the lesson's reference functions, e.g. load_reference('01_conv_forward').conv2d_forward."""
    namespace: dict = {"__name__": f"convlab_reference_{lesson}"}
    for source in reference_cells(lesson, solutions):
        exec(compile(source, f"solutions/{lesson}.py", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def test_points(lesson: str, solutions: Path = SOLUTIONS) -> dict[str, float]:
    """grade_id -> points of every graded test cell, read from the instructor source (never the submission)."""
    nb = jupytext.read(solutions / f"{lesson}.py")
    return {meta["grade_id"]: float(meta.get("points", 0)) for cell in nb.cells
            if (meta := cell.metadata.get("nbgrader", {})).get("grade")}
