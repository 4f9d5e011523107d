"""course/ is exactly what `make release` builds from solutions/, and holds no solutions."""
import ast
import json
import re

from autograder import build, coursedir


def test_course_matches_a_fresh_build_of_solutions():
    assert coursedir.lessons(), "no lessons in solutions/"
    problems = build.drift()
    assert not problems, build.DRIFT_HELP + ", ".join(problems)


def test_every_lesson_has_stubs_and_graded_tests_in_the_release():
    for lesson in coursedir.lessons():
        nb = json.loads((coursedir.COURSE / lesson / f"{lesson}.ipynb").read_text())
        meta = [c["metadata"].get("nbgrader", {}) for c in nb["cells"]]
        stubs = [c for c, m in zip(nb["cells"], meta) if m.get("solution")]
        graded = [m for m in meta if m.get("grade")]
        assert stubs and graded, f"{lesson}: {len(stubs)} stub cells, {len(graded)} graded test cells"
        for cell in stubs:
            stub = "raise NotImplementedError()" if cell["cell_type"] == "code" else "YOUR ANSWER HERE"
            assert stub in "".join(cell["source"]), f"{lesson}: stub {cell['id']} does not read {stub!r} in the release"


def test_instructor_sources_hold_no_control_characters():
    # A "\b" or "\t" typed into a Python string that writes markdown becomes a control character,
    # which a notebook shows as nothing (e.g. LaTeX's \bmod loses its backslash).
    allowed = {"\n", "\t"}
    for lesson in coursedir.lessons():
        text = (coursedir.SOLUTIONS / f"{lesson}.py").read_text()
        for number, line in enumerate(text.splitlines(), 1):
            bad = {ch for ch in line if ord(ch) < 32 and ch not in allowed}
            assert not bad, f"solutions/{lesson}.py:{number} holds control character(s) {sorted(map(ord, bad))}"


def test_every_lesson_shows_a_convlab_widget():
    # Rule 'a widget' (docs/authoring.md): tests/test_browser.py runs every lesson in JupyterLab and moves
    # its first widget's slider, so each lesson must show one of convlab.widgets (a `convlab-widget` root).
    for lesson in coursedir.lessons():
        text = (coursedir.SOLUTIONS / f"{lesson}.py").read_text()
        assert "convlab.widgets" in text, (f"solutions/{lesson}.py shows no convlab widget: rule 'a widget' "
                                           "(docs/authoring.md) asks every lesson for one, with a slider")


def test_the_time_limits_students_read_are_the_graders():
    """Lesson 01's introduction and the README state the grader's default limits; they must stay its numbers."""
    from autograder.grader.course import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT
    from autograder.grader.spec import Case
    call = Case.__dataclass_fields__["timeout"].default
    intro = (coursedir.SOLUTIONS / "01_conv_forward.py").read_text()
    stated = [f"a cell after {DEFAULT_CELL_TIMEOUT:g} s of CPU time", f"one hidden-check call after {call:g} s",
              f"whole notebook after {DEFAULT_NOTEBOOK_TIMEOUT:g} s"]
    assert all(phrase in " ".join(intro.replace("# ", " ").split()) for phrase in stated), stated
    readme = " ".join((coursedir.ROOT / "README.md").read_text().split())
    assert (f"{DEFAULT_CELL_TIMEOUT:g} s of CPU per cell, {call:g} s per hidden-check call, "
            f"{DEFAULT_NOTEBOOK_TIMEOUT:g} s per notebook") in readme


def _speed_rules_not_last(source: str) -> list[str]:
    """Code cells (by first line) that call expect_speed_rule other than as their last statement, prints aside."""
    bad = []
    for cell in re.split(r"^# %%.*$", source, flags=re.M):
        if "expect_speed_rule(" not in cell or not cell.strip() or cell.lstrip().startswith("# ["):
            continue
        body = [s for s in ast.parse(cell).body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and getattr(s.value.func, "id", "") == "print")]
        last = body[-1] if body else None
        if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and getattr(last.value.func, "id", "") == "expect_speed_rule"):
            bad.append(cell.strip().splitlines()[0])
    return bad


def test_a_speed_rule_left_to_the_hidden_check_is_the_last_check_in_its_cell():
    # convlab.speed.expect_speed_rule makes no call when graded, so nothing after it may run a slow answer.
    assert _speed_rules_not_last("# %%\nf(x)\nexpect_speed_rule(f, x)\n# %%\nexpect_speed_rule(f, x)\nf(big)\n") \
        == ["expect_speed_rule(f, x)"]
    for lesson in coursedir.lessons():
        bad = _speed_rules_not_last((coursedir.SOLUTIONS / f"{lesson}.py").read_text())
        assert not bad, f"solutions/{lesson}.py: expect_speed_rule is not the last check in the cell starting {bad}"
