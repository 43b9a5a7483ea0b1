"""Rendering `flopcalc bench` results: a rich table, JSON (the documented contract), CSV, markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..files import to_json
from .charts import sparkline
from .tabular import csv_text, markdown_text, table_text

if TYPE_CHECKING:
    from ..bench.fleet import FleetBenchResult
    from ..bench.matmul import MatmulBenchResult
    from ..bench.model import ModelBenchResult

MATMUL_COLUMNS = ("precision", "median TFLOPS", "best TFLOPS", "spread", "shape m x n x k", "peak TFLOPS", "of peak")
MODEL_COLUMNS = ("quantity", "value")


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _duration(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def matmul_rows(result: MatmulBenchResult) -> list[list[str]]:
    rows = []
    for item in result.results:
        peak = item.peak_flops / 1e12 if item.peak_flops else None
        estimated = result.info.device == "cpu" and item.peak_source.startswith("estimate")
        peak_text = _num(peak) + (" (est.)" if peak is not None and estimated else "")
        rows.append(
            [
                item.precision,
                _num(item.median_tflops),
                _num(item.best_tflops),
                f"{item.headline.spread_pct:.1f}%",
                " x ".join(map(str, item.headline.shape)),
                peak_text,
                _pct(item.fraction_of_peak),
            ]
        )
    return rows


def _matmul_footer(result: MatmulBenchResult) -> list[str]:
    lines = []
    for item in result.results:
        lines.append(f"{item.precision} peak: {item.peak_source}")
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"warning: {warning}" for warning in result.warnings]
    lines.append(
        f"timed for {result.seconds_used:.1f} s (budget {result.seconds_budget:g} s); median = best per-shape median"
    )
    for precision, rates in result.profile.precisions.items() if result.profile else ():
        best_gbps = max(gbps for _, gbps in rates.memory)
        lines.append(
            f"{precision} device profile: {len(rates.matmul)} GEMM shapes "
            f"({min(p[3] for p in rates.matmul):.3g}-{max(p[3] for p in rates.matmul):.3g} TFLOPS), copy up to "
            f"{best_gbps:.3g} GB/s, {len(rates.convolution)} convolutions, "
            f"{rates.step_op_us['forward']:.3g}/{rates.step_op_us['backward']:.3g}/"
            f"{rates.step_op_us['optimizer']:.3g} us per op beyond its kernel (forward/backward/optimizer; "
            "docs/calibration.md)"
        )
    if result.calibration_file:
        lines.append(f"calibration saved to {result.calibration_file}")
    return lines


def sweep_sparkline_lines(result: MatmulBenchResult) -> list[str]:
    """A terminal's chart: each precision's median TFLOPS over the square sizes, smallest first, as a sparkline
    scaled to its own best (the rectangular LLM-like shapes are not a size series and are left out)."""
    ladders = {}
    for item in result.results:
        squares = sorted((t for t in item.timings if t.kind == "square"), key=lambda t: t.shape[0])
        if len(squares) > 1:
            ladders[item.precision] = squares
    if not ladders:
        return []
    label, width = max(map(len, ladders)), max(map(len, ladders.values()))
    lines = ["median TFLOPS over the square sizes, one character a size, smallest first (each to its own best):"]
    for precision, squares in ladders.items():
        rates = [t.median_tflops for t in squares]
        lines.append(
            f"  {precision:<{label}}  {sparkline(rates):<{width}}  {squares[0].shape[0]} .. {squares[-1].shape[0]}: "
            f"{_num(min(rates))} .. {_num(max(rates))} TFLOPS"
        )
    return lines


def _matmul_title(result: MatmulBenchResult) -> str:
    info = result.info
    extra = f", {info.threads} threads" if info.threads else ""
    if info.cuda_version:
        extra += f", CUDA {info.cuda_version}"
    if info.hip_version:
        extra += f", ROCm/HIP {info.hip_version}"
    return f"Matmul throughput on {info.device_name} ({info.device}, torch {info.torch_version}{extra})"


def model_rows(result: ModelBenchResult) -> list[list[str]]:
    from ..units import format_si

    rows = [
        ["model", result.model],
        ["inputs", ", ".join(result.inputs) or "the model's example inputs"],
        ["precision / optimizer", f"{result.precision} / {result.optimizer}"],
        [
            "FLOPs per step (fwd + bwd)",
            f"{format_si(result.flops_per_step, 'FLOP')} "
            f"({format_si(result.forward_flops, 'FLOP')} + {format_si(result.backward_flops, 'FLOP')})",
        ],
        [
            "step time (median)",
            f"{_duration(result.median_step_seconds)} over {len(result.step_seconds)} steps "
            f"(best {_duration(min(result.step_seconds))})",
        ],
        ["achieved", f"{result.achieved_flops / 1e12:.4g} TFLOPS"],
        ["peak", f"{_num(result.peak_flops / 1e12 if result.peak_flops else None)} TFLOPS ({result.peak_source})"],
        ["MFU (of peak)", _pct(result.mfu)],
        [
            "measured matmul",
            f"{result.measured_matmul_flops / 1e12:.4g} TFLOPS"
            if result.measured_matmul_flops
            else "- (no calibration)",
        ],
        ["of measured matmul", _pct(result.fraction_of_measured)],
    ]
    prediction = result.prediction
    if prediction is not None:
        phases = " + ".join(
            _duration(prediction.phase_seconds(phase)) for phase in ("forward", "backward", "optimizer")
        )
        rows += [
            ["step time (predicted)", f"{_duration(prediction.seconds)} (forward + backward + optimizer: {phases})"],
            ["prediction error", f"{result.prediction_error:+.1%} (measured / predicted - 1)"],
            ["predicted from", result.prediction_source or "-"],
        ]
    return rows


def _model_footer(result: ModelBenchResult) -> list[str]:
    lines = [f"note: {note}" for note in result.notes]
    lines += [f"warning: {warning}" for warning in result.warnings]
    if result.calibration_file:
        lines.append(f"saved to {result.calibration_file} as {result.key!r}")
    return lines


def _model_title(result: ModelBenchResult) -> str:
    info = result.info
    return f"Training-step throughput on {info.device_name} ({info.device}, torch {info.torch_version})"


MATMUL_CSV_COLUMNS = (
    "precision",
    "median_tflops",
    "best_tflops",
    "spread_pct",
    "m",
    "n",
    "k",
    "peak_tflops",
    "fraction_of_peak",
)


def _matmul_csv_rows(data: dict) -> tuple[Sequence[str], list[list]]:
    rows = [
        [
            r["precision"],
            r["median_tflops"],
            r["best_tflops"],
            r["spread_pct"],
            *r["shape"],
            r["peak_tflops"],
            r["fraction_of_peak"],
        ]
        for r in data["results"]
    ]
    return MATMUL_CSV_COLUMNS, rows


def _model_csv_rows(data: dict) -> tuple[Sequence[str], list[list]]:
    """Key, raw value pairs of the JSON contract (lists joined with ';')."""
    rows = [[key, ";".join(map(str, value)) if isinstance(value, list) else value] for key, value in data.items()]
    return ("key", "value"), rows


def _render(
    fmt: str, data: dict, title: str, columns: Sequence[str], rows: list[list[str]], footer: list[str], csv_rows
) -> str:
    right = tuple(range(1, len(columns))) if columns is MATMUL_COLUMNS else ()  # figures right, text left
    if fmt == "json":
        return to_json(data)
    if fmt == "csv":  # raw numbers, not the table's rounded text
        return csv_text(*csv_rows(data))
    if fmt == "markdown":
        return markdown_text(
            columns, rows, right=right, title=[f"**{title}**"], footer=[f"- {line}" for line in footer]
        )
    return table_text(columns, rows, right=right, title=[title], footer=footer)


def render_matmul(result: MatmulBenchResult, fmt: str, terminal: bool = False) -> str:
    """The matmul bench in `fmt` (table, json, csv, markdown); json is the documented contract. A table on a
    `terminal` (the CLI tells) has a sparkline of TFLOPS over the sizes under it."""
    charts = sweep_sparkline_lines(result) if terminal and fmt == "table" else []
    return _render(
        fmt,
        result.to_dict(),
        _matmul_title(result),
        MATMUL_COLUMNS,
        matmul_rows(result),
        charts + [""] * bool(charts) + _matmul_footer(result),
        _matmul_csv_rows,
    )


def render_model(result: ModelBenchResult, fmt: str) -> str:
    """The model bench in `fmt` (table, json, csv, markdown); json is the documented contract."""
    return _render(
        fmt,
        result.to_dict(),
        _model_title(result),
        MODEL_COLUMNS,
        model_rows(result),
        _model_footer(result),
        _model_csv_rows,
    )


# --- the fleet: `flopcalc bench --distributed` ---------------------------------------------------------

FLEET_RANK_LIMIT = 32  # more ranks than this: the table shows the summary, JSON every rank
FLEET_COLUMNS = ("scope", "collective", "ranks", "size", "time", "algbw GB/s", "busbw GB/s")
FLEET_CSV_COLUMNS = ("scope", "op", "ranks", "groups", "bytes", "iterations", "time_s", "algbw_gbps", "busbw_gbps")


def _op_time(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} us" if seconds < 1e-3 else _duration(seconds)


def fleet_rows(result: FleetBenchResult) -> list[list[str]]:
    from ..units import format_bytes

    rows = []
    for item in (*result.collectives, *result.p2p):
        ranks = f"{item.ranks}" if item.groups == 1 else f"{item.ranks} x {item.groups} groups"
        rows.append(
            [
                item.scope,
                item.op,
                ranks,
                format_bytes(item.bytes),
                _op_time(item.time_s),
                f"{item.algbw_gbps:.4g}",
                f"{item.busbw_gbps:.4g}",
            ]
        )
    return rows


def fleet_rank_table(result: FleetBenchResult) -> tuple[list[str], list[list[str]]]:
    precisions = list(result.matmul_summary())
    headers = ["rank", "host", "local rank", *[f"{p} TFLOPS" for p in precisions]]
    rows = [
        [str(r.rank), r.host, str(r.local_rank), *[_num(r.tflops.get(p)) for p in precisions]] for r in result.per_rank
    ]
    return headers, rows


def fleet_title(result: FleetBenchResult) -> str:
    nodes = f"{result.nodes} node{'s' if result.nodes > 1 else ''} x {result.ranks_per_node}"
    return (
        f"Fleet of {result.world_size} ranks ({nodes}) of {result.device_name} "
        f"({result.backend}, {result.device}, torch {result.torch_version})"
    )


def fleet_footer(result: FleetBenchResult) -> list[str]:
    from ..units import format_bytes

    lines = []
    for precision, item in result.matmul_summary().items():
        lines.append(
            f"matmul {precision}: min {_num(item['min_tflops'])} / median {_num(item['median_tflops'])} / max "
            f"{_num(item['max_tflops'])} TFLOPS over {item['ranks']} ranks; slowest: rank {item['slowest_rank']} "
            f"on host {item['slowest_host']}"
        )
    for scope, ops in result.headline_busbw().items():
        figures = ", ".join(f"{op} {value:.4g}" for op, value in ops.items())
        size = format_bytes(max(result.headline(scope, op).bytes for op in ops))
        lines.append(f"busbw {scope} (largest message, {size}): {figures} GB/s")
    p2p = result.headline("world", "sendrecv")
    if p2p:
        lines.append(f"send/recv ring ({format_bytes(p2p.bytes)}): {p2p.busbw_gbps:.4g} GB/s per rank")
    if result.world_size > FLEET_RANK_LIMIT:
        lines.append(f"per-rank matmul figures of all {result.world_size} ranks: --format json")
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"warning: {warning}" for warning in result.warnings]
    lines.append(
        "GB/s = 1e9 bytes/s; busbw as nccl-tests (all_reduce algbw x 2(n-1)/n, all_gather/reduce_scatter x (n-1)/n); "
        f"time = the slowest rank's, per operation; timed for {result.seconds_used:.1f} s, "
        f"--timeout {result.timeout_s:g} s"
    )
    if result.calibration_file:
        lines.append(f"calibration saved to {result.calibration_file} as {result.key!r}")
    return lines


def render_fleet(result: FleetBenchResult, fmt: str) -> str:
    """The fleet bench in `fmt` (table, json, csv, markdown); json is the documented contract, csv the
    collectives' raw figures (one row per scope, collective and size; send/recv as op `sendrecv`)."""
    data = result.to_dict()
    if fmt == "json":
        return to_json(data)
    if fmt == "csv":
        rows = [[item[key] for key in FLEET_CSV_COLUMNS] for item in (*data["collectives"], *data["p2p"]["results"])]
        return csv_text(FLEET_CSV_COLUMNS, rows)
    title, footer = fleet_title(result), fleet_footer(result)
    rank_headers, rank_rows = fleet_rank_table(result)
    show_ranks = result.world_size <= FLEET_RANK_LIMIT and len(rank_headers) > 3
    right = tuple(range(2, len(FLEET_COLUMNS)))
    rank_right = tuple(range(2, len(rank_headers)))
    if fmt == "markdown":
        ranks = markdown_text(rank_headers, rank_rows, right=rank_right) + "\n" if show_ranks else ""
        collectives = markdown_text(
            FLEET_COLUMNS, fleet_rows(result), right=right, footer=[f"- {item}" for item in footer]
        )
        return f"**{title}**\n\n" + ranks + collectives
    ranks = table_text(rank_headers, rank_rows, right=rank_right) + "\n" if show_ranks else ""
    return f"{title}\n\n" + ranks + table_text(FLEET_COLUMNS, fleet_rows(result), right=right, footer=footer)
