"""What every sandbox would otherwise redo at its start, done once by the grader, read-only to all.

- matplotlib's font list. Every sandbox starts with an empty /tmp, so matplotlib
  (MPLCONFIGDIR=/tmp/.matplotlib) scanned every font file and wrote fontlist-v*.json again on its
  first import in each submission of every lesson that plots (2, 4, 5, 6, 7). The grader builds
  that file once per machine and font set, in a sandbox of the same mounts and environment (so it
  lists exactly the fonts a sandbox sees), and each sandbox gets it bound read-only into its own
  fresh /tmp/.matplotlib (sandbox.command).
- the `convlab` package's bytecode. The sandbox runs Python with -B on a read-only checkout, so
  without __pycache__ beside the sources it compiled every convlab module it imported, in every
  submission. `compile_course_package` writes them once (the grader owns the checkout).

What the sandboxes then share: these read-only files, the same bytes for every submission, made
by the grader from files every sandbox can read anyway. Nothing a submission does reaches them
(read-only binds; the folder around the font list is the submission's own tmpfs) or the next
submission (autograder/tests/test_startup.py). The font list is rebuilt when matplotlib or any
font file changes (`key`); if it cannot be built, each sandbox builds its own as before.
"""
from __future__ import annotations

import compileall
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from autograder.grader.sandbox import _NAMESPACES, MPLCONFIGDIR, Mode, _interpreter, _mounts

# The folders matplotlib scans for fonts when fc-list cannot run (it cannot in the sandbox: no /etc/fonts)
FONT_FOLDERS = ("/usr/X11R6/lib/X11/fonts/TTF", "/usr/X11/lib/X11/fonts", "/usr/share/fonts",
                "/usr/local/share/fonts", "/usr/lib/openoffice/share/fonts/truetype")
_lock = threading.Lock()
_built: dict[str, Path | None] = {}


def key() -> str:
    """A hash of what the font list depends on: matplotlib's version and every font file's path,
    size and modification time (matplotlib's own and the system's)."""
    digest = hashlib.sha256(f"{sys.executable}\0{importlib.metadata.version('matplotlib')}\0".encode())
    mpl_data = Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data" / "fonts"
    for folder in (str(mpl_data), *FONT_FOLDERS):
        for top, dirs, files in sorted(os.walk(folder)):
            dirs.sort()
            for name in sorted(files):
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(top, name))
                    digest.update(f"{top}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _store() -> Path:
    """This user's folder of built font lists (not writable by anyone else: a sandbox only reads them)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convlab" / "matplotlib"
    base.mkdir(parents=True, exist_ok=True, mode=0o755)
    st = base.stat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise PermissionError(f"{base} is not this user's alone")
    return base


def _build(target: Path, mode: Mode) -> None:
    """Run matplotlib's font scan in a sandbox of the same mounts and environment as a submission's,
    with `target` as its MPLCONFIGDIR (the only writable bind), then make the list world-readable."""
    target.mkdir(mode=0o755)
    python = _interpreter()
    users = ["--unshare-user", "--disable-userns"] if mode.name == "userns" else []
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": MPLCONFIGDIR}
    argv = ["bwrap", "--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp", *_mounts(),
            "--bind", str(target), MPLCONFIGDIR, *users, *_NAMESPACES, "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv",
            *[a for k, v in env.items() for a in ("--setenv", k, v)],
            "--", python, "-I", "-B", "-c", "import matplotlib.font_manager"]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    lists = list(target.glob("fontlist-v*.json"))
    if len(lists) != 1:
        raise RuntimeError(f"matplotlib wrote {[p.name for p in target.iterdir()]}, not one font list")
    lists[0].chmod(0o644)


def prepare(mode: Mode) -> Path | None:
    """Once per grading process (the first call; the others wait for it): compile the course package
    and find or build the font list. Returns the font list file to bind read-only at
    MPLCONFIGDIR/<its name> in every sandbox, or None when it cannot be built (each sandbox then
    builds its own)."""
    with _lock:
        if mode.name not in _built:
            compile_course_package()
            _built[mode.name] = _find_or_build(mode)
        return _built[mode.name]


def _find_or_build(mode: Mode) -> Path | None:
    try:
        folder = _store() / key()
        if not folder.is_dir():
            scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
            try:
                _build(scratch / "list", mode)
                os.replace(scratch / "list", folder)   # atomic: another grader may build the same key
            except OSError:
                if not folder.is_dir():
                    raise
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        found = list(folder.glob("fontlist-v*.json"))
        return found[0] if len(found) == 1 else None
    except (OSError, subprocess.SubprocessError, RuntimeError, ImportError, ValueError):
        return None


def compile_course_package() -> None:
    """Write the bytecode of the `convlab` package beside its sources (what the sandbox's Python
    reads but, with -B on a read-only bind, never writes). Silently nothing where the checkout is
    not writable: the sandbox then compiles as before."""
    package = Path(importlib.util.find_spec("convlab").origin).parent
    with contextlib.suppress(OSError):
        compileall.compile_dir(package, quiet=2, workers=1)
