"""Context parallelism (plan/context.py): activations and compute / cp, the K/V ring by hand, the search's cp."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.errors import UsageError
from flopcalc.plan import Bandwidth, Fleet, Layout, evaluate, model_from_params, model_from_spec, search
from flopcalc.plan.context import ring_attention_s
from flopcalc.spec import ModelSpec
from tests._shapes import LLAMA_3_70B as SHAPE

from ..conftest import EXAMPLES

H100 = Throughput(989.5e12, 0.3, "H100-SXM", "bf16")
NVLINK, IB = 450.0, 50.0


def fleet(gpus_per_node=8):
    return Fleet(
        H100,
        80 * 2**30,
        "test",
        gpus_per_node=gpus_per_node,
        intra_node=Bandwidth(NVLINK, "test"),
        inter_node=Bandwidth(IB, "test"),
    )


def test_cp_divides_the_activations_and_the_compute():
    long = model_from_params(None, 131072, **SHAPE)
    short = model_from_params(None, 131072 // 8, **SHAPE)
    split = evaluate(long, Layout(tp=8, cp=8, sequence_parallel=True, zero=1, recompute="full"), fleet())
    whole = evaluate(long, Layout(tp=8, sequence_parallel=True, zero=1, recompute="full"), fleet())
    # each GPU keeps its 1/8 of the sequence: the activations of a sequence 8 times shorter
    assert split.memory.activations == pytest.approx(whole.memory.activations / 8, rel=1e-12)
    assert split.memory.activations == pytest.approx(
        evaluate(short, Layout(tp=8, sequence_parallel=True, recompute="full"), fleet()).memory.activations, rel=1e-12
    )
    # the model states are sharded over dp x cp = 8 with ZeRO-1, not replicated
    assert split.memory.optimizer == pytest.approx(whole.memory.optimizer / 8, rel=1e-12)
    assert split.step.compute_s == pytest.approx(whole.step.compute_s / 8, rel=1e-12)
    assert split.layout.num_gpus == 64 and split.to_dict()["parallelism"]["cp"] == 8


def test_the_ring_exchange_by_hand():
    """Per layer, cp - 1 steps; a step sends one GPU's K and V blocks forward, K, V, dK and dV backward, point
    to point at the link's GB/s, and hides under that step's attention compute: only the excess is exposed."""
    s, cp, tp = 131072, 8, 8
    model = model_from_params(None, s, **SHAPE)
    plan = evaluate(model, Layout(tp=tp, cp=cp, sequence_parallel=True), fleet(gpus_per_node=64))
    kv_block = s / cp * (8192 * 8 / 64) * 2 / tp  # tokens x kv width (hidden x kv heads / heads) x bf16, / tp
    send = kv_block / (NVLINK * 1e9)
    assert plan.step.cp_comm_s == pytest.approx(80 * (cp - 1) * (2 + 4) * send, rel=1e-12)
    # the attention of one ring step: 4 x s^2 x hidden FLOPs per layer (forward), / tp / cp GPUs, / cp steps
    step_attention = 4 * s * s * 8192 / tp / cp / cp / (989.5e12 * 0.3)
    assert step_attention > 4 * send  # at 128k tokens the ring hides under attention: nothing exposed
    assert plan.step.exposed_comm_s == pytest.approx(plan.step.tp_comm_s, rel=1e-12)
    # a short sequence over a slow link: the excess over the attention is exposed
    short = model_from_params(None, 4096, **SHAPE)
    layout = Layout(tp=1, cp=2)
    slow = Fleet(
        H100,
        80 * 2**30,
        "test",
        gpus_per_node=1,
        intra_node=Bandwidth(NVLINK, "test"),
        inter_node=Bandwidth(0.5, "test"),
    )
    block = 4096 / 2 * (8192 * 8 / 64) * 2 / (0.5 * 1e9)
    attention = 2e-3  # the stage's attention forward per micro-batch on one GPU: 80 layers x 2 ring steps
    step = attention / 80 / 2
    traffic, exposed = ring_attention_s(short, layout, slow, 2, attention)
    assert traffic == pytest.approx(80 * 6 * block, rel=1e-12)
    assert exposed == pytest.approx(80 * ((2 * block - step) + (4 * block - 2 * step)), rel=1e-12)
    assert 0 < exposed < traffic


def test_bad_cp_is_one_line():
    with pytest.raises(UsageError, match="no attention heads"):
        evaluate(model_from_params(1e9, 65536), Layout(cp=2), fleet())
    with pytest.raises(UsageError, match="does not split the 1000 tokens of a sequence into 2 x cp equal chunks"):
        evaluate(model_from_params(None, 1000, **SHAPE), Layout(cp=8), fleet())


def test_the_search_tries_cp_from_32k_tokens():
    long = model_from_params(None, 32768, **SHAPE)
    found = search(long, fleet(), 64, global_batch=8, fixed={"tp": 8, "zero": 1, "recompute": "full"}, top=1000)
    assert {plan.layout.cp for plan in found.candidates} > {1}
    short = model_from_params(None, 16384, **SHAPE)
    found = search(short, fleet(), 64, global_batch=8, fixed={"tp": 8, "zero": 1, "recompute": "full"}, top=1000)
    assert {plan.layout.cp for plan in found.candidates} == {1}


@pytest.mark.slow
def test_a_70b_at_128k_with_cp_8_keeps_the_measured_activations_of_16k():
    """The counted Llama-3-70B config: with cp 8 each GPU keeps what the measured graph of a 16k-token sequence
    keeps (every activation is linear in the tokens with flash attention), 1/8 of the 128k one's."""
    config = str(EXAMPLES / "hf" / "llama-3-70b" / "config.json")
    long = model_from_spec(ModelSpec(config, seq_len=131072))
    short = model_from_spec(ModelSpec(config, seq_len=16384))
    layout = dict(tp=8, sequence_parallel=True, zero=1, recompute="full")
    split = evaluate(long, Layout(cp=8, **layout), fleet()).memory.activations
    assert split == pytest.approx(evaluate(long, Layout(**layout), fleet()).memory.activations / 8, rel=1e-12)
    assert split == pytest.approx(evaluate(short, Layout(**layout), fleet()).memory.activations, rel=1e-9)
    assert long.activations.total.bytes_at(2) == pytest.approx(8 * short.activations.total.bytes_at(2), rel=1e-9)


def test_zero_over_cp_ranks_is_not_called_empty():
    model = model_from_params(None, 65536, **SHAPE)
    plan = evaluate(model, Layout(tp=8, cp=8, zero=3, recompute="full"), fleet())
    assert not any("partitions nothing" in note for note in plan.notes)
    assert plan.memory.weights == pytest.approx(2 * model.params / 8 / 8, rel=1e-12)
