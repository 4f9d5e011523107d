"""One submission's sandbox: bubblewrap namespaces, an unprivileged uid, resource limits, and the
grader's end of the runner's report channel.

The student's code sees read-only: the system's /usr, the Python installation, the virtualenv,
the `convlab` package, its own cells (/job) and the probe inputs (/probes); writable: a size-capped
tmpfs /tmp. It runs as uid BASE_UID + slot (setpriv, no capabilities, no_new_privs) in new pid,
net, ipc, uts and cgroup namespaces, under RLIMIT_AS/NPROC/FSIZE/NOFILE/CPU set by prlimit.
Killing the outer bwrap process ends the sandbox's pid namespace, so no process outlives it.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from autograder.grader.wire import Malformed, parse_event

BASE_UID = 60000
MAX_SLOTS = 1000                        # sandbox uids BASE_UID .. BASE_UID + MAX_SLOTS - 1
RUNNER = Path(__file__).with_name("runner.py")


@dataclass(frozen=True)
class Limits:
    startup_timeout: float = 60.0       # seconds from start until the runner is ready (no student code yet)
    grace: float = 2.0                  # after a soft timeout expires, seconds until the sandbox is killed
    memory: int = 3 << 30               # RLIMIT_AS, bytes
    processes: int = 64                 # RLIMIT_NPROC of the sandbox uid (threads count too)
    file_size: int = 64 << 20           # RLIMIT_FSIZE, bytes
    open_files: int = 256               # RLIMIT_NOFILE
    scratch: int = 256 << 20            # size of the writable tmpfs /tmp, bytes
    channel: int = 64 << 20             # bytes of reports read from one sandbox run
    console: int = 16_000               # bytes kept of the sandbox's raw stdout/stderr
    attempts: int = 4                   # sandbox runs per submission (crashes and hangs restart it)


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox; the grader refuses to grade rather than run unsandboxed."""


def require_sandbox() -> None:
    problems = [f"`{tool}` is not installed" for tool in ("bwrap", "setpriv", "prlimit") if not shutil.which(tool)]
    if os.geteuid() != 0:
        problems.append("the grader must run as root (it drops each sandbox to its own unprivileged uid)")
    if problems:
        raise SandboxUnavailable("cannot sandbox student code: " + "; ".join(problems) +
                                 ". Run `make system-deps` (installs bubblewrap) and grade as root; "
                                 "the grader never runs student code unsandboxed.")


def _mounts() -> list[str]:
    """bwrap arguments binding, read-only, what Python and the course's helper package need."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    convlab = Path(importlib.util.find_spec("convlab").origin).parent
    made = {"/", "/usr", "/tmp"}
    for path in dict.fromkeys(str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix, convlab)):
        if path.startswith("/usr/"):
            continue
        for parent in reversed(Path(path).parents):   # bwrap would create missing parents 0700
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", path, path]
        made.add(path)
    return args


def command(channel_fd: int, job_dir: Path, probes_dir: Path, slot: int, skip: set[int],
            cell_timeout: float, cpu_seconds: int, limits: Limits) -> list[str]:
    """The sandboxed runner's command line: prlimit -> bwrap -> setpriv -> python runner.py."""
    uid = BASE_UID + slot
    python = sys.executable
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": "/tmp", "USER": "student", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.matplotlib", "IPYTHONDIR": "/tmp/.ipython",
           "CONVLAB_FAST": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return [
        "prlimit", f"--as={limits.memory}", f"--nproc={limits.processes}", f"--fsize={limits.file_size}",
        f"--nofile={limits.open_files}", f"--cpu={cpu_seconds}", "--core=0", "--",
        # /tmp first: binds that follow land on top of it, so a checkout under /tmp stays visible
        "bwrap", "--perms", "1777", "--size", str(limits.scratch), "--tmpfs", "/tmp", *_mounts(),
        "--ro-bind", str(job_dir), "/job", "--ro-bind", str(probes_dir), "/probes",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--hostname", "sandbox",
        "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv", *[a for k, v in env.items() for a in ("--setenv", k, v)],
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--no-new-privs",
        python, "-I", "-B", "/job/runner.py", "/job", "/probes", str(channel_fd),
        ",".join(map(str, sorted(skip))) or "-", f"{cell_timeout:g}",
    ]


@contextlib.contextmanager
def claimed_slots(count: int):
    """`count` worker slots no other grader on this machine holds (flock on a lock file per slot,
    released when this process ends): each sandbox uid serves one grader, one submission at a time."""
    folder = Path(tempfile.gettempdir()) / "convlab-grader-slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    held: dict[int, int] = {}
    try:
        for slot in range(MAX_SLOTS):
            if len(held) == count:
                break
            fd = os.open(folder / f"{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held[slot] = fd
            except BlockingIOError:
                os.close(fd)
        if len(held) < count:
            raise SandboxUnavailable(f"only {len(held)} of {count} sandbox slots are free: other graders are running")
        yield list(held)
    finally:
        for fd in held.values():
            os.close(fd)


def processes_of(uid: int) -> list[int]:
    """Pids of the processes running as `uid` (the pid namespace hides none of them from the grader)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except FileNotFoundError:
                pass
    return pids


class Sandbox:
    """A running sandbox: `next_event(deadline)` yields the runner's reports, `request(k)` asks for
    probe k, `kill()` ends it (and every process in it). Use as a context manager."""

    def __init__(self, argv_for_fd, uid: int, limits: Limits):
        self.uid = uid
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(argv_for_fd(write_fd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, pass_fds=(write_fd,), start_new_session=True)
        finally:
            os.close(write_fd)
        self.limits = limits
        self.selector = selectors.DefaultSelector()
        for fd in (read_fd, self.proc.stdout.fileno()):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        self.channel_fd, self.open_fds = read_fd, {read_fd, self.proc.stdout.fileno()}
        self.pending, self.events, self.received = bytearray(), deque(), 0
        self.console, self.console_dropped = bytearray(), 0

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        self.selector.close()
        os.close(self.channel_fd)
        self.proc.stdout.close()
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def request(self, k: int) -> None:
        try:
            self.proc.stdin.write(f"{k}\n".encode())
            self.proc.stdin.flush()
        except OSError:   # the runner is gone or closed stdin: its exit shows up as an event
            pass

    def kill(self) -> None:
        """End the sandbox and wait until none of its processes is left, so that the next sandbox of
        this slot starts with its uid's process count (RLIMIT_NPROC) at zero."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        give_up = time.monotonic() + 10
        while processes_of(self.uid) and time.monotonic() < give_up:
            time.sleep(0.01)

    def console_text(self) -> str:
        more = f"\n[{self.console_dropped} more bytes]" if self.console_dropped else ""
        return self.console.decode("utf-8", "replace") + more

    def next_event(self, deadline: float) -> dict | None:
        """The runner's next report; {"ev": "exit", "returncode": n} once the sandbox has ended;
        {"ev": "overflow"} / {"ev": "malformed"} if the channel breaks the protocol; None at the deadline."""
        while not self.events:
            remaining = deadline - time.monotonic()
            if self.channel_fd not in self.open_fds:
                try:
                    return {"ev": "exit", "returncode": self.proc.wait(max(remaining, 0))}
                except subprocess.TimeoutExpired:
                    return None
            if remaining <= 0:
                return None
            for key, _ in self.selector.select(remaining):
                self._read(key.fd)
        return self.events.popleft()

    def _read(self, fd: int) -> None:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            self.selector.unregister(fd)
            self.open_fds.discard(fd)
            return
        if fd != self.channel_fd:
            keep = max(self.limits.console - len(self.console), 0)
            self.console += chunk[:keep]
            self.console_dropped += len(chunk) - len(chunk[:keep])
            return
        self.received += len(chunk)
        if self.received > self.limits.channel:
            self.kill()
            self.events.append({"ev": "overflow"})
            return
        if b"\n" not in chunk:   # only split when a line ends: long lines arrive in many chunks
            self.pending += chunk
            return
        *lines, rest = (self.pending + chunk).split(b"\n")
        self.pending = bytearray(rest)
        for line in lines:
            try:
                self.events.append(parse_event(bytes(line)))
            except Malformed as exc:
                self.events.append({"ev": "malformed", "message": str(exc)})
