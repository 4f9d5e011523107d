"""Where a course lives (instructor source, release, hidden checks), and what the grader prepares
once per lesson before grading any submission of it: the trusted release, points, hidden-check
cases with their expected values, and the probe requests the sandbox will be sent.

Paths are fields so that the grader's tests can point at a small fixture course.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from autograder.checks import check_module
from autograder.coursedir import COURSE, SOLUTIONS, grade_id, is_solution, lesson_source, lessons
from autograder.grader.reference import load_reference
from autograder.grader.spec import Case, Part
from autograder.grader.wire import encode_request

DEFAULT_CELL_TIMEOUT = 30.0        # seconds; a lesson's check module may set CELL_TIMEOUT
DEFAULT_NOTEBOOK_TIMEOUT = 180.0   # seconds for a whole submission; or NOTEBOOK_TIMEOUT


class CourseError(RuntimeError):
    """The course itself is not ready to grade a lesson (no release, checks out of step with the tests)."""


@dataclass(frozen=True)
class Course:
    solutions: Path = SOLUTIONS     # solutions/<lesson>.py: instructor source, points, reference
    release: Path = COURSE          # course/<lesson>/<lesson>.ipynb: the trusted student release
    checks: Path | None = None      # folder of l<lesson>.py check modules (None: autograder.checks)

    def lessons(self) -> list[str]:
        return lessons(self.solutions)

    def release_notebook(self, lesson: str) -> dict:
        path = self.release / lesson / f"{lesson}.ipynb"
        if not path.exists():
            raise CourseError(f"{path} is missing: run `make release`")
        return json.loads(path.read_text())

    def stub_sources(self, lesson: str) -> dict[str, str]:
        """Stub grade_id -> the stub cell's source as the release hands it out."""
        return {grade_id(cell): "".join(cell["source"])
                for cell in self.release_notebook(lesson)["cells"] if is_solution(cell)}

    def solution_sources(self, lesson: str) -> dict[str, str]:
        """Stub grade_id -> the instructor's solution cell source, reuse markers expanded (for building
        sample submissions)."""
        return lesson_source(lesson, self.solutions).solution_sources()

    def graded_points(self, lesson: str) -> dict[str, float]:
        """Every graded cell's points: the autograded tests, then the cells the instructor grades."""
        source = lesson_source(lesson, self.solutions)
        return {**source.test_points(), **source.manual_points()}

    def check_module(self, lesson: str) -> ModuleType:
        if self.checks is None:
            return check_module(lesson)
        spec = importlib.util.spec_from_file_location(f"convlab_checks_l{lesson}", self.checks / f"l{lesson}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def plan(self, lesson: str, run_seed: int | None = None, inputs_seed: int | None = None) -> LessonPlan:
        """Everything grading `lesson` needs, computed once in the grader's process. The hidden inputs
        are drawn from the lesson's own seed (mixed with `run_seed`, if given), or from `inputs_seed`
        alone (the in-process tests' own draw)."""
        checks = self.check_module(lesson)
        source = lesson_source(lesson, self.solutions)
        points = source.test_points()
        seed = inputs_seed if inputs_seed is not None else \
            lesson_seed(lesson) if run_seed is None else [lesson_seed(lesson), run_seed]
        rng = np.random.default_rng(seed)
        built = checks.parts(load_reference(lesson, self.solutions), rng)
        if twice := sorted(g for g, n in Counter(part.grade_id for part in built).items() if n > 1):
            raise CourseError(f"{lesson}: more than one hidden-check Part for the graded test cells {twice}")
        by_id = {part.grade_id: part for part in built}
        if missing := sorted(set(points) - set(by_id)):
            raise CourseError(f"{lesson}: graded test cells without a hidden-check Part: {missing}")
        if unknown := sorted(set(by_id) - set(points)):
            raise CourseError(f"{lesson}: hidden-check Parts for no graded test cell: {unknown}")
        order = list(points)
        if late := sorted(f"{part.grade_id} on {g}" for part in built for g in part.built_on
                          if g not in by_id or order.index(g) >= order.index(part.grade_id)):
            raise CourseError(f"{lesson}: a Part built on no earlier graded test cell: {late}")
        return LessonPlan(lesson, self.release_notebook(lesson), points, [by_id[g] for g in points],
                          manual=source.manual_points(),
                          cell_timeout=float(getattr(checks, "CELL_TIMEOUT", DEFAULT_CELL_TIMEOUT)),
                          notebook_timeout=float(getattr(checks, "NOTEBOOK_TIMEOUT", DEFAULT_NOTEBOOK_TIMEOUT)))


def lesson_seed(lesson: str) -> int:
    """The fixed seed of a lesson's hidden-check inputs: grading is reproducible run to run."""
    return int.from_bytes(hashlib.sha256(lesson.encode()).digest()[:4], "little")


@dataclass
class LessonPlan:
    lesson: str
    release: dict                   # the trusted release notebook (JSON)
    points: dict[str, float]        # graded test cell grade_id -> points, notebook order
    parts: list[Part]               # one per graded test cell, same order
    manual: dict[str, float] = field(default_factory=dict)   # manually graded cell grade_id -> points
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    cases: list[Case] = field(init=False)          # all cases, flat: probe k is cases[k]
    part_cases: list[list[int]] = field(init=False)  # part index -> its probe indices

    def __post_init__(self):
        self.cases, self.part_cases = [], []
        for part in self.parts:
            self.part_cases.append(list(range(len(self.cases), len(self.cases) + len(part.cases))))
            self.cases.extend(part.cases)

    @property
    def all_points(self) -> dict[str, float]:
        """Every graded cell's points: the autograded tests, then the cells left to the instructor."""
        return {**self.points, **self.manual}

    @property
    def max_score(self) -> float:
        return sum(self.all_points.values())

    def write_probes(self, folder: Path) -> None:
        """One JSON request per case, folder/<k>.json, readable by the sandbox user."""
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        for k, case in enumerate(self.cases):
            path = folder / f"{k}.json"
            path.write_text(encode_request(case.func, case.args, case.kwargs, case.timeout))
            path.chmod(0o644)
