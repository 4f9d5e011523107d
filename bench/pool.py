"""Max pooling forward and backward: the course's naive loops (if the lesson has them), its reference, PyTorch CPU."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import workers
from bench.common import measure_pass, reference_function

LESSON = "02_relu_pooling"


@dataclass(frozen=True)
class PoolShape:
    name: str
    B: int
    C: int
    H: int
    W: int
    pool: int
    stride: int


# The usual 2x2/2 after a conv layer, and overlapping 3x3/2 windows (AlexNet's choice).
SHAPES = [
    PoolShape("64x32x32x32, 2x2 s2", 64, 32, 32, 32, 2, 2),
    PoolShape("64x64x16x16, 3x3 s2", 64, 64, 16, 16, 3, 2),
]


def _torch_ops(x, dy, pool, stride):
    """(forward, backward) as PyTorch CPU max_pool2d operations in the torch worker, or (None, None)."""
    torch = workers.worker("torch")
    return (torch.build("maxpool2d_forward", [x], pool=pool, stride=stride),
            torch.build("maxpool2d_backward", [dy, x], pool=pool, stride=stride))


#: Where the reference worker finds the course's functions (bench/workers.py).
TARGETS = {"forward": {"reference": ("reference", LESSON, "maxpool2d_forward")},
           "backward": {"reference": ("reference", LESSON, "maxpool2d_backward")}}


def measure(repeats: int, naive_repeats: int, rng: np.random.Generator) -> dict:
    """Milliseconds per implementation for each shape and pass (float32 inputs, no ties)."""
    found = {name: reference_function(LESSON, name) for name in (
        "maxpool2d_forward", "maxpool2d_forward_naive", "maxpool2d_backward", "maxpool2d_backward_naive")}
    impl = {name: function for name, (function, _) in found.items()}
    rows = []
    for shape in SHAPES:
        x = rng.standard_normal((shape.B, shape.C, shape.H, shape.W), dtype=np.float32)
        H_out, W_out = ((n - shape.pool) // shape.stride + 1 for n in (shape.H, shape.W))
        dy = rng.standard_normal((shape.B, shape.C, H_out, W_out), dtype=np.float32)
        torch_ops = _torch_ops(x, dy, shape.pool, shape.stride)
        kwargs = {"pool": shape.pool, "stride": shape.stride}
        for pass_name, impls, args, n_batched, torch_op in [
                ("forward", {"naive": impl["maxpool2d_forward_naive"], "reference": impl["maxpool2d_forward"]},
                 (x,), 1, torch_ops[0]),
                ("backward", {"naive": impl["maxpool2d_backward_naive"], "reference": impl["maxpool2d_backward"]},
                 (dy, x), 2, torch_ops[1])]:
            # The naive forward loops over output positions only, batch and channels vectorized: its cost
            # is not linear in B, so the naive loops run on the full batch here, not on a scaled-down one.
            rows.append({"shape": shape.name, "pass": pass_name,
                         **measure_pass(impls, args, kwargs, n_batched, shape.B, torch_op, repeats, naive_repeats,
                                        naive_batch=None, targets=TARGETS[pass_name])})
    notes = sorted({why for name, (_, why) in found.items() if why and not name.endswith("_naive")})
    return {"rows": rows, "notes": notes}
