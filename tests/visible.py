"""Run one of a lesson's visible test cells against a student's version of some functions (not a test
module): a rule the hidden checks enforce must also be caught by a visible test, so a test of the checks
shows that a visible cell fails the rule-breaking version, and why."""
from __future__ import annotations

from autograder.coursedir import grade_id, is_solution, lesson_source
from autograder.grader.inprocess import sample_namespace
from autograder.grader.spec import Sample


def visible_test_failure(lesson: str, test_id: str, student_cells: dict[str, str]) -> str | None:
    """The AssertionError message of visible test cell `test_id` (None if it passes), run on the
    reference with each stub grade_id of `student_cells` replaced by the given source, after the
    lesson's set-up cells (the code cells before its first stub)."""
    import matplotlib
    matplotlib.use("Agg")                       # the set-up cells may plot
    namespace = sample_namespace(lesson, Sample(replace=student_cells))
    code = [cell for cell in lesson_source(lesson).cells if cell.cell_type == "code"]
    first_stub = next(i for i, cell in enumerate(code) if is_solution(cell))
    for cell in code[:first_stub]:
        exec(compile(cell.source, f"{lesson}:set-up", "exec"), namespace)
    test = next((cell for cell in code if grade_id(cell) == test_id), None)
    if test is None:
        raise ValueError(f"{lesson} has no cell {test_id!r}")
    try:
        exec(compile(test.source, f"{lesson}:{test_id}", "exec"), namespace)
    except AssertionError as failure:
        return str(failure)
    return None
