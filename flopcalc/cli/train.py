"""`flopcalc train`: training compute from a model file, from FLOPs per example, or from 6ND; with --gpu,
GPU-hours, GPU-days, wall clock, energy and cost. torch loads only when a model file is counted."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import typer

from ..compute import check_run_size
from ..errors import UsageError
from ..units import parse_si_number
from ._app import app, emit
from ._options import (
    BatchSizeOption,
    CalibrationOption,
    CatalogOption,
    DecoderSeqLenOption,
    DeviceOption,
    DimOption,
    FormatOption,
    GpuOption,
    InputOption,
    KwargsOption,
    NumGpusOption,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    SeqLenOption,
    UtilizationOption,
    model_spec,
    no_model_options,
    existing_model,
    parse_num_gpus,
    parse_utilization,
)

MODES_HINT = ("give a MODEL file with --examples, or --flops-per-example F with --examples, "
              "or --params N (--active-params N for a mixture of experts) with --tokens D")


def _number(text: Optional[str], flag: str) -> Optional[float]:
    return None if text is None else parse_si_number(text, flag)


@app.command("train")
def train_command(
    model: Optional[str] = typer.Argument(None, metavar="MODEL", callback=existing_model, help="Model to count: file.py:callable, file.py, .pt, .pt2, .onnx, "
                                                    "config.json (or use --flops-per-example, or --params with --tokens)."),
    input: InputOption = [],
    batch_size: BatchSizeOption = None,
    kwargs: KwargsOption = None,
    seq_len: SeqLenOption = None,
    decoder_seq_len: DecoderSeqLenOption = None,
    dim: DimOption = [],
    device: DeviceOption = None,
    examples: Optional[str] = typer.Option(None, "--examples", "-N", metavar="N", help="Training examples per epoch, e.g. 1.28M."),
    epochs: Optional[str] = typer.Option(None, "--epochs", "-E", metavar="N", help="Passes over the examples (default 1)."),
    flops_per_example: Optional[str] = typer.Option(None, "--flops-per-example", metavar="FLOP", help="Forward FLOPs per example "
                                                    "(backward assumed 2x), e.g. 4.1G."),
    params: Optional[str] = typer.Option(None, "--params", metavar="N", help="Parameters N for 6ND, e.g. 175e9 or 175G."),
    active_params: Optional[str] = typer.Option(None, "--active-params", metavar="N", help="Active parameters N for 6ND of a "
                                                "mixture of experts (the top-k experts a token runs through plus "
                                                "everything else, e.g. 12.9G for Mixtral-8x7B); instead of --params."),
    tokens: Optional[str] = typer.Option(None, "--tokens", metavar="N", help="Training tokens D for 6ND, e.g. 300e9 or 300G."),
    gpu: GpuOption = None,
    precision: PrecisionOption = None,
    utilization: UtilizationOption = None,
    num_gpus: NumGpusOption = "1",
    pue: str = typer.Option("1.0", "--pue", metavar="PUE", help="Data-centre power usage effectiveness for energy (>= 1; default 1.0)."),
    price_per_gpu_hour: Optional[str] = typer.Option(None, "--price-per-gpu-hour", metavar="PRICE", help="Price of one GPU-hour, for cost."),
    catalog: CatalogOption = None,
    calibration: CalibrationOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Training compute = (forward + backward FLOPs per example) x examples x epochs, and its cost on GPUs."""
    from ..api import count_spec, training
    from ..calibration import choose_throughput
    from ..compute import fleet_estimate, training_from_forward, training_from_params_tokens
    from ..conventions import conventions_for
    from ..render.compute import render_training
    from ..thresholds import crossed

    if params is not None and active_params is not None:
        raise UsageError("--params and --active-params exclude each other",
                         "give the total with --params, or a mixture of experts' active parameters with --active-params")
    modes = [name for name, given in (("MODEL", model), ("--flops-per-example", flops_per_example),
                                      ("--params/--tokens", params or active_params or tokens)) if given]
    if len(modes) != 1:
        raise UsageError("no training size given" if not modes else f"{' and '.join(modes)} exclude each other",
                         MODES_HINT)
    n_examples = _number(examples, "--examples")
    n_epochs = 1 if epochs is None else _number(epochs, "--epochs")  # `--epochs 0` is refused, never read as 1
    if modes[0] == "--params/--tokens":
        if (params is None and active_params is None) or tokens is None:
            raise UsageError("6ND needs --params (or --active-params) and --tokens", MODES_HINT)
        if examples is not None or epochs is not None:
            raise UsageError("--examples/--epochs do not apply to --params/--tokens", "D counts every token trained on")
    elif n_examples is None:
        raise UsageError(f"{modes[0]} needs --examples N (training examples per epoch)", MODES_HINT)
    else:
        check_run_size(n_examples, n_epochs)  # before a model is counted: a typo should not cost a count
    spec = None
    if model is not None:
        spec = model_spec(model, input, batch_size, seq_len, dim, kwargs, device, decoder_seq_len=decoder_seq_len)
    else:
        no_model_options("count", input=input, batch_size=batch_size, kwargs=kwargs, seq_len=seq_len,
                         decoder_seq_len=decoder_seq_len, dim=dim, device=device)

    # Check the GPU options before counting: a typo should not cost a model run.
    choice = None
    if calibration is not None or gpu is not None:
        choice = choose_throughput(gpu=gpu, precision=precision, utilization=parse_utilization(utilization),
                                   calibration=calibration, catalogs=catalog or (),
                                   model_key=spec.key() if spec is not None else None)
        fleet_options = dict(throughput=choice.throughput, num_gpus=parse_num_gpus(num_gpus), tdp_w=choice.tdp_w,
                             pue=parse_si_number(pue, "--pue"),
                             price_per_gpu_hour=_number(price_per_gpu_hour, "--price-per-gpu-hour"))
    elif precision or price_per_gpu_hour or num_gpus != "1" or utilization is not None:
        raise UsageError("--precision, --utilization, --num-gpus and --price-per-gpu-hour need --gpu NAME "
                         "(or --calibration FILE|auto)")

    conventions = None
    if spec is not None:
        report = count_spec(spec)
        result = training(report, n_examples, n_epochs)
        conventions = conventions_for(report)
    elif modes[0] == "--flops-per-example":
        result = training_from_forward(parse_si_number(flops_per_example, "--flops-per-example"), n_examples,
                                       n_epochs)
    else:
        flag, n = ("--params", params) if params is not None else ("--active-params", active_params)
        result = training_from_params_tokens(parse_si_number(n, flag), parse_si_number(tokens, "--tokens"),
                                             active=flag == "--active-params")

    if choice is not None and choice.notes:
        result = replace(result, notes=tuple(result.notes) + choice.notes)
    fleet = None if choice is None else fleet_estimate(result.training_flops, **fleet_options)
    emit(render_training(result, fleet, fmt.value, source=model or "", conventions=conventions,
                         thresholds=crossed(result.training_flops)), output)
