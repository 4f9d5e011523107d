"""Naming a bug from a wrong result: the first typical bug whose output the result matches.

One helper for every diagnosis that recomputes typical bugs and compares (the hidden checks in
autograder/checks and the visible tests' convlab.conv_bugs): a diagnosis lists its candidate bugs in
order of preference, each as (message, output), and asks which one the student's result equals.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

Matches = Callable[[Any, Any], bool]      # (student's result, a bug's output) -> is it that bug?


def first_matching_bug(actual: Any, candidates: Iterable[tuple[str, Any]], tol: Any, *, correct: Any = None,
                       skip: tuple[type[BaseException], ...] = ()) -> str | None:
    """The message of the first candidate bug whose output `actual` matches, or None.

    candidates: (message, output) pairs; `output` is the bug's output on this case, or a function of no
        arguments computing it (called only when the candidates before it did not match); None where the
        bug cannot happen on this case.
    tol: what "matches" means: a Tol (its .matches(actual, output)) or a function (actual, output) -> bool.
    correct: the correct result; a bug whose output matches it cannot be told from a correct answer on
        this case, so it is passed over.
    skip: exceptions that mean the bug has no output on this case (e.g. ValueError: a window that does
        not fit); any other exception propagates.
    """
    matches: Matches = tol if callable(tol) else tol.matches
    for message, output in candidates:
        try:
            with np.errstate(all="ignore"):        # a buggy variant may overflow or divide by zero
                candidate = output() if callable(output) else output
        except skip:
            continue
        if candidate is None:
            continue
        if correct is not None and matches(candidate, correct):
            continue
        if matches(actual, candidate):
            return message
    return None
