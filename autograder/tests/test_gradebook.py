"""The instructor's whole loop with nbgrader's own tools, on lesson 03: the release goes out through
a local nbgrader exchange, a student fetches, answers and submits, the instructor collects,
`autograde` grades into nbgrader's gradebook, formgrader (a Jupyter server started here) lists the
grades and takes a manual grade of the written answer, feedback shows it, and the Canvas export
and `nbgrader export` carry it. Each step is checked against the gradebook, read back with
nbgrader's API."""
from __future__ import annotations

import csv
import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.grader.course import Course
from autograder.grader.gradebook import CONFIG, db_url
from autograder.samples import build_sample, lesson_samples
from autograder.tests.jupyter import JupyterServer

ROOT = Path(__file__).resolve().parents[2]
LESSON = "03_conv_backward"
WRITTEN = "written_rot180"
BIN = Path(sys.executable).parent
ANSWER = "Going backwards each input collects from *every output* that used it <script>alert(1)</script>."


def _nbgrader(cwd: Path, env: dict, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _grade(env: dict, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "autograder.grade", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def _answer(notebook: Path) -> None:
    """What the student does in JupyterLab: every stub replaced by a correct answer, the question answered."""
    nb = json.loads(notebook.read_text())
    solutions = Course().solution_sources(LESSON)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["source"] = ANSWER if gid == WRITTEN else solutions[gid]
    notebook.write_text(json.dumps(nb))


def _gradebook_row(work: Path, student: str) -> dict:
    with Gradebook(db_url(work), course_id="convlab") as gb:
        submissions = [s for s in gb.find_assignment(LESSON).submissions if s.student.id == student]
        assert len(submissions) == 1, "one submission per student and lesson, also after a regrade"
        notebook = submissions[0].notebooks[0]
        return {"grades": {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades},
                "comments": {c.name: c.auto_comment for c in notebook.comments},
                "score": notebook.score, "max_score": notebook.max_score,
                "seconds_late": submissions[0].total_seconds_late, "ids": {g.name: g.id for g in notebook.grades},
                "comment_ids": {c.name: c.id for c in notebook.comments}}


def test_release_submit_autograde_manual_grade_feedback_export(tmp_path):
    work, student_home, exchange = tmp_path / "work", tmp_path / "home", tmp_path / "exchange"
    for folder in (work / "release" / LESSON, student_home, exchange):
        folder.mkdir(parents=True)
    exchange.chmod(0o777)
    env = dict(os.environ, CONVLAB_NBGRADER_ROOT=str(work), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    (work / "nbgrader_config.py").write_text(f"c = get_config()\nload_subconfig({str(CONFIG)!r})\n"
                                             f"c.Exchange.root = {str(exchange)!r}\n")
    student = getpass.getuser()   # nbgrader's exchange names the submission after the Unix user

    # release -> fetch -> answer -> submit -> collect, with nbgrader's own commands
    shutil.copy(ROOT / "course" / LESSON / f"{LESSON}.ipynb", work / "release" / LESSON)
    _nbgrader(work, env, "release_assignment", LESSON, "--course", "convlab")
    _nbgrader(student_home, env, "fetch_assignment", LESSON, "--course", "convlab", f"--Exchange.root={exchange}")
    _answer(student_home / LESSON / f"{LESSON}.ipynb")
    _nbgrader(student_home, env, "submit", LESSON, "--course", "convlab", f"--Exchange.root={exchange}")
    _nbgrader(work, env, "collect", LESSON, "--course", "convlab")
    assert (work / "submitted" / student / LESSON / "timestamp.txt").exists()
    # a second student, collected by hand (zip_collect's layout), who submitted the blank release
    blank = work / "submitted" / "bob" / LESSON / f"{LESSON}.ipynb"
    blank.parent.mkdir(parents=True)
    blank.write_bytes(build_sample(Course(), LESSON, lesson_samples(log=lambda line: None)[LESSON]["blank"]))
    # the due date lies before the submission: late, with no penalty by default
    with Gradebook(db_url(work), course_id="convlab") as gb:
        gb.update_or_create_assignment(LESSON, duedate="2000-01-01 00:00:00 UTC")

    # autograde writes nbgrader's gradebook
    autograde = ("autograde", "--submitted", str(work / "submitted"), "--work", str(work), "--jobs", "2",
                 "--seed", "fixed")
    first = _grade(env, *autograde).stdout
    assert "gradebook: wrote 2 submissions (2 cells await manual grading in formgrader, 1 late) to " in first
    points = Course().graded_points(LESSON)
    row = _gradebook_row(work, student)
    assert row["grades"][WRITTEN] == (None, None, True)
    assert {g: a for g, (a, _, _) in row["grades"].items() if g != WRITTEN} == \
        {g: p for g, p in points.items() if g != WRITTEN}
    assert row["score"] == sum(points.values()) - points[WRITTEN] and row["max_score"] == sum(points.values())
    assert row["seconds_late"] > 0
    bob = _gradebook_row(work, "bob")
    assert set(bob["grades"]) == set(points) and all(a == 0 for g, (a, _, _) in bob["grades"].items() if g != WRITTEN)
    assert "NotImplementedError" in bob["comments"]["conv2d_forward"] or "not implemented" in \
        bob["comments"]["conv2d_forward"].lower(), bob["comments"]
    result = json.loads((work / "autograded" / student / LESSON / "result.json").read_text())
    assert result["late"]["seconds_late"] == row["seconds_late"] and result["late"]["penalty"] == 0

    _grade(env, "feedback", "--work", str(work))
    page = (work / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
    assert "graded by your instructor" in page and "(2 points to be graded by your instructor)" in page
    assert "after the due date" in page
    assert 'href="#cell-test_rot180"' in page and 'id="cell-test_rot180"' in page   # the table links to the cell
    assert '<details class="convlab-test"><summary>locked test test_rot180 (1 / 1)' in page
    assert "collects from <em>every output</em> that used it &lt;script&gt;alert(1)&lt;/script&gt;." in page
    assert "<script>alert" not in page

    # formgrader lists the submissions with ConvLab's scores, and takes the manual grade
    formgrader = JupyterServer([sys.executable, "-m", "jupyter_server", f"--ServerApp.root_dir={work}", "--allow-root"],
                               work, env, ready="/formgrader/api/status")
    try:
        assignments = {a["name"]: a for a in formgrader.get("/formgrader/api/assignments")}
        assert LESSON in assignments and assignments[LESSON]["num_submissions"] == 2
        listed = {s["student"]: s for s in formgrader.get(f"/formgrader/api/submissions/{LESSON}")}
        assert listed[student]["score"] == row["score"] and listed[student]["needs_manual_grade"]
        assert listed["bob"]["score"] == 0 and listed[student]["max_score"] == row["max_score"]
        graded = formgrader.call("PUT", f"/formgrader/api/grade/{row['ids'][WRITTEN]}", {"manual_score": 1.5})
        assert graded["manual_score"] == 1.5 and not graded["needs_manual_grade"]
        formgrader.call("PUT", f"/formgrader/api/comment/{row['comment_ids'][WRITTEN]}",
                        {"manual_comment": "Right idea; say why the index runs backwards."})
    finally:
        formgrader.stop()
    assert _gradebook_row(work, student)["grades"][WRITTEN] == (None, 1.5, False)
    _grade(env, *autograde, "--regrade")   # a regrade updates the gradebook: no duplicate, the manual grade kept
    assert _gradebook_row(work, student)["grades"][WRITTEN] == (None, 1.5, False)
    assert _gradebook_row(work, "bob")["score"] == 0

    _grade(env, "feedback", "--work", str(work))
    page = (work / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
    assert "to be graded by your instructor" not in page
    assert "graded by your instructor: Right idea; say why the index runs backwards." in page
    total = sum(points.values()) - points[WRITTEN] + 1.5
    assert f"{LESSON}: {total:g} / {sum(points.values()):g}" in page

    # the Canvas export: a points row, the mapping's ids, and bob (not in the mapping) and ghost reported
    mapping = tmp_path / "roster.csv"
    mapping.write_text(f"student,name,id,sis_user_id,sis_login_id,section\n{student},\"Doe, Jane\",101,S101,jdoe,A\n"
                       "ghost,\"Ghost, G\",999,S999,ghost,A\n")
    canvas = _grade(env, "grades", "--work", str(work), "--format", "canvas", "--mapping", str(mapping), expect=1)
    assert "bob" in canvas.stderr and "ghost" in canvas.stderr
    with open(work / "grades-canvas.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0][:6] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", LESSON]
    assert rows[1] == ["    Points Possible", "", "", "", "", f"{sum(points.values()):g}"]
    assert sorted(rows[2:]) == sorted([["Doe, Jane", "101", "S101", "jdoe", "A", f"{total:g}"],
                                       ["bob", "", "", "", "", "0"], ["Ghost, G", "999", "S999", "ghost", "A", ""]])
    _grade(env, "grades", "--work", str(work))
    with open(work / "grades.csv", newline="") as file:
        long = {r["student"]: r for r in csv.DictReader(file)}
    assert float(long[student]["total"]) == total and float(long[student]["seconds_late"]) > 0
    assert float(long[student][f"{LESSON}:{WRITTEN}"]) == 1.5

    # nbgrader's own export reads the same gradebook, through the course config at the repository root
    exported = tmp_path / "nbgrader-export.csv"
    _nbgrader(ROOT, env, "export", f"--to={exported}")
    with open(exported, newline="") as file:
        by_student = {r["student_id"]: r for r in csv.DictReader(file)}
    assert float(by_student[student]["score"]) == total and float(by_student["bob"]["score"]) == 0
