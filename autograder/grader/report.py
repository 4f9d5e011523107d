"""What grading leaves in the work folder, all written by the grader's process (never by a sandbox):

    work/autograded/<student>/<lesson>/result.json       score, per-part points and messages, notes
    work/autograded/<student>/<lesson>/<lesson>.ipynb    the notebook as run, with text outputs
    work/feedback/<student>/<lesson>/<lesson>.html       summary table, then the code cells and outputs
    work/grades.csv                                      one row per student and lesson

Feedback is built from those two files only: it can show nothing of the checks or the references
beyond the messages, and it escapes everything the submission produced.
"""
from __future__ import annotations

import csv
import html
import json
import os
import shutil
import unicodedata
from pathlib import Path

from autograder.build import KERNELSPEC

ORIGIN_LABELS = {"student": "your code", "added": "your added cell", "edited": "your edit", "stub": "stub (not done)",
                 "test": "test (locked)", "provided": "provided"}


def result_dir(work: Path, student: str, lesson: str) -> Path:
    return work / "autograded" / student / lesson


def write_result(work: Path, result: dict, cells: list, ex) -> None:
    """result.json and, when the notebook ran, the executed notebook."""
    folder = result_dir(work, result["student"], result["lesson"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if cells:
        write_atomic(folder / f"{result['lesson']}.ipynb", json.dumps(executed_notebook(cells, ex), indent=1))
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
            if record and record["error"]:
                error = record["error"]
                outputs.append({"output_type": "error", "ename": error["ename"], "evalue": error["evalue"],
                                "traceback": error["traceback"].splitlines()})
            entry.update(outputs=outputs, execution_count=code_index + 1 if record else None)
            code_index += 1
        out.append(entry)
    return {"cells": out, "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


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


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


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
        write_atomic(path, feedback_html(result, nb))
        written.append(path)
    return written


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}
tr.pass td.score{color:#176117}tr.pending td.score{color:#555}tr.fail td.score{color:#a11}pre{white-space:pre-wrap;margin:0;padding:.5rem}
.cell{border:1px solid #ddd;margin:1rem 0}.label{background:#f4f4f4;padding:.2rem .5rem;font-size:.85rem}
.out{background:#fafafa;border-top:1px dashed #ddd}.err{background:#fff0f0;border-top:1px dashed #e99}"""


def feedback_html(result: dict, nb: dict) -> str:
    esc = html.escape
    rows = "".join(
        f'<tr class="{"pending" if p.get("needs_manual_grade") else "pass" if p["score"] == p["points"] else "fail"}">'
        f'<td>{esc(p["grade_id"])}</td>'
        f'<td class="score">{"–" if p.get("needs_manual_grade") else _number(p["score"])} / {_number(p["points"])}</td>'
        f'<td>{esc(p["message"]) or "passed"}</td></tr>' for p in result["parts"])
    pending = f" ({_number(result['pending'])} points to be graded by your instructor)" if result.get("pending") else ""
    late = result.get("late") or {}
    lateness = (f"<p>Submitted {esc(str(late['timestamp']))}, {_duration(late['seconds_late'])} after the due date "
                f"{esc(str(late['due']))}: late penalty {_number(late['penalty'])} points, total "
                f"{_number(result.get('total', result['score']))}.</p>" if late.get("seconds_late") else "")
    notes = "".join(f"<li>{esc(n)}</li>" for n in result["notes"])
    cells, code_number = [], 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        code_number += 1
        label = ORIGIN_LABELS.get(cell["metadata"].get("convlab_origin"), "")
        body = [f'<pre class="src">{esc(cell["source"])}</pre>']
        for output in cell["outputs"]:
            if output["output_type"] == "stream":
                body.append(f'<pre class="out">{esc(output["text"])}</pre>')
            else:
                text = "\n".join(output["traceback"]) or f'{output["ename"]}: {output["evalue"]}'
                body.append(f'<pre class="err">{esc(text)}</pre>')
        cells.append(f'<div class="cell"><div class="label">code cell {code_number} · {esc(label)}</div>'
                     f'{"".join(body)}</div>')
    console = (f'<h2>Other output of the notebook process</h2><pre class="out">{esc(result["console"])}</pre>'
               if result.get("console") else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(result['lesson'])}: feedback for {esc(result['student'])}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(result['lesson'])}: {_number(result['score'])} / {_number(result['max_score'])}{pending}</h1>{lateness}
<p>Feedback for <b>{esc(result['student'])}</b>. Each test earns its points when every hidden check of it passes.</p>
<table><tr><th>test</th><th>score</th><th>feedback</th></tr>{rows}</table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<h2>Your notebook as graded</h2>{''.join(cells)}{console}
</body></html>
"""
