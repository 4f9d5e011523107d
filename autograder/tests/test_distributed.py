"""Grading on a real Dask cluster on 127.0.0.1: a `dask scheduler` and two `dask worker` processes
(plus one started from a changed copy of the grader, which must be refused), all started and
stopped here. Lesson 01's samples and part of the adversarial corpus get through Dask exactly the
scores, messages and notes the local pool gives them; a worker killed mid-run loses nothing and
grades nothing twice."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from autograder import grade                                                      # noqa: E402
from autograder.grader.course import Course                                     # noqa: E402
from autograder.grader.distributed import DaskGrader, DaskUnavailable             # noqa: E402
from autograder.grader.batch import grade_all                                    # noqa: E402
from autograder.grader.report import counted                                     # noqa: E402
from autograder.grader.sandbox import SandboxUnavailable, detect_mode             # noqa: E402
from autograder.samples import build_sample, lesson_samples, write_samples        # noqa: E402
from autograder.samples.adversarial import LESSON as FIXTURE_LESSON, Targets, corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures"
FIXTURE_COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
LESSON = "01_conv_forward"
# A part of the adversarial corpus that is quick to grade and covers each kind of attack: on the
# grader and the sandbox, on the report channel, patched libraries, secrets, crashes, broken files.
ATTACKS = ["victim", "kill_grader", "os_exit", "forged_reports", "patched_numpy", "read_secrets", "fork_bomb",
           "invalid_json", "wrong_lesson", "edited_locked_cells"]
KILLED_RUN = ["full", "blank", "stride_ignored", "size_off_by_one", "padded_twice"]   # lesson 01 samples
DASK = Path(sys.executable).with_name("dask")
try:
    detect_mode()
    SANDBOX = True
except SandboxUnavailable:
    SANDBOX = False
pytestmark = pytest.mark.skipif(not SANDBOX, reason="no sandbox on this machine (python -m autograder.grade sandbox)")


class Cluster:
    """A scheduler and named workers, each a process of its own; stop() ends them all."""

    def __init__(self, base: Path):
        self.base, self.procs = base, {}
        scheduler_file = base / "scheduler.json"
        self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)], ROOT, {})
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(scheduler_file.read_text())["address"]

    def _start(self, name: str, argv: list[str], cwd: Path, env: dict) -> None:
        log = open(self.base / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=log,
                                            stderr=subprocess.STDOUT)

    def worker(self, name: str, checkout: Path = ROOT) -> None:
        """`dask worker` run in `checkout` with the course's venv, as docs/grading.md says."""
        self._start(name, [str(DASK), "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1",
                           "--no-dashboard", "--no-nanny", "--name", name], checkout, {"PYTHONPATH": str(checkout)})

    def wait_for(self, count: int) -> None:
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=120)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("dask")
    changed = base / "changed-checkout"   # the same course, with one grader file edited
    for folder in ("autograder", "convlab", "solutions", "course"):
        shutil.copytree(ROOT / folder, changed / folder, ignore=shutil.ignore_patterns("__pycache__", "work"))
    with open(changed / "autograder" / "grader" / "spec.py", "a") as file:
        file.write("\n# an edit made after the instructor's checkout\n")
    cluster = Cluster(base)
    try:
        for name in ("w1", "w2"):
            cluster.worker(name)
        cluster.worker("stale", changed)
        cluster.wait_for(3)
        yield cluster
    finally:
        cluster.stop()


def _attacks(submitted: Path, work: Path) -> dict:
    """Part of the adversarial corpus (the fixture course), written as submissions."""
    attacks = corpus(FIXTURE_COURSE, Targets(ROOT, FIXTURE, submitted, work))
    for name in ATTACKS:
        attack = attacks[name]
        path = submitted / f"sample_{name}" / FIXTURE_LESSON / (attack.filename or f"{FIXTURE_LESSON}.ipynb")
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(FIXTURE_COURSE, FIXTURE_LESSON, attack.sample))
    return attacks


def _graded(results) -> dict:
    """What the student sees of each result: status, score, every part's points and message, the notes."""
    return {(r["student"], r["lesson"]): (r["status"], r["score"], r["max_score"], r["parts"], r["notes"])
            for r in results}


@pytest.fixture(scope="module")
def samples(cluster, graded_samples, tmp_path_factory):
    """Lesson 01 of the shipped samples that conftest's local run graded, graded again through Dask."""
    work, lines = tmp_path_factory.mktemp("dask-samples"), []
    with DaskGrader(cluster.address, Course(), log=lines.append) as remote:
        run = grade_all(graded_samples.submitted, work, 2, Course(), run_seed=None, log=lines.append,
                        remote=remote, lessons={LESSON})
    return run, work, lines


@pytest.fixture(scope="module")
def attacks(cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("dask-attacks")
    corpus_ = _attacks(base / "submitted", base / "work-dask")
    local = grade_all(base / "submitted", base / "work-local", 2, FIXTURE_COURSE, log=lambda line: None)
    with DaskGrader(cluster.address, FIXTURE_COURSE, log=lambda line: None) as remote:
        dask = grade_all(base / "submitted", base / "work-dask", 2, FIXTURE_COURSE, log=lambda line: None,
                         remote=remote)
    return local, dask, corpus_


def test_the_samples_get_through_dask_what_they_get_locally(samples, graded_samples):
    run, work, _ = samples
    expected = graded_samples.samples[LESSON]
    assert sorted(r["student"] for r in run) == sorted(f"sample_{name}" for name in expected)   # --lesson
    local = [graded_samples.result(LESSON, r["student"].removeprefix("sample_")) for r in run]
    assert _graded(run) == _graded(local)
    for result in run:
        assert (result["status"], result["score"]) == ("graded", expected[result["student"].removeprefix("sample_")].score)
        assert result["worker"].startswith("tcp://127.0.0.1:")
        written = json.loads((work / "autograded" / result["student"] / LESSON / "result.json").read_text())
        assert written == result and (work / "autograded" / result["student"] / LESSON / f"{LESSON}.ipynb").is_file()


def test_the_adversarial_corpus_gets_through_dask_what_it_gets_locally(attacks):
    local, dask, corpus_ = attacks
    assert len(dask) == len(ATTACKS) and _graded(dask) == _graded(local)
    for result in dask:
        attack = corpus_[result["student"].removeprefix("sample_")]
        assert result["score"] == attack.sample.score, result["notes"]
        assert attack.notes in "\n".join(result["notes"])


def test_both_good_workers_graded_and_the_changed_one_was_refused(samples, attacks, cluster):
    run, _, lines = samples
    used = {r["worker"] for r in [*run, *attacks[1]] if "worker" in r}
    assert len(used) == 2
    refused = [line for line in lines if line.startswith("refused Dask worker")]
    assert len(refused) == 1 and "its grader (grader code, convlab, solutions, checks or release) differs" \
        in refused[0] and str(cluster.base / "changed-checkout") in refused[0], refused
    assert not any(address in refused[0] for address in used)


def test_the_command_line_stops_on_ctrl_c_and_goes_on_where_it_stopped(cluster, graded_samples, tmp_path, capsys):
    students = ["--student", "sample_full", "--student", "sample_blank", "--student", "sample_stride_ignored"]
    args = ["autograde", "--submitted", str(graded_samples.submitted), "--work", str(tmp_path), "--seed", "fixed",
            "--scheduler", cluster.address]
    proc = subprocess.Popen([sys.executable, "-m", "autograder.grade", *args, *students, "--lesson", LESSON], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if line.rstrip().endswith("graded"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted: every result finished so far is in" in err, out + err
    kept = len(list(tmp_path.glob(f"autograded/*/{LESSON}/result.json")))
    assert 1 <= kept <= 3
    assert grade.main([*args, *students, "--lesson", LESSON, "--changed-only"]) == 0   # the same command again
    out = capsys.readouterr().out
    assert f"{counted(kept, 'result')} kept from earlier runs" in out and "summary: 3 graded, 0 unreadable" in out
    assert sorted(p.parent.name for p in tmp_path.glob("autograded/*/*/result.json")) == [LESSON] * 3
    assert grade.main([*args, "--student", "nobody"]) == 2
    assert "--student nobody: no such folder" in capsys.readouterr().err
    assert grade.main([*args, "--lesson", "07_nothing"]) == 2
    assert "--lesson 07_nothing: no such lesson (the lessons are 01_conv_forward" in capsys.readouterr().err


def test_a_scheduler_without_workers_says_how_to_start_one(tmp_path):
    empty = Cluster(tmp_path)
    try:
        with pytest.raises(DaskUnavailable, match=r"no Dask worker is connected to .*make worker SCHEDULER="):
            DaskGrader(empty.address, Course(), log=lambda line: None, worker_wait=1)
    finally:
        empty.stop()


def test_an_unreachable_scheduler_is_named_in_the_message():
    with pytest.raises(DaskUnavailable, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskGrader("tcp://127.0.0.1:9", Course(), log=lambda line: None, connect_timeout=2)


def test_a_worker_killed_mid_run_loses_nothing_and_grades_nothing_twice(cluster, samples, attacks, tmp_path):
    submitted, work, lines = tmp_path / "submitted", tmp_path / "work", []
    samples = {name: sample for name, sample in lesson_samples(log=lambda line: None)[LESSON].items()
               if name in KILLED_RUN}
    write_samples(submitted, {LESSON: samples})
    from distributed import Client
    with Client(cluster.address, timeout=30, set_as_default=False) as client, \
            DaskGrader(cluster.address, Course(), log=lambda line: None) as remote:
        names = {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        done: list = []
        thread = threading.Thread(target=lambda: done.append(grade_all(submitted, work, 2, Course(), log=lines.append,
                                                                       remote=remote)))
        thread.start()
        deadline = time.monotonic() + 120
        while not client.processing(workers=[names["w1"]]).get(names["w1"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        was_running = client.processing(workers=[names["w1"]]).get(names["w1"])
        cluster.kill("w1")
        thread.join(300)
    assert was_running, "w1 was never given a submission"
    assert not thread.is_alive() and done
    run = done[0]
    keys = [(r["student"], r["lesson"]) for r in run]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == len(samples)
    assert {r["student"].removeprefix("sample_"): (r["status"], r["score"]) for r in run} == \
        {name: ("graded", sample.score) for name, sample in samples.items()}, \
        [(r["student"], r["notes"]) for r in run if r["status"] != "graded"]
    written = sorted(p.parent.parent.name for p in (work / "autograded").glob(f"*/{LESSON}/result.json"))
    assert written == sorted(f"sample_{name}" for name in samples)
    reported = [line for line in lines if " 01_conv_forward " in line]
    assert len(reported) == len(samples) and len({line.split()[0] for line in reported}) == len(samples)
    assert {r["worker"] for r in run} <= {names["w1"], names["w2"]} and names["w2"] in {r["worker"] for r in run}


def test_a_worker_is_refused_for_each_difference_with_what_to_do():
    from autograder.grader.distributed import refusal, worker_identity
    mine = worker_identity(FIXTURE_COURSE)
    assert refusal(mine, dict(mine)) is None
    assert "cannot load ConvLab's grader (ModuleNotFoundError: no autograder)" in \
        refusal(mine, ModuleNotFoundError("no autograder"))
    assert "it cannot sandbox: bwrap is not installed" in refusal(mine, {**mine, "problem": "bwrap is not installed"})
    assert "numpy 1.0, this machine" in refusal(mine, {**mine, "numpy": "1.0"})
    changed = refusal(mine, {**mine, "versions": {lesson: "0" * 16 for lesson in mine["versions"]}})
    assert f"{FIXTURE_LESSON} (version there {'0' * 16}, here {mine['versions'][FIXTURE_LESSON]})" in changed
