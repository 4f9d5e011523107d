"""Another student's work is never graded as yours: a lesson folder, a student folder or a notebook
that is a symbolic link gets a result of 0 (or a logged reason) that names the link and nothing
behind it, and the student it points at keeps their own grade."""
from __future__ import annotations

import os
from pathlib import Path

from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.spec import Sample
from autograder.samples import build_sample

FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
LESSON = "00_fixture"
SECRET = "secret-file-name-9c2e.ipynb"


def test_links_to_other_work_are_refused_without_showing_what_they_point_at(tmp_path):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    victim = submitted / "victim" / LESSON
    victim.mkdir(parents=True)
    (victim / f"{LESSON}.ipynb").write_bytes(build_sample(COURSE, LESSON, Sample(base="solution")))
    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / SECRET).write_text("{}")
    (outside / "deeper" / SECRET).write_text("{}")
    (submitted / "lesson_link").mkdir()
    (submitted / "lesson_link" / LESSON).symlink_to(victim)
    (submitted / "student_link").symlink_to(submitted / "victim")
    (submitted / "outside_link").mkdir()
    (submitted / "outside_link" / "notes").symlink_to(outside)
    (submitted / "notebook_link" / LESSON).mkdir(parents=True)
    (submitted / "notebook_link" / LESSON / f"{LESSON}.ipynb").symlink_to(victim / f"{LESSON}.ipynb")
    (submitted / ".hidden_student" / LESSON).mkdir(parents=True)
    lines: list[str] = []
    run = grade_all(submitted, work, 2, COURSE, log=lines.append)
    results = {r["student"]: r for r in run}
    assert results["victim"]["score"] == 3
    for attacker in ("lesson_link", "outside_link", "notebook_link"):
        result = results[attacker]
        assert result["score"] == 0 and result["status"] in ("skipped", "unreadable"), result
        text = " ".join(result["notes"]) + " ".join(p["message"] for p in result["parts"])
        assert "symbolic link" in text or "not a regular file" in text, text
        assert SECRET not in text and "victim" not in text, text
    assert "student_link" not in results
    assert any("student_link: student_link is a symbolic link" in line for line in lines), lines
    assert not any(SECRET in line for line in lines)
    assert any(".hidden_student: a hidden folder" in line for line in lines), lines    # named, not silent
    assert os.path.islink(submitted / "student_link")          # nothing was changed or followed
