"""Friendly assertions for the notebooks' visible tests.

Each raises CheckFailed (an AssertionError) with one sentence a student can act on ("output width is
5, expected 4: did you forget the stride?") instead of numpy's array dump. `hint` is appended when
given. In a notebook the failure shows as that sentence alone: IPython renders an exception's
`_render_traceback_` instead of the traceback through this package (`%tb` still shows it all).
Values are compared by the rounding rule of convlab.tolerance, the same one the grader uses.
"""
from __future__ import annotations

import inspect
import linecache
import signal
import sysconfig
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from convlab.tolerance import describe_violation, rounding_bound, within_bound

__all__ = ["CheckFailed", "changed_argument", "copy_advice", "expect_implemented", "expect_array", "expect_dtype", "expect_shape", "expect_close", "hint_for",
           "expect_near", "expect_equal", "expect_fast"]


class CheckFailed(AssertionError):
    """A visible test's failure: shown in a notebook as its one-sentence message, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mTest failed:\x1b[0m {self}"]


def _fail(message: str, hint: str | None) -> None:
    __tracebackhide__ = True
    raise CheckFailed(f"{message}: {hint}" if hint else message)


# Frames from these folders are numpy's, Python's or this package's, not the student's.
_LIBRARY_DIRS = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
                      | {str(Path(__file__).resolve().parent)})


def _innermost_student_frame(tb: TracebackType | None):
    """The innermost traceback frame in the student's code (a notebook cell), or None."""
    found = None
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
            found = tb
        tb = tb.tb_next
    return found


def _where(tb) -> str:
    """' (in conv2d_forward, line 7 of its cell: `y = ...`)' for a traceback entry."""
    if tb is None:
        return ""
    code, line = tb.tb_frame.f_code, tb.tb_lineno
    source = linecache.getline(code.co_filename, line).strip()
    return f" (in {code.co_qualname}, line {line} of its cell" + (f": `{source}`)" if source else ")")


def expect_implemented(func, *args, **kwargs) -> Any:
    """Call func(*args, **kwargs). A stub that still raises NotImplementedError, or an error raised
    inside the student's code, becomes one sentence naming the function and line instead of a
    traceback through numpy; a call that changed one of its array arguments in place fails, naming
    the argument (graded functions work on copies, and the hidden checks verify it too)."""
    __tracebackhide__ = True
    name = getattr(func, "__name__", repr(func))
    originals = [_snapshot(arg) for arg in args], {key: _snapshot(arg) for key, arg in kwargs.items()}
    try:
        result = func(*args, **kwargs)
    except NotImplementedError as error:
        student = _innermost_student_frame(error.__traceback__.tb_next)
        stub = student.tb_frame.f_code.co_qualname if student else name
        raise CheckFailed(f"{stub} is not implemented yet: replace `raise NotImplementedError()` "
                          "with your code and run its cell again") from None
    except AssertionError:
        raise
    except Exception as error:  # noqa: BLE001 - any error in the student's code gets one clear sentence
        where = _where(_innermost_student_frame(error.__traceback__.tb_next))
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error}{where}") from None
    if changed := changed_argument(func, args, kwargs, *originals):
        _fail(f"{name} changed its argument {changed} in place: {copy_advice(changed)}", None)
    return result


def expect_array(actual: Any, name: str = "result", hint: str | None = None) -> np.ndarray:
    """actual must be a numpy array with finite values."""
    __tracebackhide__ = True
    if not isinstance(actual, np.ndarray):
        _fail(f"{name} should be a numpy array, got {type(actual).__name__}", hint)
    if actual.dtype.kind in "fc" and not np.all(np.isfinite(actual)):
        _fail(f"{name} contains NaN or inf", hint)
    return actual


_KIND_NAMES = {"iu": "an integer dtype", "b": "bool", "f": "a floating-point dtype"}


def expect_dtype(actual: Any, expected: Any, name: str = "result", hint: str | None = None) -> None:
    """actual must be a numpy array of dtype `expected`: a dtype (np.float32), or a string of dtype
    kinds ("iu": any integer, "b": bool, "f": any float)."""
    __tracebackhide__ = True
    if not isinstance(actual, np.ndarray):
        _fail(f"{name} should be a numpy array, got {type(actual).__name__}", hint)
    if isinstance(expected, str):
        if actual.dtype.kind not in expected:
            _fail(f"{name} has dtype {actual.dtype}, expected {_KIND_NAMES.get(expected, expected)}", hint)
    elif actual.dtype != expected:
        _fail(f"{name} has dtype {actual.dtype}, expected {np.dtype(expected).name}", hint)


_AXIS_NAMES = {4: ("batch size", "channels", "height", "width"), 3: ("channels", "height", "width"),
               2: ("height", "width")}


def expect_shape(actual: Any, expected: tuple, name: str = "result", hint: str | None = None,
                 axes: tuple[str, ...] | None = None) -> None:
    """Shapes must match; the message names the first axis that differs (for 2-D to 4-D arrays, or
    by `axes`, e.g. ("batch", "channels", "time") for sequences)."""
    __tracebackhide__ = True
    expect_array(actual, name, hint)
    expected = tuple(expected)
    if actual.shape == expected:
        return
    if actual.ndim != len(expected):
        _fail(f"{name} has {actual.ndim} dimensions {actual.shape}, expected {len(expected)} {expected}", hint)
    axis = next(i for i, (a, e) in enumerate(zip(actual.shape, expected)) if a != e)
    axis_name = (axes or _AXIS_NAMES.get(len(expected), ()))[axis:axis + 1] or (f"axis {axis}",)
    _fail(f"{name} {axis_name[0]} is {actual.shape[axis]}, expected {expected[axis]} "
          f"(shape {actual.shape}, expected {expected})", hint)


def expect_close(actual: Any, expected: Any, name: str = "result", hint: str | None = None,
                 magnitude: Any = None, terms: int = 4, axes: tuple[str, ...] | None = None) -> None:
    """Arrays (or numbers) must agree within the rounding error of a correct computation
    (convlab.tolerance.rounding_bound): `magnitude` is the size of the computation behind each entry
    (default |expected|: a few operations on exact numbers), `terms` the length of its longest sum.
    The message names the entry farthest outside its bound (`axes` as in expect_shape)."""
    __tracebackhide__ = True
    expected = np.asarray(expected)
    if expected.ndim:
        expect_shape(actual, expected.shape, name, hint, axes)
    if isinstance(actual, (bool, np.bool_)) or np.asarray(actual).dtype.kind not in "biuf":
        _fail(f"{name} should be a number or an array of numbers, got {type(actual).__name__}", hint)
    actual_arr = np.asarray(actual)
    if not np.all(np.isfinite(actual_arr)):
        _fail(f"{name} contains NaN or inf", hint)
    scale = np.abs(expected.astype(np.float64)) if magnitude is None else magnitude
    bound = np.broadcast_to(rounding_bound(scale, terms, actual_arr.dtype, expected.dtype), expected.shape)
    if problem := describe_violation(name, actual_arr, expected, bound):
        _fail(problem, hint)


def expect_near(actual: Any, expected: float, within: float, name: str = "result", hint: str | None = None) -> None:
    """|actual - expected| <= within, for a statistic of random draws (a mean, a standard deviation),
    where `within` is a few standard errors of the sampling, not a rounding error."""
    __tracebackhide__ = True
    if not np.isfinite(actual) or abs(float(actual) - expected) > within:
        _fail(f"{name} is {float(actual):.6g}, expected {expected:.6g} within {within:.2g}", hint)


def _snapshot(value: Any) -> Any:
    """`value` with copies of its arrays, and of the arrays one level down in a dict, list or tuple:
    what changed_argument compares a call's arguments with afterwards."""
    def copied(item):
        return item.copy() if isinstance(item, np.ndarray) else item
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [copied(item) for item in value]
    return copied(value)


def changed_argument(func, args, kwargs, original_args, original_kwargs):
    """The name of the first array argument (or array inside a dict/list/tuple argument) that the call
    changed in place, e.g. "w" or "params['w1']", or None. Graded functions must work on copies."""
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        names = []
    pairs = [(names[i] if i < len(names) else f"argument {i + 1}", a, o)
             for i, (a, o) in enumerate(zip(args, original_args))]
    pairs += [(key, kwargs[key], original_kwargs[key]) for key in original_kwargs if key in kwargs]
    for name, after, before in pairs:
        inner = [(name, after, before)]
        if isinstance(before, dict) and isinstance(after, dict):
            inner = [(f"{name}[{k!r}]", after.get(k), v) for k, v in before.items()]
        elif isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)) and len(after) == len(before):
            inner = [(f"{name}[{i}]", a, b) for i, (a, b) in enumerate(zip(after, before))]
        for label, a, b in inner:
            if isinstance(b, np.ndarray) and not (isinstance(a, np.ndarray) and a.shape == b.shape
                                                  and np.array_equal(a, b, equal_nan=True)):
                return label
    return None


def copy_advice(changed: str) -> str:
    """How not to write into the argument `changed` ("x", or "tracks['missed']" for an array inside a dict,
    list or tuple, where the container's shallow .copy() would still share the array)."""
    if "[" not in changed:
        return f"work on a copy (e.g. {changed}.copy(), or build a new array) instead of writing into it"
    container = changed.split("[")[0]
    return (f"build new arrays (np.array({changed}) copies that one) instead of writing into it; {container}.copy() "
            f"is not enough: the copy shares the arrays inside {container}")


def expect_equal(actual: Any, expected: Any, name: str = "result", hint: str | None = None) -> None:
    """Exact equality for integers, tuples and other plain values."""
    __tracebackhide__ = True
    if actual != expected:
        _fail(f"{name} is {actual!r}, expected {expected!r}", hint)


def hint_for(actual: Any, candidates: dict[str, Any]) -> str | None:
    """The hint whose candidate output `actual` equals as a whole (shape first, then every value, within
    the rounding bound), or None: hints are chosen from the whole output, never from one entry."""
    actual_arr = np.asarray(actual) if isinstance(actual, (np.ndarray, list, tuple, float, int)) else None
    if actual_arr is None or actual_arr.dtype.kind not in "biuf":
        return None
    for hint, candidate in candidates.items():
        candidate = np.asarray(candidate, dtype=np.float64)
        if actual_arr.shape == candidate.shape and np.all(np.isfinite(actual_arr)) and within_bound(
                actual_arr, candidate, np.abs(candidate), 4, actual_arr.dtype):
            return hint
    return None


class _TooSlow(BaseException):
    """Raised by expect_fast's alarm; a BaseException so that the student's `except Exception` cannot hide it."""


def expect_fast(func, *args, name: str, seconds: float, hint: str | None = None, **kwargs):
    """func(*args, **kwargs), failing (CheckFailed) if it uses more than `seconds` of this process's
    CPU time, as the grader's limit does. Like the grader's sandbox it runs with one BLAS thread:
    CPU time adds up every thread's, and idle OpenBLAS threads spin, so on a busy laptop they alone
    could push vectorized code over the limit. Where the platform has CPU-time alarms (not Windows)
    and this is the main thread, a call over the limit is stopped at the limit, not waited for; an
    outer alarm that comes sooner (the grader's cell limit) keeps its place. Returns func's result."""
    from threadpoolctl import threadpool_limits   # imported here: only the speed tests need it
    can_stop = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    outer_left = signal.getitimer(signal.ITIMER_PROF)[0] if can_stop else 0.0
    own = can_stop and not 0 < outer_left <= seconds
    if own:
        def stop(signum, frame):
            raise _TooSlow
        outer_handler = signal.signal(signal.SIGPROF, stop)
        signal.setitimer(signal.ITIMER_PROF, seconds)
    started, stopped, result = time.process_time(), False, None
    try:
        with threadpool_limits(limits=1):
            result = func(*args, **kwargs)
    except _TooSlow:
        stopped = True
    finally:
        if own:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, outer_handler or signal.SIG_DFL)
        used = time.process_time() - started
        if own and outer_left:
            signal.setitimer(signal.ITIMER_PROF, max(outer_left - used, 1e-3))
    if stopped or used > seconds:
        _fail(f"{name} used more than {seconds:g} s of CPU time, the limit", hint)
    return result
