"""Emissions of a run's energy: kg CO2e = kWh (GPUs' board power x hours) x PUE x the grid's gCO2e/kWh / 1000,
with the grid's intensity given, or read per country from a shipped, sourced and dated yearly table
(flopcalc/data/grid_intensity.yaml). Kept apart so train, convert and plan state one rule and one default."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import CatalogError, UsageError
from .files import read_yaml

DEFAULT_PUE = 1.0
PUE_DEFAULT_SOURCE = (
    "PUE 1.0 (the default) counts the GPUs alone; the Uptime Institute Global Data Center Survey "
    "2024 puts the average data centre at 1.56: give --pue for yours"
)
TDP_ENERGY_NOTE = (
    "energy is an upper estimate from board power: every GPU drawing its TDP for the whole run (CPUs, "
    "memory and network not counted)"
)
MAX_INTENSITY = 10_000.0  # gCO2e/kWh; the dirtiest grids run near 1,000


@dataclass(frozen=True)
class GridIntensity:
    """Grams of CO2e per kWh of the grid that feeds the run, and where the figure came from."""

    g_co2e_per_kwh: float
    source: str
    region: str | None = None
    year: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"g_co2e_per_kwh": self.g_co2e_per_kwh, "region": self.region, "year": self.year, "source": self.source}

    def describe(self) -> str:
        where = f"{self.region} {self.year}: " if self.region else ""
        return f"{where}{self.g_co2e_per_kwh:g} gCO2e/kWh ({self.source})"


def grid_intensity_table_path() -> Path:
    return Path(str(resources.files("flopcalc") / "data" / "grid_intensity.yaml"))


def grid_intensities() -> dict[str, GridIntensity]:
    """The shipped table, by upper-case region code."""
    path = grid_intensity_table_path()
    data = read_yaml(path, CatalogError, "the grid intensity table")
    table = {}
    for row in data["regions"]:
        code = str(row["code"]).upper()
        table[code] = GridIntensity(float(row["g_co2e_per_kwh"]), str(row["source"]), code, int(row["year"]))
    return table


def grid_intensity(g_co2e_per_kwh: float | None = None, region: str | None = None) -> GridIntensity | None:
    """The intensity given (`--grid-intensity`), or the table's for `region` (`--region`); None for neither."""
    if g_co2e_per_kwh is not None and region is not None:
        raise UsageError(
            "--grid-intensity and --region exclude each other",
            "give the grid's gCO2e/kWh, or a region code whose yearly figure flopcalc ships",
        )
    if g_co2e_per_kwh is not None:
        if (
            isinstance(g_co2e_per_kwh, bool)
            or not isinstance(g_co2e_per_kwh, (int, float))
            or not math.isfinite(g_co2e_per_kwh)
            or not 0 <= g_co2e_per_kwh <= MAX_INTENSITY
        ):
            raise UsageError(
                f"--grid-intensity must be gCO2e/kWh from 0 to {MAX_INTENSITY:,.0f}, got {g_co2e_per_kwh!r}",
                "e.g. --grid-intensity 381 (Germany, 2023)",
            )
        return GridIntensity(float(g_co2e_per_kwh), "--grid-intensity")
    if region is None:
        return None
    table = grid_intensities()
    code = region.strip().upper()
    if code not in table:
        raise UsageError(
            f"--region {region!r} is not in the grid intensity table",
            f"use one of {', '.join(sorted(table))}, or give --grid-intensity gCO2e/kWh",
        )
    return table[code]


def emissions_kg(energy_kwh: Fraction | float, intensity: GridIntensity) -> float:
    """kg CO2e = kWh (PUE included) x gCO2e/kWh / 1000, exact on Fractions."""
    return float(Fraction(energy_kwh) * Fraction(intensity.g_co2e_per_kwh) / 1000)
