"""`flopcalc infer MODEL --gpu NAME`: serving bounds per layer and per batch size; with --prompt and --generate,
prefill, decode with a KV cache, and what fits. Parses, calls flopcalc.infer, renders."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._app import app, emit
from ._options import (
    CatalogOption,
    GpuOption,
    ModelArgument,
    ModelOptions,
    OutputOption,
    PrecisionOption,
    ReportFormat,
    ReportFormatOption,
    command_line,
    notes_to_stderr,
    number,
    progress,
    shown_on_terminal,
    table_on_terminal,
    with_options,
)

# Its own --calibration: the shared option's help speaks of --utilization, which infer does not take.
InferCalibrationOption = Annotated[
    Optional[str],
    typer.Option(
        "--calibration",
        metavar="FILE|auto",
        help="A device profile file: predict each layer's time from the GPU's "
        "measured matmul efficiency by size and memory bandwidth (docs/infer.md). Or "
        "`flopcalc bench --save`'s file (or 'auto'): price FLOPs at its measured "
        "matmul peak instead of the datasheet's. --gpu is optional with either.",
    ),
]


@app.command("infer")
@with_options(ModelOptions, without=("batch_size", "decoder_seq_len", "dim", "frozen", "sparsity"), after="kv_dtype")
def infer_command(
    ctx: typer.Context,
    model: ModelArgument,
    gpu: GpuOption = None,
    batch_size: str = typer.Option(
        "1", "--batch-size", "-b", metavar="N[,N...]", help="Batch sizes to bound, comma-separated: 1,8,64."
    ),
    prompt: Optional[int] = typer.Option(
        None, "--prompt", metavar="TOKENS", help="Prompt tokens P of a generation (causal LMs; with --generate)."
    ),
    generate: Optional[int] = typer.Option(
        None, "--generate", metavar="TOKENS", help="Tokens G to generate after the prompt, one decode step each."
    ),
    precision: PrecisionOption = None,
    compute_precision: Optional[str] = typer.Option(
        None,
        "--compute-precision",
        metavar="PRECISION",
        help="Precision of the FLOPs, whose peak bounds them (int8, fp8 for W8A8/FP8 kernels). Default: --precision.",
    ),
    weight_dtype: Optional[str] = typer.Option(
        None,
        "--weight-dtype",
        metavar="DTYPE",
        help="Weights stored as fp32, bf16, fp16, fp8, int8 or int4 (with their scales; "
        "see docs/infer.md). Default: --precision.",
    ),
    kv_dtype: Optional[str] = typer.Option(
        None,
        "--kv-dtype",
        metavar="DTYPE",
        help="KV cache stored as fp32, bf16, fp16, fp8, int8 or int4. Default: --precision.",
    ),
    sparsity: bool = typer.Option(
        False,
        "--sparsity",
        help="Read the weights (on the cpu): 2:4 ones are stored "
        "compressed, half the values plus a 2-bit index each (see docs/compression.md).",
    ),
    sparse_peak: bool = typer.Option(
        False,
        "--sparse-peak",
        help="Price FLOPs at the GPU's 2:4-sparse peak: only when "
        "every weight is 2:4 and the GPU has sparse tensor cores.",
    ),
    catalog: CatalogOption = None,
    calibration: InferCalibrationOption = None,
    tp: int = typer.Option(
        1,
        "--tp",
        metavar="T",
        help="Tensor-parallel GPUs per replica: weight matrices, heads and KV "
        "cache split T ways, 2 all-reduces per layer (with --generate).",
    ),
    pp: int = typer.Option(1, "--pp", metavar="P", help="Pipeline stages per replica: the layers split P ways."),
    replicas: int = typer.Option(
        1, "--replicas", "-n", metavar="N", help="Replicas of the T x P GPUs (throughput x N)."
    ),
    gpus_per_node: int = typer.Option(
        8,
        "--gpus-per-node",
        metavar="N",
        help="GPUs per node (default 8): which links tensor and pipeline traffic use.",
    ),
    intra_node_gbps: Optional[str] = typer.Option(
        None,
        "--intra-node-gbps",
        metavar="GB/s",
        help="Link inside a node per GPU per direction (default: the catalogue's NVLink peak), for --tp/--pp.",
    ),
    inter_node_gbps: Optional[str] = typer.Option(
        None,
        "--inter-node-gbps",
        metavar="GB/s",
        help="Link between nodes per GPU (default: one 200 Gb/s NIC, 25 GB/s), for pipeline hops between nodes.",
    ),
    steps: Optional[int] = typer.Option(
        None, "--steps", metavar="N", help="Denoising steps per sample of a diffusion model (a diffusers config)."
    ),
    guidance: bool = typer.Option(
        False, "--guidance", help="Classifier-free guidance: each denoising step runs two latents per sample."
    ),
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Lower bounds of serving a model on a GPU: a roofline per layer (time >= max(FLOPs / peak, bytes /
    bandwidth)), latency and throughput per batch size; prefill, decode and the KV cache with --prompt/--generate."""
    from ..infer import infer
    from ..render.infer import render

    spec = ModelOptions.of(ctx, besides=["batch_size"]).spec(backward=False, sparse_peak=sparse_peak)
    with progress(f"counting {model}'s passes for serving bounds"):
        result = infer(
            spec,
            gpu=gpu,
            batch_sizes=batch_size,
            precision=precision,
            compute_precision=compute_precision,
            weight_dtype=weight_dtype,
            kv_dtype=kv_dtype,
            prompt=prompt,
            generate=generate,
            calibration=calibration,
            catalogs=tuple(catalog or ()),
            sparse_peak=sparse_peak,
            tp=tp,
            pp=pp,
            replicas=replicas,
            gpus_per_node=gpus_per_node,
            intra_node_gbps=number(intra_node_gbps, "--intra-node-gbps"),
            inter_node_gbps=number(inter_node_gbps, "--inter-node-gbps"),
            steps=steps,
            guidance=guidance,
        )
    if fmt is ReportFormat.html:
        from ..render.infer_html import render_html

        text = render_html(result, command_line(), result.to_dict())
    else:
        text = render(result, fmt.value, terminal=table_on_terminal(fmt, output))
    emit(text, output)
    notes_to_stderr(result.notes, shown=shown_on_terminal(fmt, output))
