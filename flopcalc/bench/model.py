"""Model training-step throughput: time real steps of the user's model and turn them into MFU.

A step is forward, backward (of the sum of the outputs, exactly what the counting engine counts)
and an optimizer step (AdamW or SGD), on real weights on the device. The model FLOPs per step come
from the counting engine (forward + backward, 1 multiply-add = 2 FLOPs; the optimizer's
elementwise update is not model FLOPs, as in PaLM's MFU). Achieved TFLOPS = FLOPs per step /
median step time; MFU = achieved / peak (datasheet, or the CPU estimate), and the fraction of
measured matmul throughput when a calibration has one.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..api import as_spec, count_loaded, load
from ..calibration import (
    Calibration,
    ModelCalibration,
    calibrated_peak,
    now_utc,
    save_device_entry,
)
from ..counting.report import unsupported_ops_note
from ..errors import CalibrationError, ModelRunError, UsageError, short_error
from ..predict import GraphPrediction, predict_ops, trace_ops
from ..spec import CallArgs, ModelSpec
from .hardware import BUSY, DeviceInfo, PeakResolver, describe_device, load_warning, resolve_device
from .matmul import SPREAD_LIMIT_PCT, peak_for, refuse_disturbed
from .profile import profile_rates, synchronizer
from .sweep import SweepPlan, fp32_matmul_mode

MODEL_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "sgd")
MIN_TIMED_STEPS = 3


@dataclass(frozen=True)
class ModelBenchResult:
    info: DeviceInfo
    spec: ModelSpec
    batch_size: int | None
    precision: str
    optimizer: str
    forward_flops: int
    backward_flops: int
    step_seconds: tuple[float, ...]  # every timed step
    warmup_steps: int
    peak_flops: float | None
    peak_source: str
    measured_matmul_flops: float | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    calibration_file: str | None = None
    prediction: GraphPrediction | None = None
    prediction_source: str | None = None  # the saved profile, or the quick one measured in this run

    @property
    def predicted_step_seconds(self) -> float | None:
        return self.prediction.seconds if self.prediction else None

    @property
    def prediction_error(self) -> float | None:
        """measured / predicted - 1: +0.10 means the step took 10% longer than predicted."""
        return self.median_step_seconds / self.prediction.seconds - 1 if self.prediction else None

    @property
    def model(self) -> str:
        return self.spec.source

    @property
    def key(self) -> str:
        """What the measurement is stored under in a calibration file."""
        return self.spec.key()

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.spec.inputs

    @property
    def flops_per_step(self) -> int:
        return self.forward_flops + self.backward_flops

    @property
    def median_step_seconds(self) -> float:
        return statistics.median(self.step_seconds)

    @property
    def achieved_flops(self) -> float:
        return self.flops_per_step / self.median_step_seconds

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation: achieved / peak."""
        return self.achieved_flops / self.peak_flops if self.peak_flops else None

    @property
    def fraction_of_measured(self) -> float | None:
        return self.achieved_flops / self.measured_matmul_flops if self.measured_matmul_flops else None

    @property
    def spread_pct(self) -> float:
        return 100.0 * (max(self.step_seconds) - min(self.step_seconds)) / self.median_step_seconds

    @property
    def middle_spread_pct(self) -> float:
        """The spread of the middle half of the step times (interquartile range / median), in percent: one slow
        step (a context switch, a garbage collection) does not make a run disturbed; a busy machine's steady
        noise does. With fewer than four steps, the whole spread."""
        if len(self.step_seconds) < 4:
            return self.spread_pct
        first, _, third = statistics.quantiles(self.step_seconds, n=4)
        return 100.0 * (third - first) / self.median_step_seconds

    def disturbances(self) -> tuple[str, ...]:
        """Why the step times may not be the device's own: a busy machine, steps that spread wide."""
        reasons = [warning for warning in self.warnings if warning.startswith(BUSY)]
        if self.middle_spread_pct > SPREAD_LIMIT_PCT:
            reasons.append(
                f"the middle half of the step times spread {self.middle_spread_pct:.0f}% "
                f"(more than {SPREAD_LIMIT_PCT:.0f}%)"
            )
        return tuple(reasons)

    def to_calibration(self) -> ModelCalibration:
        return ModelCalibration(
            model=self.model,
            inputs=self.inputs,
            batch_size=self.batch_size,
            kwargs=dict(self.spec.kwargs),
            precision=self.precision,
            optimizer=self.optimizer,
            flops_per_step=float(self.flops_per_step),
            step_seconds=self.median_step_seconds,
            achieved_tflops=self.achieved_flops / 1e12,
            measured_at=now_utc(),
            torch_version=self.info.torch_version,
            steps=len(self.step_seconds),
            peak_tflops=self.peak_flops / 1e12 if self.peak_flops else None,
            mfu=self.mfu,
        )

    def to_dict(self) -> dict:
        spread = (
            100.0 * (max(self.step_seconds) - min(self.step_seconds)) / self.median_step_seconds
            if self.step_seconds
            else None
        )
        return {
            "device": self.info.device,
            "device_name": self.info.device_name,
            "torch_version": self.info.torch_version,
            "model": self.model,
            "model_key": self.key,
            "inputs": list(self.inputs),
            "batch_size": self.batch_size,
            "precision": self.precision,
            "optimizer": self.optimizer,
            "forward_flops_per_step": self.forward_flops,
            "backward_flops_per_step": self.backward_flops,
            "flops_per_step": self.flops_per_step,
            "step_seconds": self.median_step_seconds,
            "best_step_seconds": min(self.step_seconds),
            "spread_pct": spread,
            "steps": len(self.step_seconds),
            "warmup_steps": self.warmup_steps,
            "achieved_tflops": self.achieved_flops / 1e12,
            "peak_tflops": self.peak_flops / 1e12 if self.peak_flops else None,
            "peak_source": self.peak_source,
            "mfu": self.mfu,
            "measured_matmul_tflops": self.measured_matmul_flops / 1e12 if self.measured_matmul_flops else None,
            "fraction_of_measured": self.fraction_of_measured,
            "predicted_step_seconds": self.predicted_step_seconds,
            "prediction_error": self.prediction_error,
            "prediction_source": self.prediction_source,
            "calibration_file": self.calibration_file,
            "cuda_version": self.info.cuda_version,
            "threads": self.info.threads,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def save_model_result(result: ModelBenchResult, path: Any, *, force: bool = False) -> Any:
    """Store a model run in a calibration file; a disturbed run (busy machine, wide spread) is refused unless
    `force`."""
    refuse_disturbed(result.disturbances(), force)
    return save_device_entry(
        path, result.info.device_name, result.info.device, models={result.key: result.to_calibration()}
    )


def default_model_precision(info: DeviceInfo) -> str:
    """bf16 on GPUs with bf16 tensor cores (how models are trained there), fp16 on older GPUs, fp32 on CPU/MPS."""
    if info.device == "cuda":
        major = (info.compute_capability or (0, 0))[0]
        return "bf16" if major >= 8 or info.is_rocm else "fp16"
    return "fp32"


@contextlib.contextmanager
def precision_context(precision: str, device: str):
    """fp32/tf32: plain fp32 with CUDA's TF32 switch off/on; bf16/fp16: torch.autocast."""
    import torch

    if precision in ("fp32", "tf32"):
        with fp32_matmul_mode(precision, device):
            yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device, dtype=dtype):
        yield


def make_optimizer(name: str, parameters: list) -> Any:
    import torch

    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=1e-5)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=1e-5, momentum=0.9)
    raise UsageError(f"unknown optimizer {name!r}", f"use one of {', '.join(OPTIMIZERS)}")


def _call(module: Any, inputs: Any) -> Any:
    return CallArgs.of(inputs).call(module)


def make_training_step(module: Any, inputs: Any, optimizer: Any, precision: str, device: str) -> Callable[[], None]:
    """One training step: forward, backward of the sum of the outputs (each once, as the count runs it),
    optimizer step, zero grads."""
    import torch

    from ..counting.counter import backward_roots

    def step() -> None:
        with precision_context(precision, device):
            output = _call(module, inputs)
        roots = backward_roots(output)
        if not roots:
            raise ModelRunError("no model output requires a gradient: nothing to train", "unfreeze some parameters")
        torch.autograd.backward(roots, [torch.ones_like(root) for root in roots])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step.optimizer = optimizer  # type: ignore[attr-defined]  # what trace_training_step replays
    return step


def time_steps(
    step: Callable[[], None],
    *,
    seconds: float,
    sync: Callable[[], None],
    clock: Callable[[], float] = time.perf_counter,
    warmup_fraction: float = 0.15,
    max_steps: int = 1000,
) -> tuple[list[float], int]:
    """Warm up for about `warmup_fraction` of `seconds` (at least one step), then time steps one by one
    until the time is up (at least MIN_TIMED_STEPS). Returns (step times, warm-up steps)."""
    start = clock()
    warmup_steps = 0
    while warmup_steps < 1 or (clock() - start < warmup_fraction * seconds and warmup_steps < 50):
        step()
        sync()
        warmup_steps += 1
    times: list[float] = []
    while len(times) < max_steps:
        begin = clock()
        step()
        sync()
        times.append(clock() - begin)
        if len(times) >= MIN_TIMED_STEPS and clock() - start >= seconds:
            break
    return times, warmup_steps


def run_model_bench(
    model: ModelSpec | str,
    inputs: Sequence[str] | None = None,
    *,
    device: str = "auto",
    precision: str | None = None,
    optimizer: str = "adamw",
    seconds: float | None = None,
    peak_resolver: PeakResolver | None = None,
    calibration: Calibration | None = None,
    clock: Callable[[], float] = time.perf_counter,
    predict: bool = True,
    **spec_options: Any,
) -> ModelBenchResult:
    """Time real training steps of `model` on `device` and relate them to its counted FLOPs.

    `model` is a ModelSpec, or a source with `inputs` (`--input` specs) and ModelSpec options as keywords.
    The model is loaded once, on the device it is timed on, and counted there before the timed steps.
    `predict`: also predict the step time from the device profile in `calibration` (one measured on this
    device; another device's is refused), or, without one, from a quick profile measured now.
    """
    import torch

    started = clock()
    spec = as_spec(model, inputs, **spec_options)
    resolved = resolve_device(device)
    info = describe_device(resolved)
    chosen = _checked_precision(precision, info, resolved)
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}", f"use one of {', '.join(OPTIMIZERS)}")
    budget = SweepPlan.for_device(resolved, seconds).seconds
    notes: list[str] = []
    warnings = [w for w in [load_warning(cpus=info.threads)] if w] if resolved == "cpu" else []

    previous_threads = torch.get_num_threads()
    if resolved == "cpu" and info.threads:
        torch.set_num_threads(info.threads)
    try:
        module, example, report = _load_and_count(spec, resolved, notes)
        step = _training_step(spec, module, example, optimizer, chosen, resolved, notes)
        left = max(budget - (clock() - started), 0.1 * budget)  # loading and counting came out of the budget
        times, warmup_steps = _timed(step, spec, resolved, left, clock)
        prediction, prediction_source = (
            _predicted_step(module, example, step, chosen, resolved, calibration, info, notes, clock)
            if predict
            else (None, None)
        )
    finally:
        torch.set_num_threads(previous_threads)
        if resolved == "cuda":
            torch.cuda.empty_cache()

    peak, source = peak_for(info, chosen, peak_resolver)
    measured = _measured_matmul(calibration, info, chosen, notes)
    if chosen in ("bf16", "fp16"):
        notes.append(f"{chosen} via torch.autocast: matmuls and convolutions run in {chosen}, the rest in fp32")
    achieved = (report.forward + report.backward) / statistics.median(times)
    if measured and achieved > measured:
        warnings.append(
            f"the model ran at {achieved / measured:.0%} of the measured matmul peak ({measured / 1e12:.4g} TFLOPS): "
            "no model runs faster than its matmuls, so the calibration is wrong (measured on a busy machine?); "
            "rerun `flopcalc bench --save` on an idle machine"
        )
    return ModelBenchResult(
        info=info,
        spec=spec,
        batch_size=spec.batch_size if spec.batch_size is not None else report.batch_size,
        precision=chosen,
        optimizer=optimizer,
        forward_flops=report.forward,
        backward_flops=report.backward,
        step_seconds=tuple(times),
        warmup_steps=warmup_steps,
        peak_flops=peak,
        peak_source=source,
        measured_matmul_flops=measured,
        notes=tuple(notes),
        warnings=tuple(warnings),
        prediction=prediction,
        prediction_source=prediction_source,
    )


def _predicted_step(
    module: Any,
    example: Any,
    step: Any,
    chosen: str,
    resolved: str,
    calibration: Calibration | None,
    info: DeviceInfo,
    notes: list[str],
    clock: Callable[[], float],
) -> tuple[Any, str]:
    """The step time predicted from the device profile on the ops of one traced training step, and where the
    profile came from."""
    calls = trace_training_step(module, example, step.optimizer, chosen, resolved)
    convolutions = any(call.convolution is not None for call in calls)
    rates, source = profile_rates(calibration, info, chosen, notes, clock, convolutions)
    return predict_ops(calls, rates, precision=chosen, device_name=info.device_name), source


def _checked_precision(precision: str | None, info: DeviceInfo, resolved: str) -> str:
    chosen = (precision or default_model_precision(info)).strip().lower()
    if chosen not in MODEL_PRECISIONS:
        raise UsageError(
            f"precision {precision!r} cannot be used to train a model here", f"use one of {', '.join(MODEL_PRECISIONS)}"
        )
    if chosen == "tf32" and resolved != "cuda":
        raise UsageError("tf32 applies to CUDA devices only", "use --precision fp32")
    return chosen


def _load_and_count(spec: ModelSpec, resolved: str, notes: list[str]) -> tuple[Any, Any, Any]:
    """The model on the device it is timed on, its example inputs and its count (notes appended)."""
    loaded, example = load(spec, resolved)
    if loaded.kind == "onnx":
        raise UsageError(f"{spec.source}: an ONNX graph cannot be trained here", "bench the PyTorch model it came from")
    report = count_loaded(loaded, example, spec)
    if not report.backward_counted:
        raise ModelRunError(
            f"{spec.source}: no backward pass could be counted", "a training step needs trainable parameters"
        )
    unsupported = unsupported_ops_note(report.unsupported_ops, "MFU is a lower bound")
    if unsupported:
        notes.append(unsupported)
    notes.extend(report.notes)
    notes.append("model FLOPs = counted forward + backward; the optimizer update is not counted (as in PaLM's MFU)")
    return loaded.module, example, report


def _training_step(
    spec: ModelSpec, module: Any, example: Any, optimizer: str, precision: str, resolved: str, notes: list[str]
) -> Callable[[], None]:
    try:
        module.train()
    except (NotImplementedError, RuntimeError) as error:  # exported graphs and some scripted modules refuse
        notes.append(f"could not switch the model to training mode ({short_error(error)}); timed as loaded")
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise ModelRunError(f"{spec.source} has no trainable parameters", "a training step needs some")
    return make_training_step(module, example, make_optimizer(optimizer, parameters), precision, resolved)


def trace_training_step(module: Any, inputs: Any, optimizer: Any, precision: str, device: str) -> tuple:
    """Every op of one training step as `make_training_step` runs it, by phase (predict.trace_ops)."""
    import torch

    from ..counting.counter import backward_roots

    state: dict[str, Any] = {}

    def forward() -> None:
        with precision_context(precision, device):
            state["output"] = _call(module, inputs)

    def backward() -> None:
        roots = backward_roots(state.pop("output"))
        torch.autograd.backward(roots, [torch.ones_like(root) for root in roots])

    def update() -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return trace_ops((("forward", forward), ("backward", backward), ("optimizer", update)), module)


def _timed(
    step: Callable[[], None], spec: ModelSpec, resolved: str, seconds: float, clock: Callable[[], float]
) -> tuple[list[float], int]:
    """time_steps; a step the device or precision cannot run is a ModelRunError. The forward already ran when
    the model was counted on this device, so what fails here is torch's: a kernel missing in this precision, a
    dtype or device mismatch, memory (RuntimeError and its OutOfMemoryError, NotImplementedError, MemoryError).
    Anything else is a bug and surfaces as one."""
    try:
        return time_steps(step, seconds=seconds, sync=synchronizer(resolved), clock=clock)
    except (RuntimeError, NotImplementedError, MemoryError) as error:
        raise ModelRunError(
            f"a training step of {spec.source} failed on {resolved}: {short_error(error)}",
            "check that it runs on this device and precision (try --precision fp32)",
        ) from error


def _measured_matmul(
    calibration: Calibration | None, info: DeviceInfo, precision: str, notes: list[str]
) -> float | None:
    """The calibration's measured matmul FLOP/s of this device and precision; a note when it has none."""
    if calibration is None:
        return None
    try:
        return calibrated_peak(calibration, info.device_name, precision)[0]
    except CalibrationError as error:  # a calibration without this device/precision: say so, still report
        notes.append(f"no measured matmul figure to compare with: {error.message}")
        return None
