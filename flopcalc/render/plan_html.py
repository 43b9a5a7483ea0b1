"""`plan --format html`: what fills each GPU, where the step goes and how the pipeline runs, drawn from the Plan.

Memory per GPU as stacked bars against the GPU's line (each pipeline stage; with `--search`, each layout shown),
the step split into compute, exposed communication by kind and the pipeline bubble, the 1F1B schedule as a Gantt
chart built from the plan's own per-micro-batch times, and with `--search` the layouts' step time against their
memory with the frontier marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..plan import Plan, SearchResult
from ..units import GIB, format_number
from . import colors
from .html import PAN_AND_ZOOM_X, Section, page_figure, render_page, require_bokeh
from .plan import fits_text

MEMORY_NAME = "memory"  # the glyph renderers' names: the browser test reads their data through them
CANDIDATES_NAME = "candidates"
STEP_NAME = "step"
SCHEDULE_NAME = "schedule"
LAYOUTS_NAME = "layouts"  # every evaluated layout that fits
SHOWN_NAME = "shown"  # the --top ones among them
FRONTIER_NAME = "frontier"
MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "teacher")
_COLORS = {
    "weights": colors.BLUE,
    "gradients": colors.ORANGE,
    "optimizer": colors.RED,
    "activations": colors.GREEN,
    "teacher": colors.PURPLE,
}


def memory_bars(labels: Sequence[str], memories: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """One bar per label: GiB of each part (the JSON's `stages` or `memory_per_gpu_bytes` dicts); parts no bar
    has are left out; unknown activations count 0."""
    shown = [part for part in MEMORY_PARTS if any(memory.get(part) for memory in memories)]
    bars: dict[str, list[Any]] = {"label": list(labels)}
    for part in shown:
        bars[part] = [(memory.get(part) or 0.0) / GIB for memory in memories]
    bars["total"] = [memory["total"] / GIB for memory in memories]
    return bars


def step_split(plan: Plan) -> dict[str, float]:
    """The step's seconds, adding up to `step_s`: compute, exposed communication by kind, optimizer, and the
    pipeline bubble (what the schedule adds beyond them)."""
    step = plan.step
    assert step is not None
    parts = {"compute": step.compute_s, "tensor-parallel": step.tp_comm_s, "pipeline send/receive": step.pp_comm_s}
    if step.ep_comm_s:
        parts["expert all-to-all"] = step.ep_comm_s
    parts["data-parallel and other exposed"] = step.exposed_comm_s - step.tp_comm_s - step.pp_comm_s - step.ep_comm_s
    parts["optimizer"] = step.optimizer_s
    parts["bubble"] = step.step_s - sum(parts.values())
    return parts


def micro_batch_times(plan: Plan) -> tuple[float, float]:
    """Seconds of one micro-batch's forward and backward on the slowest stage: the step-time model's own figures
    (communication on the critical path included), or, without them, the compute shared in the FLOPs' ratio."""
    step = plan.step
    assert step is not None
    slowest = (step.prediction or {}).get("slowest_stage_micro_batch")
    if slowest:
        comm = slowest["tp_comm_s"] + slowest["p2p_s"]  # on the critical path: half each way
        return slowest["forward_s"] + comm / 2, slowest["backward_s"] + slowest["recompute_s"] + comm / 2
    m = plan.layout.grad_accum
    per_micro_batch = (step.compute_s + step.tp_comm_s + step.pp_comm_s + step.ep_comm_s) / m
    forward, backward = plan.model.forward_flops, plan.model.backward_flops
    share = forward / (forward + backward) if forward + backward else 1 / 3
    return per_micro_batch * share, per_micro_batch * (1 - share)


def _order(stage: int, pp: int, m: int, v: int) -> list[tuple[str, int, int]]:
    """One GPU's passes in 1F1B order: (pass, micro-batch, chunk); interleaved as Megatron-LM orders them
    (micro-batches in groups of pp, chunk by chunk; forward chunks ascending, backward descending)."""
    total = m * v

    def which(k: int, backward: bool) -> tuple[int, int]:
        chunk = (k // pp) % v
        return (k // (pp * v)) * pp + k % pp, (v - 1 - chunk if backward else chunk)

    warmup = min(total, (pp - stage - 1) if v == 1 else (pp - stage - 1) * 2 + (v - 1) * pp)
    order, forwards, backwards = [], 0, 0
    for _ in range(warmup):
        order.append(("forward", *which(forwards, False)))
        forwards += 1
    while backwards < total:
        if forwards < total:
            order.append(("forward", *which(forwards, False)))
            forwards += 1
        order.append(("backward", *which(backwards, True)))
        backwards += 1
    return order


def schedule_boxes(pp: int, m: int, forward_s: float, backward_s: float, v: int = 1) -> dict[str, list[Any]]:
    """The pipeline's passes as boxes: each GPU runs its passes in 1F1B order, each as soon as the pass it needs
    (the previous chunk's forward, the next chunk's backward) is done. Every chunk takes 1/v of the stage's time."""
    f, b = forward_s / v, backward_s / v
    chunks = pp * v
    orders = [_order(stage, pp, m, v) for stage in range(pp)]
    done: dict[tuple[str, int, int], float] = {}  # (pass, micro-batch, virtual stage) -> end
    free = [0.0] * pp
    place = [0] * pp
    boxes: dict[str, list[Any]] = {k: [] for k in ("start", "end", "stage", "micro_batch", "chunk", "pass", "color")}
    while any(place[stage] < len(orders[stage]) for stage in range(pp)):
        progressed = False
        for stage in range(pp):
            while place[stage] < len(orders[stage]):
                kind, micro, chunk = orders[stage][place[stage]]
                virtual = chunk * pp + stage
                if kind == "forward":
                    need = ("forward", micro, virtual - 1) if virtual else None
                else:
                    need = ("backward", micro, virtual + 1) if virtual < chunks - 1 else ("forward", micro, virtual)
                if need is not None and need not in done:
                    break
                start = max(free[stage], done[need] if need is not None else 0.0)
                end = start + (f if kind == "forward" else b)
                done[(kind, micro, virtual)] = free[stage] = end
                place[stage] += 1
                progressed = True
                for key, value in (
                    ("start", start),
                    ("end", end),
                    ("stage", stage),
                    ("micro_batch", micro),
                    ("chunk", chunk),
                    ("pass", kind),
                    ("color", colors.STEP_PARTS[kind]),
                ):
                    boxes[key].append(value)
        if not progressed:  # cannot happen for the orders above; said rather than looped forever
            raise RuntimeError("the pipeline schedule deadlocked")
    return boxes


def frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other beats in both (step time, memory): the frontier, fastest first."""
    ranked = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    kept, least = [], float("inf")
    for index in ranked:
        if points[index][1] < least:
            kept.append(index)
            least = points[index][1]
    return kept


def _memory_chart(bars: dict[str, list[Any]], gpu_gib: float, usable_gib: float, title: str, name: str) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Span

    parts = [part for part in MEMORY_PARTS if part in bars]
    source = ColumnDataSource({**bars, **{f"{p}_text": [f"{format_number(x, 3)} GiB" for x in bars[p]] for p in parts}})
    top = max([*bars["total"], gpu_gib]) * 1.08
    plot = page_figure(
        x_range=bars["label"],
        y_range=(0, top),
        height=320,
        y_axis_label="GiB per GPU",
        title=title,
    )
    plot.vbar_stack(
        parts,
        x="label",
        width=0.6,
        color=[_COLORS[p] for p in parts],
        source=source,
        legend_label=parts,
        name=name,
    )
    plot.add_layout(Span(location=gpu_gib, dimension="width", line_color="#c00", line_width=2))
    if usable_gib < gpu_gib:
        plot.add_layout(Span(location=usable_gib, dimension="width", line_color="#c00", line_dash="dashed"))
    plot.add_tools(HoverTool(tooltips=[("", "@label"), *((p, f"@{p}_text") for p in parts)]))
    plot.legend.orientation = "horizontal"
    plot.add_layout(plot.legend[0], "below")  # clear of the GPU's line
    plot.xaxis.major_label_orientation = 0.6 if len(bars["label"]) > 6 else 0
    return plot


def _step_chart(split: dict[str, float]) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    names = list(split)
    palette = (colors.BLUE, colors.ORANGE, colors.YELLOW, colors.PINK, colors.TEAL, colors.BROWN, colors.GREY)
    columns = {name: [seconds] for name, seconds in split.items()}
    columns["label"] = ["step"]
    plot = page_figure(
        y_range=["step"],
        height=170,
        x_axis_label="seconds",
    )
    plot.hbar_stack(
        names,
        y="label",
        height=0.6,
        color=list(palette[: len(names)]),
        source=ColumnDataSource(columns),
        legend_label=names,
        name=STEP_NAME,
    )
    plot.add_tools(HoverTool(tooltips=[(name, f"@{{{name}}}{{0.0000}} s") for name in names]))
    plot.legend.orientation = "horizontal"
    plot.legend.location = "top_left"
    plot.add_layout(plot.legend[0], "below")
    return plot


def _schedule_chart(boxes: dict[str, list[Any]], pp: int) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    scale, unit = (1e-3, "ms") if max(boxes["end"], default=0) < 10 else (1.0, "s")
    data = {
        **boxes,
        "x0": [s / scale for s in boxes["start"]],
        "x1": [e / scale for e in boxes["end"]],
        "top": [-s + 0.4 for s in boxes["stage"]],
        "bottom": [-s - 0.4 for s in boxes["stage"]],
        "label": [str(i + 1) for i in boxes["micro_batch"]],
    }
    plot = page_figure(
        PAN_AND_ZOOM_X,
        height=80 + 40 * pp,
        x_axis_label=unit,
        y_axis_label="pipeline stage",
    )
    source = ColumnDataSource(data)
    plot.quad(
        left="x0", right="x1", top="top", bottom="bottom", fill_color="color", line_color="white", source=source,
        name=SCHEDULE_NAME,
    )  # fmt: skip
    plot.yaxis.ticker = [-s for s in range(pp)]
    plot.yaxis.major_label_overrides = {-s: str(s) for s in range(pp)}
    plot.ygrid.visible = False
    plot.add_tools(
        HoverTool(tooltips=[("stage", "@stage"), ("micro-batch", "@label"), ("chunk", "@chunk"), ("pass", "@pass")])
    )
    return plot


def _layouts_chart(result: SearchResult) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool

    plans = [plan for plan in result.candidates if plan.step is not None]
    shown = [(plan.step.step_s, plan.memory.total / GIB) for plan in plans]  # type: ignore[union-attr]
    tried = [(step_s, nbytes / GIB) for step_s, nbytes in result.fitting] or shown
    edge = frontier(tried)
    plot = page_figure(
        height=340,
        x_axis_label="step time (s)",
        y_axis_label="memory per GPU (GiB)",
    )
    every = ColumnDataSource({"step": [p[0] for p in tried], "memory": [p[1] for p in tried]})
    plot.scatter(
        "step", "memory", size=6, color=colors.GREY, alpha=0.6, source=every, name=LAYOUTS_NAME,
        legend_label=f"{len(tried):,} layouts that fit",
    )  # fmt: skip
    ranked = ColumnDataSource(
        {
            "step": [p[0] for p in shown],
            "memory": [p[1] for p in shown],
            "rank": [f"#{rank}" for rank in range(1, len(plans) + 1)],
            "layout": [plan.layout.label() for plan in plans],
        }
    )
    plot.scatter(
        "step", "memory", size=10, color=colors.BLUE, source=ranked, name=SHOWN_NAME, legend_label="shown (--top)"
    )
    plot.line(
        [tried[i][0] for i in edge],
        [tried[i][1] for i in edge],
        line_color=colors.RED,
        line_width=2,
        name=FRONTIER_NAME,
        legend_label="frontier: no layout both faster and smaller",
    )
    plot.add_tools(
        HoverTool(
            renderers=[plot.renderers[1]],
            tooltips=[("", "@rank"), ("layout", "@layout"), ("step", "@step{0.000} s"), ("memory", "@memory GiB")],
        )
    )
    plot.legend.location = "top_right"
    return plot


def _summary(plan: Plan) -> list[list[str]]:
    t = plan.layout
    rows = [
        ["model", plan.model.source],
        ["GPUs", f"{t.num_gpus:,} x {plan.gpu or 'GPU'}"],
        ["layout", f"{t.label()}; global batch {t.batch}"],
        ["memory per GPU", f"{format_number(plan.memory.total / GIB, 3)} GiB {fits_text(plan)}"],
    ]
    if plan.step is not None:
        rows.append(["step", f"{format_number(plan.step.step_s, 4)} s ({plan.step.time_model})"])
    if plan.training is not None:
        rows.append(["run", f"{plan.training.steps:,} steps, {format_number(plan.training.wall_clock_days, 4)} days"])
    return rows


def _plan_sections(plan: Plan) -> list[Section]:
    stages = plan.memory.stages_list()
    labels = [f"stage {s['stage']} ({s['role']})" if len(stages) > 1 else "each GPU" for s in stages]
    gpu_gib, usable_gib = plan.gpu_memory_bytes / GIB, plan.usable_memory_bytes / GIB
    text = (
        "Bytes on each GPU by what holds them; the solid line is the GPU's memory, the dashed one what is left "
        "after the reserve."
    )
    if plan.offload is not None:
        text += f" {format_number(plan.offload.relieved_bytes / GIB, 3)} GiB per GPU moved to host memory (--offload)."
    sections = [
        Section(
            "Memory per GPU, each pipeline stage",
            _memory_chart(memory_bars(labels, stages), gpu_gib, usable_gib, plan.layout.label(), MEMORY_NAME),
            text,
        )
    ]
    if plan.step is None:
        return sections
    split = step_split(plan)
    sections.append(
        Section(
            "Where the step goes",
            _step_chart(split),
            "Seconds of one optimizer step: compute, communication left exposed by kind, the optimizer and the "
            "pipeline bubble.",
        )
    )
    forward_s, backward_s = micro_batch_times(plan)
    t = plan.layout
    boxes = schedule_boxes(t.pp, t.grad_accum, forward_s, backward_s, t.virtual)
    sections.append(
        Section(
            "The pipeline schedule" + (f" (interleaved, {t.virtual} chunks per GPU)" if t.virtual > 1 else " (1F1B)"),
            _schedule_chart(boxes, t.pp),
            f"Each box is one pass of a micro-batch on a stage: forward (blue, {format_number(forward_s * 1e3, 4)} ms) "
            f"and backward (orange, {format_number(backward_s * 1e3, 4)} ms), the slowest stage's times; "
            "the gaps are the bubble.",
        )
    )
    return sections


def render_plan_html(plan: Plan, command_line: str, data: Mapping[str, Any]) -> str:
    """One layout as a page; `data` is the JSON object `--format json` prints."""
    require_bokeh()
    return render_page(
        f"flopcalc plan: {plan.model.source}",
        _plan_sections(plan),
        data,
        command_line,
        summary=_summary(plan),
        notes=[*plan.assumptions, *plan.notes],
    )


def render_search_html(result: SearchResult, command_line: str, data: Mapping[str, Any]) -> str:
    """A `--search` as a page: the best layout drawn as a plan, every layout shown as a bar and a point."""
    require_bokeh()
    shown = result.best or result.closest
    sections: list[Section] = []
    if result.candidates:
        plans = result.candidates
        gpu_gib = plans[0].gpu_memory_bytes / GIB
        bars = memory_bars([f"#{rank}" for rank in range(1, len(plans) + 1)], [plan.memory.to_dict() for plan in plans])
        sections.append(
            Section(
                f"Memory per GPU, the {len(plans)} fastest layouts that fit",
                _memory_chart(bars, gpu_gib, plans[0].usable_memory_bytes / GIB, "", CANDIDATES_NAME),
                "Ranked as in the table below: the most loaded GPU of each layout.",
                rows=[[f"#{rank}", plan.layout.label()] for rank, plan in enumerate(plans, 1)],
                header=["#", "layout"],
            )
        )
        sections.append(
            Section(
                "Step time against memory",
                _layouts_chart(result),
                f"Each layout evaluated that fits (grey; {result.evaluated:,} evaluated in all), the "
                f"{len(plans)} shown in blue, and the frontier in red: the layouts no other beats in both.",
            )
        )
    if shown is not None:
        sections += _plan_sections(shown)
    if result.rejected:
        sections.append(Section("Rejected", None, rows=[[line] for line in result.rejected], header=["why"]))
    title = f"flopcalc plan --search: {shown.model.source}" if shown else "flopcalc plan --search"
    return render_page(
        title,
        sections,
        data,
        command_line,
        summary=_summary(shown) if shown else (),
        notes=[*(shown.assumptions if shown else ()), *(shown.notes if shown else ())],
    )
