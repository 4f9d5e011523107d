"""Score a *trusted* sample submission in this process, without the sandbox.

For authors: a quick way to see which parts a sample's bug fails and with what message, while
writing checks and samples. Student submissions are never graded this way: they run sandboxed
(autograder.grade), and the sample test there asserts the same scores end to end.
"""
from __future__ import annotations

import numpy as np

from autograder.checks import check_module
from autograder.grader.course import Course
from autograder.grader.notebook import grade_id, is_solution
from autograder.grader.reference import load_reference, reference_code_cells, test_points
from autograder.grader.spec import Raised, Sample, call_in_process, judge_part


def sample_namespace(lesson: str, sample: Sample) -> dict:
    """Execute the reference cells, with stubs per `sample.base` (the release's own stub cells) and the
    sample's replacements."""
    namespace: dict = {"__name__": "__main__"}
    stubs = {} if sample.base == "solution" else Course().stub_sources(lesson)
    for cell in reference_code_cells(lesson):
        gid, source = grade_id(cell), cell.source
        if is_solution(cell):
            source = sample.replace.get(gid, stubs.get(gid, source))
        try:
            exec(compile(source, f"<{gid or 'cell'}>", "exec"), namespace)
        except Exception:  # noqa: BLE001 - a broken sample cell leaves its names undefined, as in a kernel
            pass
    return namespace


def grade_in_process(lesson: str, sample: Sample, seed: int = 0) -> tuple[float, dict[str, str]]:
    """(total score, {test grade_id: feedback message for each failed part})."""
    namespace = sample_namespace(lesson, sample)
    points = test_points(lesson)
    parts = check_module(lesson).parts(load_reference(lesson), np.random.default_rng(seed))
    score, messages = 0.0, {}
    for part in parts:
        results = [call_in_process(namespace, case) if case.func in namespace
                   else Raised("NameError", f"name {case.func!r} is not defined") for case in part.cases]
        if (message := judge_part(part, results)) is None:
            score += points[part.grade_id]
        else:
            messages[part.grade_id] = message
    return score, messages
