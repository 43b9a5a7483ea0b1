"""The MFU meter in a Lightning `Trainer`: a `Callback` that logs `mfu`, `tflops`, ... with `LightningModule.log`.

    trainer = lightning.Trainer(callbacks=[MeterCallback(device_name="H100-SXM")], precision="bf16-mixed")

The first training batch is counted, on a meta copy of the module, through the module's own `training_step`
(with the trainer detached from the copy, so nothing is logged from it); a batch of a new shape is counted when
it first comes. The precision of the datasheet peak follows the trainer's (`bf16-mixed` -> bf16) unless given.
"""

from __future__ import annotations

from typing import Any

from ..loaders.zoo import define_torchvision_ops

define_torchvision_ops()  # Lightning imports torchvision where installed (see there)

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback

from .core import ThroughputMeter  # noqa: E402

# Lightning's precision setting -> the precision of the peak the MFU divides by
_PRECISIONS = {"bf16": "bf16", "16": "fp16", "32": "fp32", "64": "fp64", "transformer-engine": "fp8"}


def training_step(module: Any, batch: Any) -> Any:
    """One of Lightning's training steps: what its backward starts from."""
    return module.training_step(batch, 0)


def peak_precision(trainer_precision: Any) -> str | None:
    """`bf16-mixed` -> bf16, `16-mixed` -> fp16, `32-true` -> fp32; None for a setting not known here."""
    text = str(trainer_precision).lower()
    return next((value for key, value in _PRECISIONS.items() if text.startswith(key)), None)


class MeterCallback(Callback):
    """Logs throughput and MFU every `trainer.log_every_n_steps` batches, under `prefix`.

    `fleet=True` logs the figures of every rank summed (an all-reduce on each logging step) instead of this
    rank's. Other keywords go to `ThroughputMeter` (device_name, precision, peak_flops, calibration, window, ...).
    """

    def __init__(self, *, prefix: str = "", fleet: bool = False, **meter_options: Any):
        super().__init__()
        self.prefix = prefix
        self.fleet = fleet
        self.meter_options = meter_options
        self.meter: ThroughputMeter | None = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.meter is not None:
            return
        options = dict(self.meter_options)
        if "precision" not in options and "peak_flops" not in options:
            options["precision"] = peak_precision(getattr(trainer, "precision", ""))
        self.meter = ThroughputMeter(pl_module, batch, step=training_step, detach=(trainer,), **options)
        self.meter.start()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.meter is None:
            return
        self.meter.step(batch=batch)
        every = max(int(getattr(trainer, "log_every_n_steps", 1) or 1), 1)
        if (batch_idx + 1) % every:
            return
        reading = self.meter.fleet_reading() if self.fleet else self.meter.reading()
        figures = reading.metrics(self.prefix)
        if figures:
            pl_module.log_dict(figures, on_step=True, on_epoch=False)
