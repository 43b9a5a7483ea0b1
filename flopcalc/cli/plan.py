"""`flopcalc plan`: memory per GPU, time per step and the whole run of a layout on a fleet of GPUs, or
`--search` for the fastest layouts that fit. torch loads only when a model file is counted."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import ExitCode, UsageError
from ..units import parse_si_number
from ._app import app, emit
from ._options import (
    GpuOptions,
    LoraOptions,
    ModelOptions,
    OutputOption,
    ReportFormat,
    ReportFormatOption,
    TeacherOptions,
    command_line,
    notes_to_stderr,
    number,
    parse_num_gpus,
    parse_utilization,
    progress,
    shown_on_terminal,
    with_options,
)
from ._plan_options import (
    AttentionOption,
    BaseDtypeOption,
    CapacityFactorOption,
    CpOption,
    DpOption,
    EpochsOption,
    EpOption,
    ExamplesOption,
    FfnOption,
    FleetOptions,
    FsdpOption,
    GlobalBatchOption,
    GpusPerNodeOption,
    HeadDimOption,
    HeadsOption,
    HiddenOption,
    HostLinkOption,
    HostMemoryOption,
    KvHeadsOption,
    LayersOption,
    MicroBatchOption,
    MlpOption,
    ModelArgument,
    OffloadOption,
    OptimizerOption,
    ParamsOption,
    PlanNumGpusOption,
    PlanSeqLenOption,
    PpOption,
    RecomputeOption,
    SearchOption,
    SequenceParallelOption,
    StageLayersOption,
    TeacherDtypeOption,
    TokensOption,
    TopOption,
    TpOption,
    VirtualStagesOption,
    VocabOption,
    ZeroOption,
    memory_reserve_gib,
    plan_shape,
    plan_spec,
    stage_layers_split,
    whole,
)

MODES_HINT = (
    "give a MODEL (file.py:callable, .pt, .pt2, config.json), or --params N and/or the shape (--layers, "
    "--hidden, --heads), with --seq-len"
)


@app.command("plan")
@with_options(
    ModelOptions,
    without=("seq_len", "decoder_seq_len", "dim", "frozen", "causal_half", "weights", "sparsity"),
    after="model",
)
@with_options(TeacherOptions, after="base_dtype")
@with_options(LoraOptions, after="host_link_gbps")
@with_options(FleetOptions, after="optimizer")
@with_options(GpuOptions, without=("num_gpus",), after="micro_batch")
def plan_command(
    ctx: typer.Context,
    model: ModelArgument = None,
    seq_len: PlanSeqLenOption = None,
    params: ParamsOption = None,
    layers: LayersOption = None,
    hidden: HiddenOption = None,
    heads: HeadsOption = None,
    kv_heads: KvHeadsOption = None,
    ffn: FfnOption = None,
    vocab: VocabOption = None,
    head_dim: HeadDimOption = None,
    mlp: MlpOption = "gelu",
    attention: AttentionOption = "flash",
    tokens: TokensOption = None,
    examples: ExamplesOption = None,
    epochs: EpochsOption = None,
    global_batch: GlobalBatchOption = None,
    micro_batch: MicroBatchOption = None,
    num_gpus: PlanNumGpusOption = None,
    gpus_per_node: GpusPerNodeOption = 8,
    dp: DpOption = None,
    tp: TpOption = None,
    pp: PpOption = None,
    virtual_stages: VirtualStagesOption = None,
    stage_layers: StageLayersOption = None,
    zero: ZeroOption = None,
    ep: EpOption = None,
    cp: CpOption = None,
    capacity_factor: CapacityFactorOption = "1.0",
    fsdp: FsdpOption = None,
    sequence_parallel: SequenceParallelOption = False,
    recompute: RecomputeOption = None,
    optimizer: OptimizerOption = "adamw",
    search: SearchOption = False,
    top: TopOption = 10,
    offload: OffloadOption = None,
    host_memory: HostMemoryOption = None,
    host_link_gbps: HostLinkOption = None,
    base_dtype: BaseDtypeOption = None,
    teacher_dtype: TeacherDtypeOption = None,
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Will it fit, how to split it, how long it takes: training on a fleet of GPUs.

    Exit 0: the layout (with --search, the best one) fits; 1: it does not, or no searched layout fits (the output
    is still written); 2: bad input."""
    from .. import plan as planning

    if model is not None and params is not None:
        raise UsageError("MODEL and --params exclude each other", MODES_HINT)
    if model is None and params is None and layers is None:
        raise UsageError("nothing to plan", MODES_HINT)
    shape = plan_shape(ctx)
    spec = plan_spec(ModelOptions.of(ctx), shape)
    lora = _lora(LoraOptions.of(ctx), model, base_dtype)
    teacher_of = _teacher(TeacherOptions.of(ctx), spec, teacher_dtype)
    gpu = GpuOptions.of(ctx, besides=["num_gpus"])  # plan's --num-gpus is its own: GPUs in all, no default
    # the fleet first: a typo in a GPU name should not cost a model run
    fleet = _fleet(gpu, FleetOptions.of(ctx), gpus_per_node, spec)
    targets, link = _offload(offload, host_memory, host_link_gbps, fleet, gpu.catalog)
    capacity = parse_si_number(capacity_factor, "--capacity-factor")
    total_gpus = None if num_gpus is None else parse_num_gpus(num_gpus)
    batch = whole(global_batch, "--global-batch")
    split = _searchable_split(stage_layers, search, batch, virtual_stages)
    layout_options = dict(dp=dp, tp=tp, pp=len(split) if split and pp is None else pp, zero=zero)
    layout_options.update(recompute=recompute, micro_batch=micro_batch, ep=ep, cp=cp, fsdp=fsdp)
    planned = _planned_model(model, spec, lora, base_dtype, fleet, params, seq_len, shape)
    if teacher_of is not None:
        planned, layout_options = _with_teacher(planned, teacher_of, teacher_dtype, fleet, search, layout_options)
    run = planning.run_size(planned, **_run_size_options(tokens, examples, epochs))
    common = dict(precision=fleet.throughput.precision, optimizer=optimizer, run=run)
    if search and targets:
        raise UsageError("--offload is planned for one layout, not searched", "drop --search and give the layout")
    if search:
        found = _searched(planned, fleet, total_gpus, batch, layout_options, top, capacity, common)
        notes = found.best.notes if found.best else (found.closest.notes if found.closest else ())
        _render(found, None, fmt, output, notes)
        fits = found.best is not None
    else:
        layout = _layout(
            planned,
            total_gpus,
            batch,
            sequence_parallel,
            gpus_per_node,
            capacity,
            virtual_stages,
            split,
            layout_options,
        )
        plan = planning.evaluate(planned, layout, fleet, **common)
        if targets:
            plan = _offloaded(plan, targets, fleet, optimizer, run, link, host_memory)
        _render(None, plan, fmt, output, plan.notes)
        fits = plan.fits is not False
    if not fits:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _lora(options: LoraOptions, model, base_dtype):
    """The LoRA adapters to plan with (None without them); --base-dtype needs them."""
    lora = options.config(model)
    if base_dtype is not None and lora is None:
        raise UsageError("--base-dtype is the dtype of a LoRA base", "give --lora-rank R (or --adapter-config FILE)")
    return lora


def _teacher(options: TeacherOptions, spec, teacher_dtype):
    """The distillation teacher's spec (None without --teacher); --teacher-dtype needs one."""
    teacher_of = options.spec(spec)
    if teacher_dtype is not None and teacher_of is None:
        raise UsageError("--teacher-dtype needs --teacher MODEL")
    return teacher_of


def _fleet(gpu: GpuOptions, options: FleetOptions, gpus_per_node: int, spec):
    """The GPUs, their links and memory, energy and price, resolved from the options."""
    from .. import plan as planning

    return planning.resolve_fleet(
        gpu=gpu.gpu,
        precision=gpu.precision,
        utilization=parse_utilization(gpu.utilization),
        calibration=gpu.calibration,
        catalogs=gpu.catalog or (),
        model_key=spec.key() if spec is not None else None,
        gpu_memory_gib=number(options.gpu_memory, "--gpu-memory"),
        memory_reserve_gib=memory_reserve_gib(options.memory_reserve),
        intra_node_gbps=number(options.intra_node_gbps, "--intra-node-gbps"),
        inter_node_gbps=number(options.inter_node_gbps, "--inter-node-gbps"),
        gpus_per_node=gpus_per_node,
        pue=gpu.pue_value(),
        price_per_gpu_hour=gpu.price(),
        grid=gpu.grid(),
    )


def _offload(offload, host_memory, host_link_gbps, fleet, catalog):
    """What --offload moves to host memory and the GPU-to-host link it goes over (None without --offload)."""
    from .. import plan as planning

    targets = planning.offload_targets(offload)
    if not targets and (host_memory is not None or host_link_gbps is not None):
        raise UsageError(
            "--host-memory and --host-link-gbps go with --offload", "add --offload optimizer (or drop them)"
        )
    link = planning.host_link(fleet, catalog or (), number(host_link_gbps, "--host-link-gbps")) if targets else None
    return targets, link


def _run_size_options(tokens, examples, epochs) -> dict[str, Optional[float]]:
    """The run's length as given: tokens, or examples and epochs."""
    return dict(
        tokens=number(tokens, "--tokens"), examples=number(examples, "--examples"), epochs=number(epochs, "--epochs")
    )


def _searchable_split(stage_layers, search: bool, batch: Optional[int], virtual_stages) -> tuple[int, ...]:
    """--stage-layers parsed, once the options --search cannot take are refused with it."""
    if search and batch is None:
        raise UsageError("--search needs --global-batch", "every layout must train on the same examples per step")
    if search and virtual_stages is not None:
        raise UsageError("--search does not try interleaved schedules", "drop --virtual-stages, or plan one layout")
    split = stage_layers_split(stage_layers)
    if search and split:
        raise UsageError("--search does not try uneven splits", "drop --stage-layers, or plan one layout")
    return split


def _planned_model(model, spec, lora, base_dtype, fleet, params, seq_len, shape):
    """The model as the plan sees it: counted from its file (with adapters), or from --params and the shape."""
    from .. import plan as planning

    if lora is not None:
        dtype = planning.frozen_dtype(base_dtype, fleet.throughput.precision, "--base-dtype")
        with progress(f"counting {model} with its adapters for the plan"):
            return planning.model_with_adapters(spec, lora, dtype=dtype, heads=shape.heads, kv_heads=shape.kv_heads)
    if spec is not None:
        with progress(f"counting {model} for the plan"):
            return planning.model_from_spec(spec, heads=shape.heads, kv_heads=shape.kv_heads)
    return planning.model_from_params(
        number(params, "--params"), seq_len, shape, params_tolerance=planning.PARAMS_TOLERANCE
    )


def _with_teacher(planned, teacher_of, teacher_dtype, fleet, search: bool, layout_options: dict):
    """The planned model with its teacher, and the layout options a search keeps to (the teacher is whole on
    every GPU: only data parallelism and ZeRO are searched)."""
    from .. import plan as planning

    planned = planning.with_teacher(
        planned,
        teacher_of,
        dtype=planning.frozen_dtype(teacher_dtype, fleet.throughput.precision, "--teacher-dtype"),
    )
    if not search:
        return planned, layout_options
    tp, pp = layout_options["tp"], layout_options["pp"]
    if (tp or 1) > 1 or (pp or 1) > 1:
        raise UsageError(
            f"--teacher is planned whole on every GPU: tp {tp or 1} x pp {pp or 1} would split "
            "the student and not the teacher",
            "search with --tp 1 --pp 1 (the default with --teacher)",
        )
    return planned, {**layout_options, "tp": 1, "pp": 1}


def _searched(planned, fleet, total_gpus, batch, layout_options: dict, top: int, capacity_factor: float, common: dict):
    """The fastest layouts of the GPUs that fit, the options given pinning their dimension."""
    from .. import plan as planning

    fixed = {key: value for key, value in layout_options.items() if value is not None}
    return planning.search(
        planned,
        fleet,
        total_gpus or 1,
        global_batch=batch,
        fixed=fixed,
        top=top,
        capacity_factor=capacity_factor,
        **common,
    )


def _layout(
    planned, total_gpus, batch, sequence_parallel, gpus_per_node, capacity_factor, virtual_stages, split, layout_options
):
    """The one layout the options describe, the rest defaulted."""
    from .. import plan as planning

    return planning.layout_from_options(
        planned,
        num_gpus=total_gpus,
        global_batch=batch,
        sequence_parallel=sequence_parallel,
        gpus_per_node=gpus_per_node,
        capacity_factor=capacity_factor,
        virtual=virtual_stages,
        stage_layers=split,
        **layout_options,
    )


def _offloaded(plan, targets, fleet, optimizer, run, link, host_memory):
    """The plan with TARGETS moved to host memory over the host link."""
    from .. import plan as planning

    return planning.apply_offload(
        plan,
        targets,
        fleet,
        planning.training_precision(fleet.throughput.precision),
        optimizer,
        run,
        link,
        number(host_memory, "--host-memory"),
    )


def _render(found, plan, fmt, output, notes) -> None:
    from ..render.plan import render_plan, render_search

    if fmt is ReportFormat.html:
        from ..render.plan_html import render_plan_html, render_search_html

        data = found.to_dict() if found is not None else plan.to_dict()  # the object --format json prints
        draw = render_search_html if found is not None else render_plan_html
        emit(draw(found if found is not None else plan, command_line(), data), output)
    else:
        emit(render_search(found, fmt.value) if found is not None else render_plan(plan, fmt.value), output)
    notes_to_stderr(notes, shown=shown_on_terminal(fmt, output))
