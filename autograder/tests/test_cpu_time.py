"""Time limits count the submission's own CPU time (other work on the machine cannot make it time
out), with a wall-clock bound of WALL_FACTOR times the limit on top for code that waits."""
from __future__ import annotations

import time

import pytest

from autograder.grader.runner import WALL_FACTOR, Timeout, alarm


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_limit_is_cpu_time_so_waiting_does_not_use_it_up():
    alarm(0.3)
    try:
        time.sleep(0.5)                      # 0.5 s of wall clock, almost no CPU time: no timeout
    finally:
        alarm(0)


def test_cpu_time_past_the_limit_times_out():
    started, wall = time.process_time(), time.monotonic()
    with pytest.raises(Timeout):
        alarm(0.3, "0.3 s")
        try:
            _busy(5)
        finally:
            alarm(0)
    cpu, wall = time.process_time() - started, time.monotonic() - wall
    # at 0.3 s of CPU time, or at the wall-clock bound on a machine so busy (more than WALL_FACTOR
    # runnable processes per core) that this process got less than that in WALL_FACTOR x 0.3 s
    assert 0.25 < cpu < 1.5 or (cpu <= 0.3 and WALL_FACTOR * 0.3 - 0.05 < wall < 2), (cpu, wall)


def test_waiting_past_the_wall_clock_bound_times_out():
    started = time.monotonic()
    with pytest.raises(Timeout):
        alarm(0.2)
        try:
            time.sleep(5)
        finally:
            alarm(0)
    assert WALL_FACTOR * 0.2 - 0.05 < time.monotonic() - started < 2
