"""`flopcalc convert QUANTITY [--gpu NAME]`: FLOP <-> PetaFLOP-days <-> GPU-days/hours and wall clock. No torch."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import UsageError
from ..units import parse_compute_quantity
from ._app import app, emit
from ._options import (
    CalibrationOption,
    CatalogOption,
    FormatOption,
    GpuOption,
    GridIntensityOption,
    NumGpusOption,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    RegionOption,
    UtilizationOption,
    chosen_throughput,
    number,
    parse_grid,
    parse_num_gpus,
)


@app.command("convert")
def convert_command(
    quantity: str = typer.Argument(
        ...,
        metavar="QUANTITY",
        help="A number and a unit: '3.14e23 flop', '1.5 zflop', '93.75 pf-days', "
        "'2500 gpu-days', '60000 gpu-hours', or a GPU's: '2500 V100-days', "
        "'3 H100-hours'.",
    ),
    gpu: GpuOption = None,
    precision: PrecisionOption = None,
    utilization: UtilizationOption = None,
    num_gpus: NumGpusOption = "1",
    pue: Optional[str] = typer.Option(
        None,
        "--pue",
        metavar="PUE",
        help="Data-centre power usage effectiveness: adds the energy (TDP x GPU-hours x PUE; >= 1).",
    ),
    grid_intensity: GridIntensityOption = None,
    region: RegionOption = None,
    catalog: CatalogOption = None,
    calibration: CalibrationOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Print one amount of compute as FLOP, PetaFLOP, PF-days, GPU-days, GPU-hours and wall clock on K GPUs.

    FLOP and PF-days convert into each other without a GPU; '2500 V100-days' names its GPU in the unit."""
    from ..compute import convert, quantity_to_flop
    from ..render.compute import render_conversion, render_flop_amount
    from ..thresholds import crossed
    from ._options import common_variant

    parsed = parse_compute_quantity(quantity)
    if parsed.gpu:
        named = common_variant(parsed.gpu)
        if gpu is not None and not _same_gpu(named, gpu, catalog or ()):
            raise UsageError(
                f"{quantity!r} names the GPU {parsed.gpu} but --gpu says {gpu}",
                "drop --gpu, or write the quantity in gpu-days",
            )
        gpu = gpu or named
    grid = parse_grid(grid_intensity, region)
    pue_value = number(pue, "--pue")
    if gpu is None and calibration is None:
        if (
            parsed.unit in ("flop", "pf_days")
            and utilization is None
            and num_gpus == "1"
            and pue is None
            and grid is None
        ):
            flop = float(quantity_to_flop(parsed))
            emit(render_flop_amount(parsed, flop, fmt.value, crossed(flop)), output)
            return
        raise UsageError(
            f"{parsed.unit.replace('_', '-')} to time needs --gpu NAME (or --calibration FILE|auto)",
            "e.g. --gpu H100-SXM, or a GPU in the unit: '2500 V100-days'",
        )
    choice = chosen_throughput(gpu, precision, utilization, calibration, catalog)
    conversion = convert(
        parsed, choice.throughput, parse_num_gpus(num_gpus), tdp_w=choice.tdp_w, pue=pue_value, grid=grid
    )
    emit(render_conversion(conversion, fmt.value, crossed(conversion.flop)), output)


def _same_gpu(first: str, second: str, catalogs) -> bool:
    """Whether two names resolve to one catalogue entry (an unknown name is the catalogue's error, exit 2)."""
    from ..catalog import load_catalog

    catalog = load_catalog(tuple(catalogs))
    return catalog.resolve(first).id == catalog.resolve(second).id
