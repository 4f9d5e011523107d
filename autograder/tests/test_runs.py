"""Runs where courses run: which sandbox mode the grader picks (or why none), what `make test` says
to a user who cannot install its system packages, and honest `autograde` runs: progress, a summary
line, a non-zero exit when anything was not graded, and a result with a message for every
submission that is not where nbgrader's layout puts it."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import coursedir, grade
from autograder.grader import engine, sandbox
from autograder.grader.course import Course
from autograder.grader.batch import StartWatch, _signatures
from autograder.grader.submissions import _other_lesson, discover
from autograder.grader.spec import Sample
from autograder.samples import build_sample

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures"
FIXTURE_COURSE = ["--solutions", str(FIXTURE / "solutions"), "--release", str(FIXTURE / "course"),
                  "--checks", str(FIXTURE / "checks")]
LESSONS = coursedir.lessons()


# -- sandbox mode -------------------------------------------------------------------------------

def test_root_gets_one_uid_per_worker():
    mode = sandbox.detect_mode(euid=0, which=lambda tool: f"/usr/bin/{tool}", probe=lambda: "never asked")
    assert mode.name == "uid" and "one unprivileged uid per worker (uids 60000-60001" in mode.describe(2)


def test_an_ordinary_user_gets_user_namespaces_when_bubblewrap_can_make_one():
    mode = sandbox.detect_mode(euid=1000, which=lambda tool: f"/usr/bin/{tool}", probe=lambda: None)
    assert mode == sandbox.Mode("userns", 1000)
    assert "unprivileged user namespace" in mode.describe() and "uid 1000, not root" in mode.describe()


def test_where_the_kernel_forbids_user_namespaces_the_grader_refuses_and_says_why():
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        sandbox.detect_mode(euid=1000, which=lambda tool: f"/usr/bin/{tool}",
                            probe=lambda: "bwrap: setting up uid map: Permission denied")
    message = str(refused.value)
    assert "as uid 1000: not root" in message and "setting up uid map: Permission denied" in message
    assert "sudo make autograde" in message and "never runs student code unsandboxed" in message
    assert "\n" not in message


def test_without_bubblewrap_no_mode_and_the_fix_is_named():
    for euid in (0, 1000):
        with pytest.raises(sandbox.SandboxUnavailable, match=r"`bwrap` is not installed.*sudo make system-deps"):
            sandbox.detect_mode(euid=euid, which=lambda tool: None if tool == "bwrap" else f"/usr/bin/{tool}")


def test_this_machine_gets_the_mode_of_its_user_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "autograder.grade", "sandbox"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith("sandbox: bubblewrap")
    assert ("one unprivileged uid per worker" in proc.stdout) == (os.geteuid() == 0)


def test_the_two_modes_isolate_with_the_same_namespaces_and_limits(tmp_path):
    uid = sandbox.command(3, tmp_path, tmp_path, 1, set(), 1.0, 10, sandbox.Limits(), sandbox.Mode("uid", 0))
    userns = sandbox.command(3, tmp_path, tmp_path, 1, set(), 1.0, 10, sandbox.Limits(), sandbox.Mode("userns", 1000),
                             status_fd=4)
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--new-session", "--clearenv", "--as=3221225472", "--fsize=67108864"):
        assert flag in uid and flag in userns, flag
    assert "setpriv" in uid and "--reuid=60001" in uid and "--unshare-user" not in uid
    assert "setpriv" not in userns and {"--unshare-user", "--disable-userns"} <= set(userns)
    # the process limit: outside for a uid of its own, inside the namespace for the grader's uid
    assert uid.index("--nproc=64") < uid.index("bwrap")
    assert userns.index("--nproc=64") > userns.index("bwrap") and userns[userns.index("--json-status-fd") + 1] == "4"


def test_user_namespace_slots_need_no_lock(tmp_path):
    with sandbox.claimed_slots(3, sandbox.Mode("userns", 1000)) as slots:
        assert slots == [0, 1, 2]


# -- make test for someone who cannot install the system packages -------------------------------

def _path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with everything of /usr/bin and /bin but `hidden`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for top in ("/usr/bin", "/bin"):
        for tool in os.listdir(top):
            if tool not in hidden and not os.path.lexists(folder / tool):
                (folder / tool).symlink_to(Path(top, tool))
    return str(folder)


def test_make_test_without_bubblewrap_stops_before_any_test_with_one_line(tmp_path):
    env = dict(os.environ, PATH=_path_without(tmp_path, "bwrap", "chromium"))
    proc = subprocess.run(["make", "--no-print-directory", "test", "IS_ROOT="], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and out.count("\n") == 1, out
    assert "bubblewrap chromium" in out and "run `sudo make system-deps`, then `make test` again" in out
    assert "pytest" not in out and "pip" not in out


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to act as another user")
def test_make_test_as_a_real_non_root_user_without_bubblewrap():
    base = Path(tempfile.mkdtemp(prefix="convlab-nobwrap-"))   # pytest's tmp_path is root's alone
    try:
        base.chmod(0o755)
        path = _path_without(base, "bwrap", "chromium")
        # the checkout may sit where that user cannot enter (CI's clone, a 0700 temp folder): a copy of
        # what make reads stands for it
        checkout = _makefile_copy(base / "checkout")
        proc = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"PATH={path}", "HOME=/tmp", "make",
                               "--no-print-directory", "-C", str(checkout), "test"], capture_output=True, text=True)
    finally:
        shutil.rmtree(base)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and out.count("\n") == 1 and "sudo make system-deps" in out, out


def _makefile_copy(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "requirements.txt", "requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_make_says_so_when_no_python_3_11_or_newer_is_found(tmp_path):
    copy = _makefile_copy(tmp_path)
    proc = subprocess.run(["make", "-s", "venv", "PYTHON_CANDIDATES=no-such-python3"], cwd=copy,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "no Python 3.11 or newer found (tried no-such-python3)" in proc.stdout
    proc = subprocess.run(["make", "-s", "venv", "PYTHON=/bin/false"], cwd=copy, capture_output=True, text=True)
    assert proc.returncode != 0 and "PYTHON=/bin/false is not Python 3.11 or newer" in proc.stdout
    assert not (copy / ".venv").exists()


def test_make_picks_a_python_of_at_least_3_11(tmp_path):
    proc = subprocess.run(["make", "-n", "venv"], cwd=_makefile_copy(tmp_path), capture_output=True, text=True)
    python = re.search(r"^(\S+) -m venv \.venv$", proc.stdout, re.M).group(1)
    version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True).stdout.split()
    assert tuple(map(int, version)) >= (3, 11)


# -- unknown lessons ----------------------------------------------------------------------------

def test_an_unknown_lesson_gets_one_line_naming_the_known_ones():
    proc = subprocess.run([sys.executable, "-m", "autograder.build", "release", "08_nope"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"unknown lesson 08_nope: the lessons are {', '.join(LESSONS)}\n"


# -- what autograde finds ------------------------------------------------------------------------

def _sample(lesson: str) -> bytes:
    return build_sample(Course(), lesson, Sample(base="solution"))


def test_a_notebook_of_another_lesson_is_named_as_such():
    signatures = _signatures(Course())
    lesson01 = json.loads(_sample("01_conv_forward"))
    problem = _other_lesson(lesson01, "03_conv_backward", signatures)
    assert problem.startswith("this is 01_conv_forward's notebook (10 of its graded cells, 2 of 03_conv_backward's)")
    assert "submit 03_conv_backward.ipynb in the folder 03_conv_backward/" in problem
    for lesson in LESSONS:   # each lesson's own notebook is its own, overlaps with earlier lessons or not
        assert _other_lesson(json.loads(_sample(lesson)), lesson, signatures) is None, lesson


def test_what_is_not_in_nbgrader_layout_still_gets_a_result_that_says_what_was_expected(tmp_path):
    submitted = tmp_path / "submitted"
    write = lambda rel, data: (submitted / rel).parent.mkdir(parents=True, exist_ok=True) or \
        (submitted / rel).write_bytes(data)
    write("alice/01_conv_forward.ipynb", _sample("01_conv_forward"))            # wrong level, by its name
    write("alice/homework.ipynb", _sample("02_relu_pooling"))                   # wrong level, by its cells
    write("bob/lesson5/05_tcn.ipynb", _sample("05_tcn"))                        # misnamed lesson folder
    write("bob/scratch/notes.ipynb", b"{}")                                     # no lesson at all
    write("stray.ipynb", _sample("01_conv_forward"))                            # not in a student folder
    (submitted / "carol").mkdir()                                               # nothing submitted
    write("dave/01_conv_forward/01_conv_forward.ipynb", _sample("01_conv_forward"))
    write("dave/01_conv_forward.ipynb", _sample("01_conv_forward"))             # a stray copy beside it
    found, ignored = discover(submitted, LESSONS, lambda line: None, _signatures(Course()))
    by = {(f.student, f.lesson): f for f in found}
    assert set(by) == {("alice", "01_conv_forward"), ("alice", "02_relu_pooling"), ("bob", "05_tcn"),
                       ("bob", "scratch"), ("dave", "01_conv_forward")}
    assert by["alice", "01_conv_forward"].problem == (
        "found 01_conv_forward.ipynb directly in the student folder alice/, expected "
        "alice/01_conv_forward/01_conv_forward.ipynb: put the notebook in a folder named 01_conv_forward; "
        "it was not graded")
    assert by["alice", "02_relu_pooling"].problem.startswith("found homework.ipynb directly in the student folder")
    assert by["bob", "05_tcn"].problem.startswith(
        "found the folder lesson5/ with 05_tcn.ipynb, expected the folder 05_tcn/ with 05_tcn.ipynb")
    assert "which is not a lesson of this course (the lessons are 01_conv_forward," in by["bob", "scratch"].problem
    assert by["dave", "01_conv_forward"].problem is None
    assert [f.status for f in found if f.problem] == ["skipped"] * 4
    assert len(ignored) == 3 and any("stray.ipynb: a notebook directly in submitted/" in line for line in ignored)
    assert any("carol: the folder is empty, nothing was submitted" in line for line in ignored)
    assert any("dave's 01_conv_forward comes from dave/01_conv_forward/" in line for line in ignored)


def test_autograde_gives_every_misplaced_submission_a_zero_a_message_and_a_csv_row(tmp_path, capsys):
    submitted, work = tmp_path / "submitted", tmp_path / "work"
    for rel, lesson in (("alice/01_conv_forward.ipynb", "01_conv_forward"),
                        ("bob/03_conv_backward/03_conv_backward.ipynb", "01_conv_forward"),
                        ("carol/lesson2/02_relu_pooling.ipynb", "02_relu_pooling")):
        (submitted / rel).parent.mkdir(parents=True)
        (submitted / rel).write_bytes(_sample(lesson))
    (submitted / "dave").mkdir()
    assert grade.main(["autograde", "--submitted", str(submitted), "--work", str(work), "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-2].startswith("summary: 0 graded, 1 unreadable, 3 skipped, 0 grader faults")
    assert out.splitlines()[-1].startswith("gradebook: wrote 3 submissions ")   # each with its score 0 and message
    results = {(r["student"], r["lesson"]): r for r in
               (json.loads(p.read_text()) for p in (work / "autograded").glob("*/*/result.json"))}
    assert {k: (r["status"], r["score"]) for k, r in results.items()} == {
        ("alice", "01_conv_forward"): ("skipped", 0.0), ("bob", "03_conv_backward"): ("unreadable", 0.0),
        ("carol", "02_relu_pooling"): ("skipped", 0.0)}
    bob = results["bob", "03_conv_backward"]   # 15 autograded points and a written answer of 2
    assert bob["max_score"] == 17 and "this is 01_conv_forward's notebook" in bob["parts"][0]["message"]
    assert "expected alice/01_conv_forward/01_conv_forward.ipynb" in results["alice", "01_conv_forward"]["notes"][0]
    assert grade.main(["feedback", "--work", str(work)]) == 0 and grade.main(["grades", "--work", str(work)]) == 0
    assert "expected the folder 02_relu_pooling/" in (work / "feedback/carol/02_relu_pooling/02_relu_pooling.html").read_text()
    with open(work / "grades.csv", newline="") as file:
        rows = [(r["student"], r["lesson"], r["score"]) for r in csv.DictReader(file)]
    assert rows == [("alice", "01_conv_forward", "0"), ("bob", "03_conv_backward", "0"),
                    ("carol", "02_relu_pooling", "0")]


def test_a_clean_run_shows_progress_and_ends_with_a_summary_and_exit_0(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    fixture = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
    for student in ("ann", "ben"):
        path = submitted / student / "00_fixture" / "00_fixture.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(fixture, "00_fixture", Sample(base="solution")))
    args = ["autograde", "--submitted", str(submitted), "--work", str(tmp_path / "work"), "--jobs", "2"]
    assert grade.main(args + FIXTURE_COURSE) == 0
    lines = capsys.readouterr().out.splitlines()
    seed = re.fullmatch(r"hidden-check inputs: seed (\d+) \(`--seed \1` reproduces the grades this run gives\)", lines[0])
    assert seed, lines
    assert lines[1].startswith("sandbox: bubblewrap")
    assert re.fullmatch(r"\[1/2 \d\d:\d\d elapsed, \d\d:\d\d left\] +\w+ 00_fixture +3/3 +graded", lines[2]), lines
    assert re.fullmatch(r"\[2/2 \d\d:\d\d elapsed, 00:00 left\] +\w+ 00_fixture +3/3 +graded", lines[3]), lines
    assert lines[4].startswith("summary: 2 graded, 0 unreadable, 0 skipped, 0 grader faults (2 results in ")
    result = json.loads((tmp_path / "work" / "autograded" / "ann" / "00_fixture" / "result.json").read_text())
    assert result["seed"] == int(seed.group(1))             # recorded, so the grade can be reproduced
    # an unreadable file: still a result, but the run says it is not complete
    (submitted / "ben" / "00_fixture" / "00_fixture.ipynb").write_bytes(b"")
    assert grade.main(args + FIXTURE_COURSE) == 1
    assert "summary: 1 graded, 1 unreadable, 0 skipped, 0 grader faults" in capsys.readouterr().out


@pytest.mark.parametrize("make", ["missing", "empty", "only_hidden"])
def test_no_submissions_is_an_error_that_says_so(tmp_path, capsys, make):
    submitted = tmp_path / "submitted"
    if make != "missing":
        submitted.mkdir()
    if make == "only_hidden":
        (submitted / ".ipynb_checkpoints").mkdir()
    assert grade.main(["autograde", "--submitted", str(submitted), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"no submissions: {submitted} {'does not exist' if make == 'missing' else 'is empty'}")
    assert "<student>/<lesson>/<lesson>.ipynb" in err and not (tmp_path / "w").exists()


def test_a_notebook_in_a_subfolder_of_the_lesson_folder_is_named(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    path = submitted / "eve" / "01_conv_forward" / "01_conv_forward" / "01_conv_forward.ipynb"   # unzipped twice
    path.parent.mkdir(parents=True)
    path.write_bytes(_sample("01_conv_forward"))
    assert grade.main(["autograde", "--submitted", str(submitted), "--work", str(tmp_path / "w"), "--jobs", "1"]) == 1
    result = json.loads((tmp_path / "w/autograded/eve/01_conv_forward/result.json").read_text())
    assert result["status"] == "unreadable" and \
        "found 01_conv_forward/01_conv_forward.ipynb in a subfolder" in result["notes"][0]


def test_a_grader_reached_through_symbolic_links_grades(tmp_path):
    # A .venv or a checkout that is a link (a shared venv, a home folder on another disk): the sandbox binds
    # the folders where the links point, so it must also start Python there (it once ran the link's own
    # path, missing in the sandbox: every submission a grader fault).
    links = tmp_path / "links"
    links.mkdir()
    (links / "venv").symlink_to(Path(sys.prefix).resolve())
    (links / "checkout").symlink_to(ROOT)
    submitted = tmp_path / "submitted" / "ann" / "00_fixture" / "00_fixture.ipynb"
    submitted.parent.mkdir(parents=True)
    fixture = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
    submitted.write_bytes(build_sample(fixture, "00_fixture", Sample(base="solution")))
    python = links / "venv" / Path(sys.executable).relative_to(sys.prefix)
    proc = subprocess.run([str(python), "-m", "autograder.grade", "autograde", "--submitted", str(tmp_path / "submitted"),
                           "--work", str(tmp_path / "work"), *FIXTURE_COURSE], cwd=links / "checkout",
                          env={**os.environ, "PYTHONPATH": str(links / "checkout")}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "3/3  graded" in proc.stdout, proc.stdout + proc.stderr


def test_a_run_whose_sandboxes_do_not_start_stops_after_three_and_the_next_run_grades_the_rest(tmp_path, capsys,
                                                                                                 monkeypatch):
    # A sandbox that passes the start-up check but never starts (a venv moved, an unreadable folder) is the
    # machine's fault: 3 in a row stop the run instead of giving each of a large class the same grader fault.
    fixture = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
    students = [f"s{n}" for n in range(8)]
    for student in students:
        path = tmp_path / "submitted" / student / "00_fixture" / "00_fixture.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(fixture, "00_fixture", Sample(base="solution")))
    broken = tmp_path / "runner.py"
    broken.write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(engine, "RUNNER", broken)
    args = ["autograde", "--submitted", str(tmp_path / "submitted"), "--work", str(tmp_path / "work"), "--jobs", "1",
            *FIXTURE_COURSE]
    assert grade.main(args) == 2
    out = capsys.readouterr().out
    assert out.count("error: grader error, not the student's fault: the sandbox did not start (it ended before its "
                     "first cell, exit code 3)") == 3
    summary = next(line for line in out.splitlines() if line.startswith("summary:"))
    assert summary.startswith('summary: 0 graded, 0 unreadable, 0 skipped, 3 grader faults; stopped after 3 in a row '
                              'ended in "the sandbox did not start (it ended before its first cell, exit code 3)", so '), \
        summary
    assert "so 5 more submissions got no result: this machine's set-up" in summary, summary
    results = sorted((tmp_path / "work" / "autograded").glob("*/00_fixture/result.json"))
    assert len(results) == 3 and all(json.loads(r.read_text())["status"] == "error" for r in results)
    monkeypatch.undo()
    assert grade.main(args) == 0
    assert "summary: 8 graded, 0 unreadable, 0 skipped, 0 grader faults" in capsys.readouterr().out


def test_only_sandboxes_that_do_not_start_in_a_row_stop_a_run():
    watch, started, not_started = StartWatch(), {"notes": []}, {"sandbox_started": False, "notes": ["why"]}
    for result in (not_started, not_started, started, not_started, not_started):
        watch.record(result)
    assert not watch.stopped
    watch.record(dict(not_started, worker="tcp://10.0.0.7:40123"))
    assert watch.stopped and watch.why == "why on Dask worker tcp://10.0.0.7:40123"
