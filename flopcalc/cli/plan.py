"""`flopcalc plan`: memory per GPU, time per step and the whole run of a layout on a fleet of GPUs, or
`--search` for the fastest layouts that fit. torch loads only when a model file is counted."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Optional

import typer

from ..errors import ExitCode, UsageError
from ..units import parse_si_number
from ._app import app, emit
from ._options import (
    AdapterConfigOption,
    AttentionAsMathOption,
    AttentionWindowOption,
    BatchSizeOption,
    CalibrationOption,
    CatalogOption,
    DeviceOption,
    FormatOption,
    GpuOption,
    GridIntensityOption,
    InputOption,
    KwargsOption,
    LoraAlphaOption,
    LoraRankOption,
    LoraTargetsOption,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    RegionOption,
    RevisionOption,
    TeacherBatchSizeOption,
    TeacherInputOption,
    TeacherKwargsOption,
    TeacherOption,
    TeacherSeqLenOption,
    UtilizationOption,
    existing_model,
    lora_options,
    model_spec,
    no_model_options,
    notes_to_stderr,
    parse_grid,
    parse_num_gpus,
    parse_utilization,
    progress,
    shown_on_terminal,
    teacher_spec,
)

MODES_HINT = (
    "give a MODEL (file.py:callable, .pt, .pt2, config.json), or --params N and/or the shape (--layers, "
    "--hidden, --heads), with --seq-len"
)

ModelArgument = Annotated[
    Optional[str],
    typer.Argument(
        metavar="MODEL",
        callback=existing_model,
        help="Model to plan: file.py:callable, file.py, .pt, .pt2, config.json or Hub id (org/name) (its input is one "
        "micro-batch), or use --params.",
    ),
]
PlanSeqLenOption = Annotated[
    Optional[int],
    typer.Option(
        "--seq-len",
        metavar="TOKENS",
        help="Tokens per sequence: for --params, or a Hugging Face config.json (default min(max positions, 2048)).",
    ),
]
ParamsOption = Annotated[
    Optional[str],
    typer.Option(
        "--params",
        metavar="N",
        help="Parameters N of a model not at hand, e.g. 7e9 or 7G (default: from --layers/--hidden/--heads; "
        "refused when more than 10% away from the shape's).",
    ),
]
LayersOption = Annotated[
    Optional[int], typer.Option("--layers", metavar="N", help="A model not at hand: transformer layers.")
]
HiddenOption = Annotated[Optional[int], typer.Option("--hidden", metavar="N", help="A model not at hand: hidden size.")]
HeadsOption = Annotated[
    Optional[int],
    typer.Option(
        "--heads", metavar="N", help="Attention heads (with --params, or for a model whose graph does not show them)."
    ),
]
KvHeadsOption = Annotated[
    Optional[int],
    typer.Option("--kv-heads", metavar="N", help="Key/value heads (grouped-query attention; default = heads)."),
]
FfnOption = Annotated[
    Optional[int],
    typer.Option(
        "--ffn",
        metavar="N",
        help="With the shape: MLP inner size (default 4 x hidden; 8 x hidden / 3 with --mlp swiglu).",
    ),
]
VocabOption = Annotated[
    Optional[int],
    typer.Option("--vocab", metavar="N", help="With the shape: vocabulary size (one tied embedding in N)."),
]
HeadDimOption = Annotated[
    Optional[int],
    typer.Option(
        "--head-dim", metavar="N", help="With the shape: width of one attention head (default hidden / heads)."
    ),
]
MlpOption = Annotated[
    str,
    typer.Option(
        "--mlp",
        metavar="gelu|swiglu",
        help="With the shape: gelu (2 matrices of hidden x ffn, default) or swiglu (3: gate, up, down).",
    ),
]
AttentionOption = Annotated[
    str,
    typer.Option(
        "--attention",
        metavar="flash|math",
        help="With the shape: flash (default; keeps no seq x seq scores) or math (keeps them).",
    ),
]
MemoryReserveOption = Annotated[
    Optional[str],
    typer.Option(
        "--memory-reserve",
        metavar="GiB",
        help="GiB per GPU kept from the model: CUDA context, workspaces, fragmentation (default 1 "
        "GiB + 5% of the memory).",
    ),
]
TokensOption = Annotated[
    Optional[str],
    typer.Option(
        "--tokens", metavar="N", help="Training tokens, e.g. 300G (divided by the sequence length into sequences)."
    ),
]
ExamplesOption = Annotated[
    Optional[str], typer.Option("--examples", "-N", metavar="N", help="Training examples per epoch.")
]
EpochsOption = Annotated[
    Optional[str], typer.Option("--epochs", "-E", metavar="N", help="Passes over the examples (default 1).")
]
GlobalBatchOption = Annotated[
    Optional[str],
    typer.Option("--global-batch", metavar="N", help="Examples per optimizer step (default dp x micro-batch)."),
]
MicroBatchOption = Annotated[
    Optional[int],
    typer.Option("--micro-batch", metavar="N", help="Examples per micro-batch (default: the counted batch)."),
]
PlanNumGpusOption = Annotated[
    Optional[str], typer.Option("--num-gpus", "-n", metavar="N", help="GPUs in all (default dp x tp x pp).")
]
GpusPerNodeOption = Annotated[int, typer.Option("--gpus-per-node", metavar="N", help="GPUs per node (default 8).")]
DpOption = Annotated[Optional[int], typer.Option("--dp", metavar="N", help="Data-parallel replicas.")]
TpOption = Annotated[
    Optional[int], typer.Option("--tp", metavar="N", help="Tensor-parallel GPUs per replica (Megatron).")
]
PpOption = Annotated[
    Optional[int],
    typer.Option(
        "--pp",
        metavar="N",
        help="Pipeline stages (1F1B); a layer count pp does not divide puts one more layer on the first stages.",
    ),
]
VirtualStagesOption = Annotated[
    Optional[int],
    typer.Option(
        "--virtual-stages",
        metavar="N",
        help="Model chunks per GPU: interleaved 1F1B, bubble (pp-1)/(v x micro-batches) (default 1).",
    ),
]
StageLayersOption = Annotated[
    Optional[str],
    typer.Option(
        "--stage-layers",
        metavar="N,N,...",
        help="Layers on each pipeline stage, first to last, e.g. 9,8,8,7 (default: "
        "even, one more on the first stages); --pp defaults to their count.",
    ),
]
ZeroOption = Annotated[
    Optional[int],
    typer.Option(
        "--zero",
        metavar="0-3",
        help="ZeRO stage 0-3: partition optimizer states (1), + gradients (2), + weights (3) over the dp group.",
    ),
]
EpOption = Annotated[
    Optional[int],
    typer.Option(
        "--ep",
        metavar="N",
        help="Expert-parallel GPUs: split each MoE layer's experts over N GPUs of the data-parallel group.",
    ),
]
CpOption = Annotated[
    Optional[int],
    typer.Option("--cp", metavar="N", help="Context-parallel GPUs: split every sequence over N GPUs (ring attention)."),
]
CapacityFactorOption = Annotated[
    str,
    typer.Option(
        "--capacity-factor",
        metavar="F",
        help="With --ep: tokens each expert takes over its evenly routed share (default 1.0).",
    ),
]
FsdpOption = Annotated[
    Optional[str],
    typer.Option(
        "--fsdp",
        metavar="full|grad-op|hybrid",
        help="PyTorch FSDP's sharding: full (ZeRO-3), grad-op (ZeRO-2), hybrid (ZeRO-3 inside a node, "
        "replicated across).",
    ),
]
SequenceParallelOption = Annotated[
    bool, typer.Option("--sequence-parallel", help="Split the hidden stream's activations over the tp group too.")
]
RecomputeOption = Annotated[
    Optional[str],
    typer.Option(
        "--recompute",
        metavar="none|selective|full",
        help="Activation recomputation: none (default), selective (attention scores) or full.",
    ),
]
OptimizerOption = Annotated[
    str, typer.Option("--optimizer", metavar="adamw|sgd", help="adamw (default) or sgd (with momentum).")
]
IntraNodeOption = Annotated[
    Optional[str],
    typer.Option(
        "--intra-node-gbps",
        metavar="GB/s",
        help="Achievable bus bandwidth per GPU inside a node, GB/s (nccl-tests busbw; default: the "
        "catalogue's link figure).",
    ),
]
InterNodeOption = Annotated[
    Optional[str],
    typer.Option(
        "--inter-node-gbps",
        metavar="GB/s",
        help="Achievable bus bandwidth per GPU across nodes, GB/s (default 25, printed as an assumption).",
    ),
]
GpuMemoryOption = Annotated[
    Optional[str],
    typer.Option(
        "--gpu-memory",
        metavar="GiB",
        help='Memory per GPU in GiB (default: the catalogue\'s; an "80 GB" GPU has 80 GiB).',
    ),
]
OffloadOption = Annotated[
    Optional[str],
    typer.Option(
        "--offload",
        metavar="WHAT",
        help="Move to host memory: optimizer, params (with gradients and optimizer) or "
        "activations, comma-separated (ZeRO-Offload, FSDP CPU offload).",
    ),
]
HostMemoryOption = Annotated[
    Optional[str], typer.Option("--host-memory", metavar="GiB", help="Host (CPU) memory per node, for --offload.")
]
HostLinkOption = Annotated[
    Optional[str],
    typer.Option(
        "--host-link-gbps",
        metavar="GB/s",
        help="GPU-to-host link per direction (default: the catalogue's PCIe figure).",
    ),
]
PueOption = Annotated[
    str,
    typer.Option(
        "--pue",
        metavar="PUE",
        help="Data-centre power usage effectiveness for energy (>= 1; default 1.0: the GPUs alone; Uptime Institute's 2024 average is 1.56).",
    ),
]
PriceOption = Annotated[
    Optional[str], typer.Option("--price-per-gpu-hour", metavar="PRICE", help="Price of one GPU-hour.")
]
SearchOption = Annotated[
    bool,
    typer.Option(
        "--search",
        help="Try every dp x tp x pp x ZeRO x recompute x micro-batch of --num-gpus; options given pin their "
        "dimension.",
    ),
]
TopOption = Annotated[int, typer.Option("--top", metavar="N", help="With --search: how many layouts to show.")]
BaseDtypeOption = Annotated[
    Optional[str],
    typer.Option(
        "--base-dtype",
        metavar="DTYPE",
        help="With LoRA: the frozen base's dtype: nf4 (QLoRA: 4 bits, block-64 absmax, "
        "double quantisation), fp4, int8 (LLM.int8()), bf16, fp16 or fp32 (default: "
        "the training precision's).",
    ),
]
TeacherDtypeOption = Annotated[
    Optional[str],
    typer.Option(
        "--teacher-dtype",
        metavar="DTYPE",
        help="With --teacher: the teacher's weights' dtype (nf4, fp4, int8, bf16, "
        "fp16, fp32; default: the training precision's).",
    ),
]


def _number(text: Optional[str], flag: str) -> Optional[float]:
    return None if text is None else parse_si_number(text, flag)


def _whole(text: Optional[str], flag: str) -> Optional[int]:
    value = _number(text, flag)
    if value is not None and (value < 1 or value != int(value)):
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}")
    return None if value is None else int(value)


@app.command("plan")
def plan_command(
    model: ModelArgument = None,
    input: InputOption = [],
    batch_size: BatchSizeOption = None,
    kwargs: KwargsOption = None,
    seq_len: PlanSeqLenOption = None,
    device: DeviceOption = None,
    revision: RevisionOption = None,
    attention_window: AttentionWindowOption = None,
    attention_as_math: AttentionAsMathOption = False,
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
    gpu: GpuOption = None,
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
    precision: PrecisionOption = None,
    optimizer: OptimizerOption = "adamw",
    utilization: UtilizationOption = None,
    calibration: CalibrationOption = None,
    catalog: CatalogOption = None,
    intra_node_gbps: IntraNodeOption = None,
    inter_node_gbps: InterNodeOption = None,
    gpu_memory: GpuMemoryOption = None,
    memory_reserve: MemoryReserveOption = None,
    pue: PueOption = "1.0",
    grid_intensity: GridIntensityOption = None,
    region: RegionOption = None,
    price_per_gpu_hour: PriceOption = None,
    search: SearchOption = False,
    top: TopOption = 10,
    offload: OffloadOption = None,
    host_memory: HostMemoryOption = None,
    host_link_gbps: HostLinkOption = None,
    lora_rank: LoraRankOption = None,
    lora_targets: LoraTargetsOption = None,
    lora_alpha: LoraAlphaOption = None,
    adapter_config: AdapterConfigOption = None,
    base_dtype: BaseDtypeOption = None,
    teacher: TeacherOption = None,
    teacher_input: TeacherInputOption = [],
    teacher_batch_size: TeacherBatchSizeOption = None,
    teacher_seq_len: TeacherSeqLenOption = None,
    teacher_kwargs: TeacherKwargsOption = None,
    teacher_dtype: TeacherDtypeOption = None,
    fmt: FormatOption = OutputFormat.table,
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
    shape = {
        "--layers": layers,
        "--hidden": hidden,
        "--ffn": ffn,
        "--vocab": vocab,
        "--head-dim": head_dim,
        "--mlp": None if mlp == "gelu" else mlp,
        "--attention": None if attention == "flash" else attention,
    }
    spec = _spec(model, input, batch_size, seq_len, kwargs, device, shape, revision)
    if spec is not None:
        spec = replace(spec, attention_window=attention_window, attention_as_math=attention_as_math)
    else:
        no_model_options("plan", attention_window=attention_window, attention_as_math=attention_as_math)
    lora = lora_options(lora_rank, lora_targets, lora_alpha, adapter_config, model)
    if base_dtype is not None and lora is None:
        raise UsageError("--base-dtype is the dtype of a LoRA base", "give --lora-rank R (or --adapter-config FILE)")
    teacher_of = teacher_spec(teacher, teacher_input, teacher_batch_size, teacher_seq_len, teacher_kwargs, spec)
    if teacher_dtype is not None and teacher_of is None:
        raise UsageError("--teacher-dtype needs --teacher MODEL")
    # the fleet first: a typo in a GPU name should not cost a model run
    fleet = planning.resolve_fleet(
        gpu=gpu,
        precision=precision,
        utilization=parse_utilization(utilization),
        calibration=calibration,
        catalogs=catalog or (),
        model_key=spec.key() if spec is not None else None,
        gpu_memory_gib=_number(gpu_memory, "--gpu-memory"),
        memory_reserve_gib=_reserve(memory_reserve),
        intra_node_gbps=_number(intra_node_gbps, "--intra-node-gbps"),
        inter_node_gbps=_number(inter_node_gbps, "--inter-node-gbps"),
        gpus_per_node=gpus_per_node,
        pue=parse_si_number(pue, "--pue"),
        price_per_gpu_hour=_number(price_per_gpu_hour, "--price-per-gpu-hour"),
        grid=parse_grid(grid_intensity, region),
    )
    targets = planning.offload_targets(offload)
    if not targets and (host_memory is not None or host_link_gbps is not None):
        raise UsageError(
            "--host-memory and --host-link-gbps go with --offload", "add --offload optimizer (or drop them)"
        )
    link = planning.host_link(fleet, catalog or (), _number(host_link_gbps, "--host-link-gbps")) if targets else None
    layout_options = {
        "dp": dp,
        "tp": tp,
        "pp": pp,
        "zero": zero,
        "recompute": recompute,
        "micro_batch": micro_batch,
        "ep": ep,
        "cp": cp,
        "fsdp": fsdp,
    }
    experts_capacity = parse_si_number(capacity_factor, "--capacity-factor")
    total_gpus = None if num_gpus is None else parse_num_gpus(num_gpus)
    batch = _whole(global_batch, "--global-batch")
    if search and batch is None:
        raise UsageError("--search needs --global-batch", "every layout must train on the same examples per step")
    if search and virtual_stages is not None:
        raise UsageError("--search does not try interleaved schedules", "drop --virtual-stages, or plan one layout")
    split = _stage_layers(stage_layers)
    if search and split:
        raise UsageError("--search does not try uneven splits", "drop --stage-layers, or plan one layout")
    if split and pp is None:
        layout_options["pp"] = len(split)
    if lora is not None:
        dtype = planning.frozen_dtype(base_dtype, fleet.throughput.precision, "--base-dtype")
        with progress(f"counting {model} with its adapters for the plan"):
            planned = planning.model_with_adapters(spec, lora, dtype=dtype, heads=heads, kv_heads=kv_heads)
    elif spec is not None:
        with progress(f"counting {model} for the plan"):
            planned = planning.model_from_spec(spec, heads=heads, kv_heads=kv_heads)
    else:
        planned = planning.model_from_params(
            None if params is None else parse_si_number(params, "--params"),
            seq_len,
            layers=layers,
            hidden=hidden,
            heads=heads,
            kv_heads=kv_heads,
            ffn=ffn,
            vocab=vocab,
            head_dim=head_dim,
            mlp=mlp,
            attention=attention,
            params_tolerance=planning.PARAMS_TOLERANCE,
        )
    if teacher_of is not None:
        planned = planning.with_teacher(
            planned,
            teacher_of,
            dtype=planning.frozen_dtype(teacher_dtype, fleet.throughput.precision, "--teacher-dtype"),
        )
        if search:  # a teacher is planned whole on every GPU: only data parallelism (and ZeRO) is searched
            if (tp or 1) > 1 or (pp or 1) > 1:
                raise UsageError(
                    f"--teacher is planned whole on every GPU: tp {tp or 1} x pp {pp or 1} would split "
                    "the student and not the teacher",
                    "search with --tp 1 --pp 1 (the default with --teacher)",
                )
            layout_options = {**layout_options, "tp": 1, "pp": 1}
    run = planning.run_size(
        planned,
        tokens=_number(tokens, "--tokens"),
        examples=_number(examples, "--examples"),
        epochs=_number(epochs, "--epochs"),
    )
    common = dict(precision=fleet.throughput.precision, optimizer=optimizer, run=run)
    if search and targets:
        raise UsageError("--offload is planned for one layout, not searched", "drop --search and give the layout")
    if search:
        fixed = {key: value for key, value in layout_options.items() if value is not None}
        found = planning.search(
            planned,
            fleet,
            total_gpus or 1,
            global_batch=batch,
            fixed=fixed,
            top=top,
            capacity_factor=experts_capacity,
            **common,
        )
        notes = found.best.notes if found.best else (found.closest.notes if found.closest else ())
        _render(found, None, fmt, output, notes)
        fits = found.best is not None
    else:
        layout = planning.layout_from_options(
            planned,
            num_gpus=total_gpus,
            global_batch=batch,
            sequence_parallel=sequence_parallel,
            gpus_per_node=gpus_per_node,
            capacity_factor=experts_capacity,
            virtual=virtual_stages,
            stage_layers=split,
            **layout_options,
        )
        plan = planning.evaluate(planned, layout, fleet, **common)
        if targets:
            plan = planning.apply_offload(
                plan,
                targets,
                fleet,
                planning.training_precision(fleet.throughput.precision),
                optimizer,
                run,
                link,
                _number(host_memory, "--host-memory"),
            )
        _render(None, plan, fmt, output, plan.notes)
        fits = plan.fits is not False
    if not fits:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _spec(model, input, batch_size, seq_len, kwargs, device, shape, revision=None):
    """The model file's spec, or None for --params (which needs --seq-len and takes none of the file's options)."""
    if model is not None:
        named = [flag for flag, value in shape.items() if value is not None]
        spec = model_spec(model, input, batch_size, seq_len, (), kwargs, device, revision=revision)
        if named:
            raise UsageError(f"{', '.join(named)} describe a model given by --params", "a MODEL shows its own shape")
        return spec
    no_model_options("plan", input=input, batch_size=batch_size, kwargs=kwargs, device=device, revision=revision)
    return None


def _reserve(text: Optional[str]) -> Optional[float]:
    """--memory-reserve GiB: 0 is allowed (nothing set aside)."""
    if text is None:
        return None
    value = parse_si_number(text, "--memory-reserve")
    if value < 0:
        raise UsageError(f"--memory-reserve must be >= 0 GiB, got {text!r}")
    return value


def _render(found, plan, fmt, output, notes) -> None:
    from ..render.plan import render_plan, render_search

    emit(render_search(found, fmt.value) if found is not None else render_plan(plan, fmt.value), output)
    notes_to_stderr(notes, shown=shown_on_terminal(fmt, output))


def _stage_layers(text: str | None) -> tuple[int, ...]:
    """`--stage-layers 9,8,8,7` -> (9, 8, 8, 7); their count and sum are checked against the model's layers."""
    if text is None:
        return ()
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and len(item) <= 9 for item in items):
        raise UsageError(f"--stage-layers {text!r} is not a list of whole numbers", "write e.g. --stage-layers 9,8,8,7")
    return tuple(int(item) for item in items)
