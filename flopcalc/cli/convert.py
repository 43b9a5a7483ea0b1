"""`flopcalc convert QUANTITY --gpu NAME`: FLOP <-> PetaFLOP-days <-> GPU-days/hours and wall clock. No torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
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


@app.command("convert")
def convert_command(
    quantity: str = typer.Argument(..., help="A number and a unit: '3.14e23 flop', '1.5 zflop', '93.75 pf-days', "
                                             "'2500 gpu-days', '60000 gpu-hours'."),
    gpu: Optional[str] = typer.Option(None, "--gpu", "-g", help="GPU id, alias or torch.cuda.get_device_name() string "
                                                            "(optional with --calibration)."),
    precision: PrecisionOption = None,
    utilization: UtilizationOption = str(DEFAULT_UTILIZATION),
    num_gpus: NumGpusOption = "1",
    catalog: CatalogOption = None,
    calibration: CalibrationOption = None,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead of stdout."),
) -> None:
    """Print one amount of compute as FLOP, PetaFLOP, PF-days, GPU-days, GPU-hours and wall clock on K GPUs."""
    from ..compute import convert
    from ..render.compute import render_conversion
    from ..units import parse_compute_quantity

    parsed = parse_compute_quantity(quantity)
    if calibration is not None:
        from ..bench.calibration import calibrated_throughput, load_calibration

        throughput, _ = calibrated_throughput(
            load_calibration(calibration), device_name=gpu, precision=precision,
            utilization=parse_utilization(utilization), catalog=catalog_from_options(catalog) if gpu else None,
        )
    elif gpu is None:
        raise UsageError("convert needs --gpu NAME (or --calibration FILE|auto)", "e.g. --gpu H100-SXM")
    else:
        throughput = catalog_from_options(catalog).resolve(gpu).datasheet_throughput(
            precision, parse_utilization(utilization)
        )
    emit(render_conversion(convert(parsed, throughput, parse_num_gpus(num_gpus)), fmt.value), output)
