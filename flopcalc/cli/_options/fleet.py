"""The GPU options: the catalogue, the GPU and its precision, utilization, calibration, fleet size and the
grid intensity emissions are priced at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ...catalog import most_common_variant
from ...compute import check_utilization
from ...emissions import GridIntensity
from ...emissions import grid_intensity as resolve_grid
from ...errors import UsageError
from ...units import parse_fraction, parse_si_number
from .params import ReadBack, number, text_option

__all__ = [
    "SMALLEST_UTILIZATION",
    "CalibrationOption",
    "CatalogOption",
    "GpuOption",
    "GpuOptions",
    "GridIntensityOption",
    "NumGpusOption",
    "PrecisionOption",
    "PriceOption",
    "PueOption",
    "RegionOption",
    "UtilizationOption",
    "chosen_throughput",
    "common_variant",
    "parse_grid",
    "parse_num_gpus",
    "parse_utilization",
]

CatalogOption = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--catalog",
        metavar="FILE",
        help="Extra GPU catalogue YAML file or folder, merged over the shipped one (repeatable; "
        "also $FLOPCALC_GPU_SPECS).",
    ),
]
PrecisionOption = text_option(
    "--precision",
    "-p",
    metavar="PRECISION",
    help="fp64, fp32, tf32, bf16, fp16, fp8, fp4 or int8. Default: the GPU's "
    "fastest dense 16-bit tensor precision (bf16, or fp16 where faster).",
)
UtilizationOption = text_option(
    "--utilization",
    "-u",
    metavar="FRACTION",
    help="Fraction of peak sustained, in (0, 1]: 0.3 or 30%. Default 0.3, "
    "Epoch AI's recommendation for language models (0.4 for others).",
)
CalibrationOption = text_option(
    "--calibration",
    metavar="FILE|auto",
    help="Use measured throughput from `flopcalc bench --save` (a FILE, or 'auto' for "
    "the default file) instead of the datasheet: utilization is then a fraction of "
    "measured, and --gpu is optional.",
)
GridIntensityOption = text_option(
    "--grid-intensity",
    metavar="G",
    help="Carbon intensity of the grid in gCO2e/kWh, for kg CO2e = kWh x PUE x G / 1000 (or --region).",
)
RegionOption = text_option(
    "--region",
    metavar="CODE",
    help="Country code (DE, FR, IN, WORLD...) whose yearly grid intensity "
    "flopcalc ships (sourced and dated; docs/conversions.md), for kg CO2e.",
)
NumGpusOption = Annotated[
    str, typer.Option("--num-gpus", "-n", metavar="N", help="GPUs sharing the work (wall clock = GPU-hours / this).")
]

PueOption = Annotated[
    str,
    typer.Option(
        "--pue",
        metavar="PUE",
        help="Data-centre power usage effectiveness for energy (>= 1; default 1.0: the GPUs alone; Uptime Institute's 2024 average is 1.56).",
    ),
]
PriceOption = text_option("--price-per-gpu-hour", metavar="PRICE", help="Price of one GPU-hour, for cost.")


def common_variant(name: Optional[str]) -> Optional[str]:
    """`V100`, `nvidia a100`, `H100` -> the family's most common variant's id (catalog.most_common_variant),
    with its note on stderr; any other name unchanged."""
    if name is None:
        return None
    variant = most_common_variant(name)
    if variant is None:
        return name
    chosen, others = variant
    typer.echo(
        f"flopcalc: note: {name.strip()} taken as {chosen}, its most common variant; "
        f"the others are {', '.join(others)} (pass one of these ids to --gpu)",
        err=True,
    )
    return chosen


GpuOption = text_option(
    "--gpu",
    "-g",
    metavar="NAME",
    callback=common_variant,
    help="GPU id, alias or torch.cuda.get_device_name() string (optional with --calibration); "
    "a bare V100, A100 or H100 means V100-SXM2, A100-SXM4-80GB, H100-SXM.",
)


# No run sustains less than 0.01% of peak; a smaller figure is a typo, and one of 1e-300 overflows a duration.
SMALLEST_UTILIZATION = 1e-4


def parse_utilization(text: Optional[str]) -> Optional[float]:
    """`0.3` or `30%` -> 0.3; None stays None (the library's default applies, and says so)."""
    if text is None:
        return None
    utilization = check_utilization(parse_fraction(text, "--utilization"))
    if utilization < SMALLEST_UTILIZATION:
        raise UsageError(
            f"--utilization {text!r} is below {SMALLEST_UTILIZATION:g} (0.01%)",
            "give a fraction of peak in [0.0001, 1], e.g. 0.3 or 30%",
        )
    return utilization


def parse_num_gpus(text: str) -> int:
    value = parse_si_number(text, "--num-gpus")
    if value < 1 or value != int(value):
        raise UsageError(f"--num-gpus must be a whole number >= 1, got {text!r}")
    return int(value)


def parse_grid(grid_intensity: str | None, region: str | None) -> GridIntensity | None:
    """--grid-intensity G (gCO2e/kWh) or --region CODE, as the grid intensity emissions are priced at."""
    return resolve_grid(number(grid_intensity, "--grid-intensity"), region)


def chosen_throughput(
    gpu: Optional[str],
    precision: Optional[str],
    utilization: Optional[str],
    calibration: Optional[str],
    catalog: Optional[list[Path]],
    **more: Any,
) -> Any:
    """The GPU throughput the GPU options choose (calibration.choose_throughput), --utilization parsed and no
    --catalog meaning the shipped one alone; `more` holds what a command adds (the model's key, the sparse peak)."""
    from ...calibration import choose_throughput  # read when a command runs: --help and parsing stay quick

    return choose_throughput(
        gpu=gpu,
        precision=precision,
        utilization=parse_utilization(utilization),
        calibration=calibration,
        catalogs=catalog or (),
        **more,
    )


@dataclass(frozen=True)
class GpuOptions(ReadBack):
    """The GPU options as the command received them: the throughput they choose, the fleet's size, its energy
    and price. The fields are the options' declarations, in the order --help lists them."""

    gpu: GpuOption = None
    precision: PrecisionOption = None
    utilization: UtilizationOption = None
    num_gpus: NumGpusOption = "1"
    pue: PueOption = "1.0"
    grid_intensity: GridIntensityOption = None
    region: RegionOption = None
    price_per_gpu_hour: PriceOption = None
    catalog: CatalogOption = None
    calibration: CalibrationOption = None

    def throughput(self, **more: Any) -> Any:
        """The GPU throughput these options choose (chosen_throughput); `more` as there."""
        return chosen_throughput(self.gpu, self.precision, self.utilization, self.calibration, self.catalog, **more)

    def grid(self) -> GridIntensity | None:
        return parse_grid(self.grid_intensity, self.region)

    def pue_value(self) -> float:
        """--pue as a number."""
        return parse_si_number(self.pue, "--pue")

    def price(self) -> Optional[float]:
        """--price-per-gpu-hour as a number, None when not given."""
        return number(self.price_per_gpu_hour, "--price-per-gpu-hour")

    def need_a_gpu(self) -> bool:
        """Whether --precision, --utilization, --num-gpus or --price-per-gpu-hour was given: each needs a GPU
        (--gpu or --calibration), which the command refuses in its own words."""
        return bool(self.precision or self.price_per_gpu_hour or self.num_gpus != "1" or self.utilization is not None)
