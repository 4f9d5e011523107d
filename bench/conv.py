"""conv2d forward and backward: naive loops, the textbook im2col, the course's reference, PyTorch CPU."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.baselines import conv2d_backward_textbook, conv2d_forward_textbook
from bench import workers
from bench.common import measure_pass, reference_function

#: The naive loops are timed on this many images and scaled to the full batch (they loop over the batch).
NAIVE_BATCH = 2

@dataclass(frozen=True)
class ConvShape:
    name: str
    B: int
    C_in: int
    H: int
    W: int
    C_out: int
    K: int
    stride: int
    pad: int

    @property
    def out_size(self) -> tuple[int, int]:
        """(H_out, W_out) = ((H + 2*pad - K) // stride + 1, same for W)."""
        return tuple((n + 2 * self.pad - self.K) // self.stride + 1 for n in (self.H, self.W))

    @property
    def gflop_forward(self) -> float:
        """Multiply-adds of the forward pass, counted as 2 FLOP; the backward pass (dx and dw) is twice this."""
        H_out, W_out = self.out_size
        return 2 * self.B * self.C_out * H_out * W_out * self.C_in * self.K * self.K / 1e9


# cs231n-sized layers: a first layer on CIFAR-sized images, a deeper 3x3 layer, a downsampling layer.
SHAPES = [
    ConvShape("64x3x32x32 -> 32, K3 s1 p1", 64, 3, 32, 32, 32, 3, 1, 1),
    ConvShape("64x32x16x16 -> 64, K3 s1 p1", 64, 32, 16, 16, 64, 3, 1, 1),
    ConvShape("64x32x32x32 -> 64, K3 s2 p1", 64, 32, 32, 32, 64, 3, 2, 1),
]


def _inputs(shape: ConvShape, rng: np.random.Generator):
    x = rng.standard_normal((shape.B, shape.C_in, shape.H, shape.W), dtype=np.float32)
    w = rng.standard_normal((shape.C_out, shape.C_in, shape.K, shape.K), dtype=np.float32)
    b = rng.standard_normal(shape.C_out, dtype=np.float32)
    dy = rng.standard_normal((shape.B, shape.C_out, *shape.out_size), dtype=np.float32)
    return x, w, b, dy


def _torch_ops(x, w, b, dy, stride, pad):
    """(forward, backward) as PyTorch CPU operations in the torch worker, or (None, None) without torch."""
    torch = workers.worker("torch")
    return (torch.build("conv2d_forward", [x, w, b], stride=stride, pad=pad),
            torch.build("conv2d_backward", [dy, x, w, b], stride=stride, pad=pad))


#: Where the workers find each implementation (bench/workers.py): timed in processes of their own.
TARGETS = {
    "forward": {"textbook": ("bench.baselines", "conv2d_forward_textbook"),
                "reference": ("reference", "01_conv_forward", "conv2d_forward")},
    "backward": {"textbook": ("bench.baselines", "conv2d_backward_textbook"),
                 "reference": ("reference", "03_conv_backward", "conv2d_backward")},
}


def measure(repeats: int, naive_repeats: int, rng: np.random.Generator) -> dict:
    """Milliseconds per implementation for each shape and pass, outputs cross-checked before timing."""
    found = {(lesson, name): reference_function(lesson, name) for lesson, name in [
        ("01_conv_forward", "conv2d_forward"), ("01_conv_forward", "conv2d_forward_naive"),
        ("03_conv_backward", "conv2d_backward"), ("03_conv_backward", "conv2d_backward_naive")]}
    impl = {name: function for (_, name), (function, _) in found.items()}
    rows = []
    for shape in SHAPES:
        x, w, b, dy = _inputs(shape, rng)
        torch_ops = _torch_ops(x, w, b, dy, shape.stride, shape.pad)
        forward = {"naive": impl["conv2d_forward_naive"], "textbook": conv2d_forward_textbook,
                   "reference": impl["conv2d_forward"]}
        backward = {"naive": impl["conv2d_backward_naive"], "textbook": conv2d_backward_textbook,
                    "reference": impl["conv2d_backward"]}
        for pass_name, gflop, impls, args, n_batched, torch_op in [
                ("forward", shape.gflop_forward, forward, (x, w, b), 1, torch_ops[0]),
                ("backward", 2 * shape.gflop_forward, backward, (dy, x, w), 2, torch_ops[1])]:
            rows.append({"shape": shape.name, "pass": pass_name, "gflop": round(gflop, 4),
                         **measure_pass(impls, args, {"stride": shape.stride, "pad": shape.pad}, n_batched, shape.B,
                                        torch_op, repeats, naive_repeats, NAIVE_BATCH, TARGETS[pass_name])})
    notes = sorted({why for _, why in found.values() if why})
    return {"rows": rows, "notes": notes}
