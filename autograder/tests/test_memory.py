"""One memory limit per sandbox (memcap.py), on both of its paths, and the sandbox's command line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grader import memcap
from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.sandbox import Limits, SandboxUnavailable, _options_through_pipe, detect_mode
from autograder.samples import build_sample
from autograder.grader.spec import Sample
from autograder.samples.adversarial import ADD, LESSON, MEMORY_ACROSS_PROCESSES

FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
try:
    detect_mode()
    SANDBOX = True
except SandboxUnavailable:
    SANDBOX = False
CGROUP = memcap._own_memory_cgroup() is not None


def _grade(tmp_path, limits, **sources):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    for name, source in sources.items():
        path = submitted / name / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(COURSE, LESSON, Sample(replace={"add_arrays": source})))
    return {r["student"]: r for r in grade_all(submitted, work, 2, COURSE, limits, log=lambda line: None)}


@pytest.mark.skipif(not SANDBOX, reason="no sandbox on this machine")
@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "sampled"])
def test_processes_together_are_held_to_one_limit_and_a_neighbour_is_unharmed(tmp_path, cgroup):
    if cgroup and not CGROUP:
        pytest.skip("this user cannot create a memory cgroup here: the sampled path is the one in use")
    results = _grade(tmp_path, Limits(memory_cgroup=cgroup), hoarder=MEMORY_ACROSS_PROCESSES, honest=ADD)
    hoarder, honest = results["hoarder"], results["honest"]
    assert hoarder["score"] == 2 and "it used more than 3 GiB of memory, all its processes together" in \
        "\n".join(hoarder["notes"]), hoarder["notes"]
    assert honest["score"] == 3, honest


def test_without_a_cgroup_the_sum_of_resident_memory_is_sampled():
    own = memcap.resident([os.getpid()])   # this pytest process, grown by the tests before this one
    assert own > 1 << 20
    cap = memcap.MemoryCap.start(own + (1 << 30), use_cgroup=False)
    assert cap.folder is None and cap.wrap(["true"]) == ["true"] and cap.how.startswith("sampled")
    assert not cap.over(lambda: [os.getpid()])
    assert memcap.MemoryCap(1 << 20).over(lambda: [os.getpid()])   # this process alone is over 1 MiB


@pytest.mark.skipif(not CGROUP, reason="this user cannot create a memory cgroup here")
def test_a_cgroup_caps_the_total_and_reports_the_kill():
    cap = memcap.MemoryCap.start(200 << 20)
    try:
        proc = subprocess.run(cap.wrap([sys.executable, "-c", "hoard = b'x' * (400 << 20)"]))
        assert proc.returncode == -9 and cap.oom_kills() == 1 and cap.over()
    finally:
        cap.remove()
    assert not cap.folder.exists()


@pytest.mark.skipif(not CGROUP, reason="this user cannot create a memory cgroup here")
def test_cgroups_of_a_run_that_is_gone_are_removed_at_the_next_start():
    parent, _ = memcap._own_memory_cgroup()
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = gone.pid                                    # a pid whose process has ended
    left = parent / f"{memcap.PREFIX}{dead}-1"
    left.mkdir()
    mine = memcap.MemoryCap.start(1 << 30)
    try:
        assert memcap.remove_leftovers(lambda pid: pid != dead, lambda line: None) == [left]
        assert not left.exists() and mine.folder.exists()
    finally:
        mine.remove()


def test_bwraps_options_reach_it_through_a_pipe_not_its_command_line():
    argv, fd = _options_through_pipe(["prlimit", "--", "bwrap", "--ro-bind", "/tmp/convlab-grade-x/jobs", "/job",
                                      "--", "python", "/job/runner.py"])
    try:
        assert argv == ["prlimit", "--", "bwrap", "--args", str(fd), "--", "python", "/job/runner.py"]
        assert os.read(fd, 1000) == b"--ro-bind\0/tmp/convlab-grade-x/jobs\0/job\0"
    finally:
        os.close(fd)


def test_the_pid_namespace_is_read_from_a_status_line_written_in_pieces():
    """bwrap writes its status line in several write()s: a sample taken between two of them must not
    lose the namespace (the sampled memory cap would then see no processes at all)."""
    from autograder.grader.sandbox import Sandbox
    box = object.__new__(Sandbox)
    box.namespace, box.status_read = None, b""
    box.status_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b'{ "child-pid": 12')
        assert box._pid_namespace() is None
        os.write(write_fd, b'3, "pid-namespace": 4026532182')
        assert box._pid_namespace() is None
        os.write(write_fd, b' }\n{ "exit-code": 0 }\n')
        assert box._pid_namespace() == 4026532182
    finally:
        os.close(box.status_fd)
        os.close(write_fd)
