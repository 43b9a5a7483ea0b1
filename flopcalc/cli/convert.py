"""`flopcalc convert QUANTITY --gpu NAME`: FLOP <-> PetaFLOP-days <-> GPU-days/hours and wall clock. No torch."""

from __future__ import annotations


import typer

from ..errors import UsageError
from ._app import app, emit
from ._options import (
    CalibrationOption,
    CatalogOption,
    FormatOption,
    GpuOption,
    NumGpusOption,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    UtilizationOption,
    parse_num_gpus,
    parse_utilization,
)


@app.command("convert")
def convert_command(
    quantity: str = typer.Argument(..., help="A number and a unit: '3.14e23 flop', '1.5 zflop', '93.75 pf-days', "
                                             "'2500 gpu-days', '60000 gpu-hours'."),
    gpu: GpuOption = None,
    precision: PrecisionOption = None,
    utilization: UtilizationOption = None,
    num_gpus: NumGpusOption = "1",
    catalog: CatalogOption = None,
    calibration: CalibrationOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Print one amount of compute as FLOP, PetaFLOP, PF-days, GPU-days, GPU-hours and wall clock on K GPUs."""
    from ..calibration import choose_throughput
    from ..compute import convert
    from ..render.compute import render_conversion
    from ..thresholds import crossed
    from ..units import parse_compute_quantity

    parsed = parse_compute_quantity(quantity)
    if gpu is None and calibration is None:
        raise UsageError("convert needs --gpu NAME (or --calibration FILE|auto)", "e.g. --gpu H100-SXM")
    choice = choose_throughput(gpu=gpu, precision=precision, utilization=parse_utilization(utilization),
                               calibration=calibration, catalogs=catalog or ())
    conversion = convert(parsed, choice.throughput, parse_num_gpus(num_gpus))
    emit(render_conversion(conversion, fmt.value, crossed(conversion.flop)), output)
