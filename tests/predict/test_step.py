"""The step: the slowest stage's micro-batch times the schedule's slots, plus what is exposed; MFU and HFU."""

import pytest

from flopcalc.errors import UsageError
from flopcalc.predict import Op, TrainingLayout, TransformerShape, device_profile, layer_work, op_s, ops_s, predict_step

A100 = device_profile("A100-SXM4-80GB")
GPT_175B = TransformerShape(layers=96, hidden=12288, heads=96, seq_len=2048, vocab=51200)


def test_one_kernel_adds_its_arithmetic_and_memory_time_at_its_size():
    op = Op("a GEMM", "gemm", 20e9, 50e6)  # 20 GFLOP (matmul curve: 0.9), 50 MB (memory curve: 0.75)
    assert op_s(op, A100) == pytest.approx(20e9 / (312e12 * 0.9) + 50e6 / (2048e9 * 0.75))


def test_the_step_is_slots_times_the_slowest_stage_plus_what_is_exposed():
    layout = TrainingLayout(
        tp=8, pp=8, micro_batch=1, global_batch=64, virtual=3, recompute="selective", sequence_parallel=True
    )
    step = predict_step(GPT_175B, layout, A100)
    assert step.slots == pytest.approx(64 + 7 / 3)
    assert step.bubble_fraction == pytest.approx(7 / 192)
    assert step.slowest.stage == 7  # the last stage also runs the output layer and the loss
    assert step.step_s == pytest.approx(
        step.slots * step.slowest.total_s + step.dp_exposed_s + step.embedding_sync_s + step.optimizer_s
    )
    plain = predict_step(
        GPT_175B,
        TrainingLayout(tp=8, pp=8, micro_batch=1, global_batch=64, recompute="selective", sequence_parallel=True),
        A100,
    )
    assert plain.slots == 71 and plain.step_s > step.step_s  # 1F1B's bubble (p-1)/m: 7 slots, not 7/3


def test_uneven_stages_run_at_the_pace_of_the_fullest():
    shape = TransformerShape(layers=126, hidden=4096, heads=32, seq_len=2048, vocab=51200)
    step = predict_step(shape, TrainingLayout(tp=8, pp=16, global_batch=64), A100)
    assert step.slowest.layers == 8  # 14 stages of 8 layers, 2 of 7
    even = predict_step(
        TransformerShape(layers=112, hidden=4096, heads=32, seq_len=2048, vocab=51200),
        TrainingLayout(tp=8, pp=16, global_batch=64),
        A100,
    )
    assert even.slowest.layers == 7 and even.step_s < step.step_s


def test_recomputation_adds_its_forward_again():
    none = predict_step(GPT_175B, TrainingLayout(tp=8, pp=8, global_batch=64), A100).slowest
    full = predict_step(GPT_175B, TrainingLayout(tp=8, pp=8, global_batch=64, recompute="full"), A100).slowest
    selective = predict_step(GPT_175B, TrainingLayout(tp=8, pp=8, global_batch=64, recompute="selective"), A100)
    layer = layer_work(GPT_175B, 1, 8, False)
    assert none.recompute_s == 0
    assert full.recompute_s == pytest.approx(12 * ops_s(layer.forward, A100))  # 96 layers / 8 stages, whole layer
    assert selective.slowest.recompute_s == pytest.approx(12 * ops_s(layer.attention_core, A100))
    assert full.tp_comm_s == pytest.approx(none.tp_comm_s * 3 / 2)  # the re-run forward's 2 all-reduces too


def test_mfu_and_hfu_count_model_and_recomputed_flops():
    step = predict_step(GPT_175B, TrainingLayout(tp=8, pp=8, global_batch=64, recompute="full"), A100)
    s, b, h, layers, vocab = 2048, 64, 12288, 96, 51200
    # Narayanan et al. 2021's FLOPs per iteration: with full recomputation a step runs 96 B s l h^2 (1 + s/(6h) + V/(16 l h));
    # the logits (6 B s h V) are not recomputed, so without it 72 B s l h^2 (1 + s/(6h)) + 6 B s h V
    assert step.model_flops == pytest.approx(72 * b * s * layers * h * h * (1 + s / (6 * h)) + 6 * b * s * h * vocab)
    assert step.hardware_flops == pytest.approx(
        96 * b * s * layers * h * h * (1 + s / (6 * h) + vocab / (16 * layers * h))
    )
    assert step.mfu == pytest.approx(step.model_flops / (step.step_s * 64 * 312e12))
    assert step.hfu == pytest.approx(step.hardware_flops / (step.step_s * 64 * 312e12))
    data = step.to_dict()
    assert data["mfu"] == step.mfu and data["slowest_stage_micro_batch"]["total_s"] == step.slowest.total_s
    assert data["rules"] and data["sources"]


def test_zero3_parameter_gathers_are_not_free():
    shape = TransformerShape(layers=96, hidden=12288, heads=96, seq_len=2048, vocab=51200)
    zero1 = predict_step(shape, TrainingLayout(dp=64, tp=8, global_batch=512, zero=1), A100)
    zero3 = predict_step(shape, TrainingLayout(dp=64, tp=8, global_batch=512, zero=3), A100)
    assert zero3.dp_exposed_s > 0 and zero3.step_s > zero1.step_s


def test_a_layout_that_cannot_run_is_one_line():
    with pytest.raises(UsageError, match="multiple"):
        TrainingLayout(dp=2, global_batch=3)
    with pytest.raises(UsageError, match="pipeline"):
        TrainingLayout(virtual=2)
