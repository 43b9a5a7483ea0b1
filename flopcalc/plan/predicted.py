"""One optimizer step by the step-time model (flopcalc.predict) on the fleet's device profile: each GEMM at its own
size's efficiency, memory-bound kernels at their bytes, collectives at their message size with the stated overlap
rules, the (interleaved) 1F1B schedule with the fullest stage setting the pace (docs/plan.md, "Time per step")."""

from __future__ import annotations

from ..errors import CalibrationError
from ..predict import DeviceProfile, StepPrediction, TrainingLayout, TransformerShape, predict_step
from .hardware import Fleet
from .layout import Layout
from .model import PlanModel
from .precision import TrainingPrecision
from .result import StepTime
from .schedule import utilization

PREDICTED_PRECISIONS = ("bf16", "fp16")  # the profiles' peaks and the model's 2-byte activations are 16-bit


def prediction_shape(model: PlanModel, fleet: Fleet, precision: TrainingPrecision) -> tuple[TransformerShape | None,
                                                                                             tuple[str, ...]]:
    """The shape the step-time model predicts this plan's steps from, with where it came from; or None and why
    the plan falls back to peak x utilization."""
    if fleet.profile is None:
        return None, ()
    if precision.name not in PREDICTED_PRECISIONS:
        return None, (f"the step-time model covers 16-bit training (bf16, fp16), not {precision.name}: step time is "
                      "peak x utilization",)
    shape, lines = model.gemm_shape()
    if shape is None:
        return None, (f"no step-time prediction: {lines[0]}; step time is peak x utilization (give --layers, "
                      "--hidden and --heads with --params for a prediction)",)
    return shape, lines


def predicted_step_time(model: PlanModel, layout: Layout, fleet: Fleet, shape: TransformerShape) -> StepTime:
    """The step of `layout` as flopcalc.predict times it, in plan's StepTime terms: compute, tensor- and
    pipeline-parallel time summed over the m micro-batches of the slowest stage, the bubble as a fraction of the
    step's pipeline time ((p-1)/v slots of m + (p-1)/v), the data-parallel time and what of it is exposed."""
    for group, stride, what in ((layout.tp, 1, "tensor parallelism"), (layout.dp, layout.tp, "data parallelism"),
                                (layout.pp, layout.tp * layout.dp, "pipeline parallelism")):
        if group > 1:
            fleet.link(group, stride, layout.num_gpus, what)  # a group inside a node needs an intra-node figure
    assert fleet.profile is not None
    training = TrainingLayout(
        tp=layout.tp, pp=layout.pp, dp=layout.dp, micro_batch=layout.micro_batch, global_batch=layout.batch,
        virtual=layout.virtual, recompute=layout.recompute, sequence_parallel=layout.split_sequence, zero=layout.zero,
        fused_attention=model.fused_attention, gpus_per_node=layout.gpus_per_node,
        stage_split=layout.stage_layers)
    prediction = predict_step(shape, training, fleet.profile)
    m, slowest = layout.grad_accum, prediction.slowest
    compute = m * (slowest.forward_s + slowest.backward_s + slowest.recompute_s)
    tp_comm, pp_comm = m * slowest.tp_comm_s, m * slowest.p2p_s
    bubble_slots = (layout.pp - 1) / layout.virtual
    exposed = tp_comm + pp_comm + prediction.dp_exposed_s + prediction.embedding_sync_s
    mfu, hfu = utilization(model, layout, fleet, prediction.step_s)
    figures = prediction.to_dict()
    for key in ("sources", "rules", "mfu", "hfu"):  # said once in the assumptions; MFU and HFU are the step's
        figures.pop(key)
    return StepTime(compute, prediction.dp_comm_s, tp_comm, pp_comm, bubble_slots / (m + bubble_slots), exposed,
                    prediction.step_s, "predicted", mfu, hfu, prediction.optimizer_s, figures)


def training_prediction(model: PlanModel, profile: DeviceProfile, num_gpus: int) -> tuple[StepPrediction | None,
                                                                                          tuple[str, ...]]:
    """`train`'s step on `num_gpus` GPUs of `profile`: plain data parallelism, one micro-batch of the counted batch
    per GPU per step, ZeRO-0, no recomputation; and lines saying what was assumed (None and why when the model has
    no transformer shape to lay GEMMs out from, or the profile lacks a network the step needs)."""
    shape, lines = model.gemm_shape()
    if shape is None:
        return None, (f"no predicted MFU: {lines[0]}",)
    layout = TrainingLayout(dp=num_gpus, micro_batch=model.batch, global_batch=model.batch * num_gpus,
                            fused_attention=model.fused_attention)
    try:
        prediction = predict_step(shape, layout, profile)
    except CalibrationError as error:
        return None, (f"no predicted MFU: {error.message}",)
    return prediction, (*lines, f"predicted step: data parallel over {num_gpus} GPU{'s' if num_gpus > 1 else ''}, a "
                                f"micro-batch of {model.batch} per GPU per step, ZeRO-0, no recomputation")


def predicted_utilization(model: PlanModel, prediction: StepPrediction, peak_flops: float) -> float:
    """The counted FLOPs of one micro-batch's forward and backward over the predicted step x the peak: the
    utilization at which the training's FLOPs take the predicted time."""
    return (model.forward_flops + model.backward_flops) / (prediction.step_s * peak_flops)
