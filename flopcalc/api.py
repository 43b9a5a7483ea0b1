"""The front door: a model (a ModelSpec, a source string, or an nn.Module) -> load -> count -> report.

Every command that takes a model calls these, and so can any Python program:

    flopcalc.count(model, (x,))                                   # an nn.Module and its inputs
    flopcalc.count("examples/cnn.py:build", ["8x3x32x32"])        # a source and --input specs
    flopcalc.count(ModelSpec("llama/config.json", seq_len=2048))  # everything a count can be told

`load` is the road's first half for callers that also run the model (bench); `training` goes on to compute.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from .adapters import LoraConfig, WeightEntry
from .compute import TrainingCompute, training_from_report
from .conventions import detect_transformer
from .counting.activations import ActivationProfile
from .counting.report import CountReport
from .counting.traffic import TrafficReport
from .errors import (
    ArgumentTypeError,
    FlopcalcError,
    InsufficientMemoryError,
    ModelBuildError,
    ModelRunError,
    UsageError,
    check_number,
)
from .loaders import LoadedModel, check_input_names, example_inputs_kept, is_hub_id, load_model, make_inputs
from .loaders.hf_config import config_attention_window, config_path
from .spec import CallArgs, ModelSpec, tensors_in
from .units import format_si

T = TypeVar("T")

# what a ModelSpec may be given as keywords of `count`
_SPEC_OPTIONS = frozenset(ModelSpec.__dataclass_fields__) - {"source", "inputs"}


def as_spec(model: ModelSpec | str | os.PathLike[str], inputs: Any = None, **options: Any) -> ModelSpec:
    """A ModelSpec from a spec (kept as is) or a source string with `--input` specs and spec options."""
    if isinstance(model, ModelSpec):
        if inputs is not None or options:
            raise UsageError("give inputs and options inside the ModelSpec, not beside it")
        return model
    unknown = sorted(set(options) - _SPEC_OPTIONS)
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(unknown)}", f"a ModelSpec takes {', '.join(sorted(_SPEC_OPTIONS))}"
        )
    if isinstance(inputs, str):
        inputs = [inputs]
    return ModelSpec(os.fspath(model), inputs=tuple(inputs or ()), **options)


def count(model: Any, inputs: Any = None, *, strict: bool = False, **options: Any) -> CountReport:
    """Count forward and backward FLOPs per layer (1 multiply-add = 2 FLOPs).

    `model` is a ModelSpec, a source string (`file.py:callable`, `.pt`, `.pt2`, `.onnx`, `config.json`) with
    `inputs` as `--input` specs and ModelSpec options as keywords, or an `nn.Module` with `inputs` as the
    tensors to call it with (options: `backward`, `frozen`, `causal_half`, `name`).
    `strict=True` raises UnsupportedOpsError when an op has no formula.
    """
    if isinstance(model, (ModelSpec, str, os.PathLike)):
        return count_spec(as_spec(model, inputs, **options), strict=strict)
    from .counting.counter import count as count_module

    report = count_module(model, inputs, strict=strict, **options)
    return replace(report, transformer=detect_transformer(model))


def count_spec(spec: ModelSpec, *, strict: bool = False) -> CountReport:
    """Load the spec's model and count it.

    With no device given, it is built and counted on the meta device and, when that fails (the model reads
    values: `.item()`, data-dependent shapes), on the CPU, with a note. ONNX graphs are counted from their
    shapes, forward only.
    """

    def work(loaded: LoadedModel, example: Any) -> CountReport:
        if loaded.kind == "onnx":
            if spec.sparsity:
                raise UsageError(
                    f"--sparsity reads weight values from a PyTorch model; {spec.source} is an ONNX "
                    "graph, counted from its shapes",
                    "give the PyTorch model, or drop --sparsity",
                )
            from .counting.onnx_graph import count_onnx

            return count_onnx(loaded.module, spec, strict=strict)
        return _count_loaded(loaded, example, spec, strict)

    report, loaded, fallback = on_meta_then_cpu(spec, work)
    if loaded.kind == "onnx":
        return report
    return _with_notes(report, *fallback, *loader_notes(loaded, spec))


def count_with_activations(spec: ModelSpec, *, strict: bool = False) -> tuple[CountReport, ActivationProfile]:
    """Count the spec's model and measure what its backward keeps (`activations`), from one load: on meta,
    falling back to the CPU as `count_spec` does. ONNX graphs never run, so they have no activations."""

    def work(loaded: LoadedModel, example: Any) -> tuple[CountReport, ActivationProfile]:
        if loaded.kind == "onnx":
            raise UsageError(
                f"{spec.source} is an ONNX graph: it is counted from shapes and never runs, so its "
                "activations cannot be measured",
                "give the PyTorch model, or a config.json",
            )
        from .counting.saved_tensors import measure_activations

        return _count_loaded(loaded, example, spec, strict), measure_activations(loaded.module, example)

    (report, profile), loaded, fallback = on_meta_then_cpu(spec, work)
    return _with_notes(report, *fallback, *loader_notes(loaded, spec)), profile


def count_adapted(
    spec: ModelSpec, lora: LoraConfig, *, with_activations: bool = True, strict: bool = False
) -> tuple[CountReport, ActivationProfile | None, Any]:
    """Count the spec's model with LoRA adapters put in (flopcalc.adapters): the base frozen, so its weight
    gradients are not counted and its input gradients are; with `with_activations`, what the backward keeps with
    the adapters in the graph. Returns the report, the profile (or None) and the AdapterSummary."""

    def work(loaded: LoadedModel, example: Any) -> tuple[CountReport, ActivationProfile | None, Any]:
        if loaded.kind == "onnx":
            raise UsageError(
                f"{spec.source} is an ONNX graph: LoRA adapters cannot be put into it",
                "give the PyTorch model, or a config.json",
            )
        from .adapters.lora import attach_lora
        from .counting.saved_tensors import measure_activations

        summary = attach_lora(loaded.module, lora)
        report = _count_loaded(loaded, example, spec, strict)
        profile = measure_activations(loaded.module, example) if with_activations else None
        return report, profile, summary

    (report, profile, summary), loaded, fallback = on_meta_then_cpu(spec, work)
    return _with_notes(report, *fallback, *loader_notes(loaded, spec)), profile, summary


@dataclass(frozen=True)
class TeacherCount:
    """A distillation teacher: its forward counted alone (`report`), its parameters as storage sees them, and the
    elements of what its forward returns (the logits the distillation loss reads)."""

    report: CountReport
    weights: tuple[WeightEntry, ...]
    output_elements: int


def count_teacher(spec: ModelSpec, *, strict: bool = False) -> TeacherCount:
    """Count a distillation teacher's forward (no backward: it is frozen) and read its weights and outputs."""
    spec = replace(spec, backward=False)

    def work(loaded: LoadedModel, example: Any) -> TeacherCount:
        if loaded.kind == "onnx":
            raise UsageError(
                f"--teacher {spec.source} is an ONNX graph: its weights and outputs cannot be read",
                "give the PyTorch model, or a config.json",
            )
        import torch

        from .adapters.lora import weight_inventory

        report = _count_loaded(loaded, example, spec, strict)
        with torch.no_grad():
            output = CallArgs.of(example).call(loaded.module)
        elements = sum(t.numel() for t in {id(t): t for t in tensors_in(output)}.values())
        return TeacherCount(report, weight_inventory(loaded.module), elements)

    teacher, loaded, fallback = on_meta_then_cpu(spec, work)
    return replace(teacher, report=_with_notes(teacher.report, *fallback, *loader_notes(loaded, spec)))


def activations(model: Any, inputs: Any = None, **options: Any) -> ActivationProfile:
    """What a training step's backward keeps of the model's forward: the bytes autograd saves, by where they
    live (counting/activations.py). `model` and `inputs` as in `count`: an `nn.Module` with its input tensors
    (on meta, no memory is used), or a ModelSpec / source string with `--input` specs and spec options."""
    if isinstance(model, (ModelSpec, str, os.PathLike)):
        return count_with_activations(as_spec(model, inputs, **options))[1]
    from .counting.saved_tensors import measure_activations

    return measure_activations(model, inputs)


def on_meta_then_cpu(spec: ModelSpec, work: Callable[[LoadedModel, Any], T]) -> tuple[T, LoadedModel, tuple[str, ...]]:
    """The one load pipeline: `work(loaded, inputs)` on the spec's device; with none given, on meta and, when the
    model cannot run there, on the CPU behind the memory guard (`check_fits_in_memory`). Returns its result, the
    loaded model, and the note saying so when it fell back. Every command that runs a model goes through here."""
    # sparsity reads weight values: it needs a real device from the start
    attempts = [spec.device] if spec.device else (["cpu"] if spec.sparsity else ["meta", "cpu"])
    first_error: FlopcalcError | None = None
    on_meta: Any = None  # the model as built on meta: what a CPU build would allocate is read from it
    for attempt in attempts:
        loaded = None
        try:
            if attempt == "cpu":
                check_fits_in_memory(spec, on_meta, first_error)
            loaded, example = load(spec, attempt)
            result = work(loaded, example)
        except (ModelBuildError, ModelRunError) as error:
            if attempt == "meta" and len(attempts) > 1:
                first_error, on_meta = error, (loaded.module if loaded is not None else None)
                continue
            raise
        fallback = (
            ()
            if first_error is None
            else (f"the model could not run on the meta device ({first_error.message}); counted on cpu",)
        )
        return result, loaded, fallback
    raise AssertionError("unreachable")


def check_fits_in_memory(spec: ModelSpec, on_meta: Any = None, meta_error: FlopcalcError | None = None) -> None:
    """Stop before building on the CPU what the CPU cannot hold: the OS would kill the process, with no message.

    The bytes are those of the model built on meta (`on_meta`; a Hugging Face config is built there for the
    purpose when it was not): parameters and buffers at their dtypes, plus the parameters' gradients when the
    backward is counted. Activations come on top, so this is the least the build needs. Unknown available
    memory, or a model that could not be built on meta, is not checked."""
    if on_meta is None and (config_path(spec.source) is not None or is_hub_id(spec.source)) and meta_error is None:
        try:
            on_meta = load_model(spec, device="meta").module
        except ModelBuildError:  # it may build on the CPU all the same; then it cannot be measured first
            return
    if on_meta is None:
        return
    available = available_memory()
    weights, gradients = model_bytes(on_meta, backward=spec.backward)
    if available is None or weights + gradients <= available:
        return
    why = f"it could not run on the meta device ({meta_error.message}); " if meta_error is not None else ""
    raise InsufficientMemoryError(
        f"building {spec.source} on the cpu needs at least {format_si(weights + gradients, 'B')} (parameters and "
        f"buffers {format_si(weights, 'B')}"
        + (f", gradients {format_si(gradients, 'B')}" if gradients else "")
        + f") and {format_si(available, 'B')} is available: {why}not built",
        "count it on a machine with that memory, or a copy of the config with fewer layers (FLOPs scale per layer)",
    )


def model_bytes(module: Any, *, backward: bool) -> tuple[int, int]:
    """(parameters + buffers, gradients of the parameters that train) in bytes, each tensor once."""
    tensors = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    weights = sum(t.numel() * t.element_size() for t in tensors.values())
    gradients = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad) if backward else 0
    return weights, gradients


def available_memory() -> int | None:
    """Bytes this process can still allocate: the smaller of the system's available memory and what its
    cgroup (a container's limit) leaves; None where neither can be read."""
    candidates = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:
                candidates.append(int(limit) - int(Path(usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return max(0, min(candidates)) if candidates else None


def load(spec: ModelSpec, device: str) -> tuple[LoadedModel, Any]:
    """The spec's model on `device` and the inputs to call it with (None for an ONNX graph, which never runs)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is visible to torch", "use --device cpu or meta")
    loaded = load_model(spec, device=device)
    if loaded.kind == "onnx":
        return loaded, None
    if spec.dims:
        raise UsageError("--dim applies to ONNX graphs", "give --input SHAPE for this model")
    check_input_names(spec, loaded.module, loaded.kind)
    return loaded, make_inputs(
        spec, loaded.example_inputs, device=_device_of(loaded.module, device), module=loaded.module
    )


def count_loaded(loaded: LoadedModel, example: Any, spec: ModelSpec, *, strict: bool = False) -> CountReport:
    """Count a model already loaded by `load` (bench loads once, counts it, then times it)."""
    return _with_notes(_count_loaded(loaded, example, spec, strict), *loader_notes(loaded, spec))


def count_traffic(
    model: Any,
    inputs: Any,
    *,
    cache: Any = None,
    causal_half: bool = False,
    strict: bool = False,
    name: str | None = None,
    sparsity: bool = False,
    attention_window: int | None = None,
) -> tuple[CountReport, TrafficReport]:
    """Forward FLOPs per layer and the bytes each layer moves (counting/traffic.py), from one run of
    `model(*inputs)` (or `model(**inputs)` for a dict). `cache`: the KV cache object among the inputs (a
    transformers Cache, or tuples of tensors); what it holds is read as cache and what the forward adds to it
    is written as cache."""
    from .counting.counter import count as count_module
    from .counting.traffic import TrafficTracer, cache_tensors

    tracer = TrafficTracer(model, cache_tensors(cache))
    returned: list[Any] = []
    # what the model returns is written; a second output of an op nobody reads (batch norm's statistics) is not
    try:
        hook = model.register_forward_hook(lambda module, args, output: returned.append(output))
    except (AttributeError, RuntimeError):  # a ScriptModule takes no Python hooks: every unread tensor is an output
        hook = None
    try:
        report = count_module(
            model,
            inputs,
            backward=False,
            causal_half=causal_half,
            strict=strict,
            name=name,
            observe=tracer,
            sparsity=sparsity,
            attention_window=attention_window,
        )
    finally:
        if hook is not None:
            hook.remove()
    return report, tracer.report(cache_tensors(cache), returned if hook is not None else None)


def example_inputs(spec: ModelSpec, loaded: LoadedModel, device: str) -> Any:
    """The inputs `spec` asks for (its --input specs, --batch-size) for a model `load` already built: a batch
    sweep changes the spec's batch size and keeps the model."""
    return make_inputs(spec, loaded.example_inputs, device=_device_of(loaded.module, device), module=loaded.module)


def training(model: ModelSpec | CountReport | str, examples: float, epochs: float = 1) -> TrainingCompute:
    """Training compute = (forward + backward per example) x examples x epochs, counted from the model (or a
    report already counted); a source whose backward cannot be counted (ONNX) assumes 2x forward, noted."""
    check_number(examples, "examples")
    check_number(epochs, "epochs")
    if not isinstance(model, (ModelSpec, CountReport, str, os.PathLike)):
        raise ArgumentTypeError(
            f"model must be a ModelSpec, a source or a CountReport, got {type(model).__name__}",
            "count it first: flopcalc.training(flopcalc.count(...), examples)",
            field="model",
        )
    report = model if isinstance(model, CountReport) else count_spec(as_spec(model))
    return training_from_report(report, examples, epochs)


def _count_loaded(loaded: LoadedModel, example: Any, spec: ModelSpec, strict: bool) -> CountReport:
    from .counting.counter import count as count_module

    window, window_note = attention_window(loaded, spec)
    report = count_module(
        loaded.module,
        example,
        backward=spec.backward,
        frozen=spec.frozen,
        causal_half=spec.causal_half,
        strict=strict,
        name=spec.source,
        sparsity=spec.sparsity,
        attention_window=window,
    )
    report = replace(report, transformer=detect_transformer(loaded.module))
    return _with_notes(report, window_note) if window_note else report


def attention_window(loaded: LoadedModel, spec: ModelSpec) -> tuple[int | None, str | None]:
    """The sliding window attention is counted with: --attention-window, else the config's `sliding_window`;
    none with --attention-as-math (the full square). With it, a note when the config names a window not used."""
    if spec.attention_as_math:
        return None, None
    if spec.attention_window is not None:
        return spec.attention_window, None
    if loaded.kind != "huggingface":
        return None, None
    return config_attention_window(loaded.module)


def loader_notes(loaded: LoadedModel, spec: ModelSpec) -> tuple[str, ...]:
    """What the loader said about the model, about its example inputs when those were used, and about each
    example input --input did not replace."""
    kept = example_inputs_kept(spec, loaded.example_inputs, loaded.module)
    used = not spec.inputs or bool(kept)
    return (
        loaded.notes
        + (loaded.example_notes if used else ())
        + tuple(note for name, note in loaded.input_notes.items() if name in kept)
    )


def _device_of(module: Any, default: str) -> str:
    """Where the loaded module's parameters live (a loader may keep a model on cpu that cannot move)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return str(tensor.device)
    return default


def _with_notes(report: CountReport, *notes: str) -> CountReport:
    return replace(report, notes=report.notes + tuple(notes)) if notes else report
