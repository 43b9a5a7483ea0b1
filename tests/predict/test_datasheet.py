"""flopcalc.predict.datasheet and the profile's overrides: a catalogue GPU without a measured profile gets its
datasheet's peaks at the reference profile's published efficiencies, each source saying the curve was borrowed."""

import pytest

from flopcalc.catalog import load_catalog
from flopcalc.predict import (REFERENCE_DEVICE, TrainingLayout, TransformerShape, collective_s, datasheet_profile,
                              load_profiles, predict_step, with_bus_bandwidth)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(())


def test_a_datasheet_profile_takes_the_peaks_and_borrows_the_curves(catalog):
    reference = load_profiles(precision="bf16")[REFERENCE_DEVICE]
    profile, line = datasheet_profile(catalog.resolve("L4"), "bf16")
    assert profile.device == "L4" and line.startswith("no measured profile for L4")
    assert profile.matmul.peak == 121e12 and profile.memory.peak == 300e9
    assert profile.vector.peak == pytest.approx(121e12 * 78 / 312, rel=1e-12)
    assert profile.matmul.efficiency.points == reference.matmul.efficiency.points
    assert "borrowed from the A100-SXM4-80GB profile: L4 is not measured" in profile.memory.efficiency.source
    assert "intra_node" not in profile.networks  # a PCIe card: the catalogue gives no link
    assert profile.network("inter_node").bandwidth == 25e9


def test_the_a100_datasheet_profile_predicts_within_a_percent_of_the_published_one(catalog):
    """The same curves on the datasheet's 312 TFLOP/s (78 vector), 2,039 GB/s and 300 GB/s NVLink: only the
    memory peak differs from the published profile's 2,048 GB/s, so the step barely moves."""
    published = load_profiles(precision="bf16")[REFERENCE_DEVICE]
    built, _ = datasheet_profile(catalog.resolve("A100-SXM4-80GB"), "bf16")
    assert built.network("intra_node").bandwidth == published.network("intra_node").bandwidth == 300e9
    shape = TransformerShape(48, 6144, 64, 2048, 51200)
    layout = TrainingLayout(tp=8, micro_batch=4, global_batch=4, recompute="full")
    assert predict_step(shape, layout, built).step_s == pytest.approx(predict_step(shape, layout, published).step_s,
                                                                      rel=0.01)


def test_a_gpu_without_the_precision_or_a_bandwidth_gets_no_profile_and_a_reason(catalog):
    profile, line = datasheet_profile(catalog.resolve("T4"), "bf16")
    assert profile is None and line == "the catalogue has no bf16 peak for T4"


def test_a_given_bus_bandwidth_replaces_the_networks_curves():
    profile = load_profiles(precision="bf16")[REFERENCE_DEVICE]
    given = with_bus_bandwidth(profile, "inter_node", 40, "--inter-node-gbps")
    network = given.network("inter_node")
    assert network.bandwidth == 40e9 and network.latency_s == profile.network("inter_node").latency_s
    # an all-reduce of 1 GB over 16 GPUs: 2 x 15/16 x 1e9 / 40e9 s plus 30 ring steps of latency
    assert collective_s(network, "all_reduce", 1e9, 16) == pytest.approx(2 * 15 / 16 * 1e9 / 40e9 + 30 * 2e-6)
    assert given.network("intra_node") == profile.network("intra_node")
