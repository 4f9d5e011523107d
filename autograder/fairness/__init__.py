"""The fairness corpus: correct solutions of every lesson written independently of the reference,
from the release notebooks' text only, in several styles (loops, sliding windows with einsum or
tensordot, im2col, float64 accumulation, image-, channel- or tap-wise sums, the other choice where a
docstring leaves one open). One module per lesson, `l01_conv_forward.py` for `01_conv_forward`:

    LESSON = "01_conv_forward"
    VARIANTS = {name: {stub grade_id: the student's cell source, for every stub of the lesson}}
    STYLES = {name: what is distinctive about it}

Each piece of student code is written once: a cell is the release stub with the student's lines in
place of its placeholders (`fill(grade_id, *bodies)`, autograder/fairness/stubs.py), lines that
several variants open with are named constants, a variant that differs from another in a few cells
is built from it, and a later lesson's variants import the cells an earlier lesson's variants wrote.

Each variant must score full marks on every seed of the hidden checks and pass every visible test
(autograder/tests/test_fairness.py; `make fairness` grades them on FAIRNESS_SEEDS = 10 seeds, in
process and in the sandbox).

    python -m autograder.fairness --out DIR   # DIR/fair_<name>/<lesson>/<lesson>.ipynb, nbgrader's layout
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from autograder.grader.course import Course
from autograder.grader.spec import Sample

def corpus(course: Course = Course()) -> dict[str, dict[str, Sample]]:
    """lesson -> {variant name: the variant as a Sample on the release (every stub replaced)}."""
    found = {}
    for lesson in course.lessons():
        module = importlib.import_module(f"autograder.fairness.l{lesson}")
        found[lesson] = {name: Sample(base="release", replace=cells) for name, cells in module.VARIANTS.items()}
    return found


def write_corpus(out: Path, course: Course = Course()) -> list[Path]:
    """Write out/fair_<name>/<lesson>/<lesson>.ipynb for every variant of every lesson."""
    from autograder.samples import write_samples
    return write_samples(out, corpus(course), course, prefix="fair_")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the submissions folder to fill")
    print(f"{len(write_corpus(parser.parse_args(argv).out))} fairness submissions written")


if __name__ == "__main__":
    main()
