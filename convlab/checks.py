"""Friendly assertions for the notebooks' visible tests.

Each raises AssertionError with one sentence a student can act on ("output width is 5, expected 4:
did you forget the stride?") instead of numpy's array dump. `hint` is appended when given.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expect_implemented", "expect_array", "expect_shape", "expect_close", "expect_equal"]


def _fail(message: str, hint: str | None) -> None:
    raise AssertionError(f"{message}: {hint}" if hint else message)


def expect_implemented(func, *args, **kwargs) -> Any:
    """Call func(*args, **kwargs); a stub still raising NotImplementedError gets a clear message."""
    try:
        return func(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(f"{func.__name__} is not implemented yet: replace `raise NotImplementedError()` "
                             "with your code and run its cell again") from None


def expect_array(actual: Any, name: str = "result", hint: str | None = None) -> np.ndarray:
    """actual must be a numpy array with finite values."""
    if not isinstance(actual, np.ndarray):
        _fail(f"{name} should be a numpy array, got {type(actual).__name__}", hint)
    if actual.dtype.kind in "fc" and not np.all(np.isfinite(actual)):
        _fail(f"{name} contains NaN or inf", hint)
    return actual


_AXIS_NAMES = {4: ("batch size", "channels", "height", "width"), 3: ("channels", "height", "width"),
               2: ("height", "width")}


def expect_shape(actual: Any, expected: tuple, name: str = "result", hint: str | None = None,
                 axes: tuple[str, ...] | None = None) -> None:
    """Shapes must match; the message names the first axis that differs (for 2-D to 4-D arrays, or
    by `axes`, e.g. ("batch", "channels", "time") for sequences)."""
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
    if actual != expected:
        _fail(f"{name} is {actual!r}, expected {expected!r}", hint)
