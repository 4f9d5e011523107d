"""python -m autograder.insight report|similarity --work WORK [--submitted DIR] [--threshold T]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.coursedir import SOLUTIONS, lessons
from autograder.grader.report import counted
from autograder.insight import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.insight", description=load.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="the class report: WORK/report/index.html, <lesson>.html, report.json")
    similarity = commands.add_parser("similarity", help="pairs of submissions whose own code is alike")
    for command in (report, similarity):
        command.add_argument("--work", type=Path, required=True, help="the grading work folder (WORK/autograded/...)")
        command.add_argument("--out", type=Path, help="where the pages go (default WORK/report)")
    report.add_argument("--submitted", type=Path, help="the submissions folder: notebooks there without a result "
                        "are reported as not graded yet")
    similarity.add_argument("--threshold", type=float, help="flag pairs at or above this similarity "
                            "(0 to 1; default: the documented one)")
    args = parser.parse_args(argv)
    if not (args.work / "autograded").is_dir():
        print(f"nothing graded in {args.work}: run `make autograde` first", file=sys.stderr)
        return 2
    out = args.out or args.work / "report"
    found = load.load(args.work, lessons(SOLUTIONS), getattr(args, "submitted", None))
    for problem in found.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not found.by_lesson:
        print(f"no readable results in {args.work / 'autograded'}", file=sys.stderr)
        return 2
    if args.command == "report":
        from autograder.insight.report import write_report
        numbers, written = write_report(found, out)
        for lesson in numbers["lessons_without_results"]:
            print(f"no results for {lesson}: it has no page")
        print(f"class report of {counted(numbers['students'], 'student')}, {counted(len(numbers['lessons']), 'lesson')}: "
              f"{written[0]}")
        return 0
    from autograder.insight.similarity import DEFAULT_THRESHOLD, write_similarity
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold <= 1:
        parser.error("--threshold must be above 0 and at most 1")
    summary = write_similarity(found, out, threshold)
    for lesson, entry in summary.items():
        print(f"{lesson}: {len(entry['flagged'])} of {entry['pairs']} pairs at or above {threshold:g} "
              f"({entry['compared']} submissions with code of their own): {out / f'similarity-{lesson}.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
