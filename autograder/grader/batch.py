"""Grade every submission of a run, N at a time, each in a sandbox of its own (or on Dask workers).

Per submission: find it (submissions.py), reuse its earlier result when nothing changed (resume.py),
rebuild and run it (engine.py), write its result (report.py); then one line per submission and a
summary of the run.
"""
from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from autograder.coursedir import grade_id
from autograder.grader import report, resume
from autograder.grader.course import Course, LessonPlan
from autograder.grader.engine import FAULT, grader_fault, not_graded, sandboxed
from autograder.grader.notebook import Cell, Unreadable
from autograder.grader.sandbox import Limits, Mode, claimed_slots, require_sandbox
from autograder.grader.submissions import Found, discover, read_cells


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


STOP_AFTER = 3   # sandboxes in a row that did not start: the machine's set-up, not the submissions


class StartWatch:
    """Stops a run whose sandboxes do not start (a broken venv, a missing bind, a full disk): once
    STOP_AFTER sandboxed runs in a row did not start, the submissions not started yet are left without
    a result, for the next run, instead of each getting the same grader fault."""

    def __init__(self) -> None:
        self.lock, self.in_a_row, self.why = threading.Lock(), 0, None

    def record(self, result: dict) -> None:
        with self.lock:
            self.in_a_row = 0 if result.get("sandbox_started", True) else self.in_a_row + 1
            if self.in_a_row >= STOP_AFTER and self.why is None:
                where = f" on Dask worker {result['worker']}" if "worker" in result else ""
                self.why = report.printable(result["notes"][0].removeprefix(FAULT))[:300] + where

    @property
    def stopped(self) -> bool:
        return self.why is not None


class GradingRun(list):
    """The results (list of result dicts), with what was found but could not be given a result, and
    how many were left ungraded because the run stopped (`stopped_why`)."""

    def __init__(self, results: list[dict], ignored: list[str], mode: Mode, not_started: int = 0,
                 stopped_why: str | None = None):
        super().__init__(results)
        self.ignored, self.mode, self.not_started, self.stopped_why = ignored, mode, not_started, stopped_why

    def counts(self) -> dict[str, int]:
        """graded, unreadable, skipped (results and ignored files), grader faults."""
        status = [r["status"] for r in self]
        return {"graded": status.count("graded"), "unreadable": status.count("unreadable"),
                "skipped": status.count("skipped") + len(self.ignored), "grader faults": status.count("error")}

    def summary(self) -> str:
        counts = self.counts()
        faults = report.counted(counts.pop("grader faults"), "grader fault")
        line = "summary: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f", {faults}"
        if self.stopped_why is not None:
            line += (f"; stopped after {STOP_AFTER} in a row ended in \"{self.stopped_why}\", so "
                     f"{report.counted(self.not_started, 'more submission')} got no result: this machine's set-up, "
                     "not the students' work; fix it, then the same command grades them")
        return line

    @property
    def complete(self) -> bool:
        """Every submission found was graded."""
        counts = self.counts()
        return counts["unreadable"] == counts["skipped"] == counts["grader faults"] == self.not_started == 0


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
    stopping, watch = threading.Event(), StartWatch()
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

        def grade_one(item: Found) -> dict | None:
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
                if watch.stopped:
                    return None
                result, notebook = remote(plans[lesson], student, cells, limits, run_seed) if remote else \
                    grade_here(plans[lesson], student, cells)
                watch.record(result)
            result.update(seed="fixed" if run_seed is None else run_seed, fingerprint=print_)
            report.write_outcome(work, result, notebook)
            return result

        results: list[tuple[int, dict]] = []
        not_started = 0
        start = time.monotonic()
        bar = tqdm(total=len(found), unit="notebook", file=sys.stderr, dynamic_ncols=True,
                   disable=not progress or not sys.stderr.isatty(),
                   bar_format="{n_fmt}/{total_fmt} |{bar}| {elapsed} elapsed, {remaining} left")
        with bar, ThreadPoolExecutor(max_workers=jobs) as pool, _stop_on_interrupt(pool, stopping, remote):
            futures = {pool.submit(grade_one, item): n for n, item in enumerate(found)}
            for future in as_completed(futures):
                if (result := future.result()) is None:
                    not_started += 1
                    continue
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
    return GradingRun([result for _, result in sorted(results, key=lambda pair: pair[0])], ignored, mode,
                      not_started, watch.why)
