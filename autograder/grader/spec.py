"""What a lesson's hidden checks declare, and how a student's answer is compared.

Each lesson has a check module `autograder/checks/<lesson>.py` (e.g. `01_conv_forward.py`
is not importable, so the module is `autograder/checks/l01_conv_forward.py`) that defines

    LESSON = "01_conv_forward"
    def parts(ref, rng) -> list[Part]

`ref` is the reference namespace (the solution cells of `solutions/<lesson>.py`, executed in the
grader's own process, never in the student's); `rng` is a seeded `np.random.Generator`.
Every graded test cell (nbgrader `grade: true`) of the lesson has exactly one Part with its
`grade_id`; the Part's points come from that cell's metadata in `solutions/`, never from the
submission. A Part earns all its points when every Case passes, else none (nbgrader's rule).

A Case names a function defined in the student's notebook and the arguments to call it with.
Arguments and results cross the sandbox boundary as data only: numpy arrays, int, float, bool,
str, None, and tuples/lists/dicts (str keys) of these. The student's result comes back and is
judged here, outside the sandbox, by `Case.check` (default: `compare` against `Case.expected`).
When a case fails, `Part.diagnose(case, actual)` may name the likely bug ("stride ignored").

Floating-point results are judged by one rule, `convlab.tolerance.rounding_bound`: a Case's `tol`
(a `Tol`, or a tuple/list/dict of them shaped like `expected`) gives the magnitude of the computation
behind each entry and the length of its longest sum; docs/authoring.md derives the rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from convlab.expect import copy_advice
from convlab.tolerance import describe_violation, rounding_bound, violations

Check = Callable[[Any, "Case"], "str | None"]


@dataclass(frozen=True)
class Tol:
    """The rounding error a correct float result may carry (convlab.tolerance): `magnitude` is the size of
    the computation behind each entry (an array shaped like the result, or a number; None: |expected|,
    for a few elementwise operations), `terms` the length of its longest sum or chain of operations."""
    magnitude: Any = None
    terms: int = 4
    dtype: Any = None        # the precision the inputs came in (set by Case from its arguments)

    def bound(self, expected: Any, *dtypes: Any) -> np.ndarray:
        magnitude = np.abs(np.asarray(expected, dtype=np.float64)) if self.magnitude is None else self.magnitude
        dtypes = dtypes + ((self.dtype,) if self.dtype is not None else ())
        return np.broadcast_to(rounding_bound(magnitude, self.terms, *dtypes), np.shape(expected))

    def matches(self, actual: Any, candidate: Any) -> bool:
        """actual is a finite number array of candidate's shape within this bound of it: for diagnoses,
        where `candidate` is a bug's output. A bug sums other terms than the correct computation, of the
        same size, so the largest magnitude of the correct one stands for all of its entries."""
        actual_arr = np.asarray(actual) if isinstance(actual, (np.ndarray, int, float, np.number)) else None
        if actual_arr is None or actual_arr.dtype.kind not in "biuf" or actual_arr.shape != np.shape(candidate):
            return False
        if not np.all(np.isfinite(actual_arr)):
            return False
        candidate = np.asarray(candidate)
        scale = np.abs(candidate if self.magnitude is None else np.asarray(self.magnitude, dtype=np.float64))
        largest = replace(self, magnitude=float(np.max(scale, initial=0.0)))
        return not np.any(violations(actual_arr, candidate, largest.bound(candidate, actual_arr.dtype, candidate.dtype)))


def _least_precise(values: Any) -> Any:
    """The float dtype with the largest unit roundoff among arrays and numpy floats in `values` (nested)."""
    found = None
    stack = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (np.ndarray, np.floating)) and value.dtype.kind == "f":
            if found is None or np.finfo(value.dtype).eps > np.finfo(found).eps:
                found = value.dtype
    return found


def _with_dtype(tol: Any, dtype: Any) -> Any:
    """`tol` (a Tol, None, or a tuple/list/dict of them) with the inputs' precision filled in."""
    if isinstance(tol, (tuple, list)):
        return type(tol)(_with_dtype(t, dtype) for t in tol)
    if isinstance(tol, dict):
        return {key: _with_dtype(t, dtype) for key, t in tol.items()}
    tol = Tol() if tol is None else tol
    return tol if tol.dtype is not None or dtype is None else replace(tol, dtype=dtype)


def tol_for(tol: Any, key: Any) -> Any:
    """The Tol for element `key` of a tuple/list/dict result (one Tol, or None for Tol(), may stand for all)."""
    return tol[key] if isinstance(tol, (tuple, list, dict)) else Tol() if tol is None else tol


@dataclass
class Case:
    func: str                                   # name looked up in the student's namespace
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = None                        # computed outside the sandbox from `ref`
    check: Check | None = None                  # returns a failure message or None; default: compare
    label: str = ""                             # shown in feedback, e.g. "B=2, 7x7, K=3, stride 2, pad 1"
    timeout: float = 10.0                       # seconds for this one call
    tol: Any = None                             # a Tol (or a tuple/dict of them); None: Tol()

    def __post_init__(self) -> None:
        # a correct answer is as precise as its least precise input, whatever dtype it is returned in
        self.tol = _with_dtype(self.tol, _least_precise((self.args, self.kwargs)))

    def judge(self, actual: Any) -> str | None:
        if self.check is not None:
            return self.check(actual, self)
        return compare(actual, self.expected, name=f"{self.func}(...)", tol=self.tol)


@dataclass
class Part:
    grade_id: str                               # the graded test cell's grade_id
    cases: list[Case]
    diagnose: Callable[[Case, Any], "str | None"] | None = None
    # grade_ids of earlier parts whose functions this one's function may call (the lesson suggests it):
    # when both fail, the feedback says to fix those first (scoring.score_plan); stated in the docstring
    built_on: tuple[str, ...] = ()


@dataclass
class Raised:
    """A student call that raised instead of returning; what crosses back from the sandbox."""
    type: str
    message: str

    def describe(self, func: str) -> str:
        if self.type == "NotImplementedError":
            return f"{func} is not implemented yet (it still raises NotImplementedError)"
        if self.type == "NameError" and func in self.message:
            return f"{func} is not defined: did the cell that defines it run, and is the name spelled {func!r}?"
        if self.type == "Timeout":
            return (f"{func} did not return within the time limit ({self.message} of CPU time): an infinite loop, "
                    "or far too slow")
        if self.type == "Unsupported":   # set by the sandboxed grader: the result was not plain data
            return (f"{func} returned {self.message}, which cannot be checked: return numpy arrays, numbers, "
                    "str, None, or tuples/lists/dicts of these")
        if self.type == "Crashed":       # set by the sandboxed grader: the Python process died in the call
            return f"{func} crashed the Python process ({self.message})"
        if self.type == "OverMemory":    # set by the sandboxed grader: the sandbox went over its memory limit
            return (f"{func} used more than {self.message} of memory (all its processes together), the limit "
                    "for a submission: the sandbox was ended")
        if self.type == "NotRun":        # set by the sandboxed grader: the call was never made
            return f"{func} was not checked: {self.message}"
        if self.type == "ChangedInput":  # set by the runner: the call wrote into one of its arguments
            return f"{func} changed its argument {self.message} in place: {copy_advice(self.message)}"
        return f"{func} raised {self.type}: {self.message}"


def compare(actual: Any, expected: Any, name: str = "result", tol: Any = None) -> str | None:
    """None if `actual` matches `expected`, else one sentence saying what differs.

    Arrays: type, shape, NaN/inf, dtype kind (float vs int), then values within `tol`'s rounding bound
    (convlab.tolerance). Tuples/lists: length, then element by element (`tol` may be a tuple of Tols).
    Scalars: within the bound for numbers, equality for bool/str/None.
    Hidden checks' inputs are not the student's, so the sentence never states the expected value
    (shapes, lengths, keys and types are said: the docstrings give them).
    """
    tol = Tol() if tol is None else tol
    if isinstance(actual, Raised):
        return actual.describe(name.split("(")[0])
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            return f"{name} returned {type(actual).__name__}, expected a {type(expected).__name__} of {len(expected)} items"
        if len(actual) != len(expected):
            return f"{name} returned {len(actual)} items, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            if problem := compare(a, e, f"{name}[{i}]", tol_for(tol, i)):
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{name} returned {type(actual).__name__}, expected a dict with keys {sorted(expected)}"
        if missing := sorted(set(expected) - set(actual)):
            return f"{name} is missing keys {missing}"
        for key in expected:
            if problem := compare(actual[key], expected[key], f"{name}[{key!r}]", tol_for(tol, key)):
                return problem
        return None
    if isinstance(expected, np.ndarray):
        return _compare_array(actual, expected, name, tol)
    if isinstance(expected, (bool, np.bool_)) or expected is None or isinstance(expected, str):
        return None if actual == expected else f"{name} is {actual!r}, which is not the correct value"
    if isinstance(expected, (int, float, np.integer, np.floating)):
        if isinstance(actual, np.ndarray) and actual.ndim == 0 and actual.dtype.kind in "iuf":
            actual = actual[()]    # a 0-d array is one number (np.asarray(total)); the visible tests take it too
        if not isinstance(actual, (int, float, np.integer, np.floating)) or isinstance(actual, bool):
            return f"{name} returned {type(actual).__name__}, expected a number"
        if isinstance(expected, (int, np.integer)) and not float(actual).is_integer():
            return f"{name} is {actual!r}, expected a whole number: use floor division //"
        if isinstance(expected, (int, np.integer)):   # counts, sizes, depths: exact, no rounding involved
            return None if actual == expected else f"{name} is {actual!r}, which is not the correct value"
        if not np.isfinite(float(actual)):
            return f"{name} is {actual!r}, expected a finite number"
        return describe_violation(name, float(actual), float(expected),
                                  tol.bound(float(expected), np.asarray(actual).dtype, np.asarray(expected).dtype),
                                  reveal=False)
    raise TypeError(f"compare() cannot compare expected values of type {type(expected).__name__}")


def same_dtype(how: str) -> Check:
    """A Case.check: compare() with the expected value, then the result must keep its dtype
    (float32 stays float32); `how` says how, e.g. "np.zeros_like(x) rather than np.zeros(x.shape)"."""
    def check(actual: Any, case: Case) -> str | None:
        if problem := compare(actual, case.expected, f"{case.func}(...)", case.tol):
            return problem
        if actual.dtype != case.expected.dtype:
            return (f"{case.func}(...) returned {actual.dtype} for {case.expected.dtype} input: keep the input's "
                    f"dtype ({how})")
        return None
    return check


def _compare_array(actual: Any, expected: np.ndarray, name: str, tol: Tol) -> str | None:
    if not isinstance(actual, np.ndarray):
        return f"{name} returned {type(actual).__name__}, expected a numpy array of shape {expected.shape}"
    if actual.shape != expected.shape:
        return f"{name} has shape {actual.shape}, expected {expected.shape}"
    if actual.dtype.kind in "fc" and not np.all(np.isfinite(actual)):
        return f"{name} contains NaN or inf ({np.count_nonzero(~np.isfinite(actual))} of {actual.size} entries)"
    if expected.dtype.kind == "f" and actual.dtype.kind != "f":
        return f"{name} has dtype {actual.dtype}, expected a floating-point array ({expected.dtype})"
    if expected.dtype.kind == "b" and actual.dtype.kind != "b":
        return f"{name} has dtype {actual.dtype}, expected a boolean array"
    if actual.dtype.kind not in "biuf":
        return f"{name} has dtype {actual.dtype}, expected numbers"
    if expected.dtype.kind in "biu" and actual.dtype.kind in "biu":
        if np.array_equal(actual, expected):
            return None
        return describe_violation(name, actual, expected, np.zeros(expected.shape), reveal=False)
    return describe_violation(name, actual, expected, tol.bound(expected, actual.dtype, expected.dtype), reveal=False)


@dataclass
class Sample:
    """A sample submission built from the lesson: the release ('blank') or the solution notebook,
    with some stub cells' sources replaced, or raw bytes standing for a broken file."""
    base: str = "solution"                      # "solution" | "release"
    replace: dict[str, str] = field(default_factory=dict)   # stub grade_id -> cell source
    score: float = 0.0                          # exact expected total
    messages: dict[str, str] = field(default_factory=dict)  # test grade_id -> substring of its feedback
    raw: bytes | None = None                    # the file as submitted, when not a notebook built as above


def judge_part(part: Part, results: list[Any], note: str = "") -> str | None:
    """None when every case of `part` passed, else the feedback for the first failing case:
    what is wrong, the case's label, `note` (e.g. which helper to fix first), and the likely bug
    when `part.diagnose` names one (last, where the class report reads it)."""
    for case, actual in zip(part.cases, results, strict=True):
        problem = case.judge(actual)
        if problem is None:
            continue
        where = f" [{case.label}]" if case.label else ""
        bug = _diagnosis(part, case, actual)
        return f"{problem}{where}{note}" + (f". Likely bug: {bug}" if bug else "")
    return None


def _diagnosis(part: Part, case: Case, actual: Any) -> str | None:
    """The likely bug `part.diagnose` names, if any. A diagnosis is a hint: whatever odd value a
    student returns, a diagnose function that fails on it gives no hint rather than no feedback."""
    if part.diagnose is None or isinstance(actual, Raised):
        return None
    try:
        return part.diagnose(case, actual)
    except Exception:  # noqa: BLE001 - no hint rather than no grade
        return None


class _TimeUp(BaseException):
    """Raised into a call that ran past its Case.timeout (a BaseException: `except Exception` in the
    called code cannot swallow it)."""


def _time_up(signum, frame):
    raise _TimeUp


def call_in_process(namespace: Any, case: Case) -> Any:
    """Run one case against trusted code in this process (tests of the checks themselves), mapping an
    exception to Raised the way the sandbox does, and a call past `case.timeout` of CPU time (stopped
    by SIGPROF, in the main thread) to Raised("Timeout"). Never use on student code: it runs sandboxed."""
    import copy
    import signal
    import threading

    from convlab.expect import changed_argument
    func = getattr(namespace, case.func) if not isinstance(namespace, dict) else namespace[case.func]
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGPROF, _time_up)
        signal.setitimer(signal.ITIMER_PROF, case.timeout)
    try:
        value = func(*args, **kwargs)
        if changed := changed_argument(func, args, kwargs, case.args, case.kwargs):
            return Raised("ChangedInput", changed)
        return value
    except _TimeUp:
        return Raised("Timeout", f"{case.timeout:g} s")
    except Exception as exc:  # noqa: BLE001 - mirrored as data, like the sandbox does
        return Raised(type(exc).__name__, str(exc))
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
