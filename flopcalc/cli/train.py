"""`flopcalc train`: training compute from a model file, from FLOPs per example, or from 6ND; with --gpu,
GPU-hours, GPU-days, wall clock, energy and cost. torch loads only when a model file is counted."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Optional

import typer

from ..compute import check_run_size
from ..errors import FlopcalcError, UsageError
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
    number,
    optional_model_argument,
    parse_num_gpus,
    progress,
    with_options,
)

MODES_HINT = (
    "give a MODEL file with --examples, or --flops-per-example F with --examples, "
    "or --params N (--active-params N for a mixture of experts) with --tokens D"
)


def check_all_2_4(report) -> None:
    """--sparse-peak holds only when every weight a matmul or convolution multiplies by is 2:4."""
    if report.sparse_pattern == "2:4":
        return
    other = next((w for w in report.sparsity or () if w.pattern != "2:4"), None)
    what = (
        f"{other.name} is {'not N:M sparse' if other.pattern is None else other.pattern + ' sparse'}, not 2:4"
        if other is not None
        else "no weight was multiplied by a matmul or convolution"
    )
    raise UsageError(
        f"--sparse-peak: {what}; sparse tensor cores run 2:4 weights only",
        "prune every layer 2:4 along its input dimension, or drop --sparse-peak for the dense peak",
    )


def sparsity_notes(report, training_flops: float, sparse_peak: bool) -> tuple[str, ...]:
    """The effective training FLOPs (zero weights skipped) and what the sparse peak assumes."""
    if report.sparsity is None or not report.total:
        return ()
    notes = [
        f"sparsity: effective training FLOPs (products with a zero weight left out) "
        f"{training_flops * report.effective_total / report.total:.4g}, {report.effective_total / report.total:.1%} "
        "of the dense figure above, which the time and cost use"
    ]
    if sparse_peak:
        notes.append(
            "the 2:4-sparse peak is dense-equivalent (dense FLOPs over it give the time); weight gradients "
            "multiply no weight and run on dense kernels, so this time is a lower bound"
        )
    return tuple(notes)


def _training_size_mode(
    model: Optional[str],
    flops_per_example: Optional[str],
    params: Optional[str],
    active_params: Optional[str],
    tokens: Optional[str],
    examples: Optional[str],
    epochs: Optional[str],
) -> tuple[str, Optional[float], Optional[float]]:
    """Which one way of giving the training size was used, and the examples and epochs it takes."""
    if params is not None and active_params is not None:
        raise UsageError(
            "--params and --active-params exclude each other",
            "give the total with --params, or a mixture of experts' active parameters with --active-params",
        )
    modes = [
        name
        for name, given in (
            ("MODEL", model),
            ("--flops-per-example", flops_per_example),
            ("--params/--tokens", params or active_params or tokens),
        )
        if given
    ]
    if len(modes) != 1:
        raise UsageError(
            "no training size given" if not modes else f"{' and '.join(modes)} exclude each other", MODES_HINT
        )
    n_examples = number(examples, "--examples")
    n_epochs = 1 if epochs is None else number(epochs, "--epochs")  # `--epochs 0` is refused, never read as 1
    if modes[0] == "--params/--tokens":
        if (params is None and active_params is None) or tokens is None:
            raise UsageError("6ND needs --params (or --active-params) and --tokens", MODES_HINT)
        if examples is not None or epochs is not None:
            raise UsageError("--examples/--epochs do not apply to --params/--tokens", "D counts every token trained on")
    elif n_examples is None:
        raise UsageError(f"{modes[0]} needs --examples N (training examples per epoch)", MODES_HINT)
    else:
        check_run_size(n_examples, n_epochs)  # before a model is counted: a typo should not cost a count
    return modes[0], n_examples, n_epochs


def _model_spec_or_none(options: ModelOptions, sparse_peak: bool):
    """The model to count, or None after checking that no option that needs one was given."""
    spec = options.spec_or_none("count", besides=["weights", "sparsity"], sparse_peak=sparse_peak)
    if spec is None and (options.weights is not None or options.sparsity or sparse_peak):
        raise UsageError(
            "--weights, --sparsity and --sparse-peak read a model's weights: give a MODEL file", MODES_HINT
        )
    return spec


def _teacher_of(teacher: TeacherOptions, teacher_logits, spec):
    """The distillation teacher's spec (None without --teacher), with --teacher-logits checked."""
    if teacher_logits not in ("live", "cached"):
        raise UsageError(f"--teacher-logits must be live or cached, got {teacher_logits!r}")
    teacher_of = teacher.spec(spec)
    if teacher_of is None and teacher_logits != "live":
        raise UsageError("--teacher-logits needs --teacher MODEL")
    return teacher_of


@dataclass(frozen=True)
class _GpuPlan:
    """The chosen GPU throughput and the fleet options it goes with, read before any count."""

    choice: Any
    fleet_options: dict
    profile_file: Any


def _gpu_plan(spec, options: GpuOptions, sparse_peak) -> Optional[_GpuPlan]:
    """The GPU and fleet options (None without --gpu or --calibration, which then must stand alone)."""
    from ..calibration import profile_file_of
    from ..device import profiled_device

    grid = options.grid()
    profile_file = profile_file_of(options.calibration)  # a device profile file: the step-time model's rates
    if options.calibration is None and options.gpu is None:
        if options.need_a_gpu() or grid is not None:
            raise UsageError(
                "--precision, --utilization, --num-gpus, --price-per-gpu-hour, --grid-intensity and --region "
                "need --gpu NAME (or --calibration FILE|auto)"
            )
        return None
    profiled = replace(
        options,
        gpu=options.gpu or (profiled_device(profile_file, options.precision) if profile_file else None),
        calibration=None if profile_file else options.calibration,
    )
    choice = profiled.throughput(model_key=spec.key() if spec is not None else None, sparse_peak=sparse_peak)
    fleet_options = dict(
        throughput=choice.throughput,
        num_gpus=parse_num_gpus(options.num_gpus),
        tdp_w=choice.tdp_w,
        pue=options.pue_value(),
        price_per_gpu_hour=options.price(),
        grid=grid,
    )
    return _GpuPlan(choice, fleet_options, profile_file)


def _counted_report(spec, model, lora, with_shape: bool):
    """The model's count (with its LoRA adapters when given), the transformer shape the step-time model needs
    (only when a GPU is given) and the adapters' summary."""
    from ..api import count_adapted, count_spec, count_with_activations
    from ..plan import model_from_report

    if lora is not None:
        with progress(f"counting {model} with its adapters"):
            report, _, summary = count_adapted(spec, lora, with_activations=False)
        adapted = (
            f"{lora.describe()}: {len(summary.adapted)} Linear layers adapted; the base is frozen (its input "
            "gradients are counted, its weight gradients are not)"
        )
        return replace(report, notes=report.notes + (adapted,)), None, summary.to_dict()
    planned = None
    try:  # with a GPU, the activations' pass also shows the transformer shape the step-time model needs
        with progress(f"counting {model}"):
            report, saved = count_with_activations(spec) if with_shape else (count_spec(spec), None)
        planned = None if saved is None else model_from_report(report, saved, source=spec.source)
    except FlopcalcError:  # an ONNX graph never runs, some models cannot be measured: count them as before
        report = count_spec(spec)
    return report, planned, None


def _with_taught(result, teacher_of, teacher_logits: str):
    """The training result with the distillation teacher's forward per example added."""
    from ..api import count_teacher
    from ..compute import with_teacher

    taught = count_teacher(teacher_of)
    result = with_teacher(
        result, Fraction(taught.report.forward, taught.report.batch_size), cached_logits=teacher_logits == "cached"
    )
    teacher_notes = (
        f"counted: {taught.report.forward:,} forward FLOP per batch of {taught.report.batch_size}",
        *taught.report.notes,
    )
    return replace(result, notes=tuple(result.notes) + tuple(f"teacher: {note}" for note in teacher_notes))


def _counted_training(spec, model, lora, teacher_of, teacher_logits, n_examples, n_epochs, sparse_peak, with_shape):
    """Training compute from a counted model: the result, its transformer shape, conventions and adapters."""
    from ..api import training
    from ..conventions import conventions_for

    report, planned, adapters = _counted_report(spec, model, lora, with_shape)
    result = training(report, n_examples, n_epochs)
    if sparse_peak:
        check_all_2_4(report)
    result = replace(result, notes=tuple(result.notes) + sparsity_notes(report, result.training_flops, sparse_peak))
    conventions = conventions_for(report) if lora is None else None  # 6N and kin assume every weight trains
    if teacher_of is not None:
        result = _with_taught(result, teacher_of, teacher_logits)
    return result, planned, conventions, adapters


def _on_fleet(result, gpu_plan: Optional[_GpuPlan], planned, utilization_given: bool):
    """The result with the step-time model's notes, and its GPU-hours, energy and cost (None without a GPU)."""
    from ..compute import fleet_estimate
    from ..plan import training_throughput

    if gpu_plan is None:
        return result, None
    choice = gpu_plan.choice
    throughput, timing = training_throughput(
        choice.throughput,
        planned,
        device=choice.device,
        num_gpus=gpu_plan.fleet_options["num_gpus"],
        profile_file=gpu_plan.profile_file,
        utilization_given=utilization_given,
    )
    fleet_options = {**gpu_plan.fleet_options, "throughput": throughput}
    result = replace(result, notes=tuple(result.notes) + choice.notes + timing)
    return result, fleet_estimate(result.training_flops, **fleet_options)


TrainModelArgument = optional_model_argument(
    "Model to count: file.py:callable, file.py, .pt, .pt2, .onnx, "
    "config.json, Hub id org/name, timm:NAME or torchvision:NAME (or use --flops-per-example, or --params with --tokens)."
)


@app.command("train")
@with_options(ModelOptions, without=("frozen", "causal_half"), after="model")
@with_options(TeacherOptions, after="adapter_config")
@with_options(LoraOptions, after="calibration")
@with_options(GpuOptions, after="tokens")
def train_command(
    ctx: typer.Context,
    model: TrainModelArgument = None,
    sparse_peak: bool = typer.Option(
        False,
        "--sparse-peak",
        help="Use the GPU's 2:4-sparse tensor-core peak: only for "
        "a MODEL whose weights are all 2:4 (read from them) on a GPU with sparse cores.",
    ),
    examples: Optional[str] = typer.Option(
        None, "--examples", "-N", metavar="N", help="Training examples per epoch, e.g. 1.28M."
    ),
    epochs: Optional[str] = typer.Option(
        None, "--epochs", "-E", metavar="N", help="Passes over the examples (default 1)."
    ),
    flops_per_example: Optional[str] = typer.Option(
        None, "--flops-per-example", metavar="FLOP", help="Forward FLOPs per example (backward assumed 2x), e.g. 4.1G."
    ),
    params: Optional[str] = typer.Option(
        None, "--params", metavar="N", help="Parameters N for 6ND, e.g. 175e9 or 175G."
    ),
    active_params: Optional[str] = typer.Option(
        None,
        "--active-params",
        metavar="N",
        help="Active parameters N for 6ND of a "
        "mixture of experts (the top-k experts a token runs through plus "
        "everything else, e.g. 12.9G for Mixtral-8x7B); instead of --params.",
    ),
    tokens: Optional[str] = typer.Option(
        None, "--tokens", metavar="N", help="Training tokens D for 6ND, e.g. 300e9 or 300G."
    ),
    teacher_logits: str = typer.Option(
        "live",
        "--teacher-logits",
        metavar="live|cached",
        help="With --teacher: live "
        "(the teacher runs every epoch, default) or cached (its logits computed once "
        "per example and stored).",
    ),
    fmt: ReportFormatOption = ReportFormat.table,
    output: OutputOption = None,
) -> None:
    """Training compute = (forward + backward FLOPs per example) x examples x epochs, and its cost on GPUs.

    With --teacher, the teacher's forward per example is added (distillation); with --lora-rank, the model is
    counted with LoRA adapters in it and its base frozen."""
    from ..compute import training_from_forward, training_from_params_tokens

    mode, n_examples, n_epochs = _training_size_mode(
        model, flops_per_example, params, active_params, tokens, examples, epochs
    )
    spec = _model_spec_or_none(ModelOptions.of(ctx), sparse_peak)
    gpu = GpuOptions.of(ctx)
    if sparse_peak and gpu.gpu is None:
        raise UsageError("--sparse-peak needs --gpu NAME", "e.g. --gpu A100 --sparse-peak")
    lora = LoraOptions.of(ctx).config(model)
    teacher_of = _teacher_of(TeacherOptions.of(ctx), teacher_logits, spec)
    gpu_plan = _gpu_plan(spec, gpu, sparse_peak)  # before counting: a typo should not cost a model run

    planned = conventions = adapters = None
    if spec is not None:
        result, planned, conventions, adapters = _counted_training(
            spec, model, lora, teacher_of, teacher_logits, n_examples, n_epochs, sparse_peak, gpu_plan is not None
        )
    elif mode == "--flops-per-example":
        result = training_from_forward(parse_si_number(flops_per_example, "--flops-per-example"), n_examples, n_epochs)
    else:
        flag, n = ("--params", params) if params is not None else ("--active-params", active_params)
        result = training_from_params_tokens(
            parse_si_number(n, flag), parse_si_number(tokens, "--tokens"), active=flag == "--active-params"
        )

    result, fleet = _on_fleet(result, gpu_plan, planned, gpu.utilization is not None)
    emit(_rendered(result, fleet, fmt, model or "", conventions, adapters), output)


def _rendered(result, fleet, fmt: ReportFormat, source: str, conventions, adapters) -> str:
    """The estimate in the chosen format: the table's formats, or (html) the page with its charts."""
    from ..render.compute import render_training
    from ..thresholds import crossed

    options = dict(source=source, conventions=conventions, thresholds=crossed(result.training_flops), adapters=adapters)
    if fmt is ReportFormat.html:
        from ..render.train_html import render_training_html

        return render_training_html(result, fleet, command_line(), **options)
    return render_training(result, fleet, fmt.value, **options)
