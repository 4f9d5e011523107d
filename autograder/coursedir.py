"""The course's layout and what its instructor source says: the one owner of both, on the ground floor.

    solutions/<lesson>.py            the instructor source (jupytext percent, nbgrader metadata)
    course/<lesson>/<lesson>.ipynb   the student release, built from it by autograder.build

The builder (autograder.build), the grader (autograder.grader) and the tools above them read the
layout and the lessons through this module, which imports nothing from autograder: so neither the
builder nor the grader has to import the other (tests/test_layers.py keeps it so).

Each lesson's source is parsed once per version of the folder into a `LessonSource`: its cells as
written (what the release is built from) and as run (reuse markers expanded: what the hidden
reference, the sample submissions and the benchmark run), its stub and reference cells and the
points of its graded cells.

Reuse of an earlier lesson's solution (as d2l's `#@save`): a later lesson that asks the student to
bring a function written earlier does not repeat its solution. The solution regions of its cell
hold only a marker,

    def conv2d_forward(x, w, b, stride=1, pad=0):
        \"\"\"... the stub the student gets, written for this lesson ...\"\"\"
        ### BEGIN SOLUTION
        # reuse: 01_conv_forward
        ### END SOLUTION

`# reuse: <lesson> [<grade_id> ...]` (the grade_ids default to the cell's own). Run, the cell is
that lesson's solution cells, verbatim and in the order first named, each expanded in turn: the
earlier lesson's reference is the later one's. Built, the regions become the usual stubs, so the
release does not change. Only code cells, only earlier lessons, and nothing but markers, comments
and blank lines inside a reuse cell's solution regions; anything else is a LayoutError naming the
lesson and the cell.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"     # solutions/<lesson>.py: the instructor source
COURSE = ROOT / "course"           # course/<lesson>/<lesson>.ipynb: the student release
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"   # nbgrader's region markers
REUSE = re.compile(r"#\s*reuse:\s*(?P<lesson>\S+)(?P<cells>(?:\s+\S+)*)\s*$")
CELL_SEPARATOR = "\n\n\n"          # between the cells a reuse cell stands for: two blank lines, as between defs


class LayoutError(ValueError):
    """The instructor source breaks a rule of the layout (e.g. a reuse marker naming no earlier cell)."""


def lessons(solutions: Path | None = None) -> list[str]:
    """Lesson ids in course order, e.g. ['01_conv_forward', ...], of `solutions` (default: SOLUTIONS)."""
    return sorted(p.stem for p in (solutions or SOLUTIONS).glob("[0-9][0-9]_*.py"))


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def grade_id(cell: dict) -> str | None:
    """The cell's nbgrader grade_id, or None (also for malformed metadata). Takes a JSON cell or a
    jupytext/nbformat one."""
    value = _nbgrader(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def is_solution(cell: dict) -> bool:
    """Whether the cell is an nbgrader solution cell (False for malformed metadata)."""
    return bool(_nbgrader(cell).get("solution"))


def _region_lines(source: str) -> list[str]:
    """The lines inside the cell's solution regions (BEGIN/END SOLUTION lines excluded)."""
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            inside = True
        elif line.strip() == END_SOLUTION:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def without_markers(source: str) -> str:
    """A solution cell's source as a student would submit it: the BEGIN/END SOLUTION lines removed
    (in a markdown answer they would show as headings in formgrader)."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


def reuse_targets(cell: dict) -> list[str]:
    """The `lesson/grade_id` names a code cell's reuse markers stand for, in order first named, without
    repeats ([] for a cell that is not a reuse cell). LayoutError if its regions also hold code."""
    if cell.get("cell_type") != "code" or not is_solution(cell):
        return []
    region = _region_lines(cell["source"])
    targets: list[str] = []
    for line in region:
        if match := REUSE.fullmatch(line.strip()):
            for gid in match["cells"].split() or [grade_id(cell)]:
                if f"{match['lesson']}/{gid}" not in targets:
                    targets.append(f"{match['lesson']}/{gid}")
    if targets and (code := [line.strip() for line in region if line.strip() and not line.strip().startswith("#")]):
        raise LayoutError(f"cell {grade_id(cell)}: a reuse cell's solution regions hold only `# reuse:` markers "
                          f"and comments (its code is the earlier lesson's), but it also has {code[0]!r}")
    return targets


@dataclass(frozen=True)
class LessonSource:
    """One lesson's instructor source, parsed. Read-only: `notebook()` gives a copy to change."""
    lesson: str
    parsed: nbformat.NotebookNode   # solutions/<lesson>.py as jupytext reads it (never changed)
    cells: tuple        # its cells as run: each reuse cell's source is the cells it names, expanded

    @property
    def written(self) -> list:
        """The cells as in solutions/<lesson>.py, reuse markers and all."""
        return self.parsed.cells

    def notebook(self, expanded: bool = False) -> nbformat.NotebookNode:
        """The instructor notebook, with stable cell ids, no outputs and the course's kernelspec: as
        written (what `nbgrader generate_assignment` builds the release from) or `expanded` (to run)."""
        nb = copy.deepcopy(self.parsed)
        if expanded:
            nb.cells = copy.deepcopy(list(self.cells))
        for index, cell in enumerate(nb.cells):
            cell.metadata.pop("lines_to_next_cell", None)
            cell["id"] = grade_id(cell) or hashlib.sha1(f"{self.lesson}-{index}".encode()).hexdigest()[:8]
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
        return nb

    def solution_sources(self) -> dict[str, str]:
        """Stub grade_id -> the instructor's solution cell source, expanded (for sample submissions)."""
        return {grade_id(cell): cell.source for cell in self.cells if is_solution(cell)}

    def reference_cells(self) -> list:
        """The cells the hidden reference is made of, expanded, in notebook order: nbgrader solution
        cells, plus cells tagged `reference` (imports and instructor-provided helpers the solutions call)."""
        return [cell for cell in self.cells
                if cell.cell_type == "code" and (is_solution(cell) or "reference" in cell.metadata.get("tags", []))]

    def test_points(self) -> dict[str, float]:
        """grade_id -> points of every autograded test cell, in notebook order."""
        return self._points(manual=False)

    def manual_points(self) -> dict[str, float]:
        """grade_id -> points of every manually graded cell (nbgrader's written answers, `grade` and
        `solution`, and tasks): left to the instructor in formgrader, never scored by the grader."""
        return self._points(manual=True)

    def reuses(self) -> dict[str, list[str]]:
        """Reuse cell grade_id -> the `lesson/grade_id` cells it stands for."""
        return {grade_id(cell): targets for cell in self.written if (targets := reuse_targets(cell))}

    def _points(self, manual: bool) -> dict[str, float]:
        return {meta["grade_id"]: float(meta.get("points", 0)) for cell in self.written
                if ((meta := _nbgrader(cell)).get("grade") or meta.get("task"))
                and bool(meta.get("solution") or meta.get("task")) == manual}


def lesson_source(lesson: str, solutions: Path | None = None) -> LessonSource:
    """`solutions/<lesson>.py`, parsed and expanded; parsed again only after a file of the folder changed."""
    folder = (solutions or SOLUTIONS).resolve()
    if not (folder / f"{lesson}.py").is_file():
        raise LayoutError(f"{folder / lesson}.py is missing: the lessons are {', '.join(lessons(folder)) or 'none'}")
    return _parsed_folder(folder, _stamp(folder))[lesson]


def _stamp(folder: Path) -> tuple:
    """What changes when any lesson source of the folder does (the parse cache's key)."""
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("[0-9][0-9]_*.py")))


@functools.lru_cache(maxsize=8)
def _parsed_folder(folder: Path, stamp: tuple) -> _Lazy:
    return _Lazy(folder)


class _Lazy(dict):
    """lesson -> LessonSource of one folder version, each parsed and expanded on first use."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder, self.order = folder, lessons(folder)

    def __missing__(self, lesson: str) -> LessonSource:
        parsed = jupytext.read(self.folder / f"{lesson}.py")
        self[lesson] = LessonSource(lesson, parsed, tuple(self._expand(lesson, cell) for cell in parsed.cells))
        return self[lesson]

    def _expand(self, lesson: str, cell):
        try:
            targets = reuse_targets(cell)
        except LayoutError as exc:
            raise LayoutError(f"solutions/{lesson}.py, {exc}") from None
        if not targets:
            return cell
        sources = []
        for target in targets:
            earlier, gid = target.split("/", 1)
            where = f"solutions/{lesson}.py, cell {grade_id(cell)}: `# reuse: {earlier}"
            if earlier not in self.order:
                raise LayoutError(f"{where}` names no lesson (the lessons are {', '.join(self.order)})")
            if self.order.index(earlier) >= self.order.index(lesson):
                raise LayoutError(f"{where}` names no earlier lesson: a cell reuses only what was taught before it")
            solutions = self[earlier].solution_sources()
            if gid not in solutions:
                raise LayoutError(f"{where} {gid}`: {earlier} has no solution cell {gid} "
                                  f"(its solution cells are {', '.join(solutions)})")
            sources.append(solutions[gid])
        expanded = copy.deepcopy(cell)
        expanded.source = CELL_SEPARATOR.join(sources)
        return expanded


def source_notebook(lesson: str, solutions: Path | None = None, expanded: bool = False) -> nbformat.NotebookNode:
    """The instructor notebook (with solutions) for `lesson`: see LessonSource.notebook."""
    return lesson_source(lesson, solutions).notebook(expanded)
