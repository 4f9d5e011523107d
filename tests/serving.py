"""A server the browser tests start and stop themselves: on 127.0.0.1, in its own process group,
its output in a log file that any failure to start quotes."""
from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def serving(command: list[str], ready_url: str, log_path: Path, name: str, **popen):
    """Run `command` until the with-block ends; enter once `ready_url` answers (at most 60 s)."""
    log = open(log_path, "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(ready_url, timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n" + log_path.read_text())
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{name} did not start in 60 s:\n" + log_path.read_text())
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
        log.close()
