"""A Jupyter server started by a test, on 127.0.0.1 with a token, stopped by it (its whole process group)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterServer:
    """The port and token options are appended to `argv`, or passed as LAB_ARGS= when `argv` is a make
    command (make lab, make lab-instructor)."""

    token = "convlab-test-token"

    def __init__(self, argv: list[str], cwd: Path, env: dict, ready: str = "/api/status", timeout: float = 120,
                 via_make: bool = False):
        self.port = free_port()
        options = ["--no-browser", "--ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.token={self.token}"]
        self.proc = subprocess.Popen([*argv, "LAB_ARGS=" + " ".join(options)] if via_make else [*argv, *options],
                                     cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(ready)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"the Jupyter server did not start: {self.proc.stderr.read()[-3000:]}")
                time.sleep(0.5)

    def call(self, method: str, path: str, body: dict | None = None, raw: bool = False):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read().decode()
        return data if raw else json.loads(data)

    def get(self, path: str, raw: bool = False):
        return self.call("GET", path, raw=raw)

    def status(self, path: str) -> int:
        try:
            self.get(path, raw=True)
            return 200
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
