"""Small datasets that ship with the course: nothing is downloaded.

    split = load_digits_split()        # scikit-learn's bundled 8x8 digits, 1797 images
    split.x_train  (1077, 1, 8, 8) float32 in [0, 1]     split.y_train  (1077,) int64 in 0..9
    split.x_val    ( 360, 1, 8, 8)                        split.y_val    ( 360,)
    split.x_test   ( 360, 1, 8, 8)                        split.y_test   ( 360,)

The split is stratified (every digit in the same proportion in each part) and fixed by `seed`, so
every student, the grader and the benchmark see the same images in the same parts.

    random_shift(x, rng)               # data augmentation: every image moved by up to one pixel
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

__all__ = ["DigitsSplit", "load_digits_split", "random_shift", "N_CLASSES"]

N_CLASSES = 10
_PIXEL_MAX = 16.0   # digits pixels are integers 0..16


class DigitsSplit(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    bunch = load_digits()
    images = (bunch.images / _PIXEL_MAX).astype(np.float32)[:, None, :, :]
    return images, bunch.target.astype(np.int64)


@functools.cache
def _split_indices(n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    _, labels = _digits()
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=n_test, stratify=labels, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    return train, val, test


def load_digits_split(n_val: int = 360, n_test: int = 360, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 8x8 digits split into train / validation / test, stratified and deterministic.

    Images come as float32 arrays of shape (N, 1, 8, 8) (batch, channels, height, width) scaled to
    [0, 1]; labels as int64 arrays of shape (N,). The default leaves 1077 training images.
    Each call returns fresh copies, so changing them in a notebook cannot corrupt later calls.
    """
    images, labels = _digits()
    if not (0 < n_val and 0 < n_test and n_val + n_test < len(labels) - N_CLASSES):
        raise ValueError(f"n_val={n_val} and n_test={n_test} must be positive and leave training images "
                         f"out of {len(labels)}")
    parts = []
    for index in _split_indices(n_val, n_test, seed):
        parts += [images[index].copy(), labels[index].copy()]
    return DigitsSplit(*parts)


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 1) -> np.ndarray:
    """Each image of x (N, C, H, W) moved by its own random offset of -max_shift..max_shift pixels
    down and right (independently), the uncovered border filled with zeros -> new array like x.
    A digit moved by a pixel is still the same digit: a free way to get more training examples."""
    n, _, height, width = x.shape
    m = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    # crops[n, c, r, s] is the image window starting at row r, column s of the padded image
    crops = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(2, 3))
    rows, cols = rng.integers(0, 2 * m + 1, size=n), rng.integers(0, 2 * m + 1, size=n)
    return crops[np.arange(n), :, rows, cols]
