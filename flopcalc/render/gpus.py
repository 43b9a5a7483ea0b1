"""Rendering catalogue entries (`flopcalc gpus list` / `gpus show`): table, json, csv, markdown."""

from __future__ import annotations

from collections.abc import Sequence

from ..catalog import Accelerator
from ..files import to_json
from ..units import PRECISIONS, format_number
from .tabular import csv_text, markdown_text, table_text

_LIST_HEADERS = (
    "id",
    "name",
    "vendor",
    "year",
    "fp32 TFLOPS",
    "16-bit TFLOPS",
    "fp8 TFLOPS",
    "memory GiB",
    "TDP W",
    "int8 TOPS",
    "memory GB/s",
)
_LIST_RIGHT = (3, 4, 5, 6, 7, 8, 9, 10)
_DENSE_NOTE = (
    "TFLOPS are dense peaks (int8 in TOPS); 16-bit = the default precision (bf16, or fp16 where faster); "
    "CPUs: one socket, memory GiB = the most it takes."
)


def _tflops(spec: Accelerator, precision: str) -> str:
    value = spec.peak_tflops.get(precision)
    return "" if value is None else format_number(value)


def _maybe(value: float | None) -> str:
    return "" if value is None else format_number(value)


def _sixteen_bit(spec: Accelerator) -> str:
    precision = spec.default_precision()
    if precision not in ("bf16", "fp16"):
        return ""
    return f"{format_number(spec.peak_tflops[precision])} {precision}"


def _list_row(spec: Accelerator) -> list[str]:
    return [
        spec.id,
        spec.name,
        spec.vendor,
        "" if spec.year is None else str(spec.year),
        _tflops(spec, "fp32"),
        _sixteen_bit(spec),
        _tflops(spec, "fp8"),
        _maybe(spec.memory_gb),
        _maybe(spec.tdp_w),
        _tflops(spec, "int8"),
        _maybe(spec.memory_bandwidth_gbps),
    ]


def render_list(specs: Sequence[Accelerator], fmt: str) -> str:
    if fmt == "json":
        return to_json([spec.to_dict() for spec in specs])
    rows = [_list_row(spec) for spec in specs]
    if fmt == "csv":
        return csv_text(_LIST_HEADERS, rows)
    footer = [_DENSE_NOTE, f"{len(specs)} entries; `flopcalc gpus show ID` for all figures and sources."]
    if fmt == "markdown":
        return markdown_text(_LIST_HEADERS, rows, right=_LIST_RIGHT, footer=footer)
    return table_text(_LIST_HEADERS, rows, right=_LIST_RIGHT, footer=footer, width=180)


def _peak_rows(spec: Accelerator) -> list[list[str]]:
    rows = []
    for precision in PRECISIONS:
        dense = spec.peak_tflops.get(precision)
        if dense is None:
            continue
        unit = "TOPS" if precision == "int8" else "TFLOPS"
        sparse = spec.sparse_peak_tflops.get(precision)
        text = f"{format_number(dense)} {unit} dense"
        if sparse is not None:
            text += f" ({format_number(sparse)} with 2:4 sparsity)"
        formula = spec.peak_formula(precision)
        if formula:
            text += f" = {formula}"
        rows.append([f"peak {precision}", text])
    return rows


def _per_cycle_rows(spec: Accelerator) -> list[list[str]]:
    """How each CPU core group's FLOP per cycle follows from its vector or matrix units."""
    rows = []
    for group in spec.core_groups:
        who = f"{group.name} core" if group.name else "per core"
        for precision in PRECISIONS:
            if precision in group.flop_per_cycle:
                unit = "ops" if precision == "int8" else "FLOP"
                rows.append(
                    [
                        f"{precision} {unit}/cycle ({who})",
                        f"{format_number(group.flop_per_cycle[precision])}: {group.how[precision]}",
                    ]
                )
    return rows


def _bandwidth(spec: Accelerator) -> str:
    if spec.memory_bandwidth_gbps is None:
        return ""
    formula = spec.bandwidth_formula()
    return f"{format_number(spec.memory_bandwidth_gbps)} GB/s" + (f" = {formula}" if formula else "")


def _show_rows(spec: Accelerator) -> list[list[str]]:
    rows = [
        ["id", spec.id],
        ["name", spec.name],
        ["vendor", spec.vendor],
        ["kind", spec.kind],
        ["aliases", ", ".join(spec.aliases)],
        ["year", "" if spec.year is None else str(spec.year)],
        ["form factor", spec.form_factor or ""],
        ["cores", " + ".join(f"{g.cores} {g.name}" if g.name else str(g.cores) for g in spec.core_groups)],
        *_peak_rows(spec),
        *_per_cycle_rows(spec),
        ["default precision", spec.default_precision()],
        ["memory", "" if spec.memory_gb is None else f"{format_number(spec.memory_gb)} GiB"],
        ["memory bandwidth", _bandwidth(spec)],
        ["TDP", "" if spec.tdp_w is None else f"{format_number(spec.tdp_w)} W"],
        ["intra-node link", "" if spec.intra_node_link is None else spec.intra_node_link.describe()],
        ["host link", "" if spec.host_link is None else spec.host_link.describe()],
        *[["source", url] for url in spec.sources],
        ["notes", spec.notes or ""],
        ["catalogue file", spec.origin],
    ]
    return [row for row in rows if row[1]]


def render_show(spec: Accelerator, fmt: str) -> str:
    if fmt == "json":
        return to_json(spec.to_dict())
    rows = _show_rows(spec)
    if fmt == "csv":
        return csv_text(("field", "value"), rows)
    if fmt == "markdown":
        return markdown_text(("field", "value"), rows, title=[f"## {spec.name}"])
    return table_text(("field", "value"), rows, show_header=False)
