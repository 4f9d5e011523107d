"""Fast checks of the grader's parts that need no sandbox: decoding what a sandbox reports,
rebuilding a notebook from the release, refusing to grade without bubblewrap."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from autograder import grade
from autograder.grader import sandbox
from autograder.grader.notebook import Unreadable, read_submission, reconstruct
from autograder.grader.runner import encode
from autograder.grader.spec import Case, Part, Raised, judge_part
from autograder.grader.wire import decode_result

RELEASE = json.loads((Path(__file__).parent / "fixtures/course/00_fixture/00_fixture.ipynb").read_text())


def _npy(header: str, data: bytes) -> dict:
    head = header.encode("latin1")
    raw = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + data
    return {"__ndarray__": base64.b64encode(raw).decode()}


def test_plain_data_crosses_back_intact():
    value = {"y": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(7), "t": (1, 2.5, None, "s"),
             "l": [True, np.float16(0.5)], "fortran": np.asfortranarray(np.eye(3))}
    back = decode_result({"value": json.loads(json.dumps(encode(value)))})
    assert back.keys() == value.keys() and type(back["t"]) is tuple and type(back["n"]) is np.int64
    assert back["y"].dtype == np.float32 and np.array_equal(back["y"], value["y"])
    assert np.array_equal(back["fortran"], np.eye(3)) and back["l"] == [True, 0.5]


@pytest.mark.parametrize("value,problem", [
    (_npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "dtype object"),
    (_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", b"\0" * 8), "does not match"),
    (_npy("__import__('os').system('true')", b""), "unreadable .npy header"),
    ({"__ndarray__": "not base64!"}, "not valid base64"),
    ({"__set__": [1]}, "unknown format"),
    (json.loads("[" * 40 + "]" * 40), "nested more than"),
])
def test_anything_else_becomes_a_message_not_an_object(value, problem):
    result = decode_result({"value": value})
    assert isinstance(result, Raised) and result.type == "Unsupported" and problem in result.message


def _submission(cells_edit) -> dict:
    nb = json.loads(json.dumps(RELEASE))
    cells_edit(nb["cells"])
    return nb


def test_only_solution_sources_and_added_cells_come_from_the_submission():
    def edit(cells):
        by_id = {c["id"]: c for c in cells}
        by_id["add_arrays"]["source"] = ["def add_arrays(a, b):\n", "    return a + b\n"]
        by_id["test_add_arrays"]["source"] = "pass  # edited test"
        by_id["test_add_arrays"]["metadata"]["nbgrader"]["points"] = 99
        cells.remove(by_id["test_row_sums"])
        cells.insert(cells.index(by_id["add_arrays"]) + 1,
                     {"cell_type": "code", "id": "mine", "metadata": {}, "source": "print('my scratch cell')"})
        cells.insert(0, {"cell_type": "code", "id": "first", "metadata": {}, "source": "print('before all')"})
    cells = reconstruct(RELEASE, _submission(edit), "00_fixture")
    code = [(c.origin, c.source.splitlines()[0]) for c in cells if c.cell_type == "code"]
    assert code == [("added", "print('before all')"), ("provided", "import numpy as np"),
                    ("student", "def add_arrays(a, b):"), ("added", "print('my scratch cell')"),
                    ("test", "assert np.array_equal(add_arrays(np.ones((1, 2)), np.ones((1, 2))), "
                             "np.full((1, 2), 2.0)), \"1 + 1 should be 2\""),
                    ("stub", "def row_sums(x):"), ("provided", "def probe_row_sums_twice(x):"),
                    ("test", "assert row_sums(np.ones((2, 3))).shape == (2,), \"row_sums should return one number per row\"")]
    assert [c.metadata.get("nbgrader", {}).get("points") for c in cells if c.origin == "test"] == [1, 2]


def test_a_symlinked_submission_is_not_followed(tmp_path):
    (tmp_path / "00_fixture.ipynb").symlink_to(Path(__file__))
    with pytest.raises(Unreadable, match="not a regular file"):
        read_submission(tmp_path / "00_fixture.ipynb", "00_fixture")


def test_without_bubblewrap_the_grader_refuses_and_says_how_to_fix_it(monkeypatch, tmp_path, capsys):
    real_which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None if tool == "bwrap" else real_which(tool))
    (tmp_path / "submitted").mkdir()
    assert grade.main(["autograde", "--submitted", str(tmp_path / "submitted"), "--work", str(tmp_path / "w")]) == 2
    assert "`bwrap` is not installed" in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_the_fixture_release_is_a_fresh_nbgrader_build(tmp_path):
    from autograder import build
    fixture = Path(__file__).parent / "fixtures"
    built = build.build_release(tmp_path, only=["00_fixture"], solutions=fixture / "solutions")[0]
    assert built.read_text() == (fixture / "course/00_fixture/00_fixture.ipynb").read_text()


def test_a_checkout_under_tmp_stays_visible_in_the_sandbox(tmp_path):
    """The sandbox's own /tmp is a fresh tmpfs; it must be mounted before the binds of the Python
    installation, the venv and convlab, or a checkout under /tmp (as CI may use) vanishes under it."""
    args = sandbox.command(3, tmp_path, tmp_path, 0, set(), 1.0, 10, sandbox.Limits())
    tmpfs = args.index("--tmpfs")
    binds = [i for i, arg in enumerate(args) if arg in ("--ro-bind", "--bind", "--dir")]
    assert args[tmpfs + 1] == "/tmp" and binds and tmpfs < min(binds), args


def test_a_diagnose_function_that_fails_costs_the_hint_not_the_feedback():
    def diagnose(case, actual):
        return float(actual[1])            # raises on the odd value below, as a real check might

    part = Part("test_loss", [Case("loss", expected=(1.0, 2.0), label="N=2")], diagnose)
    assert judge_part(part, [(1.0, "oops")]) == "loss(...)[1] returned str, expected a number [N=2]"
    part = Part("test_loss", [Case("loss", expected=(1.0, 2.0))], lambda case, actual: "swapped outputs")
    assert judge_part(part, [(2.0, 1.0)]).endswith(". Likely bug: swapped outputs")


def test_figures_a_cell_leaves_open_become_pngs_and_only_pngs_reach_the_page():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autograder.grader.report import png_figures
    from autograder.grader.runner import cell_figures

    plt.close("all")   # figures other tests of this process left open
    plt.subplots()[1].plot([0, 1], [1, 0])
    plt.show()   # the Agg backend keeps the figure open, as in the sandbox
    figures = cell_figures()
    assert len(figures) == 1 and base64.b64decode(figures[0]).startswith(b"\x89PNG") and plt.get_fignums() == []
    forged = ['"><script>alert(1)</script>', base64.b64encode(b"GIF89a" + bytes(20)).decode(), 42, "A" * (3 << 20)]
    assert png_figures(figures + forged) == figures and png_figures("not a list") == []


def test_a_check_module_with_two_parts_for_one_cell_is_refused(tmp_path):
    from autograder.grader.course import Course, CourseError
    fixture = Path(__file__).parent / "fixtures"
    checks = (fixture / "checks" / "l00_fixture.py").read_text()
    (tmp_path / "l00_fixture.py").write_text(checks + "\n\n_parts = parts\n\n\ndef parts(ref, rng):\n"
                                             "    built = _parts(ref, rng)\n    return built + built[:1]\n")
    course = Course(solutions=fixture / "solutions", release=fixture / "course", checks=tmp_path)
    with pytest.raises(CourseError, match=r"more than one hidden-check Part for the graded test cells \['test_add_arrays'\]"):
        course.plan("00_fixture")


@pytest.mark.parametrize("built_on", ["test_row_sums", "test_no_such_cell"])
def test_a_part_built_on_a_later_or_unknown_cell_is_refused(tmp_path, built_on):
    from autograder.grader.course import Course, CourseError
    fixture = Path(__file__).parent / "fixtures"
    checks = (fixture / "checks" / "l00_fixture.py").read_text()
    (tmp_path / "l00_fixture.py").write_text(checks + "\n\n_parts = parts\n\n\ndef parts(ref, rng):\n"
                                             "    built = _parts(ref, rng)\n"
                                             f"    built[0].built_on = ({built_on!r},)\n    return built\n")
    course = Course(solutions=fixture / "solutions", release=fixture / "course", checks=tmp_path)
    with pytest.raises(CourseError, match=f"built on no earlier graded test cell: \\['test_add_arrays on {built_on}'\\]"):
        course.plan("00_fixture")


def test_the_advice_for_an_argument_changed_in_place_fits_an_array_and_an_array_inside_a_dict():
    plain = Raised("ChangedInput", "x").describe("relu_forward")
    assert plain == ("relu_forward changed its argument x in place: work on a copy (e.g. x.copy(), or build a new "
                     "array) instead of writing into it")
    inner = Raised("ChangedInput", "tracks['missed']").describe("update_tracks")
    assert inner.startswith("update_tracks changed its argument tracks['missed'] in place: build new arrays")
    assert "np.array(tracks['missed'])" in inner and "tracks.copy() is not enough" in inner   # a shallow copy shares


@pytest.mark.parametrize("how", ["exception group", "formatting fails"])
def test_a_cell_error_ipython_cannot_format_is_still_recorded(monkeypatch, tmp_path, how):
    """IPython prints its own fallback and skips _showtraceback for an exception group, or when formatting the
    traceback fails (a Timeout raised in a frame without a line number did that): the cell's error must still
    reach the grader, so that a time-out gets its note."""
    from autograder.grader import runner as runner_module
    monkeypatch.setattr(runner_module.os, "dup", lambda fd: os.open(os.devnull, os.O_RDONLY))
    with open(tmp_path / "channel", "wb+") as channel:
        runner = runner_module.Runner(channel.fileno())
        if how == "formatting fails":
            def unformattable(*args, **kwargs):
                raise AssertionError("frame_info.lineno is None")
            monkeypatch.setattr(runner.shell.InteractiveTB, "structured_traceback", unformattable)
            cell = "raise runner_module.Timeout('ran past 30 s')"
            runner.shell.user_ns["runner_module"] = runner_module
        else:
            cell = "raise ExceptionGroup('two', [ValueError('a'), KeyError('b')])"
        runner.run_cells([cell], set(), 5.0)
        channel.seek(0)
        events = [json.loads(line) for line in channel.read().decode().splitlines()]
    done = next(event for event in events if event["ev"] == "cell_done")
    assert done["error"]["ename"] == ("Timeout" if how == "formatting fails" else "ExceptionGroup"), done


def test_a_console_line_names_points_still_to_grade_by_hand_and_a_kept_result():
    from autograder.grader.batch import _console_line
    parts = [{"grade_id": "test_a", "points": 3, "score": 3.0},
             {"grade_id": "written", "points": 2, "score": 0.0, "needs_manual_grade": True}]
    result = {"student": "ann", "lesson": "03_conv_backward", "score": 3.0, "max_score": 5.0, "status": "graded",
              "notes": ["a note that a graded line does not show"], "parts": parts}
    assert _console_line(result, kept=False).split() == ["ann", "03_conv_backward", "3/5", "(+2", "to", "grade", "by",
                                                         "hand)", "graded"]
    assert _console_line(result, kept=True).endswith("3/5 (+2 to grade by hand)  kept (graded by an earlier run)")
    skipped = {**result, "status": "skipped", "score": 0.0, "parts": parts[:1], "notes": ["found 03.ipynb"]}
    assert _console_line(skipped, kept=False).endswith("0/5  skipped: found 03.ipynb")


def test_a_full_sample_reads_as_a_student_wrote_it_with_no_solution_markers():
    from autograder.coursedir import is_solution
    from autograder.grader.course import Course
    from autograder.grader.spec import Sample
    from autograder.samples import build_sample
    for lesson in Course().lessons():
        cells = json.loads(build_sample(Course(), lesson, Sample()))["cells"]
        sources = ["".join(c["source"]) for c in cells]
        assert not [s for s in sources if "BEGIN SOLUTION" in s or "END SOLUTION" in s], lesson
        answers = [s for c, s in zip(cells, sources) if c["cell_type"] == "markdown" and is_solution(c)]
        assert all(a.strip() and "YOUR ANSWER HERE" not in a for a in answers), lesson   # written answers filled in


def test_a_time_out_names_the_notebooks_function_that_was_running(monkeypatch, tmp_path):
    """Given code (train) that calls a slow function of the student's (slow_iou) times out in train's
    cell: the note says the time ran out in slow_iou, called from train, so the student knows what to fix."""
    from autograder.grader import runner as runner_module
    from autograder.grader.engine import Execution
    from autograder.grader.notebook import Cell
    monkeypatch.setattr(runner_module.os, "dup", lambda fd: os.open(os.devnull, os.O_RDONLY))
    cells = ["def slow_iou(n):\n    total = 0\n    for i in range(n):\n        total += i % 7\n    return total\n",
             "def train():\n    return [slow_iou(10**12) for _ in range(3)]\n",
             "history = train()\n", "print('after')\n"]
    with open(tmp_path / "channel", "wb+") as channel:
        runner_module.Runner(channel.fileno()).run_cells(cells, set(), 0.3)
        channel.seek(0)
        events = [json.loads(line) for line in channel.read().decode().splitlines()]
    ex = Execution([Cell("code", source, "provided") for source in cells], 0.3, 1 << 30)
    for event in (e for e in events if e["ev"] == "cell_done"):
        ex.record_cell(event["i"], event)
    assert ex.notes == ["infinite loop? code cell 3 (`history = train()`) ran past 0.3 s of CPU time and was "
                        "interrupted; it was in slow_iou (called from train) when the time ran out"]
    assert ex.outputs[3]["out"] == "after\n" and ex.outputs[2]["error"]["ename"] == "Timeout"
