"""What a repeated or interrupted `autograde` run reuses, and what it cleans up first.

- A result is reused when its submission's bytes and the grader (its code, convlab, the lesson's
  solutions, checks and release) are unchanged since it was written: `fingerprint` records both in
  result.json. A run killed halfway therefore goes on where it stopped; `--regrade` grades all again.
- Each run's temporary folder (the hidden checks' inputs, the jobs) names its owner's pid; a run
  that finds a folder whose owner is gone (killed with SIGKILL, a crashed machine) removes it, and
  the sandboxes' memory cgroups that such a run left (memcap.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from autograder.grader import memcap

PREFIX = "convlab-grade-"
OWNER = "owner.pid"
_PACKAGES = [Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[2] / "convlab"]
REUSABLE = ("graded", "unreadable", "skipped")


@functools.lru_cache(maxsize=None)
def _code_digest() -> bytes:
    """The grader's and convlab's sources (not their tests), hashed once: they do not change during a run."""
    digest = hashlib.sha256()
    for package in _PACKAGES:
        for path in sorted(package.rglob("*.py")):
            relative = path.relative_to(package)
            if "tests" not in relative.parts:
                digest.update(f"{package.name}/{relative}".encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def grader_version(course, lesson: str) -> str:
    """A hash of everything that decides a lesson's grades besides the submission."""
    digest = hashlib.sha256(_code_digest())
    files = [course.solutions / f"{lesson}.py", course.release / lesson / f"{lesson}.ipynb"]
    if course.checks is not None:                # else the checks are autograder.checks, in _code_digest
        files.append(course.checks / f"l{lesson}.py")
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def fingerprint(notebook: Path | None, version: str) -> dict:
    """{'submission': hash of the file as submitted (or its absence), 'grader': version}."""
    try:
        submission = hashlib.sha256(notebook.read_bytes()).hexdigest()[:16] \
            if notebook is not None and notebook.is_file() and not notebook.is_symlink() else "missing"
    except OSError:
        submission = "unreadable"
    return {"submission": submission, "grader": version}


def reusable(result_file: Path, print_: dict) -> dict | None:
    """The earlier result in `result_file` when it is complete and has this fingerprint, else None."""
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(result, dict) and result.get("fingerprint") == print_ and result.get("status") in REUSABLE:
        return result
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's live process
        return True
    return True


def remove_leftovers(log: Callable[[str], None], folder: Path | None = None) -> list[Path]:
    """Remove this user's grading folders whose owner process is gone; return them."""
    removed = []
    for path in sorted(Path(folder or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            pid = int((path / OWNER).read_text())
        except (OSError, ValueError):
            continue                     # not a folder this code made: leave it
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log(f"removed {path}, left by an interrupted grading run (process {pid} is gone)")
    memcap.remove_leftovers(_alive, log)
    return removed


@contextmanager
def grading_folder() -> Iterator[Path]:
    """A private temporary folder for one run, named with its owner's pid, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp:
        (Path(tmp) / OWNER).write_text(str(os.getpid()))
        yield Path(tmp)
