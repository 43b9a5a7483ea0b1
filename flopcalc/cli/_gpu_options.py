"""Options shared by the commands that look GPUs up (gpus, convert, train), and the lookup itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..catalog import Catalog, load_catalog
from ..compute import DEFAULT_UTILIZATION, check_utilization
from ..errors import UsageError
from ..units import parse_fraction, parse_si_number

CatalogOption = Annotated[
    Optional[List[Path]],
    typer.Option("--catalog", help="Extra GPU catalogue YAML file or folder, merged over the shipped one (repeatable; "
                                   "also $FLOPCALC_GPU_SPECS)."),
]
PrecisionOption = Annotated[
    Optional[str],
    typer.Option("--precision", "-p", help="fp64, fp32, tf32, bf16, fp16, fp8, fp4 or int8. Default: the GPU's "
                                          "fastest dense 16-bit tensor precision (bf16, or fp16 where faster)."),
]
UtilizationOption = Annotated[
    str,
    typer.Option("--utilization", "-u", help="Fraction of peak sustained, in (0, 1]: 0.3 or 30%. Default 0.3, "
                                            "Epoch AI's recommendation for language models (0.4 for others)."),
]
CalibrationOption = Annotated[
    Optional[str],
    typer.Option("--calibration", help="Use measured throughput from `flopcalc bench --save` (a FILE, or 'auto' for "
                                       "the default file) instead of the datasheet; --utilization is then of measured "
                                       "and --gpu is optional."),
]
NumGpusOption = Annotated[str, typer.Option("--num-gpus", "-n", help="GPUs sharing the work (wall clock = GPU-hours / this).")]


def catalog_from_options(paths: Optional[List[Path]]) -> Catalog:
    return load_catalog(paths or ())


def parse_utilization(text: str) -> float:
    return check_utilization(parse_fraction(text, "--utilization"))


def parse_num_gpus(text: str) -> int:
    value = parse_si_number(text, "--num-gpus")
    if value < 1 or value != int(value):
        raise UsageError(f"--num-gpus must be a whole number >= 1, got {text!r}")
    return int(value)


__all__ = [
    "CalibrationOption", "CatalogOption", "PrecisionOption", "UtilizationOption", "NumGpusOption", "DEFAULT_UTILIZATION",
    "catalog_from_options", "parse_utilization", "parse_num_gpus",
]
