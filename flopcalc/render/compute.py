"""Rendering conversions (`flopcalc convert`) and training estimates (`flopcalc train`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..compute import Conversion, FleetEstimate, Throughput, TrainingCompute
from ..emissions import DEFAULT_PUE, PUE_DEFAULT_SOURCE, TDP_ENERGY_NOTE, GridIntensity
from ..files import to_json
from ..units import PETAFLOP, PF_DAY_FLOP, format_duration, format_number, format_si
from .tabular import csv_text, markdown_text, table_text

if TYPE_CHECKING:
    from ..conventions import ConventionsTable
    from ..thresholds import Threshold
    from ..units import ComputeQuantity

_RIGHT = (1,)


def _gpus(n: int) -> str:
    return f"{n:,} GPU" + ("" if n == 1 else "s")


def throughput_line(throughput: Throughput) -> str:
    return (
        f"{throughput.gpu}, {throughput.precision}: peak {format_number(throughput.peak_flops / 1e12)} TFLOP/s "
        f"({throughput.origin}) x utilization {format_number(throughput.utilization)} = "
        f"{format_number(throughput.sustained_flops / 1e12)} TFLOP/s sustained per GPU"
    )


def _fleet_rows(fleet: FleetEstimate) -> list[list[str]]:
    rows = [
        ["GPU-hours", format_number(fleet.gpu_hours), ""],
        ["GPU-days", format_number(fleet.gpu_days), ""],
        [
            "wall clock",
            format_number(fleet.wall_clock_hours),
            f"hours = {format_number(fleet.wall_clock_days)} days on {_gpus(fleet.num_gpus)}: "
            f"{format_duration(fleet.wall_clock_hours * 3600)}",
        ],
    ]
    if fleet.energy_kwh is not None:
        rows.append(
            [
                "energy",
                format_number(fleet.energy_kwh),
                f"kWh = TDP {format_number(fleet.tdp_w)} W x GPU-hours x PUE {format_number(fleet.pue)} "
                "(an upper estimate from board power)",
            ]
        )
    if fleet.emissions_kg_co2e is not None and fleet.grid is not None:
        rows.append(
            [
                "emissions",
                format_number(fleet.emissions_kg_co2e),
                f"kg CO2e = kWh x {format_number(fleet.grid.g_co2e_per_kwh)} gCO2e/kWh / 1000",
            ]
        )
    if fleet.cost is not None:
        rows.append(
            ["cost", format_number(fleet.cost), f"= GPU-hours x {format_number(fleet.price_per_gpu_hour)} per GPU-hour"]
        )
    return rows


def _fleet_notes(fleet: FleetEstimate, *, energy: bool) -> list[str]:
    notes = [throughput_line(fleet.throughput)]
    if (energy or fleet.grid is not None) and fleet.energy_kwh is None:
        notes.append(
            f"energy: no TDP in the catalogue for {fleet.throughput.gpu}, so no energy estimate"
            + (" and no emissions" if fleet.grid is not None else "")
        )
    notes.extend(energy_notes(fleet.energy_kwh is not None, fleet.pue, fleet.grid))
    return notes


def energy_notes(energy: bool, pue: float, grid: GridIntensity | None) -> list[str]:
    """What an energy figure rests on: board power, the PUE's default, the grid's intensity and its source."""
    if not energy:
        return []
    notes = [TDP_ENERGY_NOTE]
    if pue == DEFAULT_PUE:
        notes.append(PUE_DEFAULT_SOURCE)
    if grid is not None:
        notes.append(f"grid intensity: {grid.describe()}")
    return notes


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{inner}": v for inner, v in value.items()})
        elif isinstance(value, list):
            flat[key] = "; ".join(map(str, value))
        else:
            flat[key] = value
    return flat


def _emit(fmt: str, data: dict[str, Any], rows: Sequence[Sequence[str]], title: list[str], footer: list[str]) -> str:
    if fmt == "json":
        return to_json(data)
    if fmt == "csv":
        flat = _flatten(data)
        return csv_text(list(flat), [list(flat.values())])
    headers = ("quantity", "value", "")
    if fmt == "markdown":
        return markdown_text(headers, rows, right=_RIGHT, title=title, footer=footer)
    return table_text(headers, rows, right=_RIGHT, title=title, footer=footer, show_header=False)


def _with_thresholds(data: dict[str, Any], footer: list[str], total: float, thresholds: Sequence[Threshold]) -> None:
    """A note per threshold crossed, and their ids under `thresholds_crossed` (only when one is)."""
    if thresholds:
        data["thresholds_crossed"] = [threshold.id for threshold in thresholds]
        footer.extend(threshold.note(total) for threshold in thresholds)


def _convention_rows(table: ConventionsTable) -> tuple[list[list[str]], list[str]]:
    """Rows of FLOPs per token, counted and by each formula; and the footer lines saying how each differs."""
    counted = table.counted_per_token
    rows = [
        ["FLOP per token", "", f"T = {table.seq_len:,} tokens per sequence; forward + backward"],
        [
            "counted (flopcalc)",
            format_number(round(counted)),
            f"matmul {format_si(table.counted_products_per_token)} + attention "
            f"{format_si(table.counted_attention_per_token)} + other {format_si(table.counted_other_per_token)}",
        ],
    ]
    footer = [
        f"FLOP conventions for a transformer with L = {table.shape.layers}, H = {table.shape.heads}, "
        f"Q = {table.shape.head_dim} (from {table.shape.source}), T = {table.seq_len}:"
    ]
    for convention in table.conventions:
        ratio = f"{convention.flops_per_token / counted:.3f} x counted" if counted else ""
        rows.append([convention.name, format_number(convention.flops_per_token), f"{ratio}; {convention.source}"])
        footer.append(f"{convention.name} = {convention.formula}: " + "; ".join(convention.differences))
    return rows, footer


def render_conversion(conversion: Conversion, fmt: str, thresholds: Sequence[Threshold] = ()) -> str:
    """All forms of one amount of compute; csv is one header row (the JSON keys) and one value row."""
    rows = [
        ["FLOP", format_number(conversion.flop), format_si(conversion.flop, "FLOP")],
        ["PetaFLOP", format_number(conversion.petaflop), ""],
        ["PetaFLOP-days", format_number(conversion.petaflop_days), "1 PF-day = 1e15 FLOP/s x 86,400 s"],
        *_fleet_rows(conversion.fleet),
    ]
    title = [f"{conversion.quantity.text} on {_gpus(conversion.fleet.num_gpus)}"]
    data, footer = conversion.to_dict(), _fleet_notes(conversion.fleet, energy=False)
    _with_thresholds(data, footer, conversion.flop, thresholds)
    return _emit(fmt, data, rows, title, footer)


def render_flop_amount(quantity: ComputeQuantity, flop: float, fmt: str, thresholds: Sequence[Threshold] = ()) -> str:
    """FLOP <-> PF-days with no GPU: the forms that need no throughput; JSON keeps `convert`'s keys for them."""
    data: dict[str, Any] = {
        "input": {"text": quantity.text, "value": quantity.value, "unit": quantity.unit},
        "flop": flop,
        "petaflop": flop / PETAFLOP,
        "petaflop_days": flop / PF_DAY_FLOP,
    }
    rows = [
        ["FLOP", format_number(flop), format_si(flop, "FLOP")],
        ["PetaFLOP", format_number(data["petaflop"]), ""],
        ["PetaFLOP-days", format_number(data["petaflop_days"]), "1 PF-day = 1e15 FLOP/s x 86,400 s"],
    ]
    footer = ["GPU-days, GPU-hours and wall clock need --gpu NAME (or --calibration FILE|auto)"]
    _with_thresholds(data, footer, flop, thresholds)
    return _emit(fmt, data, rows, [quantity.text], footer)


def training_dict(training: TrainingCompute, fleet: FleetEstimate | None) -> dict[str, Any]:
    """The `train --format json` contract: training compute, plus GPU time, energy and cost with --gpu."""
    data = training.to_dict()
    if fleet is not None:
        data.update({k: v for k, v in fleet.to_dict().items()})
    return data


@dataclass(frozen=True)
class TrainingTable:
    """What every format of `train` draws from: the table's rows, its title and footer, and the JSON object."""

    rows: list[list[str]]
    title: list[str]
    footer: list[str]
    data: dict[str, Any]


def render_training(
    training: TrainingCompute,
    fleet: FleetEstimate | None,
    fmt: str,
    source: str = "",
    conventions: ConventionsTable | None = None,
    thresholds: Sequence[Threshold] = (),
    adapters: Mapping[str, Any] | None = None,
) -> str:
    """`adapters`: an AdapterSummary's dict (LoRA fine-tuning), shown and put under "adapters" in JSON."""
    table = training_table(training, fleet, source, conventions, thresholds, adapters)
    data = table.data if fmt == "json" else {k: v for k, v in table.data.items() if k != "conventions"}
    return _emit(fmt, data, table.rows, table.title, table.footer)


def training_table(
    training: TrainingCompute,
    fleet: FleetEstimate | None,
    source: str = "",
    conventions: ConventionsTable | None = None,
    thresholds: Sequence[Threshold] = (),
    adapters: Mapping[str, Any] | None = None,
) -> TrainingTable:
    """The rows, title, footer and JSON object of `train` (the JSON holds the conventions when they are given)."""
    unit = training.example_unit
    rows = []
    if adapters is not None:
        rows += [
            ["parameters", f"{adapters['params']:,}", format_si(float(adapters["params"]))],
            [
                "trainable parameters",
                f"{adapters['trainable_params']:,}",
                f"{adapters['trainable_params'] / adapters['params']:.3%}",
            ],
        ]
    rows += [
        [
            f"forward per {unit}",
            format_number(training.forward_flops_per_example),
            format_si(float(training.forward_flops_per_example), "FLOP"),
        ],
        [
            f"backward per {unit}",
            format_number(training.backward_flops_per_example),
            format_si(float(training.backward_flops_per_example), "FLOP"),
        ],
        [f"{unit}s", format_number(training.examples), ""],
        ["epochs", format_number(training.epochs), ""],
    ]
    if training.teacher_passes:
        rows.append(
            [
                f"teacher forward per {unit}",
                format_number(training.teacher_forward_flops_per_example),
                f"{format_si(float(training.teacher_forward_flops_per_example), 'FLOP')} x "
                f"{training.teacher_passes:g} pass{'es' if training.teacher_passes != 1 else ''}",
            ]
        )
    rows += [
        ["training FLOP", format_number(training.training_flops), format_si(training.training_flops, "FLOP")],
        ["PetaFLOP-days", format_number(training.petaflop_days), ""],
    ]
    footer = list(training.notes)
    if fleet is not None:
        rows.extend(_fleet_rows(fleet))
        footer = _fleet_notes(fleet, energy=True) + footer
    title = [f"training compute ({training.method})" + (f": {source}" if source else "")]
    data = training_dict(training, fleet)
    if adapters is not None:
        data["adapters"] = dict(adapters)
    _with_thresholds(data, footer, training.training_flops, thresholds)
    if conventions is not None:
        convention_rows, convention_notes = _convention_rows(conventions)
        rows.extend(convention_rows)
        footer.extend(convention_notes)
        data["conventions"] = conventions.to_dict()
    return TrainingTable(rows, title, footer, data)
