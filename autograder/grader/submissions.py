"""Find submissions in nbgrader's layout and rebuild each from the trusted release.

What is not where nbgrader's layout puts it (a folder that is no lesson, a notebook directly in
the student folder, another lesson's notebook) still gets a result with score 0 and a message
saying what was found and what was expected, so that the student gets feedback and a CSV row.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder.coursedir import grade_id
from autograder.grader import report
from autograder.grader.course import LessonPlan
from autograder.grader.notebook import Cell, Unreadable, read_submission, reconstruct


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _notebooks_below(folder: Path) -> list[str]:
    """Notebooks in subfolders of `folder` (not hidden ones such as .ipynb_checkpoints), relative paths;
    symbolic links are not followed, so nothing outside the submitted tree is listed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if Path(top) != folder:
            found += [Path(top, f) for f in files if f.endswith(".ipynb") and not Path(top, f).is_symlink()]
    return sorted(str(p.relative_to(folder)) for p in found)[:5]


def _real(path: Path) -> bool:
    """A real folder or file of the submitted tree: a symbolic link may point at another student's
    work or at a folder outside the tree, and is never read."""
    return not path.is_symlink()


LINKED = ("{name} is a symbolic link, not a real {kind}: submissions are read only from real folders and files "
          "inside the submitted tree; it was not graded")


@dataclass
class Found:
    """One submission found under submitted/: to grade (problem None), or to give a result of 0 saying why."""
    student: str
    lesson: str                     # a lesson of the course, or what the student's folder was called
    path: Path
    status: str = "graded"          # "skipped" when it is not where nbgrader's layout puts it
    problem: str | None = None


def _guess_lesson(name: str, lessons: list[str]) -> str | None:
    """The lesson a misnamed folder or notebook stands for: the same name in another case or with
    other separators, a close spelling, or the same lesson number."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for lesson in lessons:
        if re.sub(r"[^a-z0-9]", "", lesson.lower()) == key:
            return lesson
    if close := difflib.get_close_matches(name, lessons, n=1, cutoff=0.75):
        return close[0]
    number = re.search(r"\d+", name)
    same = [lesson for lesson in lessons if number and int(lesson.split("_")[0]) == int(number.group())]
    return same[0] if len(same) == 1 else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_bytes()[:20 << 20]) if path.is_file() and not path.is_symlink() else {}
    except (ValueError, OSError, RecursionError):
        return {}


def discover(submitted: Path, lessons: list[str], log: Callable[[str], None] = print,
             signatures: dict[str, set[str]] | None = None) -> tuple[list[Found], list[str]]:
    """The submissions under nbgrader's layout submitted/<student>/<lesson>/<lesson>.ipynb, and what
    else was found: a folder that is no lesson or a notebook directly in the student folder becomes a
    Found with a problem (graded 0 with a message); what cannot be given to a student and lesson
    (a notebook directly in submitted/, an empty student folder) is returned in the second list."""
    signatures = signatures or {}
    found: list[Found] = []
    ignored: list[str] = []
    known = ", ".join(lessons)
    for entry in sorted(p for p in submitted.iterdir() if p.name.startswith(".") and p.is_dir()):
        ignored.append(f"skipped {entry}: a hidden folder (its name starts with a dot), so no student's; "
                       "rename it if it holds a submission")
    for entry in _visible(submitted):
        if not _real(entry):
            ignored.append(f"skipped {entry}: " + LINKED.format(name=entry.name, kind="student folder"))
        elif entry.is_file() and entry.suffix == ".ipynb":
            ignored.append(f"skipped {entry}: a notebook directly in {submitted.name}/, expected "
                           f"{submitted.name}/<student>/<lesson>/<lesson>.ipynb")
    for student in (p for p in _visible(submitted) if p.is_dir() and _real(p)):
        entries = _visible(student)
        links = [p for p in entries if not _real(p)]
        for link in links:
            name = link.name.removesuffix(".ipynb")
            found.append(Found(student.name, name if name in lessons else link.name, link, "skipped",
                               LINKED.format(name=f"{student.name}/{link.name}",
                                             kind="file" if link.suffix == ".ipynb" else "folder")))
        entries = [p for p in entries if _real(p)]
        folders = [p for p in entries if p.is_dir()]
        notebooks = [p for p in entries if p.is_file() and p.suffix == ".ipynb"]
        hint = f" ({student.name} is a lesson name: is the student folder missing?)" if student.name in lessons else ""
        if not folders and not notebooks and not links:
            others = f"no lesson folder and no notebook in it (found: {', '.join(p.name for p in entries[:5])})" \
                if entries else "the folder is empty"
            ignored.append(f"skipped {student}: {others}, nothing was submitted{hint}")
            continue
        mine = {p.name for p in folders if p.name in lessons}
        taken = set(mine)
        found += [Found(student.name, p.name, p / f"{p.name}.ipynb") for p in folders if p.name in lessons]
        for folder in (p for p in folders if p.name not in lessons):
            inside = sorted(p.name for p in folder.glob("*.ipynb")) or _notebooks_below(folder)
            what = f"found the folder {folder.name}/" + (f" with {', '.join(inside)}" if inside else " (no notebook in it)")
            guess = next((g for g in [*(_guess_lesson(Path(n).stem, lessons) for n in inside),
                                      _guess_lesson(folder.name, lessons)] if g), None)
            if guess and guess not in taken:
                taken.add(guess)
                found.append(Found(student.name, guess, folder, "skipped",
                                   f"{what}, expected the folder {guess}/ with {guess}.ipynb: the lesson folder "
                                   f"must be named exactly {guess}; nothing in {folder.name}/ was graded"))
            elif guess:
                found.append(Found(student.name, folder.name, folder, "skipped",
                                   f"{what}, which is not a lesson of this course; {student.name}'s {guess} "
                                   f"comes from {'the folder ' + guess + '/' if guess in mine else 'another folder'}"
                                   f": nothing in {folder.name}/ was graded"))
            else:
                found.append(Found(student.name, folder.name, folder, "skipped",
                                   f"{what}, which is not a lesson of this course (the lessons are {known}): "
                                   f"nothing in it was graded; expected {student.name}/<lesson>/<lesson>.ipynb"))
        for notebook in notebooks:
            guess = _guess_lesson(notebook.stem, lessons) or likely_lesson(_read_json(notebook), signatures)
            what = f"found {notebook.name} directly in the student folder {student.name}/{hint}"
            if guess and guess not in taken:
                taken.add(guess)
                found.append(Found(student.name, guess, notebook, "skipped",
                                   f"{what}, expected {student.name}/{guess}/{guess}.ipynb: put the notebook in a "
                                   f"folder named {guess}; it was not graded"))
            elif guess:
                ignored.append(f"skipped {notebook}: a notebook directly in the student folder; {student.name}'s "
                               f"{guess} comes from {student.name + '/' + guess + '/' if guess in mine else 'another folder'}")
            else:
                found.append(Found(student.name, notebook.name, notebook, "skipped",
                                   f"{what}, which is no lesson's notebook (the lessons are {known}): expected "
                                   f"{student.name}/<lesson>/<lesson>.ipynb; it was not graded"))
    for line in ignored:
        log(report.printable(line))
    return found, ignored


def _count_ids(nb: dict, ids: set[str]) -> int:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return len({grade_id(c) for c in cells if isinstance(c, dict)} & ids) if isinstance(cells, list) else 0


def likely_lesson(nb: dict, signatures: dict[str, set[str]], prefer: str | None = None) -> str | None:
    """The lesson whose release shares the most nbgrader grade_ids with `nb` (ties: `prefer`)."""
    counts = {lesson: _count_ids(nb, ids) for lesson, ids in signatures.items()}
    best = max(counts, key=lambda lesson: (counts[lesson], lesson == prefer), default=None)
    return best if best is not None and counts[best] > 0 else None


def _other_lesson(nb: dict, lesson: str, signatures: dict[str, set[str]]) -> str | None:
    """Why this is another lesson's notebook, or None if it is (most like) `lesson`'s."""
    best = likely_lesson(nb, signatures, prefer=lesson)
    if best is None or best == lesson:
        return None
    mine, theirs = _count_ids(nb, signatures.get(lesson, set())), _count_ids(nb, signatures[best])
    return (f"this is {best}'s notebook ({theirs} of its graded cells, {mine} of {lesson}'s), submitted as "
            f"{lesson}: submit {lesson}.ipynb in the folder {lesson}/ and {best}.ipynb in the folder {best}/")


def read_cells(plan: LessonPlan, path: Path, signatures: dict[str, set[str]] | None = None) -> list[Cell]:
    """The submission rebuilt from the trusted release (Unreadable when it cannot be graded)."""
    if not path.exists() and not path.is_symlink() and (deeper := _notebooks_below(path.parent)):
        raise Unreadable(f"no {path.name} in {plan.lesson}/; found {', '.join(deeper)} in a subfolder: "
                         f"put the notebook directly in {plan.lesson}/ as {plan.lesson}.ipynb")
    submission = read_submission(path, plan.lesson)
    if signatures and (problem := _other_lesson(submission, plan.lesson, signatures)):
        raise Unreadable(problem)
    return reconstruct(plan.release, submission, plan.lesson)
