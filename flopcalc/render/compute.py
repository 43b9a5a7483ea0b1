"""Rendering conversions (`flopcalc convert`) and training estimates (`flopcalc train`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..compute import Conversion, FleetEstimate, Throughput, TrainingCompute
from ..units import PETAFLOP, PF_DAY_FLOP, format_duration, format_number, format_si
from ..files import to_json
from .tabular import csv_text, markdown_text, table_text

if TYPE_CHECKING:
    from ..units import ComputeQuantity
    from ..conventions import ConventionsTable
    from ..thresholds import Threshold

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
        ["wall clock", format_number(fleet.wall_clock_hours),
         f"hours = {format_number(fleet.wall_clock_days)} days on {_gpus(fleet.num_gpus)}: "
         f"{format_duration(fleet.wall_clock_hours * 3600)}"],
    ]
    if fleet.energy_kwh is not None:
        rows.append(["energy", format_number(fleet.energy_kwh),
                     f"kWh = TDP {format_number(fleet.tdp_w)} W x GPU-hours x PUE {format_number(fleet.pue)}"])
    if fleet.cost is not None:
        rows.append(["cost", format_number(fleet.cost),
                     f"= GPU-hours x {format_number(fleet.price_per_gpu_hour)} per GPU-hour"])
    return rows


def _fleet_notes(fleet: FleetEstimate, *, energy: bool) -> list[str]:
    notes = [throughput_line(fleet.throughput)]
    if energy and fleet.energy_kwh is None:
        notes.append(f"energy: no TDP in the catalogue for {fleet.throughput.gpu}, so no energy estimate")
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


def _with_thresholds(data: dict[str, Any], footer: list[str], total: float,
                     thresholds: Sequence["Threshold"]) -> None:
    """A note per threshold crossed, and their ids under `thresholds_crossed` (only when one is)."""
    if thresholds:
        data["thresholds_crossed"] = [threshold.id for threshold in thresholds]
        footer.extend(threshold.note(total) for threshold in thresholds)


def _convention_rows(table: "ConventionsTable") -> tuple[list[list[str]], list[str]]:
    """Rows of FLOPs per token, counted and by each formula; and the footer lines saying how each differs."""
    counted = table.counted_per_token
    rows = [["FLOP per token", "", f"T = {table.seq_len:,} tokens per sequence; forward + backward"],
            ["counted (flopcalc)", format_number(round(counted)),
             f"matmul {format_si(table.counted_products_per_token)} + attention "
             f"{format_si(table.counted_attention_per_token)} + other {format_si(table.counted_other_per_token)}"]]
    footer = [f"FLOP conventions for a transformer with L = {table.shape.layers}, H = {table.shape.heads}, "
              f"Q = {table.shape.head_dim} (from {table.shape.source}), T = {table.seq_len}:"]
    for convention in table.conventions:
        ratio = f"{convention.flops_per_token / counted:.3f} x counted" if counted else ""
        rows.append([convention.name, format_number(convention.flops_per_token), f"{ratio}; {convention.source}"])
        footer.append(f"{convention.name} = {convention.formula}: " + "; ".join(convention.differences))
    return rows, footer


def render_conversion(conversion: Conversion, fmt: str, thresholds: Sequence["Threshold"] = ()) -> str:
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


def render_flop_amount(quantity: "ComputeQuantity", flop: float, fmt: str,
                       thresholds: Sequence["Threshold"] = ()) -> str:
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


def training_dict(training: TrainingCompute, fleet: Optional[FleetEstimate]) -> dict[str, Any]:
    """The `train --format json` contract: training compute, plus GPU time, energy and cost with --gpu."""
    data = training.to_dict()
    if fleet is not None:
        data.update({k: v for k, v in fleet.to_dict().items()})
    return data


def render_training(training: TrainingCompute, fleet: Optional[FleetEstimate], fmt: str, source: str = "",
                    conventions: Optional["ConventionsTable"] = None, thresholds: Sequence["Threshold"] = ()) -> str:
    unit = training.example_unit
    rows = [
        [f"forward per {unit}", format_number(training.forward_flops_per_example),
         format_si(float(training.forward_flops_per_example), "FLOP")],
        [f"backward per {unit}", format_number(training.backward_flops_per_example),
         format_si(float(training.backward_flops_per_example), "FLOP")],
        [f"{unit}s", format_number(training.examples), ""],
        ["epochs", format_number(training.epochs), ""],
        ["training FLOP", format_number(training.training_flops), format_si(training.training_flops, "FLOP")],
        ["PetaFLOP-days", format_number(training.petaflop_days), ""],
    ]
    footer = list(training.notes)
    if fleet is not None:
        rows.extend(_fleet_rows(fleet))
        footer = _fleet_notes(fleet, energy=True) + footer
    title = [f"training compute ({training.method})" + (f": {source}" if source else "")]
    data = training_dict(training, fleet)
    _with_thresholds(data, footer, training.training_flops, thresholds)
    if conventions is not None:
        convention_rows, convention_notes = _convention_rows(conventions)
        rows.extend(convention_rows)
        footer.extend(convention_notes)
        if fmt == "json":
            data["conventions"] = conventions.to_dict()
    return _emit(fmt, data, rows, title, footer)
