"""One scoring path, two executors: which hidden-check call comes next, and what the answers score.

The sandboxed grader (engine.py: student code in a sandbox) and the in-process sample scoring
(inprocess.py: trusted sample code in this process) both grade a `Course.plan` LessonPlan the same
way: they ask `next_probe` which case to call, call it where their code runs, record the answer
(a value or a spec.Raised), and hand all the answers to `score_plan`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from autograder.grader.course import LessonPlan
from autograder.grader.report import BY_INSTRUCTOR
from autograder.grader.spec import Case, Raised, judge_part

#: Why a case has no answer, when the executor does not say: no executor stops before a needed call
#: except the sandbox, which sets its own reason.
NOT_RUN = "the sandbox stopped before this check"

Hint = Callable[[list[Case], list[Any]], str]   # (a failed part's cases, their answers) -> text to add


def next_probe(plan: LessonPlan, results: Mapping[int, Any], passed: dict[int, bool]) -> int | None:
    """The next case to call (an index into plan.cases), or None when every needed one is answered:
    in part order, skipping the rest of a part once one of its cases failed. `passed` caches each
    answered case's verdict (updated here), so that no answer is judged twice."""
    for ks in plan.part_cases:
        for k in ks:
            if k not in results:
                return k
            if k not in passed:
                try:
                    passed[k] = plan.cases[k].judge(results[k]) is None
                except Exception:  # noqa: BLE001 - a check that cannot judge this answer fails it (see score_plan)
                    passed[k] = False
            if not passed[k]:
                break
    return None


def score_plan(plan: LessonPlan, results: Mapping[int, Any], passed: Mapping[int, bool] | None = None,
               not_run: str = NOT_RUN, hint: Hint | None = None) -> list[dict]:
    """Each graded cell's part of the result: a test cell earns its points when all of its cases pass,
    else 0 with the feedback message (plus `hint`'s text, e.g. why a function is undefined); then
    the manually graded cells, unscored. `results`: case index -> answer; a missing one is
    Raised("NotRun", not_run). `passed`: verdicts next_probe already reached (not judged again)."""
    passed = passed or {}
    parts = []
    for part, ks in zip(plan.parts, plan.part_cases):
        answers = [results.get(k, Raised("NotRun", not_run)) for k in ks]
        try:
            message = None if all(passed.get(k) for k in ks) else \
                judge_part(part, answers, note=_built_on_failed(part, parts, plan))
        except Exception as exc:  # noqa: BLE001 - a bug in a hidden check must not stop grading
            message = f"the hidden check could not judge this answer ({type(exc).__name__}: {exc}); tell the instructor"
        if message and hint is not None:
            message += hint([plan.cases[k] for k in ks], answers)
        points = plan.points[part.grade_id]
        parts.append({"grade_id": part.grade_id, "points": points, "score": 0.0 if message else points,
                      "message": message or ""})
    return parts + [manual_part(grade_id, points) for grade_id, points in plan.manual.items()]


def _built_on_failed(part, scored: list[dict], plan: LessonPlan) -> str:
    """The note " (... fix conv_output_size first)" when a part that the failed `part` is built on
    (Part.built_on) failed too: the student's function may have gone wrong only in the helper it calls."""
    failed = {entry["grade_id"] for entry in scored if entry["message"]}
    helpers = [earlier.cases[0].func for earlier in plan.parts
               if earlier.grade_id in part.built_on and earlier.grade_id in failed and earlier.cases]
    if not helpers:
        return ""
    names = " and ".join(", ".join(helpers).rsplit(", ", 1))
    them = "it" if len(helpers) == 1 else "them"
    return (f" ({part.cases[0].func} is graded with your own {names} where it calls {them}, and "
            f"{'that fails its' if len(helpers) == 1 else 'those fail their'} own check: fix {them} first)")


def manual_part(grade_id: str, points: float) -> dict:
    """A written answer or task: no score until the instructor grades it in formgrader."""
    return {"grade_id": grade_id, "points": points, "score": 0.0, "message": BY_INSTRUCTOR,
            "needs_manual_grade": True}
