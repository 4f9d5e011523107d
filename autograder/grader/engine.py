"""Grade submissions: rebuild each from the trusted release, run it sandboxed, judge its answers here.

Per submission: read and rebuild the notebook (notebook.py), run its code cells then the hidden
checks' calls in a sandbox (sandbox.py, runner.py), judge every returned value in this process
against references computed here (scoring.py, shared with the in-process sample scoring), write
the result (report.py). A crash or a hang restarts the sandbox without the offending cell, or with the next check, within the
whole-notebook time limit; N submissions are graded at once, each in a sandbox of its own.

What is not where nbgrader's layout puts it (a folder that is no lesson, a notebook directly in
the student folder, another lesson's notebook) still gets a result with score 0 and a message
saying what was found and what was expected, so that the student gets feedback and a CSV row.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from autograder.grader import report, resume, startup
from autograder.grader.course import Course, LessonPlan
from autograder.coursedir import grade_id
from autograder.grader.notebook import Cell, Unreadable, read_submission, reconstruct
from autograder.grader.runner import RUNNING, WALL_FACTOR
from autograder.grader.sandbox import (BASE_UID, RUNNER, Limits, Mode, Sandbox, claimed_slots, command,
                                       require_sandbox)
from autograder.grader.scoring import next_probe, score_plan
from autograder.grader.spec import Raised
from autograder.grader.wire import decode_result

_SIGNALS = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
            signal.SIGXCPU: "over the CPU time limit", signal.SIGXFSZ: "wrote a file over the size limit",
            signal.SIGBUS: "bus error"}


class SandboxError(RuntimeError):
    """The sandbox failed before any student code ran: a problem of this machine, not of the submission."""


@dataclass
class Execution:
    """What one submission's runs produced (all of it reported by the sandbox, so untrusted)."""
    code: list[Cell]
    cell_timeout: float
    memory: int
    outputs: dict[int, dict] = field(default_factory=dict)   # code cell index -> {"out", "error"}
    results: dict[int, Any] = field(default_factory=dict)    # probe k -> value or Raised
    passed: dict[int, bool] = field(default_factory=dict)    # probe k -> its verdict, once judged
    notes: list[str] = field(default_factory=list)
    not_run: str = "the sandbox stopped before this check"
    console: str = ""

    def note(self, text: str) -> None:
        if text not in self.notes:   # a cell re-run after a restart says the same thing again
            self.notes.append(text)

    def cell_name(self, i: int) -> str:
        first = next((line.strip() for line in self.code[i].source.splitlines() if line.strip()), "")
        return f"code cell {i + 1} (`{first[:40]}`)"

    def record_cell(self, i: int, event: dict) -> None:
        out = event.get("out") if isinstance(event.get("out"), str) else ""
        error = event.get("error") if isinstance(event.get("error"), dict) else None
        if error is not None:
            error = {key: str(error.get(key, ""))[:20_000] for key in ("ename", "evalue", "traceback")}
            if error["ename"] == "Timeout":
                where = _where_time_ran_out(error["evalue"])
                error["evalue"] = f"infinite loop? this cell ran past {self.cell_timeout:g} s of CPU time and was " \
                                  f"interrupted{where}"
                self.note(f"infinite loop? {self.cell_name(i)} ran past {self.cell_timeout:g} s of CPU time and was "
                          f"interrupted{where}")
            elif error["ename"] == "MemoryError":
                self.note(f"{self.cell_name(i)} ran out of memory (MemoryError): each submission may use "
                          f"at most {self.memory / 2**30:g} GiB")
        if isinstance(event.get("dropped"), int) and event["dropped"] > 0:
            self.note(f"{self.cell_name(i)} printed too much: its output was truncated "
                              f"({event['dropped']} characters dropped)")
        self.outputs[i] = {"out": out[:200_000], "error": error, "figures": report.png_figures(event.get("figures"))}


def _where_time_ran_out(evalue: str) -> str:
    """", in iou (called from nms) when the time ran out" from the runner's Timeout message, or ""."""
    names = [name for name in evalue.partition(RUNNING)[2][:300].split(" < ") if name]
    if not names:
        return ""
    callers = f" (called from {', '.join(names[1:])})" if names[1:] else ""
    return f"; it was in {names[0]}{callers} when the time ran out"


def describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode > 128 and (returncode - 128) in set(signal.Signals):
        sig = signal.Signals(returncode - 128)
        return f"signal {sig.value}, {_SIGNALS.get(sig, sig.name)}"
    return f"exit code {returncode}: os._exit or a fatal error"


def _index(value: Any, size: int) -> int | None:
    return value if type(value) is int and 0 <= value < size else None


def _next_probe(plan: LessonPlan, ex: Execution) -> int | None:
    """The next case to call (scoring.next_probe over this execution's answers)."""
    return next_probe(plan, ex.results, ex.passed)


def _release(probes_dir: Path, released: Path, index: int) -> None:
    """Make check input `index` visible to the sandbox (its /probes), just before asking for it: the
    inputs do not exist there while the student's cells run, so no cell can precompute answers."""
    source, target = probes_dir / f"{index}.json", released / f"{index}.json"
    if not target.exists():
        try:
            os.link(source, target)           # the grader's read-only copy; no bytes are copied
        except OSError:
            shutil.copy(source, target)
            target.chmod(0o644)


class Interrupted(RuntimeError):
    """The instructor stopped the run (Ctrl-C): this submission's sandbox was ended, no result is written."""


def _drive(box: Sandbox, plan: LessonPlan, ex: Execution, end: float, limits: Limits,
           release: Callable[[int], None] = lambda index: None, stop: threading.Event | None = None) -> tuple | None:
    """Feed one sandbox run until every needed check is answered (None) or it stops: (phase, index, why).
    Returning ends the sandbox: the caller's `with Sandbox(...)` kills it right away. Once `stop` is
    set, raises Interrupted (within memcap.POLL seconds)."""
    phase, index = "start", None
    deadline = min(time.monotonic() + limits.startup_timeout, end)
    while True:
        event = box.next_event(deadline, stop)
        now = time.monotonic()
        if event is None:
            return phase, index, "notebook" if deadline >= end else "timeout"
        kind = event["ev"]
        if kind == "stopped":
            raise Interrupted("the instructor stopped the run")
        if kind == "exit":
            return phase, index, f"died:{describe_exit(event['returncode'])}"
        if kind in ("overflow", "malformed", "memory"):
            return phase, index, kind
        if phase == "start" and kind == "ready":
            phase, deadline = "cells", min(now + WALL_FACTOR * plan.cell_timeout + limits.grace, end)
        elif phase == "cells" and kind in ("cell", "cell_done"):
            if (i := _index(event.get("i"), len(ex.code))) is None:
                return phase, index, "malformed"
            if kind == "cell_done":
                ex.record_cell(i, event)
            index, deadline = i, min(now + WALL_FACTOR * plan.cell_timeout + limits.grace, end)
        elif (phase == "cells" and kind == "cells_done") or (phase == "probes" and kind == "result"
                                                             and event.get("k") == index):
            if phase == "probes":
                ex.results[index] = decode_result(event)
            phase, index = "probes", _next_probe(plan, ex)
            if index is None:
                return None
            release(index)
            box.request(index)
            deadline = min(now + WALL_FACTOR * plan.cases[index].timeout + limits.grace, end)


def execute(plan: LessonPlan, code: list[Cell], job_dir: Path, probes_dir: Path, slot: int,
            limits: Limits, mode: Mode = Mode("uid", 0), stop: threading.Event | None = None) -> Execution:
    """Run the cells and the needed checks, restarting the sandbox after a crash or a hang."""
    ex = Execution(code, plan.cell_timeout, limits.memory)
    skip: set[int] = set()
    font_list = startup.prepare(mode)   # built once per machine, before this submission's clock starts
    end = time.monotonic() + plan.notebook_timeout
    released = job_dir.parent / f"{job_dir.name}-probes"
    for _ in range(limits.attempts):
        shutil.rmtree(released, ignore_errors=True)   # every run of the cells starts with no inputs visible
        released.mkdir()
        released.chmod(0o755)
        argv = functools.partial(command, job_dir=job_dir, probes_dir=released, slot=slot, skip=skip,
                                 cell_timeout=plan.cell_timeout, cpu_seconds=int(plan.notebook_timeout) + 10,
                                 limits=limits, mode=mode, font_list=font_list)
        with Sandbox(argv, BASE_UID + slot, limits, mode) as box:
            stopped = _drive(box, plan, ex, end, limits, functools.partial(_release, probes_dir, released), stop)
        ex.console = box.console_text()
        if stopped is None:
            return ex
        phase, index, why = stopped
        if phase == "start" or (phase == "cells" and index is None):
            raise SandboxError(f"the sandbox did not start ({why}): {ex.console[-2000:].strip()}")
        where = ex.cell_name(index) if phase == "cells" else f"checking {plan.cases[index].func}"
        if why == "notebook":
            ex.not_run = f"the notebook ran past {plan.notebook_timeout:g} s, the limit for a whole submission"
            during = f"running {where}" if phase == "cells" else where
            ex.note(f"grading stopped: {ex.not_run} (while {during}); later cells and checks did not run")
            if phase == "probes":
                ex.results[index] = Raised("NotRun", ex.not_run)
            return ex
        limit = plan.cell_timeout if phase == "cells" else plan.cases[index].timeout
        problem = {"timeout": f"infinite loop? it ran past {limit:g} s of CPU time ({WALL_FACTOR * limit:g} s in all) "
                              "and could not be interrupted",
                   "overflow": f"it sent more than {limits.channel >> 20} MiB of results",
                   "malformed": "it wrote into the grader's report channel",
                   "memory": f"it used more than {limits.total_memory / 2**30:g} GiB of memory, all its processes "
                             "together"}.get(why) or \
            f"the Python process died ({why.removeprefix('died:')})"
        if phase == "cells":
            skip.add(index)
            ex.outputs[index] = {"out": ex.outputs.get(index, {}).get("out", ""),
                                 "error": {"ename": "Stopped", "evalue": problem, "traceback": ""}}
            ex.note(f"{where}: {problem}; the notebook was run again without that cell")
        else:
            ex.results[index] = Raised("Timeout", f"{plan.cases[index].timeout:g} s") if why == "timeout" else \
                Raised("Unsupported", f"a result over {limits.channel >> 20} MiB") if why == "overflow" else \
                Raised("OverMemory", f"{limits.total_memory / 2**30:g} GiB") if why == "memory" else \
                Raised("Crashed", problem)
            ex.note(f"while {where}: {problem}; the sandbox was restarted for the remaining checks")
    ex.not_run = f"grading gave up after {limits.attempts} runs of the notebook"
    ex.note(ex.not_run)
    return ex


def score(plan: LessonPlan, ex: Execution) -> list[dict]:
    """Each graded cell's points and feedback message (scoring.score_plan), with the reason a function
    is undefined added to the message of a part that failed for it."""
    return score_plan(plan, ex.results, ex.passed, ex.not_run, hint=functools.partial(_definition_hint, ex))


def _definition_hint(ex: Execution, cases: list, results: list) -> str:
    """When a function or class is undefined (the one a locked wrapper uses, or the called one), say
    what went wrong in the cell that should have defined it: "SyntaxError in your Dense class, line 6:
    expected ':'". The pattern runs in the grader's process over the submission's text, so it must
    stay linear: [ \\t]* never crosses a line (\\s* would, and backtracks quadratically over long runs
    of blank lines)."""
    for case, result in zip(cases, results):
        if isinstance(result, Raised) and result.type == "NameError":
            for name in [*re.findall(r"name '(\w+)' is not defined", result.message), case.func]:
                pattern = re.compile(rf"^[ \t]*(def|class)[ \t]+{re.escape(name)}\b", re.M)
                defining = [(i, m) for i, cell in enumerate(ex.code) if (m := pattern.search(cell.source))]
                error = ex.outputs.get(defining[-1][0], {}).get("error") if defining else None
                if error:
                    i, match = defining[-1]
                    what = f"your {name} {'class' if match.group(1) == 'class' else 'function'}"
                    if error["ename"] in ("SyntaxError", "IndentationError", "TabError"):
                        line = re.search(r"line (\d+)\)?$", error["evalue"])
                        detail = re.sub(r" \([^()]*, line \d+\)$", "", error["evalue"])
                        return (f" ({error['ename']} in {what}{', line ' + line.group(1) if line else ''}: "
                                f"{detail}; {ex.cell_name(i)} did not run)")
                    return f" ({ex.cell_name(i)}, which defines {what}, failed: {error['ename']}: {error['evalue']})"
    return ""


def _result(plan: LessonPlan, student: str, status: str, total: float, parts: list[dict], notes: list[str],
            console: str = "") -> dict:
    """A submission's result.json (the grader adds sandbox_uid and seconds)."""
    return {"student": student, "lesson": plan.lesson, "max_score": plan.max_score, "status": status,
            "notes": notes, "console": console, "score": total, "parts": parts}


def not_graded(student: str, lesson: str, points: dict[str, float], status: str, problem: str) -> dict:
    """The result of a submission that was not run: score 0, the problem as every test's message."""
    parts = [{"grade_id": g, "points": p, "score": 0.0, "message": f"not graded: {problem}"} for g, p in points.items()]
    return {"student": student, "lesson": lesson, "max_score": sum(points.values()), "status": status,
            "notes": [problem], "console": "", "score": 0.0, "parts": parts}


def _count_ids(nb: dict, ids: set[str]) -> int:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return len({grade_id(c) for c in cells if isinstance(c, dict)} & ids) if isinstance(cells, list) else 0


def likely_lesson(nb: dict, signatures: dict[str, set[str]], prefer: str | None = None) -> str | None:
    """The lesson whose release shares the most nbgrader grade_ids with `nb` (ties: `prefer`)."""
    counts = {lesson: _count_ids(nb, ids) for lesson, ids in signatures.items()}
    best = max(counts, key=lambda lesson: (counts[lesson], lesson == prefer), default=None)
    return best if best is not None and counts[best] > 0 else None


def _other_lesson(nb: dict, lesson: str, signatures: dict[str, set[str]]) -> str | None:
    """Why this is another lesson's notebook, or None if it is (most like) `lesson`'s."""
    best = likely_lesson(nb, signatures, prefer=lesson)
    if best is None or best == lesson:
        return None
    mine, theirs = _count_ids(nb, signatures.get(lesson, set())), _count_ids(nb, signatures[best])
    return (f"this is {best}'s notebook ({theirs} of its graded cells, {mine} of {lesson}'s), submitted as "
            f"{lesson}: submit {lesson}.ipynb in the folder {lesson}/ and {best}.ipynb in the folder {best}/")


def read_cells(plan: LessonPlan, path: Path, signatures: dict[str, set[str]] | None = None) -> list[Cell]:
    """The submission rebuilt from the trusted release (Unreadable when it cannot be graded)."""
    if not path.exists() and not path.is_symlink() and (deeper := _notebooks_below(path.parent)):
        raise Unreadable(f"no {path.name} in {plan.lesson}/; found {', '.join(deeper)} in a subfolder: "
                         f"put the notebook directly in {plan.lesson}/ as {plan.lesson}.ipynb")
    submission = read_submission(path, plan.lesson)
    if signatures and (problem := _other_lesson(submission, plan.lesson, signatures)):
        raise Unreadable(problem)
    return reconstruct(plan.release, submission, plan.lesson)


def run_cells(plan: LessonPlan, student: str, cells: list[Cell], jobs_root: Path, probes_dir: Path, slot: int,
              limits: Limits, mode: Mode = Mode("uid", 0), stop: threading.Event | None = None) -> tuple[dict, Execution]:
    """Run a rebuilt submission in a fresh sandbox and score it (Interrupted once `stop` is set)."""
    code = [cell for cell in cells if cell.cell_type == "code"]
    job_dir = Path(tempfile.mkdtemp(dir=jobs_root))
    job_dir.chmod(0o755)
    (job_dir / "cells.json").write_text(json.dumps([cell.source for cell in code]))
    shutil.copy(RUNNER, job_dir / "runner.py")
    for name in ("cells.json", "runner.py"):
        (job_dir / name).chmod(0o644)
    try:
        ex = execute(plan, code, job_dir, probes_dir, slot, limits, mode, stop)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
        shutil.rmtree(job_dir.parent / f"{job_dir.name}-probes", ignore_errors=True)
    parts = score(plan, ex)
    return _result(plan, student, "graded", sum(p["score"] for p in parts), parts, ex.notes, ex.console), ex


def grader_fault(plan: LessonPlan, student: str, problem: str) -> dict:
    """The result of a submission the grader failed on (not the student's fault): score 0, status error."""
    return _result(plan, student, "error", 0.0, [], [f"grader error, not the student's fault: {problem}"])


def sandboxed(plan: LessonPlan, student: str, cells: list[Cell], jobs_root: Path, probes_dir: Path, slot: int,
              limits: Limits, mode: Mode, log: Callable[[str], None] = print,
              stop: threading.Event | None = None) -> tuple[dict, dict | None]:
    """run_cells with what every sandboxed result records (a grader failure becomes an "error" result);
    the result and the executed notebook. The local pool and a Dask worker (distributed.py) both call it."""
    started = time.monotonic()
    try:
        result, ex = run_cells(plan, student, cells, jobs_root, probes_dir, slot, limits, mode, stop)
        notebook = report.executed_notebook(cells, ex) if cells else None
    except Interrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - one submission's grader failure never stops the others
        result, notebook = grader_fault(plan, student, str(exc)), None
        if not isinstance(exc, SandboxError):   # a bug in the grader: its traceback, to report (a sandbox
            log(traceback.format_exc())          # that did not start is the machine's set-up, said in one line)
    if mode.name == "uid":
        result.update(sandbox_uid=BASE_UID + slot)
    result.update(sandbox_mode=mode.name, seconds=round(time.monotonic() - started, 2))
    return result, notebook


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _notebooks_below(folder: Path) -> list[str]:
    """Notebooks in subfolders of `folder` (not hidden ones such as .ipynb_checkpoints), relative paths;
    symbolic links are not followed, so nothing outside the submitted tree is listed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if Path(top) != folder:
            found += [Path(top, f) for f in files if f.endswith(".ipynb") and not Path(top, f).is_symlink()]
    return sorted(str(p.relative_to(folder)) for p in found)[:5]


def _real(path: Path) -> bool:
    """A real folder or file of the submitted tree: a symbolic link may point at another student's
    work or at a folder outside the tree, and is never read."""
    return not path.is_symlink()


LINKED = ("{name} is a symbolic link, not a real {kind}: submissions are read only from real folders and files "
          "inside the submitted tree; it was not graded")


@dataclass
class Found:
    """One submission found under submitted/: to grade (problem None), or to give a result of 0 saying why."""
    student: str
    lesson: str                     # a lesson of the course, or what the student's folder was called
    path: Path
    status: str = "graded"          # "skipped" when it is not where nbgrader's layout puts it
    problem: str | None = None


def _guess_lesson(name: str, lessons: list[str]) -> str | None:
    """The lesson a misnamed folder or notebook stands for: the same name in another case or with
    other separators, a close spelling, or the same lesson number."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for lesson in lessons:
        if re.sub(r"[^a-z0-9]", "", lesson.lower()) == key:
            return lesson
    if close := difflib.get_close_matches(name, lessons, n=1, cutoff=0.75):
        return close[0]
    number = re.search(r"\d+", name)
    same = [lesson for lesson in lessons if number and int(lesson.split("_")[0]) == int(number.group())]
    return same[0] if len(same) == 1 else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_bytes()[:20 << 20]) if path.is_file() and not path.is_symlink() else {}
    except (ValueError, OSError, RecursionError):
        return {}


def discover(submitted: Path, lessons: list[str], log: Callable[[str], None] = print,
             signatures: dict[str, set[str]] | None = None) -> tuple[list[Found], list[str]]:
    """The submissions under nbgrader's layout submitted/<student>/<lesson>/<lesson>.ipynb, and what
    else was found: a folder that is no lesson or a notebook directly in the student folder becomes a
    Found with a problem (graded 0 with a message); what cannot be given to a student and lesson
    (a notebook directly in submitted/, an empty student folder) is returned in the second list."""
    signatures = signatures or {}
    found: list[Found] = []
    ignored: list[str] = []
    known = ", ".join(lessons)
    for entry in sorted(p for p in submitted.iterdir() if p.name.startswith(".") and p.is_dir()):
        ignored.append(f"skipped {entry}: a hidden folder (its name starts with a dot), so no student's; "
                       "rename it if it holds a submission")
    for entry in _visible(submitted):
        if not _real(entry):
            ignored.append(f"skipped {entry}: " + LINKED.format(name=entry.name, kind="student folder"))
        elif entry.is_file() and entry.suffix == ".ipynb":
            ignored.append(f"skipped {entry}: a notebook directly in {submitted.name}/, expected "
                           f"{submitted.name}/<student>/<lesson>/<lesson>.ipynb")
    for student in (p for p in _visible(submitted) if p.is_dir() and _real(p)):
        entries = _visible(student)
        links = [p for p in entries if not _real(p)]
        for link in links:
            name = link.name.removesuffix(".ipynb")
            found.append(Found(student.name, name if name in lessons else link.name, link, "skipped",
                               LINKED.format(name=f"{student.name}/{link.name}",
                                             kind="file" if link.suffix == ".ipynb" else "folder")))
        entries = [p for p in entries if _real(p)]
        folders = [p for p in entries if p.is_dir()]
        notebooks = [p for p in entries if p.is_file() and p.suffix == ".ipynb"]
        hint = f" ({student.name} is a lesson name: is the student folder missing?)" if student.name in lessons else ""
        if not folders and not notebooks and not links:
            others = f"no lesson folder and no notebook in it (found: {', '.join(p.name for p in entries[:5])})" \
                if entries else "the folder is empty"
            ignored.append(f"skipped {student}: {others}, nothing was submitted{hint}")
            continue
        mine = {p.name for p in folders if p.name in lessons}
        taken = set(mine)
        found += [Found(student.name, p.name, p / f"{p.name}.ipynb") for p in folders if p.name in lessons]
        for folder in (p for p in folders if p.name not in lessons):
            inside = sorted(p.name for p in folder.glob("*.ipynb")) or _notebooks_below(folder)
            what = f"found the folder {folder.name}/" + (f" with {', '.join(inside)}" if inside else " (no notebook in it)")
            guess = next((g for g in [*(_guess_lesson(Path(n).stem, lessons) for n in inside),
                                      _guess_lesson(folder.name, lessons)] if g), None)
            if guess and guess not in taken:
                taken.add(guess)
                found.append(Found(student.name, guess, folder, "skipped",
                                   f"{what}, expected the folder {guess}/ with {guess}.ipynb: the lesson folder "
                                   f"must be named exactly {guess}; nothing in {folder.name}/ was graded"))
            elif guess:
                found.append(Found(student.name, folder.name, folder, "skipped",
                                   f"{what}, which is not a lesson of this course; {student.name}'s {guess} "
                                   f"comes from {'the folder ' + guess + '/' if guess in mine else 'another folder'}"
                                   f": nothing in {folder.name}/ was graded"))
            else:
                found.append(Found(student.name, folder.name, folder, "skipped",
                                   f"{what}, which is not a lesson of this course (the lessons are {known}): "
                                   f"nothing in it was graded; expected {student.name}/<lesson>/<lesson>.ipynb"))
        for notebook in notebooks:
            guess = _guess_lesson(notebook.stem, lessons) or likely_lesson(_read_json(notebook), signatures)
            what = f"found {notebook.name} directly in the student folder {student.name}/{hint}"
            if guess and guess not in taken:
                taken.add(guess)
                found.append(Found(student.name, guess, notebook, "skipped",
                                   f"{what}, expected {student.name}/{guess}/{guess}.ipynb: put the notebook in a "
                                   f"folder named {guess}; it was not graded"))
            elif guess:
                ignored.append(f"skipped {notebook}: a notebook directly in the student folder; {student.name}'s "
                               f"{guess} comes from {student.name + '/' + guess + '/' if guess in mine else 'another folder'}")
            else:
                found.append(Found(student.name, notebook.name, notebook, "skipped",
                                   f"{what}, which is no lesson's notebook (the lessons are {known}): expected "
                                   f"{student.name}/<lesson>/<lesson>.ipynb; it was not graded"))
    for line in ignored:
        log(report.printable(line))
    return found, ignored


def _console_line(result: dict, kept: bool) -> str:
    """One submission's line: who, which lesson, the score, and the status (with its first note) or
    "kept" for a result an earlier run wrote; points of written answers still to grade are named."""
    manual = sum(p["points"] for p in result.get("parts", []) if p.get("needs_manual_grade"))
    status = "kept (graded by an earlier run)" if kept else result["status"]
    return report.printable(
        f"{result['student']:>24} {result['lesson']:<20} {result['score']:g}/{result['max_score']:g}"
        + (f" (+{manual:g} to grade by hand)" if manual else "") + f"  {status}"
        + (f": {result['notes'][0]}" if result["status"] != "graded" and result["notes"] else ""))


@contextlib.contextmanager
def _stop_on_interrupt(pool: ThreadPoolExecutor, stopping: threading.Event, remote):
    """On Ctrl-C, wherever the main thread is: what was not started is dropped, every running sandbox
    is ended (`stopping`) and the remote runs cancelled, so that the pool's exit waits only for
    those to stop. Every result finished so far is written, and the next run reuses it."""
    try:
        yield
    except KeyboardInterrupt:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        if remote:
            remote.cancel()
        raise


class GradingRun(list):
    """The results (list of result dicts), with what was found but could not be given a result."""

    def __init__(self, results: list[dict], ignored: list[str], mode: Mode):
        super().__init__(results)
        self.ignored, self.mode = ignored, mode

    def counts(self) -> dict[str, int]:
        """graded, unreadable, skipped (results and ignored files), grader faults."""
        status = [r["status"] for r in self]
        return {"graded": status.count("graded"), "unreadable": status.count("unreadable"),
                "skipped": status.count("skipped") + len(self.ignored), "grader faults": status.count("error")}

    def summary(self) -> str:
        counts = self.counts()
        faults = report.counted(counts.pop("grader faults"), "grader fault")
        return "summary: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f", {faults}"

    @property
    def complete(self) -> bool:
        """Every submission found was graded."""
        counts = self.counts()
        return counts["unreadable"] == counts["skipped"] == counts["grader faults"] == 0


def _signatures(course: Course) -> dict[str, set[str]]:
    """lesson -> the grade_ids of its release, for every lesson with a release."""
    out = {}
    for lesson in course.lessons():
        if (course.release / lesson / f"{lesson}.ipynb").exists():
            out[lesson] = {g for c in course.release_notebook(lesson)["cells"] if (g := grade_id(c))}
    return out


def grade_all(submitted: Path, work: Path, jobs: int, course: Course = Course(), limits: Limits = Limits(),
              run_seed: int | None = None, log: Callable[[str], None] = print,
              progress: bool = False, regrade: bool = False, students: set[str] | None = None,
              lessons: set[str] | None = None, remote=None) -> GradingRun:
    """Grade every submission under `submitted`, `jobs` at a time; write work/autograded/...; return
    the results. `progress`: a tqdm bar on a terminal's stderr, and n/N, elapsed and time left on
    every line. A submission whose result is complete and whose notebook and grader are unchanged
    keeps that result (autograder.grader.resume) unless `regrade`. `students`, `lessons`: grade only
    those. `remote` (a distributed.DaskGrader): each sandboxed run happens on a Dask worker instead
    of here, remote.jobs at a time; everything else, and every write, stays in this process."""
    mode = remote.mode if remote else require_sandbox()
    log(remote.describe() if remote else mode.describe(jobs))
    jobs = remote.jobs if remote else jobs
    resume.remove_leftovers(log)
    signatures = _signatures(course)
    found, ignored = discover(submitted, course.lessons(), log, signatures)
    if students is not None or lessons is not None:
        found = [f for f in found if (students is None or f.student in students)
                 and (lessons is None or f.lesson in lessons)]
        ignored = [line for line in ignored if lessons is None and students is not None
                   and any(line.startswith(f"skipped {submitted / student}") for student in students)]
    for group in report.lookalike_ids([f.student for f in found]):
        log("student folders " + ", ".join(report.printable(ascii(s)) for s in group) + " look the same but differ in "
            "their Unicode normalisation: they are graded as different students; rename one")
    graded_lessons = sorted({f.lesson for f in found if f.problem is None})
    plans = {lesson: course.plan(lesson, run_seed) for lesson in graded_lessons}
    slots: queue.Queue[int] = queue.Queue()
    versions = {lesson: resume.grader_version(course, lesson) for lesson in graded_lessons}
    reused: set[tuple[str, str]] = set()
    stopping = threading.Event()
    with claimed_slots(0 if remote else jobs, mode) as claimed, resume.grading_folder() as tmp:
        for slot in claimed:
            slots.put(slot)
        root = Path(tmp)
        for lesson, plan in plans.items() if not remote else ():
            plan.write_probes(root / "probes" / lesson)
        (root / "jobs").mkdir()

        def grade_here(plan: LessonPlan, student: str, cells: list[Cell]) -> tuple[dict, dict | None]:
            slot = slots.get()
            try:
                return sandboxed(plan, student, cells, root / "jobs", root / "probes" / plan.lesson, slot, limits,
                                 mode, log, stopping)
            finally:
                slots.put(slot)

        def grade_one(item: Found) -> dict:
            student, lesson, path = item.student, item.lesson, item.path
            if item.problem is not None:
                points = course.graded_points(lesson) if lesson in signatures else {}
                result = not_graded(student, lesson, points, item.status, item.problem)
                report.write_result(work, result, [], None)
                return result
            print_ = resume.fingerprint(path, versions[lesson])
            if not regrade and (earlier := resume.reusable(report.result_dir(work, student, lesson) / "result.json",
                                                           print_)):
                reused.add((student, lesson))
                return earlier
            try:
                cells = read_cells(plans[lesson], path, signatures)
            except Unreadable as exc:
                result, notebook = not_graded(student, lesson, plans[lesson].all_points, "unreadable", str(exc)), None
                result.update(sandbox_mode=mode.name, seconds=0.0)
            except Exception as exc:  # noqa: BLE001 - one submission's grader failure never stops the others
                result, notebook = grader_fault(plans[lesson], student, str(exc)), None
                log(traceback.format_exc())
            else:
                result, notebook = remote(plans[lesson], student, cells, limits, run_seed) if remote else \
                    grade_here(plans[lesson], student, cells)
            result.update(seed="fixed" if run_seed is None else run_seed, fingerprint=print_)
            report.write_outcome(work, result, notebook)
            return result

        results: list[tuple[int, dict]] = []
        start = time.monotonic()
        bar = tqdm(total=len(found), unit="notebook", file=sys.stderr, dynamic_ncols=True,
                   disable=not progress or not sys.stderr.isatty(),
                   bar_format="{n_fmt}/{total_fmt} |{bar}| {elapsed} elapsed, {remaining} left")
        with bar, ThreadPoolExecutor(max_workers=jobs) as pool, _stop_on_interrupt(pool, stopping, remote):
            futures = {pool.submit(grade_one, item): n for n, item in enumerate(found)}
            for future in as_completed(futures):
                result = future.result()
                results.append((futures[future], result))
                bar.update(1)
                line = _console_line(result, kept=(result["student"], result["lesson"]) in reused)
                if progress:
                    done, elapsed = len(results), time.monotonic() - start
                    left = elapsed / done * (len(found) - done)
                    line = f"[{done}/{len(found)} {tqdm.format_interval(elapsed)} elapsed, " \
                           f"{tqdm.format_interval(left)} left] {line.strip()}"
                (bar.write if not bar.disable else log)(line) if progress else log(line)
    if reused:
        log(f"{report.counted(len(reused), 'result')} kept from earlier runs, each with the seed it was graded "
            "with: their notebooks and the grader are unchanged (--regrade, or make autograde REGRADE=1, grades "
            "them again)")
    return GradingRun([result for _, result in sorted(results, key=lambda pair: pair[0])], ignored, mode)
