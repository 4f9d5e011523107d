"""The gradebook step: after grading, write every result into nbgrader's own gradebook, through
nbgrader's API (nbgrader.api.Gradebook), so that formgrader lists ConvLab's grades, the instructor
grades written answers there, and `nbgrader export` works.

    work/gradebook.db      nbgrader's gradebook (autograder/nbgrader_config.py points formgrader at it)
    work/source/<lesson>/  the instructor notebook, where formgrader looks for the course's assignments

Per lesson: an assignment with one notebook, a grade cell per graded cell (points from solutions/)
and a solution cell per stub. Per result: the student, the submission (its timestamp.txt), and per
graded cell the auto score, with ConvLab's messages as the auto comment of the stub they test.
Written answers get no auto score and `needs_manual_grade` until the instructor grades them; a
regrade updates the auto scores and keeps the instructor's manual scores and comments.

Lateness is nbgrader's: the submission's timestamp.txt against the assignment's due date in the
gradebook (formgrader's "Manage Assignments", or `nbgrader db assignment add L --duedate=...`),
and the penalty of nbgrader's late-submission plugin as the course config sets it (none by default).
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, Grade, InvalidEntry, MissingEntry, SubmittedAssignment
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning, SQLAlchemyError
from traitlets.config import Config, PyFileConfigLoader
from traitlets.utils.importstring import import_item

from autograder.coursedir import ROOT, grade_id, is_solution, source_notebook
from autograder.grader import report
from autograder.grader.course import Course

CONFIG = ROOT / "autograder" / "nbgrader_config.py"
COURSE_ID = "convlab"


def db_url(work: Path) -> str:
    return f"sqlite:///{Path(work).resolve() / 'gradebook.db'}"


def open_gradebook(work: Path) -> Gradebook:
    """nbgrader's gradebook of `work`, created when missing (nbgrader calls `alembic` by name to
    create it, so this Python's bin folder goes on PATH: a venv that is not activated has it too)."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return Gradebook(db_url(work), course_id=COURSE_ID)


def course_config(work: Path) -> Config:
    """The course's nbgrader config (autograder/nbgrader_config.py) with `work` as the course root."""
    saved = os.environ.get("CONVLAB_NBGRADER_ROOT")
    os.environ["CONVLAB_NBGRADER_ROOT"] = str(Path(work).resolve())
    try:
        return PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
    finally:
        if saved is None:
            os.environ.pop("CONVLAB_NBGRADER_ROOT")
        else:
            os.environ["CONVLAB_NBGRADER_ROOT"] = saved


def late_plugin(config: Config) -> LateSubmissionPlugin:
    """The late-submission plugin the config names (AssignLatePenalties.plugin_class), configured."""
    plugin = config.AssignLatePenalties.get("plugin_class", LateSubmissionPlugin)
    return (import_item(plugin) if isinstance(plugin, str) else plugin)(config=config)


@dataclass
class Written:
    """What the gradebook step did, for its one summary line."""
    submissions: int = 0                                # written by this run
    held: int = 0                                       # in the gradebook after it, earlier runs' too
    pending: int = 0                                    # cells awaiting a manual grade
    late: int = 0
    not_lessons: list[str] = field(default_factory=list)   # results of folders that are no lesson
    problems: list[str] = field(default_factory=list)      # unreadable timestamp.txt files

    def summary(self, work: Path) -> str:
        awaits = "awaits" if self.pending == 1 else "await"
        line = (f"gradebook: wrote {report.counted(self.submissions, 'submission')} ({report.counted(self.pending, 'cell')} "
                f"{awaits} manual grading in formgrader, {self.late} late) to {Path(work) / 'gradebook.db'}")
        if self.held != self.submissions:
            line += f", which holds {report.counted(self.held, 'submission')}"
        if self.not_lessons:
            line += f"; not in the gradebook (no lesson of this course): {', '.join(self.not_lessons)}"
        return "\n".join([line, *self.problems])


def _cells(course: Course, lesson: str) -> list[dict]:
    return course.release_notebook(lesson)["cells"]


def define_assignment(gb: Gradebook, course: Course, work: Path, lesson: str) -> None:
    """The lesson as an nbgrader assignment: notebook, grade cells, solution cells; and its source
    notebook in work/source/<lesson>/, where formgrader lists assignments from."""
    source = Path(work) / "source" / lesson / f"{lesson}.ipynb"
    source.parent.mkdir(parents=True, exist_ok=True)
    if course.solutions == Course().solutions:
        nbformat.write(source_notebook(lesson), source)
    else:   # a fixture course: its release stands for the source
        source.write_text(json.dumps(course.release_notebook(lesson)))
    gb.update_or_create_assignment(lesson)
    gb.update_or_create_notebook(lesson, lesson)
    points = course.graded_points(lesson)
    for cell in _cells(course, lesson):
        if (name := grade_id(cell)) in points:
            gb.update_or_create_grade_cell(name, lesson, lesson, max_score=points[name], cell_type=cell["cell_type"])
        if is_solution(cell):
            gb.update_or_create_solution_cell(name, lesson, lesson)


def _comments(course: Course, lesson: str, parts: list[dict]) -> dict[str, str]:
    """Stub grade_id -> the messages of the test cells after it (up to the next stub), one per line."""
    messages = {p["grade_id"]: p["message"] for p in parts if p["message"] and not p.get("needs_manual_grade")}
    out: dict[str, list[str]] = {}
    stub = None
    for cell in _cells(course, lesson):
        if is_solution(cell):
            stub = grade_id(cell)
        elif stub and grade_id(cell) in messages:
            out.setdefault(stub, []).append(f"{grade_id(cell)}: {messages[grade_id(cell)]}")
    return {name: "\n".join(lines) for name, lines in out.items()}


def timestamp(submitted: Path, student: str, lesson: str) -> str | None:
    """The submission time nbgrader collect wrote (timestamp.txt), in UTC, or None when there is no
    such file; ValueError, naming the file, when it holds no time nbgrader can read."""
    path = Path(submitted) / student / lesson / "timestamp.txt"
    if not path.is_file() or path.is_symlink():
        return None
    text = path.read_text(errors="replace").strip()[:100]
    try:
        return parse_utc(text).isoformat()
    except (ValueError, OverflowError):
        raise ValueError(f"{path} holds no time nbgrader can read ({text!r}): the submission is taken as on time") \
            from None


class GradebookError(RuntimeError):
    """The gradebook could not be written (locked, damaged, not writable); the message says which."""


def record(results: list[dict], submitted: Path, work: Path, course: Course = Course()) -> Written:
    """Write `results` into work/gradebook.db; add each result's lateness to its result.json."""
    try:
        return _record(results, submitted, work, course)
    except (OSError, SQLAlchemyError, InvalidEntry) as exc:
        raise GradebookError(f"the grades are in {Path(work) / 'autograded'}, but nbgrader's gradebook "
                             f"{Path(work) / 'gradebook.db'} could not be written ({type(exc).__name__}: "
                             f"{str(exc)[:300]}); close what holds it (formgrader's grading view) and run "
                             "`make autograde` again: it keeps the results and writes only the gradebook") from None


def _record(results: list[dict], submitted: Path, work: Path, course: Course) -> Written:
    written = Written()
    config, lessons = course_config(work), set(course.lessons())
    plugin = late_plugin(config)
    with open_gradebook(work) as gb:
        for lesson in sorted({r["lesson"] for r in results} & lessons):
            define_assignment(gb, course, work, lesson)
        for result in results:
            student, lesson = result["student"], result["lesson"]
            if lesson not in lessons:
                written.not_lessons.append(f"{student}/{lesson}")
                continue
            gb.update_or_create_student(student)
            try:
                when = timestamp(submitted, student, lesson)
            except ValueError as exc:
                when = None
                written.problems.append(str(exc))
            try:
                submission = gb.find_submission(lesson, student)
                submission.timestamp = parse_utc(when) if when else None
            except MissingEntry:
                with warnings.catch_warnings():   # nbgrader's add_submission flushes half-built rows (its own autograde warns alike)
                    warnings.simplefilter("ignore", SAWarning)
                    submission = gb.add_submission(lesson, student, **({"timestamp": when} if when else {}))
            notebook = gb.find_submission_notebook(lesson, lesson, student)
            for part in result["parts"]:
                grade = _grade(gb, notebook, part["grade_id"], lesson, student)
                manual = bool(part.get("needs_manual_grade"))
                grade.auto_score = None if manual else part["score"]
                grade.needs_manual_grade = manual and grade.manual_score is None
                written.pending += grade.needs_manual_grade
            comments = _comments(course, lesson, result["parts"])
            for comment in notebook.comments:
                comment.auto_comment = comments.get(comment.name)
            gb.db.commit()
            result["late"] = _lateness(submission, notebook, plugin, student)
            written.late += result["late"]["seconds_late"] > 0
            written.submissions += 1
            _rewrite(work, result)
        gb.db.commit()
        written.held = gb.db.query(SubmittedAssignment).count()
    return written


def _grade(gb: Gradebook, notebook, name: str, lesson: str, student: str) -> Grade:
    try:
        return gb.find_grade(name, lesson, lesson, student)
    except MissingEntry:   # a graded cell added to the lesson after this submission was first written
        grade = Grade(cell_id=gb.find_graded_cell(name, lesson, lesson).id, notebook=notebook)
        gb.db.add(grade)
        return grade


def _lateness(submission, notebook, plugin: LateSubmissionPlugin, student: str) -> dict:
    """nbgrader's AssignLatePenalties, on ConvLab's scores: the penalty the plugin gives, within [0, score]."""
    seconds = float(submission.total_seconds_late or 0)
    penalty = None
    if seconds > 0:
        penalty = plugin.late_submission_penalty(student, notebook.score, seconds)
        penalty = None if penalty is None else min(max(penalty, 0.0), notebook.score)
    notebook.late_submission_penalty = penalty
    due = submission.duedate
    return {"timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
            "due": due.isoformat() if due else None, "seconds_late": seconds, "penalty": penalty or 0.0}


def _rewrite(work: Path, result: dict) -> None:
    report.write_atomic(report.result_dir(work, result["student"], result["lesson"]) / "result.json",
                        json.dumps(result, indent=1))


def manual_grades(work: Path) -> dict[tuple[str, str], dict[str, dict]]:
    """(student, lesson) -> manually graded cell -> {"score", "comment", "needs_manual_grade"}, as the
    instructor left them in formgrader (empty when there is no gradebook yet)."""
    path = Path(work) / "gradebook.db"
    if not path.exists():
        return {}
    out: dict[tuple[str, str], dict[str, dict]] = {}
    with open_gradebook(work) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    comments = {c.name: c.manual_comment for c in notebook.comments}
                    cells = out.setdefault((submission.student.id, assignment.name), {})
                    for grade in notebook.grades:
                        if grade.auto_score is None:   # a manually graded cell
                            cells[grade.name] = {"score": grade.manual_score, "comment": comments.get(grade.name),
                                                 "needs_manual_grade": grade.needs_manual_grade}
    return out


def with_manual_grades(results: list[dict], work: Path) -> list[dict]:
    """`results` as the student and the LMS should see them: the instructor's manual grades from the
    gradebook in place of the pending written cells, `pending` the points still awaiting a manual
    grade, `total` the score less the late penalty."""
    manual = manual_grades(work)
    out = []
    for result in results:
        result = {**result, "parts": [dict(p) for p in result["parts"]]}
        graded = manual.get((result["student"], result["lesson"]), {})
        for part in result["parts"]:
            grade = graded.get(part["grade_id"])
            if part.get("needs_manual_grade") and grade and grade["score"] is not None:
                part.update(score=grade["score"], needs_manual_grade=False,
                            message=report.BY_INSTRUCTOR + (f": {grade['comment']}" if grade["comment"] else ""))
        result["score"] = sum(p["score"] for p in result["parts"])
        result["pending"] = sum(p["points"] for p in result["parts"] if p.get("needs_manual_grade"))
        result["total"] = result["score"] - result.get("late", {}).get("penalty", 0.0)
        out.append(result)
    return out
