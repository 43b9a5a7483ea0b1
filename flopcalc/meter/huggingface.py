"""The MFU meter in a Hugging Face `Trainer`: a `TrainerCallback` that adds `mfu`, `tflops`, ... to its logs.

    trainer = Trainer(model=model, args=args, train_dataset=data)
    MeterCallback.attach(trainer, device_name="H100-SXM")   # first in line, so every reporter sees the figures
    trainer.train()

The step is counted once, when training begins, on a meta copy of the model and a batch made by the Trainer's
own collator from the first examples of the training set (so the data order is not disturbed), with the loss
as the output that the backward starts from. A Trainer step is one optimizer step: its FLOPs are the counted
batch's x gradient accumulation steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..loaders.zoo import define_torchvision_ops

define_torchvision_ops()  # transformers imports torchvision where installed (see there)

from transformers import TrainerCallback  # noqa: E402

from .core import ThroughputMeter  # noqa: E402


def loss_step(model: Any, batch: Any) -> Any:
    """What the Trainer's backward starts from: the output's loss when the batch has labels, else the output."""
    output = model(**batch) if isinstance(batch, Mapping) else model(batch)
    loss = output.get("loss") if hasattr(output, "get") else None
    return output if loss is None else loss


class MeterCallback(TrainerCallback):
    """Logs this rank's throughput and MFU (`ThroughputMeter` figures, prefix `prefix`) at every Trainer log.

    `example_batch`: the batch to count (default: the collator applied to the first examples of the training
    set); the other keywords go to `ThroughputMeter` (device_name, precision, peak_flops, calibration, window,
    sync, ...).
    """

    def __init__(self, example_batch: Any = None, *, prefix: str = "", **meter_options: Any):
        self.example_batch = example_batch
        self.prefix = prefix
        self.meter_options = meter_options
        self.meter: ThroughputMeter | None = None
        self._logged_steps = 0

    @classmethod
    def attach(cls, trainer: Any, *args: Any, **kwargs: Any) -> MeterCallback:
        """Make the callback and put it first among the trainer's callbacks: the reporting integrations
        (tensorboard, wandb, ...) run after it and so log its figures."""
        callback = cls(*args, **kwargs)
        trainer.callback_handler.callbacks.insert(0, callback)
        return callback

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        example = self.example_batch if self.example_batch is not None else _first_batch(train_dataloader, args)
        device = next((p.device for p in model.parameters()), None) if model is not None else None
        if device is not None:
            example = _to(example, device)
        self.meter = ThroughputMeter(model, example, step=loss_step, **self.meter_options)
        self._per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        self.meter.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.meter is not None:
            self.meter.step(batch_size=self._per_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.meter is None or logs is None or "loss" not in logs and "train_loss" not in logs:
            return  # evaluation logs
        # the end-of-training summary gets the whole run's figures; the others, the rolling window's
        reading = self.meter.total() if "train_loss" in logs else self.meter.reading()
        if reading.steps == 0:
            return
        figures = reading.metrics(self.prefix)
        logs.update(figures)
        # the Trainer has already stored a copy of these logs: give it the figures too
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(figures)


def _first_batch(dataloader: Any, args: Any) -> Any:
    """The collator applied to the first examples of the dataset: a batch like the Trainer's, drawn without
    touching the sampler's random state."""
    dataset = getattr(dataloader, "dataset", None)
    collate = getattr(dataloader, "collate_fn", None)
    if dataset is None or collate is None:
        raise UsageError(
            "MeterCallback could not make an example batch from the training dataloader",
            "pass MeterCallback(example_batch=...)",
        )
    size = min(args.per_device_train_batch_size, len(dataset))
    return collate([dataset[index] for index in range(size)])


def _to(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to") and not isinstance(batch, (list, tuple)):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: _to(value, device) for key, value in batch.items()}
    return batch
