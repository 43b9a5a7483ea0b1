"""`flopcalc plan`: memory per GPU, time per step and the whole run of a layout on a fleet of GPUs, or
`--search` for the fastest layouts that fit. torch loads only when a model file is counted."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import UsageError
from ..units import parse_si_number
from ._app import app, emit
from ._options import (
    BatchSizeOption,
    CalibrationOption,
    CatalogOption,
    DeviceOption,
    FormatOption,
    GpuOption,
    InputOption,
    KwargsOption,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    UtilizationOption,
    model_spec,
    no_model_options,
    notes_to_stderr,
    parse_num_gpus,
    parse_utilization,
    shown_on_terminal,
)

MODES_HINT = "give a MODEL (file.py:callable, .pt, .pt2, config.json), or --params N with --seq-len"
INTER_NODE_ORIGIN = ("assumed: one 200 Gb/s InfiniBand HDR NIC per GPU, as in a DGX A100; give --inter-node-gbps "
                     "(nccl-tests busbw across nodes)")


def _number(text: Optional[str], flag: str) -> Optional[float]:
    return None if text is None else parse_si_number(text, flag)


def _whole(text: Optional[str], flag: str) -> Optional[int]:
    value = _number(text, flag)
    if value is not None and (value < 1 or value != int(value)):
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}")
    return None if value is None else int(value)


@app.command("plan")
def plan_command(
    model: Optional[str] = typer.Argument(None, help="Model to plan: file.py:callable, file.py, .pt, .pt2, config.json "
                                                    "(its input is one micro-batch), or use --params."),
    input: InputOption = [],
    batch_size: BatchSizeOption = None,
    kwargs: KwargsOption = None,
    seq_len: Optional[int] = typer.Option(None, "--seq-len", metavar="TOKENS", help="Tokens per sequence: for --params, or a Hugging Face "
                                                                 "config.json (default min(max positions, 2048))."),
    device: DeviceOption = None,
    params: Optional[str] = typer.Option(None, "--params", metavar="N", help="Parameters N of a model not at hand, e.g. 7e9 or 7G "
                                                                "(needs --seq-len)."),
    layers: Optional[int] = typer.Option(None, "--layers", metavar="N", help="With --params: transformer layers."),
    hidden: Optional[int] = typer.Option(None, "--hidden", metavar="N", help="With --params: hidden size."),
    heads: Optional[int] = typer.Option(None, "--heads", metavar="N", help="Attention heads (with --params, or for a model whose "
                                                              "graph does not show them)."),
    kv_heads: Optional[int] = typer.Option(None, "--kv-heads", metavar="N", help="Key/value heads (grouped-query attention; "
                                                                    "default = heads)."),
    ffn: Optional[int] = typer.Option(None, "--ffn", metavar="N", help="With --params: MLP inner size (default 4 x hidden)."),
    vocab: Optional[int] = typer.Option(None, "--vocab", metavar="N", help="With --params: vocabulary size."),
    tokens: Optional[str] = typer.Option(None, "--tokens", metavar="N", help="Training tokens, e.g. 300G (divided by the sequence "
                                                                "length into sequences)."),
    examples: Optional[str] = typer.Option(None, "--examples", "-N", metavar="N", help="Training examples per epoch."),
    epochs: Optional[str] = typer.Option(None, "--epochs", "-E", metavar="N", help="Passes over the examples (default 1)."),
    global_batch: Optional[str] = typer.Option(None, "--global-batch", metavar="N", help="Examples per optimizer step "
                                                                            "(default dp x micro-batch)."),
    micro_batch: Optional[int] = typer.Option(None, "--micro-batch", metavar="N", help="Examples per micro-batch (default: the "
                                                                          "counted batch)."),
    gpu: GpuOption = None,
    num_gpus: Optional[str] = typer.Option(None, "--num-gpus", "-n", metavar="N", help="GPUs in all (default dp x tp x pp)."),
    gpus_per_node: int = typer.Option(8, "--gpus-per-node", metavar="N", help="GPUs per node (default 8)."),
    dp: Optional[int] = typer.Option(None, "--dp", metavar="N", help="Data-parallel replicas."),
    tp: Optional[int] = typer.Option(None, "--tp", metavar="N", help="Tensor-parallel GPUs per replica (Megatron)."),
    pp: Optional[int] = typer.Option(None, "--pp", metavar="N", help="Pipeline stages (1F1B)."),
    zero: Optional[int] = typer.Option(None, "--zero", metavar="0-3", help="ZeRO stage 0-3: partition optimizer states (1), + "
                                                            "gradients (2), + weights (3) over the dp group."),
    sequence_parallel: bool = typer.Option(False, "--sequence-parallel", help="Split the hidden stream's activations "
                                                                               "over the tp group too."),
    recompute: Optional[str] = typer.Option(None, "--recompute", metavar="none|selective|full", help="Activation recomputation: none (default), "
                                                                      "selective (attention scores) or full."),
    precision: PrecisionOption = None,
    optimizer: str = typer.Option("adamw", "--optimizer", metavar="adamw|sgd", help="adamw (default) or sgd (with momentum)."),
    utilization: UtilizationOption = None,
    calibration: CalibrationOption = None,
    catalog: CatalogOption = None,
    intra_node_gbps: Optional[str] = typer.Option(None, "--intra-node-gbps", metavar="GB/s", help="Achievable bus bandwidth per GPU "
                                                  "inside a node, GB/s (nccl-tests busbw; default: the catalogue's "
                                                  "link figure)."),
    inter_node_gbps: Optional[str] = typer.Option(None, "--inter-node-gbps", metavar="GB/s", help="Achievable bus bandwidth per GPU "
                                                  "across nodes, GB/s (default 25, printed as an assumption)."),
    gpu_memory: Optional[str] = typer.Option(None, "--gpu-memory", metavar="GB", help="Memory per GPU in GB (default: the "
                                                                        "catalogue's)."),
    pue: str = typer.Option("1.0", "--pue", metavar="PUE", help="Data-centre power usage effectiveness for energy (>= 1)."),
    price_per_gpu_hour: Optional[str] = typer.Option(None, "--price-per-gpu-hour", metavar="PRICE", help="Price of one GPU-hour."),
    search: bool = typer.Option(False, "--search", help="Try every dp x tp x pp x ZeRO x recompute x micro-batch of "
                                                        "--num-gpus; options given pin their dimension."),
    top: int = typer.Option(10, "--top", metavar="N", help="With --search: how many layouts to show."),
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Will it fit, how to split it, how long it takes: training on a fleet of GPUs."""
    from .. import plan as planning
    from ..calibration import choose_throughput
    from ..catalog import load_catalog
    from ..errors import FlopcalcError
    from ..render.plan import render_plan, render_search

    if (model is None) == (params is None):
        raise UsageError("MODEL and --params exclude each other" if model else "nothing to plan", MODES_HINT)
    spec = None
    if model is not None:
        spec = model_spec(model, input, batch_size, seq_len, (), kwargs, device)
        named = [flag for flag, value in (("--layers", layers), ("--hidden", hidden), ("--ffn", ffn), ("--vocab", vocab))
                 if value is not None]
        if named:
            raise UsageError(f"{', '.join(named)} describe a model given by --params", "a MODEL shows its own shape")
    else:
        no_model_options("plan", input=input, batch_size=batch_size, kwargs=kwargs, device=device)
        if seq_len is None:
            raise UsageError("--params needs --seq-len (tokens per sequence) to size a micro-batch")

    # the fleet first: a typo in a GPU name should not cost a model run
    if gpu is None and calibration is None:
        raise UsageError("no GPU given", "pass --gpu NAME (or --calibration FILE|auto)")
    choice = choose_throughput(gpu=gpu, precision=precision, utilization=parse_utilization(utilization),
                               calibration=calibration, catalogs=catalog or (),
                               model_key=spec.key() if spec is not None else None)
    throughput = choice.throughput
    planning.training_precision(throughput.precision)
    gpus = load_catalog(tuple(catalog or ()))
    try:
        entry = gpus.resolve(gpu or throughput.gpu)
    except FlopcalcError:
        entry = None  # a calibrated device the catalogue lacks
    if gpu_memory is not None:
        memory, memory_origin = parse_si_number(gpu_memory, "--gpu-memory") * planning.GB, "--gpu-memory"
    elif entry is not None and entry.memory_gb:
        memory, memory_origin = entry.memory_gb * planning.GB, f"catalogue, {entry.id}"
    else:
        raise UsageError(f"the catalogue has no memory figure for {gpu or throughput.gpu}", "give --gpu-memory GB")
    measured, fleet_notes = planning.calibrated_bandwidths(calibration, gpu or throughput.gpu, gpus)
    intra = None
    if intra_node_gbps is not None:
        intra = planning.Bandwidth(parse_si_number(intra_node_gbps, "--intra-node-gbps"), "--intra-node-gbps")
    elif measured.get("intra_node_busbw_gbps"):
        intra = planning.Bandwidth(measured["intra_node_busbw_gbps"], f"{measured['label']}, all-reduce busbw")
    elif entry is not None and entry.intra_node_link is not None:
        link = entry.intra_node_link
        intra = planning.Bandwidth(link.per_direction_gbps, f"catalogue, {entry.id}: {link.describe()}; a link "
                                   "peak, not a measured bus bandwidth: give --intra-node-gbps to use nccl-tests' "
                                   "busbw")
    if inter_node_gbps is not None:
        inter = planning.Bandwidth(parse_si_number(inter_node_gbps, "--inter-node-gbps"), "--inter-node-gbps")
    elif measured.get("inter_node_busbw_gbps"):
        inter = planning.Bandwidth(measured["inter_node_busbw_gbps"], f"{measured['label']}, all-reduce busbw")
    else:
        inter = planning.Bandwidth(planning.DEFAULT_INTER_NODE_GBPS, INTER_NODE_ORIGIN)
    fleet = planning.Fleet(
        throughput=throughput, gpu_memory_bytes=memory, memory_origin=memory_origin, gpus_per_node=gpus_per_node,
        intra_node=intra, inter_node=inter, tdp_w=choice.tdp_w, pue=parse_si_number(pue, "--pue"),
        price_per_gpu_hour=_number(price_per_gpu_hour, "--price-per-gpu-hour"), notes=fleet_notes,
    )
    layout_options = {"dp": dp, "tp": tp, "pp": pp, "zero": zero, "recompute": recompute, "micro_batch": micro_batch}
    total_gpus = None if num_gpus is None else parse_num_gpus(num_gpus)
    batch = _whole(global_batch, "--global-batch")
    if search and batch is None:
        raise UsageError("--search needs --global-batch", "every layout must train on the same examples per step")

    if spec is not None:
        planned = planning.model_from_spec(spec, heads=heads, kv_heads=kv_heads)
    else:
        planned = planning.model_from_params(parse_si_number(params, "--params"), seq_len, layers=layers,
                                             hidden=hidden, heads=heads, kv_heads=kv_heads, ffn=ffn, vocab=vocab)
    run = planning.run_size(planned, tokens=_number(tokens, "--tokens"), examples=_number(examples, "--examples"),
                            epochs=_number(epochs, "--epochs"))
    shown = shown_on_terminal(fmt, output)
    if search:
        fixed = {key: value for key, value in layout_options.items() if value is not None}
        result = planning.search(planned, fleet, total_gpus or 1, global_batch=batch, precision=throughput.precision,
                                 optimizer=optimizer, run=run, fixed=fixed, top=top)
        emit(render_search(result, fmt.value), output)
        notes = result.best.notes if result.best else (result.closest.notes if result.closest else ())
    else:
        layout = _layout(planned, total_gpus, batch, sequence_parallel, gpus_per_node, **layout_options)
        result = planning.evaluate(planned, layout, fleet, precision=throughput.precision, optimizer=optimizer, run=run)
        emit(render_plan(result, fmt.value), output)
        notes = result.notes
    notes_to_stderr(notes, shown=shown)


def _layout(model, num_gpus, global_batch, sequence_parallel, gpus_per_node, *, dp, tp, pp, zero, recompute,
            micro_batch):
    """The layout the options name: dp x tp x pp must make --num-gpus; dp defaults to what is left over."""
    from ..plan import Layout

    tp, pp = (1 if tp is None else tp), (1 if pp is None else pp)
    if min(tp, pp, 1 if dp is None else dp) < 1:
        raise UsageError("--dp, --tp and --pp must be whole numbers >= 1")
    if num_gpus is None:
        num_gpus = (1 if dp is None else dp) * tp * pp
    if dp is None:
        if num_gpus % (tp * pp):
            raise UsageError(f"--num-gpus {num_gpus} is not a multiple of tp x pp = {tp * pp}",
                             "dp x tp x pp must make the number of GPUs")
        dp = num_gpus // (tp * pp)
    if dp * tp * pp != num_gpus:
        raise UsageError(f"dp x tp x pp = {dp} x {tp} x {pp} = {dp * tp * pp}, not --num-gpus {num_gpus}",
                         "dp x tp x pp must make the number of GPUs")
    return Layout(dp=dp, tp=tp, pp=pp, zero=0 if zero is None else zero, recompute=recompute or "none",
                  sequence_parallel=sequence_parallel, micro_batch=model.batch if micro_batch is None else micro_batch,
                  global_batch=global_batch, gpus_per_node=gpus_per_node)
