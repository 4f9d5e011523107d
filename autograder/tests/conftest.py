"""One sandboxed grading run of every shipped sample of every lesson, shared by the sample and leak tests."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.samples import lesson_samples, write_samples
from autograder.grader.spec import Sample

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GradedSamples:
    samples: dict[str, dict[str, Sample]]   # lesson -> name -> Sample
    submitted: Path
    work: Path

    def result(self, lesson: str, name: str) -> dict:
        return json.loads((self.work / "autograded" / f"sample_{name}" / lesson / "result.json").read_text())

    def feedback(self, lesson: str, name: str) -> str:
        return (self.work / "feedback" / f"sample_{name}" / lesson / f"{lesson}.html").read_text()


def _grade(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "autograder.grade", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def graded_samples(tmp_path_factory) -> GradedSamples:
    """The instructor loop on the shipped samples: autograde (2 at a time), feedback, grades."""
    base = tmp_path_factory.mktemp("samples")
    samples = lesson_samples(log=lambda line: None)
    write_samples(base / "submitted", samples)
    _grade("autograde", "--submitted", str(base / "submitted"), "--work", str(base / "work"), "--jobs", "2",
           "--seed", "fixed")
    _grade("feedback", "--work", str(base / "work"))
    _grade("grades", "--work", str(base / "work"))
    return GradedSamples(samples, base / "submitted", base / "work")
