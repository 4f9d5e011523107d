"""Friendly assertions for the notebooks' visible tests.

Each raises AssertionError with one sentence a student can act on ("output width is 5, expected 4:
did you forget the stride?") instead of numpy's array dump. `hint` is appended when given.
`__tracebackhide__` keeps these helpers' own frames out of the notebook's traceback.
"""
from __future__ import annotations

import linecache
import sysconfig
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["expect_implemented", "expect_array", "expect_dtype", "expect_shape", "expect_close", "expect_equal"]


def _fail(message: str, hint: str | None) -> None:
    __tracebackhide__ = True
    raise AssertionError(f"{message}: {hint}" if hint else message)


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
    traceback through numpy."""
    __tracebackhide__ = True
    name = getattr(func, "__name__", repr(func))
    try:
        return func(*args, **kwargs)
    except NotImplementedError as error:
        student = _innermost_student_frame(error.__traceback__.tb_next)
        stub = student.tb_frame.f_code.co_qualname if student else name
        raise AssertionError(f"{stub} is not implemented yet: replace `raise NotImplementedError()` "
                             "with your code and run its cell again") from None
    except AssertionError:
        raise
    except Exception as error:  # noqa: BLE001 - any error in the student's code gets one clear sentence
        where = _where(_innermost_student_frame(error.__traceback__.tb_next))
        raise AssertionError(f"{name} raised {type(error).__name__}: {error}{where}") from None


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
                 rtol: float = 1e-5, atol: float = 1e-7, axes: tuple[str, ...] | None = None) -> None:
    """Arrays (or numbers) must agree to rtol/atol; the message shows the worst entry (`axes` as in expect_shape)."""
    __tracebackhide__ = True
    expected = np.asarray(expected)
    if expected.ndim:
        expect_shape(actual, expected.shape, name, hint, axes)
    actual_arr = np.asarray(actual, dtype=float)
    if not np.all(np.isfinite(actual_arr)):
        _fail(f"{name} contains NaN or inf", hint)
    if np.allclose(actual_arr, expected, rtol=rtol, atol=atol):
        return
    if not expected.ndim:
        _fail(f"{name} is {float(actual_arr):.6g}, expected {float(expected):.6g}", hint)
    err = np.abs(actual_arr - expected)
    worst = np.unravel_index(np.argmax(err), err.shape)
    _fail(f"{name} differs at index {tuple(int(i) for i in worst)}: got {actual_arr[worst]:.6g}, "
          f"expected {expected[worst]:.6g} ({np.count_nonzero(err > atol + rtol * np.abs(expected))} "
          f"of {err.size} entries wrong)", hint)


def expect_equal(actual: Any, expected: Any, name: str = "result", hint: str | None = None) -> None:
    """Exact equality for integers, tuples and other plain values."""
    __tracebackhide__ = True
    if actual != expected:
        _fail(f"{name} is {actual!r}, expected {expected!r}", hint)
