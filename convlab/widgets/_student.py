"""Calling a student's function from a widget: its result, or a sentence saying why the widget
falls back to its own logic (the function is missing, still a stub, or raises)."""
from __future__ import annotations

from typing import Any, Callable


def student_name(fn: Callable | None) -> str:
    """fn's name for messages; callables without one (functools.partial, instances) are 'function'."""
    return getattr(fn, "__name__", "function")


def call_student(fn: Callable | None, *args, **kwargs) -> tuple[Any, str | None]:
    """(fn(*args, **kwargs), None), or (None, why not):
    'no function given', 'your NAME is not implemented yet' or 'your NAME raised ERROR: message'."""
    if fn is None:
        return None, "no function given"
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        return None, f"your {student_name(fn)} is not implemented yet"
    except Exception as exc:  # noqa: BLE001 - a student's bug becomes a message, not a broken widget
        return None, f"your {student_name(fn)} raised {type(exc).__name__}: {exc}"
