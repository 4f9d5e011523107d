"""Runs INSIDE the sandbox: executes a submission's code cells in IPython, then answers probe calls.

Standalone on purpose (stdlib, numpy, IPython and the student package convlab only): the sandbox
holds this script, the submission's cells and the probe inputs, and nothing of the grader, the
hidden checks or the references. The grader treats everything this process reports as untrusted data and judges it
outside (autograder.grader.wire decodes it with size caps and no pickle).

    python runner.py JOB_DIR PROBES_DIR CHANNEL_FD SKIP CELL_TIMEOUT

JOB_DIR/cells.json is the list of cell sources; SKIP lists cell indices not to run ("3,7" or "-").
Reports are JSON lines on CHANNEL_FD; after the cells, each line "k" on stdin asks for probe
PROBES_DIR/k.json ({"func", "args", "kwargs", "timeout"}) to be called and its result reported.
A result's arrays follow its line as raw .npy bytes: the line says {"frames": [their sizes]} and
each array {"__ndarray__": its frame's index}.
"""
import base64
import io
import json
import os
import signal
import sys

import numpy as np

if os.environ.get("CONVLAB_PATH"):   # the grader's own convlab (sandbox.command)
    sys.path.insert(0, os.environ["CONVLAB_PATH"])
from convlab.expect import changed_argument  # noqa: E402 - after the path it comes from

OUTPUT_CAP = 100_000    # characters of text output kept per cell (the rest is counted, not kept)
MESSAGE_CAP = 2_000     # characters of an exception message
FIGURE_CAP = 8          # matplotlib figures kept per cell, as PNG (the feedback page shows them)
MAX_DEPTH = 32          # nesting of lists/tuples/dicts in a result
MAX_INT_BITS = 4096     # JSON writes ints as decimal text, which Python refuses past 4,300 digits
MAX_VALUES = 100_000    # values in a result's lists/tuples/dicts: the grader parses them into objects


class Timeout(BaseException):
    """Raised by the alarm in a cell or call that runs too long; BaseException so that a student's
    `except Exception` cannot swallow it (the grader kills the sandbox if it is swallowed anyway)."""


class Unsupported(Exception):
    """A result that is not plain data (arrays, numbers, str, None, lists/tuples/dicts of these)."""


def encode(value, depth=0, budget=None, frames=None):
    """Plain data -> JSON-able structure; arrays and numpy scalars as .npy (no pickle): base64 in
    the JSON, or, given the list `frames`, appended to it as bytes and named by their index there.
    `budget` ([n], for results): at most n values in all, so that parsing them stays small."""
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise Unsupported(f"a structure of more than {MAX_VALUES:,} values in lists, tuples and dicts "
                              "(return a numpy array instead)")
    if depth > MAX_DEPTH:
        raise Unsupported(f"a structure nested more than {MAX_DEPTH} levels deep")
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise Unsupported(f"an integer of {value.bit_length():,} bits (more than {MAX_INT_BITS})")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise Unsupported(f"a numpy {'array' if array.ndim else 'scalar'} of dtype {array.dtype}")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        key = "__ndarray__" if isinstance(value, np.ndarray) else "__scalar__"
        if frames is None:
            return {key: base64.b64encode(buffer.getvalue()).decode("ascii")}
        frames.append(buffer.getbuffer())
        return {key: len(frames) - 1}
    if type(value) is tuple:
        return {"__tuple__": [encode(item, depth + 1, budget, frames) for item in value]}
    if type(value) is list:
        return [encode(item, depth + 1, budget, frames) for item in value]
    if type(value) is dict:
        if not all(type(key) is str for key in value):
            raise Unsupported("a dict with keys that are not strings")
        return {"__dict__": [[key, encode(item, depth + 1, budget, frames)] for key, item in value.items()]}
    raise Unsupported(f"an object of type {type(value).__name__}")


def decode(data):
    """Inverse of encode, for the grader's own probe inputs (trusted: the grader wrote them)."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, dict):
        if "__tuple__" in data:
            return tuple(decode(item) for item in data["__tuple__"])
        if "__dict__" in data:
            return {key: decode(item) for key, item in data["__dict__"]}
        array = np.load(io.BytesIO(base64.b64decode(data.get("__ndarray__") or data["__scalar__"])),
                        allow_pickle=False)
        return array if "__ndarray__" in data else array[()]
    return data


class CappedText(io.TextIOBase):
    """A text stream that keeps the first OUTPUT_CAP characters and counts the rest."""
    encoding = "utf-8"

    def __init__(self):
        self.parts, self.kept, self.dropped = [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        written, room = len(text), OUTPUT_CAP - self.kept
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        if text:
            self.parts.append(text)
            self.kept += len(text)
        return written

    def value(self):
        more = f"\n[output truncated: {self.dropped} more characters]" if self.dropped else ""
        return "".join(self.parts) + more


def error_name(exc_type):
    """The exception's public name: numpy's private _ArrayMemoryError reads as MemoryError."""
    return next((c.__name__ for c in getattr(exc_type, "__mro__", ()) if not c.__name__.startswith("_")), "Error")


def safe_str(exc):
    try:
        return str(exc)[:MESSAGE_CAP]
    except BaseException:  # noqa: BLE001 - a student's exception whose __str__ fails
        return "<message could not be printed>"


def cell_figures():
    """The matplotlib figures a cell left open (plt.show() keeps them with the Agg backend), as base64
    PNGs, then closed; none when the notebook never imported pyplot. Errors drawing one skip it."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    figures = []
    for number in plt.get_fignums()[:FIGURE_CAP]:
        buffer = io.BytesIO()
        try:
            plt.figure(number).savefig(buffer, format="png", dpi=72)
            figures.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        except Exception:  # noqa: BLE001 - a figure that cannot be drawn is left out of the feedback
            pass
    plt.close("all")
    return figures


WALL_FACTOR = 3         # a limit of s seconds of CPU time also ends after WALL_FACTOR * s of wall-clock time
RUNNING = "; running: "   # in a Timeout's message, before the notebook's functions on the stack ("f < g")


def notebook_functions(frame, most=3):
    """The functions defined in the notebook's cells on the stack at `frame`, innermost first: where
    the time went when it ran out (a slow helper called by given code, not the given code itself)."""
    names = []
    while frame is not None and len(names) < most:
        code = frame.f_code
        if code.co_filename.startswith("<ipython-input-") and not code.co_name.startswith("<"):
            names.append(code.co_name)
        frame = frame.f_back
    return names


def alarm(seconds, message="", name_functions=False):
    """Raise Timeout(message) after `seconds` of this process's CPU time, so that other work on the
    machine cannot make a submission time out, or after WALL_FACTOR * `seconds` of wall-clock time,
    for code that waits or sleeps (0 cancels both); with `name_functions` the message also names the
    notebook's functions that were running (for a cell: a check's call names its function already).
    Soft: the grader enforces a hard limit too."""
    def expire(signum, frame):
        names = notebook_functions(frame) if name_functions else []
        raise Timeout(message + (RUNNING + " < ".join(names) if names else ""))
    signal.signal(signal.SIGPROF, expire)
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_FACTOR)


class Runner:
    def __init__(self, channel_fd):
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "nocolor"
        self.shell = InteractiveShell(config=config)
        self.shell._showtraceback = self._record_traceback
        self.channel = channel_fd
        self.requests = os.fdopen(os.dup(0), "r")   # kept before student code can touch stdin
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.error = None

    def emit(self, event, frames=()):
        """One report line, then the raw bytes of its frames (see the module's docstring)."""
        if frames:
            event = dict(event, frames=[len(frame) for frame in frames])
        # one write: a line of a few kB stays whole even if the student's forked copies write too
        data = memoryview(b"".join(((json.dumps(event) + "\n").encode(), *frames)))
        while data:
            data = data[os.write(self.channel, data):]

    def _record_traceback(self, etype, evalue, stb):
        self.error = {"ename": error_name(etype), "evalue": safe_str(evalue),
                      "traceback": self.shell.InteractiveTB.stb2text(stb)[:OUTPUT_CAP]}

    def run_cells(self, cells, skip, cell_timeout):
        for index, source in enumerate(cells):
            if index in skip:
                continue
            self.emit({"ev": "cell", "i": index})
            out, self.error, figures = CappedText(), None, []
            sys.stdout = sys.stderr = out
            try:
                alarm(cell_timeout, f"ran past {cell_timeout:g} s", name_functions=True)
                result = self.shell.run_cell(source, store_history=True)
                if self.error is None and result.error_in_exec is not None:
                    # IPython could not format the traceback (its "Unexpected exception formatting
                    # exception" goes to the output) and so never called _showtraceback: keep the error
                    exc = result.error_in_exec
                    self.error = {"ename": error_name(type(exc)), "evalue": safe_str(exc), "traceback": ""}
                figures = cell_figures()
            except Timeout as exc:   # expired outside the cell's own code, between IPython's steps
                self.error = {"ename": "Timeout", "evalue": safe_str(exc), "traceback": ""}
            finally:
                alarm(0)
                sys.stdout, sys.stderr = self.stdout, self.stderr
            self.emit({"ev": "cell_done", "i": index, "out": out.value(), "dropped": out.dropped, "error": self.error,
                       "figures": figures})
        self.emit({"ev": "cells_done"})

    def answer_probes(self, probes_dir):
        for line in self.requests:
            index = int(line)
            with open(os.path.join(probes_dir, f"{index}.json")) as file:
                request = json.load(file)
            frames = []
            self.emit({"ev": "result", "k": index, **self.call(request, frames)}, frames)

    def call(self, request, frames):
        """{"value": the result, encoded} with its arrays appended to `frames`, or {"raised": ...}."""
        name = request["func"]
        sys.stdout = sys.stderr = CappedText()   # prints during a probe are not feedback
        try:
            if name not in self.shell.user_ns:
                raise NameError(f"name {name!r} is not defined")
            args, kwargs = decode(request["args"]), decode(request["kwargs"])
            func = self.shell.user_ns[name]
            try:
                alarm(request["timeout"], f"{request['timeout']:g} s")
                value = func(*args, **kwargs)
            finally:
                alarm(0)
            if changed := changed_argument(func, args, kwargs, decode(request["args"]), decode(request["kwargs"])):
                return {"raised": {"type": "ChangedInput", "message": changed}}
            return {"value": encode(value, budget=[MAX_VALUES], frames=frames)}
        except Unsupported as exc:
            frames.clear()
            return {"raised": {"type": "Unsupported", "message": safe_str(exc)}}
        except BaseException as exc:  # noqa: BLE001 - every outcome of student code is reported as data
            frames.clear()
            return {"raised": {"type": error_name(type(exc)), "message": safe_str(exc)}}
        finally:
            sys.stdout, sys.stderr = self.stdout, self.stderr


def main(argv):
    job_dir, probes_dir, channel_fd, skip, cell_timeout = argv
    runner = Runner(int(channel_fd))
    with open(os.path.join(job_dir, "cells.json")) as file:
        cells = json.load(file)
    runner.emit({"ev": "ready"})
    runner.run_cells(cells, {int(i) for i in skip.split(",") if i not in ("", "-")}, float(cell_timeout))
    runner.answer_probes(probes_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
