"""Generated sequence data for lesson 05 (temporal convolutional networks): nothing is downloaded.

    batch = multi_sine_forecasting(n_series=32, n_steps=128, horizon=8, seed=0)
    batch.x       (32, 1, 128)  noisy signal, the network's input, layout (B, C_in, T)
    batch.target  (32, 1, 128)  target[b, 0, t] = the *clean* signal at time t + horizon

Every series is a sum of sines with the fixed periods `PERIODS` and a random amplitude and phase
per series and period, plus Gaussian noise. Forecasting `horizon` steps ahead from noisy samples
rewards a long history: the longest period (61 steps) is far longer than a small kernel sees.
The same `seed` always gives the same batch, for every student and the grader.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PERIODS", "ForecastBatch", "multi_sine_forecasting"]

PERIODS = (9.0, 23.0, 61.0)   # in time steps; mutually prime so the sum never repeats within a window


class ForecastBatch(NamedTuple):
    x: np.ndarray          # (B, 1, T) noisy input
    target: np.ndarray     # (B, 1, T) clean signal `horizon` steps later
    horizon: int


def multi_sine_forecasting(n_series: int, n_steps: int, horizon: int = 8, noise: float = 0.3,
                           seed: int = 0) -> ForecastBatch:
    """A batch of noisy multi-sine series and their clean values `horizon` steps ahead (float64).

    Amplitudes are uniform in [0.5, 1], phases uniform in [0, 2*pi), per series and period.
    """
    if n_series < 1 or n_steps < 1 or horizon < 0 or noise < 0:
        raise ValueError(f"need n_series >= 1, n_steps >= 1, horizon >= 0, noise >= 0 "
                         f"(got {n_series}, {n_steps}, {horizon}, {noise})")
    rng = np.random.default_rng(seed)
    periods = np.asarray(PERIODS)
    amplitude = rng.uniform(0.5, 1.0, (n_series, len(periods), 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n_series, len(periods), 1))
    time = np.arange(n_steps + horizon)
    clean = np.sum(amplitude * np.sin(2 * np.pi * time / periods[:, None] + phase), axis=1)   # (B, T + horizon)
    noisy = clean + noise * rng.standard_normal(clean.shape)
    return ForecastBatch(x=noisy[:, None, :n_steps], target=clean[:, None, horizon:], horizon=horizon)
