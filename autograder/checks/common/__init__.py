"""Check libraries per function: case builders, rounding bounds and diagnoses of the functions that
several lessons grade (conv2d_forward in lessons 01, 03 and 04; pooling in 02 and 04), written once and
used by every lesson's check module."""
