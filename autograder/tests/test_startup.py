"""What the sandboxes share since start-up is done once (autograder/grader/startup.py): one
read-only font list and the course package's bytecode, and nothing a submission can change. Two
submissions graded one after the other in the same slot: the first tries to change the font list
and leaves files, an environment variable, a patched module and a process behind; the second, in
the same uid, sees none of it, and loads matplotlib's fonts from the shared list without a scan."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from autograder.grader import startup
from autograder.grader.course import Course
from autograder.grader.batch import grade_all
from autograder.grader.sandbox import Limits, Mode, SandboxUnavailable, command, detect_mode
from autograder.grader.spec import Sample
from autograder.samples import build_sample

FIXTURE = Path(__file__).parent / "fixtures"
COURSE = Course(solutions=FIXTURE / "solutions", release=FIXTURE / "course", checks=FIXTURE / "checks")
LESSON = "00_fixture"
ADD = "def add_arrays(a, b):\n    return a + b\n"

FIRST = """import glob, os, subprocess
import numpy
import matplotlib.pyplot
font_list = glob.glob('/tmp/.matplotlib/fontlist-v*.json')[0]
def overwrite():
    with open(font_list, 'w') as file:
        file.write('{}')
for name, change in [('overwrite', overwrite), ('remove', lambda: os.remove(font_list)),
                     ('rename', lambda: os.rename(font_list, '/tmp/moved.json')),
                     ('chmod', lambda: os.chmod(font_list, 0o666))]:
    try:
        change()
        print('CHANGED the font list:', name)
    except OSError as exc:
        print('refused:', name, type(exc).__name__)
for path in ('/tmp/left-by-first', '/tmp/.matplotlib/left-by-first'):
    with open(path, 'w') as file:
        file.write('first')
os.environ['LEFT_BY_FIRST'] = '1'
numpy.LEFT_BY_FIRST = 1
matplotlib.rcParams['lines.linewidth'] = 99
subprocess.Popen(['sleep', '600'])
print('first done')
""" + ADD

SECOND = """import glob, hashlib, logging, os, sys
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format='%(name)s: %(message)s')
logging.getLogger('matplotlib.font_manager').setLevel(logging.DEBUG)
import numpy
import matplotlib
import matplotlib.font_manager
print('in /tmp:', sorted(os.listdir('/tmp')), 'in /tmp/.matplotlib:', sorted(os.listdir('/tmp/.matplotlib')))
print('environment:', os.environ.get('LEFT_BY_FIRST'), 'numpy patched:', hasattr(numpy, 'LEFT_BY_FIRST'),
      'linewidth:', matplotlib.rcParams['lines.linewidth'])
commands = [open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()]
print('sleeping processes:', [c for c in commands if c.startswith(b'sleep')])
with open(glob.glob('/tmp/.matplotlib/fontlist-v*.json')[0], 'rb') as file:
    print('font list sha256:', hashlib.sha256(file.read()).hexdigest())
""" + ADD

try:
    MODE = detect_mode()
except SandboxUnavailable:
    MODE = None


def _outputs(work: Path, student: str) -> str:
    executed = json.loads((work / "autograded" / student / LESSON / f"{LESSON}.ipynb").read_text())
    return "\n".join(o.get("text", "") + o.get("evalue", "") for c in executed["cells"] for o in c.get("outputs", []))


@pytest.mark.skipif(MODE is None, reason="no sandbox on this machine")
def test_a_second_submission_in_the_same_slot_sees_nothing_the_first_left(tmp_path):
    font_list = startup.prepare(MODE)
    assert font_list is not None and font_list.stat().st_mode & 0o777 == 0o644   # the grader user's alone
    before = hashlib.sha256(font_list.read_bytes()).hexdigest()
    for student, source in [("a_first", FIRST), ("b_second", SECOND)]:
        path = tmp_path / "submitted" / student / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(build_sample(COURSE, LESSON, Sample(base="solution", replace={"add_arrays": source})))
    results = grade_all(tmp_path / "submitted", tmp_path / "work", 1, COURSE, log=lambda line: None)
    assert [(r["student"], r["score"]) for r in results] == [("a_first", 3.0), ("b_second", 3.0)]
    if MODE.name == "uid":   # one slot: both ran as the same uid, one after the other
        assert results[0]["sandbox_uid"] == results[1]["sandbox_uid"]
    first, second = _outputs(tmp_path / "work", "a_first"), _outputs(tmp_path / "work", "b_second")
    assert "first done" in first and "CHANGED" not in first
    assert [line.split()[1] for line in first.splitlines() if line.startswith("refused:")] == \
        ["overwrite", "remove", "rename", "chmod"]
    assert "left-by-first" not in second
    assert f"in /tmp/.matplotlib: ['{font_list.name}']" in second
    assert "environment: None numpy patched: False linewidth: 1.5" in second
    assert "sleeping processes: []" in second
    assert f"font list sha256: {before}" in second
    # matplotlib took the shared list rather than scanning the fonts again
    assert f"matplotlib.font_manager: Using fontManager instance from /tmp/.matplotlib/{font_list.name}" in second
    assert "generated new fontManager" not in second
    assert hashlib.sha256(font_list.read_bytes()).hexdigest() == before


def test_the_font_list_key_changes_with_any_font_file(tmp_path, monkeypatch):
    monkeypatch.setattr(startup, "FONT_FOLDERS", (str(tmp_path),))
    empty = startup.key()
    (tmp_path / "a.ttf").write_bytes(b"font")
    one = startup.key()
    (tmp_path / "a.ttf").write_bytes(b"other font")
    assert len({empty, one, startup.key()}) == 3


def test_a_font_store_others_can_write_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "cache"
    (shared / "convlab" / "matplotlib").mkdir(parents=True)
    (shared / "convlab" / "matplotlib").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    with pytest.raises(PermissionError, match="not this user's alone"):
        startup._store()
    assert startup._find_or_build(Mode("uid", 0)) is None   # each sandbox then builds its own, as before


def test_the_font_list_is_bound_read_only_inside_the_sandboxs_own_tmp(tmp_path):
    font_list = tmp_path / "fontlist-v3.json"
    argv = command(3, tmp_path, tmp_path, 0, set(), 30, 60, Limits(), font_list=font_list)
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp"
    assert argv[tmpfs + 2:tmpfs + 8] == ["--perms", "1777", "--dir", "/tmp/.matplotlib",
                                         "--ro-bind", str(font_list)]
    assert argv[tmpfs + 8] == "/tmp/.matplotlib/fontlist-v3.json"
    without = command(3, tmp_path, tmp_path, 0, set(), 30, 60, Limits())
    assert "/tmp/.matplotlib/fontlist-v3.json" not in without and os.fspath(font_list) not in without


def test_a_font_list_that_cannot_be_built_leaves_each_sandbox_to_build_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def bwrap_fails(argv, **kwargs):
        raise subprocess.CalledProcessError(1, argv[0])

    monkeypatch.setattr(startup.subprocess, "run", bwrap_fails)
    assert startup._find_or_build(Mode("uid", 0)) is None
    assert list((tmp_path / "convlab" / "matplotlib").iterdir()) == []   # nothing half-built is kept
