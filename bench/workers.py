"""Each implementation the benchmark races runs in a process of its own.

One process running several libraries measures how they disturb each other, not how fast each one
is. On this machine kind: after `import torch`, numpy's 64x288 @ 288x16384 float32 product took
1.8-3.2 ms instead of 1.5-1.7 ms, varying from one process to the next; the textbook im2col's
large float64 buffers, timed in the same process, slowed the course's reference by up to 50 % on
the next call; and glibc handing memory back to the kernel between libraries cost PyTorch 4,000
page faults (5 ms instead of 0.6 ms) per call. Course code never runs beside torch or the textbook.

So the parent process asks: a worker process per implementation ("reference", "textbook",
"torch") builds each operation once on the arrays it is sent, and on request returns its outputs
or times one call (an untimed warm-up call first). The parent interleaves those requests round by
round (bench.common.race), so all implementations still share the machine's ups and downs.
"""
from __future__ import annotations

import atexit
import functools
import importlib
import multiprocessing
from typing import Callable

import numpy as np

TORCH_OPERATIONS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward")


def _torch_call(torch, operation: str, arrays: list[np.ndarray], kwargs: dict) -> Callable[[], tuple]:
    """A no-argument function running PyTorch's `operation` on `arrays`, returning numpy outputs."""
    F = torch.nn.functional
    if operation == "conv2d_forward":
        x, w, b = (torch.from_numpy(a) for a in arrays)

        def call():
            with torch.no_grad():
                return (F.conv2d(x, w, b, stride=kwargs["stride"], padding=kwargs["pad"]).numpy(),)
        return call
    if operation == "conv2d_backward":  # autograd on a graph built once: times the backward pass only
        dy, x, w, b = (torch.from_numpy(a) for a in arrays)
        x, w, b = (t.requires_grad_() for t in (x, w, b))
        graph = F.conv2d(x, w, b, stride=kwargs["stride"], padding=kwargs["pad"])
        return lambda: tuple(g.numpy() for g in torch.autograd.grad(graph, (x, w, b), dy, retain_graph=True))
    if operation == "maxpool2d_forward":
        x = torch.from_numpy(arrays[0])

        def call():
            with torch.no_grad():
                return (F.max_pool2d(x, kwargs["pool"], kwargs["stride"]).numpy(),)
        return call
    if operation == "maxpool2d_backward":
        dy, x = torch.from_numpy(arrays[0]), torch.from_numpy(arrays[1]).requires_grad_()
        graph = F.max_pool2d(x, kwargs["pool"], kwargs["stride"])
        return lambda: (torch.autograd.grad(graph, x, dy, retain_graph=True)[0].numpy(),)
    raise ValueError(f"unknown torch operation {operation!r}: choose from {', '.join(TORCH_OPERATIONS)}")


def _function(target: tuple[str, ...]) -> Callable:
    """("reference", lesson, name): the course's reference from solutions/; (module, name) otherwise."""
    if target[0] == "reference":
        from autograder.grader.reference import load_reference
        return getattr(load_reference(target[1]), target[2])
    return getattr(importlib.import_module(target[0]), target[1])


def _serve(connection, kind: str, threads: int | None) -> None:
    """The worker: answers ("build", target, arrays, kwargs), ("outputs", key), ("time", key), ("stop",)."""
    if kind == "torch":
        try:
            import torch
        except ImportError:
            connection.send(None)
            return
        if threads:
            torch.set_num_threads(threads)
        connection.send(f"{torch.__version__} ({torch.get_num_threads()} threads, "
                        f"{torch.backends.cpu.get_cpu_capability()})")
    else:
        if threads:
            from threadpoolctl import threadpool_limits
            threadpool_limits(limits=threads)
        connection.send(f"numpy {np.__version__}")
    from bench.common import local_timer  # here, not at the top: bench.common imports this module
    calls: list[tuple[Callable[[], object], Callable[[], float]]] = []  # (call, its local_timer)
    while True:
        request = connection.recv()
        if request[0] == "stop":
            return
        try:
            if request[0] == "build":
                _, target, arrays, kwargs = request
                if kind == "torch":
                    call = _torch_call(torch, target, arrays, kwargs)
                else:
                    call = functools.partial(_function(target), *arrays, **kwargs)
                calls.append((call, local_timer(call)))
                answer = len(calls) - 1
            elif request[0] == "outputs":
                answer = calls[request[1]][0]()
            else:  # "time"
                answer = calls[request[1]][1]()
            connection.send(("ok", answer))
        except Exception as error:  # noqa: BLE001 - reported in the parent, where the run decides
            connection.send(("error", f"{type(error).__name__}: {error}"))


class Operation:
    """One operation built in a worker: outputs() and timer() (seconds of one timed call)."""

    def __init__(self, worker: Worker, key: int):
        self._worker, self._key = worker, key

    def outputs(self):
        return self._worker.ask("outputs", self._key)

    def timer(self) -> float:
        return self._worker.ask("time", self._key)


class Worker:
    """A process of its own for one implementation. kind "torch" imports PyTorch (`version` is
    None when it is not installed); any other kind runs numpy functions."""

    def __init__(self, kind: str, threads: int | None = None):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this one's state
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, kind, threads), daemon=True)
        self._process.start()
        child.close()
        self.version: str | None = self._connection.recv()
        atexit.register(self.close)

    def ask(self, *request):
        self._connection.send(request)
        status, answer = self._connection.recv()
        if status != "ok":
            raise RuntimeError(f"benchmark worker: {answer}")
        return answer

    def build(self, target, arrays: list[np.ndarray], **kwargs) -> Operation | None:
        """`target` (a torch operation name, or a function as in _function) on these arrays, in this
        worker; None when the worker has no torch."""
        return Operation(self, self.ask("build", target, arrays, kwargs)) if self.version else None

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._connection.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()


_WORKERS: dict[str, Worker] = {}
_THREADS: int | None = None


def set_threads(threads: int | None) -> None:
    """Thread count (numpy's BLAS, torch's pool) for workers started from now on."""
    global _THREADS
    _THREADS = threads


def worker(kind: str) -> Worker:
    """The benchmark's worker for `kind` ("reference", "textbook", "torch", ...), started on first use."""
    if kind not in _WORKERS:
        _WORKERS[kind] = Worker(kind, _THREADS)
    return _WORKERS[kind]
