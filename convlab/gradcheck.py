"""Numerical gradients by central differences, and the relative error used to compare gradients.

    numerical_gradient(f, x)          -> array like x:  d f(x) / d x, one entry at a time
    numerical_gradient_array(f, x, g) -> array like x:  d <f(x), g> / d x   (f returns an array)
    relative_error(a, b)              -> max |a - b| / max(|a| + |b|, tiny)

Central differences have error O(h^2); with float64 and h = 1e-5 a correct analytic gradient
gives a relative error around 1e-8 to 1e-10; above 1e-5 something is almost surely wrong.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from convlab.expect import CheckFailed

__all__ = ["numerical_gradient", "numerical_gradient_array", "relative_error", "gradient_check"]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d f(x)/dx for scalar-valued f, by (f(x + h e_i) - f(x - h e_i)) / 2h. x (float64) is restored."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array (got {x.dtype}): float32 rounding "
                        "swamps the finite difference")
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + h
        f_plus = f(x)
        x[index] = saved - h
        f_minus = f(x)
        x[index] = saved
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, upstream: np.ndarray,
                             h: float = 1e-5) -> np.ndarray:
    """Gradient of L = sum(f(x) * upstream) with respect to x: what a backward pass must return."""
    return numerical_gradient(lambda v: float(np.sum(f(v) * upstream)), x, h)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|), 0.0 when both are zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare gradients of shapes {a.shape} and {b.shape}")
    scale = np.max(np.abs(a) + np.abs(b)) if a.size else 0.0
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b)) / scale)


def gradient_check(analytic: np.ndarray, numeric: np.ndarray, name: str = "gradient", tol: float = 1e-6,
                   hint: "str | Callable[[], str | None] | None" = None) -> float:
    """Fail (CheckFailed) naming `name` unless relative_error(analytic, numeric) <= tol; return the error.
    `hint` (a sentence, or a function computing one, called only on failure) names the likely bug."""
    __tracebackhide__ = True
    problem = None
    if np.shape(analytic) != np.shape(numeric):
        problem = f"{name} has shape {np.shape(analytic)}, expected {np.shape(numeric)}"
    elif not np.all(np.isfinite(analytic)):
        problem = f"{name} contains NaN or inf"
    elif (err := relative_error(analytic, numeric)) > tol:
        problem = f"{name}: relative error {err:.2e} against the numerical gradient (allowed {tol:.0e})"
    if problem is None:
        return err
    if callable(hint):
        try:
            hint = hint()
        except Exception:  # noqa: BLE001 - a hint that cannot be computed for this answer is no hint
            hint = None
    raise CheckFailed(f"{problem}. Likely bug: {hint}" if hint else problem)
