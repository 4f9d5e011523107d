"""Lesson 04's goal: the reference CNN reaches >= 97 % test accuracy on digits in < 60 s of CPU.

    python -m bench.lesson04        # or `make bench`, which calls measure()

Trains the reference network of solutions/04_train_cnn.py with the notebook's full budget (the same
call as its "Train the network" cell, with one BLAS thread as the notebook sets) and reports the test
accuracy, the CPU seconds of this process and the wall-clock seconds.
"""
from __future__ import annotations

import time

import numpy as np

from autograder.grader.reference import load_reference

LESSON = "04_train_cnn"
GOAL_ACCURACY, GOAL_CPU_SECONDS = 0.97, 60.0
EPOCHS, SEED, BLAS_THREADS = 20, 0, 1   # the notebook's full run


def measure(epochs: int = EPOCHS, seed: int = SEED) -> dict:
    """Train the reference build_cnn on the digits training split; accuracy on the test split."""
    from threadpoolctl import threadpool_limits

    from convlab.data import load_digits_split, random_shift
    ref = load_reference(LESSON)
    data = load_digits_split()
    layers = ref.build_cnn(np.random.default_rng(seed))
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        cpu, wall = time.process_time(), time.perf_counter()
        ref.train(layers, data.x_train, data.y_train, epochs=epochs, batch_size=32, lr=0.05, momentum=0.9,
                  seed=seed, augment=random_shift)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    accuracy = float(np.mean(ref.predict(layers, data.x_test) == data.y_test))
    return {"test_accuracy": round(accuracy, 4), "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
            "epochs": epochs, "parameters": int(ref.count_params(layers)),
            "blas_threads": BLAS_THREADS,
            "goal": f">= {GOAL_ACCURACY:.0%} test accuracy in < {GOAL_CPU_SECONDS:g} s CPU",
            "met": accuracy >= GOAL_ACCURACY and cpu < GOAL_CPU_SECONDS}


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:18s} {value}")
