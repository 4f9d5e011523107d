"""`make bench` (python -m bench): the course's vectorized references against naive loops, the
textbook im2col and PyTorch CPU, plus grading throughput and notebook run times. See docs/benchmark.md."""
