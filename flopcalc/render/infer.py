"""Rendering an InferResult (`flopcalc infer`): table, json, csv (one row per layer), markdown."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..files import to_json
from ..infer import InferResult, LayerBound
from ..units import format_number, format_si
from .charts import COMMUNICATION_MARK, COMPUTE_MARK, MEMORY_MARK, time_strip
from .tabular import csv_text, markdown_text, table_text

_LAYER_HEADERS = ("Layer", "Type", "Count", "FLOPs", "Bytes", "FLOP/byte", "Bound", "Time", "Share")
STRIP_WIDTH = 60  # characters for the whole time of a pass (or of a request)
_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)")


def seconds(value: float | None) -> str:
    """`0.00664` -> `6.64 ms`: three significant digits in s, ms, us, ns or ps."""
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(value) >= scale * 0.9995:
            return f"{format_si(value / scale)} {unit}"
    return f"{format_si(value / 1e-12)} ps"


def _rate(value: float | None) -> str:
    return "-" if value is None else format_si(value)


def folded_layers(layers: Sequence[LayerBound]) -> list[dict[str, Any]]:
    """Layers of repeated blocks folded into one row each: layers whose names differ only in indices
    (`model.layers.3.mlp` -> `model.layers.*.mlp`) and that have the same type, FLOPs and bytes, summed, in the
    order they first ran. A row is compute-bound when its compute-bound layers take at least half its time."""
    rows: dict[tuple, dict[str, Any]] = {}
    for layer in layers:
        name = _INDEX.sub("*", layer.name) if layer.name else "(model)"
        row = rows.setdefault(
            (name, layer.type, layer.flops, layer.bytes),
            {
                "name": name,
                "first": layer.name or "(model)",
                "type": layer.type,
                "count": 0,
                "flops": 0.0,
                "bytes": 0.0,
                "time_s": 0.0,
                "compute_s": 0.0,
            },
        )
        row["count"] += 1
        row["flops"] += layer.flops
        row["bytes"] += layer.bytes
        row["time_s"] += layer.time_s
        row["compute_s"] += layer.time_s if layer.bound == "compute" else 0.0
    for row in rows.values():
        if row["count"] == 1:  # nothing folded: its own name
            row["name"] = row["first"]
        row["bound"] = "compute" if row["compute_s"] >= row["time_s"] - row["compute_s"] else "memory"
    return list(rows.values())


def _layer_rows(result: InferResult) -> list[list[str]]:
    total_time = sum(layer.time_s for layer in result.layers)
    rows = [
        [
            row["name"],
            row["type"],
            str(row["count"]),
            format_si(row["flops"]),
            format_si(row["bytes"], "B"),
            "-" if not row["bytes"] else format_number(row["flops"] / row["bytes"], 3),
            row["bound"],
            seconds(row["time_s"]),
            f"{100 * row['time_s'] / total_time:.1f}%" if total_time else "-",
        ]
        for row in folded_layers(result.layers)
    ]
    flops = sum(layer.flops for layer in result.layers)
    moved = sum(layer.bytes for layer in result.layers)
    rows.append(
        [
            "total",
            "",
            str(len(result.layers)),
            format_si(flops),
            format_si(moved, "B"),
            format_number(flops / moved, 3) if moved else "-",
            "",
            seconds(total_time),
            "100%",
        ]
    )
    return rows


def _batch_headers(result: InferResult) -> list[str]:
    if result.decode is None:
        return ["Batch", "Latency", "Throughput/s", "Bound", "Memory", "Fits"]
    return [
        "Batch",
        "TTFT",
        "Time/token",
        "Tokens/s/seq",
        "Tokens/s",
        "Request",
        "Bound prefill/decode",
        "KV cache",
        "Memory",
        "Fits",
    ]


def _batch_rows(result: InferResult) -> list[list[str]]:
    rows = []
    for batch in result.batches:
        fits = "-" if batch.fits is None else ("yes" if batch.fits else "no")
        if result.decode is None:
            rows.append(
                [
                    str(batch.batch_size),
                    seconds(batch.latency_s),
                    _rate(batch.throughput_per_s),
                    batch.bound,
                    format_si(batch.memory_bytes, "B"),
                    fits,
                ]
            )
        else:
            rows.append(
                [
                    str(batch.batch_size),
                    seconds(batch.ttft_s),
                    seconds(batch.time_per_token_s),
                    _rate(1 / batch.time_per_token_s),
                    _rate(batch.tokens_per_s),
                    seconds(batch.latency_s),
                    f"{batch.prefill_bound}/{batch.decode_bound}",
                    format_si(batch.kv_cache_bytes or 0, "B"),
                    format_si(batch.memory_bytes, "B"),
                    fits,
                ]
            )
    return rows


def _header_lines(result: InferResult) -> list[str]:
    gpu, p = result.hardware, result.precisions
    memory = "" if gpu.memory_bytes is None else f", memory {format_si(gpu.memory_bytes, 'B')}"
    sizes = ", ".join(f"{dtype} {format_si(size, 'B')}" for dtype, size in result.weights_bytes_by_dtype.items())
    what = "serving bounds" if gpu.profile is None else "serving predictions"
    return [
        f"{result.model} on {gpu.gpu}: {what} (FLOPs: 1 multiply-add = 2 FLOPs)",
        f"GPU: peak {format_number(gpu.peak_flops / 1e12)} TFLOP/s {gpu.precision} ({gpu.peak_origin}), "
        f"bandwidth {format_number(gpu.bandwidth / 1e9)} GB/s{memory}",
        _times_line(result),
        f"precisions: activations {p.activations}, compute {p.compute}, weights {p.weights}, KV cache {p.kv_cache}",
        f"weights: {format_si(result.params)} parameters, {format_si(result.weights_bytes, 'B')} in {p.weights} "
        f"(model size: {sizes})",
    ]


def _times_line(result: InferResult) -> str:
    """What the times are: roofline bounds, or predictions on a device profile."""
    profile = result.hardware.profile
    if profile is None:
        return (
            "times: roofline bounds (each layer at 100% of the peak and of the bandwidth: lower bounds; a "
            "device profile file as --calibration predicts them instead)"
        )
    return (
        f"times: predictions on the {profile.device} device profile ({result.hardware.profile_origin}): "
        "FLOPs and bytes at the efficiency of their size"
    )


def _summary_lines(result: InferResult) -> list[str]:
    what = "decode steps are" if result.decode is not None else "the forward is"
    if result.compute_bound_from_batch is not None:
        lines = [
            f"{what} compute-bound from batch {result.compute_bound_from_batch} (FLOPs and activation bytes "
            "grow with the batch, weight bytes do not)"
        ]
    else:
        lines = [f"{what} memory-bound at every batch size: the bytes that grow with the batch outweigh its FLOPs"]
    if result.prefill is not None and result.decode is not None:
        pre, dec = result.prefill, result.decode
        at = ", ".join(
            f"{format_si(flops, 'FLOP')} at context {context}" for context, flops in dec.flops_per_token_at_context
        )
        at_least, at_most = (">= ", "<= ") if result.hardware.profile is None else ("~", "~")
        lines += [
            f"prefill (batch {pre.batch_size}, {pre.tokens} tokens): {format_si(pre.flops, 'FLOP')}, "
            f"{format_si(pre.bytes, 'B')} moved, time to first token {at_least}{seconds(pre.time_s)} ({pre.bound}-bound)",
            f"decode (batch {dec.batch_size}, {dec.tokens} tokens): per token {at}; "
            f"{format_si(dec.flops_total, 'FLOP')} in all; {at_least}{seconds(dec.time_per_token_s)} per token "
            f"({dec.bound}-bound), {at_most}{_rate(dec.tokens_per_s)} tokens/s",
            f"KV cache: {format_si(result.kv_cache_bytes_per_token or 0, 'B')} per token, "
            f"{format_si(result.kv_cache_bytes or 0, 'B')} for batch {dec.batch_size} at "
            f"{pre.tokens + dec.tokens} tokens",
        ]
    lines += _parallel_lines(result)
    if result.max_batch_that_fits is not None:
        per = " per replica (each GPU's share)" if result.parallel else ""
        lines.append(f"largest batch that fits in {result.hardware.gpu}'s memory{per}: {result.max_batch_that_fits:,}")
    return lines


def _parallel_lines(result: InferResult) -> list[str]:
    """Serving on several GPUs: the split, what one GPU holds, and each pass's communication."""
    par = result.parallel
    if not par:
        return []
    lines = [
        f"several GPUs: tp {par['tp']} x pp {par['pp']} = {par['gpus_per_replica']} GPUs per replica, "
        f"{par['replicas']} replica(s), {par['gpus']} GPUs; per GPU: weights "
        f"{format_si(par['weights_bytes_per_gpu'], 'B')}, KV cache "
        f"{format_si(par['kv_cache_bytes_per_token_per_gpu'], 'B')} per token "
        f"({format_number(par['kv_heads_per_gpu'])} KV heads per layer); times, FLOPs and bytes above are one "
        "replica's GPUs, stage after stage"
    ]
    if par["all_reduces_per_step"]:
        link = par["tensor_parallel_link"]
        lines.append(
            f"tensor parallel: {par['all_reduces_per_step']} all-reduces per pass on {link['scope']} "
            f"{format_number(link['gbps'])} GB/s + {format_number(link['latency_us'])} us per ring step; "
            f"decode: {format_si(par['all_reduce_bytes_decode'], 'B')} each, "
            f"{seconds(par['all_reduce_s_decode'])} each; prefill: "
            f"{format_si(par['all_reduce_bytes_prefill'], 'B')} each, {seconds(par['all_reduce_s_prefill'])}"
            " each"
        )
    if par["pipeline_sends_per_step"]:
        lines.append(
            f"pipeline: {par['pipeline_sends_per_step']} send(s) per pass "
            f"({par['pipeline_node_crossings']} across nodes), {seconds(par['pipeline_send_s_decode'])} "
            "per decode step"
        )
    if par["replicas"] > 1:
        rates = ", ".join(
            f"batch {row['batch_size']}: {_rate(row['tokens_per_s'])}" for row in par["tokens_per_s_all_replicas"]
        )
        lines.append(f"tokens/s over all {par['replicas']} replicas: {rates}")
    return lines


_MARKS = {"compute": COMPUTE_MARK, "memory": MEMORY_MARK, "communication": COMMUNICATION_MARK}


def _mark(bound: str) -> str:
    return _MARKS["compute" if bound == "compute" else "memory"]


def _strip_kind(layer: LayerBound) -> str:
    """compute or memory, or communication for a row that only moves data between GPUs (no FLOPs, no bytes)."""
    return "communication" if not layer.flops and not layer.bytes else layer.bound


def bound_strip_lines(result: InferResult, width: int = STRIP_WIDTH) -> list[str]:
    """A terminal's charts: the pass's time layer after layer, each cell marked by the bound of the layer
    running then, and with --prompt/--generate the request's prefill then decode on one time scale."""
    layers = [layer for layer in result.layers if layer.time_s > 0]
    total = sum(layer.time_s for layer in layers)
    if not total:
        return []
    time_by_kind = {kind: sum(layer.time_s for layer in layers if _strip_kind(layer) == kind) for kind in _MARKS}
    shown = [kind for kind, time in time_by_kind.items() if time or kind != "communication"]
    legend = ", ".join(f"{_MARKS[kind]} {kind}" + ("-bound" if kind != "communication" else "") for kind in shown)
    shares = ", ".join(f"{kind} {100 * time_by_kind[kind] / total:.1f}%" for kind in shown)
    gpu = result.hardware
    return [
        f"time of the {result.layers_pass}, layer after layer ({legend}; {width} characters = {seconds(total)}):",
        "  " + time_strip([(layer.time_s, _MARKS[_strip_kind(layer)]) for layer in layers], width),
        f"  share of the time: {shares}; ridge point {format_number(gpu.peak_flops / gpu.bandwidth, 3)} FLOP/byte "
        "(peak / bandwidth: a layer above it is compute-bound)",
    ] + _request_lines(result, width)


def _request_lines(result: InferResult, width: int) -> list[str]:
    """Prefill then decode as two bars on one time scale, each marked by its bound."""
    pre, dec = result.prefill, result.decode
    if pre is None or dec is None or pre.time_s + dec.time_total_s <= 0:
        return []
    split = time_strip([(pre.time_s, "p"), (dec.time_total_s, "d")], width)
    before = split.count("p")
    return [
        f"a request at batch {dec.batch_size} ({pre.tokens} tokens in, {dec.tokens} out; {width} characters = "
        f"{seconds(pre.time_s + dec.time_total_s)}):",
        f"  prefill  {_mark(pre.bound) * before:<{width}}  {seconds(pre.time_s)}",
        f"  decode   {' ' * before + _mark(dec.bound) * (width - before):<{width}}  {seconds(dec.time_total_s)}",
    ]


def _wide_table(*args: Any, **kwargs: Any) -> str:
    """A plain table wide enough for module paths and the header lines unbroken."""
    return table_text(*args, width=160, **kwargs)


def _sections(result: InferResult, table: Callable[..., str], charts: bool = False) -> str:
    layers = table(
        _LAYER_HEADERS,
        _layer_rows(result),
        right=(2, 3, 4, 5, 7, 8),
        title=_header_lines(result)
        + ["", f"Layers of the {result.layers_pass} (repeated blocks folded into one row: *)"],
    )
    batches = table(
        _batch_headers(result),
        _batch_rows(result),
        right=tuple(range(len(_batch_headers(result)))),
        title=["Batch sizes"],
        footer=_summary_lines(result) + [""] + list(result.notes),
    )
    strip_lines = bound_strip_lines(result) if charts else []
    strips = "\n".join(strip_lines) + "\n\n" if strip_lines else ""
    return layers + "\n" + strips + batches


def render_csv(result: InferResult) -> str:
    """One row per layer of the shown pass, every layer (nothing folded)."""
    headers = [
        "name",
        "type",
        "flops",
        "bytes",
        "weight_bytes",
        "activation_bytes",
        "kv_cache_bytes",
        "other_bytes",
        "intensity",
        "bound",
        "time_s",
    ]
    rows = []
    for layer in result.layers:
        data = layer.to_dict()
        kinds = data["bytes_by_kind"]
        rows.append(
            [
                data["name"],
                data["type"],
                data["flops"],
                data["bytes"],
                kinds["weights"],
                kinds["activations"],
                kinds["kv_cache"],
                kinds["other"],
                data["intensity"],
                data["bound"],
                data["time_s"],
            ]
        )
    return csv_text(headers, rows)


def render(result: InferResult, fmt: str, terminal: bool = False) -> str:
    """The result in `fmt`; a table on a `terminal` (the CLI tells) also draws each layer's bound as a strip."""
    if fmt == "json":
        return to_json(result.to_dict())
    if fmt == "csv":
        return render_csv(result)
    if fmt == "markdown":
        return _sections(result, markdown_text)
    return _sections(result, _wide_table, charts=terminal)
