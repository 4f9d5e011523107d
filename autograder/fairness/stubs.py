"""A fairness variant's cell as a student writes it: the release's stub cell (signature, docstring,
given lines) with each `# YOUR CODE HERE` / `raise NotImplementedError()` placeholder replaced by the
student's lines, so that a variant spells out only what the student wrote."""
from __future__ import annotations

import re
from typing import Callable

from autograder.grader.course import Course

PLACEHOLDER = re.compile(r"^( *)# YOUR CODE HERE\n\1raise NotImplementedError\(\)\n?", re.MULTILINE)


def filler(lesson: str, course: Course = Course()) -> Callable[..., str]:
    """fill(grade_id, *bodies, before="") for `lesson`: `before` (e.g. an import the student added),
    then the stub of `grade_id` with its k-th placeholder replaced by bodies[k], written at the
    placeholder's indentation and ending in a newline."""
    stubs = course.stub_sources(lesson)

    def fill(grade_id: str, *bodies: str, before: str = "") -> str:
        stub = stubs[grade_id]
        places = PLACEHOLDER.findall(stub)
        if len(places) != len(bodies):
            raise ValueError(f"{lesson} stub {grade_id!r} has {len(places)} placeholders, {len(bodies)} bodies given")
        answers = iter(bodies)
        return before + PLACEHOLDER.sub(lambda _: next(answers), stub)

    return fill
