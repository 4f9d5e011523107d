"""No module imports one above it: the layers below, bottom first, read from every module's imports
with `ast` (imports inside functions count too). A module may import its own layer and those below;
tests may import anything. docs/authoring.md ("The layout and the layers") says why the order is this one."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("convlab", "autograder", "bench", "explorer")

#: Bottom first. A module belongs to the layer of the longest prefix that names it: a module of
#: autograder that no longer prefix names (the package itself, nbgrader_config) is at the bottom.
LAYERS = [
    ("the students' library", ("convlab", "autograder")),         # convlab never imports autograder
    ("the layout", ("autograder.coursedir",)),                     # paths, lessons, the parsed solutions/
    ("the check language", ("autograder.grader.spec", "autograder.grader.bugs")),   # Case, Part, compare, Bug
    ("the hidden checks", ("autograder.checks",)),                 # each lesson's, written in that language
    ("the grader", ("autograder.grader",)),                        # plan, sandbox, scoring, reports
    ("the tools on the grader", ("autograder.samples", "autograder.fairness", "autograder.insight")),
    ("the command lines", ("autograder.build", "autograder.grade", "bench", "explorer")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every non-test module of the packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "tests" not in path.relative_to(ROOT).parts:
                found[module_name(path)] = path
    return found


def layer(module: str) -> int | None:
    """The index of the module's layer in LAYERS (None: not one of ours, e.g. numpy)."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def imports(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported module) for each import of ours in the file: `from a.b import c` imports a.b.c
    when that is a module, else a.b."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(filter(None, [package.rsplit(".", node.level - 1)[0] if node.level > 1 else package,
                                              node.module]))
            found += [(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
                      for alias in node.names]
    return sorted({(line, name) for line, name in found if name.split(".")[0] in PACKAGES})


def upward_imports() -> list[str]:
    known = modules()
    problems = []
    for module, path in known.items():
        own = layer(module)
        assert own is not None, f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
        for line, imported in imports(module, path, set(known)):
            if (theirs := layer(imported)) is not None and theirs > own:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[own][0]}) imports {imported} "
                                f"({LAYERS[theirs][0]}), a layer above it")
    return problems


def test_no_module_imports_one_above_it():
    problems = upward_imports()
    assert not problems, "\n".join(problems)


def test_convlab_imports_nothing_of_the_autograder():
    known = modules()
    found = [f"{module} imports {imported}" for module, path in known.items() if module.startswith("convlab")
             for _, imported in imports(module, path, set(known)) if not imported.startswith("convlab")]
    assert not found, found


def test_the_builder_and_the_grader_do_not_import_each_other():
    known = modules()
    edges = {(module, imported) for module, path in known.items() for _, imported in imports(module, path, set(known))}
    between = sorted(f"{a} imports {b}" for a, b in edges
                     if {a.split(".")[:2][-1], b.split(".")[:2][-1]} == {"build", "grader"})
    assert not between, between


@pytest.mark.parametrize("source,imported", [("from autograder.grader.course import Course", "autograder.grader.course"),
                                             ("import autograder.build", "autograder.build")])
def test_an_upward_import_is_found_and_named(tmp_path, source, imported):
    """The check can fail: a spec module importing the grader (or the builder) is reported by name."""
    path = tmp_path / "spec.py"
    path.write_text(f"def f():\n    {source}\n")
    found = imports("autograder.grader.spec", path, set(modules()))
    assert found == [(2, imported)]
    assert layer(imported) > layer("autograder.grader.spec")


def test_grader_processes_skip_jsonschemas_iri_grammars():
    """autograder/__init__.py marks rfc3987_syntax absent (about 1 s of lark grammar compiling per
    process); notebooks still read and validate."""
    code = ("import sys, autograder.grade, nbformat\n"
            "from autograder.coursedir import source_notebook\n"
            "nbformat.validate(source_notebook('01_conv_forward'))\n"
            "print('lark' in sys.modules, 'rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "None"], out
