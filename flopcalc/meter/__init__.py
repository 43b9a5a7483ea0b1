"""The MFU meter for training loops (docs/mfu.md): a step counted once on meta, throughput and utilisation
measured in the loop, each figure labelled with the peak it divides by.

`flopcalc.meter.huggingface` (a transformers TrainerCallback) and `flopcalc.meter.lightning` (a Lightning
Callback) put it in those trainers; import them by name, each needs its framework.
"""

from .core import MeterReading, ThroughputMeter, count_training_step, meta_copy
from .peaks import Peak

__all__ = ["MeterReading", "Peak", "ThroughputMeter", "count_training_step", "meta_copy"]
