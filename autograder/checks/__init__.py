"""Hidden checks, one module per lesson: `l01_conv_forward.py` for lesson `01_conv_forward`."""
import importlib
from types import ModuleType


def check_module(lesson: str) -> ModuleType:
    """The check module of `lesson` (e.g. '01_conv_forward' -> autograder.checks.l01_conv_forward)."""
    return importlib.import_module(f"autograder.checks.l{lesson}")
