"""`flopcalc bench [MODEL]`: measured matmul TFLOPS (no MODEL), a model's training-step MFU, or (`--distributed`)
a fleet's matmul and network figures, every rank started by torchrun or `--nproc`."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from ..errors import ExitCode, UsageError
from ._app import app, emit
from ._options import (
    CatalogOption,
    ModelOptions,
    OutputOption,
    ReportFormat,
    ReportFormatOption,
    command_line,
    no_model_options,
    notes_to_stderr,
    optional_model_argument,
    shown_on_terminal,
    table_on_terminal,
    with_options,
)


class _ProgressBar:
    """A rich progress bar on stderr that follows the sweep's share of its time budget."""

    def __init__(self, enabled: bool):
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            if not console.is_terminal:  # a log file gets no bar (rich would leave a blank line in it)
                enabled = False
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._progress.add_task("warming up", total=1.0)

        self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._started:
            self._progress.stop()

    def update(self, precision: str, shape, fraction: float) -> None:
        self.show(f"{precision} {shape[0]}x{shape[1]}x{shape[2]}" if precision else "done", fraction)

    def show(self, label: str, fraction: float) -> None:
        if self._progress:
            if not self._started:  # started on the first step, so an early error prints nothing else
                self._progress.start()
                self._started = True
            self._progress.update(self._task, completed=fraction, description=label)


def end_hung_rank(message: str) -> None:
    """A rank stuck where no Python can reach it (a collective past every timeout; called on the heartbeat's
    thread): say so in one line and end the process, so the allocation is not held. Module-level, so the
    launcher can hand it to the ranks it starts."""
    sys.stderr.write(f"flopcalc: error: {message}\n")
    sys.stderr.flush()
    os._exit(int(ExitCode.BAD_INPUT))


BenchModelArgument = optional_model_argument(
    "Model to time training steps of (file.py:callable, .pt, .pt2, config.json). Without it: matmul throughput."
)


@app.command("bench")
@with_options(
    ModelOptions,
    without=("attention_window", "attention_as_math", "device", "weights", "sparsity"),
    after="calibration",
)
def bench(
    ctx: typer.Context,
    model: BenchModelArgument = None,
    device: str = typer.Option(
        "auto",
        "--device",
        metavar="auto|cuda|mps|cpu",
        help="auto | cuda | mps | cpu (auto: CUDA/ROCm, then MPS, then CPU).",
    ),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        metavar="PRECISION[,...]",
        help="Comma list of fp32,tf32,bf16,fp16,fp8,int8 (default: all the device runs in hardware). "
        "With MODEL: one of fp32,tf32,bf16,fp16 (default bf16 on GPUs, fp32 on CPU).",
    ),
    seconds: Optional[float] = typer.Option(
        None,
        "--seconds",
        metavar="SECONDS",
        help="Time budget of the whole run (default 10 s on CPU, 25 s on GPU; --full: 60/120 s).",
    ),
    full: bool = typer.Option(False, "--full", help="A longer, denser sweep with more samples per shape."),
    save: bool = typer.Option(
        False,
        "--save",
        help="Store the result (and the device profile) in the calibration file (--calibration or the default).",
    ),
    force: bool = typer.Option(
        False, "--force", help="With --save: save even when the machine is busy or the samples spread wide."
    ),
    calibration: Optional[str] = typer.Option(
        None,
        "--calibration",
        metavar="FILE",
        help="Calibration file to save to (and, with MODEL, to compare with); 'auto' or unset: the user default.",
    ),
    optimizer: Optional[str] = typer.Option(
        None, "--optimizer", metavar="adamw|sgd", help="Optimizer of MODEL's training step: adamw (default) | sgd."
    ),
    catalog: CatalogOption = None,
    distributed: bool = typer.Option(
        False,
        "--distributed",
        help="Measure a fleet with torch.distributed: every rank's matmul TFLOPS, all-reduce/all-gather/reduce-scatter "
        "bus bandwidth within and between nodes, send/recv. Run it under torchrun, or add --nproc G.",
    ),
    nproc: Optional[int] = typer.Option(
        None,
        "--nproc",
        metavar="N",
        help="With --distributed: start G ranks on this machine through torch's launcher API.",
    ),
    backend: str = typer.Option(
        "auto",
        "--backend",
        metavar="auto|nccl|gloo",
        help="With --distributed: auto (nccl on GPUs, gloo on CPUs), nccl, gloo.",
    ),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        metavar="SECONDS",
        help="With --distributed: seconds any collective or rendezvous may take before the run stops.",
    ),
    max_bytes: Optional[str] = typer.Option(
        None,
        "--max-bytes",
        metavar="BYTES",
        help="With --distributed: largest message (binary prefixes: 64K, 1G; default 1G on GPUs, 4M on CPUs).",
    ),
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Measure what this machine really delivers: matmul TFLOPS per precision, or a model's training-step MFU."""
    model_options = ModelOptions.of(ctx, besides=["device"])  # bench's --device is where it runs
    if distributed or nproc is not None:
        _refuse_single_device_options(full, catalog, distributed, model_options, optimizer)
        if force:
            raise UsageError("--force applies to single-device --save runs", "drop --force")
        result, text = _bench_fleet(
            device, precision, seconds, backend, timeout, max_bytes, nproc, save, calibration, fmt
        )
        if result is None:  # not rank 0: rank 0 alone writes the output
            return
    else:
        _refuse_fleet_options(backend, timeout, max_bytes)
        terminal = table_on_terminal(fmt, output)  # charts for a person, not a file
        result, text = _bench_one_device(
            model_options, optimizer, device, precision, seconds, full, save, calibration, catalog, fmt, force, terminal
        )
    emit(text, output)
    notes_to_stderr(result.notes, shown=shown_on_terminal(fmt, output), warnings=result.warnings)


def _refuse_fleet_options(backend, timeout, max_bytes) -> None:
    """A single-device run takes none of the --distributed run's options."""
    for name, value, default in (
        ("--backend", backend, "auto"),
        ("--timeout", timeout, 60.0),
        ("--max-bytes", max_bytes, None),
    ):
        if value != default:
            raise UsageError(f"{name} applies to --distributed runs")


def _refuse_busy_save(device, save: bool, force: bool) -> None:
    """--save measures an idle machine: refuse a busy CPU before the run (its figures would not be saved)."""
    from ..bench.hardware import available_cpus, load_warning, resolve_device

    if force and not save:
        raise UsageError("--force applies to --save")
    if save and not force:
        busy = load_warning(cpus=available_cpus()) if resolve_device(device) == "cpu" else None
        if busy:  # before the run: its figures would not be saved
            raise UsageError(
                f"will not measure for --save: {busy.split(':')[0]}",
                "rerun when the machine is idle, or pass --force to save anyway",
            )


def _bench_one_device(
    model_options: ModelOptions,
    optimizer,
    device,
    precision,
    seconds,
    full,
    save,
    calibration,
    catalog,
    fmt,
    force,
    terminal,
):
    """The matmul sweep, or a MODEL's training step, on one device: the result and its rendering (`terminal`:
    stdout is a person's terminal, so the table may draw charts)."""
    from ..bench.hardware import catalog_peak_resolver, parse_precisions, resolve_device

    resolve_device(device)  # a bad or absent device fails before any work
    resolver = catalog_peak_resolver(catalog or ())
    _refuse_busy_save(device, save, force)
    if model_options.model is None:
        _refuse_model_options(model_options, optimizer)
        return _bench_matmul(
            device, parse_precisions(precision), seconds, full, save, calibration, resolver, fmt, force, terminal
        )
    if full:
        raise UsageError("--full applies to the matmul sweep, not to a MODEL", "use --seconds for a longer model run")
    spec = model_options.spec()
    optimizer = optimizer or "adamw"
    return _bench_model(spec, device, precision, optimizer, seconds, save, calibration, resolver, fmt, force)


def _refuse_model_options(model_options: ModelOptions, optimizer: Optional[str]) -> None:
    """A run without a MODEL takes none of a model's options, nor an optimizer for its training step."""
    no_model_options("bench", **model_options.given(), optimizer=optimizer)


def _refuse_single_device_options(full, catalog, distributed, model_options, optimizer) -> None:
    """--distributed (or --nproc) takes none of a model's or the single-device sweep's options."""
    if model_options.model is not None or full:
        raise UsageError("--distributed runs the matmul ladder and the collectives; it takes no MODEL and no --full")
    _refuse_model_options(model_options, optimizer)
    if catalog:
        raise UsageError("--catalog does not apply to --distributed", "the fleet reports measured figures only")
    if not distributed:
        raise UsageError("--nproc needs --distributed")


def _bench_matmul(device, precisions, seconds, full, save, calibration, resolver, fmt, force, terminal):
    from dataclasses import replace

    from ..bench.matmul import run_matmul_bench, save_matmul_result
    from ..calibration import resolve_calibration_path
    from ..render.bench import render_matmul

    with _ProgressBar(enabled=fmt == ReportFormat.table) as bar:
        result = run_matmul_bench(
            device, precisions, seconds=seconds, full=full, peak_resolver=resolver, progress=bar.update, profile=save
        )
    if save:
        path = save_matmul_result(result, resolve_calibration_path(calibration), force=force)
        result = replace(result, calibration_file=str(path))
    if fmt is ReportFormat.html:
        from ..render.bench_html import render_matmul_html

        return result, render_matmul_html(result, command_line(), result.to_dict())
    return result, render_matmul(result, fmt.value, terminal=terminal)


def _bench_fleet(device, precision, seconds, backend, timeout, max_bytes, nproc, save, calibration, fmt):
    from functools import partial

    from ..bench import distributed, fleet
    from ..bench.hardware import parse_precisions
    from ..calibration import load_calibration, resolve_calibration_path
    from ..render.bench import render_fleet
    from ..units import parse_bytes
    from ._app import debugging

    if not debugging():
        distributed.quiet_torch_c_logs()  # before torch loads: c10d's socket warnings would bury the one-line errors
    config = fleet.FleetConfig(
        device=device.strip().lower(),
        backend=backend.strip().lower(),
        precisions=parse_precisions(precision),
        seconds=seconds,
        max_bytes=parse_bytes(max_bytes, "--max-bytes") if max_bytes is not None else None,
        timeout_s=timeout,
    )
    path = resolve_calibration_path(calibration) if save else None
    writes = nproc is not None or fleet.LaunchEnv.from_environ().rank == 0
    if path is not None and writes and path.is_file():
        load_calibration(path)  # a malformed file fails now, not after the whole fleet has run
    if nproc is not None:
        bar = partial(_ProgressBar, True) if fmt == ReportFormat.table else None
        result = distributed.launch_fleet(config, nproc, progress_factory=bar, on_hang=end_hung_rank)
    else:
        env = fleet.LaunchEnv.from_environ()
        with _ProgressBar(enabled=fmt == ReportFormat.table and env.rank == 0) as bar:
            result = distributed.run_fleet_bench(config, env, progress=bar.show, on_hang=end_hung_rank)
    if result is None:
        return None, None
    if path is not None:
        from dataclasses import replace

        result = replace(result, calibration_file=str(fleet.save_fleet_result(result, path)))
    if fmt is ReportFormat.html:
        from ..render.bench_fleet_html import render_fleet_html

        return result, render_fleet_html(result, command_line(), result.to_dict())
    return result, render_fleet(result, fmt.value)


def _bench_model(spec, device, precision, optimizer, seconds, save, calibration, resolver, fmt, force):
    from dataclasses import replace

    from ..bench.model import run_model_bench, save_model_result
    from ..calibration import load_calibration, resolve_calibration_path
    from ..render.bench import render_model

    path = resolve_calibration_path(calibration)
    known = None
    if path.is_file():
        known = load_calibration(path)
    elif calibration is not None and not save:
        known = load_calibration(path)  # names the missing file
    result = run_model_bench(
        spec,
        device=device,
        precision=precision,
        optimizer=optimizer.lower(),
        seconds=seconds,
        peak_resolver=resolver,
        calibration=known,
    )
    if save:
        saved = save_model_result(result, path, force=force)
        result = replace(result, calibration_file=str(saved))
    if fmt is ReportFormat.html:
        from ..render.bench_model_html import render_model_bench_html

        return result, render_model_bench_html(result, command_line(), result.to_dict())
    return result, render_model(result, fmt.value)
