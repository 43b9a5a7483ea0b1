"""Fine-tuning plans: a model counted with LoRA adapters in its graph and its base frozen at a (quantised) dtype,
and a distillation teacher's frozen weights, outputs and forward added (docs/adapters.md)."""

from __future__ import annotations

from dataclasses import replace

from ..adapters import LoraConfig, base_dtype, frozen_weight_bytes
from ..errors import one_of
from ..spec import ModelSpec
from .hardware import GIB
from .model import FineTuning, PlanModel, model_from_report

# the frozen weights' dtype when none is given: the training precision's 16- or 32-bit weights
DEFAULT_DTYPE = {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32", "tf32": "fp32"}


def frozen_dtype(name: str | None, precision: str, flag: str) -> str:
    """The dtype frozen weights are held at: `name` checked, or the training precision's."""
    if name is not None:
        return base_dtype(name).name
    return one_of(
        DEFAULT_DTYPE,
        precision,
        f"frozen weights have no default dtype in {precision} training",
        f"give {flag} bf16 or fp32",
    )


def model_with_adapters(
    spec: ModelSpec, lora: LoraConfig, *, dtype: str, heads: int | None = None, kv_heads: int | None = None
) -> PlanModel:
    """Count the spec's model with LoRA in it (flopcalc.api) and measure its activations; the frozen base's
    bytes at `dtype` (nf4 and int8 with their quantisation scales)."""
    from ..api import count_adapted

    report, profile, summary = count_adapted(spec, lora)
    assert profile is not None
    planned = model_from_report(report, profile, source=spec.source, heads=heads, kv_heads=kv_heads)
    stored = base_dtype(dtype)
    frozen = frozen_weight_bytes(summary.frozen, stored)
    method = (
        f"{lora.describe()}: {len(summary.adapted)} Linear layers adapted, {summary.trainable_params:,} of "
        f"{summary.params:,} parameters train (gradients and optimizer states for those only); the frozen base, "
        f"{summary.frozen_params:,} parameters, held at {stored.description} = {frozen / GIB:.4g} GiB",
    )
    tuning = FineTuning(summary.trainable_params, float(frozen), stored.name, summary.to_dict())
    return replace(planned, tuning=tuning, method=planned.method + method)


def with_teacher(model: PlanModel, spec: ModelSpec, *, dtype: str) -> PlanModel:
    """Add a distillation teacher: count its forward (flopcalc.api), its weights at `dtype`, and its outputs,
    scaled from its batch to the student's counted batch."""
    from ..api import count_teacher

    teacher = count_teacher(spec)
    stored = base_dtype(dtype)
    weights = frozen_weight_bytes(teacher.weights, stored)
    scale = model.batch / teacher.report.batch_size
    forward = teacher.report.forward * scale
    outputs = teacher.output_elements * scale
    tuning = model.tuning or FineTuning(model.params)
    tuning = replace(
        tuning,
        teacher_source=spec.source,
        teacher_params=teacher.report.params,
        teacher_bytes=float(weights),
        teacher_dtype=stored.name,
        teacher_forward_flops=float(forward),
        teacher_output_elements=float(outputs),
    )
    method = (
        f"distillation from {spec.source}: {teacher.report.params:,} frozen parameters at {stored.description} "
        f"= {weights / GIB:.4g} GiB on every GPU, no gradients or optimizer states; its forward, "
        f"{forward:,.0f} FLOP per micro-batch of {model.batch}, added to each step, and its {outputs:,.0f} "
        "output elements (the logits the loss reads) kept at the activation width; its forward keeps nothing "
        "for a backward, and its largest transient tensor is not counted",
    )
    notes = tuple(f"teacher: {note}" for note in teacher.report.notes)
    return replace(model, tuning=tuning, method=model.method + method, notes=model.notes + notes)
