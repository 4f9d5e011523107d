"""The process environment `python -m bench` measures in (imports no numpy: it runs before numpy loads).

Two settings decide the ratios on this machine kind more than the code does, so the benchmark
re-executes itself with them fixed (and records them) unless run with --as-is:

* OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset. Some machines here force older kernels for the
  sake of older OpenBLAS builds; numpy's current OpenBLAS then runs its Haswell kernels on an
  AVX-512 CPU at half its float32 rate. The benchmark checks every output before timing it.
* glibc keeps freed memory (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_). A
  page fault costs about 2.4 us in this VM, and whether glibc handed a call's large buffers back
  to the kernel (to fault them in again on the next call) depended on what ran before: it cost
  PyTorch's first layer 4,000 faults (5 ms instead of 0.6 ms) per call in one harness. That is a
  cost of the allocator's mood, not of the code being timed.

OPENBLAS_THREAD_TIMEOUT stays at numpy's default, which is what a notebook runs with;
docs/benchmark.md shows how OpenBLAS's spinning idle thread affects the results (and that
OPENBLAS_THREAD_TIMEOUT=4, idle threads sleeping at once, is far slower here). Between two
implementations bench.common.race waits until such threads have gone idle.
"""
from __future__ import annotations

import json
import os
import sys

MARK = "CONVLAB_BENCH_ENVIRONMENT"
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SET = {
    "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),  # glibc's largest allowed value on 64-bit
    "MALLOC_TOP_PAD_": str(64 << 20),
}


def changes(environ: dict[str, str]) -> dict[str, dict]:
    """What the measurement environment changes relative to `environ`: {"unset": {...}, "set": {...}}."""
    return {"unset": {k: environ[k] for k in UNSET if k in environ},
            "set": {k: v for k, v in SET.items() if environ.get(k) != v}}


def reexec_unless_ready(argv: list[str]) -> None:
    """Replace this process by `python -m bench argv` in the measurement environment, unless it is
    already in it or argv asks for --as-is. Returns only when no re-execution is needed."""
    if "--as-is" in argv or MARK in os.environ:
        return
    environ = dict(os.environ)
    made = changes(environ)
    for name in UNSET:
        environ.pop(name, None)
    environ.update(SET)
    environ[MARK] = json.dumps(made)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], environ)


def applied() -> dict | None:
    """The changes this process runs with (None when run --as-is or imported without re-execution)."""
    return json.loads(os.environ[MARK]) if MARK in os.environ else None
