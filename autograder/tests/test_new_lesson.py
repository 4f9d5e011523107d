"""A new lesson takes four hand-written files (docs/authoring.md, its opening table): its instructor
source, its check module (hidden checks and typical bugs), its fairness variants and its own tests.
This throwaway lesson, written into a temporary course, goes through what a course lesson goes
through: the release is built, samples are derived from its bugs (scores from its points), each bug
fails exactly its cells in process and scores the same in the sandbox, its three fairness variants
score full marks (in process here), and its own test file passes. Nothing else is written by hand:
no sample module, no table, no list of ids. (It shows no widget: the rule 'a widget' is checked on
the course's own lessons, whose browser test needs JupyterLab.)"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from autograder import build, grade
from autograder.grader.course import Course
from autograder.grader.inprocess import grade_in_process
from autograder.grader.spec import Sample
from autograder.samples import bugs_of, samples_of, write_samples

LESSON = "99_tiny"
ROOT = Path(__file__).resolve().parents[2]

_SOLUTION = '''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A throwaway lesson: $s = \\sum_i x_i^2$

# %% tags=["reference"]
import numpy as np

# %% nbgrader={"grade": false, "grade_id": "square", "locked": false, "schema_version": 3, "solution": true, "task": false}
def square(x):
    """Elementwise square: x (N,) -> (N,), same dtype."""
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_square", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert np.array_equal(square(np.array([1.0, -2.0])), [1.0, 4.0]), "square([1, -2]) should be [1, 4]"

# %% nbgrader={"grade": false, "grade_id": "sum_of_squares", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sum_of_squares(x):
    """s = sum_i x_i**2 of x (N,), using your square: a float."""
    ### BEGIN SOLUTION
    return float(np.sum(square(x)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sum_of_squares", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert sum_of_squares(np.array([1.0, 2.0])) == 5.0, "1 + 4 should be 5"
'''

_CHECKS = '''import numpy as np

from autograder.grader.bugs import Bug
from autograder.grader.spec import Case, Part, Tol

LESSON = "99_tiny"


def _mean_instead_of_sum(case, actual):
    (x,) = case.args
    return "mean instead of sum" if np.isclose(actual, np.mean(x * x)) else None


def parts(ref, rng):
    xs = [rng.standard_normal(n) for n in (3, 7)]
    return [Part("test_square", [Case("square", (x,), expected=ref.square(x), label=f"N={len(x)}") for x in xs]),
            Part("test_sum_of_squares", [Case("sum_of_squares", (x,), expected=ref.sum_of_squares(x),
                                              tol=Tol(ref.sum_of_squares(x), len(x)), label=f"N={len(x)}")
                                         for x in xs], diagnose=_mean_instead_of_sum)]


BUGS = {
    "mean_not_sum": Bug({"sum_of_squares": "def sum_of_squares(x):\\n    return float(np.mean(square(x)))\\n"},
                        fails={"test_sum_of_squares": "mean instead of sum"}),
    "doubled": Bug({"square": "def square(x):\\n    return 2 * x\\n"},
                   fails={"test_square": "far", "test_sum_of_squares": ""}),
}
'''

_FAIRNESS = '''LESSON = "99_tiny"
VARIANTS = {"power": {"square": "def square(x):\\n    return x ** 2\\n",
                      "sum_of_squares": "def sum_of_squares(x):\\n    return float(x @ x)\\n"},
            "ufuncs": {"square": "def square(x):\\n    return np.square(x)\\n",
                       "sum_of_squares": "def sum_of_squares(x):\\n    return float(np.square(x).sum())\\n"},
            "loop": {"square": "def square(x):\\n    return np.array([v * v for v in x], dtype=x.dtype)\\n",
                     "sum_of_squares": "def sum_of_squares(x):\\n    return float(sum(square(x)))\\n"}}
STYLES = {"power": "x ** 2 and a dot product", "ufuncs": "np.square and .sum()", "loop": "a Python loop"}
'''

_TESTS = '''from pathlib import Path

import numpy as np

from autograder.grader.reference import load_reference


def test_sum_of_squares_against_a_loop():
    ref = load_reference("99_tiny", Path(__file__).parents[1] / "solutions")
    x = np.random.default_rng(0).standard_normal(5)
    assert abs(ref.sum_of_squares(x) - sum(float(v) * float(v) for v in x)) < 1e-12
'''


def _write_lesson(root: Path) -> Course:
    files = {f"solutions/{LESSON}.py": _SOLUTION, f"checks/l{LESSON}.py": _CHECKS,
             f"fairness/l{LESSON}.py": _FAIRNESS, f"tests/test_l{LESSON}.py": _TESTS}
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    build.build_release(root / "course", solutions=root / "solutions")
    return Course(solutions=root / "solutions", release=root / "course", checks=root / "checks")


def test_a_lesson_of_four_files_is_built_checked_and_graded(tmp_path):
    course = _write_lesson(tmp_path)
    release = json.loads((tmp_path / "course" / LESSON / f"{LESSON}.ipynb").read_text())
    assert sum("raise NotImplementedError" in "".join(c["source"]) for c in release["cells"]) == 2

    samples = samples_of(course, LESSON)               # derived from BUGS and the points in solutions/
    assert {name: s.score for name, s in samples.items()} == {"full": 3, "blank": 0, "mean_not_sum": 1,
                                                                 "doubled": 0}
    for name, bug in bugs_of(course, LESSON).items():  # in process: exactly the declared cells fail
        score, messages = grade_in_process(LESSON, samples[name], course=course)
        assert (score, set(messages)) == (samples[name].score, bug.failing(course.graded_points(LESSON))), name
        assert all(words in messages[g] for g, words in bug.fails.items()), messages

    spec = importlib.util.spec_from_file_location("fair", tmp_path / "fairness" / f"l{LESSON}.py")
    fairness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fairness)
    for cells in fairness.VARIANTS.values():
        assert grade_in_process(LESSON, Sample(base="release", replace=cells), course=course) == (3.0, {})

    # in the sandbox, through the instructor's command line: the same scores
    write_samples(tmp_path / "submitted", {LESSON: samples}, course)
    folders = ["--solutions", str(tmp_path / "solutions"), "--release", str(tmp_path / "course"),
               "--checks", str(tmp_path / "checks")]
    assert grade.main(["autograde", "--submitted", str(tmp_path / "submitted"), "--work", str(tmp_path / "work"),
                       "--jobs", "2"] + folders) == 0
    for name, sample in samples.items():
        result = json.loads((tmp_path / "work" / "autograded" / f"sample_{name}" / LESSON / "result.json").read_text())
        assert result["score"] == sample.score, (name, result["parts"])

    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "tests")],
                         cwd=ROOT, capture_output=True, text=True)
    assert own.returncode == 0, own.stdout + own.stderr
