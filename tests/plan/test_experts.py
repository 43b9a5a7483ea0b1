"""Expert parallelism (plan/experts.py): Mixtral-8x7B's experts split over ep GPUs, the all-to-all by hand."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.errors import UsageError
from flopcalc.plan import Bandwidth, Fleet, Layout, evaluate, model_from_params, model_from_spec, search
from flopcalc.plan.experts import expert_params
from flopcalc.spec import ModelSpec

from ..conftest import EXAMPLES

MIXTRAL = EXAMPLES / "hf" / "mixtral-8x7b" / "config.json"
H100 = Throughput(989.5e12, 0.3, "H100-SXM", "bf16")
NVLINK, IB = 450.0, 50.0


def fleet():
    return Fleet(H100, 80 * 2**30, "test", intra_node=Bandwidth(NVLINK, "test"), inter_node=Bandwidth(IB, "test"))


@pytest.fixture(scope="module")
def mixtral():
    return model_from_spec(ModelSpec(str(MIXTRAL), seq_len=4096))


def test_mixtral_experts_are_read_off_the_graph(mixtral):
    """32 MoE layers of 8 experts, top-2; each expert three 4096 x 14336 matrices (SwiGLU)."""
    assert len(mixtral.experts) == 32
    assert {(layer.num_experts, layer.top_k) for layer in mixtral.experts} == {(8, 2)}
    assert expert_params(mixtral) == 32 * 8 * 3 * 4096 * 14336


@pytest.mark.parametrize("zero", [0, 1, 3])
def test_ep_8_divides_the_expert_states_by_8_and_leaves_the_dense_ones(mixtral, zero):
    one = evaluate(mixtral, Layout(dp=8, zero=zero, global_batch=64), fleet())
    eight = evaluate(mixtral, Layout(dp=8, ep=8, zero=zero, global_batch=64), fleet())
    experts = expert_params(mixtral)
    dense = mixtral.params - experts
    sharded = 8 if zero else 1  # ZeRO over the 8 data-parallel GPUs; with ep 8 each expert is on one GPU only
    weights_group = 8 if zero >= 3 else 1
    assert one.memory.weights == pytest.approx(2 * (dense + experts) / weights_group)
    assert eight.memory.weights == pytest.approx(2 * dense / weights_group + 2 * experts / 8)
    assert eight.memory.optimizer == pytest.approx(12 * dense / sharded + 12 * experts / 8)
    assert one.memory.optimizer - eight.memory.optimizer == pytest.approx(12 * experts / sharded - 12 * experts / 8)
    assert eight.memory.activations == one.memory.activations


def test_the_all_to_all_time_by_hand(mixtral):
    """Per MoE layer and micro-batch: dispatch and combine, forward and backward = 4 all-to-alls of
    tokens x hidden x top-k x capacity factor x 2 bytes per GPU, each (ep-1)/ep of it over the link's busbw."""
    layout = Layout(dp=8, ep=8, zero=1, micro_batch=2, global_batch=64, capacity_factor=1.25)
    plan = evaluate(mixtral, layout, fleet())
    message = 2 * 4096 * 4096 * 2 * 1.25 * 2  # micro-batch 2 x 4096 tokens x hidden 4096 x top-2 x 1.25 x bf16
    one = message * 7 / 8 / (NVLINK * 1e9)  # 8 GPUs in one node: NVLink
    micro_batches = 64 // (8 * 2)
    assert plan.step.ep_comm_s == pytest.approx(4 * 32 * one * micro_batches, rel=1e-12)
    # all of it on the critical path, the compute unchanged
    zero_ep = evaluate(mixtral, Layout(dp=8, zero=1, micro_batch=2, global_batch=64), fleet())
    assert plan.step.exposed_comm_s >= plan.step.ep_comm_s
    assert plan.step.step_s == pytest.approx(plan.step.compute_s + plan.step.exposed_comm_s, rel=1e-12)
    assert plan.step.compute_s == zero_ep.step.compute_s
    # with ep = dp = 8 every expert lives on one GPU: only the dense gradients are all-reduced over the 8
    dense = mixtral.params - expert_params(mixtral)
    assert plan.step.dp_comm_s == pytest.approx(2 * dense * 2 * 7 / 8 / (NVLINK * 1e9), rel=1e-12)
    # across nodes (ep 16 spans two nodes of 8): the inter-node link, and full recomputation re-runs 2 more
    wide = evaluate(
        mixtral,
        Layout(dp=16, ep=8, tp=1, zero=1, global_batch=16, recompute="full"),
        Fleet(
            H100,
            80 * 2**30,
            "test",
            gpus_per_node=4,
            intra_node=Bandwidth(NVLINK, "test"),
            inter_node=Bandwidth(IB, "test"),
        ),
    )
    message = 4096 * 4096 * 2 * 1.0 * 2
    assert wide.step.ep_comm_s == pytest.approx(6 * 32 * message * 7 / 8 / (IB * 1e9), rel=1e-12)


def test_ep_must_divide_the_experts_and_sit_inside_dp(mixtral):
    with pytest.raises(UsageError, match="--ep 3 does not divide the 8 experts of model.layers.0.mlp.experts"):
        evaluate(mixtral, Layout(dp=6, ep=3), fleet())
    with pytest.raises(UsageError, match="--ep 8 does not divide the 4 data-parallel replicas"):
        Layout(dp=4, ep=8)
    with pytest.raises(UsageError, match="this model has none"):
        evaluate(model_from_params(1e9, 1024), Layout(dp=2, ep=2), fleet())
    with pytest.raises(UsageError, match="--capacity-factor must be a finite number > 0"):
        Layout(dp=2, ep=2, capacity_factor=0)


def test_the_search_explores_ep_dividing_the_experts_inside_dp(mixtral):
    found = search(
        mixtral, fleet(), 16, global_batch=64, fixed={"tp": 1, "pp": 1, "zero": 1, "recompute": "full"}, top=1000
    )
    eps = {plan.layout.ep for plan in found.candidates}
    assert eps <= {1, 2, 4, 8} and 8 in eps  # 16 does not divide the 8 experts
    for plan in found.candidates:
        assert plan.layout.dp % plan.layout.ep == 0
    pinned = search(mixtral, fleet(), 16, global_batch=64, fixed={"ep": 4, "zero": 1}, top=1000)
    assert {plan.layout.ep for plan in pinned.candidates} == {4}


def test_the_predicted_step_adds_the_all_to_alls_and_lays_out_the_experts_a_token_uses(mixtral):
    """On the H100's device profile: the MLP the step-time model times is the top-2 of the 8 experts (2 x 14336
    wide, SwiGLU's three matrices as a 1.5x wider two), and ep 8 adds its all-to-alls, exposed, per micro-batch."""
    from dataclasses import replace

    from flopcalc.predict import load_profiles

    profiled = replace(fleet(), profile=load_profiles(precision="bf16")["H100-SXM"])
    shape, _ = mixtral.gemm_shape()
    assert shape.ffn - 2 * 14336 * 3 // 2 == 5  # the router and the two norms: 40,960 parameters / (2 x 4096)
    layout = Layout(dp=8, ep=8, zero=1, micro_batch=2, global_batch=64)
    with_ep = evaluate(mixtral, layout, profiled).step
    without = evaluate(mixtral, replace(layout, ep=1), profiled).step
    assert with_ep.time_model == "predicted" and with_ep.ep_comm_s > 0
    assert with_ep.step_s == pytest.approx(without.step_s + with_ep.ep_comm_s, rel=1e-9)
