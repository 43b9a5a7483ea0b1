"""The step-time model: a device profile's size-dependent rates applied to each kernel, collective and pipeline
slot of a training step. A library: it never prints (docs/validation.md). The profile types live in
`flopcalc.device` (with every other figure of a device) and are re-exported here."""

from __future__ import annotations

from ..device import Curve, DeviceProfile, Network, Rate, default_profiles_text, device_profile, load_profiles
from .comm import collective_s, ring_steps, traffic_factor
from .datasheet import REFERENCE_DEVICE, datasheet_profile
from .graph import GraphPrediction, KernelModel, OpCall, OpTime, predict_ops, time_ops, trace_ops
from .layer import LayerWork, Op, TransformerShape, embedding_work, head_work, layer_work
from .schedule import bubble_fraction, given_stage_layers, pipeline_slots, stage_layers
from .step import OVERLAP_RULES, StageTime, StepPrediction, TrainingLayout, kernel_seconds, op_s, ops_s, predict_step

__all__ = [
    "Curve",
    "DeviceProfile",
    "GraphPrediction",
    "KernelModel",
    "LayerWork",
    "Network",
    "OVERLAP_RULES",
    "Op",
    "OpCall",
    "OpTime",
    "REFERENCE_DEVICE",
    "Rate",
    "StageTime",
    "StepPrediction",
    "TrainingLayout",
    "TransformerShape",
    "bubble_fraction",
    "collective_s",
    "datasheet_profile",
    "default_profiles_text",
    "device_profile",
    "embedding_work",
    "given_stage_layers",
    "head_work",
    "kernel_seconds",
    "layer_work",
    "load_profiles",
    "op_s",
    "ops_s",
    "pipeline_slots",
    "predict_ops",
    "predict_step",
    "ring_steps",
    "stage_layers",
    "time_ops",
    "trace_ops",
    "traffic_factor",
]
