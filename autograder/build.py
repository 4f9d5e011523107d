"""Build the student release `course/` from the instructor source `solutions/`.

    python -m autograder.build release   # solutions/*.py -> course/<lesson>/<lesson>.ipynb
    python -m autograder.build check     # fail, naming the lessons, if course/ is not a fresh build

Pipeline: autograder.coursedir.source_notebook (percent .py -> .ipynb as written, deterministic cell
ids) -> nbgrader generate_assignment (solutions replaced by stubs, test cells locked) -> normalised
JSON in course/. The layout (paths, lessons, kernelspec) belongs to autograder.coursedir.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.coursedir import COURSE, KERNELSPEC, ROOT, lessons, source_notebook


def _normalise(nb: dict) -> str:
    nb["metadata"] = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build_release(out_dir: Path, only: list[str] | None = None, solutions: Path | None = None) -> list[Path]:
    """Write each lesson's student notebook (all, or `only` these) under out_dir/<lesson>/<lesson>.ipynb,
    built from `solutions` (default: the course's solutions/)."""
    written = []
    with tempfile.TemporaryDirectory(prefix="convlab-nbgrader-") as root:
        # nbgrader reads nbgrader_config.py from its working directory and calls `alembic` by name.
        shutil.copy(ROOT / "autograder" / "nbgrader_config.py", root)
        env = dict(os.environ, CONVLAB_NBGRADER_ROOT=root,
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        for lesson in only or lessons(solutions):
            src = Path(root, "source", lesson, f"{lesson}.ipynb")
            src.parent.mkdir(parents=True)
            nbformat.write(source_notebook(lesson, solutions), src)
            proc = subprocess.run(
                [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force",
                 "--log-level=WARN"],
                cwd=root, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"nbgrader generate_assignment failed for {lesson}:\n{proc.stdout}{proc.stderr}")
            released = json.loads(Path(root, "release", lesson, f"{lesson}.ipynb").read_text())
            target = out_dir / lesson / f"{lesson}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_normalise(released))
            written.append(target)
    return written


def release(only: list[str] | None = None) -> None:
    fresh = {p.parent.name for p in build_release(COURSE, only)}
    for stale in [] if only else COURSE.iterdir() if COURSE.exists() else []:
        if stale.is_dir() and stale.name not in fresh:
            shutil.rmtree(stale)
    print(f"course/ rebuilt: {', '.join(sorted(fresh))}")


DRIFT_HELP = ("course/ differs from a fresh build of solutions/: after changing solutions/, run `make release`; "
              "after working in a course/ notebook (e.g. in `make lab`), `git checkout course/` restores the "
              "release (keep your work elsewhere first). Differing: ")


def drift() -> list[str]:
    """Lessons whose committed release differs from a fresh build (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        built = {p.relative_to(tmp): p.read_text() for p in build_release(Path(tmp))}
    committed = {p.relative_to(COURSE): p.read_text() for p in COURSE.glob("*/*.ipynb")}
    return sorted(str(rel) for rel in built.keys() | committed.keys() if built.get(rel) != committed.get(rel))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["release", "check"])
    parser.add_argument("lessons", nargs="*", help="release only these lessons (default: all)")
    args = parser.parse_args(argv)
    if unknown := [name for name in args.lessons if name not in lessons()]:
        parser.exit(2, f"unknown lesson{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                       f"the lessons are {', '.join(lessons())}\n")
    if args.command == "release":
        release(args.lessons)
    elif problems := drift():
        raise SystemExit(DRIFT_HELP + ", ".join(problems))
    else:
        print("course/ matches solutions/")


if __name__ == "__main__":
    main()
