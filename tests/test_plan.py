"""flopcalc.plan: the published checks with their arithmetic written out (ZeRO, Megatron-LM, the 1F1B bubble,
Korthikanti et al.), the communication formulas, what fits, and the search."""

import pytest

from flopcalc.compute import Throughput
from flopcalc.errors import UsageError
from flopcalc.plan import (
    GB,
    Bandwidth,
    Fleet,
    Layout,
    RunSize,
    evaluate,
    korthikanti_profile,
    model_from_params,
    run_size,
    search,
)
from tests.conftest import EXAMPLES

EXAMPLES_GPT = EXAMPLES / "gpt.py"
A100 = Throughput(312e12, 0.5, "A100-SXM4-80GB", "bf16")
H100 = Throughput(989.5e12, 0.4, "H100-SXM", "bf16")


def fleet(throughput=A100, memory=80e9, intra=300.0, inter=25.0, **options):
    return Fleet(
        throughput, memory, "test", intra_node=Bandwidth(intra, "test"), inter_node=Bandwidth(inter, "test"), **options
    )


# ------------------------------------------------------------------ ZeRO (Rajbhandari et al. 2020)


@pytest.mark.parametrize("zero, gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_model_states_7_5b_on_64_gpus(zero, gb):
    """ZeRO paper, Fig. 1: Psi = 7.5B, Nd = 64, K = 12 (mixed-precision Adam):
    baseline (2 + 2 + K) Psi = 16 x 7.5e9 = 120 GB; P_os 2Psi + 2Psi + K Psi/Nd = 30 + 1.406 = 31.4 GB;
    P_os+g 2Psi + (2 + K) Psi/Nd = 15 + 1.64 = 16.6 GB; P_os+g+p (2 + 2 + K) Psi/Nd = 120/64 = 1.875 GB."""
    plan = evaluate(model_from_params(7.5e9, 1024), Layout(dp=64, zero=zero), fleet())
    exact = {0: 16 * 7.5e9, 1: 4 * 7.5e9 + 12 * 7.5e9 / 64, 2: 2 * 7.5e9 + 14 * 7.5e9 / 64, 3: 16 * 7.5e9 / 64}[zero]
    assert plan.memory.model_states == pytest.approx(exact, rel=1e-12)
    assert round(plan.memory.model_states / GB, 1) == gb
    assert plan.memory.activations is None  # --params without a shape: activations unknown
    assert plan.fits is (False if zero == 0 else None)


def test_fp32_and_sgd_bytes_per_parameter():
    model = model_from_params(1e9, 1024)
    fp32 = evaluate(model, Layout(), fleet(), precision="fp32").memory  # 4 + 4 + 8 (Adam's two states)
    assert (fp32.weights, fp32.gradients, fp32.optimizer) == (4e9, 4e9, 8e9)
    sgd = evaluate(model, Layout(), fleet(), optimizer="sgd").memory  # 2 + 2 + (4 master + 4 momentum)
    assert (sgd.weights, sgd.gradients, sgd.optimizer) == (2e9, 2e9, 8e9)


# ------------------------------------------------------------------ Megatron-LM (Narayanan et al. 2021)


def test_gpt3_on_1024_a100s_takes_about_34_days():
    """Narayanan et al. 2021, Sec. 5.1: training time ~ 8TP / (nX). GPT-3: P = 175e9, T = 300e9 tokens, n = 1024
    A100s at X = 140 TFLOP/s achieved: 8 x 300e9 x 175e9 / (1024 x 140e12) = 2.93e6 s = 33.9 days. Full
    recomputation re-runs the forward: hardware FLOPs 8ND against model FLOPs 6ND, so MFU = 3/4 HFU."""
    throughput = Throughput(312e12, 140 / 312, "A100", "bf16")
    model = model_from_params(175e9, 2048)
    run = run_size(model, tokens=300e9)
    assert run.examples == 300e9 / 2048
    plan = evaluate(model, Layout(dp=1024, recompute="full", global_batch=1024 * 3), fleet(throughput), run=run)
    assert plan.training.model_flops == pytest.approx(6 * 175e9 * 300e9, rel=1e-12)
    assert plan.training.hardware_flops == pytest.approx(8 * 175e9 * 300e9, rel=1e-12)
    compute_days = plan.training.steps * plan.step.compute_s / 86400
    assert compute_days == pytest.approx(8 * 300e9 * 175e9 / (1024 * 140e12) / 86400, rel=1e-4)
    assert round(compute_days) == 34
    assert plan.training.mfu / plan.training.hfu == pytest.approx(3 / 4, rel=1e-12)
    # 175e9 bf16 gradients all-reduced over 1024 GPUs at 25 GB/s: 2 x 1023/1024 x 350e9 / 25e9 s, partly overlapped
    assert plan.step.dp_comm_s == pytest.approx(2 * 1023 / 1024 * 350e9 / 25e9, rel=1e-12)
    assert plan.training.wall_clock_days > compute_days


def test_the_1f1b_bubble_of_8_stages_and_32_micro_batches_is_7_39():
    """Narayanan et al. 2021, Sec. 2.2: bubble = (p - 1) / (m + p - 1) of the step = 7/39 for p = 8, m = 32."""
    model = model_from_params(8e9, 1024, layers=32, hidden=4096, heads=32, attention="math")
    plan = evaluate(model, Layout(dp=1, pp=8, global_batch=32), fleet())
    assert plan.layout.grad_accum == 32
    assert plan.step.bubble_fraction == pytest.approx(7 / 39, rel=1e-12)
    busy = plan.step.compute_s + plan.step.tp_comm_s + plan.step.pp_comm_s
    assert plan.step.step_s == pytest.approx(busy * 39 / 32, rel=1e-12)


def test_tensor_parallel_all_reduces_and_pipeline_transfers():
    """Megatron: 4 all-reduces of the b x s x h activations per block and micro-batch (2 forward, 2 backward), each
    2(t-1)/t x bytes / busbw; pipeline: the activation forward and its gradient back, bytes / bandwidth each."""
    model = model_from_params(1e9, 2048, layers=16, hidden=2048, heads=16, attention="math")
    hidden_bytes = 2 * 2048 * 2048 * 2  # micro-batch 2 x seq x hidden x 2 bytes
    plan = evaluate(model, Layout(dp=1, tp=4, pp=2, micro_batch=2, global_batch=8), fleet(intra=200.0))
    m, blocks_per_stage = 4, 16 / 2
    per_all_reduce = 2 * 3 / 4 * hidden_bytes / 200e9
    assert plan.step.tp_comm_s == pytest.approx(m * 4 * blocks_per_stage * per_all_reduce, rel=1e-12)
    assert plan.step.pp_comm_s == pytest.approx(m * 2 * hidden_bytes / 200e9, rel=1e-12)  # 8 GPUs: one node
    full = evaluate(
        model, Layout(dp=1, tp=4, pp=2, micro_batch=2, global_batch=8, recompute="full"), fleet(intra=200.0)
    )
    assert full.step.tp_comm_s == pytest.approx(plan.step.tp_comm_s * 6 / 4, rel=1e-12)  # the re-run forward's 2


def test_data_parallel_crosses_nodes_and_zero3_moves_one_and_a_half_times_the_bytes():
    model = model_from_params(2e9, 1024)
    gradient_bytes = 2e9 * 2
    across = evaluate(model, Layout(dp=16), fleet(intra=300.0, inter=40.0))  # 16 GPUs: two nodes, inter-node ring
    assert across.step.dp_comm_s == pytest.approx(2 * 15 / 16 * gradient_bytes / 40e9, rel=1e-12)
    inside = evaluate(model, Layout(dp=8), fleet(intra=300.0, inter=40.0))
    assert inside.step.dp_comm_s == pytest.approx(2 * 7 / 8 * gradient_bytes / 300e9, rel=1e-12)
    zero3 = evaluate(model, Layout(dp=16, zero=3), fleet(intra=300.0, inter=40.0))
    assert zero3.step.dp_comm_s == pytest.approx(1.5 * across.step.dp_comm_s, rel=1e-12)


def test_exposed_data_parallel_time_is_what_the_backward_does_not_cover():
    model = model_from_params(1e9, 8)  # tiny micro-batch: the all-reduce outlasts the backward
    plan = evaluate(model, Layout(dp=16), fleet(inter=10.0))
    backward = 2 * (2 * 1e9 * 8) / (312e12 * 0.5)
    assert plan.step.exposed_comm_s == pytest.approx(plan.step.dp_comm_s - backward, rel=1e-9)
    assert plan.step.step_s == pytest.approx(plan.step.compute_s + plan.step.exposed_comm_s, rel=1e-12)


# ------------------------------------------------------------------ activations (Korthikanti et al. 2022)


def test_korthikanti_formulas_per_layer():
    """sbh(34 + 5as/h) per layer; with t-way tensor parallelism sbh(10 + 24/t + 5as/(ht)); with sequence
    parallelism sbh/t (34 + 5as/h); selective recomputation drops 5as/h; full keeps 2sbh (Table 2)."""
    s, h, a, layers, t = 2048, 4096, 32, 32, 8
    model = model_from_params(6.7e9, s, layers=layers, hidden=h, heads=a, attention="math")  # materialised scores
    profile = korthikanti_profile(layers, h, a, s)
    assert profile.blocks_total.bytes_at(2) / layers == s * h * (34 + 5 * a * s / h)

    def activations(**layout):
        return evaluate(model, Layout(**layout), fleet()).memory.activations

    sbh = s * h
    assert activations() == pytest.approx(layers * sbh * (34 + 5 * a * s / h), rel=1e-12)
    assert activations(tp=t) == pytest.approx(layers * sbh * (10 + 24 / t + 5 * a * s / (h * t)), rel=1e-12)
    assert activations(tp=t, sequence_parallel=True) == pytest.approx(
        layers * sbh / t * (34 + 5 * a * s / h), rel=1e-12
    )
    assert activations(tp=t, sequence_parallel=True, recompute="selective") == pytest.approx(
        layers * sbh / t * 34, rel=1e-12
    )
    # full: 2sbh per layer kept, plus the one layer being re-run in the backward
    assert activations(recompute="full") == pytest.approx(layers * 2 * sbh + sbh * (34 + 5 * a * s / h), rel=1e-12)


def test_the_first_pipeline_stage_holds_pp_micro_batches():
    """1F1B: stage 1 holds p micro-batches in flight of L/p layers each: L layers' worth, whatever p."""
    model = model_from_params(8e9, 1024, layers=32, hidden=4096, heads=32, attention="math")
    one = evaluate(model, Layout(dp=1, global_batch=16), fleet()).memory.activations
    staged = evaluate(model, Layout(dp=1, pp=4, global_batch=16), fleet())
    assert staged.memory.stage == "first"
    assert staged.memory.activations == pytest.approx(one, rel=1e-12)
    few = evaluate(model, Layout(dp=1, pp=4, global_batch=2), fleet())  # only 2 micro-batches to hold
    assert few.memory.activations == pytest.approx(one / 2, rel=1e-12)


def test_a_7b_model_with_adam_does_not_fit_one_80gb_gpu_and_the_search_finds_layouts_that_do():
    """16 bytes x 6.7e9 = 107 GB of model states alone > 80 GB; on 8 GPUs ZeRO or model parallelism fits it."""
    model = model_from_params(6.7e9, 2048, layers=32, hidden=4096, heads=32, attention="math")
    alone = evaluate(model, Layout(), fleet(H100))
    assert alone.memory.model_states == pytest.approx(16 * 6.7e9, rel=1e-12)
    assert alone.fits is False
    result = search(model, fleet(H100, intra=450.0), 8, global_batch=64, run=RunSize(1e6))
    assert result.candidates and all(plan.fits for plan in result.candidates)
    assert len(result.candidates) == 10
    walls = [plan.training.wall_clock_s for plan in result.candidates]
    assert walls == sorted(walls)
    assert all(plan.layout.num_gpus == 8 and plan.layout.batch == 64 for plan in result.candidates)
    lonely = search(model, fleet(H100), 1, global_batch=8)
    assert not lonely.candidates and lonely.closest is not None and not lonely.closest.fits
    assert any(line.startswith("tp=1 pp=1: ") and "GiB > 74.5 GiB at best" in line for line in lonely.rejected)


def test_search_respects_heads_layers_nodes_and_pinned_dimensions():
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12, attention="math")
    result = search(model, fleet(intra=300.0), 16, global_batch=32, fixed={"zero": 1})
    tps = {plan.layout.tp for plan in result.candidates}
    assert tps <= {1, 2, 4} and all(plan.layout.zero == 1 for plan in result.candidates)
    assert any("tp=8" in line and "does not divide the 12 heads" in line for line in result.rejected)
    assert any("tp=16" in line and "inside a node of 8 GPUs" in line for line in result.rejected)
    assert any("pp=8" in line and "12 layers" in line for line in result.rejected)
    pinned = search(model, fleet(intra=300.0), 16, global_batch=32, fixed={"tp": 2, "pp": 2, "micro_batch": 1})
    assert {(p.layout.tp, p.layout.pp, p.layout.dp, p.layout.micro_batch) for p in pinned.candidates} == {(2, 2, 4, 1)}
    assert all(p.layout.sequence_parallel for p in pinned.candidates)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "layout, message",
    [
        (dict(tp=5), "does not divide the 32 attention heads"),
        (dict(pp=64), "more than the model's 32 layers"),
        (dict(pp=4, virtual=3), "12 model chunks do not divide the model's 32 layers"),
        (dict(pp=4, virtual=2, global_batch=2), "there are 2 per replica"),
        (dict(dp=4, global_batch=10), "not a multiple of dp x micro-batch"),
        (dict(zero=4), "--zero must be 0, 1, 2 or 3"),
        (dict(recompute="some"), "--recompute must be none, selective or full"),
        (dict(dp=0), "--dp must be a whole number >= 1"),
    ],
)
def test_impossible_layouts_say_what_is_wrong(layout, message):
    model = model_from_params(7e9, 2048, layers=32, hidden=4096, heads=32, attention="math")
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(model, Layout(**layout), fleet())


def test_zero_with_one_replica_is_a_note_not_an_error():
    plan = evaluate(model_from_params(1e9, 1024), Layout(zero=2), fleet())
    assert any("ZeRO-2 with dp 1 partitions nothing" in note for note in plan.notes)
    assert plan.memory.model_states == 16e9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: model_from_params(-1, 1024), "--params must be a finite number > 0"),
        (lambda: model_from_params(1e9, 0), "--seq-len must be a whole number >= 1"),
        (lambda: model_from_params(1e9, 1024, layers=2), "--layers without --hidden, --heads"),
        (lambda: model_from_params(1e9, 1024, layers=2, hidden=10, heads=3), "not divisible by --heads"),
        (lambda: model_from_params(1e9, 1024, kv_heads=2), "--kv-heads needs --layers"),
        (lambda: model_from_params(1e9, 1024, mlp="swiglu", attention="math"), "--mlp, --attention need --layers"),
        (
            lambda: model_from_params(None, 1024, layers=2, hidden=8, heads=2, mlp="relu"),
            "--mlp must be gelu or swiglu",
        ),
        (
            lambda: model_from_params(None, 1024, layers=2, hidden=8, heads=2, attention="sdpa"),
            "--attention must be flash or math",
        ),
        (lambda: Fleet(A100, 0), "GPU memory must be a finite number > 0"),
        (lambda: Bandwidth(-5, "x"), "bandwidth"),
        (lambda: evaluate(model_from_params(1e9, 1024), Layout(tp=2), fleet()), "shows no repeated blocks"),
        (lambda: evaluate(model_from_params(1e9, 1024), Layout(), fleet(), precision="int8"), "not int8"),
        (lambda: run_size(model_from_params(1e9, 1024), examples=-3), "--examples must be a finite number > 0"),
        (lambda: search(model_from_params(1e9, 1024), fleet(), 8, global_batch=8), "--search needs the activations"),
    ],
)
def test_bad_values_are_usage_errors(call, message):
    with pytest.raises(UsageError, match=message):
        call()


def test_intra_node_traffic_without_a_link_figure_asks_for_one():
    no_link = Fleet(A100, 80e9, "test")
    with pytest.raises(UsageError, match="give --intra-node-gbps"):
        evaluate(model_from_params(1e9, 1024), Layout(dp=8), no_link)
    across = evaluate(model_from_params(1e9, 1024), Layout(dp=16), Fleet(A100, 80e9, "test", gpus_per_node=1))
    assert across.step.dp_comm_s > 0  # one GPU per node: every ring crosses nodes, no intra-node figure needed


# ------------------------------------------------------------------ a counted model


@pytest.fixture(scope="module")
def gpt_model():
    from flopcalc.plan import model_from_spec
    from flopcalc.spec import ModelSpec

    return model_from_spec(ModelSpec(f"{EXAMPLES_GPT}", inputs=("2x32:int64",)))


def test_a_counted_model_brings_its_flops_structure_and_measured_activations(gpt_model):
    from flopcalc.api import count

    report = count(f"{EXAMPLES_GPT}", ["2x32:int64"])
    assert (gpt_model.forward_flops, gpt_model.backward_flops) == (report.forward, report.backward)
    assert gpt_model.params == report.params and gpt_model.batch == 2
    assert (gpt_model.layers, gpt_model.hidden, gpt_model.heads, gpt_model.tokens_per_example) == (2, 64, 4, 32)
    blocks = sum(layer.forward for layer in report.layers if layer.name in ("blocks.0", "blocks.1"))
    assert gpt_model.block_forward_flops == blocks
    full = evaluate(gpt_model, Layout(recompute="full", micro_batch=2), fleet(), run=RunSize(64))
    assert full.training.hardware_flops - full.training.model_flops == pytest.approx(blocks / 2 * 64, rel=1e-12)


def test_tensor_parallelism_with_sequence_parallelism_divides_measured_activations_by_t(gpt_model):
    one = evaluate(gpt_model, Layout(micro_batch=2), fleet()).memory.activations
    assert one == pytest.approx(gpt_model.activations.total.bytes_at(2), rel=1e-12)
    split = evaluate(gpt_model, Layout(tp=4, sequence_parallel=True, micro_batch=2), fleet()).memory.activations
    assert split == pytest.approx(one / 4, rel=1e-12)
    # without sequence parallelism the hidden stream (norm inputs, dropout masks, embeddings) stays whole
    plain = evaluate(gpt_model, Layout(tp=4, micro_batch=2), fleet()).memory.activations
    assert one / 4 < plain < one
    # selective recomputation drops the scores: 5as^2b per layer, split 4 ways
    selective = evaluate(gpt_model, Layout(tp=4, sequence_parallel=True, micro_batch=2, recompute="selective"), fleet())
    assert split - selective.memory.activations == pytest.approx(2 * 5 * 4 * 32 * 32 * 2 / 4, rel=1e-12)
    # a micro-batch of 8 keeps 4x what the counted micro-batch of 2 keeps
    assert evaluate(gpt_model, Layout(micro_batch=8), fleet()).memory.activations == pytest.approx(4 * one, rel=1e-12)


def test_pipeline_stages_of_a_counted_model_hold_their_blocks_and_ends(gpt_model):
    profile = gpt_model.activations
    plan = evaluate(gpt_model, Layout(pp=2, micro_batch=2, global_batch=8), fleet())
    # first stage: its block and the embeddings, for 2 micro-batches in flight; last: one block, the head, 1 in flight
    first = 2 * (profile.blocks_total.bytes_at(2) / 2 + profile.before_blocks.bytes_at(2))
    last = profile.blocks_total.bytes_at(2) / 2 + profile.after_blocks.bytes_at(2)
    assert plan.memory.activations == pytest.approx(max(first, last), rel=1e-12)
    weights = max(profile.block_params / 2 + profile.params_before, profile.block_params / 2 + profile.params_after)
    assert plan.memory.weights == pytest.approx(2 * weights, rel=1e-12)


# ------------------------------------------------------------------ --params and its shape (issue 19, item 6)


def test_n_comes_from_the_shape_when_params_is_left_out():
    """12 L h^2 + V h for a GELU MLP of 4h (Q, K, V, O: 4h^2; the MLP: 8h^2), one tied embedding."""
    gpt = model_from_params(None, 2048, layers=32, hidden=4096, heads=32, vocab=50257)
    assert gpt.params == 12 * 32 * 4096**2 + 50257 * 4096 == 6_648_303_616
    # Llama-2-7B: SwiGLU of 11008 (3 h ffn per layer), 32000 tokens: 6.607e9 (+ the untied head and norms = 6.738e9)
    llama = model_from_params(None, 2048, layers=32, hidden=4096, heads=32, ffn=11008, mlp="swiglu", vocab=32000)
    assert llama.params == 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096
    # Llama-3-70B: 8 key/value heads of 128 narrow K and V to 1024
    big = model_from_params(
        None, 4096, layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, mlp="swiglu", vocab=128256
    )
    assert big.params == 80 * (2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672) + 128256 * 8192
    # --head-dim: 32 heads of 64 in a 4096 stream: Q and O are 4096 x 2048
    narrow = model_from_params(None, 8, layers=1, hidden=4096, heads=32, head_dim=64)
    assert narrow.params == 2 * 4096 * 2048 + 2 * 4096 * 2048 + 2 * 4096 * 16384
    assert any("N from the shape" in line for line in gpt.method)
    with pytest.raises(UsageError, match="give --params N, or the shape"):
        model_from_params(None, 2048)


def test_a_given_n_more_than_10_percent_from_the_shapes_is_refused_naming_both():
    shape = dict(layers=32, hidden=4096, heads=32)  # 12 x 32 x 4096^2 = 6,442,450,944
    assert model_from_params(6.7e9, 2048, **shape, params_tolerance=0.1).params == 6_700_000_000  # 4% away
    with pytest.raises(UsageError, match=r"--params 8e\+09 is 24% away from the 6,442,450,944 .* more than 10%"):
        model_from_params(8e9, 2048, **shape, params_tolerance=0.1)


def test_flash_attention_keeps_no_scores_and_math_keeps_5as2_per_layer():
    s, h, a, layers = 2048, 4096, 32, 32
    flash = model_from_params(None, s, layers=layers, hidden=h, heads=a)  # the default
    math = model_from_params(None, s, layers=layers, hidden=h, heads=a, attention="math")
    kept = lambda model: evaluate(model, Layout(), fleet(memory=1e15)).memory.activations  # noqa: E731
    assert kept(flash) == layers * s * h * 34
    assert kept(math) - kept(flash) == layers * 5 * a * s * s
    assert not flash.activations.block_scores.floating_elements
    assert any("flash attention: no s x s scores kept" in line for line in flash.method)


def test_a_swiglu_mlp_keeps_four_ffn_wide_tensors_and_holds_three_matrices():
    """Gate and up outputs, the SiLU's output and the product the down projection takes: 4 s ffn elements per
    layer where GELU keeps 2 (its input and output); Q, K, V and the attention output 4 s h; the stream 10 s h."""
    s, h, a, ffn, layers = 1024, 2048, 16, 5504, 4
    swiglu = model_from_params(None, s, layers=layers, hidden=h, heads=a, ffn=ffn, mlp="swiglu")
    gelu = model_from_params(None, s, layers=layers, hidden=h, heads=a, ffn=ffn)
    per_layer = lambda model: model.activations.blocks_total.bytes_at(2) / layers  # noqa: E731
    assert per_layer(swiglu) == 10 * s * h + 2 * (4 * s * h + 4 * s * ffn)
    assert per_layer(swiglu) - per_layer(gelu) == 2 * 2 * s * ffn
    assert swiglu.params - gelu.params == layers * h * ffn
    assert any("SwiGLU MLP: 3 matrices of hidden x ffn = 2048 x 5504" in line for line in swiglu.method)
    assert model_from_params(None, s, layers=1, hidden=h, heads=a, mlp="swiglu").params == (
        4 * h * h + 3 * h * round(8 * h / 3)
    )  # without --ffn: 8h/3, GELU's 4h parameters


def test_without_seq_len_the_plan_gives_model_states_and_what_activations_need():
    model = model_from_params(None, None, layers=32, hidden=4096, heads=32)
    plan = evaluate(model, Layout(dp=8, zero=1), fleet())
    n = 12 * 32 * 4096**2
    assert (plan.memory.weights, plan.memory.gradients, plan.memory.optimizer) == (2 * n, 2 * n, 12 * n / 8)
    assert plan.memory.activations is None and plan.step is None and plan.training is None and plan.fits is None
    assert plan.to_dict()["step"] is None and plan.to_dict()["model"]["flops_per_micro_batch"]["forward"] is None
    # 34 h bytes per token and layer (Korthikanti's sbh x 34 without the scores), 32 layers
    assert any(f"{32 * 34 * 4096:,} x s bytes" in note for note in model.notes)
    with pytest.raises(UsageError, match="--tokens needs the FLOPs per example"):
        run_size(model, tokens=1e12)


# ------------------------------------------------------------------ the reserve and the ranking (issue 19, item 7)


def test_the_reserve_is_not_the_models():
    model = model_from_params(4e9, 1024)  # 64e9 bytes of model states
    assert evaluate(model, Layout(), fleet(memory=70e9)).fits is None  # no activations; the states fit
    reserved = evaluate(model, Layout(), fleet(memory=70e9, memory_reserve_bytes=8e9))
    assert reserved.fits is False and reserved.usable_memory_bytes == 62e9
    assert reserved.to_dict()["memory_reserve_bytes"] == 8e9
    with pytest.raises(UsageError, match="the memory reserve"):
        fleet(memory=70e9, memory_reserve_bytes=70e9)


def test_the_search_ranks_by_speed_then_larger_micro_batch_then_less_sharding_never_by_memory():
    model = model_from_params(6.7e9, 2048, layers=32, hidden=4096, heads=32)
    result = search(
        model, fleet(H100, memory=80 * 2**30, intra=450.0), 8, global_batch=512, run=RunSize(1e12 / 2048), top=1000
    )
    plans = result.candidates
    keys = [
        (
            float(f"{plan.training.wall_clock_s:.6g}"),
            -plan.layout.micro_batch,
            plan.layout.tp * plan.layout.pp,
            plan.layout.pp,
            plan.layout.zero,
        )
        for plan in plans
    ]
    assert keys == sorted(keys)
    best = result.best.layout
    # ZeRO-1 and ZeRO-3 over dp 8 take the same step (the gathers hide under the compute): the larger micro-batch
    # wins, then ZeRO-1, though ZeRO-3 at that micro-batch needs less memory
    assert (best.dp, best.zero, best.micro_batch) == (8, 1, 4)
    runner_up = plans[1]
    assert runner_up.layout.zero == 3 and runner_up.layout.micro_batch == 4
    assert runner_up.memory.total < result.best.memory.total
    assert runner_up.training.wall_clock_s == pytest.approx(result.best.training.wall_clock_s, rel=1e-6)


def test_the_search_keeps_the_fleets_reserve():
    model = model_from_params(6.7e9, 2048, layers=32, hidden=4096, heads=32)
    spare = search(model, fleet(H100, memory=80 * 2**30, intra=450.0), 8, global_batch=512, top=1000)
    tight = search(
        model,
        fleet(H100, memory=80 * 2**30, intra=450.0, memory_reserve_bytes=5 * 2**30),
        8,
        global_batch=512,
        top=1000,
    )
    assert max(plan.memory.total for plan in tight.candidates) <= 75 * 2**30
    assert max(plan.memory.total for plan in spare.candidates) > 75 * 2**30
