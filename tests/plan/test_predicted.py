"""flopcalc.plan.predicted: plan's step time from the step-time model on the fleet's device profile, the MFU and
HFU it implies, and the issue's check that ZeRO-3 no longer looks faster than tensor + pipeline parallelism."""

from dataclasses import replace

import pytest

from flopcalc.errors import CalibrationError
from flopcalc.plan import Layout, evaluate, model_from_params, resolve_fleet, search
from flopcalc.predict import TrainingLayout, TransformerShape, load_profiles, predict_step
from tests._shapes import LLAMA_3_70B as LLAMA70B

GPT3 = dict(layers=96, hidden=12288, heads=96, vocab=51200)


@pytest.fixture(scope="module")
def a100():
    return resolve_fleet(gpu="A100-SXM4-80GB")


@pytest.fixture(scope="module")
def gpt3():
    """GPT-3 as Korthikanti et al. ran it: Megatron-LM of 2022 had no fused attention (the scores are kept)."""
    return model_from_params(175e9, 2048, **GPT3, attention="math")


def test_the_plan_step_is_predict_step_on_the_shipped_profile(a100, gpt3):
    layout = Layout(dp=2, tp=8, pp=8, recompute="selective", sequence_parallel=True, micro_batch=1, global_batch=64)
    plan = evaluate(gpt3, layout, a100)
    expected = predict_step(
        TransformerShape(96, 12288, 96, 2048, 51200),
        TrainingLayout(tp=8, pp=8, dp=2, micro_batch=1, global_batch=64, recompute="selective", sequence_parallel=True),
        load_profiles(precision="bf16")["A100-SXM4-80GB"],
    )
    step = plan.step
    assert step.time_model == "predicted" and step.step_s == expected.step_s
    m, slowest = 32, expected.slowest
    assert step.compute_s == pytest.approx(m * (slowest.forward_s + slowest.backward_s + slowest.recompute_s))
    assert step.tp_comm_s == pytest.approx(m * slowest.tp_comm_s) and step.pp_comm_s == pytest.approx(m * slowest.p2p_s)
    assert step.bubble_fraction == pytest.approx(7 / (32 + 7))
    # MFU: the plan's model FLOPs per step (64 sequences x 3 x forward) over step x 128 GPUs x 312 TFLOP/s
    forward = 2 * 175e9 * 2048 + 4 * 96 * 2048 * 2048 * 12288
    assert step.mfu == pytest.approx(64 * 3 * forward / (step.step_s * 128 * 312e12), rel=1e-12)
    assert step.hfu > step.mfu  # selective recomputation re-runs the attention products


def test_zero3_at_1536_gpus_no_longer_looks_faster_than_tensor_and_pipeline_parallelism(a100, gpt3):
    """Issue 20: a 175B model on 1,536 A100s (Narayanan et al. 2021, Figure 10's comparison). ZeRO-3's parameter
    all-gathers cross nodes for every layer of every micro-batch and cannot hide under one sequence's compute."""
    zero3 = evaluate(gpt3, Layout(dp=1536, zero=3, recompute="full", micro_batch=1, global_batch=1536), a100)
    ptdp = evaluate(gpt3, Layout(dp=16, tp=8, pp=12, recompute="full", micro_batch=1, global_batch=1536), a100)
    assert zero3.fits and ptdp.fits
    assert zero3.step.step_s > 2 * ptdp.step.step_s
    assert zero3.step.prediction["dp_exposed_s"] > 0.5 * zero3.step.step_s  # the gathers are not free
    # from 384 to 1,536 GPUs at the same global batch: per-GPU throughput falls (measured: to 0.31 of its start;
    # the old plan said 0.45 with every gather hidden)
    start = evaluate(gpt3, Layout(dp=384, zero=3, recompute="full", micro_batch=4, global_batch=1536), a100)
    per_gpu = (1536 / zero3.step.step_s / 1536) / (1536 / start.step.step_s / 384)
    assert 0.2 < per_gpu < 0.45
    found = search(gpt3, a100, 1536, global_batch=1536, top=5)
    assert found.best.layout.tp * found.best.layout.pp > 1
    assert found.best.step.step_s < zero3.step.step_s
    assert all(plan.step.time_model == "predicted" for plan in found.candidates)


def test_utilization_replaces_the_prediction_and_says_so(gpt3):
    fleet = resolve_fleet(gpu="A100-SXM4-80GB", utilization=0.4)
    plan = evaluate(gpt3, Layout(dp=8, tp=8, pp=8, global_batch=64), fleet)
    assert fleet.profile is None and plan.step.time_model == "utilization" and plan.step.prediction is None
    assert any(line.startswith("--utilization 0.4 replaced the step-time prediction") for line in plan.assumptions)


def test_a_gpu_without_a_profile_gets_one_from_its_datasheet_and_says_so():
    fleet = resolve_fleet(gpu="MI300X", intra_node_gbps=448)
    assert fleet.profile is not None and fleet.profile.matmul.peak == 1307.4e12
    assert fleet.profile.memory.peak == 5300e9
    assert "borrowed from the A100-SXM4-80GB profile" in fleet.profile.matmul.efficiency.source
    plan = evaluate(
        model_from_params(7e9, 4096, layers=32, hidden=4096, heads=32), Layout(dp=8, global_batch=64), fleet
    )
    assert plan.step.time_model == "predicted" and 0 < plan.step.mfu < 1
    assert any(line.startswith("no measured profile for MI300X: its datasheet peaks") for line in plan.assumptions)


def test_a_model_without_a_transformer_shape_falls_back_to_utilization_and_says_why(a100):
    plan = evaluate(model_from_params(1e9, 1024), Layout(dp=8), a100)
    assert plan.step.time_model == "utilization"
    assert any(
        line.startswith("no step-time prediction: the model shows no transformer shape") for line in plan.assumptions
    )


def test_fp32_training_is_not_predicted(gpt3):
    fleet = resolve_fleet(gpu="A100-SXM4-80GB", precision="fp32")
    assert fleet.profile is None
    assert fleet.timing_notes[0].startswith("the step-time model covers 16-bit training")


def test_a_profile_file_for_another_device_is_refused(tmp_path):
    from flopcalc.predict import default_profiles_text

    text = default_profiles_text()
    h100_only = text[: text.index("  - device: A100")] + text[text.index("  - device: H100-SXM") :]
    path = tmp_path / "profiles.yaml"
    path.write_text(h100_only)
    assert resolve_fleet(gpu="H100-SXM", calibration=path).profile.device == "H100-SXM"
    with pytest.raises(
        CalibrationError,
        match="profiles H100-SXM, not A100-SXM4-80GB: a profile measured on one device does not apply to another",
    ):
        resolve_fleet(gpu="A100-SXM4-80GB", calibration=path)


def test_context_parallelism_in_the_predicted_step_by_hand():
    """cp 8 at 128k tokens: the step-time model on dp x cp ranks of 16k-token sequences, plus each GPU's queries
    on the other 7 K/V blocks (x 3 with the backward, x 4 with full recomputation) and the ring's exposed part,
    on the slowest stage's micro-batch, times the schedule's slots."""
    from flopcalc.plan.context import ring_attention_s
    from flopcalc.predict import layer_work, ops_s

    h100 = resolve_fleet(gpu="H100-SXM", intra_node_gbps=450, inter_node_gbps=50)
    llama = model_from_params(None, 131072, **LLAMA70B)
    layout = Layout(dp=1, tp=8, cp=8, zero=1, recompute="full", sequence_parallel=True, micro_batch=1, global_batch=8)
    step = evaluate(llama, layout, h100).step
    shape, _ = llama.gemm_shape()
    local = replace(shape, seq_len=16384)
    profile = h100.profile
    dense = predict_step(
        local,
        TrainingLayout(
            tp=8,
            dp=8,
            micro_batch=1,
            global_batch=64,
            recompute="full",
            sequence_parallel=True,
            zero=1,
            fused_attention=True,
        ),
        profile,
    )
    assert llama.fused_attention
    core = ops_s(layer_work(local, 1, 8, True, True).attention_core, profile)
    traffic, exposed = ring_attention_s(llama, layout, h100, 2.0, 80 * 8 * core)
    extra = 80 * 7 * core * 4
    assert shape.seq_len == 131072 and step.time_model == "predicted"
    assert step.step_s == pytest.approx(dense.step_s + dense.slots * (extra + exposed), rel=1e-12)
    assert step.cp_comm_s == pytest.approx(8 * traffic, rel=1e-12) and step.cp_comm_s > 0
    assert step.compute_s == pytest.approx(
        8 * (dense.slowest.forward_s + dense.slowest.backward_s + dense.slowest.recompute_s + extra), rel=1e-12
    )
    assert step.prediction["step_s"] == step.step_s


def test_fp8_runs_the_blocks_linear_gemms_at_the_fp8_peak_in_the_predicted_step():
    """fp8 on an H100: predicted on the bf16 profile, each linear GEMM's arithmetic at 1979/989.5 = 2x the rate,
    its bytes unchanged; faster than bf16 but not twice (attention, head, memory-bound kernels stay)."""
    from flopcalc.plan import training_precision
    from flopcalc.plan.predicted import fp8_saved_s
    from flopcalc.predict import layer_work

    seven_b = model_from_params(6.7e9, 4096, layers=32, hidden=4096, heads=32)
    layout = Layout(dp=8, zero=1, micro_batch=1, global_batch=512)
    bf16 = evaluate(seven_b, layout, resolve_fleet(gpu="H100-SXM")).step
    fleet = resolve_fleet(gpu="H100-SXM", precision="fp8")
    fp8 = evaluate(seven_b, layout, fleet, precision="fp8").step
    assert fleet.profile is not None and fleet.bf16_throughput is not None
    assert training_precision("fp8").name == "fp8" and fp8.time_model == "predicted"
    shape, _ = seven_b.gemm_shape()
    work = layer_work(shape, 1, 1, False, seven_b.fused_attention)
    saved = 32 * fp8_saved_s(work, fleet.profile, 1979e12 / 989.5e12, "none")
    assert saved > 0
    assert fp8.step_s == pytest.approx(bf16.step_s - 64 * saved, rel=1e-9)
    assert bf16.step_s / 2 < fp8.step_s < bf16.step_s
    assert fp8.mfu == pytest.approx(bf16.mfu * bf16.step_s / fp8.step_s / 2, rel=1e-3)  # against the fp8 peak
