"""Run one of a lesson's visible test cells against a student's version of some functions (not a test
module): a rule the hidden checks enforce must also be caught by a visible test, so a test of the checks
shows that a visible cell fails the rule-breaking version, and why."""
from __future__ import annotations

from autograder.coursedir import grade_id, lesson_source


def visible_test_failure(lesson: str, test_id: str, student_cells: dict[str, str]) -> str | None:
    """The AssertionError message of visible test cell `test_id` (None if it passes), after the notebook's
    code cells above it ran in order, as a student runs them, each stub grade_id of `student_cells`
    replaced by the given source."""
    import matplotlib
    matplotlib.use("Agg")                       # the cells above may plot
    namespace = {"__name__": f"lesson_{lesson}"}
    for cell in lesson_source(lesson).cells:
        if cell.cell_type != "code":
            continue
        source = student_cells.get(grade_id(cell), cell.source)
        try:
            exec(compile(source, f"{lesson}:{grade_id(cell)}", "exec"), namespace)
        except AssertionError as failure:
            if grade_id(cell) == test_id:
                return str(failure)
            raise
        if grade_id(cell) == test_id:
            return None
    raise ValueError(f"{lesson} has no cell {test_id!r}")
