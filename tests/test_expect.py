"""convlab.expect: the one-sentence messages the notebooks' visible tests give."""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest

import convlab
from convlab.expect import expect_close, expect_dtype, expect_fast, expect_implemented
from convlab.speed import SPEED_SECONDS, expect_speed_rule


class Layer:
    def forward(self, x):
        raise NotImplementedError()


def probe(x):                       # a locked wrapper around the student's class, as in lesson 04
    return Layer().forward(x)


def broadcast_bug(x):
    skip = x[:, :3]
    return x + skip                 # shapes (2, 5) and (2, 3)


def test_a_stub_is_named_by_the_function_that_raises_not_the_wrapper():
    with pytest.raises(AssertionError) as info:
        expect_implemented(probe, np.zeros(2))
    assert str(info.value).startswith("Layer.forward is not implemented yet: replace `raise NotImplementedError()`")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_error_in_student_code_names_the_function_line_and_source():
    with pytest.raises(AssertionError) as info:
        expect_implemented(broadcast_bug, np.zeros((2, 5)))
    message = str(info.value)
    assert message.startswith("broadcast_bug raised ValueError: operands could not be broadcast together")
    assert "(in broadcast_bug, line " in message and "`return x + skip" in message


def test_an_error_raised_inside_numpy_points_at_the_students_line():
    def pads_wrong(x):
        return np.pad(x, ((1, 1),) * 3)      # x is 2-D

    with pytest.raises(AssertionError) as info:
        expect_implemented(pads_wrong, np.zeros((2, 2)))
    assert "(in test_an_error_raised_inside_numpy_points_at_the_students_line.<locals>.pads_wrong" in str(info.value)
    assert "`return np.pad(x, ((1, 1),) * 3)" in str(info.value)


def test_the_students_own_assertion_and_a_correct_call_pass_through():
    def asserts(x):
        assert x > 0, "x must be positive"

    with pytest.raises(AssertionError, match="^x must be positive"):
        expect_implemented(asserts, -1)
    assert expect_implemented(np.add, 1, 2) == 3


def test_expect_close_names_the_worst_entry_and_the_hint():
    with pytest.raises(AssertionError, match=r"y is wrong at index \(1,\): got 5, expected 2, off by 3 where rounding "
                                             r"explains at most .* \(1 of 2 entries off by more than rounding explains\): "
                                             r"check the stride"):
        expect_close(np.array([1.0, 5.0]), np.array([1.0, 2.0]), "y", hint="check the stride")


def test_expect_dtype_by_kind_or_exact_dtype():
    expect_dtype(np.array([1, 2]), "iu")
    expect_dtype(np.zeros(2, np.float32), np.float32)
    with pytest.raises(AssertionError, match=r"^keep has dtype float64, expected an integer dtype: use dtype=int$"):
        expect_dtype(np.array([]), "iu", "keep", hint="use dtype=int")
    with pytest.raises(AssertionError, match=r"^hits should be a numpy array, got list"):
        expect_dtype([True], "b", "hits")
    with pytest.raises(AssertionError, match=r"^y has dtype float64, expected float32"):
        expect_dtype(np.zeros(2), np.float32, "y")


def test_every_exported_name_exists():
    import convlab.expect as expect
    assert [name for name in expect.__all__ if not hasattr(expect, name)] == []


# ---- expect_fast: the speed rule's visible test (convlab.speed) ----------------------------------
def spin(cpu_seconds: float) -> str:
    """Python-level work for `cpu_seconds` of CPU time, like a loop over pixels; swallows Exception."""
    started = time.process_time()
    while time.process_time() - started < cpu_seconds:
        try:
            sum(range(1000))
        except Exception:           # a student's catch-all must not hide the limit
            pass
    return "done"


def test_a_fast_call_passes_and_returns_its_result():
    assert expect_fast(spin, 0.01, name="spin", seconds=1.0) == "done"


def test_a_timed_call_runs_on_one_blas_thread_as_in_the_grader_and_the_threads_come_back():
    # CPU time counts every thread, and idle OpenBLAS threads spin: with the laptop's default threads
    # vectorized code could go over the limit only here, never in the grader's one-thread sandbox.
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})

    with threadpool_limits(limits=2, user_api="blas"):
        assert expect_fast(blas_threads, name="threads", seconds=5.0) == [1]
        assert blas_threads() == [2]


def test_a_slow_call_is_stopped_at_the_limit_not_waited_for():
    started = time.process_time()
    with pytest.raises(AssertionError, match=r"spin used more than 0.2 s of CPU time, the limit: vectorize"):
        expect_fast(spin, 5.0, name="spin", seconds=0.2, hint="vectorize")
    assert time.process_time() - started < 1.0
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_the_speed_rule_stops_a_slow_call_at_its_limit_outside_the_grader(monkeypatch):
    monkeypatch.setattr(convlab, "GRADING", False)
    started = time.process_time()
    with pytest.raises(AssertionError, match=f"spin used more than {SPEED_SECONDS:g} s of CPU time, the limit: loops"):
        expect_speed_rule(spin, 30.0, name="spin", hint="loops")
    assert time.process_time() - started < SPEED_SECONDS + 1


def test_the_speed_rule_is_left_to_the_hidden_check_when_graded(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(convlab, "GRADING", True)
    expect_speed_rule(lambda *args, **kwargs: calls.append((args, kwargs)), 1, name="forward", hint="loops", pad=1)
    assert calls == []
    assert capsys.readouterr().out.startswith(f"forward: not timed in this cell when graded; the hidden speed check "
                                              f"times the same problem (new random arrays) against the same "
                                              f"{SPEED_SECONDS:g} s limit")


def test_an_outer_cpu_alarm_keeps_its_place():
    fired = []
    previous = signal.signal(signal.SIGPROF, lambda signum, frame: fired.append(time.process_time()))
    try:
        signal.setitimer(signal.ITIMER_PROF, 0.3)            # sooner than the speed limit: it stays the outer one's
        with pytest.raises(AssertionError, match="more than 0.5 s"):
            expect_fast(spin, 1.0, name="spin", seconds=0.5)
        assert fired, "the outer alarm did not fire"
        signal.setitimer(signal.ITIMER_PROF, 5.0)            # later than the limit: restored, less what was used
        expect_fast(spin, 0.2, name="spin", seconds=1.0)
        left = signal.getitimer(signal.ITIMER_PROF)[0]
        assert 4.0 < left < 4.85, left
        assert signal.getsignal(signal.SIGPROF) is not None and len(fired) == 1
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
