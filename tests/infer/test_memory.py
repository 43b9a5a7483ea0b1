"""flopcalc.infer.memory: the largest batch that fits, worked out by hand, and the notes when none does."""

from flopcalc.infer import Hardware
from flopcalc.infer.memory import fits, max_batch_that_fits


def gpu(memory_bytes):
    return Hardware("Test-GPU", "bf16", 100e12, "datasheet", 1e12, memory_bytes)


def test_weights_once_and_the_rest_per_sequence():
    # (80e9 - 13.5e9) // 0.37e9 = 179 sequences (179.7)
    assert max_batch_that_fits(gpu(80e9), 13.5e9, 0.37e9) == (179, None)
    assert fits(gpu(80e9), 80e9) is True and fits(gpu(80e9), 80e9 + 1) is False


def test_nothing_fits_unknown_memory_and_nothing_per_sequence():
    largest, note = max_batch_that_fits(gpu(10e9), 13.5e9, 1e9)
    assert largest == 0 and note == "the weights alone (13.5 GB) exceed the memory of Test-GPU (10 GB)"
    assert max_batch_that_fits(gpu(10e9), 9.5e9, 1e9) == (0, None)  # room for the weights, not one sequence
    largest, note = max_batch_that_fits(gpu(None), 1e9, 1e9)
    assert largest is None and "no memory size in the catalogue" in note and fits(gpu(None), 1.0) is None
    assert max_batch_that_fits(gpu(10e9), 1e9, 0.0) == (None, None)  # unbounded: nothing grows with the batch
