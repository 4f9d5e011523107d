"""autograder.coursedir: every reuse marker in solutions/ names an earlier lesson's solution cell, and
the parsed view expands it (for the reference and the samples) but builds the release from the cells
as written."""
import os

import pytest

from autograder.coursedir import (BEGIN_SOLUTION, END_SOLUTION, LayoutError, grade_id, lesson_source, lessons,
                                  reuse_targets, source_notebook)
from autograder.grader.reference import reference_cells

HEADER = "# %%"
SOLUTION_CELL = ('# %% nbgrader={{"grade": false, "grade_id": "{gid}", "locked": false, "schema_version": 3, '
                 '"solution": true, "task": false}}\n')


def _cell(gid: str, body: str) -> str:
    return (SOLUTION_CELL.format(gid=gid) + f'def {gid}(x):\n    """{gid} of x."""\n    {BEGIN_SOLUTION}\n'
            + "".join(f"    {line}\n" for line in body.splitlines()) + f"    {END_SOLUTION}\n\n")


def _lesson(folder, name: str, *cells: str) -> None:
    (folder / f"{name}.py").write_text("# %% tags=[\"reference\"]\nimport numpy as np\n\n" + "".join(cells))


def test_every_reuse_marker_in_solutions_names_an_earlier_lessons_solution_cell():
    """Expanding every lesson raises LayoutError, naming the lesson, cell and marker, for a marker
    that names a missing or later lesson or a cell that lesson does not have."""
    reused = {}
    for lesson in lessons():
        source = lesson_source(lesson)
        for gid, targets in source.reuses().items():
            expanded = source.solution_sources()[gid]
            for target in targets:
                earlier, earlier_gid = target.split("/")
                assert lesson_source(earlier).solution_sources()[earlier_gid] in expanded
            reused[f"{lesson}/{gid}"] = targets
    assert reused, "no reuse marker in solutions/: this test and docs/authoring.md's 'Reusing an earlier lesson's solution' describe nothing"


def test_a_reused_cell_runs_the_earlier_lessons_code_and_releases_its_own_stub():
    later = lesson_source("03_conv_backward")
    assert later.reuses()["conv2d_forward"] == ["01_conv_forward/conv2d_forward"]
    assert later.solution_sources()["conv2d_forward"] == lesson_source("01_conv_forward").solution_sources()["conv2d_forward"]
    written = {grade_id(cell): cell.source for cell in source_notebook("03_conv_backward").cells}
    assert "# reuse: 01_conv_forward" in written["conv2d_forward"] and "CHUNK" not in written["conv2d_forward"]
    assert any("CHUNK = 8" in source for source in reference_cells("03_conv_backward"))
    expanded = {grade_id(cell): cell.source for cell in source_notebook("03_conv_backward", expanded=True).cells}
    assert "CHUNK = 8" in expanded["conv2d_forward"]


def test_reuse_expands_through_a_chain_of_lessons_and_joins_several_cells(tmp_path):
    _lesson(tmp_path, "01_a", _cell("double", "return 2 * x"), _cell("half", "return x / 2"))
    _lesson(tmp_path, "02_b", _cell("double", "# reuse: 01_a"))
    _lesson(tmp_path, "03_c", _cell("both", "# reuse: 02_b double\n# reuse: 01_a half\n# reuse: 01_a half"))
    first = lesson_source("01_a", tmp_path).solution_sources()
    assert lesson_source("02_b", tmp_path).solution_sources()["double"] == first["double"]
    assert lesson_source("03_c", tmp_path).solution_sources()["both"] == first["double"] + "\n\n\n" + first["half"]
    namespace = {}
    for source in reference_cells("03_c", tmp_path):
        exec(source, namespace)
    assert namespace["double"](3) == 6 and namespace["half"](3) == 1.5


@pytest.mark.parametrize("marker,problem", [
    ("# reuse: 01_nope", "`# reuse: 01_nope` names no lesson"),
    ("# reuse: 03_later", "names no earlier lesson"),
    ("# reuse: 01_a missing_cell", "01_a has no solution cell missing_cell"),
    ("# reuse: 01_a\nreturn 3", "also has 'return 3'"),
])
def test_a_marker_that_names_no_earlier_solution_cell_fails_saying_which(tmp_path, marker, problem):
    _lesson(tmp_path, "01_a", _cell("double", "return 2 * x"))
    _lesson(tmp_path, "02_b", _cell("double", marker))
    _lesson(tmp_path, "03_later", _cell("double", "return 2 * x"))
    with pytest.raises(LayoutError, match="solutions/02_b.py") as error:
        lesson_source("02_b", tmp_path).solution_sources()
    assert problem in str(error.value)


def test_a_changed_source_is_parsed_again(tmp_path):
    _lesson(tmp_path, "01_a", _cell("double", "return 2 * x"))
    assert "2 * x" in lesson_source("01_a", tmp_path).solution_sources()["double"]
    path = tmp_path / "01_a.py"
    path.write_text(path.read_text().replace("2 * x", "x + x"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))   # a second later, whatever the clock's grain
    assert "x + x" in lesson_source("01_a", tmp_path).solution_sources()["double"]


def test_only_solution_code_cells_can_reuse():
    assert reuse_targets({"cell_type": "markdown", "source": "# reuse: 01_a", "metadata": {}}) == []
    assert reuse_targets({"cell_type": "code", "source": f"{BEGIN_SOLUTION}\n# reuse: 01_a\n{END_SOLUTION}",
                          "metadata": {}}) == []
