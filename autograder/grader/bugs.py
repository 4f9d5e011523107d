"""Typical bugs, each declared once, next to the hidden checks that must catch it.

A lesson's check module (autograder/checks/l<lesson>.py) declares

    BUGS = {
        "stride_ignored": Bug({"conv2d_forward": STRIDE_IGNORED},
                              fails={"test_conv2d_forward": "stride ignored"}),
        ...
    }

where the source is written the way a student writes the bug, and `fails` names every graded test
cell the bug must fail, each with words its feedback must contain ("" when only the failure is
pinned). Everything else is derived from that one declaration:

- the sample submission (autograder.samples) and its exact score: every test cell's points from
  solutions/, minus those of the cells it fails; a change of points in solutions/ needs no edit here;
- the in-process table of tests/test_samples_inprocess.py: exactly the cells in `fails` fail, each
  message containing its words (also for bugs with `shipped=False`, which are not shipped samples);
- the sandboxed test autograder/tests/test_samples.py: the same score and words end to end.

"full" (the solutions) and "blank" (the release untouched: every test fails) are declared for every
lesson; a lesson declares them itself only to pin words, e.g. `Bug(base="release", fails_every=True,
fails={...})`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from autograder.grader.spec import Sample


@dataclass(frozen=True)
class Bug:
    replace: dict[str, str] = field(default_factory=dict)   # stub grade_id -> the student's cell source
    fails: dict[str, str] = field(default_factory=dict)     # test grade_id -> words its feedback must contain
    base: str = "solution"          # "solution": the other stubs solved; "release": the other stubs left as stubs
    fails_every: bool = False       # every graded test cell fails (the blank notebook)
    shipped: bool = True            # also a sample graded end to end in the sandbox; False: in process only

    def failing(self, points: dict[str, float]) -> set[str]:
        """The graded test cells this bug must fail, checked against the lesson's `points`."""
        if unknown := sorted(set(self.fails) - set(points)):
            raise ValueError(f"Bug.fails names no graded test cell: {unknown}")
        return set(points) if self.fails_every else set(self.fails)

    def sample(self, points: dict[str, float]) -> Sample:
        """The sample submission of this bug, its score derived from `points` (test grade_id -> points)."""
        failing = self.failing(points)
        return Sample(base=self.base, replace=dict(self.replace),
                      score=sum(value for grade_id, value in points.items() if grade_id not in failing),
                      messages={grade_id: words for grade_id, words in self.fails.items() if words})


def lesson_bugs(declared: dict[str, Bug]) -> dict[str, Bug]:
    """The lesson's declared BUGS with "full" and "blank" (declared for every lesson) in front."""
    return {"full": Bug(), "blank": Bug(base="release", fails_every=True), **declared}
