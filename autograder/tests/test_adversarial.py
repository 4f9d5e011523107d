"""The adversarial corpus (autograder/samples/adversarial.py), graded in one sandboxed run of the
fixture lesson: every hostile or broken submission gets its exact score and message, and none of
them reaches the instructor's files, the gradebook, other submissions or outlives grading."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.sandbox import BASE_UID, Limits, SandboxUnavailable, detect_mode, is_zombie, pid_namespace, processes_of
from autograder.samples import build_sample
from autograder.samples.adversarial import LESSON, VICTIM_SECRET, Targets, corpus

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
JOBS = 2
try:   # "uid" as root, "userns" as an ordinary user (docs/grading.md); the run says why if neither
    MODE = detect_mode().name
except SandboxUnavailable:
    MODE = None
NAMES = list(corpus(COURSE, Targets(ROOT, FIXTURE, Path("/nowhere"), Path("/nowhere"))))


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and mtime, but the bytecode the grader's own imports may write meanwhile."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for folder in folders for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    submitted, work = base / "submitted", base / "work"
    attacks = corpus(COURSE, Targets(ROOT, FIXTURE, submitted, work))
    for name, attack in attacks.items():
        path = submitted / f"sample_{name}" / LESSON / (attack.filename or f"{LESSON}.ipynb")
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(COURSE, LESSON, attack.sample))
    work.mkdir()
    with sqlite3.connect(work / "gradebook.db") as db:   # what nbgrader's gradebook attack aims at
        db.execute("CREATE TABLE grade (manual_score REAL)")
        db.execute("INSERT INTO grade VALUES (1)")
    protected = (ROOT / "course", ROOT / "solutions", ROOT / "autograder" / "checks", FIXTURE, submitted)
    before = _snapshot(*protected)
    Path("/proc/self/clear_refs").write_text("5")   # resets this process's peak resident memory (VmHWM)
    resident = _status_kib("VmRSS")
    results = {r["student"].removeprefix("sample_"): r for r in grade_all(submitted, work, JOBS, COURSE,
                                                                           log=lambda line: None)}
    peak = (_status_kib("VmHWM") - resident) << 10
    if out := os.environ.get("CONVLAB_CORPUS_SCORES"):   # .ci/run compares the root and non-root runs
        Path(out).write_text(json.dumps({n: (r["status"], r["score"]) for n, r in sorted(results.items())}, indent=1))
    return attacks, results, work, before, _snapshot(*protected), peak


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1))


def _outputs(work: Path, name: str) -> str:
    executed = work / "autograded" / f"sample_{name}" / LESSON / f"{LESSON}.ipynb"
    if not executed.exists():
        return ""
    cells = json.loads(executed.read_text())["cells"]
    return "\n".join(o.get("text", "") + o.get("evalue", "") for c in cells for o in c.get("outputs", []))


@pytest.mark.parametrize("name", NAMES)
def test_attack_gets_its_exact_score_and_message(run, name):
    attacks, results, work, _, _, _ = run
    attack, result = attacks[name], results[name]
    messages = {p["grade_id"]: p["message"] for p in result["parts"]}
    assert (result["score"], result["max_score"]) == (attack.sample.score, 3.0), (messages, result["notes"])
    for grade_id, expected in attack.sample.messages.items():
        assert expected in messages[grade_id], messages
    assert attack.notes in "\n".join(result["notes"]), result["notes"]
    outputs = _outputs(work, name) + result["console"]
    assert attack.output in outputs
    if MODE == "uid":
        assert attack.root_output in outputs
    assert not attack.not_output or attack.not_output not in outputs


def test_the_graders_own_memory_stays_bounded(run):
    """The grader parses at most one run's channel per submission (Limits.channel) and no report with
    more values than the runner sends (wire.MAX_STRUCTURE): per job, the raw bytes, a copy while
    splitting lines, the decoded strings and arrays, so at most about 4 channels, whatever the corpus
    sends back (it sends 64 MiB results, forged headers and reports, floods of output)."""
    *_, peak = run
    bound = JOBS * 4 * Limits().channel
    print(f"grader's peak memory above its start while grading the corpus: {peak / 2**20:.0f} MiB "
          f"(bound {bound / 2**20:.0f} MiB)")
    assert peak <= bound


def test_honest_submissions_graded_among_hostile_ones_get_full_marks_and_no_notes(run):
    _, results, *_ = run
    honest = {name: r for name, r in results.items() if name.endswith("honest") or name == "victim"}
    assert len(honest) == 4
    for name, result in honest.items():
        assert (result["score"], result["notes"]) == (3.0, []), (name, result["notes"])
        assert all(p["message"] == "" for p in result["parts"]), (name, result["parts"])


def test_no_hidden_feedback_gives_an_expected_value_away(run):
    _, results, *_ = run
    for name, result in results.items():
        for part in result["parts"]:
            assert not re.search(r"expected -?\.?\d", part["message"]), (name, part["message"])


def test_instructor_files_and_other_submissions_survive(run):
    _, _, _, before, after, _ = run
    assert before and after == before


def test_gradebook_and_results_cannot_be_touched(run):
    _, results, work, _, _, _ = run
    with sqlite3.connect(work / "gradebook.db") as db:
        assert db.execute("SELECT manual_score FROM grade").fetchall() == [(1.0,)]
    victim = json.loads((work / "autograded" / "sample_victim" / LESSON / "result.json").read_text())
    assert victim["score"] == 3.0 and results["victim"]["score"] == 3.0


def test_every_submission_ran_in_this_machines_sandbox_mode(run):
    _, results, _, _, _, _ = run
    ran = [r for r in results.values() if r["status"] == "graded"]
    assert ran and {r["sandbox_mode"] for r in ran} == {MODE}


def test_no_process_outlives_grading(run):
    _, results, _, _, _, _ = run
    if MODE == "uid":
        uids = {r["sandbox_uid"] for r in results.values() if "sandbox_uid" in r}
        assert len(uids) == JOBS and all(uid >= BASE_UID for uid in uids)
        assert {uid: processes_of(uid) for uid in uids} == {uid: [] for uid in uids}
    else:   # every sandbox had a pid namespace of its own; none of this user's processes is left in one
        # (a sandbox's pid 1 may stay a zombie until this machine's init reaps it: it runs nothing)
        mine = pid_namespace(os.getpid())
        left = [pid for pid in processes_of(os.getuid())
                if pid_namespace(pid) not in (mine, None) and not is_zombie(pid)]
        assert left == [], [_describe(pid) for pid in left]


def _describe(pid: int) -> str:
    try:
        return f"{pid}: {Path(f'/proc/{pid}/stat').read_text()[:120]} {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]}"
    except OSError:
        return f"{pid}: gone"


def test_the_victims_code_stays_private(run):
    _, _, work, _, _, _ = run
    leaked = [p for p in (work / "autograded").rglob("*") if p.is_file() and "sample_victim" not in str(p)
              and VICTIM_SECRET in p.read_text()]
    assert leaked == []
