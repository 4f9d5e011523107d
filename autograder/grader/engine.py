"""Grade submissions: rebuild each from the trusted release, run it sandboxed, judge its answers here.

Per submission: read and rebuild the notebook (notebook.py), run its code cells then the hidden
checks' calls in a sandbox (sandbox.py, runner.py), judge every returned value in this process
against references computed here (spec.judge_part), write the result (report.py). A crash or a
hang restarts the sandbox without the offending cell, or with the next check, within the
whole-notebook time limit; N submissions are graded at once, each sandbox with its own uid.
"""
from __future__ import annotations

import functools
import json
import queue
import re
import shutil
import signal
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autograder.grader import report
from autograder.grader.course import Course, LessonPlan
from autograder.grader.notebook import Cell, Unreadable, read_submission, reconstruct
from autograder.grader.sandbox import BASE_UID, RUNNER, Limits, Sandbox, claimed_slots, command, require_sandbox
from autograder.grader.spec import Raised, judge_part
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
                error["evalue"] = f"infinite loop? this cell ran past {self.cell_timeout:g} s and was interrupted"
                self.note(f"infinite loop? {self.cell_name(i)} ran past {self.cell_timeout:g} s and was interrupted")
            elif error["ename"] == "MemoryError":
                self.note(f"{self.cell_name(i)} ran out of memory (MemoryError): each submission may use "
                          f"at most {self.memory / 2**30:g} GiB")
        if isinstance(event.get("dropped"), int) and event["dropped"] > 0:
            self.note(f"{self.cell_name(i)} printed too much: its output was truncated "
                              f"({event['dropped']} characters dropped)")
        self.outputs[i] = {"out": out[:200_000], "error": error}


def describe_exit(returncode: int | None) -> str:
    if returncode is not None and returncode > 128 and (returncode - 128) in set(signal.Signals):
        sig = signal.Signals(returncode - 128)
        return f"signal {sig.value}, {_SIGNALS.get(sig, sig.name)}"
    return f"exit code {returncode}: os._exit or a fatal error"


def _index(value: Any, size: int) -> int | None:
    return value if type(value) is int and 0 <= value < size else None


def _next_probe(plan: LessonPlan, ex: Execution) -> int | None:
    """The next case to call: in part order, skipping the rest of a part once one of its cases failed."""
    for ks in plan.part_cases:
        for k in ks:
            if k not in ex.results:
                return k
            if k not in ex.passed:
                try:
                    ex.passed[k] = plan.cases[k].judge(ex.results[k]) is None
                except Exception:  # noqa: BLE001 - a check that cannot judge this answer fails it (see score)
                    ex.passed[k] = False
            if not ex.passed[k]:
                break
    return None


def _drive(box: Sandbox, plan: LessonPlan, ex: Execution, end: float, limits: Limits) -> tuple | None:
    """Feed one sandbox run until every needed check is answered (None) or it stops: (phase, index, why).
    Returning ends the sandbox: the caller's `with Sandbox(...)` kills it right away."""
    phase, index = "start", None
    deadline = min(time.monotonic() + limits.startup_timeout, end)
    while True:
        event = box.next_event(deadline)
        now = time.monotonic()
        if event is None:
            return phase, index, "notebook" if deadline >= end else "timeout"
        kind = event["ev"]
        if kind == "exit":
            return phase, index, f"died:{describe_exit(event['returncode'])}"
        if kind in ("overflow", "malformed"):
            return phase, index, kind
        if phase == "start" and kind == "ready":
            phase, deadline = "cells", min(now + plan.cell_timeout + limits.grace, end)
        elif phase == "cells" and kind in ("cell", "cell_done"):
            if (i := _index(event.get("i"), len(ex.code))) is None:
                return phase, index, "malformed"
            if kind == "cell_done":
                ex.record_cell(i, event)
            index, deadline = i, min(now + plan.cell_timeout + limits.grace, end)
        elif (phase == "cells" and kind == "cells_done") or (phase == "probes" and kind == "result"
                                                             and event.get("k") == index):
            if phase == "probes":
                ex.results[index] = decode_result(event)
            phase, index = "probes", _next_probe(plan, ex)
            if index is None:
                return None
            box.request(index)
            deadline = min(now + plan.cases[index].timeout + limits.grace, end)


def execute(plan: LessonPlan, code: list[Cell], job_dir: Path, probes_dir: Path, slot: int,
            limits: Limits) -> Execution:
    """Run the cells and the needed checks, restarting the sandbox after a crash or a hang."""
    ex = Execution(code, plan.cell_timeout, limits.memory)
    skip: set[int] = set()
    end = time.monotonic() + plan.notebook_timeout
    for _ in range(limits.attempts):
        argv = functools.partial(command, job_dir=job_dir, probes_dir=probes_dir, slot=slot, skip=skip,
                                 cell_timeout=plan.cell_timeout, cpu_seconds=int(plan.notebook_timeout) + 10,
                                 limits=limits)
        with Sandbox(argv, BASE_UID + slot, limits) as box:
            stop = _drive(box, plan, ex, end, limits)
        ex.console = box.console_text()
        if stop is None:
            return ex
        phase, index, why = stop
        if phase == "start" or (phase == "cells" and index is None):
            raise SandboxError(f"the sandbox did not start ({why}): {ex.console[-2000:]}")
        where = ex.cell_name(index) if phase == "cells" else f"checking {plan.cases[index].func}"
        if why == "notebook":
            ex.not_run = f"the notebook ran past {plan.notebook_timeout:g} s, the limit for a whole submission"
            ex.note(f"grading stopped: {ex.not_run} (while running {where}); later cells and checks did not run")
            if phase == "probes":
                ex.results[index] = Raised("NotRun", ex.not_run)
            return ex
        limit = plan.cell_timeout if phase == "cells" else plan.cases[index].timeout
        problem = {"timeout": f"infinite loop? it ran past {limit:g} s and could not be interrupted",
                   "overflow": f"it sent more than {limits.channel >> 20} MiB of results",
                   "malformed": "it wrote into the grader's report channel"}.get(why) or \
            f"the Python process died ({why.removeprefix('died:')})"
        if phase == "cells":
            skip.add(index)
            ex.outputs[index] = {"out": ex.outputs.get(index, {}).get("out", ""),
                                 "error": {"ename": "Stopped", "evalue": problem, "traceback": ""}}
            ex.note(f"{where}: {problem}; the notebook was run again without that cell")
        else:
            ex.results[index] = Raised("Timeout", f"{plan.cases[index].timeout:g} s") if why == "timeout" else \
                Raised("Unsupported", f"a result over {limits.channel >> 20} MiB") if why == "overflow" else \
                Raised("Crashed", problem)
            ex.note(f"while {where}: {problem}; the sandbox was restarted for the remaining checks")
    ex.not_run = f"grading gave up after {limits.attempts} runs of the notebook"
    ex.note(ex.not_run)
    return ex


def score(plan: LessonPlan, ex: Execution) -> list[dict]:
    """Each graded test cell's points, earned when all of its cases pass, and the feedback message."""
    parts = []
    for part, ks in zip(plan.parts, plan.part_cases):
        results = [ex.results.get(k, Raised("NotRun", ex.not_run)) for k in ks]
        try:   # cases _next_probe already judged passing are not judged again
            message = None if all(ex.passed.get(k) for k in ks) else judge_part(part, results)
        except Exception as exc:  # noqa: BLE001 - a bug in a hidden check must not stop grading
            message = f"the hidden check could not judge this answer ({type(exc).__name__}: {exc}); tell the instructor"
        if message:
            message += _definition_hint(ex, [plan.cases[k] for k in ks], results)
        points = plan.points[part.grade_id]
        parts.append({"grade_id": part.grade_id, "points": points, "score": 0.0 if message else points,
                      "message": message or ""})
    return parts


def _definition_hint(ex: Execution, cases: list, results: list) -> str:
    """When a function is undefined, say what went wrong in the cell that should have defined it."""
    for case, result in zip(cases, results):
        if isinstance(result, Raised) and result.type == "NameError":
            pattern = re.compile(rf"^\s*def\s+{re.escape(case.func)}\s*\(", re.M)
            defining = [i for i, cell in enumerate(ex.code) if pattern.search(cell.source)]
            error = ex.outputs.get(defining[-1], {}).get("error") if defining else None
            if error:
                return f" ({ex.cell_name(defining[-1])} failed: {error['ename']}: {error['evalue']})"
    return ""


def _result(plan: LessonPlan, student: str, status: str, total: float, parts: list[dict], notes: list[str],
            console: str = "") -> dict:
    """A submission's result.json (the grader adds sandbox_uid and seconds)."""
    return {"student": student, "lesson": plan.lesson, "max_score": plan.max_score, "status": status,
            "notes": notes, "console": console, "score": total, "parts": parts}


def grade_submission(plan: LessonPlan, student: str, path: Path, jobs_root: Path, probes_dir: Path,
                     slot: int, limits: Limits) -> tuple[dict, list[Cell], Execution | None]:
    try:
        cells = reconstruct(plan.release, read_submission(path, plan.lesson), plan.lesson)
    except Unreadable as exc:
        parts = [{"grade_id": g, "points": p, "score": 0.0, "message": f"not graded: {exc}"}
                 for g, p in plan.points.items()]
        return _result(plan, student, "unreadable", 0.0, parts, [str(exc)]), [], None
    code = [cell for cell in cells if cell.cell_type == "code"]
    job_dir = Path(tempfile.mkdtemp(dir=jobs_root))
    job_dir.chmod(0o755)
    (job_dir / "cells.json").write_text(json.dumps([cell.source for cell in code]))
    shutil.copy(RUNNER, job_dir / "runner.py")
    for name in ("cells.json", "runner.py"):
        (job_dir / name).chmod(0o644)
    try:
        ex = execute(plan, code, job_dir, probes_dir, slot, limits)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    parts = score(plan, ex)
    return _result(plan, student, "graded", sum(p["score"] for p in parts), parts, ex.notes, ex.console), cells, ex


def discover(submitted: Path, lessons: list[str], log: Callable[[str], None]) -> list[tuple[str, str, Path]]:
    """(student, lesson, notebook path) for nbgrader's layout submitted/<student>/<lesson>/<lesson>.ipynb."""
    items = []
    for student in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted(p for p in student.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in lessons:
                items.append((student.name, folder.name, folder / f"{folder.name}.ipynb"))
            else:
                log(f"skipping {folder}: {folder.name} is not a lesson of this course")
    return items


def grade_all(submitted: Path, work: Path, jobs: int, course: Course = Course(), limits: Limits = Limits(),
              run_seed: int | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Grade every submission under `submitted`, `jobs` at a time; write work/autograded/...; return results."""
    require_sandbox()
    items = discover(submitted, course.lessons(), log)
    plans = {lesson: course.plan(lesson, run_seed) for lesson in sorted({lesson for _, lesson, _ in items})}
    slots: queue.Queue[int] = queue.Queue()
    with claimed_slots(jobs) as claimed, tempfile.TemporaryDirectory(prefix="convlab-grade-") as tmp:
        for slot in claimed:
            slots.put(slot)
        root = Path(tmp)
        for lesson, plan in plans.items():
            plan.write_probes(root / "probes" / lesson)
        (root / "jobs").mkdir()

        def grade_one(item: tuple[str, str, Path]) -> dict:
            student, lesson, path = item
            slot = slots.get()
            started = time.monotonic()
            try:
                result, cells, ex = grade_submission(plans[lesson], student, path, root / "jobs",
                                                     root / "probes" / lesson, slot, limits)
            except Exception as exc:  # noqa: BLE001 - one submission's grader failure never stops the others
                result, cells, ex = _result(plans[lesson], student, "error", 0.0, [],
                                            [f"grader error, not the student's fault: {exc}"]), [], None
                log(traceback.format_exc())
            finally:
                slots.put(slot)
            result.update(sandbox_uid=BASE_UID + slot, seconds=round(time.monotonic() - started, 2))
            report.write_result(work, result, cells, ex)
            log(f"{student:>24} {lesson:<20} {result['score']:g}/{result['max_score']:g}  {result['status']}")
            return result

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(grade_one, items))
