"""`flopcalc infer MODEL --gpu NAME`: serving bounds per layer and per batch size; with --prompt and --generate,
prefill, decode with a KV cache, and what fits. Parses, calls flopcalc.infer, renders."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._app import app, emit
from ._options import (
    CatalogOption,
    CausalHalfOption,
    DeviceOption,
    FormatOption,
    GpuOption,
    InputOption,
    KwargsOption,
    ModelArgument,
    OutputFormat,
    OutputOption,
    PrecisionOption,
    SeqLenOption,
    model_spec,
    notes_to_stderr,
    shown_on_terminal,
)

# Its own --calibration: the shared option's help speaks of --utilization, which infer does not take.
InferCalibrationOption = Annotated[
    Optional[str],
    typer.Option("--calibration", metavar="FILE|auto", help="Price FLOPs at the matmul peak measured by `flopcalc bench --save` (a FILE, "
                                       "or 'auto' for the default file) instead of the datasheet's; bandwidth and "
                                       "memory stay the catalogue's, and --gpu is optional."),
]


@app.command("infer")
def infer_command(
    model: ModelArgument,
    gpu: GpuOption = None,
    batch_size: str = typer.Option("1", "--batch-size", "-b", metavar="N[,N...]", help="Batch sizes to bound, comma-separated: 1,8,64."),
    prompt: Optional[int] = typer.Option(
        None, "--prompt", metavar="TOKENS", help="Prompt tokens P of a generation (causal LMs; with --generate)."),
    generate: Optional[int] = typer.Option(
        None, "--generate", metavar="TOKENS", help="Tokens G to generate after the prompt, one decode step each."),
    precision: PrecisionOption = None,
    compute_precision: Optional[str] = typer.Option(
        None, "--compute-precision", metavar="PRECISION", help="Precision of the FLOPs, whose peak bounds them (int8, fp8 for W8A8/FP8 "
                                          "kernels). Default: --precision."),
    weight_dtype: Optional[str] = typer.Option(
        None, "--weight-dtype", metavar="DTYPE", help="Weights stored as fp32, bf16, fp16, fp8, int8 or int4 (with their scales; "
                                     "see docs/infer.md). Default: --precision."),
    kv_dtype: Optional[str] = typer.Option(None, "--kv-dtype", metavar="DTYPE", help="KV cache stored as fp32, bf16, fp16, fp8, int8 or "
                                                                    "int4. Default: --precision."),
    input: InputOption = [],
    seq_len: SeqLenOption = None,
    kwargs: KwargsOption = None,
    device: DeviceOption = None,
    causal_half: CausalHalfOption = False,
    catalog: CatalogOption = None,
    calibration: InferCalibrationOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Lower bounds of serving a model on a GPU: a roofline per layer (time >= max(FLOPs / peak, bytes /
    bandwidth)), latency and throughput per batch size; prefill, decode and the KV cache with --prompt/--generate."""
    from ..infer import infer
    from ..render.infer import render

    spec = model_spec(model, input, None, seq_len, (), kwargs, device, (), causal_half, backward=False)
    result = infer(spec, gpu=gpu, batch_sizes=batch_size, precision=precision, compute_precision=compute_precision,
                   weight_dtype=weight_dtype, kv_dtype=kv_dtype, prompt=prompt, generate=generate,
                   calibration=calibration, catalogs=tuple(catalog or ()))
    emit(render(result, fmt.value), output)
    notes_to_stderr(result.notes, shown=shown_on_terminal(fmt, output))
