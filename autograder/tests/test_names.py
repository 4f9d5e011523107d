"""Student ids are data from the submissions folder: a real grading run of the fixture lesson prints
them without their control characters, keeps a formula out of grades.csv, and names ids that differ
only in their Unicode normalisation."""
from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.report import write_grades
from autograder.grader.spec import Sample
from autograder.samples import build_sample

FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
LESSON = "00_fixture"
NAMES = ["ansi\x1b[2K\rfake 3 of 3", "=HYPERLINK(\"x\")", unicodedata.normalize("NFC", "José"),
         unicodedata.normalize("NFD", "José")]


def test_ids_are_printed_safely_exported_as_text_and_lookalikes_are_named(tmp_path):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    for name in NAMES:
        path = submitted / name / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(COURSE, LESSON, Sample(base="solution")))
    lines: list[str] = []
    results = grade_all(submitted, work, 2, COURSE, log=lines.append)
    assert sorted(r["student"] for r in results) == sorted(NAMES)
    console = "\n".join(lines)
    assert "\x1b" not in console and "\r" not in console and "ansi\\x1b[2K\\x0dfake 3 of 3" in console
    assert any("look the same but differ in their Unicode normalisation" in line and "Jos" in line for line in lines)
    with open(write_grades(work), newline="") as file:
        students = [row["student"] for row in csv.DictReader(file)]
    assert "'=HYPERLINK(\"x\")" in students and not any(s.startswith("=") for s in students)
