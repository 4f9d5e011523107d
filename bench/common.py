"""Shared by the bench sections: side-by-side timing, the machine, the course references, text tables."""
from __future__ import annotations

import functools
import os
import platform
import time
from typing import Callable, NamedTuple

import numpy as np

from bench import workers


class Timing(NamedTuple):
    median: float  # seconds per call: what the tables report
    best: float    # the fastest call: how far other processes' load pushed the median up


#: Seconds to wait before each switch to another implementation: OpenBLAS's idle workers spin for
#: 2**28 cycles (about 0.1 s) after a call, and would otherwise take the cores from the next library.
SETTLE_SECONDS = 0.15

Timer = Callable[[], float]  # runs its call once untimed (usually), then once timed: seconds


def local_timer(call: Callable[[], object], warmup: bool = True) -> Timer:
    """A Timer for a call in this process. The untimed call warms caches and wakes the call's own
    threads, as in a loop of calls; warmup=False skips it (for slow loops)."""
    def timer() -> float:
        if warmup:
            call()
        start = time.perf_counter()
        call()
        return time.perf_counter() - start
    return timer


def race(timers: dict[str, Timer], repeats: int, settle: float | None = None) -> dict[str, Timing]:
    """Seconds per call of each candidate, measured in interleaved rounds.

    Every round waits `settle` seconds (default SETTLE_SECONDS) before each candidate, so no
    library's idle threads still spin on the cores, then takes one timing of it (a local_timer, or
    a bench.workers.Operation's timer, which times in its worker process). Interleaving spreads the load of
    other processes over all candidates alike (which softens, but does not remove, its effect on
    their ratios).
    """
    settle = SETTLE_SECONDS if settle is None else settle
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            if settle and len(timers) > 1:
                time.sleep(settle)
            times[name].append(timer())
    return {name: Timing(float(np.median(t)), min(t)) for name, t in times.items()}


def limit_threads(threads: int) -> None:
    """Run numpy's BLAS here, and numpy's BLAS and torch in the workers started from now on, on
    `threads` threads."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=threads)
    workers.set_threads(threads)


class LocalOperation:
    """An operation run in this process, with the interface of a workers.Operation."""

    def __init__(self, call: Callable[[], object]):
        self.outputs, self.timer = call, local_timer(call)


def matmul_peak(repeats: int, n: int = 2048) -> float:
    """The machine's float32 matmul peak as numpy reaches it, in GFLOP/s: the fastest of `repeats`
    n x n np.matmul calls (a peak is the best rate, so here the fastest call, not the median, counts)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return round(2 * n**3 / race({"matmul": local_timer(lambda: a @ a)}, repeats)["matmul"].best / 1e9, 1)


def cores_busy_elsewhere(seconds: float = 1.0) -> float | None:
    """How many cores other processes kept busy while this one slept for `seconds` (from /proc/stat;
    None where that is not available). Unlike the load average it does not remember the last minute."""
    def busy_and_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return sum(ticks) - idle, sum(ticks)
    try:
        busy0, total0 = busy_and_total()
        time.sleep(seconds)
        busy1, total1 = busy_and_total()
    except (OSError, ValueError, IndexError):
        return None
    return round((os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1), 2)


def machine() -> dict:
    """What the numbers were measured on: CPU, cores, BLAS and library versions, load."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = {}
    try:
        from threadpoolctl import threadpool_info
        blas = next((i for i in threadpool_info() if i["user_api"] == "blas"), {})
    except ImportError:
        pass
    torch_version = workers.worker("torch").version or "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '?')} "
                f"({blas.get('num_threads', '?')} threads, {blas.get('architecture', '?')} kernels)",
        "torch": torch_version,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),  # forces OpenBLAS's kernel choice
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cores_busy_elsewhere": cores_busy_elsewhere(),
    }


def reference_function(lesson: str, name: str) -> tuple[Callable | None, str]:
    """(the course's reference `name` from solutions/<lesson>.py, "") or (None, why it is unavailable)."""
    from autograder.coursedir import SOLUTIONS
    from autograder.grader.reference import load_reference
    if not (SOLUTIONS / f"{lesson}.py").exists():
        return None, f"solutions/{lesson}.py not present"
    try:
        namespace = load_reference(lesson)
    except Exception as error:  # noqa: BLE001 - a lesson being edited must not stop the benchmark
        return None, f"{lesson} does not load: {type(error).__name__}: {error}"
    function = getattr(namespace, name, None)
    return (function, "") if function else (None, f"{lesson} defines no {name}")


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _mismatch(outputs: dict[str, object], oracle: str) -> list[str]:
    """Which outputs differ from the oracle's beyond float32 round-off (empty when all agree)."""
    expected = _as_tuple(outputs[oracle])
    return [f"{name} differs from {oracle}" for name, got in outputs.items()
            if any(g.shape != e.shape or not np.allclose(g, e, rtol=1e-3, atol=1e-3 * float(np.abs(e).max()))
                   for g, e in zip(_as_tuple(got), expected))]


def measure_pass(impls: dict, args: tuple, kwargs: dict, n_batched: int, batch: int,
                 torch_op: workers.Operation | None, repeats: int, naive_repeats: int,
                 naive_batch: int | None, targets: dict | None = None) -> dict:
    """Milliseconds per call of each implementation of one pass, outputs cross-checked first.

    impls maps "naive", "textbook", "reference" (any of them) to a function called as f(*args, **kwargs),
    or None. Those named in `targets` (name -> where a worker finds the function) are timed in a
    worker process of their own (bench/workers.py), the others in this one; torch_op is PyTorch's,
    in its worker (or None). With a naive_batch, the naive loops get the first naive_batch images
    of the first n_batched args and their time is scaled to the full batch (right only for loops
    over the batch); with None they run on the full batch. The naive loops always run here.
    """
    targets = targets or {}
    operations = {name: workers.worker(name).build(targets[name], list(args), **kwargs) if name in targets
                  else LocalOperation(functools.partial(f, *args, **kwargs))
                  for name, f in impls.items() if f and name != "naive"}
    if torch_op:
        operations["torch"] = torch_op
    outputs = {name: operation.outputs() for name, operation in operations.items()}
    oracle = next((name for name in ("torch", "textbook", "reference") if name in outputs), None)
    problems = _mismatch(outputs, oracle) if oracle else []
    if "reference" in outputs:
        problems += [f"reference returns {a.dtype} for float32 input" for a in _as_tuple(outputs["reference"])
                     if a.dtype != np.float32][:1]
    timings = race({name: operation.timer for name, operation in operations.items()}, repeats)
    if impls.get("naive"):
        naive_batch = naive_batch or batch
        small_args = tuple(a[:naive_batch] for a in args[:n_batched]) + args[n_batched:]
        naive = functools.partial(impls["naive"], *small_args, **kwargs)
        if small_oracle := impls.get("reference") or impls.get("textbook"):
            problems += _mismatch({"naive": naive(), "oracle": small_oracle(*small_args, **kwargs)}, "oracle")
        small = race({"naive": local_timer(naive, warmup=False)}, naive_repeats)["naive"]
        timings["naive"] = Timing(*(t * batch / naive_batch for t in small))
    return {"ms": {name: round(t.median * 1e3, 3) for name, t in timings.items()},
            "best_ms": {name: round(t.best * 1e3, 3) for name, t in timings.items()},
            "check": "; ".join(problems) or "ok"}


def table(headers: list[str], rows: list[list]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [headers] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
