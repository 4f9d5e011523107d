"""Grades as an LMS imports them: one row per student, one column per lesson.

    canvas   work/grades-canvas.csv: Canvas's gradebook CSV (Student, ID, SIS User ID, SIS Login ID,
             Section, then a column per lesson), its second row "Points Possible"
    moodle   work/grades-moodle.csv: Moodle's grade import CSV (Email address, ID number, Full name, then a
             column per lesson headed "<lesson> (out of N)"; Moodle takes the maximum from the grade item)

A lesson's value is its total: the autograded score plus the instructor's manual grades, less the
late penalty. The optional mapping file is a CSV with a `student` column (the submission folder
name) and the LMS identity columns: `name`, `id`, `sis_user_id`, `sis_login_id`, `section`
(Canvas) or `email`, `idnumber`, `name` (Moodle). Students graded but missing from the mapping keep
a row, with their folder name as the name and no LMS id, and are reported; students in the mapping without any
submission get a row with empty grades, and are reported too.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grader.report import counted, csv_safe

FORMATS = ("long", "canvas", "moodle")
IDENTITY = {"canvas": [("Student", "name"), ("ID", "id"), ("SIS User ID", "sis_user_id"),
                       ("SIS Login ID", "sis_login_id"), ("Section", "section")],
            "moodle": [("Email address", "email"), ("ID number", "idnumber"), ("Full name", "name")]}


class MappingError(ValueError):
    """The mapping file cannot be used; the message says why."""


@dataclass
class Export:
    path: Path
    missing: list[str] = field(default_factory=list)   # graded, not in the mapping
    unknown: list[str] = field(default_factory=list)   # in the mapping, nothing graded
    pending: list[str] = field(default_factory=list)   # "<student> <lesson>" with cells awaiting a manual grade

    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{counted(len(self.missing), 'graded student')} not in the mapping file (their rows "
                       f"carry the folder name and no LMS id; the LMS will not match them): {', '.join(self.missing)}")
        if self.unknown:
            out.append(f"{counted(len(self.unknown), 'student')} in the mapping file without a graded submission "
                       f"(their rows have empty grades): {', '.join(self.unknown)}")
        if self.pending:
            out.append(f"{counted(len(self.pending), 'notebook')} with written answers still to grade in formgrader "
                       f"(exported without those points): {', '.join(self.pending)}")
        return out


def read_mapping(path: Path) -> dict[str, dict[str, str]]:
    """student folder name -> its row of the mapping CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MappingError(f"cannot read the mapping file {path}: {exc}") from None
    if not rows or "student" not in rows[0]:
        raise MappingError(f"the mapping file {path} needs a header row with a 'student' column (the "
                           "submission folder name), then the LMS identity columns")
    mapping: dict[str, dict[str, str]] = {}
    for row in rows:
        student = (row.get("student") or "").strip()
        if student in mapping:
            raise MappingError(f"the mapping file {path} lists the student {student!r} twice")
        if student:
            mapping[student] = {k: (v or "").strip() for k, v in row.items() if k}
    return mapping


def export(rows: list[dict], work: Path, fmt: str, lessons: list[str],
           mapping: dict[str, dict[str, str]] | None = None) -> Export:
    """Write work/grades-<fmt>.csv from `rows` (results with manual grades folded in)."""
    path = Path(work) / f"grades-{fmt}.csv"
    rows = [r for r in rows if r["lesson"] in lessons]
    totals = {(r["student"], r["lesson"]): r.get("total", r["score"]) for r in rows}
    maxima = {r["lesson"]: r["max_score"] for r in rows}
    columns = [lesson for lesson in lessons if lesson in maxima]
    graded = sorted({r["student"] for r in rows})
    result = Export(path, pending=[f"{r['student']} {r['lesson']}" for r in rows if r.get("pending")])
    if mapping is not None:
        result.missing = [s for s in graded if s not in mapping]
        result.unknown = sorted(s for s in mapping if s not in graded)
    identity = IDENTITY[fmt]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        heads = columns if fmt == "canvas" else [f"{lesson} (out of {maxima[lesson]:g})" for lesson in columns]
        writer.writerow([head for head, _ in identity] + heads)
        if fmt == "canvas":
            writer.writerow(["    Points Possible"] + [""] * (len(identity) - 1) + [f"{maxima[c]:g}" for c in columns])
        for student in sorted(set(graded) | set(result.unknown)):
            known = (mapping or {}).get(student, {})
            ids = [known.get(key, "") for _, key in identity]
            ids = [student if key == "name" and not value else value for (_, key), value in zip(identity, ids)]
            scores = ["" if (student, c) not in totals else f"{totals[(student, c)]:g}" for c in columns]
            writer.writerow([csv_safe(value) for value in ids] + scores)
    return result
