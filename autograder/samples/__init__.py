"""Sample submissions, one module per lesson: `l01_conv_forward.py` defines SAMPLES for `01_conv_forward`."""
import importlib
from types import ModuleType


def sample_module(lesson: str) -> ModuleType:
    """The sample module of `lesson` (e.g. '01_conv_forward' -> autograder.samples.l01_conv_forward)."""
    return importlib.import_module(f"autograder.samples.l{lesson}")
