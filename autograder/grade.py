"""The instructor's grading commands (see docs/grading.md):

    python -m autograder.grade autograde --submitted DIR --work WORK [--jobs N] [--scheduler tcp://HOST:8786]
                                         [--student S] [--lesson L] [--changed-only | --regrade]
    python -m autograder.grade feedback --work WORK
    python -m autograder.grade grades --work WORK [--format long|canvas|moodle] [--mapping CSV]
    python -m autograder.grade sandbox

`autograde` reads nbgrader's layout DIR/<student>/<lesson>/<lesson>.ipynb and grades every
notebook in its own sandbox, N at a time, into WORK/autograded/, showing progress, and ends with
a summary line (graded, unreadable, skipped, grader faults), then writes every result into
nbgrader's gradebook WORK/gradebook.db (autograder/grader/gradebook.py); it exits 1 when anything could not
be graded or was skipped, 2 when nothing could be graded at all or the run stopped because its sandboxes
did not start (autograder/grader/batch.py). `feedback` writes
WORK/feedback/<student>/<lesson>/<lesson>.html; `grades` writes WORK/grades.csv, or with --format the CSV Canvas or
Moodle imports (autograder/grader/lms.py). `sandbox`
prints the one line saying which sandbox mode this machine and user get, or why there is none.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path

from autograder.grader import gradebook, lms, report
from autograder.grader.course import Course, CourseError
from autograder.grader.batch import grade_all
from autograder.grader.sandbox import SandboxUnavailable, detect_mode

LAYOUT = "<student>/<lesson>/<lesson>.ipynb"


def _seed(text: str) -> int | str:
    if text == "fixed":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number or 'fixed', not {text!r}") from None


def unknown_filters(args: argparse.Namespace, course: Course) -> str | None:
    """Why --student or --lesson names nothing to grade, or None."""
    lessons = course.lessons()
    if bad := sorted(set(args.lesson or ()) - set(lessons)):
        return f"--lesson {', '.join(bad)}: no such lesson (the lessons are {', '.join(lessons)})"
    if bad := sorted(s for s in set(args.student or ()) if not (args.submitted / s).is_dir()):
        return f"--student {', '.join(bad)}: no such folder in {args.submitted}"
    return None


def _remote(scheduler: str | None, course: Course):
    """A DaskGrader on `scheduler` (Dask is imported only then), else nothing."""
    if scheduler is None:
        return contextlib.nullcontext()
    from autograder.grader.distributed import DaskGrader
    return DaskGrader(scheduler, course)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (`kill <pid>`, how a run started in the background is stopped) ends the run as Ctrl-C
    does: running sandboxes stopped, finished results kept."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    autograde = commands.add_parser("autograde", help="grade every submission, in parallel sandboxes")
    autograde.add_argument("--submitted", type=Path, required=True, help="DIR/<student>/<lesson>/<lesson>.ipynb")
    autograde.add_argument("--work", type=Path, required=True, help="where results, feedback and grades go")
    autograde.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    again = autograde.add_mutually_exclusive_group()
    again.add_argument("--regrade", action="store_true",
                       help="grade every submission again, also those with a result of the same notebook and grader")
    again.add_argument("--changed-only", action="store_true", help="grade only submissions whose notebook or "
                       "grader changed since their last complete result (the default; says so explicitly)")
    autograde.add_argument("--student", action="append", help="grade only this student (repeatable)")
    autograde.add_argument("--lesson", action="append", help="grade only this lesson (repeatable)")
    autograde.add_argument("--scheduler", help="a Dask scheduler, tcp://host:8786: grade on its workers "
                           "(docs/grading.md); each worker runs the course checkout of the same commit")
    autograde.add_argument("--seed", type=_seed, help="the hidden checks' random inputs: a number (a new one is "
                           "drawn for every run and printed; pass it to reproduce a run's grades) or 'fixed' "
                           "(each lesson's fixed inputs, as the shipped samples' expected scores use)")
    autograde.add_argument("--solutions", type=Path, help=argparse.SUPPRESS)   # a fixture course (tests)
    autograde.add_argument("--release", type=Path, help=argparse.SUPPRESS)
    autograde.add_argument("--checks", type=Path, help=argparse.SUPPRESS)
    commands.add_parser("feedback", help="write one HTML feedback page per student and lesson").add_argument(
        "--work", type=Path, required=True)
    grades = commands.add_parser("grades", help="export WORK/grades.csv, or the CSV an LMS imports")
    grades.add_argument("--work", type=Path, required=True)
    grades.add_argument("--format", choices=lms.FORMATS, default="long",
                        help="long: WORK/grades.csv, a row per student and lesson; canvas, moodle: "
                             "WORK/grades-<format>.csv, a row per student and a column per lesson")
    grades.add_argument("--mapping", type=Path, help="CSV: student (folder name), then the LMS identity columns")
    commands.add_parser("sandbox", help="say which sandbox mode grading would use here, or why none")
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        try:
            print(detect_mode().describe())
        except SandboxUnavailable as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    if args.command == "autograde":
        if not args.submitted.is_dir():
            what = "is not a folder" if args.submitted.exists() else "does not exist"
            print(f"no submissions: {args.submitted} {what}; collect them there as {args.submitted}/{LAYOUT} "
                  "(`make samples` puts the shipped samples there)", file=sys.stderr)
            return 2
        try:
            args.scheduler or detect_mode()   # a machine that cannot sandbox is told so before anything else
        except SandboxUnavailable as exc:
            print(exc, file=sys.stderr)
            return 2
        if not any(p for p in args.submitted.iterdir() if not p.name.startswith(".")):
            print(f"no submissions: {args.submitted} is empty; collect them there as {args.submitted}/{LAYOUT} "
                  "(`make samples` puts the shipped samples there)", file=sys.stderr)
            return 2
        if not 1 <= args.jobs <= 512:
            parser.error("--jobs must be between 1 and 512")
        course = Course(**{k: getattr(args, k) for k in ("solutions", "release", "checks") if getattr(args, k)})
        if problem := unknown_filters(args, course):
            print(problem, file=sys.stderr)
            return 2
        try:
            seed = secrets.randbelow(2**32) if args.seed is None else args.seed
            print(f"hidden-check inputs: seed {seed} (`--seed {seed}` reproduces the grades this run gives)")
            with _terminate_as_interrupt(), _remote(args.scheduler, course) as remote:
                run = grade_all(args.submitted, args.work, args.jobs, course, run_seed=None if seed == "fixed" else seed,
                                progress=True, regrade=args.regrade, remote=remote,
                                students=set(args.student) if args.student else None,
                                lessons=set(args.lesson) if args.lesson else None)
        except (SandboxUnavailable, CourseError) as exc:
            print(exc, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"interrupted: every result finished so far is in {args.work / 'autograded'}; the same command "
                  "goes on where this run stopped", file=sys.stderr)
            return 130
        if not run and not run.ignored:
            print(f"no submissions found in {args.submitted}: expected {args.submitted}/{LAYOUT}", file=sys.stderr)
            return 2
        print(f"{run.summary()} ({report.counted(len(run), 'result')} in {args.work / 'autograded'})")
        try:
            written = gradebook.record(run, args.submitted, args.work, course)   # the instructor-side step
        except gradebook.GradebookError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(written.summary(args.work))
        return 2 if run.stopped_why else 0 if run.complete else 1
    if not (args.work / "autograded").is_dir():
        print(f"nothing graded in {args.work}: run `make autograde` first", file=sys.stderr)
        return 2
    results = gradebook.with_manual_grades(report.results(args.work), args.work)
    if args.command == "feedback":
        written = report.write_feedback(args.work, results)
        print(f"{report.counted(len(written), 'feedback page')} under {args.work / 'feedback'}")
    elif args.format == "long":
        if args.mapping:
            parser.error("--mapping is for --format canvas or moodle")
        print(f"grades written to {report.write_grades(args.work, results)}")
    else:
        try:
            mapping = lms.read_mapping(args.mapping) if args.mapping else None
        except lms.MappingError as exc:
            print(exc, file=sys.stderr)
            return 2
        exported = lms.export(results, args.work, args.format, Course().lessons(), mapping)
        print(f"{args.format} grades written to {exported.path}")
        for problem in exported.problems():
            print(report.printable(problem), file=sys.stderr)
        return 1 if exported.missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
