"""The figures a plan takes as given, each with its origin, and the notes a layout earns."""

from __future__ import annotations

from ..predict import OVERLAP_RULES
from ..units import GB, GIB
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .predicted import prediction_shape


def _prediction(fleet: Fleet, shape_lines: tuple[str, ...]) -> list[str]:
    """What the step-time model read: the profile's figures and the overlap rules, each with its source."""
    profile, t = fleet.profile, fleet.throughput
    assert profile is not None
    return [
        f"step time predicted by flopcalc.predict on the {profile.device} device profile (its figures below): "
        "each GEMM at the matmul efficiency of its own size, memory-bound kernels at their bytes, collectives at "
        "their message size, the 1F1B schedule; MFU and HFU are outputs, against the peak "
        f"{t.peak_flops / 1e12:.4g} TFLOP/s ({t.origin}); give --utilization to replace the prediction",
        *shape_lines,
        *(f"profile: {line}" for line in profile.sources()),
        *(f"overlap: {rule}" for rule in OVERLAP_RULES),
    ]


def assumptions(
    model: PlanModel, fleet: Fleet, precision: TrainingPrecision, optimizer: str, num_gpus: int
) -> tuple[str, ...]:
    """The figures a plan takes as given, each with its origin: printed so nobody mistakes them for measurements."""
    t = fleet.throughput
    shape, shape_lines = prediction_shape(model, fleet, precision)
    if shape is not None:
        timing = _prediction(fleet, shape_lines)
    else:
        timing = [
            *shape_lines,
            f"{t.gpu or 'GPU'}, {t.precision}: peak {t.peak_flops / 1e12:.4g} TFLOP/s ({t.origin}) x utilization "
            f"{t.utilization:.4g} while computing = {t.sustained_flops / 1e12:.4g} TFLOP/s per GPU",
        ]
    lines = [
        *model.method,
        *fleet.timing_notes,
        *timing,
        f"GPU memory {fleet.gpu_memory_bytes / GIB:.4g} GiB = {fleet.gpu_memory_bytes / GB:.4g} GB "
        f'({fleet.memory_origin or "given"}; memory sizes are binary: an "80 GB" GPU holds 80 GiB); '
        + (
            f"{fleet.memory_reserve_bytes / GIB:.4g} GiB set aside ({fleet.reserve_origin or 'given'}), "
            f"{fleet.usable_memory_bytes / GIB:.4g} GiB for the model"
            if fleet.memory_reserve_bytes
            else "nothing set aside for the CUDA context, communication buffers or fragmentation"
        ),
        precision.describe(optimizer) + " (ZeRO paper, Rajbhandari et al. 2020)",
    ]
    if num_gpus > 1:
        lines.extend(fleet.notes)
    if num_gpus > 1 and shape is None:
        if fleet.intra_node is not None:
            lines.append(
                f"intra-node bus bandwidth {fleet.intra_node.gbps:.4g} GB/s per GPU ({fleet.intra_node.origin})"
            )
        if num_gpus > fleet.gpus_per_node:
            lines.append(
                f"inter-node bus bandwidth {fleet.inter_node.gbps:.4g} GB/s per GPU ({fleet.inter_node.origin})"
            )
    if num_gpus > 1:
        lines.append(
            f"{fleet.gpus_per_node} GPUs per node, filled tensor-parallel ranks first, then data-parallel, "
            "then pipeline stages (Megatron-LM's order)"
        )
    if num_gpus > 1 and shape is None:
        lines.append(
            "data-parallel gradient communication overlaps the backward (ZeRO-3's gathers also the forward); "
            "tensor- and pipeline-parallel communication is exposed"
        )
    return tuple(lines)


def layout_notes(model: PlanModel, layout: Layout) -> tuple[str, ...]:
    notes = list(model.notes)
    if layout.zero and layout.data_group == 1:  # context-parallel ranks share the states too
        notes.append(f"ZeRO-{layout.zero} with dp 1 partitions nothing: the model states are those of ZeRO-0")
    if layout.sequence_parallel and layout.tp == 1:
        notes.append("--sequence-parallel with tp 1 splits nothing")
    if layout.zero >= 2 and layout.pp > 1:
        notes.append(
            f"ZeRO-{layout.zero} with pipeline parallelism: DeepSpeed's pipeline engine refuses ZeRO-2/3 (it "
            "takes ZeRO-1); check that your framework combines them (FSDP with torch.distributed.pipelining "
            "does)"
        )
    if (
        layout.recompute == "selective"
        and model.activations is not None
        and not model.activations.block_scores.floating_elements
    ):
        notes.append("selective recomputation drops nothing here: the attention keeps no score matrix (a fused kernel)")
    return tuple(notes)
