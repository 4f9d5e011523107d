"""The gradebook step, lateness and the LMS export on results written here (no sandbox): nbgrader's
late-submission plugin as the config sets it, a regrade that never duplicates, mapping files."""
from __future__ import annotations

import csv
import json

import pytest
from nbgrader.api import Gradebook
from traitlets.config import Config

from autograder.grader import gradebook, lms
from autograder.grader.course import Course
from autograder.grader.gradebook import db_url

LESSON = "03_conv_backward"


def _result(student: str, earned: float = 1.0) -> dict:
    """A graded result of lesson 03 earning `earned` of each test's points, the written answer pending."""
    manual = {"written_rot180"}
    parts = [{"grade_id": g, "points": p, "score": 0.0 if g in manual else p * earned,
              "message": "" if g in manual or earned == 1 else "wrong", **({"needs_manual_grade": True} if g in manual else {})}
             for g, p in Course().graded_points(LESSON).items()]
    return {"student": student, "lesson": LESSON, "status": "graded", "notes": [], "console": "",
            "score": sum(p["score"] for p in parts), "max_score": sum(p["points"] for p in parts), "parts": parts}


def _write(work, results):
    for result in results:
        folder = work / "autograded" / result["student"] / LESSON
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(result))


@pytest.mark.parametrize("method", ["none", "zero"])
def test_late_submission_penalty_is_nbgraders_plugin_as_configured(tmp_path, monkeypatch, method):
    work, submitted = tmp_path / "work", tmp_path / "submitted"
    (submitted / "amy" / LESSON).mkdir(parents=True)
    (submitted / "amy" / LESSON / "timestamp.txt").write_text("2027-03-02 00:30:00.000000 UTC\n")
    (submitted / "ben" / LESSON).mkdir(parents=True)
    (submitted / "ben" / LESSON / "timestamp.txt").write_text("2027-03-01 12:00:00 UTC")
    config = Config()
    config.LateSubmissionPlugin.penalty_method = method
    monkeypatch.setattr(gradebook, "course_config", lambda work: config)
    results = [_result("amy"), _result("ben")]
    _write(work, results)
    gradebook.record(results, submitted, work)
    with Gradebook(db_url(work)) as gb:
        gb.update_or_create_assignment(LESSON, duedate="2027-03-02 00:00:00 UTC")
    written = gradebook.record(results, submitted, work)   # again, now with the due date: updates, no duplicate
    assert (written.submissions, written.late, written.pending) == (2, 1, 2)
    auto = results[0]["score"]
    assert results[0]["late"] == {"timestamp": "2027-03-02T00:30:00", "due": "2027-03-02T00:00:00",
                                  "seconds_late": 1800.0, "penalty": auto if method == "zero" else 0.0}
    assert results[1]["late"]["seconds_late"] == 0
    with Gradebook(db_url(work)) as gb:
        assert len(gb.find_assignment(LESSON).submissions) == 2
        amy = gb.find_submission_notebook(LESSON, LESSON, "amy")
        assert amy.late_submission_penalty == (auto if method == "zero" else None)
    assert json.loads((work / "autograded" / "amy" / LESSON / "result.json").read_text())["late"] == results[0]["late"]
    rows = gradebook.with_manual_grades(results, work)
    assert rows[0]["total"] == (0 if method == "zero" else auto) and rows[0]["pending"] == 2
    one = gradebook.record(results[1:], submitted, work)   # a --student run writes only its own
    assert one.summary(work) == (f"gradebook: wrote 1 submission (1 cell awaits manual grading in formgrader, 0 late) "
                                 f"to {work / 'gradebook.db'}, which holds 2 submissions")


def test_timestamps_are_read_as_nbgrader_does_and_a_broken_one_is_named(tmp_path):
    (tmp_path / "amy" / LESSON).mkdir(parents=True)
    path = tmp_path / "amy" / LESSON / "timestamp.txt"
    path.write_text("2027-03-02 01:30:00 CET")
    assert gradebook.timestamp(tmp_path, "amy", LESSON) == "2027-03-02T00:30:00"
    path.write_text("yesterday-ish")
    with pytest.raises(ValueError, match="holds no time nbgrader can read \\('yesterday-ish'\\)"):
        gradebook.timestamp(tmp_path, "amy", LESSON)
    assert gradebook.timestamp(tmp_path, "nobody", LESSON) is None


def test_moodle_export_and_what_a_mapping_file_can_get_wrong(tmp_path):
    rows = [dict(_result("amy"), total=14.0, pending=0.0), dict(_result("=cmd", 0.0), total=0.0, pending=2.0)]
    roster = tmp_path / "roster.csv"
    roster.write_text("student,email,idnumber,name\namy,amy@uni.example,A1,Amy Adams\ncarl,carl@uni.example,C3,Carl\n")
    exported = lms.export(rows, tmp_path, "moodle", Course().lessons(), lms.read_mapping(roster))
    with open(exported.path, newline="") as file:
        table = list(csv.reader(file))
    maximum = f"{rows[0]['max_score']:g}"
    assert table == [["Email address", "ID number", "Full name", f"{LESSON} (out of {maximum})"],
                     ["", "", "'=cmd", "0"], ["amy@uni.example", "A1", "Amy Adams", "14"],
                     ["carl@uni.example", "C3", "Carl", ""]]
    assert (exported.missing, exported.unknown, exported.pending) == (["=cmd"], ["carl"], [f"=cmd {LESSON}"])
    assert len(exported.problems()) == 3
    for text, problem in [("email\namy@x\n", "needs a header row with a 'student' column"),
                          ("student,email\namy,a@x\namy,b@x\n", "lists the student 'amy' twice"), ("", "header row")]:
        roster.write_text(text)
        with pytest.raises(lms.MappingError, match=problem):
            lms.read_mapping(roster)
    with pytest.raises(lms.MappingError, match="cannot read"):
        lms.read_mapping(tmp_path / "missing.csv")
