"""What grading leaves in the work folder, all written by the grader's process (never by a sandbox):

    work/autograded/<student>/<lesson>/result.json       score, per-part points and messages, notes
    work/autograded/<student>/<lesson>/<lesson>.ipynb    the notebook as run, with text outputs
    work/feedback/<student>/<lesson>/<lesson>.html       score table, then the notebook as run (feedback.py)
    work/grades.csv                                      one row per student and lesson

Feedback is built from those two files only: it can show nothing of the checks or the references
beyond the messages, and it escapes everything the submission produced.
"""
from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import unicodedata
from pathlib import Path

from autograder.coursedir import KERNELSPEC
from autograder.grader import feedback
from autograder.grader.runner import FIGURE_CAP

BY_INSTRUCTOR = "graded by your instructor"   # a written answer's message, before and after it is graded


def result_dir(work: Path, student: str, lesson: str) -> Path:
    return work / "autograded" / student / lesson


def write_result(work: Path, result: dict, cells: list, ex) -> None:
    """result.json and, when the notebook ran, the executed notebook."""
    write_outcome(work, result, executed_notebook(cells, ex) if cells else None)


def write_outcome(work: Path, result: dict, notebook: dict | None) -> None:
    """result.json and the executed notebook (an executed_notebook, when it ran)."""
    folder = result_dir(work, result["student"], result["lesson"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if notebook is not None:
        write_atomic(folder / f"{result['lesson']}.ipynb", json.dumps(notebook, indent=1))
    write_atomic(folder / "result.json", json.dumps(result, indent=1))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def executed_notebook(cells: list, ex) -> dict:
    out, code_index = [], 0
    for n, cell in enumerate(cells):
        entry = {"cell_type": cell.cell_type, "id": cell.id or f"added-{n}",
                 "metadata": {**cell.metadata, "convlab_origin": cell.origin}, "source": cell.source}
        if cell.cell_type == "code":
            record = ex.outputs.get(code_index) if ex else None
            outputs = []
            if record and record["out"]:
                outputs.append({"output_type": "stream", "name": "stdout", "text": record["out"]})
            outputs += [{"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}
                        for png in (record or {}).get("figures", [])]
            if record and record["error"]:
                error = record["error"]
                outputs.append({"output_type": "error", "ename": error["ename"], "evalue": error["evalue"],
                                "traceback": error["traceback"].splitlines()})
            entry.update(outputs=outputs, execution_count=code_index + 1 if record else None)
            code_index += 1
        out.append(entry)
    return {"cells": out, "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
PNG_CAP = 2 << 20   # bytes of base64 per figure


def png_figures(figures) -> list[str]:
    """The figures a sandbox reported that are base64 PNGs of at most PNG_CAP: anything else (it is
    untrusted, and the feedback page puts it into an <img> data URL) is dropped."""
    if not isinstance(figures, list):
        return []
    return [f for f in figures[:FIGURE_CAP] if isinstance(f, str) and len(f) <= PNG_CAP and _BASE64.fullmatch(f)
            and base64.b64decode(f[:12]).startswith(b"\x89PNG")]


def results(work: Path) -> list[dict]:
    """Every result.json under work/autograded, sorted by student then lesson."""
    found = [json.loads(p.read_text()) for p in (work / "autograded").glob("*/*/result.json")]
    return sorted(found, key=lambda r: (r["student"], r["lesson"]))


def write_grades(work: Path, rows: list[dict] | None = None) -> Path:
    """work/grades.csv, one row per student and lesson: score (before any late penalty), max_score,
    pending (points awaiting a manual grade), seconds_late, penalty, total (score less penalty), then
    '<lesson>:<graded cell grade_id>' per part."""
    rows = results(work) if rows is None else rows
    columns: dict[str, None] = {}
    for result in sorted(rows, key=lambda r: r["lesson"]):
        columns.update((f"{result['lesson']}:{p['grade_id']}", None) for p in result["parts"])
    path = work / "grades.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "lesson", "score", "max_score", "pending", "seconds_late", "penalty", "total",
                         *columns])
        for result in rows:
            late = result.get("late") or {}
            earned = {f"{result['lesson']}:{p['grade_id']}": "" if p.get("needs_manual_grade") else _number(p["score"])
                      for p in result["parts"]}
            writer.writerow([csv_safe(result["student"]), result["lesson"], _number(result["score"]),
                             _number(result["max_score"]), _number(result.get("pending", 0.0)),
                             _number(late.get("seconds_late", 0.0)), _number(late.get("penalty", 0.0)),
                             _number(result.get("total", result["score"])), *(earned.get(c, "") for c in columns)])
    return path


def _number(value: float) -> str:
    return f"{value:g}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """"1 result", "2 results": a count for a console line."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def printable(text: str) -> str:
    """`text` for a console line: control characters (an ANSI escape, a carriage return) shown as \\x..
    escapes, so that a student id cannot rewrite the line that shows a score."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def csv_safe(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading =, +, -, @, tab or CR would start a formula
    (OWASP's CSV injection advice: prefix a quote)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def lookalike_ids(students: list[str]) -> list[list[str]]:
    """Groups of student ids that differ only in their Unicode normalisation ("José" in NFC and NFD):
    one student's two folders, or two students a spreadsheet cannot tell apart."""
    groups: dict[str, list[str]] = {}
    for student in sorted(set(students)):
        groups.setdefault(unicodedata.normalize("NFC", student), []).append(student)
    return [group for group in groups.values() if len(group) > 1]


def write_feedback(work: Path, rows: list[dict] | None = None) -> list[Path]:
    """One HTML page per graded notebook under work/feedback/<student>/<lesson>/<lesson>.html."""
    written = []
    for result in results(work) if rows is None else rows:
        student, lesson = result["student"], result["lesson"]
        executed = result_dir(work, student, lesson) / f"{lesson}.ipynb"
        nb = json.loads(executed.read_text()) if executed.exists() else {"cells": []}
        path = work / "feedback" / student / lesson / f"{lesson}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, feedback.render(result, nb))
        written.append(path)
    return written
