"""`flopcalc count MODEL`: parse options into a ModelSpec, count it, render."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Optional

import typer

from ..errors import UsageError
from ..spec import DEFAULT_MAX_LAYERS
from ._app import app, emit
from ._options import (
    BatchSizeOption,
    CausalHalfOption,
    DecoderSeqLenOption,
    DeviceOption,
    DimOption,
    FormatOption,
    FrozenOption,
    InputOption,
    KwargsOption,
    ModelArgument,
    OutputFormat,
    OutputOption,
    SeqLenOption,
    model_spec,
    notes_to_stderr,
    shown_on_terminal,
)


def parse_depth(text: str) -> int:
    if text.strip().lower() in ("all", "-1"):
        return -1
    try:
        depth = int(text)
    except ValueError:
        raise UsageError(f"--depth {text!r} is not a number", "use a number, or 'all'") from None
    if depth < 0:
        raise UsageError(f"--depth {depth} is negative", "use 0 for the model alone, or 'all'")
    return depth


@app.command("count")
def count_command(
    model: ModelArgument,
    input: InputOption = [],
    batch_size: BatchSizeOption = None,
    seq_len: SeqLenOption = None,
    decoder_seq_len: DecoderSeqLenOption = None,
    dim: DimOption = [],
    kwargs: KwargsOption = None,
    device: DeviceOption = None,
    no_backward: bool = typer.Option(False, "--no-backward", help="Count the forward pass only (inference)."),
    frozen: FrozenOption = [],
    causal_half: CausalHalfOption = False,
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 2) when an op has no FLOP formula."),
    unit: str = typer.Option("flop", "--unit", metavar="flop|mac", help="flop (1 multiply-add = 2 FLOPs) or mac."),
    depth: str = typer.Option("2", "--depth", "-d", metavar="N|all", help="Module tree depth shown in tables; 'all' or -1 for all."),
    compare: Optional[str] = typer.Option(None, "--compare", metavar="fvcore,torch", help="Also run other counters on the same model and "
                                          "inputs and name why they differ: fvcore, torch, or fvcore,torch."),
    max_layers: int = typer.Option(DEFAULT_MAX_LAYERS, "--max-layers", metavar="N", help="Refuse, before building, a Hugging Face "
                                   "config declaring more layers (each is built and run: about 0.05 s per layer)."),
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Count forward and backward FLOPs per layer, parameters, and FLOPs by category."""
    from ..api import count_spec
    from ..conventions import conventions_for
    from ..render.count import render

    if unit not in ("flop", "mac"):
        raise UsageError(f"--unit {unit!r} is not flop or mac")
    if compare is not None and fmt is OutputFormat.csv:
        raise UsageError("--compare shows in the table, markdown and json formats, not in csv (module rows only)",
                         "use --format json for the comparison's figures")
    shown_depth = parse_depth(depth)
    spec = model_spec(model, input, batch_size, seq_len, dim, kwargs, device, frozen, causal_half, not no_backward,
                      decoder_seq_len=decoder_seq_len)
    spec = replace(spec, max_layers=max_layers)
    comparison = None
    if compare is not None:
        from ..compare import compare_spec, parse_counters

        comparison = compare_spec(spec, parse_counters(compare), strict=strict).in_unit(unit)
        counted = comparison.report
    else:
        counted = count_spec(spec, strict=strict)
    conventions = conventions_for(counted)
    report = counted.in_unit(unit)
    color = output is None and fmt is OutputFormat.table and sys.stdout.isatty()
    blocks = {"conventions": conventions.to_dict()} if conventions is not None else {}
    emit(render(report, fmt.value, shown_depth, color, blocks=blocks, comparison=comparison), output)
    notes_to_stderr(report.notes, shown=shown_on_terminal(fmt, output))
