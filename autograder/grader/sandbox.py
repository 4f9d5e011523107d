"""One submission's sandbox: bubblewrap namespaces, an unprivileged identity, resource limits, and
the grader's end of the runner's report channel.

The student's code sees read-only: the system's /usr, the Python installation, the virtualenv,
the `convlab` package, its own cells (/job) and the probe inputs (/probes, filled one input at a
time after the cells ran); writable: a size-capped tmpfs /tmp. It runs in new pid, net, ipc, uts
and cgroup namespaces, with no capabilities and no_new_privs, under RLIMIT_AS/NPROC/FSIZE/NOFILE/CPU
set by prlimit. Two modes (`detect_mode`):

- "uid" (the grader runs as root): the sandbox drops to uid BASE_UID + slot with setpriv, a uid
  nothing else uses, so RLIMIT_NPROC counts that sandbox's processes only.
- "userns" (the grader runs as an ordinary user): bubblewrap without setuid creates an
  unprivileged user namespace (--unshare-user) and forbids nested ones (--disable-userns); the
  sandbox's processes are the grader's own uid outside it, so RLIMIT_NPROC is set inside the
  namespace, where the kernel counts that sandbox's processes only.

Killing the outer bwrap process ends the sandbox's pid namespace, so no process outlives it.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from autograder.grader.memcap import POLL, MemoryCap
from autograder.grader.wire import ChannelReader

BASE_UID = 60000
MAX_SLOTS = 1000                        # sandbox uids BASE_UID .. BASE_UID + MAX_SLOTS - 1
RUNNER = Path(__file__).with_name("runner.py")
MPLCONFIGDIR = "/tmp/.matplotlib"       # matplotlib's config and cache folder in the sandbox (startup.py)


@dataclass(frozen=True)
class Limits:
    startup_timeout: float = 60.0       # seconds from start until the runner is ready (no student code yet)
    grace: float = 2.0                  # after a soft timeout expires, seconds until the sandbox is killed
    memory: int = 3 << 30               # RLIMIT_AS of each process, bytes
    total_memory: int = 3 << 30         # resident bytes of all the sandbox's processes together (memcap.py)
    memory_cgroup: bool = True          # enforce total_memory with a cgroup where one can be made (else sampled)
    processes: int = 64                 # RLIMIT_NPROC of the sandbox uid (threads count too)
    file_size: int = 64 << 20           # RLIMIT_FSIZE, bytes
    open_files: int = 256               # RLIMIT_NOFILE
    scratch: int = 256 << 20            # size of the writable tmpfs /tmp, bytes
    channel: int = 64 << 20             # bytes of reports read from one sandbox run
    console: int = 16_000               # bytes kept of the sandbox's raw stdout/stderr
    attempts: int = 4                   # sandbox runs per submission (crashes and hangs restart it)


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox; the grader refuses to grade rather than run unsandboxed."""


@dataclass(frozen=True)
class Mode:
    """How sandboxes are isolated on this machine: "uid" (root: one uid per worker slot) or
    "userns" (an ordinary user: unprivileged user namespaces)."""
    name: str
    uid: int                            # the grader's own uid

    def describe(self, jobs: int | None = None) -> str:
        if self.name == "uid":
            uids = f"uids {BASE_UID}-{BASE_UID + jobs - 1}" if jobs and jobs > 1 else \
                f"uid {BASE_UID}" if jobs else f"uids {BASE_UID}+"
            return f"sandbox: bubblewrap, one unprivileged uid per worker ({uids}; the grader runs as root)"
        return (f"sandbox: bubblewrap in an unprivileged user namespace (the grader runs as uid {self.uid}, "
                "not root; see docs/grading.md for what differs from grading as root)")


_FIX = " The grader never runs student code unsandboxed."
_USERNS_SYSCTLS = {   # what commonly forbids unprivileged user namespaces, and the value that allows them
    "/proc/sys/kernel/unprivileged_userns_clone": ("kernel.unprivileged_userns_clone", "1"),
    "/proc/sys/user/max_user_namespaces": ("user.max_user_namespaces", None),
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": ("kernel.apparmor_restrict_unprivileged_userns", "0"),
}


def _userns_settings() -> str:
    """This kernel's settings that can forbid unprivileged user namespaces, those that do first."""
    found = []
    for path, (name, allowed) in _USERNS_SYSCTLS.items():
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        forbids = value == "0" if allowed is None else value != allowed
        found.append((not forbids, f"{name} = {value}" + (" (forbids them)" if forbids else "")))
    return "; ".join(text for _, text in sorted(found)) or "no userns sysctl found"


def _probe_userns(run=subprocess.run) -> str | None:
    """None if bubblewrap can build this module's unprivileged sandbox here, else bwrap's complaint."""
    argv = ["bwrap", "--unshare-user", "--disable-userns", *_NAMESPACES, "--ro-bind", "/usr", "/usr",
            *_system_links(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--die-with-parent",
            "--new-session", "--clearenv", "true"]
    try:
        proc = run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    return " ".join((proc.stderr or proc.stdout).split())[:500] or f"bwrap exited with code {proc.returncode}"


def detect_mode(euid: int | None = None, which=None, probe=None) -> Mode:
    """The sandbox mode this process can use, or SandboxUnavailable saying why there is none.
    (The arguments stand in for the real euid, shutil.which and the bwrap probe in tests.)"""
    euid = os.geteuid() if euid is None else euid
    which, probe = which or shutil.which, probe or _probe_userns
    tools = ("bwrap", "setpriv", "prlimit") if euid == 0 else ("bwrap", "prlimit")
    if missing := [tool for tool in tools if not which(tool)]:
        raise SandboxUnavailable(
            "cannot sandbox student code: " + "; ".join(f"`{tool}` is not installed" for tool in missing) +
            ". Run `sudo make system-deps` (installs bubblewrap with apt-get), then grade again." + _FIX)
    if euid == 0:
        return Mode("uid", 0)
    if (problem := probe()) is not None:
        raise SandboxUnavailable(
            f"cannot sandbox student code as uid {euid}: not root, and bubblewrap cannot create an unprivileged "
            f"user namespace here ({problem}; {_userns_settings()}). Grade as root (`sudo make autograde`), or "
            "allow unprivileged user namespaces (e.g. `sysctl kernel.apparmor_restrict_unprivileged_userns=0` "
            "on Ubuntu, `sysctl kernel.unprivileged_userns_clone=1` on older Debian)." + _FIX)
    return Mode("userns", euid)


def require_sandbox() -> Mode:
    return detect_mode()


_NAMESPACES = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]


def _system_links() -> list[str]:
    args = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _convlab() -> Path:
    """The folder of the convlab package this grader imports, where it really is (links resolved)."""
    return Path(importlib.util.find_spec("convlab").origin).resolve().parent


def _interpreter() -> str:
    """This Python at the resolved path of its folder, which _mounts binds: a checkout or a .venv that
    is a symbolic link is bound where the link points. The file itself stays a link (a venv's
    bin/python), so Python still finds the venv's pyvenv.cfg beside it."""
    return str(Path(sys.executable).parent.resolve() / Path(sys.executable).name)


def _mounts() -> list[str]:
    """bwrap arguments binding, read-only, what Python and the course's helper package need."""
    args = ["--ro-bind", "/usr", "/usr", *_system_links()]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    convlab = _convlab()
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


def _options_through_pipe(argv: list[str]) -> tuple[list[str], int]:
    """argv with bwrap's options (up to its "--") moved into a pipe it reads (--args FD): the sandbox's
    /proc/1/cmdline, bwrap's own, then shows no host paths or temporary folder names. Returns the new
    argv and the pipe's read end, to pass to the child and close after."""
    start = argv.index("bwrap") + 1
    end = argv.index("--", start)
    data = b"".join(arg.encode() + b"\0" for arg in argv[start:end])
    read_fd, write_fd = os.pipe()
    try:
        if len(data) >= 60_000:   # a pipe holds 64 KiB: the options are ~3 KiB, far from it
            raise ValueError(f"bwrap's options are {len(data)} bytes, too many for a pipe")
        os.write(write_fd, data)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return [*argv[:start], "--args", str(read_fd), *argv[end:]], read_fd


def command(channel_fd: int, job_dir: Path, probes_dir: Path, slot: int, skip: set[int],
            cell_timeout: float, cpu_seconds: int, limits: Limits, mode: Mode = Mode("uid", 0),
            status_fd: int | None = None, font_list: Path | None = None) -> list[str]:
    """The sandboxed runner's command line: prlimit -> bwrap -> setpriv -> python runner.py (mode
    "uid"), or prlimit -> bwrap --unshare-user -> prlimit --nproc -> python runner.py (mode "userns").
    bwrap reports the sandbox's pid namespace on status_fd (see Sandbox.kill). `font_list`
    (startup.prepare): matplotlib's font list, bound read-only into the sandbox's own MPLCONFIGDIR."""
    uid = BASE_UID + slot
    python = _interpreter()
    # CONVLAB_PATH (runner.py puts it first on sys.path; python -I ignores PYTHONPATH): the sandbox imports
    # the convlab this grader imports, bound alone in its parent folder, even where the venv's own
    # (editable) install of it points at another checkout
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "CONVLAB_PATH": str(_convlab().parent), "HOME": "/tmp",
           "USER": "student", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": MPLCONFIGDIR, "IPYTHONDIR": "/tmp/.ipython",
           "CONVLAB_FAST": "1", "CONVLAB_GRADING": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if mode.name == "uid":
        # RLIMIT_NPROC counts processes per uid: set outside, it counts this slot's uid only
        outer_nproc, user = [f"--nproc={limits.processes}"], [
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs"]
    else:
        # Here the sandbox's uid is the grader's own outside the namespace: set outside, the limit
        # would count every process of that user. Set inside the new user namespace, the kernel
        # counts this sandbox's processes only (and no process can raise a hard limit it was given:
        # that needs CAP_SYS_RESOURCE outside). bwrap drops every capability and sets no_new_privs.
        outer_nproc, user = [], ["prlimit", f"--nproc={limits.processes}", "--"]
    namespaces = ["--unshare-user", "--disable-userns", *_NAMESPACES] if mode.name == "userns" else _NAMESPACES
    status = ["--json-status-fd", str(status_fd)] if status_fd is not None else []
    fonts = [] if font_list is None else [   # a folder of the sandbox's own, holding the one read-only file
        "--perms", "1777", "--dir", MPLCONFIGDIR, "--ro-bind", str(font_list), f"{MPLCONFIGDIR}/{font_list.name}"]
    return [
        "prlimit", f"--as={limits.memory}", *outer_nproc, f"--fsize={limits.file_size}",
        f"--nofile={limits.open_files}", f"--cpu={cpu_seconds}", "--core=0", "--",
        # /tmp first: binds that follow land on top of it, so a checkout under /tmp stays visible
        "bwrap", "--perms", "1777", "--size", str(limits.scratch), "--tmpfs", "/tmp", *fonts, *_mounts(),
        "--ro-bind", str(job_dir), "/job", "--ro-bind", str(probes_dir), "/probes",
        *namespaces, *status, "--die-with-parent", "--new-session", "--hostname", "sandbox",
        "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", "--clearenv", *[a for k, v in env.items() for a in ("--setenv", k, v)],
        "--", *user,
        python, "-I", "-B", "/job/runner.py", "/job", "/probes", str(channel_fd),
        ",".join(map(str, sorted(skip))) or "-", f"{cell_timeout:g}",
    ]


@contextlib.contextmanager
def claimed_slots(count: int, mode: Mode = Mode("uid", 0)):
    """`count` worker slots no other grader on this machine holds (flock on a lock file per slot,
    released when this process ends): each sandbox uid serves one grader, one submission at a time.
    In mode "userns" every sandbox has a user namespace of its own, so there is nothing to claim."""
    if mode.name == "userns":
        yield list(range(count))
        return
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


def pid_namespace(pid: int | str) -> int | None:
    """The inode of `pid`'s pid namespace, None if it is gone (or a zombie) or not ours to see."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def is_zombie(pid: int) -> bool:
    """Whether `pid` has ended and waits to be reaped (or is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def processes_in(namespace: int, uid: int | None = None) -> list[int]:
    """Pids of `uid`'s live processes (default: this process's uid) in the pid namespace `namespace`.
    Zombies do not count: they run nothing, and the sandbox's pid 1, whose parent was killed, stays
    one until this machine's init reaps it."""
    uid = os.getuid() if uid is None else uid
    return [pid for pid in processes_of(uid) if pid_namespace(pid) == namespace and not is_zombie(pid)]


class Sandbox:
    """A running sandbox: `next_event(deadline)` yields the runner's reports, `request(k)` asks for
    probe k, `kill()` ends it (and every process in it). Use as a context manager."""

    def __init__(self, argv_for_fd, uid: int, limits: Limits, mode: Mode = Mode("uid", 0)):
        self.uid, self.mode, self.namespace, self.status_read = uid, mode, None, b""
        self.memory = MemoryCap.start(limits.total_memory, limits.memory_cgroup)
        read_fd, write_fd = os.pipe()
        # bwrap's status, written by bwrap itself (it closes the fd before the sandboxed command runs)
        self.status_fd, status_write = os.pipe() if mode.name == "userns" else (None, None)
        pass_fds = (write_fd,) if status_write is None else (write_fd, status_write)
        options_fd = None
        try:
            argv = argv_for_fd(write_fd) if status_write is None else argv_for_fd(write_fd, status_fd=status_write)
            argv, options_fd = _options_through_pipe(argv)
            self.proc = subprocess.Popen(self.memory.wrap(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, pass_fds=(*pass_fds, options_fd),
                                         start_new_session=True)
        except BaseException:
            self.memory.remove()
            raise
        finally:
            for fd in (write_fd, status_write, options_fd):
                if fd is not None:
                    os.close(fd)
        self.limits = limits
        self.selector = selectors.DefaultSelector()
        for fd in (read_fd, self.proc.stdout.fileno()):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        self.channel_fd, self.open_fds = read_fd, {read_fd, self.proc.stdout.fileno()}
        self.reader, self.events, self.received = ChannelReader(limits.channel), deque(), 0
        self.console, self.console_dropped = bytearray(), 0

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        self.memory.remove()
        self.selector.close()
        os.close(self.channel_fd)
        if self.status_fd is not None:
            os.close(self.status_fd)
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
        """End the sandbox and wait until none of its processes is left: in mode "uid" none of its
        uid, so that the next sandbox of this slot starts with the uid's process count (RLIMIT_NPROC)
        at zero; in mode "userns" none in its pid namespace."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        namespace = self._pid_namespace() if self.mode.name == "userns" else None
        left = (lambda: processes_in(namespace, self.mode.uid)) if namespace else \
            (lambda: processes_of(self.uid)) if self.mode.name == "uid" else (lambda: [])
        give_up = time.monotonic() + 10
        while left() and time.monotonic() < give_up:
            time.sleep(0.01)

    def _pid_namespace(self) -> int | None:
        """The sandbox's pid namespace as bwrap reported it ({"child-pid": ..., "pid-namespace": ...}).
        bwrap writes that line in several pieces, so what was read stays until the line is whole."""
        if self.namespace is not None:
            return self.namespace
        os.set_blocking(self.status_fd, False)
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.status_fd, 1 << 16):
                self.status_read += chunk
        first, newline, _ = self.status_read.partition(b"\n")
        if not newline:
            return None
        try:
            value = json.loads(first).get("pid-namespace")
        except (ValueError, AttributeError):
            return None
        self.namespace = value if type(value) is int else None
        return self.namespace

    def console_text(self) -> str:
        more = f"\n[{self.console_dropped} more bytes]" if self.console_dropped else ""
        return self.console.decode("utf-8", "replace") + more

    def _processes(self) -> list[int]:
        """The sandbox's live processes, for sampling their memory where no cgroup holds them."""
        if self.mode.name == "uid":
            return processes_of(self.uid)
        namespace = self._pid_namespace() if self.status_fd is not None else None
        return processes_in(namespace, self.mode.uid) if namespace else []

    def next_event(self, deadline: float, stop: threading.Event | None = None) -> dict | None:
        """The runner's next report; {"ev": "exit", "returncode": n} once the sandbox has ended;
        {"ev": "memory"} once it went over its memory limit (it is ended then; checked before every
        report, so no report made after that is taken); {"ev": "overflow"} / {"ev": "malformed"} if
        the channel breaks the protocol; {"ev": "stopped"} once `stop` is set; None at the deadline."""
        while True:
            if stop is not None and stop.is_set():
                return {"ev": "stopped"}
            if self.memory.over(self._processes):
                self.kill()
                return {"ev": "memory"}
            if self.events:
                return self.events.popleft()
            remaining = deadline - time.monotonic()
            if self.channel_fd not in self.open_fds:
                try:
                    returncode = self.proc.wait(min(max(remaining, 0), POLL))
                except subprocess.TimeoutExpired:
                    if remaining <= 0:
                        return None
                    continue
                return {"ev": "memory"} if self.memory.over(self._processes) else \
                    {"ev": "exit", "returncode": returncode}
            if remaining <= 0:
                return None
            for key, _ in self.selector.select(min(remaining, POLL)):
                self._read(key.fd)

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
        self.events.extend(self.reader.feed(chunk))
