"""A submission's fixed cost in the sandbox, apart from its work: seconds from launching a fresh
sandbox until the lesson's own imports have run (Python, numpy, IPython, the runner, then every
import line of the lesson's release notebook), through the grader's own path (engine.execute),
without and with what the grader now prepares once (autograder/grader/startup.py), interleaved.

"without" withholds the shared font list, so each sandbox scans the fonts itself as before; the
course package's bytecode, once written, cannot be withheld (it saves a few tens of ms).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from autograder.grader import engine, startup
from autograder.grader.course import Course
from autograder.grader.notebook import Cell
from autograder.grader.sandbox import RUNNER, Limits, claimed_slots, require_sandbox

LESSONS = ("01_conv_forward", "02_relu_pooling")   # one that does not plot, one that does
REPEATS = 5


def import_cell(lesson: str, course: Course = Course()) -> Cell:
    """One code cell holding every import line of the lesson's release notebook."""
    lines = [line.strip() for cell in course.release_notebook(lesson)["cells"] if cell["cell_type"] == "code"
             for line in "".join(cell["source"]).splitlines() if line.startswith(("import ", "from "))]
    return Cell("code", "\n".join(dict.fromkeys(lines)), "provided")


@contextlib.contextmanager
def _shared_font_list(on: bool):
    """startup.prepare as it is (on) or as if no font list could be built (off)."""
    prepare = startup.prepare
    if not on:
        startup.prepare = lambda mode: None
    try:
        yield
    finally:
        startup.prepare = prepare


def _once(cell: Cell, root: Path, slot: int, mode, shared: bool) -> float:
    """Seconds for one fresh sandbox to start and run `cell` (the lesson's imports), all of it."""
    plan = SimpleNamespace(cell_timeout=60.0, notebook_timeout=120.0, part_cases=[], cases=[])
    job = Path(tempfile.mkdtemp(dir=root))
    job.chmod(0o755)
    (job / "cells.json").write_text(json.dumps([cell.source]))
    shutil.copy(RUNNER, job / "runner.py")
    for name in ("cells.json", "runner.py"):
        (job / name).chmod(0o644)
    with _shared_font_list(shared):
        started = time.perf_counter()
        ex = engine.execute(plan, [cell], job, root, slot, Limits(), mode)
        seconds = time.perf_counter() - started
    if ex.notes or any(out["error"] for out in ex.outputs.values()):
        raise RuntimeError(f"the imports failed in the sandbox: {ex.notes} {ex.outputs}")
    shutil.rmtree(job, ignore_errors=True)
    return seconds


def measure(lessons=LESSONS, repeats: int = REPEATS) -> dict:
    """lesson -> {"without": median seconds, "with": median seconds} of start-up per submission."""
    mode = require_sandbox()
    startup.prepare(mode)   # built before timing (once per machine)
    times = {lesson: {"without": [], "with": []} for lesson in lessons}
    cells = {lesson: import_cell(lesson) for lesson in lessons}
    with claimed_slots(1, mode) as (slot,), tempfile.TemporaryDirectory(prefix="convlab-bench-startup-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        for _ in range(repeats):
            for lesson in lessons:
                for variant in ("without", "with"):
                    times[lesson][variant].append(_once(cells[lesson], root, slot, mode, variant == "with"))
    return {lesson: {variant: round(statistics.median(values), 3) for variant, values in runs.items()}
            for lesson, runs in times.items()}


if __name__ == "__main__":
    print(measure())
