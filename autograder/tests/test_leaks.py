"""No solution text and no hidden-check source in the student release (course/) or in any feedback
page, except what the student's own submission contains."""
from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

from autograder.coursedir import lessons

ROOT = Path(__file__).resolve().parents[2]
_SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)


def _distinctive(lines) -> set[str]:
    """Lines long enough not to appear by chance (>= 20 non-space characters), stripped."""
    return {line.strip() for line in lines if len("".join(line.split())) >= 20}


def _secrets() -> set[str]:
    """Solution-block lines and hidden-check lines, less what the instructor source publishes anyway
    (a line of a check module may repeat a helper the notebook shows, e.g. an output-size formula)."""
    sources = [(ROOT / "solutions" / f"{lesson}.py").read_text() for lesson in lessons()]
    solution = _distinctive(line for text in sources for block in _SOLUTION_BLOCK.findall(text)
                            for line in block.splitlines())
    public = _distinctive(line for text in sources for line in _SOLUTION_BLOCK.sub("", text).splitlines())
    # each lesson's check module, its check siblings (_l06_tracking) and the libraries; not the _lNN_bugs
    # modules, whose sources are typical bugs as students write them (lines the release may show)
    folder = ROOT / "autograder" / "checks"
    modules = [p for p in folder.glob("*l[0-9][0-9]_*.py") if not p.stem.endswith("_bugs")]
    checks = _distinctive(line for path in [*modules, *folder.glob("common/*.py")]
                          for line in path.read_text().splitlines())
    return (solution | checks) - public


def _notebook_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c.get("source", "")) + "".join(
        "".join(o.get("text", "")) for o in c.get("outputs", [])) for c in nb["cells"])


def test_secrets_are_found_at_all():
    assert len(_secrets()) > 20


def test_release_contains_no_solution_or_check_text():
    released = {p: _notebook_text(p) for p in (ROOT / "course").glob("*/*.ipynb")}
    assert released
    leaks = {str(p): [s for s in _secrets() if s in text] for p, text in released.items()}
    assert {p: found for p, found in leaks.items() if found} == {}


def test_feedback_contains_no_solution_or_check_text_the_student_did_not_write(graded_samples):
    pages = sorted((graded_samples.work / "feedback").glob("*/*/*.html"))
    assert len(pages) == sum(len(s) for s in graded_samples.samples.values())
    secrets, leaks = _secrets(), {}
    for page in pages:
        student, lesson = page.parts[-3], page.parts[-2]
        submitted = _notebook_text(graded_samples.submitted / student / lesson / f"{lesson}.ipynb")
        text = html.unescape(page.read_text())
        if found := [s for s in secrets if s in text and s not in submitted]:
            leaks[str(page)] = found
    assert leaks == {}


def test_explorer_pages_hold_no_solution_text_and_import_only_the_course_helpers():
    """The learners' explorer (explorer/NN_topic.py) runs on convlab's reference-free widgets: it
    never imports the solutions, the grader or its checks, and holds none of their text."""
    pages = sorted((ROOT / "explorer").glob("[0-9][0-9]_*.py"))
    assert pages
    secrets = _secrets()
    for page in pages:
        text = page.read_text()
        assert not [s for s in secrets if s in text], f"{page.name} holds solution or hidden-check text"
        tree = ast.parse(text)
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                                 if isinstance(node, ast.ImportFrom)}
        assert imported <= {"convlab", "numpy"}, f"{page.name} imports {sorted(imported - {'convlab', 'numpy'})}"
