"""Seconds to execute each instructor notebook (solutions filled in) from a fresh kernel, full size."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from autograder.coursedir import lessons, source_notebook

#: The whole solution set should execute within this many seconds on 2 cores (the course's goal).
GOAL_SECONDS = 180
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def run_notebook(lesson: str, cell_timeout: int = 600) -> dict:
    """{"seconds": wall time including kernel start, "status": "ok" or what went wrong}, run in a
    scratch directory with CONVLAB_FAST unset, i.e. as a student runs it, not the grader's small mode."""
    env = {name: value for name, value in os.environ.items() if name != "CONVLAB_FAST"}
    with tempfile.TemporaryDirectory(prefix=f"convlab-bench-{lesson}-") as scratch:
        client = NotebookClient(source_notebook(lesson, expanded=True), timeout=cell_timeout, kernel_name="python3",
                                resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        try:
            client.execute(env=env, stderr=subprocess.DEVNULL)  # the kernel's own log lines are noise here
            status = "ok"
        except CellExecutionError as error:
            status = "cell failed: " + ANSI_COLOUR.sub("", str(error)).strip().splitlines()[-1][:120]
        except (CellTimeoutError, DeadKernelError) as error:
            status = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120]}"
        return {"seconds": round(time.perf_counter() - start, 2), "status": status}


def measure() -> dict:
    per_lesson = {}
    for lesson in lessons():
        per_lesson[lesson] = run_notebook(lesson)
        print(f"  {lesson}: {per_lesson[lesson]['seconds']:.1f} s {per_lesson[lesson]['status']}", flush=True)
    return {"lessons": per_lesson, "total_seconds": round(sum(r["seconds"] for r in per_lesson.values()), 2),
            "goal_seconds": GOAL_SECONDS}
