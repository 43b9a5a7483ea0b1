"""`flopcalc train`: training compute from a model file, from FLOPs per example, or from 6ND; with --gpu,
GPU-hours, GPU-days, wall clock, energy and cost. torch loads only when a model file is counted."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UsageError
from ..units import parse_si_number
from ._app import OutputFormat, app, emit
from ._gpu_options import (
    DEFAULT_UTILIZATION,
    CalibrationOption,
    CatalogOption,
    NumGpusOption,
    PrecisionOption,
    UtilizationOption,
    catalog_from_options,
    parse_num_gpus,
    parse_utilization,
)

MODES_HINT = ("give a MODEL file with --examples, or --flops-per-example F with --examples, "
              "or --params N with --tokens D")


def _number(text: Optional[str], flag: str) -> Optional[float]:
    return None if text is None else parse_si_number(text, flag)


def _training_from_model(model, inputs, batch_size, kwargs, device, examples, epochs, seq_len=None, dims=()):
    from ..compute import BACKWARD_TO_FORWARD, training_from_counts
    from ..counting.counter import count_source
    from ..loaders.onnx_graph import DEVICE as ONNX_DEVICE
    from .count import parse_dims, parse_kwargs

    report = count_source(model, inputs=inputs or None, batch_size=batch_size, kwargs=parse_kwargs(kwargs),
                          device=device, backward=True, seq_len=seq_len, dims=parse_dims(list(dims)))
    batch = report.batch_size
    # an ONNX graph has no backward pass to count: 2x its forward, as its report's note says
    backward = report.forward * BACKWARD_TO_FORWARD if report.device == ONNX_DEVICE else report.backward
    notes = [f"counted: {report.forward:,} forward + {backward:,} backward FLOP per batch of {batch} "
             f"(leading dimension of the first input), divided by {batch}"]
    if report.unsupported_ops:
        listed = ", ".join(f"{op} x{n}" for op, n in report.unsupported_ops.items())
        notes.append(f"unsupported ops (no formula, not counted): {listed}")
    notes.extend(report.notes)
    return training_from_counts(Fraction(report.forward, batch), Fraction(backward, batch), examples, epochs,
                                method="counted", notes=tuple(notes))


def _calibrated(calibration, model, inputs, batch_size, kwargs, gpu, precision, utilization, catalog):
    """Throughput from a calibration file (and the model's measured utilisation, if it was benchmarked);
    the TDP from the catalogue when the device resolves there."""
    from ..bench.calibration import calibrated_throughput, load_calibration, model_key
    from ..errors import FlopcalcError
    from .count import parse_kwargs

    gpus = catalog_from_options(catalog)
    key = model_key(model, inputs, batch_size, parse_kwargs(kwargs)) if model else None
    explicit = None if utilization == str(DEFAULT_UTILIZATION) else parse_utilization(utilization)
    throughput, notes = calibrated_throughput(
        load_calibration(calibration), device_name=gpu, precision=precision,
        utilization=explicit, model=key, catalog=gpus,
    )
    try:
        tdp_w = gpus.resolve(gpu or throughput.gpu).tdp_w
    except FlopcalcError:  # a CPU or a GPU the catalogue lacks: no energy figure
        tdp_w = None
    return throughput, tdp_w, notes


@app.command("train")
def train_command(
    model: Optional[str] = typer.Argument(None, help="Model to count: file.py:callable, file.py, .pt, .pt2, .onnx, "
                                                    "config.json (or use --flops-per-example, or --params with --tokens)."),
    input: List[str] = typer.Option([], "--input", "-i", help="Input shape per positional argument, e.g. 8x3x32x32."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Override the leading dimension of every input."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", help="JSON object passed to the model callable."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence for a Hugging Face config.json."),
    dim: List[str] = typer.Option([], "--dim", help="Size a symbolic ONNX input dimension: --dim batch=8 (repeatable)."),
    device: Optional[str] = typer.Option(None, "--device", help="Where to count: meta (default), cpu or cuda."),
    examples: Optional[str] = typer.Option(None, "--examples", "-N", help="Training examples per epoch, e.g. 1.28M."),
    epochs: Optional[str] = typer.Option(None, "--epochs", "-E", help="Passes over the examples (default 1)."),
    flops_per_example: Optional[str] = typer.Option(None, "--flops-per-example", help="Forward FLOPs per example "
                                                    "(backward assumed 2x), e.g. 4.1G."),
    params: Optional[str] = typer.Option(None, "--params", help="Parameters N for 6ND, e.g. 175e9 or 175G."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens D for 6ND, e.g. 300e9 or 300G."),
    gpu: Optional[str] = typer.Option(None, "--gpu", "-g", help="GPU to estimate GPU time, energy and cost on."),
    precision: PrecisionOption = None,
    utilization: UtilizationOption = str(DEFAULT_UTILIZATION),
    num_gpus: NumGpusOption = "1",
    pue: str = typer.Option("1.0", "--pue", help="Data-centre power usage effectiveness for energy (>= 1; default 1.0)."),
    price_per_gpu_hour: Optional[str] = typer.Option(None, "--price-per-gpu-hour", help="Price of one GPU-hour, for cost."),
    catalog: CatalogOption = None,
    calibration: CalibrationOption = None,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead of stdout."),
) -> None:
    """Training compute = (forward + backward FLOPs per example) x examples x epochs, and its cost on GPUs."""
    from ..compute import fleet_estimate, training_from_forward, training_from_params_tokens
    from ..render.compute import render_training

    modes = [name for name, given in (("MODEL", model), ("--flops-per-example", flops_per_example),
                                      ("--params/--tokens", params or tokens)) if given]
    if len(modes) != 1:
        raise UsageError("no training size given" if not modes else f"{' and '.join(modes)} exclude each other",
                         MODES_HINT)
    n_examples, n_epochs = _number(examples, "--examples"), _number(epochs, "--epochs")
    if modes[0] == "--params/--tokens":
        if params is None or tokens is None:
            raise UsageError("6ND needs both --params and --tokens", MODES_HINT)
        if examples is not None or epochs is not None:
            raise UsageError("--examples/--epochs do not apply to --params/--tokens", "D counts every token trained on")
    elif n_examples is None:
        raise UsageError(f"{modes[0]} needs --examples N (training examples per epoch)", MODES_HINT)
    elif model is None and (input or batch_size or kwargs or device or seq_len or dim):
        raise UsageError("--input, --batch-size, --kwargs, --seq-len, --dim and --device need a MODEL to count")

    # Check the GPU options before counting: a typo should not cost a model run.
    fleet_options = None
    calibration_notes: tuple[str, ...] = ()
    if calibration is not None:
        throughput, tdp_w, calibration_notes = _calibrated(calibration, model, input, batch_size, kwargs, gpu,
                                                           precision, utilization, catalog)
    elif gpu is not None:
        spec = catalog_from_options(catalog).resolve(gpu)
        throughput, tdp_w = spec.datasheet_throughput(precision, parse_utilization(utilization)), spec.tdp_w
    elif precision or price_per_gpu_hour or num_gpus != "1" or utilization != str(DEFAULT_UTILIZATION):
        raise UsageError("--precision, --utilization, --num-gpus and --price-per-gpu-hour need --gpu NAME "
                         "(or --calibration FILE|auto)")
    if calibration is not None or gpu is not None:
        price = _number(price_per_gpu_hour, "--price-per-gpu-hour")
        fleet_options = dict(throughput=throughput, num_gpus=parse_num_gpus(num_gpus), tdp_w=tdp_w,
                             pue=parse_si_number(pue, "--pue"), price_per_gpu_hour=price)

    if modes[0] == "MODEL":
        training = _training_from_model(model, input, batch_size, kwargs, device, n_examples, n_epochs or 1, seq_len,
                                        dim)
    elif modes[0] == "--flops-per-example":
        training = training_from_forward(parse_si_number(flops_per_example, "--flops-per-example"), n_examples,
                                         n_epochs or 1)
    else:
        training = training_from_params_tokens(parse_si_number(params, "--params"), parse_si_number(tokens, "--tokens"))

    if calibration_notes:
        training = replace(training, notes=tuple(training.notes) + calibration_notes)
    fleet = None if fleet_options is None else fleet_estimate(training.training_flops, **fleet_options)
    emit(render_training(training, fleet, fmt.value, source=model or ""), output)
