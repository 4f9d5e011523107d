"""Grade one submission: run its rebuilt cells sandboxed, then judge its answers here.

Run its code cells then the hidden checks' calls in a sandbox (sandbox.py, runner.py), judge every
returned value in this process against references computed here (scoring.py, shared with the
in-process sample scoring). A crash or a hang restarts the sandbox without the offending cell, or
with the next check, within the whole-notebook time limit. Finding and rebuilding submissions is
submissions.py; grading many at once, batch.py.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autograder.grader import report, startup
from autograder.grader.course import LessonPlan
from autograder.grader.notebook import Cell
from autograder.grader.runner import RUNNING, WALL_FACTOR
from autograder.grader.sandbox import BASE_UID, RUNNER, Limits, Mode, Sandbox, command
from autograder.grader.scoring import next_probe, score_plan
from autograder.grader.spec import Raised
from autograder.grader.wire import decode_result

_SIGNALS = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
            signal.SIGXCPU: "over the CPU time limit", signal.SIGXFSZ: "wrote a file over the size limit",
            signal.SIGBUS: "bus error"}


FAULT = "grader error, not the student's fault: "   # how a grader fault's note starts


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
    return f"exit code {returncode}"


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
            how = f"it ended before its first cell, {why.removeprefix('died:')}" if why.startswith("died:") else \
                "no sign of life from it in time" if why == "timeout" else why
            console = ex.console[-2000:].strip()
            raise SandboxError(f"the sandbox did not start ({how})" + (f": {console}" if console else ""))
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
            f"the Python process died ({why.removeprefix('died:')}" + \
        (": os._exit or a fatal error)" if why.startswith("died:exit code") else ")")
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
    return _result(plan, student, "error", 0.0, [], [FAULT + problem])


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
        if isinstance(exc, SandboxError):   # the machine's set-up, said in one line (batch.StartWatch counts it)
            result.update(sandbox_started=False)
        else:                               # a bug in the grader: its traceback, to report
            log(traceback.format_exc())
    if mode.name == "uid":
        result.update(sandbox_uid=BASE_UID + slot)
    result.update(sandbox_mode=mode.name, seconds=round(time.monotonic() - started, 2))
    return result, notebook


