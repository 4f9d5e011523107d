"""How far a correct floating-point answer may be from the exact one: one rule, used by the visible
tests (convlab.expect) and the hidden checks (autograder) alike. docs/authoring.md derives it.

A graded function computes each output entry y[i] from its inputs with rounding errors. Judged
against the reference evaluated in float64 on the same inputs, entry i may be off by

    bound[i] = (growth(terms) + 2) * (u + u64) * magnitude[i]

- u is the unit roundoff of the student's precision (2**-24 for float32, 2**-53 for float64), u64
  that of the float64 reference, whose own rounding is in the difference too;
- magnitude[i] is the size of the computation, not of the result: for a sum of products
  y[i] = sum_k t[i, k] it is sum_k |t[i, k]| (the same function applied to |x|, |w|, |dy|), for a
  short nonlinear formula |y[i]| + sum_j |dy[i]/dx[j]| |x[j]| (its condition times |y[i]|);
- terms is the length of the longest sum (or chain of operations) behind one entry, and growth(n)
  = min(n, LAMBDA * sqrt(n)): n roundings in the worst case (Higham, Accuracy and Stability of
  Numerical Algorithms, 2nd ed., eq. 3.5), LAMBDA * sqrt(n) for independent rounding errors with
  probability at least 1 - 2n exp(-LAMBDA**2 / 2) per entry (Higham and Mary, SIAM J. Sci. Comput.
  41, 2019, thm. 3.1), whatever the order of summation: loops, pairwise sums, BLAS blocks, einsum.
- the 2 covers rounding the result to the student's dtype and the reference to the case's dtype.

An entry whose magnitude is 0 sums exact zeros, so it must be exactly 0.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

LAMBDA = 8.0   # 1 - 2n exp(-32): an honest entry of a sum of n = 10**6 terms fails with probability < 3e-8


def unit_roundoff(dtype: Any) -> float:
    """u = 2**-p for a p-bit significand: the largest relative error of one rounding to nearest."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).eps) / 2 if dtype.kind in "fc" else 0.0


def growth(terms: int) -> float:
    """How many unit roundoffs of the magnitude a sum of `terms` terms may lose (see the module docstring)."""
    terms = max(int(terms), 1)
    return min(float(terms), LAMBDA * math.sqrt(terms))


def rounding_bound(magnitude: Any, terms: int, *dtypes: Any) -> np.ndarray:
    """The largest error a correct result may have, entry by entry (see the module docstring), in the
    least precise of `dtypes` (the student's result and the case's; float64 when none is a float)."""
    u = max([unit_roundoff(np.float64)] + [unit_roundoff(dtype) for dtype in dtypes])
    return (growth(terms) + 2) * (u + unit_roundoff(np.float64)) * np.abs(np.asarray(magnitude, dtype=np.float64))


def sensitivity(func: Callable[..., Any], args: tuple, which: tuple[int, ...], **kwargs: Any) -> np.ndarray:
    """|f(args)| + sum_j |df/dx_j| |x_j| over the float entries x_j of the arguments `which`: the
    magnitude of a short nonlinear formula (its componentwise condition times its value), by central
    differences in float64. Cheap only for small inputs: 2 calls per input entry."""
    args = [np.array(a, dtype=np.float64) if k in which else a for k, a in enumerate(args)]
    value = np.abs(np.asarray(func(*args, **kwargs), dtype=np.float64))
    total = value.copy()
    for k in which:
        flat = args[k].reshape(-1)
        for j in np.flatnonzero(flat):
            original = flat[j]
            step = 1e-6 * abs(original)
            flat[j] = original + step
            up = np.asarray(func(*args, **kwargs), dtype=np.float64)
            flat[j] = original - step
            down = np.asarray(func(*args, **kwargs), dtype=np.float64)
            flat[j] = original
            total += np.abs(up - down) / (2 * step) * abs(original)
    return total


def violations(actual: Any, expected: Any, bound: np.ndarray) -> np.ndarray:
    """Boolean mask of the entries of `actual` farther from `expected` than `bound` allows."""
    error = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
    return ~(error <= bound)


def within_bound(actual: Any, expected: Any, magnitude: Any, terms: int, *dtypes: Any) -> bool:
    """True when every entry of `actual` is within the rounding bound of `expected`."""
    return not np.any(violations(actual, expected, rounding_bound(magnitude, terms, *dtypes)))


def _digits(value: float, error: float) -> str:
    """value with enough significant digits that a difference of `error` shows."""
    if value == 0 or not math.isfinite(value) or error == 0:
        return f"{value:.9g}"
    digits = int(math.ceil(math.log10(abs(value) / error))) + 2 if error > 0 else 17
    return f"{value:.{min(max(digits, 4), 17)}g}"


def describe_violation(name: str, actual: Any, expected: Any, bound: np.ndarray, reveal: bool = True) -> str | None:
    """None when `actual` is within `bound` of `expected` everywhere, else one sentence naming the entry
    that is farthest outside its bound: with both values and the allowed error when `reveal` (visible
    tests, whose inputs are the student's own), with the student's value and how far outside the bound
    it is, but never the expected value, when not (hidden checks: feedback must not be an oracle)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    bad = violations(actual, expected, bound)
    if not np.any(bad):
        return None
    error = np.abs(actual - expected)
    with np.errstate(over="ignore"):   # an exact result's bound is 0: any error is infinitely outside
        excess = np.where(bad, error / np.maximum(bound, np.finfo(np.float64).tiny), -1.0)
    worst = np.unravel_index(int(np.argmax(excess)), expected.shape) if expected.ndim else ()
    got, want, allowed = float(actual[worst]), float(expected[worst]), float(np.broadcast_to(bound, expected.shape)[worst])
    where = f" at index {tuple(int(i) for i in worst)}" if expected.ndim else ""
    if not reveal:
        return f"{name} is wrong{where}: got {_digits(got, error[worst])}, " + hidden_distance(excess[worst], allowed) + \
            (f" ({int(np.count_nonzero(bad))} of {expected.size} entries are wrong)" if expected.size > 1 else "")
    values = f"got {_digits(got, error[worst])}, expected {_digits(want, error[worst])}"
    count = f"{int(np.count_nonzero(bad))} of {expected.size} entries" if expected.size > 1 else ""
    if allowed == 0:
        return f"{name} is wrong{where}: {values}" + (f" ({count} differ)" if count else "")
    return (f"{name} is wrong{where}: {values}, off by {error[worst]:.3g} where rounding explains at most "
            f"{allowed:.3g}" + (f" ({count} off by more than rounding explains)" if count else ""))


NEAR_MISS = 100   # an error up to this many times the rounding bound is called "close" in hidden feedback


def hidden_distance(excess: float, allowed: float) -> str:
    """How wrong a value is, in words that do not give the correct value away: exact results are just
    wrong; float results are close (error at most NEAR_MISS times the bound: a less precise computation)
    or far from it (a different computation)."""
    if allowed == 0:
        return "which is not the correct value"
    if excess <= NEAR_MISS:
        return (f"close to the correct value but off by more than rounding explains (less than {NEAR_MISS}x the "
                "bound): a less precise computation, e.g. float32 intermediates or a subtraction of near-equal terms?")
    return f"far from the correct value (more than {NEAR_MISS}x what rounding explains)"
