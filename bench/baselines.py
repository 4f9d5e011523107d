"""The textbook im2col convolution, as a baseline for the course's vectorized reference.

This is the im2col/col2im of Saito, "Deep Learning from Scratch" (common/util.py and the Convolution
layer), the version most students meet first: it fills the columns with a Python loop over the kernel
taps, transposes them with a copy, and computes in float64 because its buffers come from a plain
`np.zeros`. Kept as published so the benchmark compares against what a textbook actually does.
"""
from __future__ import annotations

import numpy as np


def im2col(x: np.ndarray, K_h: int, K_w: int, stride: int, pad: int) -> np.ndarray:
    """x (B, C, H, W) -> columns (B*H_out*W_out, C*K_h*K_w), one row per output position."""
    B, C, H, W = x.shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
    x_pad = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((B, C, K_h, K_w, H_out, W_out))  # float64, as in the book
    for m in range(K_h):
        for n in range(K_w):
            col[:, :, m, n, :, :] = x_pad[:, :, m:m + stride * H_out:stride, n:n + stride * W_out:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(B * H_out * W_out, -1)


def col2im(col: np.ndarray, x_shape: tuple, K_h: int, K_w: int, stride: int, pad: int) -> np.ndarray:
    """Inverse scatter of im2col: columns (B*H_out*W_out, C*K_h*K_w) -> summed into (B, C, H, W)."""
    B, C, H, W = x_shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
    col = col.reshape(B, H_out, W_out, C, K_h, K_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((B, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for m in range(K_h):
        for n in range(K_w):
            img[:, :, m:m + stride * H_out:stride, n:n + stride * W_out:stride] += col[:, :, m, n, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]


def conv2d_forward_textbook(x, w, b, stride=1, pad=0):
    """x (B, C_in, H, W), w (C_out, C_in, K_h, K_w), b (C_out,) -> y (B, C_out, H_out, W_out)."""
    B, _, H, W = x.shape
    C_out, _, K_h, K_w = w.shape
    H_out = (H + 2 * pad - K_h) // stride + 1
    W_out = (W + 2 * pad - K_w) // stride + 1
    y = im2col(x, K_h, K_w, stride, pad) @ w.reshape(C_out, -1).T + b
    return y.reshape(B, H_out, W_out, C_out).transpose(0, 3, 1, 2)


def conv2d_backward_textbook(dy, x, w, stride=1, pad=0):
    """dy (B, C_out, H_out, W_out) -> (dx like x, dw like w, db (C_out,)); recomputes the columns."""
    C_out, _, K_h, K_w = w.shape
    dy_rows = dy.transpose(0, 2, 3, 1).reshape(-1, C_out)
    db = dy_rows.sum(axis=0)
    dw = (im2col(x, K_h, K_w, stride, pad).T @ dy_rows).T.reshape(w.shape)
    dx = col2im(dy_rows @ w.reshape(C_out, -1), x.shape, K_h, K_w, stride, pad)
    return dx, dw, db
