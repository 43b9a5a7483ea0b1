"""flopcalc.plan.resolve_fleet: a fleet's figures from plain values, each labelled with where it came from; the
overrides win over the catalogue, and energy and cost follow compute's one rule."""

import pytest

from flopcalc.compute import energy_kwh, fleet_estimate, gpu_hours_cost
from flopcalc.errors import FlopcalcError, UsageError
from flopcalc.plan import (
    DEFAULT_INTER_NODE_GBPS,
    GIB,
    INTER_NODE_ORIGIN,
    Layout,
    RunSize,
    evaluate,
    layout_from_options,
    model_from_params,
    resolve_fleet,
)


def test_the_catalogue_gives_peak_memory_link_and_tdp_and_the_network_across_nodes_is_assumed():
    fleet = resolve_fleet(gpu="H100-SXM", utilization=0.4)
    assert fleet.throughput.peak_flops == 989.5e12 and fleet.throughput.utilization == 0.4
    assert fleet.throughput.precision == "bf16" and fleet.tdp_w == 700
    # an "80 GB" H100 holds 80 GiB of HBM; 1 GiB + 5% of it is kept back for the CUDA context and fragmentation
    assert (fleet.gpu_memory_bytes, fleet.memory_origin) == (80 * 2**30, "catalogue, H100-SXM")
    assert fleet.memory_reserve_bytes == (1 + 0.05 * 80) * GIB and fleet.usable_memory_bytes == 75 * GIB
    assert fleet.reserve_origin.startswith("default: 1 GiB for the CUDA context")
    assert fleet.intra_node.gbps == 450 and fleet.intra_node.origin.startswith("catalogue, H100-SXM: NVLink 4")
    assert (fleet.inter_node.gbps, fleet.inter_node.origin) == (DEFAULT_INTER_NODE_GBPS, INTER_NODE_ORIGIN)
    assert fleet.notes == () and fleet.pue == 1.0 and fleet.price_per_gpu_hour is None


def test_overrides_win_and_say_so():
    fleet = resolve_fleet(
        gpu="H100-SXM",
        gpu_memory_gib=94,
        memory_reserve_gib=2,
        intra_node_gbps=380,
        inter_node_gbps=48,
        gpus_per_node=4,
        pue=1.2,
        price_per_gpu_hour=2.5,
    )
    assert (fleet.gpu_memory_bytes, fleet.memory_origin) == (94 * 2**30, "--gpu-memory")
    assert (fleet.memory_reserve_bytes, fleet.reserve_origin) == (2 * 2**30, "--memory-reserve")
    assert (fleet.intra_node.gbps, fleet.intra_node.origin) == (380, "--intra-node-gbps")
    assert (fleet.inter_node.gbps, fleet.inter_node.origin) == (48, "--inter-node-gbps")
    assert (fleet.gpus_per_node, fleet.pue, fleet.price_per_gpu_hour) == (4, 1.2, 2.5)


def test_a_gpu_without_a_link_figure_has_no_intra_node_bandwidth():
    assert resolve_fleet(gpu="T4").intra_node is None


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(gpu=None), "no GPU given"),
        (dict(gpu="Z9000"), "unknown GPU"),
        (dict(gpu="T4", precision="int8"), "plan trains in"),
        (dict(gpu="H100-SXM", pue=0.9), "PUE must be a number >= 1"),
        (dict(gpu="H100-SXM", price_per_gpu_hour=-1), "price per GPU-hour must be a finite number >= 0"),
        (dict(gpu="H100-SXM", gpu_memory_gib=-80), "--gpu-memory must be a finite number > 0"),
        (dict(gpu="H100-SXM", memory_reserve_gib=-1), "--memory-reserve must be a number of GiB >= 0"),
        (dict(gpu="H100-SXM", memory_reserve_gib=80), "the memory reserve .80 GiB. must be >= 0 and less than"),
    ],
)
def test_bad_values_are_one_line_errors(options, message):
    with pytest.raises(FlopcalcError, match=message):
        resolve_fleet(**options)


def test_a_plans_energy_and_cost_follow_computes_rule():
    """TDP x GPU-hours x PUE / 1000 kWh and GPU-hours x price, the same functions `train` and `convert` use."""
    fleet = resolve_fleet(gpu="H100-SXM", pue=1.25, price_per_gpu_hour=3.0, intra_node_gbps=450)
    plan = evaluate(model_from_params(1e9, 1024), Layout(dp=8), fleet, run=RunSize(1e6))
    hours = plan.training.gpu_hours
    assert plan.training.energy_kwh == energy_kwh(700, hours, 1.25) == pytest.approx(700 * hours * 1.25 / 1000)
    assert plan.training.cost == gpu_hours_cost(hours, 3.0) == pytest.approx(3 * hours)
    estimate = fleet_estimate(3600 * 989.5e12 * 0.3 * 10, fleet.throughput, tdp_w=700, pue=1.25, price_per_gpu_hour=3)
    assert (estimate.energy_kwh, estimate.cost) == (pytest.approx(8.75), pytest.approx(30.0))


def test_layout_from_options_fills_in_dp_and_the_micro_batch():
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12)
    layout = layout_from_options(model, num_gpus=16, tp=4, global_batch=64)
    assert (layout.dp, layout.tp, layout.pp, layout.micro_batch, layout.grad_accum) == (4, 4, 1, 1, 16)
    assert layout_from_options(model, dp=3, pp=2).num_gpus == 6
    with pytest.raises(UsageError, match="--num-gpus 6 is not a multiple of tp x pp = 4"):
        layout_from_options(model, num_gpus=6, tp=4)
    with pytest.raises(UsageError, match="dp x tp x pp = 2 x 2 x 1 = 4, not --num-gpus 8"):
        layout_from_options(model, num_gpus=8, dp=2, tp=2)
