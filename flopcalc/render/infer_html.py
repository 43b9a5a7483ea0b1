"""`infer --format html`: is each layer compute- or memory-bound, and what a batch size costs, drawn from the same
InferResult the table comes from.

Three charts: a log-log roofline (the GPU's compute roof and memory slope at the peak and bandwidth the result
used; each layer a point at its FLOPs / bytes, one series per batch size, and with --prompt/--generate the
prefill and the decode marked), latency and throughput against batch size, and what one GPU holds (weights, KV
cache, activations) against its memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..infer import InferResult
from ..infer.bounds import scale_layer
from ..units import format_number, format_si
from . import colors
from .count_html import axis_scale
from .html import PAN_AND_ZOOM, Section, page_figure, render_page, require_bokeh
from .infer import seconds

ROOFLINE_NAME = "layers"  # the glyph renderers' names: the browser test reads their data through them
PHASE_NAME = "phases"
ROOF_NAME = "roof"
LATENCY_NAME = "latency"
THROUGHPUT_NAME = "throughput"
MEMORY_NAME = "memory"
_WEIGHTS, _KV_CACHE, _ACTIVATIONS = colors.BLUE, colors.ORANGE, colors.GREEN


def _layers_batch(result: InferResult) -> int:
    """The batch size the result's layers were counted at (the first one asked for)."""
    return result.batches[0].batch_size


def roofline_points(result: InferResult) -> dict[str, list[Any]]:
    """One point per layer that computes and moves bytes, per batch size: x its FLOPs / bytes, y its FLOPs / time.

    The result's layers are the pass at the first batch size; the others are the same layers grown as the
    library grows them (FLOPs and every byte but the weights' times the batch ratio)."""
    points: dict[str, list[Any]] = {k: [] for k in ("batch", "name", "type", "intensity", "flops_per_s", "bound")}
    base = _layers_batch(result)
    for batch in result.batches:
        for layer in result.layers:
            grown = layer if batch.batch_size == base else scale_layer(layer, batch.batch_size / base)
            if not (grown.flops and grown.bytes and grown.time_s):
                continue  # no place on a log-log chart: nothing computed or nothing moved
            points["batch"].append(batch.batch_size)
            points["name"].append(layer.name or "(model)")
            points["type"].append(layer.type)
            points["intensity"].append(grown.flops / grown.bytes)
            points["flops_per_s"].append(grown.flops / grown.time_s)
            points["bound"].append(grown.bound)
    return points


def phase_points(result: InferResult) -> dict[str, list[Any]]:
    """The prefill and the decode of a generation as whole passes: FLOPs / bytes against FLOPs / time.

    The decode is its mean step: the steps are linear in the context between the first and the last counted,
    so the mean step moves the mean of those two steps' bytes."""
    points: dict[str, list[Any]] = {"phase": [], "intensity": [], "flops_per_s": [], "bound": []}
    pre, dec = result.prefill, result.decode
    if pre is not None and pre.bytes and pre.time_s:
        points["phase"].append(f"prefill ({pre.tokens} tokens)")
        points["intensity"].append(pre.flops / pre.bytes)
        points["flops_per_s"].append(pre.flops / pre.time_s)
        points["bound"].append(pre.bound)
    if dec is not None and dec.time_total_s:
        step_bytes = [moved for _, moved in dec.bytes_per_step_at_context]
        mean_bytes = (step_bytes[0] + step_bytes[-1]) / 2
        if mean_bytes:
            points["phase"].append(f"decode (mean of {dec.tokens} steps)")
            points["intensity"].append(dec.flops_total / dec.tokens / mean_bytes)
            points["flops_per_s"].append(dec.flops_total / dec.time_total_s)
            points["bound"].append(dec.bound)
    return points


def roof(result: InferResult, lowest: float, highest: float) -> dict[str, list[float]]:
    """The roofline from `lowest` to `highest` FLOP/byte: bandwidth x intensity up to the ridge, the peak after."""
    peak, bandwidth = result.hardware.peak_flops, result.hardware.bandwidth
    ridge = peak / bandwidth
    xs = [lowest, *([ridge] if lowest < ridge < highest else []), highest]
    return {"intensity": xs, "flops_per_s": [min(peak, bandwidth * x) for x in xs]}


def _roofline(result: InferResult) -> Any:
    points, phases = roofline_points(result), phase_points(result)
    ridge = result.hardware.peak_flops / result.hardware.bandwidth
    xs = points["intensity"] + phases["intensity"] + [ridge]
    lowest, highest = min(xs) / 2, max(xs) * 8  # room on the right for the phases' labels
    scale, unit = axis_scale(result.hardware.peak_flops, "FLOP/s")
    plot = page_figure(
        PAN_AND_ZOOM,
        height=440,
        x_axis_type="log",
        y_axis_type="log",
        x_axis_label="arithmetic intensity (FLOP/byte)",
        y_axis_label=unit,
    )
    _draw_roof(plot, result, lowest, highest, scale, ridge)
    _draw_layers(plot, result, points, scale)
    if phases["phase"]:
        _draw_phases(plot, result, phases, scale)
    plot.x_range.start, plot.x_range.end = lowest, highest
    plot.legend.location = "bottom_right"
    plot.legend.click_policy = "hide"
    return plot


def _draw_roof(plot: Any, result: InferResult, lowest: float, highest: float, scale: float, ridge: float) -> None:
    """The compute roof and the memory slope, and a dotted line at the ridge point between them."""
    from bokeh.models import Span

    line = roof(result, lowest, highest)
    plot.line(
        x=[x for x in line["intensity"]],
        y=[y / scale for y in line["flops_per_s"]],
        line_width=2,
        color="#333333",
        legend_label=f"roof: {format_number(result.hardware.peak_flops / 1e12)} TFLOP/s, "
        f"{format_number(result.hardware.bandwidth / 1e9)} GB/s",
        name=ROOF_NAME,
    )
    plot.add_layout(Span(location=ridge, dimension="height", line_dash="dotted", line_color="#999999"))


def _draw_layers(plot: Any, result: InferResult, points: dict[str, list[Any]], scale: float) -> None:
    """Each layer a point at its arithmetic intensity, one series per batch size."""
    from bokeh.models import ColumnDataSource, HoverTool

    renderers = []
    for index, batch in enumerate(result.batches):
        chosen = [i for i, b in enumerate(points["batch"]) if b == batch.batch_size]
        source = ColumnDataSource(
            {
                "x": [points["intensity"][i] for i in chosen],
                "y": [points["flops_per_s"][i] / scale for i in chosen],
                "name": [points["name"][i] for i in chosen],
                "type": [points["type"][i] for i in chosen],
                "bound": [points["bound"][i] for i in chosen],
                "batch": [batch.batch_size] * len(chosen),
                "intensity": [format_number(points["intensity"][i], 3) for i in chosen],
                "rate": [format_si(points["flops_per_s"][i]) for i in chosen],
            }
        )
        renderers.append(
            plot.scatter(
                x="x",
                y="y",
                source=source,
                size=7,
                alpha=0.75,
                color=colors.PALETTE[index % len(colors.PALETTE)],
                legend_label=f"batch {batch.batch_size}",
                name=ROOFLINE_NAME,
            )
        )
    tooltips = [("layer", "@name"), ("type", "@type"), ("batch", "@batch")]
    tooltips += [("FLOP/byte", "@intensity"), ("FLOP/s", "@rate"), ("bound", "@bound")]
    plot.add_tools(HoverTool(renderers=renderers, tooltips=tooltips))


def _draw_phases(plot: Any, result: InferResult, phases: dict[str, list[Any]], scale: float) -> None:
    """The whole prefill and decode as marked, labelled points."""
    from bokeh.models import ColumnDataSource, HoverTool

    marked = plot.scatter(
        x="x",
        y="y",
        source=ColumnDataSource(
            {
                "x": phases["intensity"],
                "y": [y / scale for y in phases["flops_per_s"]],
                "phase": phases["phase"],
                "bound": phases["bound"],
                "rate": [format_si(y) for y in phases["flops_per_s"]],
            }
        ),
        marker="diamond",
        size=16,
        color=colors.RED,
        line_color="black",
        legend_label=f"prefill and decode (batch {_layers_batch(result)})",
        name=PHASE_NAME,
    )
    plot.text(
        x="x",
        y="y",
        text="phase",
        source=marked.data_source,
        x_offset=10,
        text_baseline="middle",
        text_font_size="11px",
    )
    plot.add_tools(HoverTool(renderers=[marked], tooltips=[("", "@phase"), ("FLOP/s", "@rate"), ("", "@bound")]))


def batch_curves(result: InferResult) -> dict[str, list[Any]]:
    """Per batch size: the latency and the throughput (tokens/s with a generation, examples/s without)."""
    generating = result.decode is not None
    return {
        "batch": [b.batch_size for b in result.batches],
        "latency_s": [b.latency_s for b in result.batches],
        "ttft_s": [b.ttft_s for b in result.batches] if generating else [],
        "time_per_token_s": [b.time_per_token_s for b in result.batches] if generating else [],
        "throughput_per_s": [b.tokens_per_s if generating else b.throughput_per_s for b in result.batches],
    }


def _latency_throughput(result: InferResult) -> Any:
    from bokeh.layouts import row
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    curves = batch_curves(result)
    generating = result.decode is not None
    source = ColumnDataSource(
        {
            "batch": curves["batch"],
            "latency": curves["latency_s"],
            "latency_text": [seconds(v) for v in curves["latency_s"]],
            "throughput": curves["throughput_per_s"],
            "throughput_text": [format_si(v) for v in curves["throughput_per_s"]],
        }
    )
    log_x = len(curves["batch"]) > 1 and max(curves["batch"]) / min(curves["batch"]) >= 8
    common: dict[str, Any] = {
        "height": 320,
        "sizing_mode": "stretch_width",
        "x_axis_label": "batch size",
        "tools": "reset,save",
    }
    if log_x:  # every point inside the frame, not on its edge
        common["x_range"] = (min(curves["batch"]) / 1.5, max(curves["batch"]) * 1.5)
    latency = figure(
        x_axis_type="log" if log_x else "linear",
        y_axis_type="log",
        y_axis_label="seconds",
        title="request latency" if generating else "latency of one forward",
        **common,
    )
    latency.line("batch", "latency", source=source, line_width=2, color=colors.PALETTE[0], legend_label="latency")
    latency.scatter("batch", "latency", source=source, size=8, color=colors.PALETTE[0], name=LATENCY_NAME)
    if generating:
        extra = ColumnDataSource(
            {"batch": curves["batch"], "ttft": curves["ttft_s"], "per_token": curves["time_per_token_s"]}
        )
        latency.line(
            "batch", "ttft", source=extra, line_width=2, color=colors.PALETTE[1], legend_label="time to first token"
        )
        latency.line(
            "batch", "per_token", source=extra, line_width=2, color=colors.PALETTE[2], legend_label="time per token"
        )
        latency.legend.location = "top_left"
    latency.add_tools(HoverTool(tooltips=[("batch", "@batch"), ("latency", "@latency_text")]))
    throughput = figure(
        x_axis_type="log" if log_x else "linear",
        y_axis_label="tokens/s" if generating else "examples/s",
        title="generated tokens/s" if generating else "examples/s",
        **common,
    )
    throughput.line("batch", "throughput", source=source, line_width=2, color=colors.PALETTE[3])
    throughput.scatter("batch", "throughput", source=source, size=8, color=colors.PALETTE[3], name=THROUGHPUT_NAME)
    throughput.add_tools(HoverTool(tooltips=[("batch", "@batch"), ("per second", "@throughput_text")]))
    return row(latency, throughput, sizing_mode="stretch_width")


def memory_bars(result: InferResult) -> dict[str, list[Any]]:
    """What one GPU holds per batch size: weights, KV cache, and the rest (activations), summing to its memory.

    Split over GPUs (--tp/--pp) the KV cache per GPU is not broken out: it is in the rest."""
    weights = result.parallel["weights_bytes_per_gpu"] if result.parallel else result.weights_bytes
    split_kv = result.decode is not None and not result.parallel
    bars: dict[str, list[Any]] = {"batch": [], "weights": [], "kv_cache": [], "activations": [], "fits": []}
    for batch in result.batches:
        kv = (batch.kv_cache_bytes or 0.0) if split_kv else 0.0
        bars["batch"].append(str(batch.batch_size))
        bars["weights"].append(float(weights))
        bars["kv_cache"].append(kv)
        bars["activations"].append(batch.memory_bytes - weights - kv)
        bars["fits"].append("-" if batch.fits is None else ("yes" if batch.fits else "no"))
    return bars


def _memory_columns(bars: dict[str, list[Any]], scale: float) -> dict[str, list[Any]]:
    """The memory bars' columns: each part in the axis' unit, and as text for the hover."""
    return {
        "batch": bars["batch"],
        "weights": [v / scale for v in bars["weights"]],
        "kv_cache": [v / scale for v in bars["kv_cache"]],
        "activations": [v / scale for v in bars["activations"]],
        "weights_text": [format_si(v, "B") for v in bars["weights"]],
        "kv_text": [format_si(v, "B") for v in bars["kv_cache"]],
        "activations_text": [format_si(v, "B") for v in bars["activations"]],
        "fits": bars["fits"],
    }


def _memory(result: InferResult) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Span

    bars = memory_bars(result)
    capacity = result.hardware.memory_bytes
    tallest = max(w + k + a for w, k, a in zip(bars["weights"], bars["kv_cache"], bars["activations"]))
    scale, unit = axis_scale(max(tallest, capacity or 0.0), "B")
    split_kv = result.decode is not None and not result.parallel
    rest = "KV cache and activations" if result.decode is not None and result.parallel else "activations"
    stacked = ["weights", "kv_cache", "activations"] if split_kv else ["weights", "activations"]
    stack_colors = [_WEIGHTS, _KV_CACHE, _ACTIVATIONS] if split_kv else [_WEIGHTS, _ACTIVATIONS]
    legend = ["weights", "KV cache", rest] if split_kv else ["weights", rest]
    source = ColumnDataSource(_memory_columns(bars, scale))
    plot = page_figure(
        x_range=bars["batch"],
        height=340,
        x_axis_label="batch size",
        y_axis_label=unit,
        y_range=(0, max(tallest, capacity or 0.0) * 1.08 / scale),  # the memory line inside the frame
    )
    plot.vbar_stack(
        stacked,
        x="batch",
        width=0.6,
        color=stack_colors,
        source=source,
        legend_label=legend,
        name=MEMORY_NAME,
    )
    if capacity is not None:
        plot.add_layout(
            Span(location=capacity / scale, dimension="width", line_color=colors.RED, line_dash="dashed", line_width=2)
        )
        plot.title.text = f"{result.hardware.gpu} memory: {format_si(capacity, 'B')} (dashed line)"
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("batch", "@batch"),
                ("weights", "@weights_text"),
                *([("KV cache", "@kv_text")] if split_kv else []),
                (rest, "@activations_text"),
                ("fits", "@fits"),
            ]
        )
    )
    plot.legend.location = "top_left"
    return plot


def render_html(result: InferResult, command_line: str, data: Mapping[str, Any]) -> str:
    """The serving bounds as one self-contained page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    gpu = result.hardware
    what = "serving bounds" if gpu.profile is None else "serving predictions"
    summary = [
        ["model", result.model],
        ["GPU", f"{gpu.gpu}: peak {format_number(gpu.peak_flops / 1e12)} TFLOP/s {gpu.precision} ({gpu.peak_origin})"],
        ["bandwidth", f"{format_number(gpu.bandwidth / 1e9)} GB/s"],
        ["memory", "-" if gpu.memory_bytes is None else format_si(gpu.memory_bytes, "B")],
        ["weights", f"{format_si(result.params)} parameters, {format_si(result.weights_bytes, 'B')}"],
        ["layers drawn", result.layers_pass],
    ]
    if result.compute_bound_from_batch is not None:
        summary.append(["compute-bound from batch", str(result.compute_bound_from_batch)])
    if result.max_batch_that_fits is not None:
        summary.append(["largest batch that fits", f"{result.max_batch_that_fits:,}"])
    sections = [
        Section(
            "Roofline: each layer at its arithmetic intensity",
            _roofline(result),
            "Each point is one layer's own ops at a batch size: FLOPs per byte moved against FLOPs per second of "
            "its time. Left of the dotted ridge the memory slope bounds it, right of it the compute roof. "
            "Click a legend entry to hide a series.",
        ),
        Section("Latency and throughput against batch size", _latency_throughput(result)),
        Section(
            "Memory of one GPU against batch size",
            _memory(result),
            "The weights, the KV cache and the activations' working set at each batch size, against the GPU's memory.",
        ),
    ]
    return render_page(
        f"flopcalc infer: {result.model} on {gpu.gpu} ({what})",
        sections,
        data,
        command_line,
        summary=summary,
        notes=result.notes,
    )
