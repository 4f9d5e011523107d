"""Grading throughput on lesson 01: submissions per minute of ConvLab's sandboxed grader
(`python -m autograder.grade autograde --jobs <cores>`) next to plain serial `nbgrader autograde`,
measured one after the other on the same submissions (copies of lesson 01's shipped samples).

ConvLab's grader is also timed with one job, to show what the sandbox costs per submission, and
on a local Dask cluster with one and with two workers of one thread each (`--scheduler`), with
the scaling efficiency: the two workers' rate over twice the one worker's.
Both run with CONVLAB_FAST=1 and the same notebooks; nbgrader gets a throwaway course folder with
the lesson's source notebook, generate_assignment run beforehand (not timed). In the same run,
bench/startup.py measures each submission's fixed cost in its sandbox ("startup_seconds").
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder.coursedir import ROOT, source_notebook
from autograder.samples import lesson_samples, write_samples
from bench import startup

LESSON = "01_conv_forward"
COPIES = 2          # each sample is submitted this many times, by different students
ROUNDS = 3          # median over this many interleaved rounds
GOAL = 10.0         # ConvLab's rate / nbgrader's, on 2 cores (issue 22)
STARTUP_GOAL = 0.5  # seconds of fixed cost per lesson-01 submission in its sandbox (issue 22)


def _submit(folder: Path, copies: int) -> int:
    """folder/<sample>_<copy>/<lesson>/<lesson>.ipynb for every sample of the lesson; their count."""
    with tempfile.TemporaryDirectory() as tmp:
        written = write_samples(Path(tmp), {LESSON: lesson_samples(log=lambda line: None)[LESSON]})
        for path in written:
            for copy in range(copies):
                target = folder / f"{path.parts[-3]}_{copy}" / LESSON / path.name
                target.parent.mkdir(parents=True)
                shutil.copy(path, target)
        return len(written) * copies


def _run(argv: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


@contextlib.contextmanager
def _dask_workers(count: int):
    """A local Dask cluster (distributed.LocalCluster: a scheduler and `count` worker processes of one
    thread each, on 127.0.0.1); its address. The workers import the grader from this checkout."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:   # any free port: 8787 may be taken
        yield cluster.scheduler_address


def measure(copies: int = COPIES, jobs: int | None = None, rounds: int = ROUNDS) -> dict:
    jobs = jobs or os.cpu_count() or 1
    env = dict(os.environ, CONVLAB_FAST="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory(prefix="convlab-bench-grading-") as tmp:
        root = Path(tmp)
        count = _submit(root / "submitted", copies)
        course = root / "nbgrader"
        source = course / "source" / LESSON / f"{LESSON}.ipynb"
        source.parent.mkdir(parents=True)
        nbformat.write(source_notebook(LESSON), source)
        shutil.copy(ROOT / "autograder" / "nbgrader_config.py", course)
        shutil.copytree(root / "submitted", course / "submitted")
        nb_env = dict(env, CONVLAB_NBGRADER_ROOT=str(course))
        _run([sys.executable, "-m", "nbgrader", "generate_assignment", LESSON, "--force"], course, nb_env)

        def ours(n: int) -> float:
            return _run([sys.executable, "-m", "autograder.grade", "autograde", "--submitted",
                         str(root / "submitted"), "--work", str(root / "work"), "--jobs", str(n), "--regrade"],
                        ROOT, env)   # --regrade, as nbgrader's --force: every round grades every submission

        def theirs() -> float:
            return _run([sys.executable, "-m", "nbgrader", "autograde", LESSON, "--force"], course, nb_env)

        def on_dask(address: str) -> float:
            return _run([sys.executable, "-m", "autograder.grade", "autograde", "--submitted",
                         str(root / "submitted"), "--work", str(root / "work"), "--scheduler", address, "--regrade"],
                        ROOT, env)

        # interleaved rounds, medians: the machine's load drifts less between the runs than across runs
        with _dask_workers(1) as one, _dask_workers(2) as two:
            times = [(ours(jobs), ours(1), theirs(), on_dask(one), on_dask(two)) for _ in range(rounds)]
        sandboxed = sorted(json.loads(path.read_text())["seconds"]
                           for path in (root / "work" / "autograded").glob(f"*/{LESSON}/result.json"))
    parallel, serial, nbgrader, dask1, dask2 = (statistics.median(column) for column in zip(*times))
    rate, baseline = 60 * count / parallel, 60 * count / nbgrader
    started = startup.measure(repeats=rounds + 2)
    # the same run with every sandbox's start-up taken away: how far start-up alone can move the ratio
    no_startup = parallel - count * started[LESSON]["with"] / jobs
    return {"lesson": LESSON, "submissions": count, "jobs": jobs, "rounds": rounds,
            "convlab_seconds": round(parallel, 1), "nbgrader_seconds": round(nbgrader, 1),
            "convlab_per_minute": round(rate, 1), "convlab_serial_per_minute": round(60 * count / serial, 1),
            "dask_1_worker_per_minute": round(60 * count / dask1, 1),
            "dask_2_workers_per_minute": round(60 * count / dask2, 1),
            # 1.0: two workers grade twice as fast as one; on 2 cores shared with the instructor's
            # process and the scheduler it cannot reach that (docs/grading.md, Throughput)
            "dask_scaling_efficiency": round(dask1 / (2 * dask2), 2),
            "nbgrader_per_minute": round(baseline, 1),
            "ratio": round(rate / baseline, 2), "goal_ratio": GOAL, "met": rate / baseline >= GOAL,
            "ratio_if_startup_were_zero": round(nbgrader / no_startup, 2),
            # seconds each submission spent in its sandbox (start-up, cells, checks), the last round's
            "sandbox_seconds_per_submission": {"median": statistics.median(sandboxed), "max": sandboxed[-1]},
            # seconds from launching a sandbox to the end of the lesson's imports, without and with
            # what the grader prepares once (autograder/grader/startup.py)
            "startup_seconds": started, "startup_goal_seconds": STARTUP_GOAL}


if __name__ == "__main__":
    print(measure())
