"""The report channel's raw frames (wire.ChannelReader, runner.Runner.emit): what the runner writes
is read back intact however the pipe splits it, and a forged frame is a message, not an object."""
from __future__ import annotations

import io
import json
import os
import random
import tempfile

import numpy as np
import pytest

from autograder.grader.runner import Runner, encode
from autograder.grader.spec import Raised
from autograder.grader.wire import ChannelReader, decode_result

CAP = 64 << 20


def _emitted(event: dict, frames: list) -> bytes:
    """The bytes Runner.emit writes for `event` and its frames."""
    runner = object.__new__(Runner)
    with tempfile.TemporaryFile() as channel:
        runner.channel = channel.fileno()
        runner.emit(event, frames)
        channel.seek(0)
        return channel.read()


def _read(data: bytes, seed: int = 0) -> list[dict]:
    """ChannelReader fed `data` in random pieces, from 1 byte to 200 kB."""
    reader, events, rng, start = ChannelReader(CAP), [], random.Random(seed), 0
    while start < len(data):
        size = rng.choice([1, 7, 4096, 65536, 200_000])
        events += reader.feed(data[start:start + size])
        start += size
    return events


def test_a_result_with_arrays_crosses_as_frames_intact_however_the_pipe_splits_it():
    newlines = np.full((300, 300), 10, dtype=np.uint8)      # bytes that look like line ends
    value = {"y": np.arange(12, dtype=np.float32).reshape(3, 4), "n": np.int64(7), "nl": newlines,
             "t": (np.asfortranarray(np.eye(3)), [np.float16(0.5), "s", None])}
    frames = []
    data = (_emitted({"ev": "result", "k": 3, "value": encode(value, frames=frames)}, frames)
            + _emitted({"ev": "cells_done"}, []))
    assert len(frames) == 5 and b"base64" not in data
    for seed in range(5):
        first, second = _read(data, seed)
        back = decode_result(first)
        assert first["k"] == 3 and second == {"ev": "cells_done"}
        assert back["y"].dtype == np.float32 and np.array_equal(back["y"], value["y"]) and back["n"] == 7
        assert np.array_equal(back["nl"], newlines) and np.array_equal(back["t"][0], np.eye(3))
        assert back["t"][1] == [0.5, "s", None] and type(back["t"]) is tuple and type(back["n"]) is np.int64


def test_an_event_waits_for_all_of_its_frames():
    frames = []
    data = _emitted({"ev": "result", "k": 0, "value": encode(np.zeros(1000), frames=frames)}, frames)
    reader = ChannelReader(CAP)
    assert reader.feed(data[:-1]) == []
    assert len(reader.feed(data[-1:])) == 1


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("value,frames,problem", [
    ([{"__ndarray__": 0}, {"__ndarray__": 0}], [_npy(np.zeros(4))], "an array frame used twice (frame 0)"),
    ({"__ndarray__": 1}, [_npy(np.zeros(4))], "in frame 1, which the report does not have"),
    ({"__ndarray__": -1}, [_npy(np.zeros(4))], "in frame -1, which the report does not have"),
    ({"__ndarray__": 0}, [_npy(np.zeros(4))[:-8]], "does not match its shape"),
    ({"__ndarray__": 0}, [b"\x93NUMPY\x01\x00" + (20_000).to_bytes(2, "little")], "a .npy header of 20,000 bytes"),
    ({"__ndarray__": 0}, [b"not an array"], "without a .npy header"),
    ({"__ndarray__": 0}, [_npy(np.array(["a"]))], "dtype <U1"),
])
def test_a_forged_frame_becomes_a_message(value, frames, problem):
    data = (json.dumps({"ev": "result", "k": 0, "value": value, "frames": [len(f) for f in frames]}).encode()
            + b"\n" + b"".join(frames))
    (event,) = _read(data)
    result = decode_result(event)
    assert isinstance(result, Raised) and result.type == "Unsupported" and problem in result.message, result


@pytest.mark.parametrize("frames,kind", [([-1], "malformed"), ([1.5], "malformed"), ("12", "malformed"),
                                         ([1] * 100_001, "malformed"), ([CAP // 2, CAP // 2 + 1], "overflow")])
def test_an_unreadable_frame_list_is_a_malformed_report_and_an_oversized_one_an_overflow(frames, kind):
    data = json.dumps({"ev": "result", "k": 0, "value": 0, "frames": frames}).encode() + b"\n"
    assert _read(data) == [{"ev": kind}] if kind == "overflow" else _read(data)[0]["ev"] == kind


def test_frames_named_in_the_json_itself_are_not_frames():
    """Only ChannelReader attaches frames: a value naming a frame of a line without any is refused."""
    assert "which the report does not have" in decode_result({"value": {"__ndarray__": 0}, "frames": [8]}).message


def test_a_long_line_in_many_pieces_is_scanned_once():
    """Linear, not quadratic: 8 MB of one line in 1-kB pieces is read in well under a second of work."""
    line = json.dumps({"ev": "cell_done", "i": 0, "out": "x" * (8 << 20)}).encode() + b"\n"
    reader, events = ChannelReader(CAP), []
    started = os.times()
    for start in range(0, len(line), 1024):
        events += reader.feed(line[start:start + 1024])
    assert len(events) == 1 and len(events[0]["out"]) == 8 << 20
    assert os.times().user - started.user < 5   # quadratic rescanning would take minutes
