"""Rendering `flopcalc optimal`: one row per fit, side by side, each with its source and coefficients."""

from __future__ import annotations

from collections.abc import Sequence

from ..compute import FleetEstimate
from ..files import to_json
from ..optimal import OptimalResult
from ..units import format_duration, format_number, format_si
from .compute import throughput_line
from .tabular import markdown_text, table_text

_HEADERS = ("fit", "params", "tokens", "tokens/param", "compute (6ND)", "predicted loss")


def render_optimal(result: OptimalResult, fmt: str, fleets: Sequence[FleetEstimate] | None = None) -> str:
    """`fleets` (one per fit, same order) adds the time and cost of each run on the GPUs given."""
    data = result.to_dict()
    if fleets is not None:
        for entry, fleet in zip(data["fits"], fleets):
            entry["run"] = fleet.to_dict()
    if fmt == "json":
        return to_json(data)
    headers = list(_HEADERS)
    rows = []
    for index, choice in enumerate(result.choices):
        loss = "" if choice.predicted_loss is None else f"{choice.predicted_loss:.4f}"
        row = [
            choice.name,
            format_si(choice.params),
            format_si(choice.tokens),
            format_number(round(choice.tokens / choice.params, 2)),
            format_si(choice.compute, "FLOP"),
            loss,
        ]
        if fleets is not None:
            fleet = fleets[index]
            row += [
                format_number(fleet.gpu_hours),
                format_duration(fleet.wall_clock_hours * 3600),
                "" if fleet.cost is None else format_number(fleet.cost),
            ]
        rows.append(row)
    if fleets is not None:
        headers += ["GPU-hours", "wall clock", "cost"]
    unit = "FLOP" if result.given == "compute" else ""
    title = [f"compute-optimal size for {result.given} {format_si(result.value, unit)}"]
    footer = []
    for choice in result.choices:
        coefficients = (
            ""
            if choice.coefficients is None
            else " L = E + A/N^alpha + B/D^beta: " + ", ".join(f"{k}={v:g}" for k, v in choice.coefficients.items())
        )
        footer.append(f"{choice.name}: {choice.source}.{coefficients}")
    if fleets:
        footer.append(throughput_line(fleets[0].throughput) + f", {fleets[0].num_gpus:,} GPU(s)")
    footer.extend(f"note: {note}" for note in result.notes)
    right = tuple(range(1, len(headers)))
    if fmt == "markdown":
        return markdown_text(headers, rows, right=right, title=title, footer=footer)
    return table_text(headers, rows, right=right, title=title, footer=footer)
