"""One memory limit per sandbox: all of a submission's processes together, not each on its own.

RLIMIT_AS caps each process; a submission that starts many processes could still use that much
many times over. So every sandbox also has one total, enforced in one of two ways (`MemoryCap.start`):

- a memory cgroup of its own, where the grader may create one (root with cgroup v1's memory
  controller, or a cgroup v2 tree that delegates `memory`): the kernel keeps the sandbox's resident
  memory (tmpfs /tmp included) at the limit, and the grader sees its OOM kills;
- otherwise (an ordinary user without a delegated cgroup) the grader samples the resident memory of
  the sandbox's processes every POLL seconds and ends the sandbox once their sum is over the limit:
  the sum may then overshoot by what they allocate within one POLL (each process stays capped by
  RLIMIT_AS), and /tmp is bounded by its own tmpfs size instead.

Either way an over-limit sandbox is ended as a whole, so the grade is the same on both paths.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

POLL = 0.05                     # seconds between samples of the sandbox's memory
PREFIX = "convlab-sandbox-"     # cgroup names: PREFIX + <grader pid> + "-" + <n>
_PAGE = os.sysconf("SC_PAGE_SIZE")
_count = 0


def _own_memory_cgroup() -> tuple[Path, int] | None:
    """The folder of this process's memory cgroup and its version (1 or 2), when it can hold children."""
    mounts = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            before, _, after = line.partition(" - ")
            fields, (fstype, _, options) = before.split(), (after.split() + ["", "", ""])[:3]
            root, point = fields[3], Path(fields[4])   # the mount shows the hierarchy from `root` down
            if fstype == "cgroup" and "memory" in options.split(","):
                mounts[1] = (point, root)
            elif fstype == "cgroup2":
                mounts.setdefault(2, (point, root))
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        version = 1 if "memory" in controllers.split(",") else 2 if controllers == "" else None
        if version is None or version not in mounts:
            continue
        point, root = mounts[version]
        if not (path + "/").startswith(root.rstrip("/") + "/"):
            continue
        folder = point / path[len(root.rstrip("/")):].lstrip("/")
        if version == 2 and "memory" not in _read(folder / "cgroup.subtree_control").split():
            continue
        if os.access(folder, os.W_OK):
            return folder, version
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: int | str) -> None:
    path.write_text(f"{value}\n")


def resident(pids: list[int]) -> int:
    """Bytes resident in memory of the processes `pids` together (those gone count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return total


class MemoryCap:
    """One sandbox's memory limit: `wrap(argv)` starts the sandbox under it, `over(pids)` says whether
    it was exceeded (pids: the sandbox's processes, sampled when no cgroup enforces the limit)."""

    def __init__(self, limit: int, folder: Path | None = None, version: int | None = None):
        self.limit, self.folder, self.version = limit, folder, version
        self.next_sample, self.exceeded = 0.0, False

    @classmethod
    def start(cls, limit: int, use_cgroup: bool = True) -> MemoryCap:
        """A cgroup of its own when this process may create one (and `use_cgroup`), else sampling."""
        global _count
        found = _own_memory_cgroup() if use_cgroup else None
        if found is None:
            return cls(limit)
        parent, version = found
        _count += 1
        folder = parent / f"{PREFIX}{os.getpid()}-{_count}"
        try:
            folder.mkdir()
            if version == 1:
                _write(folder / "memory.limit_in_bytes", limit)
                if (folder / "memory.memsw.limit_in_bytes").exists():   # swap counts too
                    _write(folder / "memory.memsw.limit_in_bytes", limit)
            else:
                _write(folder / "memory.max", limit)
                if (folder / "memory.swap.max").exists():
                    _write(folder / "memory.swap.max", 0)
        except OSError:
            with contextlib.suppress(OSError):
                folder.rmdir()
            return cls(limit)
        return cls(limit, folder, version)

    @property
    def how(self) -> str:
        return f"memory cgroup v{self.version}" if self.folder else f"sampled every {POLL:g} s"

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside this cgroup: a shell puts itself into it, then becomes argv (so every process
        the sandbox ever starts is in it from the first instruction on)."""
        if self.folder is None:
            return argv
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.folder / "cgroup.procs"), *argv]

    def oom_kills(self) -> int:
        """How many of the sandbox's processes the kernel killed at the cgroup's limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        found = re.search(r"^oom_kill (\d+)", _read(self.folder / name), re.M) if self.folder else None
        return int(found.group(1)) if found else 0

    def over(self, pids=lambda: []) -> bool:
        """Whether the sandbox went over its limit; without a cgroup, samples `pids()` at most every POLL."""
        if not self.exceeded:
            if self.folder is not None:
                self.exceeded = self.oom_kills() > 0
            elif time.monotonic() >= self.next_sample:
                self.next_sample = time.monotonic() + POLL
                self.exceeded = resident(pids()) > self.limit
        return self.exceeded

    def remove(self) -> None:
        """Delete the cgroup once the sandbox's processes are gone (the kernel refuses while any is left)."""
        if self.folder is None:
            return
        for _ in range(200):
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


def remove_leftovers(alive, log) -> list[Path]:
    """Remove the empty sandbox cgroups of grading runs whose process is gone (`alive(pid)` says)."""
    found = _own_memory_cgroup()
    removed = []
    for folder in sorted(found[0].glob(PREFIX + "*")) if found else []:
        pid = folder.name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(OSError):
                folder.rmdir()
                removed.append(folder)
    if removed:
        log(f"removed {len(removed)} memory cgroups left by interrupted grading runs")
    return removed
