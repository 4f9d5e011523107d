"""A repeated or interrupted autograde run keeps the complete results of unchanged submissions,
regrades what changed (or everything with --regrade), and removes what a killed run left in /tmp."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.grader import resume
from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.spec import Sample
from autograder.samples import build_sample

FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
LESSON = "00_fixture"


def _submit(submitted: Path, student: str, sample: Sample) -> Path:
    path = submitted / student / LESSON / f"{LESSON}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_sample(COURSE, LESSON, sample))
    return path


def _result(work: Path, student: str) -> dict:
    return json.loads((work / "autograded" / student / LESSON / "result.json").read_text())


def test_a_rerun_keeps_unchanged_results_and_regrades_changed_ones(tmp_path):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    _submit(submitted, "ann", Sample(base="solution"))
    ben = _submit(submitted, "ben", Sample(base="release"))
    lines: list[str] = []
    grade_all(submitted, work, 2, COURSE, log=lines.append)
    first = {s: _result(work, s) for s in ("ann", "ben")}
    assert first["ben"]["score"] == 0 and first["ann"]["fingerprint"]["grader"] == resume.grader_version(COURSE, LESSON)
    ben.write_bytes(build_sample(COURSE, LESSON, Sample(base="solution")))     # ben finally submits his work
    lines.clear()
    results = {r["student"]: r for r in grade_all(submitted, work, 2, COURSE, log=lines.append)}
    assert _result(work, "ann") == first["ann"] and results["ann"] == first["ann"]       # kept, not rerun
    assert results["ben"]["score"] == 3 and _result(work, "ben")["score"] == 3
    assert any(line.startswith("1 result kept from earlier runs") for line in lines), lines
    written = (work / "autograded" / "ann" / LESSON / "result.json").stat().st_mtime_ns
    lines.clear()
    grade_all(submitted, work, 2, COURSE, log=lines.append, regrade=True)
    assert not any("kept from earlier runs" in line for line in lines), lines
    assert (work / "autograded" / "ann" / LESSON / "result.json").stat().st_mtime_ns != written   # graded again
    assert _result(work, "ann")["fingerprint"] == first["ann"]["fingerprint"]


def test_ctrl_c_while_a_result_is_printed_ends_the_running_sandboxes_at_once(tmp_path):
    """Ctrl-C lands wherever the main thread is: here while it prints ann's line, with ben's sandbox
    asleep (no CPU time, so only the 12 s wall-clock limit would end it). The run stops within a few
    seconds, keeps ann's result, and writes none for ben, whose next run grades him."""
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    _submit(submitted, "ann", Sample(base="solution"))
    _submit(submitted, "ben", Sample(replace={"add_arrays": "import time\ntime.sleep(600)\n"}))

    def log(line: str) -> None:
        if line.lstrip().startswith("ann "):
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grade_all(submitted, work, 2, COURSE, log=log)
    assert time.monotonic() - started < 8
    assert _result(work, "ann")["score"] == 3
    assert not (work / "autograded" / "ben").exists()
    assert {r["student"] for r in grade_all(submitted, work, 2, COURSE, log=lambda line: None)} == {"ann", "ben"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_the_command_line_stops_at_once_on_ctrl_c_or_kill(tmp_path, sig):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    _submit(submitted, "ann", Sample(base="solution"))
    _submit(submitted, "ben", Sample(replace={"add_arrays": "import time\ntime.sleep(600)\n"}))
    args = [sys.executable, "-m", "autograder.grade", "autograde", "--submitted", str(submitted), "--work", str(work),
            "--jobs", "2", "--seed", "fixed", "--solutions", str(COURSE.solutions), "--release", str(COURSE.release),
            "--checks", str(COURSE.checks)]
    proc = subprocess.Popen(args, cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if f"ann {LESSON}" in line:   # "[1/2 ...] ann 00_fixture 3/3  graded"
            break
    proc.send_signal(sig)
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: every result finished so far is in" in err, out + err
    assert time.monotonic() - signalled < 6
    assert _result(work, "ann")["score"] == 3 and not (work / "autograded" / "ben").exists()


def test_a_killed_runs_folder_is_removed_and_a_live_runs_is_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left, live, foreign = tmp_path / f"{resume.PREFIX}left", tmp_path / f"{resume.PREFIX}live", tmp_path / f"{resume.PREFIX}x"
    for folder in (left, live, foreign):
        (folder / "probes").mkdir(parents=True)
    (left / resume.OWNER).write_text(dead.stdout.strip())
    (live / resume.OWNER).write_text(str(os.getpid()))
    lines: list[str] = []
    assert resume.remove_leftovers(lines.append, tmp_path) == [left]
    assert not left.exists() and live.exists() and foreign.exists()      # no owner file: not ours to delete
    assert lines == [f"removed {left}, left by an interrupted grading run (process {dead.stdout.strip()} is gone)"]


def test_a_grading_folder_names_its_owner():
    with resume.grading_folder() as folder:
        assert folder.name.startswith(resume.PREFIX) and (folder / resume.OWNER).read_text() == str(os.getpid())
    assert not folder.exists()
