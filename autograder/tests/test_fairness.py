"""A correct answer never loses a point: every variant of the fairness corpus (autograder/fairness/),
written from the notebooks' text alone, gets full marks from the hidden checks on many seeds, in
process and in the sandbox, and passes every visible test (no cell of its graded notebook raised).

`make test` grades in process on FAIRNESS_SEEDS seeds (4; 2 for lesson 04, which trains a CNN per
seed) and in the sandbox on FAIRNESS_SANDBOX_SEEDS seeds (1); `make fairness` sets both to 10.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.fairness import corpus, write_corpus
from autograder.fairness.stubs import filler
from autograder.grader.course import Course
from autograder.grader.inprocess import grade_in_process
from autograder.grader.reference import manual_points, test_points as points_of

ROOT = Path(__file__).resolve().parents[2]
CORPUS = corpus()
IN_PROCESS_SEEDS = int(os.environ.get("FAIRNESS_SEEDS", "4"))
SANDBOX_SEEDS = range(int(os.environ.get("FAIRNESS_SANDBOX_SEEDS", "1")))
VARIANTS = [(lesson, name) for lesson, variants in CORPUS.items() for name in variants]


def _full_marks(lesson: str) -> float:
    return sum(points_of(lesson).values())


def test_every_lesson_has_three_variants_that_write_every_stub():
    course = Course()
    for lesson in course.lessons():
        stubs = set(course.stub_sources(lesson)) - set(manual_points(lesson))   # written answers are graded by hand
        assert len(CORPUS[lesson]) >= 3, lesson
        for name, sample in CORPUS[lesson].items():
            assert set(sample.replace) == stubs, (lesson, name, stubs ^ set(sample.replace))


def test_no_variant_cell_keeps_a_stub_placeholder():
    left = [(lesson, name, gid) for lesson, variants in CORPUS.items() for name, sample in variants.items()
            for gid, source in sample.replace.items() if "YOUR CODE HERE" in source]
    assert left == []


def test_fill_wants_one_body_per_placeholder():
    fill = filler("04_train_cnn")          # the Conv2D stub has two: forward and backward
    assert "raise NotImplementedError" not in fill("Conv2D", "        return x\n", "        return dy\n")
    with pytest.raises(ValueError, match="2 placeholders, 1 bodies given"):
        fill("Conv2D", "        return x\n")


@pytest.mark.parametrize("lesson,name", VARIANTS)
def test_variant_gets_full_marks_in_process_on_every_seed(lesson, name):
    full = _full_marks(lesson)
    for seed in range(IN_PROCESS_SEEDS if lesson != "04_train_cnn" else max(1, IN_PROCESS_SEEDS // 2)):
        score, messages = grade_in_process(lesson, CORPUS[lesson][name], seed)
        assert score == full, (seed, messages)


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    """The whole corpus graded in the sandbox once per seed: {seed: work folder}."""
    base = tmp_path_factory.mktemp("fairness")
    write_corpus(base / "submitted")
    works = {}
    for seed in SANDBOX_SEEDS:
        work = base / f"work-{seed}"
        proc = subprocess.run([sys.executable, "-m", "autograder.grade", "autograde", "--submitted",
                               str(base / "submitted"), "--work", str(work), "--jobs", "2", "--seed", str(seed)],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        works[seed] = work
    return works


@pytest.mark.parametrize("lesson,name", VARIANTS)
def test_variant_gets_full_marks_in_the_sandbox_and_passes_the_visible_tests(sandboxed, lesson, name):
    for seed, work in sandboxed.items():
        folder = work / "autograded" / f"fair_{name}" / lesson
        result = json.loads((folder / "result.json").read_text())
        auto = [p for p in result["parts"] if not p.get("needs_manual_grade")]   # written answers: by hand
        lost = {p["grade_id"]: p["message"] for p in auto if p["score"] < p["points"]}
        assert (result["status"], result["score"], lost) == ("graded", sum(p["points"] for p in auto), {}), \
            (seed, result["notes"])
        notebook = json.loads((folder / f"{lesson}.ipynb").read_text())
        errors = [(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"), out["ename"], out["evalue"])
                  for cell in notebook["cells"] if cell["cell_type"] == "code"
                  for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        assert errors == [], (seed, errors)
