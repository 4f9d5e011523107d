"""Sample submissions: each lesson's typical bugs (BUGS in its check module, autograder.grader.bugs),
with "full" and "blank", as submitted notebooks with their derived exact scores.

    python -m autograder.samples --out DIR   # DIR/sample_<name>/<lesson>/<lesson>.ipynb, nbgrader's layout

A sample notebook is the lesson's release (what a student downloads) with its stub cells filled in:
with the instructor's solutions (base "solution") or left as stubs (base "release"), then the
sample's `replace` sources; or the sample's `raw` bytes, standing for a broken file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from autograder.grader.bugs import Bug, lesson_bugs
from autograder.grader.course import Course
from autograder.coursedir import grade_id, is_solution, without_markers
from autograder.grader.reference import test_points
from autograder.grader.spec import Sample


def bugs_of(course: Course, lesson: str) -> dict[str, Bug]:
    """The lesson's typical bugs (BUGS in its check module; none declared: only "full" and "blank")."""
    return lesson_bugs(getattr(course.check_module(lesson), "BUGS", {}))


def samples_of(course: Course, lesson: str) -> dict[str, Sample]:
    """The lesson's shipped samples, their scores derived from the points in solutions/."""
    points = test_points(lesson, course.solutions)
    return {name: bug.sample(points) for name, bug in bugs_of(course, lesson).items() if bug.shipped}


def lesson_samples(course: Course = Course(), log=print) -> dict[str, dict[str, Sample]]:
    """lesson -> its shipped samples, for every lesson in solutions/ with declared bugs and a built release."""
    found = {}
    for lesson in course.lessons():
        if not (course.release / lesson / f"{lesson}.ipynb").exists():
            log(f"skipping {lesson}: course/{lesson}/{lesson}.ipynb is missing (run `make release`)")
            continue
        found[lesson] = samples_of(course, lesson)
    return found


def build_sample(course: Course, lesson: str, sample: Sample) -> bytes:
    """The sample as the bytes of a submitted .ipynb."""
    if sample.raw is not None:
        return sample.raw
    nb = course.release_notebook(lesson)
    solutions = {gid: without_markers(source) for gid, source in course.solution_sources(lesson).items()} \
        if sample.base == "solution" else {}
    if sample.base not in ("solution", "release"):
        raise ValueError(f"Sample base must be 'solution' or 'release', not {sample.base!r}")
    stubs = {grade_id(cell): cell for cell in nb["cells"] if is_solution(cell)}
    if unknown := sorted(set(sample.replace) - set(stubs)):
        raise ValueError(f"{lesson}: Sample.replace names no stub cell: {unknown}")
    for gid, cell in stubs.items():
        cell["source"] = sample.replace.get(gid, solutions.get(gid, cell["source"]))
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


def write_samples(out: Path, samples: dict[str, dict[str, Sample]], course: Course = Course(),
                  prefix: str = "sample_") -> list[Path]:
    """Write out/<prefix><name>/<lesson>/<lesson>.ipynb for each lesson's samples."""
    written = []
    for lesson, by_name in samples.items():
        for name, sample in by_name.items():
            path = out / f"{prefix}{name}" / lesson / f"{lesson}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(build_sample(course, lesson, sample))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the submissions folder to fill")
    args = parser.parse_args(argv)
    written = write_samples(args.out, lesson_samples())
    print(f"{len(written)} sample submissions written under {args.out}")


if __name__ == "__main__":
    main()
