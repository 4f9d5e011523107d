"""Read the grader's results for the class report and the similarity check: every
WORK/autograded/<student>/<lesson>/result.json with the executed notebook beside it, and what is
missing or unreadable, so that a report on partial results can say what it does not cover."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.coursedir import grade_id
from convlab.speed import NOT_TIMED_WHEN_GRADED

MAX_FILE = 20 << 20     # bytes: larger result or notebook files are reported, not read


@dataclass
class Submission:
    student: str
    lesson: str
    result: dict
    notebook: dict | None           # the notebook as graded; None when it is missing or unreadable

    def cells(self, origins: tuple[str, ...]) -> list[dict]:
        """The executed notebook's code cells whose grader-assigned origin is one of `origins`."""
        return [c for c in code_cells(self.notebook) if origin(c) in origins]


@dataclass
class ClassResults:
    lessons: list[str]                                  # the course's lessons, in order
    by_lesson: dict[str, list[Submission]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # files that could not be read, and why
    ungraded: dict[str, list[str]] = field(default_factory=dict)   # lesson -> submitted, no result yet

    def missing(self, lesson: str) -> list[str]:
        """Students with a result in another lesson but none in `lesson` (not submitted or not graded)."""
        everyone = {s.student for subs in self.by_lesson.values() for s in subs}
        return sorted(everyone - {s.student for s in self.by_lesson.get(lesson, [])})


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        if path.is_symlink() or not path.is_file():
            return None, "not a regular file"
        if path.stat().st_size > MAX_FILE:
            return None, f"larger than {MAX_FILE >> 20} MiB"
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    return (value, None) if isinstance(value, dict) else (None, "not a JSON object")


def _valid_result(result: dict) -> str | None:
    """Why `result` is not a result.json the grader writes, or None."""
    if not isinstance(result.get("parts"), list) or not all(isinstance(p, dict) for p in result["parts"]):
        return "no list of parts"
    for key, kind in (("student", str), ("lesson", str), ("status", str), ("score", (int, float)),
                      ("max_score", (int, float)), ("notes", list)):
        if not isinstance(result.get(key), kind):
            return f"no {key}"
    for part in result["parts"]:
        if not (isinstance(part.get("grade_id"), str) and isinstance(part.get("message"), str)
                and isinstance(part.get("score"), (int, float)) and isinstance(part.get("points"), (int, float))):
            return "a part without grade_id, score, points and message"
    return None


def load(work: Path, lessons: list[str], submitted: Path | None = None) -> ClassResults:
    """Every result under work/autograded, per lesson (students sorted); unreadable files become
    problems, never exceptions; with `submitted`, notebooks there without a result are listed."""
    found = ClassResults(lessons)
    for path in sorted((work / "autograded").glob("*/*/result.json")):
        where = path.relative_to(work)
        result, problem = _read_json(path)
        if result is not None:
            problem = _valid_result(result)
        if problem:
            found.problems.append(f"{where}: {problem}; left out of the report")
            continue
        notebook_path = path.parent / f"{result['lesson']}.ipynb"
        notebook, nb_problem = _read_json(notebook_path) if notebook_path.exists() else (None, None)
        if nb_problem:
            found.problems.append(f"{notebook_path.relative_to(work)}: {nb_problem}; its visible tests and code "
                                  "are left out")
        found.by_lesson.setdefault(result["lesson"], []).append(
            Submission(result["student"], result["lesson"], result, notebook))
    if submitted is not None and submitted.is_dir():
        for notebook in sorted(submitted.glob("*/*/*.ipynb")):
            student, lesson = notebook.parts[-3], notebook.parts[-2]
            if lesson in lessons and not (work / "autograded" / student / lesson / "result.json").exists():
                found.ungraded.setdefault(lesson, []).append(student)
    return found


def visible_test_outcomes(notebook: dict | None) -> dict[str, str]:
    """Graded test cell grade_id -> "pass", "fail" (it raised), "not run", or "untimed" (it raised
    nothing but left its speed rule to the hidden check: convlab.speed.expect_speed_rule), from the
    executed notebook: how the visible tests the student saw went."""
    outcomes = {}
    for cell in code_cells(notebook):
        if origin(cell) != "test":
            continue
        gid = grade_id(cell)
        if gid is None:
            continue
        if cell.get("execution_count") is None:
            outcomes[gid] = "not run"
        else:
            errors = [o for o in cell.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
            untimed = any(NOT_TIMED_WHEN_GRADED in _joined(o.get("text")) for o in cell.get("outputs", [])
                          if isinstance(o, dict) and o.get("output_type") == "stream")
            outcomes[gid] = "fail" if errors else "untimed" if untimed else "pass"
    return outcomes


def code_cells(notebook: dict | None) -> list[dict]:
    cells = (notebook or {}).get("cells")
    return [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"] if isinstance(cells, list) else []


def origin(cell: dict) -> str | None:
    """What the grader found the cell to be: student | stub | added | edited | provided | test."""
    meta = cell.get("metadata")
    return meta.get("convlab_origin") if isinstance(meta, dict) else None


def source(cell: dict) -> str:
    return _joined(cell.get("source"))


def _joined(text) -> str:
    """A notebook's multiline string (one string or a list of lines), "" when it is neither."""
    return text if isinstance(text, str) else "".join(text) if isinstance(text, list) else ""
