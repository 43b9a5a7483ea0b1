"""Rendering `flopcalc plan`: one layout (memory bars per GPU, step time, the whole run) or a `--search` ranking."""

from __future__ import annotations

from typing import Any

from ..files import to_json
from ..plan import Plan, RunTotals, SearchResult
from ..units import GIB, format_number, format_si
from .charts import bar
from .tabular import csv_text, markdown_text, table_text

BAR_WIDTH = 40  # characters for the GPU's whole memory


def _gb(nbytes: float | None) -> str:
    """Memory in GiB (2^30 bytes): the unit GPU memory comes in (an "80 GB" GPU holds 80 GiB)."""
    return "unknown" if nbytes is None else f"{format_number(nbytes / GIB, 3)} GiB"


def _seconds(value: float) -> str:
    return f"{format_number(value, 4)} s"


def fits_text(plan: Plan) -> str:
    verdict = {True: "fits", False: "does NOT fit", None: "model states fit; activations unknown"}[plan.fits]
    if plan.memory_reserve_bytes:
        return (
            f"of {_gb(plan.usable_memory_bytes)} ({_gb(plan.gpu_memory_bytes)} less {_gb(plan.memory_reserve_bytes)}"
            f" reserved): {verdict}"
        )
    return f"of {_gb(plan.gpu_memory_bytes)}: {verdict}"


def _stage(plan: Plan) -> str:
    return {
        "only": "",
        "first": "the first pipeline stage, the most loaded",
        "last": "the last pipeline stage, the most loaded",
    }[plan.memory.stage]


def _tuning_rows(plan: Plan) -> list[list[str]]:
    """LoRA's trainable parameters and frozen base, a distillation teacher's size and forward."""
    tuning = plan.model.tuning
    if tuning is None:
        return []
    rows = []
    if tuning.adapters is not None:
        rows.append(
            [
                "trainable parameters",
                f"{tuning.trainable_params:,}",
                f"{tuning.trainable_params / plan.model.params:.3%}; frozen base at {tuning.base_dtype}",
            ]
        )
    if tuning.has_teacher:
        factor = plan.layout.micro_batch / plan.model.batch
        rows.append(
            [
                "teacher",
                format_si(tuning.teacher_params),
                f"frozen, at {tuning.teacher_dtype}; forward "
                f"{format_si(tuning.teacher_forward_flops * factor, 'FLOP')} per micro-batch",
            ]
        )
    return rows


def _rows(plan: Plan) -> list[list[str]]:
    rows = _model_rows(plan) + _memory_rows(plan)
    if plan.step is None:
        return rows + [["time per step", "unknown", "needs --seq-len (FLOPs per example)"]]
    return rows + _step_rows(plan) + (_run_rows(plan.training) if plan.training is not None else [])


def _model_rows(plan: Plan) -> list[list[str]]:
    """The model's parameters, its fine-tuning and its FLOPs per micro-batch."""
    factor = plan.layout.micro_batch / plan.model.batch
    return [
        ["parameters", format_number(plan.model.params), format_si(plan.model.params)],
        *_tuning_rows(plan),
        [
            "forward per micro-batch",
            format_si(plan.model.forward_flops * factor, "FLOP"),
            f"backward {format_si(plan.model.backward_flops * factor, 'FLOP')}, micro-batch of {plan.layout.micro_batch}",
        ]
        if plan.model.flops_known
        else ["forward per micro-batch", "unknown", "needs --seq-len"],
    ]


def _memory_rows(plan: Plan) -> list[list[str]]:
    """Memory per GPU, part by part against its capacity, and what is offloaded to the host."""
    memory, capacity = plan.memory, plan.gpu_memory_bytes
    rows = [["memory per GPU", "", _stage(plan)]]
    for name in ("weights", "gradients", "optimizer", "activations", *(("teacher",) if memory.teacher else ())):
        value = getattr(memory, name)
        rows.append([f"  {name}", _gb(value), bar(value, capacity, BAR_WIDTH)])
    rows.append(["  total", _gb(memory.total), fits_text(plan)])
    return rows + _offload_rows(plan)


def _step_rows(plan: Plan) -> list[list[str]]:
    """The time per step: compute, each kind of communication, the bubble, the step and its MFU."""
    step, layout = plan.step, plan.layout
    predicted = step.time_model == "predicted"
    timed = (
        "predicted: the step-time model on the device profile"
        if predicted
        else "FLOPs at peak x utilization, communication added"
    )
    rows = [
        [
            "time per step",
            "",
            f"{layout.grad_accum} micro-batch{'es' if layout.grad_accum != 1 else ''} per replica; " + timed,
        ],
        ["  compute", _seconds(step.compute_s), "recomputation included" if layout.recompute != "none" else ""],
        ["  data-parallel comm", _seconds(step.dp_comm_s), "overlaps the backward" if step.dp_comm_s else ""],
        ["  tensor-parallel comm", _seconds(step.tp_comm_s), "exposed" if step.tp_comm_s else ""],
        ["  pipeline comm", _seconds(step.pp_comm_s), "exposed" if step.pp_comm_s else ""],
        *([["  expert all-to-all", _seconds(step.ep_comm_s), f"exposed, ep {layout.ep}"]] if layout.ep > 1 else []),
        *(
            [["  context ring (K/V)", _seconds(step.cp_comm_s), f"under attention, cp {layout.cp}"]]
            if layout.cp > 1
            else []
        ),
        ["  pipeline bubble", f"{step.bubble_fraction:.1%}", _bubble(plan)],
        ["  exposed comm", _seconds(step.exposed_comm_s), ""],
    ]
    if predicted:
        rows.append(["  optimizer", _seconds(step.optimizer_s), "after the last backward, memory-bound"])
    rows.append(["  step", _seconds(step.step_s), ""])
    if step.mfu is not None:
        rows.append(
            [
                "  MFU",
                f"{step.mfu:.1%}",
                f"HFU {step.hfu:.1%}; "
                + ("predicted, an output" if predicted else "peak x utilization, less the communication"),
            ]
        )
    return rows


def _run_rows(run: RunTotals) -> list[list[str]]:
    """The whole run: steps, FLOPs, wall clock, GPU-hours, MFU, and energy, emissions and cost when known."""
    rows = [
        ["whole run", "", ""],
        ["  steps", format_number(run.steps), ""],
        ["  model FLOPs", format_si(run.model_flops, "FLOP"), "forward + backward"],
        ["  hardware FLOPs", format_si(run.hardware_flops, "FLOP"), "+ recomputation"],
        [
            "  wall clock",
            f"{format_number(run.wall_clock_days, 4)} days",
            f"{format_number(run.wall_clock_s / 3600, 4)} hours",
        ],
        ["  GPU-hours", format_number(run.gpu_hours, 4), ""],
        ["  MFU", f"{run.mfu:.1%}", f"HFU {run.hfu:.1%}"],
    ]
    if run.energy_kwh is not None:
        rows.append(
            [
                "  energy",
                f"{format_number(run.energy_kwh, 4)} kWh",
                "TDP x GPU-hours x PUE (an upper estimate from board power)",
            ]
        )
    if run.emissions_kg_co2e is not None and run.grid is not None:
        rows.append(
            ["  emissions", f"{format_number(run.emissions_kg_co2e, 4)} kg CO2e", f"kWh x {run.grid.describe()} / 1000"]
        )
    if run.cost is not None:
        rows.append(["  cost", format_number(run.cost, 4), "GPU-hours x price"])
    return rows


def _bubble(plan: Plan) -> str:
    """The bubble's formula with this layout's figures: 1F1B, or interleaved with v model chunks per GPU."""
    layout = plan.layout
    pp, m, v = layout.pp, layout.grad_accum, layout.virtual
    if pp == 1:
        return ""
    if v == 1:
        return f"(pp-1)/(m+pp-1) = {pp - 1}/{m + pp - 1}"
    return f"interleaved: (pp-1)/v / (m + (pp-1)/v) = {pp - 1}/{v} / ({m} + {pp - 1}/{v})"


def _offload_rows(plan: Plan) -> list[list[str]]:
    """--offload: what left the GPU, what the host of a node holds, the host-link traffic and the CPU step."""
    offload = plan.offload
    if offload is None:
        return []
    host_fit = "fits" if offload.host_fits else "does NOT fit"
    rows = [
        [f"offload {', '.join(offload.targets)}", f"-{_gb(offload.relieved_bytes)}", "per GPU, moved to host memory"],
        [
            "  host memory per node",
            _gb(offload.host_bytes_per_node),
            f"{offload.gpus_per_node} GPUs x {_gb(offload.host_bytes_per_gpu)} of {_gb(offload.host_memory_per_node)}: "
            f"{host_fit}",
        ],
        [
            "  host-link traffic",
            f"{_gb(offload.to_host_bytes)} out, {_gb(offload.to_gpu_bytes)} in",
            f"per GPU per step, {_seconds(offload.transfer_s)} at {format_number(offload.link.bandwidth / 1e9)} GB/s "
            f"per direction ({offload.link.source}), added to the step",
        ],
    ]
    if offload.cpu_step_params:
        rows.append(
            [
                "  CPU optimizer step",
                f"{format_si(offload.cpu_step_params)} params",
                f"per GPU, on the host's CPUs: {_gb(offload.cpu_step_bytes)} of host memory read and written "
                "(its time is not in the step)",
            ]
        )
    return rows


def _footer(assumptions: Any, notes: Any, rejected: Any = ()) -> list[str]:
    lines: list[str] = []
    for title, items in (("rejected", rejected), ("assumptions", assumptions), ("notes", notes)):
        if items:
            lines += [f"{title}:", *(f"  - {item}" for item in items)]
    return lines


def _flat(plan: Plan) -> dict[str, Any]:
    """One CSV row: the JSON contract's keys joined by `_`."""
    flat: dict[str, Any] = {}
    data = plan.to_dict()

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for inner, item in value.items():
                add(f"{name}_{inner}", item)
        else:
            flat[name] = value

    for key in (
        "model",
        "parallelism",
        "memory_per_gpu_bytes",
        "gpu_memory_bytes",
        "memory_reserve_bytes",
        "fits",
        "step",
        "training",
    ):
        add(key, data[key])
    return flat


def _title(plan: Plan) -> list[str]:
    t = plan.layout
    return [
        f"plan: {plan.model.source} on {t.num_gpus:,} x {plan.gpu or 'GPU'}",
        f"layout: {t.label()}; global batch {t.batch}",
    ]


def render_plan(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return to_json(plan.to_dict())
    if fmt == "csv":
        flat = _flat(plan)
        return csv_text(list(flat), [list(flat.values())])
    rows, footer = _rows(plan), _footer(plan.assumptions, plan.notes)
    headers = ("", "value", "")
    if fmt == "markdown":
        return markdown_text(headers, rows, right=(1,), title=_title(plan), footer=footer)
    return _with_footer(table_text(headers, rows, right=(1,), title=_title(plan), show_header=False), footer)


def _with_footer(table: str, footer: list[str]) -> str:
    """The footer's lines as they are (a table would wrap them at its width, mid-sentence)."""
    return table + ("\n" + "\n".join(footer) + "\n" if footer else "")


_SEARCH_HEADERS = ("#", "dp", "tp", "pp", "ZeRO", "recompute", "micro-batch", "memory/GPU", "step", "days", "MFU")


def _search_row(rank: int, plan: Plan, extra: tuple[str, ...] = ()) -> list[str]:
    t, run = plan.layout, plan.training
    return [
        str(rank),
        str(t.dp),
        str(t.tp),
        str(t.pp),
        *(str(getattr(t, name)) for name in extra),
        str(t.zero),
        t.recompute,
        str(t.micro_batch),
        _gb(plan.memory.total),
        "" if plan.step is None else _seconds(plan.step.step_s),
        "" if run is None else format_number(run.wall_clock_days, 4),
        _mfu(plan),
    ]


def _mfu(plan: Plan) -> str:
    mfu = plan.training.mfu if plan.training is not None else None if plan.step is None else plan.step.mfu
    return "" if mfu is None else f"{mfu:.1%}"


def _extra_columns(result: SearchResult) -> tuple[str, ...]:
    """ep and cp get a column when a shown layout uses them."""
    return tuple(name for name in ("ep", "cp") if any(getattr(plan.layout, name) > 1 for plan in result.candidates))


def render_search(result: SearchResult, fmt: str) -> str:
    if fmt == "json":
        return to_json(result.to_dict())
    shown = result.best or result.closest
    if fmt == "csv":
        flats = [_flat(plan) for plan in result.candidates]
        return csv_text(list(flats[0]) if flats else list(_SEARCH_HEADERS), [list(f.values()) for f in flats])
    extra = _extra_columns(result)
    rows = [_search_row(rank, plan, extra) for rank, plan in enumerate(result.candidates, 1)]
    title = []
    if shown is not None:
        title = [
            f"search: {shown.model.source} on {shown.layout.num_gpus:,} x {shown.gpu or 'GPU'}, "
            f"global batch {shown.layout.batch}",
            f"{result.evaluated:,} layouts tried, {len(result.candidates)} shown of those that fit, fastest first"
            if result.candidates
            else f"{result.evaluated:,} layouts tried: none fits in "
            f"{_gb(shown.usable_memory_bytes)}; the closest needs {_gb(shown.memory.total)}",
        ]
    footer = _footer(shown.assumptions if shown else (), shown.notes if shown else (), result.rejected)
    headers = (*_SEARCH_HEADERS[:4], *extra, *_SEARCH_HEADERS[4:])
    right = tuple(range(1, 5 + len(extra))) + tuple(index + len(extra) for index in (6, 7, 8, 9, 10))
    if fmt == "markdown":
        return markdown_text(headers, rows, right=right, title=title, footer=footer)
    if not rows:  # nothing fits: the title says so, the footer says why
        return _with_footer("\n".join(title) + "\n" if title else "", footer)
    return _with_footer(table_text(headers, rows, right=right, title=title), footer)
