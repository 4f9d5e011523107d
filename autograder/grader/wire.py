"""Data across the sandbox boundary: what the grader sends in, and the hardened decoding of what comes out.

Both directions use the format of `runner.encode`: JSON, with arrays and numpy scalars as base64
.npy and tuples/dicts marked. Going in, the grader's own data is encoded with `runner.encode`.
Coming out, everything is untrusted: `decode_result` accepts only that format, parses .npy
headers itself (dtype numbers only, size consistent with the bytes, no pickle), limits nesting,
and turns anything else into a `Raised` saying what was wrong. Nothing is ever unpickled.
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

__all__ = ["encode_request", "decode_result", "parse_event", "Malformed"]

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


def decode_result(event: dict) -> Any:
    """A runner 'result' event -> the student's value, or Raised (what the call raised, or why the
    value could not be read)."""
    raised = event.get("raised")
    if isinstance(raised, dict):
        return Raised(str(raised.get("type", "Error"))[:100], str(raised.get("message", ""))[:2000])
    try:
        return _decode(event.get("value"), 0)
    except Malformed as exc:
        return Raised("Unsupported", str(exc))


def _decode(data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Malformed(f"a structure nested more than {MAX_DEPTH} levels deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_decode(item, depth + 1) for item in data]
    if type(data) is dict and len(data) == 1:
        (key, inner), = data.items()
        if key == "__tuple__" and type(inner) is list:
            return tuple(_decode(item, depth + 1) for item in inner)
        if key == "__dict__" and type(inner) is list and all(
                type(pair) is list and len(pair) == 2 and type(pair[0]) is str for pair in inner):
            return {name: _decode(item, depth + 1) for name, item in inner}
        if key in ("__ndarray__", "__scalar__") and type(inner) is str:
            array = _load_npy(inner)
            return array if key == "__ndarray__" else array[()]
    raise Malformed("data in an unknown format")


def _load_npy(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("an array that is not valid base64") from None
    if not raw.startswith(_MAGIC) or len(raw) < 10:
        raise Malformed("an array without a .npy header")
    major = raw[6]
    header_len, start = (int.from_bytes(raw[8:10], "little"), 10) if major == 1 else \
        (int.from_bytes(raw[8:12], "little"), 12)
    if header_len > MAX_HEADER:       # literal_eval of a long header would take the grader gigabytes
        raise Malformed(f"an array with a .npy header of {header_len:,} bytes (at most {MAX_HEADER:,})")
    try:
        header = ast.literal_eval(raw[start:start + header_len].decode("latin1"))
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
