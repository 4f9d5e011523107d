"""Data across the sandbox boundary: what the grader sends in, and the hardened decoding of what comes out.

Both directions use the format of `runner.encode`: JSON, with tuples/dicts marked and arrays and
numpy scalars as .npy. Going in (the grader's own data), the .npy is base64 inside the JSON. Coming
out, a result's arrays travel as raw frames after its JSON line (`ChannelReader`), so an 8 MB answer
costs no base64 and no JSON scan of 11 MB; base64 is still accepted. Everything that comes out is
untrusted: `decode_result` accepts only that format, parses .npy headers itself (dtype numbers only,
size consistent with the bytes, no pickle), uses each frame at most once, limits nesting, and turns
anything else into a `Raised` saying what was wrong. Nothing is ever unpickled.
"""
from __future__ import annotations

import ast
import base64
import binascii
import json
import math
from typing import Any

import numpy as np

from autograder.grader.runner import MAX_DEPTH, MAX_VALUES, OUTPUT_CAP, encode
from autograder.grader.spec import Raised

__all__ = ["encode_request", "decode_result", "parse_event", "ChannelReader", "Malformed"]

_MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000   # numpy's own limit for .npy headers (np.load's max_header_size): a real one is ~100 bytes
# What parsing a report can cost is set by its containers and numbers, not its bytes: 64 MiB of "[],"
# would be ~20 million objects, gigabytes. The runner sends at most MAX_VALUES values (a dict item
# costs 4 of the characters counted below, a list item 1) and at most 2 x OUTPUT_CAP characters of
# text, any of which may be one of them (base64 has none): a line with more is not the runner's.
MAX_STRUCTURE = 4 * MAX_VALUES + 4 * OUTPUT_CAP


class Malformed(ValueError):
    """What came out of the sandbox is not in the agreed format."""


def encode_request(func: str, args: tuple, kwargs: dict, timeout: float) -> str:
    """One probe call as the JSON text the runner reads."""
    return json.dumps({"func": func, "args": encode(tuple(args)), "kwargs": encode(dict(kwargs)),
                       "timeout": timeout})


def parse_event(line: bytes) -> dict:
    """One line of the runner's channel -> dict with a str 'ev'; Malformed otherwise. What parsing it
    would cost is counted first, in linear time (MAX_STRUCTURE)."""
    if sum(map(line.count, (b",", b"[", b"{", b"."))) > MAX_STRUCTURE:
        raise Malformed(f"a report with more than {MAX_VALUES:,} values from the sandbox")
    try:
        event = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"unreadable report from the sandbox ({type(exc).__name__})") from None
    if not isinstance(event, dict) or not isinstance(event.get("ev"), str):
        raise Malformed("unexpected report from the sandbox")
    return event


class ChannelReader:
    """The runner's channel, fed chunk by chunk (`feed`): JSON lines (`parse_event`), where a line
    with "frames": [n0, n1, ...] is followed by that many raw bytes, which become the event's
    "frames" (a list of memoryviews) before it is handed on. A line that breaks this becomes
    {"ev": "malformed", "message": ...}; one that declares more than `cap` bytes, {"ev": "overflow"}.
    Linear in what it is fed, however the chunks fall."""

    def __init__(self, cap: int):
        self.cap = cap                  # no frames beyond what the whole channel may carry
        self.buffer, self.scanned = bytearray(), 0
        self.waiting: tuple[dict, list[int], int] | None = None   # event, frame sizes, their sum

    def feed(self, chunk: bytes) -> list[dict]:
        self.buffer += chunk
        events = []
        while True:
            if self.waiting is not None:
                event, lengths, need = self.waiting
                if len(self.buffer) < need:
                    return events
                data, start = memoryview(self.buffer[:need]), 0   # the slice is the one copy
                del self.buffer[:need]
                event["frames"] = []
                for n in lengths:
                    event["frames"].append(data[start:start + n])
                    start += n
                events.append(event)
                self.waiting = None
                continue
            end = self.buffer.find(b"\n", self.scanned)
            if end < 0:
                self.scanned = len(self.buffer)   # a long line: never scan the same bytes twice
                return events
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 1]
            self.scanned = 0
            try:
                event = parse_event(line)
            except Malformed as exc:
                events.append({"ev": "malformed", "message": str(exc)})
                continue
            if "frames" not in event:
                events.append(event)
                continue
            lengths = event["frames"]
            if not (type(lengths) is list and len(lengths) <= MAX_VALUES and
                    all(type(n) is int and n >= 0 for n in lengths)):
                events.append({"ev": "malformed", "message": "a report with unreadable frames"})
            elif (total := sum(lengths)) > self.cap:   # as if the bytes had been sent: more than the channel carries
                events.append({"ev": "overflow"})
            else:
                self.waiting = (event, lengths, total)


def decode_result(event: dict) -> Any:
    """A runner 'result' event -> the student's value, or Raised (what the call raised, or why the
    value could not be read)."""
    raised = event.get("raised")
    if isinstance(raised, dict):
        return Raised(str(raised.get("type", "Error"))[:100], str(raised.get("message", ""))[:2000])
    frames = event.get("frames")   # set by ChannelReader, never by the JSON itself
    frames = frames if type(frames) is list and all(type(f) is memoryview for f in frames) else []
    try:
        return _decode(event.get("value"), 0, frames, set())
    except Malformed as exc:
        return Raised("Unsupported", str(exc))


def _decode(data: Any, depth: int, frames: list[memoryview], used: set[int]) -> Any:
    if depth > MAX_DEPTH:
        raise Malformed(f"a structure nested more than {MAX_DEPTH} levels deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_decode(item, depth + 1, frames, used) for item in data]
    if type(data) is dict and len(data) == 1:
        (key, inner), = data.items()
        if key == "__tuple__" and type(inner) is list:
            return tuple(_decode(item, depth + 1, frames, used) for item in inner)
        if key == "__dict__" and type(inner) is list and all(
                type(pair) is list and len(pair) == 2 and type(pair[0]) is str for pair in inner):
            return {name: _decode(item, depth + 1, frames, used) for name, item in inner}
        if key in ("__ndarray__", "__scalar__") and type(inner) in (str, int):
            array = _load_npy(_base64(inner) if type(inner) is str else _frame(inner, frames, used))
            return array if key == "__ndarray__" else array[()]
    raise Malformed("data in an unknown format")


def _frame(index: int, frames: list[memoryview], used: set[int]) -> memoryview:
    """Frame `index`, once: a frame named twice would let one 64 MiB of bytes become many arrays."""
    if not 0 <= index < len(frames):
        raise Malformed(f"an array in frame {index}, which the report does not have")
    if index in used:
        raise Malformed(f"an array frame used twice (frame {index})")
    used.add(index)
    return frames[index]


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("an array that is not valid base64") from None


def _load_npy(raw: bytes | memoryview) -> np.ndarray:
    if bytes(raw[:6]) != _MAGIC or len(raw) < 10:
        raise Malformed("an array without a .npy header")
    major = raw[6]
    header_len, start = (int.from_bytes(raw[8:10], "little"), 10) if major == 1 else \
        (int.from_bytes(raw[8:12], "little"), 12)
    if header_len > MAX_HEADER:       # literal_eval of a long header would take the grader gigabytes
        raise Malformed(f"an array with a .npy header of {header_len:,} bytes (at most {MAX_HEADER:,})")
    try:
        header = ast.literal_eval(bytes(raw[start:start + header_len]).decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(int(n) for n in header["shape"])
        fortran = bool(header["fortran_order"])
    except Exception:  # noqa: BLE001 - any malformed header is reported, not raised
        raise Malformed("an array with an unreadable .npy header") from None
    if dtype.hasobject or dtype.kind not in "biufc" or dtype.fields is not None or any(n < 0 for n in shape):
        raise Malformed(f"an array of dtype {dtype}")
    data = raw[start + header_len:]
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise Malformed("an array whose size does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()
