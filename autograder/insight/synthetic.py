"""Synthetic classes with a known truth, for measuring the similarity check and timing the reports.

Authors are the instructor's solutions and the fairness corpus's independently written correct
solutions (autograder/fairness/): correct code of the same functions, alike by nature but not
copied. A copy is one author's cells disguised the way students disguise them: names changed,
top-level statements reordered, comments rewritten, spacing changed. A shipped sample
(autograder/samples/) is the instructor's solutions with one cell rewritten, so a copy of them.

    python -m autograder.insight.synthetic --work DIR --students 500   # a class to time the reports on

writes DIR/autograded/<student>/<lesson>/ as the grader does (result.json and the notebook as graded),
with made-up scores: it is for timing and for the similarity check, not for grading.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import io
import json
import keyword
import random
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from autograder.fairness import corpus
from autograder.grader.course import Course
from autograder.coursedir import grade_id, is_solution
from autograder.grader.reference import test_points
from autograder.samples import samples_of

_COMMENTS = ["# loop over the output positions", "# the shapes we need", "# accumulate the result",
             "# work on a copy", "# vectorised version", "# edge case", "# done"]


def _names_to_rename(code: str, keep: set[str]) -> list[str]:
    """Variables and parameters the code binds, except the graded functions' names and builtins."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in [*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg] if a is not None}
    return sorted(bound - keep - set(dir(builtins)) - set(keyword.kwlist) - {"self", "cls"})


def rename(code: str, keep: set[str], rng: random.Random) -> str:
    """Every bound name replaced by another one (not after a dot: attributes stay)."""
    targets = _names_to_rename(code, keep)
    fresh = {name: f"{rng.choice(['tmp', 'val', 'arr', 'res', 'q', 'z'])}{i}_{rng.randrange(100)}"
             for i, name in enumerate(targets)}
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    out = []
    for k, tok in enumerate(tokens):
        after_dot = k > 0 and tokens[k - 1].string == "."
        out.append(tok._replace(string=fresh[tok.string]) if tok.type == tokenize.NAME and tok.string in fresh
                   and not after_dot else tok)
    return tokenize.untokenize(out)


def reorder(code: str) -> str:
    """The cell's top-level statements in reverse order, imports first (a definition order change)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    segments = [ast.get_source_segment(code, node) for node in tree.body]
    imports = [s for s, n in zip(segments, tree.body) if isinstance(n, (ast.Import, ast.ImportFrom))]
    rest = [s for s, n in zip(segments, tree.body) if not isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n\n\n".join(imports + rest[::-1]) + "\n"


def recomment(code: str, rng: random.Random) -> str:
    """Comments dropped, others written before some lines, blank lines and spacing changed."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type != tokenize.COMMENT]
    lines = tokenize.untokenize([(t.type, t.string) for t in tokens]).splitlines()   # compact spacing
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("for ", "return ", "if ")) and rng.random() < 0.6:
            out.append(line[:len(line) - len(stripped)] + rng.choice(_COMMENTS))
        out.append(line.rstrip())
        if not stripped and rng.random() < 0.5:
            out.append("")
    return "\n".join(out) + "\n"


DISGUISES = {
    "renamed": lambda code, keep, rng: rename(code, keep, rng),
    "reordered": lambda code, keep, rng: reorder(code),
    "recommented": lambda code, keep, rng: recomment(code, rng),
    "renamed_reordered_recommented": lambda code, keep, rng: recomment(reorder(rename(code, keep, rng)), rng),
}


@dataclass
class Student:
    name: str
    lesson: str
    cells: dict[str, str]      # stub grade_id -> source (stubs not in it stay as released)
    origins: dict[str, str]    # stub grade_id -> who first wrote that cell (before any disguise)
    sizes: dict[str, int] = field(default_factory=dict)   # stub grade_id -> characters beyond the stub's

    def copied_from(self, other: Student, share: float = 0.5) -> bool:
        """The truth: at least `share` of one of the two's own code (the lines the stubs do not have, by
        length) is in cells of the same origin."""
        same = [gid for gid, who in self.origins.items() if other.origins.get(gid) == who]
        return any(sum(s.sizes[g] for g in same) >= share * sum(s.sizes.values()) > 0 for s in (self, other))


def own_sizes(cells: dict[str, str], stubs: dict[str, str]) -> dict[str, int]:
    """Characters of each cell's lines that its stub does not have (the docstring and signature are given)."""
    return {gid: sum(len(line.strip()) for line in source.splitlines()
                     if line.strip() not in {s.strip() for s in stubs.get(gid, "").splitlines()})
            for gid, source in cells.items()}


def authors(course: Course, lesson: str) -> dict[str, dict[str, str]]:
    """The instructor's solutions and the fairness corpus's variants of `lesson`: independent authors."""
    found = {"reference": course.solution_sources(lesson)}
    found.update({f"fair_{name}": sample.replace for name, sample in corpus(course).get(lesson, {}).items()})
    return found


def first_writers(written: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """author -> grade_id -> the first author with that exact cell: the corpus reuses some cells
    between variants (a variant may take another's convolution), which are then the same code."""
    first: dict[tuple[str, str], str] = {}
    return {author: {gid: first.setdefault((gid, src), author) for gid, src in cells.items()}
            for author, cells in written.items()}


def disguise(cells: dict[str, str], how: str, keep: set[str], rng: random.Random) -> dict[str, str]:
    return {gid: DISGUISES[how](source, keep, rng) for gid, source in cells.items()}


def measured_class(course: Course = Course(), seed: int = 0) -> list[Student]:
    """About 55 submissions over the lessons with a fairness corpus: per lesson every author, three
    disguised copies (of the reference and of two variants), one shipped sample and one blank."""
    rng = random.Random(seed)
    students: list[Student] = []
    for lesson in course.lessons():
        written = authors(course, lesson)
        if len(written) < 3:
            continue
        stubs = course.stub_sources(lesson)
        keep = set(stubs)
        origins = first_writers(written)
        for author, cells in written.items():
            students.append(Student(f"{lesson[:2]}_{author}", lesson, cells, origins[author], own_sizes(cells, stubs)))
        copied = list(written)[:3]
        for k, author in enumerate(copied):     # every disguise, in turn over the lessons
            how = list(DISGUISES)[(k + len(students)) % len(DISGUISES)]
            students.append(Student(f"{lesson[:2]}_{author}_{how}", lesson, disguise(written[author], how, keep, rng),
                                    origins[author], own_sizes(written[author], stubs)))
        buggy = next(s for s in samples_of(course, lesson).values() if s.base == "solution" and s.replace)
        cells = {**written["reference"], **buggy.replace}
        students.append(Student(f"{lesson[:2]}_sample", lesson, cells,
                                {**origins["reference"], **{gid: "sample" for gid in buggy.replace}},
                                own_sizes(cells, stubs)))
        students.append(Student(f"{lesson[:2]}_blank", lesson, {}, {}))
    return students


def timing_class(lesson: str, size: int, course: Course = Course(), seed: int = 0) -> list[Student]:
    """`size` submissions of `lesson`, each cell from a random author, disguised at random: a spread of
    similarities for timing (its truth is not kept)."""
    rng = random.Random(seed)
    written = list(authors(course, lesson).values())
    keep = set(course.stub_sources(lesson))
    students = []
    for n in range(size):
        cells = {}
        for gid in keep:
            source = rng.choice(written).get(gid)
            if source is not None and rng.random() < 0.9:
                cells[gid] = DISGUISES[rng.choice(list(DISGUISES))](source, keep, rng)
        students.append(Student(f"student{n:04d}", lesson, cells, {}))
    return students


def write_class(work: Path, students: list[Student], course: Course = Course(), seed: int = 0) -> None:
    """Each student's result.json and notebook as graded, in the grader's layout (scores made up)."""
    rng = random.Random(seed)
    releases, points = {}, {}
    for student in students:
        lesson = student.lesson
        if lesson not in releases:
            releases[lesson], points[lesson] = course.release_notebook(lesson), test_points(lesson, course.solutions)
        cells = []
        for n, cell in enumerate(releases[lesson]["cells"]):
            source, gid = "".join(cell["source"]), grade_id(cell)
            origin = "provided"
            if is_solution(cell):
                source, origin = (student.cells[gid], "student") if gid in student.cells else (source, "stub")
            elif cell["metadata"].get("nbgrader", {}).get("grade"):
                origin = "test"
            cells.append({"cell_type": cell["cell_type"], "id": cell.get("id", f"c{n}"), "source": source,
                          "metadata": {**cell["metadata"], "convlab_origin": origin},
                          **({"outputs": [], "execution_count": n + 1} if cell["cell_type"] == "code" else {})})
        parts = [{"grade_id": g, "points": p, "score": p if rng.random() < 0.7 else 0.0,
                  "message": ""} for g, p in points[lesson].items()]
        for part in parts:
            if not part["score"]:
                part["message"] = f"{part['grade_id']}(...) is wrong [case]. Likely bug: bug {rng.randrange(5)}"
        result = {"student": student.name, "lesson": lesson, "max_score": sum(points[lesson].values()),
                  "status": "graded", "notes": [], "console": "", "score": sum(p["score"] for p in parts),
                  "parts": parts}
        folder = work / "autograded" / student.name / lesson
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(result))
        (folder / f"{lesson}.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                            "nbformat_minor": 5}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--lesson", default="03_conv_backward")
    args = parser.parse_args(argv)
    started = time.monotonic()
    write_class(args.work, timing_class(args.lesson, args.students))
    print(f"{args.students} submissions of {args.lesson} written under {args.work} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
