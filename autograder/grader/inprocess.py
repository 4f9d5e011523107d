"""Score a *trusted* sample submission in this process, without the sandbox.

For authors: a quick way to see which parts a sample's bug fails and with what message, while
writing checks and samples. Student submissions are never graded this way: they run sandboxed
(autograder.grade), and the sample test there asserts the same scores end to end.

Only where the code runs differs from the sandboxed grader: the plan (Course.plan, with its check
that every graded cell has a Part), the order of the hidden-check calls and the scoring
(autograder.grader.scoring) are the grader's own.
"""
from __future__ import annotations

from typing import Any

from autograder.coursedir import grade_id, is_solution, lesson_source
from autograder.grader.course import Course, LessonPlan
from autograder.grader.scoring import next_probe, score_plan
from autograder.grader.spec import Raised, Sample, call_in_process


def sample_namespace(lesson: str, sample: Sample, course: Course = Course()) -> dict:
    """Execute the lesson's reference cells (LessonSource.reference_cells), each stub cell replaced per
    `sample.base` (the instructor's solution, or the release's stub) and then by the sample's own
    source. Visible test cells and the rest of the notebook do not run: the hidden checks need only
    the definitions."""
    namespace: dict = {"__name__": "__main__"}
    stubs = {} if sample.base == "solution" else course.stub_sources(lesson)
    for cell in lesson_source(lesson, course.solutions).reference_cells():
        gid, source = grade_id(cell), cell.source
        if is_solution(cell):
            source = sample.replace.get(gid, stubs.get(gid, source))
        try:
            exec(compile(source, f"<{gid or 'cell'}>", "exec"), namespace)
        except Exception:  # noqa: BLE001 - a broken sample cell leaves its names undefined, as in a kernel
            pass
    return namespace


def answers_in_process(plan: LessonPlan, namespace: dict) -> tuple[dict[int, Any], dict[int, bool]]:
    """The hidden checks' calls the sandboxed grader would make (scoring.next_probe), made here on
    `namespace`: (case index -> answer or Raised, case index -> verdict)."""
    results: dict[int, Any] = {}
    passed: dict[int, bool] = {}
    while (k := next_probe(plan, results, passed)) is not None:
        case = plan.cases[k]
        results[k] = call_in_process(namespace, case) if case.func in namespace else \
            Raised("NameError", f"name {case.func!r} is not defined")
    return results, passed


def grade_in_process(lesson: str, sample: Sample, seed: int = 0,
                     course: Course = Course()) -> tuple[float, dict[str, str]]:
    """(total score, {test grade_id: feedback message for each failed part}), the hidden inputs drawn
    from `seed` (not the grader's own seed: between them, two draws are checked)."""
    plan = course.plan(lesson, inputs_seed=seed)
    parts = score_plan(plan, *answers_in_process(plan, sample_namespace(lesson, sample, course)))
    autograded = [part for part in parts if not part.get("needs_manual_grade")]
    return (sum(part["score"] for part in autograded),
            {part["grade_id"]: part["message"] for part in autograded if part["message"]})
