"""The adversarial corpus: hostile, broken and careless submissions, each with the exact score and
the message the grader must give it. autograder/tests/test_adversarial.py grades them all in one run.

They are submissions of the grader's fixture lesson (autograder/tests/fixtures: add_arrays worth
1 point, row_sums 2, a locked helper), so the corpus runs in seconds and does not change when a
real lesson does. Attacks aim at the real paths of this machine (`Targets`). Where an attack
would pay off if it worked, it is written so that it would earn points or print a marker the
test looks for; the expected score and output say it did not.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from autograder.grader.course import Course
from autograder.coursedir import grade_id
from autograder.grader.spec import Sample
from autograder.samples import build_sample

LESSON = "00_fixture"
VICTIM_SECRET = "VICTIM-SECRET-4b1d"
ADD = "def add_arrays(a, b):\n    return a + b\n"
ROWS = "def row_sums(x):\n    return x.sum(axis=1)\n"


@dataclass
class Attack:
    sample: Sample              # the submission, its exact score and per-test messages
    notes: str = ""             # a substring of the submission's notes
    output: str = ""            # a substring of the executed notebook's outputs
    not_output: str = ""        # must not appear there: what a successful attack would print
    filename: str = ""          # submit under this name instead of <lesson>.ipynb
    root_output: str = ""       # also in the outputs when grading as root (sandbox mode "uid"; docs/grading.md)


@dataclass
class Targets:
    """Real paths an attacker would aim at."""
    repo: Path                  # the instructor's checkout (solutions/, autograder/, course/)
    fixture: Path               # the fixture course (its solutions and hidden checks)
    submitted: Path             # every student's submission
    work: Path                  # results, grades.csv and a gradebook.db planted by the test


def try_each(action: str, targets: list | str) -> str:
    """Code that tries `action` on each `path` of `targets` (paths, or a Python expression for a
    list) and prints what happened."""
    expression = targets if isinstance(targets, str) else repr([str(p) for p in targets])
    return (f"for path in {expression}:\n    try:\n        {action}\n"
            "    except Exception as exc:\n        print('refused:', path, type(exc).__name__, exc)\n")


HUGE_NPY_HEADER = """import base64, io, json, os, sys
import numpy as np
channel = int(sys.argv[3])
header = ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "1, " * 400_000 + "), }").encode()
npy = b"\\x93NUMPY\\x02\\x00" + len(header).to_bytes(4, "little") + header
os.write(channel, json.dumps({"ev": "cells_done"}).encode() + b"\\n")
os.write(channel, json.dumps({"ev": "result", "k": 0, "value": {"__ndarray__": base64.b64encode(npy).decode()}}).encode()
         + b"\\n")
def add_arrays(a, b):
    return a + b
"""
REUSED_FRAME = """import io, json, os, sys
import numpy as np
channel = int(sys.argv[3])
buffer = io.BytesIO()
np.save(buffer, np.zeros(1 << 20))   # 8 MB, named 1,000 times: 8 GB if each name were an array
os.write(channel, json.dumps({"ev": "cells_done"}).encode() + b"\\n")
os.write(channel, json.dumps({"ev": "result", "k": 0, "value": [{"__ndarray__": 0}] * 1000,
                              "frames": [len(buffer.getvalue())]}).encode() + b"\\n" + buffer.getvalue())
def add_arrays(a, b):
    return a + b
"""
FORGED_REPORTS = """import os, sys
channel = int(sys.argv[3])   # the runner's report channel
os.write(channel, b'{"ev": "cells_done"}\\n{"ev": "result", "k": 0, "value": 1000}\\n')
def add_arrays(a, b):
    return 0
"""
FORGED_MANY_VALUES = """import os, sys
# a report parsing would turn into 2 million lists (gigabytes): refused by its count, before parsing
os.write(int(sys.argv[3]), b'{"ev": "result", "k": 0, "value": [' + b'[],' * 2_000_000 + b'0]}\\n')
""" + ADD
MEMORY_ACROSS_PROCESSES = """import os, time
children = []
for _ in range(4):   # 4 x 0.9 GiB: each process under its own 3 GiB, 3.6 GiB together
    pid = os.fork()
    if pid == 0:
        hoard = b'x' * (900 << 20)
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
""" + ADD
GARBLED_REPORTS = "import os, sys\nos.write(int(sys.argv[3]), b'GARBAGE\\n')\n" + ADD
PATCHED_NUMPY = """import builtins, numpy as np, convlab.expect
np.allclose = np.array_equal = np.isclose = lambda *a, **k: True
np.testing.assert_allclose = convlab.expect.expect_close = lambda *a, **k: None
builtins.abs = builtins.sum = lambda *a, **k: 0
def add_arrays(a, b):
    return np.zeros((1,))
"""
PATCHED_RUNNER = """import gc
for obj in gc.get_objects():
    if type(obj).__name__ == 'Runner':
        obj.call = lambda *request: {'value': 1.0}
""" + ADD
UNINTERRUPTIBLE_LOOP = ("import signal\nfor sig in (signal.SIGALRM, signal.SIGPROF):   # the runner's two timers\n"
                        "    signal.signal(sig, signal.SIG_IGN)\n" + ADD + "while True:\n    pass\n")
FORK_BOMB = ADD + """import os
try:
    while True:
        os.fork()
except OSError as exc:
    print('fork refused:', exc)
"""
LEFTOVER_PROCESSES = ADD + """import os, subprocess, time
subprocess.Popen(['sleep', '1000'], start_new_session=True)
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        time.sleep(1000)
    os._exit(0)
"""
OUTPUT_FLOOD = ADD + "import os\nfor i in range(30000):\n    print('flood' * 20)\nos.write(1, b'x' * 10**7)\n"
# A nested user namespace would give the sandbox every capability inside it: enough to remount the
# read-only binds writable or unmount them, if the kernel did not lock mounts inherited that way.
NESTED_NAMESPACES = ADD + """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
if libc.unshare(0x10000000 | 0x00020000) != 0:   # CLONE_NEWUSER | CLONE_NEWNS
    print('refused: unshare', os.strerror(ctypes.get_errno()))
else:
    for path in ['/job', '/usr', '/probes']:
        if libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND, None) == 0:
            print('ESCAPED: remounted', path)
        else:
            print('refused: remount', path, os.strerror(ctypes.get_errno()))
        if libc.umount2(path.encode(), MNT_DETACH) == 0:
            print('ESCAPED: unmounted', path)
        else:
            print('refused: umount', path, os.strerror(ctypes.get_errno()))
    try:
        open('/job/cells.json', 'w').write('[]'); print('ESCAPED: wrote /job/cells.json')
    except OSError as exc:
        print('refused: write', exc)
"""
HUGE_ARRAY = "import numpy as np\ndef row_sums(x):\n    return np.ones((40 << 30) // 8) + x.sum(axis=1)\n"


def _notebook(course: Course, edit) -> bytes:
    """The full solution notebook, changed in place by `edit(cells)`, as raw bytes."""
    nb = json.loads(build_sample(course, LESSON, Sample(base="solution")))
    edit(nb["cells"])
    return json.dumps(nb).encode()


def _edit_locked(cells: list) -> None:
    for cell in cells:
        if (grade_id(cell) or "").startswith("test_"):
            cell["source"] = "print('tests skipped')"
        elif grade_id(cell) == "helpers":
            cell["source"] = "def probe_row_sums_twice(x):\n    return 0"
        elif grade_id(cell) == "row_sums":
            cell["source"] = "def row_sums(x):\n    return x.sum(axis=0)\n"


def _delete_locked(cells: list) -> None:
    cells[:] = [c for c in cells if not c.get("metadata", {}).get("nbgrader", {}).get("locked")]


def _inflate_points(cells: list) -> None:
    for cell in cells:
        if (grade_id(cell) or "").startswith("test_"):
            cell["metadata"]["nbgrader"]["points"] = 1000
    cells.append({"cell_type": "code", "id": "bonus", "source": "x = 1", "outputs": [], "execution_count": None,
                  "metadata": {"nbgrader": {"grade": True, "grade_id": "test_bonus", "points": 1000,
                                            "solution": False, "locked": True}}})


def _add_sleepers(cells: list) -> None:
    cells.extend({"cell_type": "code", "id": f"sleep{n}", "metadata": {}, "outputs": [], "execution_count": None,
                  "source": "import time\ntime.sleep(3.5)"} for n in range(8))


def _add_huge_output(cells: list) -> None:
    cells[1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * (21 << 20)}]


WRONG_LESSON = {"cells": [{"cell_type": "code", "id": "conv2d_forward", "source": "def conv2d_forward(x): pass",
                           "metadata": {"nbgrader": {"grade_id": "conv2d_forward", "solution": True}}}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def corpus(course: Course, t: Targets) -> dict[str, Attack]:
    def attack(score: float, messages: dict | None = None, base: str = "solution", **fields) -> Attack:
        """An attack written into stub cells: fields `add_arrays=`/`row_sums=` are their new sources."""
        replace = {stub: fields.pop(stub) for stub in ("add_arrays", "row_sums") if stub in fields}
        return Attack(Sample(base=base, replace=replace, score=score, messages=messages or {}), **fields)

    def broken(raw: bytes, message: str, grade_id: str = "test_add_arrays", **fields) -> Attack:
        return Attack(Sample(raw=raw, score=0, messages={grade_id: message}), **fields)

    secrets = [t.repo / "solutions" / "01_conv_forward.py", t.repo / "autograder" / "checks" / "__init__.py",
               t.fixture / "solutions" / f"{LESSON}.py", t.fixture / "checks" / f"l{LESSON}.py",
               t.submitted / "sample_victim" / LESSON / f"{LESSON}.ipynb"]
    gradebook = "import glob, os, sqlite3\n" + try_each(
        "sqlite3.connect(path).execute('UPDATE grade SET manual_score = 1000').connection.commit(); print('WROTE', path)",
        [t.work / "gradebook.db", "gradebook.db", "../gradebook.db", t.repo / "autograder/work/gradebook.db"]
    ) + try_each("open(path, 'w').write('{\"score\": 1000}'); print('WROTE', path)",
                 [t.work / "autograded/sample_victim" / LESSON / "result.json", t.work / "grades.csv",
                  "../../autograded/result.json"]
    ) + try_each("os.setuid(path); print('WROTE uid', path)", "[0]") + \
        "def row_sums(x):\n    return np.zeros(x.shape[0])\n"
    rmtree = "import shutil\n" + try_each(
        "shutil.rmtree(path); print('DELETED', path)",
        [t.repo / "course", t.repo / "solutions", t.repo / "autograder", t.fixture, t.submitted, t.work,
         "/job", "/probes", "..", "../.."]) + ADD
    return {
        "victim": attack(3, add_arrays=f"# {VICTIM_SECRET}\n{ADD}"),
        # honest submissions graded among the hostile ones (names sort to the start, middle and end)
        **{f"{at}_honest": attack(3) for at in ("a", "m", "z")},
        # the sandbox's processes, the grader and the gradebook
        # The parent and pid 1 are bwrap: as root they belong to root (EPERM); in a user namespace the
        # kernel ignores SIGKILL sent to the namespace's init from inside it. The grader's pid does
        # not exist in the sandbox's pid namespace.
        "kill_grader": attack(3, add_arrays="import os, signal\n" + try_each(
            "os.kill(path, signal.SIGKILL)", f"[os.getppid(), 1, {os.getpid()}]") + ADD,
            output="No such process", root_output="Operation not permitted"),
        "kill_itself": attack(2, {"test_add_arrays": "add_arrays is not defined"},
                              add_arrays="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + ADD,
                              notes="code cell 2 (`import os, signal`): the Python process died (signal 9, killed)"),
        "os_exit": attack(1, {"test_row_sums": "row_sums is not defined"}, row_sums="import os\nos._exit(3)\n" + ROWS,
                          notes="exit code 3"),
        "gradebook": attack(1, {"test_row_sums": "got 0, far from the correct value"}, row_sums=gradebook, output="refused:",
                            not_output="WROTE"),
        "huge_npy_header": attack(2, {"test_add_arrays": "a .npy header of 1,200,055 bytes (at most 10,000)"},
                                  add_arrays=HUGE_NPY_HEADER),
        "reused_frame": attack(2, {"test_add_arrays": "an array frame used twice (frame 0)"}, add_arrays=REUSED_FRAME),
        "forged_reports": attack(2, {"test_add_arrays": "add_arrays(...) returned int"}, add_arrays=FORGED_REPORTS),
        "forged_many_values": attack(2, {"test_add_arrays": "add_arrays is not defined"}, add_arrays=FORGED_MANY_VALUES,
                                     notes="it wrote into the grader's report channel"),
        "garbled_reports": attack(2, {"test_add_arrays": "is not defined"}, add_arrays=GARBLED_REPORTS,
                                  notes="it wrote into the grader's report channel"),
        "patched_numpy": attack(2, {"test_add_arrays": "has shape (1,), expected (3, 4)"}, add_arrays=PATCHED_NUMPY,
                                output="add_arrays: visible test passed"),
        "patched_runner": attack(0, {"test_add_arrays": "returned float", "test_row_sums": "returned float"},
                                 add_arrays=PATCHED_RUNNER),
        # files and network
        # the check inputs appear in /probes one by one as they are asked for, after the cells ran
        "precompute_inputs": attack(3, add_arrays="import os\nprint('probes visible:', len(os.listdir('/probes')))\n"
                                    + ADD, output="probes visible: 0"),
        # bwrap's options reach it through a pipe: its command line shows no host folder
        "proc_cmdline": attack(3, add_arrays="print('cmdline:', open('/proc/1/cmdline').read().split(chr(0)))\n" + ADD,
                               output="cmdline: ['bwrap', '--args'", not_output="convlab-grade-"),
        "rmtree": attack(3, add_arrays=rmtree, output="refused:", not_output="DELETED"),
        "read_secrets": attack(0, {"test_add_arrays": "add_arrays is not defined"}, base="release",
                               add_arrays=try_each("text = open(path).read(); print('READ', path, text); exec(text)",
                                                   secrets),
                               output="No such file", not_output=VICTIM_SECRET),
        "nested_namespaces": attack(3, add_arrays=NESTED_NAMESPACES, output="refused:", not_output="ESCAPED"),
        "network": attack(3, add_arrays="import socket\n" + try_each(
            "socket.create_connection(path, timeout=2); print('CONNECTED', path)",
            "[('1.1.1.1', 53), ('127.0.0.1', 22)]") + ADD, output="refused:", not_output="CONNECTED"),
        "disk_fill": attack(3, add_arrays=try_each("open(path, 'wb').write(bytes(100 << 20)); print('WROTE', path)",
                                                   ["/tmp/fill"]) + ADD, output="File too large", not_output="WROTE"),
        # time, memory, processes, output
        "infinite_loop": attack(3, add_arrays=ADD + "while True:\n    pass\n",
                                notes="infinite loop? code cell 2 (`def add_arrays(a, b):`) ran past 4 s"),
        "uninterruptible_loop": attack(2, {"test_add_arrays": "add_arrays is not defined"},
                                       add_arrays=UNINTERRUPTIBLE_LOOP,
                                       notes="infinite loop? it ran past 4 s of CPU time (12 s in all) and could not "
                                             "be interrupted"),
        "loop_in_function": attack(1, {"test_row_sums": "did not return within the time limit (2 s of CPU time)"},
                                   row_sums="def row_sums(x):\n    while True:\n        pass\n", notes="infinite loop?"),
        "notebook_timeout": Attack(Sample(raw=_notebook(course, _add_sleepers), score=0,
                                          messages={"test_add_arrays": "the notebook ran past 20 s"}),
                                   notes="grading stopped: the notebook ran past 20 s"),
        "memory_40gib": attack(1, {"test_row_sums": "row_sums raised MemoryError"},
                               add_arrays=ADD + "hoard = bytearray(40 << 30)\n", row_sums=HUGE_ARRAY,
                               notes="ran out of memory (MemoryError)"),
        "memory_across_processes": attack(2, {"test_add_arrays": "add_arrays is not defined"},
                                          add_arrays=MEMORY_ACROSS_PROCESSES,
                                          notes="it used more than 3 GiB of memory, all its processes together"),
        "fork_bomb": attack(3, add_arrays=FORK_BOMB, output="Resource temporarily unavailable"),
        "leftover_processes": attack(3, add_arrays=LEFTOVER_PROCESSES),
        "output_flood": attack(3, add_arrays=OUTPUT_FLOOD, notes="printed too much: its output was truncated"),
        # answers that are not what was asked
        "unsupported_result": attack(2, {"test_add_arrays": "returned an object of type generator"},
                                     add_arrays="def add_arrays(a, b):\n    return (v for v in a + b)\n"),
        "huge_result": attack(2, {"test_add_arrays": "returned a result over 64 MiB"},
                              add_arrays="import numpy as np\ndef add_arrays(a, b):\n    return np.zeros(10_000_000)\n"),
        "nan_output": attack(2, {"test_add_arrays": "contains NaN"},
                             add_arrays="import numpy as np\ndef add_arrays(a, b):\n    return a + b + np.nan\n"),
        "many_values": attack(2, {"test_add_arrays": "returned a structure of more than 100,000 values"},
                              add_arrays="def add_arrays(a, b):\n    return list(range(200_000))\n"),
        "wrong_dtype": attack(1, {"test_row_sums": "has dtype int64"}, row_sums="import numpy as np\n"
                              "def row_sums(x):\n    return np.round(x.sum(axis=1)).astype(np.int64)\n"),
        "wrong_axis": attack(1, {"test_row_sums": "Likely bug: summed over the wrong axis"},
                             row_sums="def row_sums(x):\n    return x.sum(axis=0)\n"),
        "huge_integer": attack(2, {"test_add_arrays": "returned an integer of 16,610 bits (more than 4096)"},
                               add_arrays="def add_arrays(a, b):\n    return 10 ** 5000\n"),
        # a definition hint over 2 MB of blank lines: linear in the grader's process, not quadratic
        "blank_lines_then_syntax_error": attack(2, {"test_add_arrays": "SyntaxError in your add_arrays function"},
                                                add_arrays="\n" * 2_000_000 + "def add_arrays(a, b)\n    return a + b\n"),
        "class_with_syntax_error": attack(1, {"test_row_sums": "SyntaxError in your row_sums class, line 2: "
                                                               "expected ':'"}, row_sums=(
            "class row_sums:\n    def __new__(cls, x)\n        return x.sum(axis=1)\n")),
        "sys_exit_in_function": attack(2, {"test_add_arrays": "add_arrays raised SystemExit"},
                                       add_arrays="import sys\ndef add_arrays(a, b):\n    sys.exit(0)\n"),
        # files that are not the lesson's notebook
        "byte_order_mark": Attack(Sample(raw=b"\xef\xbb\xbf" + build_sample(course, LESSON, Sample(base="solution")),
                                         score=3)),
        "invalid_json": broken(b'{"cells": [', "is not valid JSON"),
        "empty_file": broken(b"", "is empty (0 bytes)", "test_row_sums"),
        "not_a_notebook": broken(b"[1, 2, 3]", "not a Jupyter notebook"),
        "binary_file": broken(bytes(range(256)) * 4, "not a text file"),
        "wrong_lesson": broken(json.dumps(WRONG_LESSON).encode(), "is it another lesson's notebook?"),
        "misnamed_file": broken(build_sample(course, LESSON, Sample(base="solution")),
                                "found: 00_fixture-Copy1.ipynb", filename="00_fixture-Copy1.ipynb"),
        "huge_file": broken(_notebook(course, _add_huge_output), "over the 20 MiB limit"),
        # locked cells and points come from the release
        "deleted_locked_cells": Attack(Sample(raw=_notebook(course, _delete_locked), score=3),
                                       output="add_arrays: visible test passed"),
        "edited_locked_cells": Attack(Sample(raw=_notebook(course, _edit_locked), score=1,
                                             messages={"test_row_sums": "wrong axis"}),
                                      output="add_arrays: visible test passed", not_output="tests skipped"),
        "inflated_points": Attack(Sample(raw=_notebook(course, _inflate_points), score=3)),
    }
