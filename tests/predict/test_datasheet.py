"""flopcalc.predict.datasheet and the profile's overrides: a catalogue GPU without a measured profile gets its
datasheet's peaks at the reference profile's published efficiencies, each source saying the curve was borrowed."""

from dataclasses import replace

import pytest

from flopcalc.device import resolve_device
from flopcalc.predict import (
    REFERENCE_DEVICE,
    TrainingLayout,
    TransformerShape,
    datasheet_profile,
    load_profiles,
    predict_step,
)


def test_a_datasheet_profile_takes_the_peaks_and_borrows_the_curves():
    reference = load_profiles(precision="bf16")[REFERENCE_DEVICE]
    profile, line = datasheet_profile(resolve_device("L4", "bf16"))
    assert profile.device == "L4" and line.startswith("no measured profile for L4")
    assert profile.matmul.peak == 121e12 and profile.memory.peak == 300e9
    assert profile.vector.peak == pytest.approx(121e12 * 78 / 312, rel=1e-12)
    assert profile.matmul.efficiency.points == reference.matmul.efficiency.points
    assert "borrowed from the A100-SXM4-80GB profile: L4 is not measured" in profile.memory.efficiency.source
    assert "intra_node" not in profile.networks  # a PCIe card: the catalogue gives no link
    assert profile.network("inter_node").bandwidth == 25e9


def test_the_a100_datasheet_profile_predicts_within_a_percent_of_the_published_one():
    """The same curves on the datasheet's 312 TFLOP/s (78 vector), 2,039 GB/s and 300 GB/s NVLink: only the
    memory peak differs from the published profile's 2,048 GB/s, so the step barely moves."""
    published = load_profiles(precision="bf16")[REFERENCE_DEVICE]
    built, _ = datasheet_profile(resolve_device("A100-SXM4-80GB", "bf16"))
    assert built.network("intra_node").bandwidth == published.network("intra_node").bandwidth == 300e9
    shape = TransformerShape(48, 6144, 64, 2048, 51200)
    layout = TrainingLayout(tp=8, micro_batch=4, global_batch=4, recompute="full")
    assert predict_step(shape, layout, built).step_s == pytest.approx(
        predict_step(shape, layout, published).step_s, rel=0.01
    )


def test_a_gpu_without_a_memory_bandwidth_gets_no_profile_and_a_reason():
    device = replace(resolve_device("L4", "bf16"), memory_bandwidth=None)
    profile, line = datasheet_profile(device)
    assert profile is None and line == "the catalogue has no memory bandwidth for L4"


def test_the_profile_takes_the_device_rooms_links_and_their_sources():
    device = resolve_device("H100-SXM", "bf16")
    profile, _ = datasheet_profile(device, gpus_per_node=4)
    intra, inter = profile.network("intra_node"), profile.network("inter_node")
    assert intra.bandwidth == device.intra_node.value * 1e9 and intra.gpus == 4
    assert intra.source.startswith(device.intra_node.source)
    assert inter.bandwidth == device.inter_node.value * 1e9 and inter.source.startswith(device.inter_node.source)
