"""infer on a device profile: each layer one kernel, its multiply-adds at the matmul curve, the rest at the vector
one, its bytes at the memory curve, by flopcalc.predict; decode steps summed under the profile's rule."""

import pytest

from flopcalc.device import Curve, DeviceProfile, Rate, load_profiles
from flopcalc.infer import LayerBound, PassBound, infer
from flopcalc.infer.bounds import compute_bound_from, profile_seconds
from flopcalc.infer.steps import steps_time, sum_of_sum
from flopcalc.spec import ModelSpec


def flat_profile(kernel_time="sum"):
    """A profile whose efficiencies do not depend on size: 100 TFLOP/s matmul at 0.5, 10 TFLOP/s vector at 0.8,
    1,000 GB/s memory at 0.9."""

    def rate(peak, efficiency, unit):
        return Rate(peak, "given", Curve(((0.0, efficiency),), "given"), unit)

    return DeviceProfile(
        "A100-SXM4-80GB",
        "by hand",
        rate(100e12, 0.5, "GFLOP"),
        rate(10e12, 0.8, "GFLOP"),
        rate(1000e9, 0.9, "MB"),
        {},
        ("bf16",),
        kernel_time,
        "given",
    )


def test_a_layer_on_a_profile_by_hand():
    profile = flat_profile()
    compute, memory = profile_seconds(profile, matmul_flops=4e9, flops=4.2e9, nbytes=9e6)
    assert compute == pytest.approx(4e9 / 50e12 + 0.2e9 / 8e12, rel=1e-12)
    assert memory == pytest.approx(9e6 / 900e9, rel=1e-12)
    layer = LayerBound("fc", "Linear", 4.2e9, 9e6, 0.0, 0.0, 0.0, compute, memory, "sum", 4e9, profile)
    assert layer.time_s == pytest.approx(compute + memory, rel=1e-12) and layer.bound == "compute"
    assert LayerBound("fc", "Linear", 4.2e9, 9e6, 0.0, 0.0, 0.0, compute, memory).time_s == compute  # a roofline


def test_a_grown_batch_is_priced_again_at_its_size():
    """On the shipped A100 profile the matmul efficiency grows with the GEMM (0.1 below 1 GFLOP, 0.6 from 1): a
    layer of 2 MFLOP scaled to 1,024 x the batch (2.1 GFLOP) is priced at the larger GEMM's efficiency, not at
    1,024 x the small one's time."""
    profile = load_profiles(precision="bf16")["A100-SXM4-80GB"]
    n = 1024
    flops, weights, activations = 2 * n * n, 2 * n * n, 4 * n
    compute, memory = profile_seconds(profile, flops, flops, weights + activations)
    layer = LayerBound(
        "fc", "Linear", flops, weights, activations, 0.0, 0.0, compute, memory, profile.kernel_time, flops, profile
    )
    grown = PassBound((layer,)).scaled(1024).layers[0]
    expected = profile_seconds(profile, 1024 * flops, 1024 * flops, weights + 1024 * activations)
    assert (grown.compute_s, grown.memory_s) == expected
    assert grown.compute_s == pytest.approx(1024 * compute * 0.1 / 0.6, rel=1e-12)
    assert compute_bound_from(PassBound((layer,)), 1) is not None


def test_decode_steps_under_the_sum_rule_are_the_mean_step_times_the_steps():
    profile = flat_profile()
    first = PassBound((LayerBound("a", "Linear", 10, 0, 0, 0, 0, 1.0, 4.0, "sum", 10, profile),))
    last = PassBound((LayerBound("a", "Linear", 30, 0, 0, 0, 0, 3.0, 6.0, "sum", 30, profile),))
    # steps of (1 + 4), (2 + 5), (3 + 6): memory is the larger part
    assert steps_time(first, last, 3) == (0.0, 5.0 + 7.0 + 9.0)
    assert sum_of_sum(6.0, 8.0, 1.0, 1.0, 2) == (16.0, 0.0)


def test_a_linear_predicted_on_the_shipped_profile(tmp_path):
    from flopcalc.predict import default_profiles_text

    path = tmp_path / "profiles.yaml"
    text = default_profiles_text()
    path.write_text(text[: text.index("  - device: H100-SXM")])
    n = 1024
    model = tmp_path / "model.py"
    model.write_text(
        f"import torch\nfrom torch import nn\n\ndef build():\n    return nn.Linear({n}, {n}, bias=False)\n\n"
        f"def example_inputs():\n    return (torch.randn(1, {n}),)\n"
    )
    result = infer(ModelSpec(f"{model}:build"), calibration=str(path), batch_sizes="1,512")
    profile = load_profiles(path, precision="bf16")["A100-SXM4-80GB"]
    assert result.hardware.gpu == "A100-SXM4-80GB" and result.hardware.time_model == "predicted"
    for batch in result.batches:  # bf16: 2 bytes for the weights, the input and the output
        b = batch.batch_size
        flops, moved = 2 * b * n * n, 2 * (n * n + 2 * b * n)
        compute = flops / profile.matmul.achieved(flops / 1e9)
        memory = moved / profile.memory.achieved(moved / 1e6)
        assert batch.latency_s == pytest.approx(
            compute + memory if profile.kernel_time == "sum" else max(compute, memory), rel=1e-12
        )
        assert batch.latency_s > max(flops / 312e12, moved / 2039e9)  # slower than the roofline bound
    assert result.notes[0].startswith("times are predictions on the A100-SXM4-80GB device profile")
