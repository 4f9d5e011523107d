"""Read a submitted notebook defensively and rebuild the notebook to run from the trusted release.

Only these come from the submission: the sources of solution cells (matched by nbgrader grade_id),
edits of plain release cells without nbgrader metadata (matched by cell id), and code cells the
student added (kept after the nearest preceding cell that belongs to the release). Locked and test
cells, deleted or edited, and every cell's metadata (points included) come from the release.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.coursedir import grade_id, is_solution

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class Unreadable(Exception):
    """The submission cannot be graded; the message says why and what to do."""


@dataclass
class Cell:
    cell_type: str
    source: str
    origin: str            # student | stub | added | edited | provided | test
    metadata: dict = field(default_factory=dict)
    id: str = ""


def read_submission(path: Path, lesson: str) -> dict:
    """The submission's JSON, or Unreadable with a message a student can act on."""
    if not path.exists() and not path.is_symlink():
        others = sorted(p.name for p in path.parent.glob("*.ipynb")) if path.parent.is_dir() else []
        found = f" (found: {', '.join(others)})" if others else ""
        raise Unreadable(f"no {path.name} was submitted{found}: submit the lesson's notebook under its own name")
    if path.is_symlink() or not path.is_file():
        raise Unreadable(f"{path.name} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise Unreadable(f"{path.name} is empty (0 bytes): the file was not saved; save the notebook and submit again")
    if size > MAX_NOTEBOOK_BYTES:
        raise Unreadable(f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB limit: "
                         "clear all outputs (Edit > Clear Outputs of All Cells), save and submit again")
    with open(path, "rb") as file:
        raw = file.read(MAX_NOTEBOOK_BYTES + 1)
    try:
        nb = json.loads(raw.decode("utf-8-sig"))   # some Windows editors start the file with a byte-order mark
    except UnicodeDecodeError:
        raise Unreadable(f"{path.name} is not a text file (not UTF-8): it is not a notebook") from None
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): "
                         "the file is damaged; download the notebook again from JupyterLab") from None
    except RecursionError:
        raise Unreadable(f"{path.name} is not a notebook (JSON nested too deeply)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Unreadable(f"{path.name} is JSON but not a Jupyter notebook (it has no list of cells)")
    return nb


def reconstruct(release: dict, submission: dict, lesson: str) -> list[Cell]:
    """The cells to run: the release's, with the student's solution sources, edits and added cells."""
    rel_cells = release["cells"]
    by_grade_id = {grade_id(c): i for i, c in enumerate(rel_cells) if grade_id(c)}
    plain_by_id = {c.get("id"): i for i, c in enumerate(rel_cells) if not grade_id(c) and c.get("id")}
    sources: dict[int, str] = {}          # release index -> the student's source
    added: dict[int, list[str]] = {}      # release index (-1: before all) -> added code cells after it
    anchor, graded_matches = -1, 0
    for cell in submission["cells"]:
        if not isinstance(cell, dict):
            continue
        cell_type, source, gid = cell.get("cell_type"), _source(cell), grade_id(cell)
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
        if gid in by_grade_id and by_grade_id[gid] not in sources:
            anchor, graded_matches = by_grade_id[gid], graded_matches + 1
            if is_solution(rel_cells[anchor]) and cell_type == rel_cells[anchor]["cell_type"] and source is not None:
                sources[anchor] = source
            continue
        if not gid and cell_id in plain_by_id and plain_by_id[cell_id] not in sources:
            anchor = plain_by_id[cell_id]
            if rel_cells[anchor]["cell_type"] == "code" and cell_type == "code" and source is not None:
                sources[anchor] = source
            continue
        if cell_type == "code" and source and source.strip():
            added.setdefault(anchor, []).append(source)
    if graded_matches == 0:
        raise Unreadable(f"none of this notebook's graded cells belong to {lesson}: "
                         f"is it another lesson's notebook? Submit {lesson}.ipynb")
    cells = [Cell("code", s, "added") for s in added.get(-1, [])]
    for index, rel in enumerate(rel_cells):
        meta = rel.get("metadata", {})
        nbgrader = meta.get("nbgrader", {})
        if nbgrader.get("solution"):
            origin = "student" if index in sources and sources[index] != _source(rel) else "stub"
        elif nbgrader:
            origin = "test" if nbgrader.get("grade") else "provided"
        else:
            origin = "edited" if index in sources and sources[index] != _source(rel) else "provided"
        cells.append(Cell(rel["cell_type"], sources.get(index, _source(rel)), origin, meta, rel.get("id", "")))
        cells.extend(Cell("code", s, "added") for s in added.get(index, []))
    return cells


def _source(cell: dict) -> str | None:
    source = cell.get("source")
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return None
