"""FSDP's names (plan/sharding.py): full = ZeRO-3, grad-op = ZeRO-2, hybrid = ZeRO-3 inside a node."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.errors import UsageError
from flopcalc.plan import Bandwidth, Fleet, Layout, evaluate, layout_from_options, model_from_params, search
from flopcalc.plan.communication import ring_all_reduce_s, ring_gather_s

H100 = Throughput(989.5e12, 0.3, "H100-SXM", "bf16")
NVLINK, IB = 450.0, 50.0
SEVEN_B = model_from_params(6.7e9, 2048, layers=32, hidden=4096, heads=32)


def fleet():
    return Fleet(H100, 80 * 2**30, "test", intra_node=Bandwidth(NVLINK, "test"), inter_node=Bandwidth(IB, "test"))


@pytest.mark.parametrize("fsdp, zero", [("full", 3), ("grad-op", 2)])
def test_full_and_grad_op_are_zero_3_and_2(fsdp, zero):
    named = evaluate(SEVEN_B, layout_from_options(SEVEN_B, num_gpus=16, fsdp=fsdp, global_batch=64), fleet())
    staged = evaluate(SEVEN_B, layout_from_options(SEVEN_B, num_gpus=16, zero=zero, global_batch=64), fleet())
    assert named.layout.zero == zero and named.layout.fsdp == fsdp
    assert named.memory == staged.memory and named.step == staged.step


def test_hybrid_shards_inside_a_node_and_replicates_across():
    """32 GPUs, 8 per node: ZeRO-3 over the 8 of a node, 4 replicas; gathers and reduce-scatters on NVLink, one
    all-reduce of each 1/8 gradient shard across the 4 nodes per step."""
    layout = layout_from_options(SEVEN_B, num_gpus=32, fsdp="hybrid", global_batch=64)
    assert (layout.zero, layout.shard_group) == (3, 8)
    plan = evaluate(SEVEN_B, layout, fleet())
    n = 6.7e9
    assert plan.memory.weights == pytest.approx(2 * n / 8) and plan.memory.optimizer == pytest.approx(12 * n / 8)
    m = 64 // 32
    gathers = m * (2 * ring_gather_s(2 * n, 8, Bandwidth(NVLINK, "")) + ring_gather_s(2 * n, 8, Bandwidth(NVLINK, "")))
    across = ring_all_reduce_s(2 * n / 8, 4, Bandwidth(IB, ""))
    assert plan.step.dp_comm_s == pytest.approx(gathers + across, rel=1e-12)
    full = evaluate(SEVEN_B, layout_from_options(SEVEN_B, num_gpus=32, fsdp="full", global_batch=64), fleet())
    assert full.memory.weights == pytest.approx(2 * n / 32)
    assert plan.to_dict()["parallelism"]["shard_group"] == 8 and full.to_dict()["parallelism"]["shard_group"] == 32


def test_hybrid_in_one_node_is_full_sharding():
    layout = layout_from_options(SEVEN_B, num_gpus=4, fsdp="hybrid", global_batch=64)
    assert layout.shard_group == 4 and layout.sharded_over == 4


def test_bad_fsdp_is_one_line():
    with pytest.raises(UsageError, match="--fsdp must be full, grad-op, hybrid, got 'half'"):
        layout_from_options(SEVEN_B, num_gpus=8, fsdp="half")
    with pytest.raises(UsageError, match="--fsdp full is ZeRO-3, and --zero 1 says otherwise"):
        layout_from_options(SEVEN_B, num_gpus=8, fsdp="full", zero=1)
    with pytest.raises(UsageError, match="does not divide the data group"):
        Layout(dp=8, zero=3, shard_group=3)


def test_the_search_keeps_a_pinned_fsdp():
    found = search(SEVEN_B, fleet(), 32, global_batch=64, fixed={"fsdp": "hybrid", "tp": 1, "pp": 1})
    assert found.candidates and all(
        plan.layout.zero == 3 and plan.layout.fsdp == "hybrid" and plan.layout.shard_group == 8
        for plan in found.candidates
    )
