"""`flopcalc optimal --compute C | --params N | --tokens D`: compute-optimal size under named fits. No torch."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import typer

from ..errors import UsageError
from ..units import parse_compute_quantity, parse_si_number
from ._app import app, emit
from ._options import (
    FormatOption,
    GpuOptions,
    OutputFormat,
    OutputOption,
    common_variant,
    number,
    parse_num_gpus,
    with_options,
)


def _compute_quantity(text: Optional[str]):
    """A bare number is FLOP; otherwise a quantity as `convert` takes it (GPU-days need a GPU)."""
    if text is None:
        return None
    try:
        parse_si_number(text, "--compute")
    except UsageError:
        return parse_compute_quantity(text)
    return parse_compute_quantity(f"{text} flop")


@app.command("optimal")
@with_options(GpuOptions, without=("pue", "grid_intensity", "region"), after="tokens")
def optimal_command(
    ctx: typer.Context,
    compute: Optional[str] = typer.Option(
        None,
        "--compute",
        "-C",
        metavar="C",
        help="Compute budget: FLOP (5.76e23) or a quantity as convert takes it "
        "('93.75 pf-days', '2500 gpu-days' with --gpu).",
    ),
    params: Optional[str] = typer.Option(
        None, "--params", metavar="N", help="Parameters: the tokens that make N optimal."
    ),
    tokens: Optional[str] = typer.Option(
        None, "--tokens", metavar="D", help="Tokens: the parameters that make D optimal."
    ),
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Compute-optimal parameters and tokens under Hoffmann et al. 2022, Besiroglu et al. 2024 and 20 tokens per
    parameter, side by side, with the predicted loss; with --gpu, the time and cost of each run."""
    from ..compute import fleet_estimate, quantity_to_flop
    from ..optimal import optimal
    from ..render.optimal import render_optimal

    if fmt is OutputFormat.csv:
        raise UsageError("optimal has no csv output", "use --format table, json or markdown")
    quantity = _compute_quantity(compute)
    gpu = GpuOptions.of(ctx)
    if quantity is not None and quantity.gpu and gpu.gpu is None and gpu.calibration is None:
        gpu = replace(gpu, gpu=common_variant(quantity.gpu))  # '2500 V100-days' names its GPU
    choice = None
    if gpu.gpu is not None or gpu.calibration is not None:
        choice = gpu.throughput()
    elif gpu.need_a_gpu():
        raise UsageError(
            "--precision, --utilization, --num-gpus and --price-per-gpu-hour need --gpu NAME "
            "(or --calibration FILE|auto)"
        )
    result = optimal(
        compute=None if quantity is None else float(quantity_to_flop(quantity, choice and choice.throughput)),
        params=number(params, "--params"),
        tokens=number(tokens, "--tokens"),
    )
    fleets = None
    if choice is not None:
        price = gpu.price()
        fleets = [
            fleet_estimate(
                c.compute, choice.throughput, parse_num_gpus(gpu.num_gpus), tdp_w=choice.tdp_w, price_per_gpu_hour=price
            )
            for c in result.choices
        ]
    emit(render_optimal(result, fmt.value, fleets), output)
