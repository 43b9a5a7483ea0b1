"""`flopcalc count MODEL`: parse options, call the counting library, render."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UsageError
from ._app import OutputFormat, app, emit


def parse_kwargs(text: Optional[str]) -> dict:
    """`--kwargs '{"depth": 50}'` -> a dict."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--kwargs is not valid JSON: {error.msg}", "write e.g. --kwargs '{\"depth\": 50}'") from None
    if not isinstance(value, dict):
        raise UsageError("--kwargs must be a JSON object", "write e.g. --kwargs '{\"depth\": 50}'")
    return value


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


def parse_dims(values: List[str]) -> dict:
    """`--dim batch=8 --dim seq=128` -> {"batch": 8, "seq": 128}."""
    dims = {}
    for text in values:
        name, sep, size = text.partition("=")
        if not sep or not name.strip() or not size.strip().isdigit():
            raise UsageError(f"--dim {text!r} is not NAME=SIZE", "write e.g. --dim batch=8")
        dims[name.strip()] = int(size)
    return dims


DEVICE_HELP = "meta (default: no memory; falls back to cpu if the model cannot run there), cpu, or cuda."


@app.command("count")
def count_command(
    model: str = typer.Argument(
        ..., help="file.py:callable, file.py, TorchScript .pt/.pth/.ts, torch.export .pt2, ONNX .onnx, or a Hugging Face config.json"
    ),
    input: List[str] = typer.Option([], "--input", "-i", help="Input shape per positional argument: 1x3x224x224, 8,1024:int64."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Override the leading dimension of every input."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence for a Hugging Face config.json (default min(max positions, 2048))."),
    dim: List[str] = typer.Option([], "--dim", help="Size a symbolic ONNX input dimension: --dim batch=8 (repeatable)."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", help="JSON object passed to the model callable."),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    no_backward: bool = typer.Option(False, "--no-backward", help="Count the forward pass only (inference)."),
    frozen: List[str] = typer.Option([], "--frozen", help="Freeze parameters/modules matching this pattern (repeatable)."),
    causal_half: bool = typer.Option(False, "--causal-half", help="Count causal attention over the lower triangle only."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 2) when an op has no FLOP formula."),
    unit: str = typer.Option("flop", "--unit", help="flop (1 multiply-add = 2 FLOPs) or mac."),
    depth: str = typer.Option("2", "--depth", "-d", help="Module tree depth shown in tables; 'all' or -1 for all."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead of stdout."),
) -> None:
    """Count forward and backward FLOPs per layer, parameters, and FLOPs by category."""
    from ..counting.counter import count_source
    from ..render.count import render

    if unit not in ("flop", "mac"):
        raise UsageError(f"--unit {unit!r} is not flop or mac")
    if device is not None and device not in ("meta", "cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"--device {device!r} is not meta, cpu or cuda")
    shown_depth = parse_depth(depth)
    report = count_source(
        model,
        inputs=input or None,
        batch_size=batch_size,
        kwargs=parse_kwargs(kwargs),
        device=device,
        backward=not no_backward,
        frozen=frozen,
        causal_half=causal_half,
        strict=strict,
        seq_len=seq_len,
        dims=parse_dims(dim),
    ).in_unit(unit)
    color = output is None and fmt is OutputFormat.table and sys.stdout.isatty()
    emit(render(report, fmt.value, shown_depth, color), output)
    if fmt is not OutputFormat.table or output is not None:
        for note in report.notes:  # the table shows them; elsewhere they must not be lost
            typer.echo(f"flopcalc: note: {note}", err=True)
