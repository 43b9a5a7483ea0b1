"""Pipeline stages in flopcalc.plan: interleaved 1F1B (--virtual-stages) and uneven stages (a layer count pp does
not divide), each checked against its arithmetic written out."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.errors import UsageError
from flopcalc.plan import Bandwidth, Fleet, Layout, evaluate, model_from_params, resolve_fleet

GPT3 = dict(layers=96, hidden=12288, heads=96, vocab=51200)
LLAMA3_405B = dict(hidden=16384, heads=128, kv_heads=8, ffn=53248, vocab=128256)  # Llama 3 paper, Table 3


@pytest.fixture(scope="module")
def a100():
    return resolve_fleet(gpu="A100-SXM4-80GB")


def utilization_fleet():
    return Fleet(
        Throughput(312e12, 0.5, "A100-SXM4-80GB", "bf16"),
        80e9,
        "test",
        intra_node=Bandwidth(300, "test"),
        inter_node=Bandwidth(25, "test"),
    )


def layout(**options):
    base = dict(dp=1, tp=8, pp=8, recompute="selective", sequence_parallel=True, micro_batch=1, global_batch=64)
    return Layout(**{**base, **options})


@pytest.mark.parametrize("predicted", [True, False])
def test_interleaving_shrinks_the_bubble_to_p_minus_1_over_v_m_and_sends_v_times(a100, predicted):
    """p = 8 stages, m = 64 micro-batches, v = 3 chunks: the bubble is (p-1)/v = 7/3 slots of 64 + 7/3 (1F1B: 7
    of 71); each micro-batch crosses 2v stage boundaries instead of 2."""
    model = model_from_params(175e9, 2048, **GPT3)
    fleet = a100 if predicted else utilization_fleet()
    plain, interleaved = (evaluate(model, layout(virtual=v), fleet) for v in (1, 3))
    assert plain.step.bubble_fraction == pytest.approx(7 / 71, rel=1e-12)
    assert interleaved.step.bubble_fraction == pytest.approx((7 / 3) / (64 + 7 / 3), rel=1e-12)
    assert interleaved.step.pp_comm_s == pytest.approx(3 * plain.step.pp_comm_s, rel=1e-12)
    assert interleaved.step.compute_s == pytest.approx(plain.step.compute_s, rel=1e-12)
    busy = interleaved.step.compute_s + interleaved.step.tp_comm_s + interleaved.step.pp_comm_s
    exposed_after = interleaved.step.exposed_comm_s - interleaved.step.tp_comm_s - interleaved.step.pp_comm_s
    assert interleaved.step.step_s == pytest.approx(
        busy * (64 + 7 / 3) / 64 + exposed_after + interleaved.step.optimizer_s, rel=1e-12
    )
    assert interleaved.step.step_s < plain.step.step_s
    assert interleaved.layout.to_dict()["virtual_stages"] == 3


def test_interleaving_keeps_1_plus_p_minus_1_over_p_v_times_the_first_stages_activations(a100):
    """Korthikanti et al. 2022, Sec. 4.2.3: 8 stages, 3 chunks: x (1 + 7/24)."""
    model = model_from_params(175e9, 2048, **GPT3)
    plain, interleaved = (evaluate(model, layout(virtual=v), a100).memory for v in (1, 3))
    assert interleaved.stage == plain.stage == "first"
    assert interleaved.activations == pytest.approx(plain.activations * (1 + 7 / 24), rel=1e-12)
    assert interleaved.model_states == plain.model_states


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(pp=1, virtual=2), "--virtual-stages 2 interleaves pipeline stages, and pp is 1"),
        (dict(pp=8, virtual=5), "8 x --virtual-stages 5 = 40 model chunks do not divide the model's 96 layers"),
        (dict(pp=8, virtual=3, global_batch=12), "groups of pp = 8, and there are 12 per replica"),
        (dict(virtual=0), "--virtual-stages must be a whole number >= 1"),
    ],
)
def test_impossible_interleavings_say_what_is_wrong(a100, options, message):
    with pytest.raises(UsageError, match=message):
        evaluate(model_from_params(175e9, 2048, **GPT3), layout(**options), a100)


def test_126_layers_on_16_stages_put_8_layers_on_the_first_stage_and_it_sets_the_pace(a100):
    """Llama 3 405B's 126 layers on pp 16: 14 stages of 8 and 2 of 7. The first stage holds 8 layers, so its
    activations and model states are those of a 128-layer model's stage, and its 8 layers set every slot."""
    uneven = model_from_params(405e9, 8192, layers=126, **LLAMA3_405B)
    even = model_from_params(405e9 * 128 / 126, 8192, layers=128, **LLAMA3_405B)
    split = dict(dp=1, tp=8, pp=16, recompute="full", sequence_parallel=True, micro_batch=1, global_batch=16)
    plan = evaluate(uneven, Layout(**split), a100)
    twin = evaluate(even, Layout(**split), a100)
    assert plan.memory.stage == "first"
    assert plan.memory.activations == pytest.approx(twin.memory.activations, rel=1e-12)
    assert plan.memory.weights == pytest.approx(405e9 * 8 / 126 / 8 * 2, rel=1e-12)
    assert plan.step.prediction["slowest_stage_micro_batch"]["layers"] == 8
    assert plan.step.prediction["slowest_stage_micro_batch"]["stage"] == 0


def test_uneven_stages_at_a_utilization_time_the_fullest_stage():
    """Peak x utilization: a stage's compute is its share of the blocks, 8/126 for the fullest of 16 stages."""
    model = model_from_params(405e9, 8192, layers=126, **LLAMA3_405B)
    staged = evaluate(model, Layout(dp=1, tp=8, pp=16, global_batch=16), utilization_fleet())
    whole = evaluate(model, Layout(dp=1, tp=8, pp=1, global_batch=16), utilization_fleet())
    assert staged.step.compute_s == pytest.approx(whole.step.compute_s * 8 / 126, rel=1e-12)
    # tensor-parallel all-reduces: 4 per block of the fullest stage, 8 blocks, not 126/16
    assert staged.step.tp_comm_s == pytest.approx(whole.step.tp_comm_s * 8 / 126, rel=1e-12)


def test_every_stage_is_listed_the_first_holding_p_micro_batches_in_flight_the_last_one(a100):
    """GPT-3 on pp 8 x tp 8, sequence parallel, selective recomputation: a stage of 12 layers keeps 34 sbh / t
    bytes per layer and micro-batch (Korthikanti et al. 2022, Table 2), and stage i of 1F1B holds 8 - i
    micro-batches in flight (Narayanan et al. 2021); the most loaded stage is the plan's memory."""
    model = model_from_params(175e9, 2048, **GPT3, attention="math")
    plan = evaluate(model, layout(), a100)
    per_layer = 34 * 2048 * 12288 / 8
    stages = plan.memory.stages
    assert [s.stage for s in stages] == ["first", *["middle"] * 6, "last"] and [s.index for s in stages] == [*range(8)]
    assert [s.layers for s in stages] == [12.0] * 8
    for s in stages:
        assert s.activations == pytest.approx((8 - s.index) * 12 * per_layer, rel=1e-12)
        assert s.model_states == plan.memory.model_states
    assert plan.memory.total == max(s.total for s in stages) == stages[0].total
    listed = plan.to_dict()["stages"]
    assert [(row["stage"], row["role"], row["layers"]) for row in listed][:2] == [
        (0, "first", 12.0),
        (1, "middle", 12.0),
    ]
    assert listed[7]["total"] == stages[7].total


def test_interleaved_middle_stages_hold_megatrons_warm_up_chunks(a100):
    """v = 3 chunks of 4 layers on p = 8 stages: stage i holds 2(p - i - 1) + (v - 1)p + 1 = 31 - 2i chunks in
    flight (Megatron-LM's interleaved warm-up), stage 0's 31 being Korthikanti's 8 x (1 + 7/24) x 12 layers."""
    model = model_from_params(175e9, 2048, **GPT3, attention="math")
    stages = evaluate(model, layout(virtual=3), a100).memory.stages
    per_layer = 34 * 2048 * 12288 / 8
    assert stages[0].activations == pytest.approx(31 * 4 * per_layer, rel=1e-12)
    for i in range(1, 7):
        assert stages[i].activations == pytest.approx((31 - 2 * i) * 4 * per_layer, rel=1e-12)


def test_126_layers_on_16_stages_list_8_layers_on_14_and_7_on_2(a100):
    model = model_from_params(None, 8192, layers=126, **LLAMA3_405B, mlp="swiglu")
    plan = evaluate(
        model, Layout(dp=1, tp=8, pp=16, recompute="full", sequence_parallel=True, micro_batch=1, global_batch=16), a100
    )
    stages = plan.memory.stages
    assert [s.layers for s in stages] == [8.0] * 14 + [7.0] * 2
    # full recomputation keeps each layer's input, 2sbh / t bytes (2 bytes a value, split by sequence
    # parallelism), for 16 - i micro-batches in flight, plus one layer being re-run
    per_layer = 2 * 8192 * 16384 / 8
    working = stages[15].activations - 7 * per_layer
    assert stages[14].activations == pytest.approx(2 * 7 * per_layer + working, rel=1e-12)
    assert stages[1].activations == pytest.approx(15 * 8 * per_layer + working, rel=1e-12)
    assert stages[14].model_states == pytest.approx(stages[1].model_states * 7 / 8, rel=1e-12)
    assert plan.memory.stage == "first"


def test_llama_3s_split_puts_one_layer_less_on_the_first_and_last_stage(a100):
    """Llama 3 405B ran 126 layers on 16 stages as 7, 8 x 14, 7 (Llama 3 paper, Sec. 3.3.2): the first stage's
    16 micro-batches in flight of 7 layers (112 layer-micro-batches) now hold less than stage 1's 15 of 8 (120),
    so the most loaded GPU is stage 1's. The step is shorter: the even split's slowest stage is the first (8 layers
    and the embedding), Llama's a middle one (8 layers alone)."""
    model = model_from_params(None, 8192, layers=126, **LLAMA3_405B, mlp="swiglu")
    base = dict(dp=1, tp=8, pp=16, recompute="full", sequence_parallel=True, micro_batch=1, global_batch=16)
    split = (7, *[8] * 14, 7)
    even, llama = (evaluate(model, Layout(**base, stage_layers=s), a100) for s in ((), split))
    assert [s.layers for s in llama.memory.stages] == [float(n) for n in split]
    per_layer = 2 * 8192 * 16384 / 8  # full recomputation keeps each layer's input
    working = llama.memory.stages[15].activations - 7 * per_layer
    assert llama.memory.stages[0].activations == pytest.approx(16 * 7 * per_layer + working, rel=1e-12)
    assert llama.memory.stages[1].activations == pytest.approx(15 * 8 * per_layer + working, rel=1e-12)
    assert (llama.memory.stage, llama.memory.index) == ("middle", 1)
    assert llama.memory.total == max(s.total for s in llama.memory.stages)
    slowest = {
        name: plan.step.prediction["slowest_stage_micro_batch"] for name, plan in (("even", even), ("llama", llama))
    }
    assert (slowest["even"]["stage"], slowest["even"]["layers"]) == (0, 8)
    assert slowest["llama"]["stage"] not in (0, 15) and slowest["llama"]["layers"] == 8
    assert llama.step.step_s < even.step.step_s
    assert "layers per stage 7,8,8" in llama.layout.label()


@pytest.mark.parametrize(
    "split, message",
    [
        ((8,) * 15, "--stage-layers gives 15 stages, and pp is 16"),
        ((8,) * 16, "--stage-layers 8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8 adds up to 128 layers, and the model has 126"),
        ((0, *[9] * 14, 0), "every stage needs a whole number >= 1 of layers"),
    ],
)
def test_a_split_that_does_not_fit_the_pipeline_is_refused(a100, split, message):
    model = model_from_params(None, 8192, layers=126, **LLAMA3_405B, mlp="swiglu")
    with pytest.raises(UsageError, match=message):
        evaluate(model, Layout(dp=1, tp=8, pp=16, micro_batch=1, global_batch=16, stage_layers=split), a100)
