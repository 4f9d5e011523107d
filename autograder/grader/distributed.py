"""Grading on a Dask cluster (`make autograde SCHEDULER=tcp://host:8786`, docs/grading.md).

The instructor's process does everything but the sandboxed run: it finds, reads and rebuilds the
submissions, reuses unchanged results, and writes every result into WORK. Each rebuilt submission
goes to a Dask worker (`dask worker tcp://host:8786` in a checkout of the same commit), which
runs it in a fresh sandbox of its own and judges it exactly as the local pool does
(engine.sandboxed), then returns the result and the executed notebook.

- **Same grader everywhere.** At connect time every worker reports its grader version per lesson
  (resume.grader_version: grader code, convlab, solutions, checks, release), its numpy and whether
  it can sandbox; a worker that differs is refused with a message saying what differs, and the
  submissions go only to the workers that match. Each task checks the version again.
- **Nothing lost, nothing twice.** A worker that dies mid-run (killed, out of memory) has its
  tasks rerun elsewhere by the scheduler, at most `distributed.scheduler.allowed-failures` times
  (3 by default); a submission whose runs killed that many workers gets one "error" result saying
  so. A crash inside the sandbox is the local path's business (Limits.attempts) and never kills
  a worker. The instructor writes one result per submission, when its task comes back; a run that
  is interrupted and started again reuses what was written (resume.py).

Dask (`distributed`) is imported only here, and this module only when a scheduler is given.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import pickle
import platform
import queue
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from autograder.grader import resume
from autograder.grader.course import Course, LessonPlan
from autograder.grader.engine import Interrupted, grader_fault, sandboxed
from autograder.grader.notebook import Cell
from autograder.grader.sandbox import Limits, Mode, SandboxUnavailable, claimed_slots, require_sandbox

CONNECT_TIMEOUT = 30      # seconds to reach the scheduler
WORKER_WAIT = 120         # seconds to wait for a matching worker when there is none
POLL = 2.0                # seconds between looks at the workers while a task runs
IN_FLIGHT = 2             # tasks per worker thread handed to the scheduler at once (keeps workers busy)
KEPT_PLANS = 12           # lesson plans (with their check inputs) a worker keeps for the next task


class DaskUnavailable(SandboxUnavailable):
    """No scheduler, or no worker that may grade: nowhere to sandbox, so the run stops before grading."""


# ---------------------------------------------------------------- worker side (runs in `dask worker`)

def worker_identity(course: Course | None) -> dict:
    """What the instructor compares before sending this worker anything."""
    course = course or Course()
    try:
        mode, problem = require_sandbox().name, None
    except SandboxUnavailable as exc:
        mode, problem = None, str(exc)
    return {"versions": {lesson: resume.grader_version(course, lesson) for lesson in course.lessons()},
            "numpy": np.__version__, "python": platform.python_version(), "mode": mode, "problem": problem,
            "checkout": str(Path(__file__).resolve().parents[2])}


class _Worker:
    """One worker process's sandbox slots (one per Dask thread, held while it lives), its private
    folder, and each lesson's plan and check inputs, built once."""

    def __init__(self, nthreads: int):
        self.mode = require_sandbox()
        self.held = contextlib.ExitStack()
        atexit.register(self.held.close)
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in self.held.enter_context(claimed_slots(nthreads, self.mode)):
            self.slots.put(slot)
        self.root = self.held.enter_context(resume.grading_folder())
        (self.root / "jobs").mkdir()
        self.plans: dict[tuple, tuple[LessonPlan, Path]] = {}
        self.lock = threading.Lock()

    def plan(self, course: Course, lesson: str, run_seed: int | None) -> tuple[LessonPlan, Path]:
        key = (course, lesson, run_seed)
        with self.lock:
            if key not in self.plans:
                if len(self.plans) >= KEPT_PLANS:       # a long-lived worker serves run after run
                    shutil.rmtree(self.plans.pop(next(iter(self.plans)))[1], ignore_errors=True)
                plan, probes = course.plan(lesson, run_seed), self.root / "probes" / uuid.uuid4().hex
                plan.write_probes(probes)
                self.plans[key] = plan, probes
            return self.plans[key]


_state: _Worker | None = None
_state_lock = threading.Lock()


def grade_on_worker(course: Course | None, lesson: str, version: str, student: str, cells: list[Cell],
                    run_seed: int | None, limits: Limits) -> tuple[dict, dict | None]:
    """The Dask task: one rebuilt submission, run in a fresh sandbox here and judged here."""
    global _state
    from distributed import get_worker
    worker = get_worker()
    course = course or Course()
    if (here := resume.grader_version(course, lesson)) != version:
        raise RuntimeError(f"worker {worker.address} has grader version {here} for {lesson}, the instructor "
                           f"{version}: its checkout changed after it connected; restart it")
    with _state_lock:
        if _state is None:
            _state = _Worker(worker.state.nthreads)
    plan, probes = _state.plan(course, lesson, run_seed)
    slot = _state.slots.get()
    try:
        result, notebook = sandboxed(plan, student, cells, _state.root / "jobs", probes, slot, limits, _state.mode,
                                     log=logging.getLogger(__name__).error)   # into the worker's log
    finally:
        _state.slots.put(slot)
    result["worker"] = worker.address
    return result, notebook


class _Task:
    """A call of grade_on_worker, sent as the bytes of its pickle with pickle.loads as the task's
    function: unpickling it on the worker makes the call. The scheduler sees only bytes and a
    function of the standard library, so it needs no ConvLab (any `dask scheduler` will do)."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return grade_on_worker, self.args


# ---------------------------------------------------------------- instructor side

def refusal(mine: dict, theirs: dict | BaseException) -> str | None:
    """Why a worker may not grade for this instructor (None: it may)."""
    if isinstance(theirs, BaseException):
        return (f"it cannot load ConvLab's grader ({type(theirs).__name__}: {theirs}): start it in the course "
                "checkout with the course's venv (`make worker SCHEDULER=...`)")
    if theirs["problem"]:
        return f"it cannot sandbox: {theirs['problem']}"
    differ = [f"{lesson} (version there {theirs['versions'].get(lesson, 'missing')}, here {version})"
              for lesson, version in mine["versions"].items() if theirs["versions"].get(lesson) != version]
    if differ:
        more = f" and {len(differ) - 2} more lessons" if len(differ) > 2 else ""
        return (f"its grader (grader code, convlab, solutions, checks or release) differs from this one for "
                f"{', '.join(differ[:2])}{more}: check out the same commit in {theirs['checkout']} (`git log -1` "
                "on both machines), run `make release` there, and restart the worker")
    if theirs["numpy"] != mine["numpy"]:
        return f"it has numpy {theirs['numpy']}, this machine {mine['numpy']}: install requirements.lock there"
    return None


class DaskGrader:
    """The `remote` of batch.grade_all: sends each rebuilt submission to a matching Dask worker."""

    def __init__(self, scheduler: str, course: Course, log=print, worker_wait: float = WORKER_WAIT,
                 connect_timeout: float = CONNECT_TIMEOUT):
        try:
            from distributed import Client
        except ImportError:
            raise DaskUnavailable("grading on a Dask scheduler needs the `distributed` package: "
                                  "`.venv/bin/pip install -r requirements.txt -c requirements.lock`") from None
        self.scheduler, self.course, self.log = scheduler, course, log
        self.remote_course = None if course == Course() else course   # None: the worker's own checkout
        self.worker_wait, self.cancelled, self.lock = worker_wait, threading.Event(), threading.Lock()
        self.mine = worker_identity(course)
        try:
            self.client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskUnavailable(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start it with "
                                  "`dask scheduler` on that machine, or check the address and port") from None
        self.workers: dict[str, int] = {}
        self.refused: dict[str, str] = {}
        self.mode = Mode("uid", 0)
        self.admit(wait=worker_wait)
        if not self.workers:
            self.client.close()
            raise DaskUnavailable(
                f"no Dask worker at {scheduler} may grade: all {len(self.refused)} were refused (above)" if self.refused
                else f"no Dask worker is connected to {scheduler}: start one in the course checkout with "
                f"`make worker SCHEDULER={scheduler}`")

    def admit(self, wait: float = 0) -> None:
        """Check the workers that are connected now (waiting up to `wait` s for one) and keep those
        that match; say once why each other one is refused."""
        with contextlib.suppress(TimeoutError):
            if wait:
                self.client.wait_for_workers(1, timeout=wait)
        threads = {addr: info["nthreads"] for addr, info in self.client.scheduler_info(n_workers=-1)["workers"].items()}
        if new := [addr for addr in threads if addr not in self.workers and addr not in self.refused]:
            identities = self.client.run(worker_identity, self.remote_course, workers=new, on_error="return")
            for addr in new:
                if why := refusal(self.mine, identities.get(addr, RuntimeError("it left before answering"))):
                    self.refused[addr] = why
                    self.log(f"refused Dask worker {addr}: {why}")
                else:
                    self.workers[addr] = threads[addr]
                    self.mode = Mode(identities[addr]["mode"], 0)
        self.workers = {addr: n for addr, n in self.workers.items() if addr in threads}
        self.checked = time.monotonic()

    @property
    def jobs(self) -> int:
        return min(512, max(1, IN_FLIGHT * sum(self.workers.values())))

    def describe(self) -> str:
        return (f"dask: {len(self.workers)} worker(s) with {sum(self.workers.values())} thread(s) at "
                f"{self.scheduler}, each submission in a fresh sandbox there ({self.mode.name} mode)")

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> DaskGrader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _submit(self, plan: LessonPlan, student: str, cells: list[Cell], limits: Limits, run_seed: int | None):
        task = _Task(self.remote_course, plan.lesson, self.mine["versions"][plan.lesson], student, cells, run_seed,
                     limits)
        return self.client.submit(pickle.loads, pickle.dumps(task), key=f"grade-{student}-{plan.lesson}-"
                                  f"{uuid.uuid4().hex[:8]}", workers=list(self.workers), allow_other_workers=False,
                                  pure=False)

    def __call__(self, plan: LessonPlan, student: str, cells: list[Cell], limits: Limits,
                 run_seed: int | None) -> tuple[dict, dict | None]:
        """engine.sandboxed's (result, executed notebook), from a worker; a fault result if none could."""
        from distributed import KilledWorker
        submit = functools.partial(self._submit, plan, student, cells, limits, run_seed)
        future, allowed, alone_since = submit(), set(self.workers), None
        while True:
            try:
                return future.result(timeout=POLL)
            except TimeoutError:
                pass
            except KilledWorker:
                return grader_fault(plan, student, "every Dask worker that ran it died (killed, or out of memory) "
                                    "as many times as the scheduler allows (distributed.scheduler.allowed-failures), "
                                    "so it was not retried again; a later run grades it again"), None
            except Exception as exc:  # noqa: BLE001 - one submission's failure never stops the others
                return grader_fault(plan, student, f"on a Dask worker: {type(exc).__name__}: {exc}"), None
            if self.cancelled.is_set():
                future.cancel()
                raise Interrupted(f"{student}/{plan.lesson}")
            with self.lock:
                if time.monotonic() - self.checked > POLL:
                    self.admit()
            if self.workers and not allowed & set(self.workers):   # its workers left, others joined
                future.cancel()
                future, allowed, alone_since = submit(), set(self.workers), None
            elif not self.workers:
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > self.worker_wait:
                    future.cancel()
                    return grader_fault(plan, student, f"no matching Dask worker was connected to {self.scheduler} "
                                        f"for {self.worker_wait:g} s"), None
