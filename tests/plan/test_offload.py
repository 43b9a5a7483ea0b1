"""plan --offload: a 7B model's optimizer states leave the GPU (exact bytes) and appear in host memory, the
PCIe traffic per step by hand, params and activations offload, and the one-line refusals."""

import pytest

from flopcalc import plan as planning
from flopcalc.errors import UsageError

PARAMS = 6.7e9
H100_PCIE5_PER_DIRECTION = 64e9  # PCIe Gen5 x16: 128 GB/s both directions together


def seven_b(**layout):
    model = planning.model_from_params(PARAMS, 2048, layers=32, hidden=4096, heads=32)
    fleet = planning.resolve_fleet(gpu="H100-SXM", intra_node_gbps=450, inter_node_gbps=50)
    run = planning.run_size(model, tokens=1e12)
    chosen = planning.layout_from_options(model, num_gpus=8, global_batch=64, **layout)
    plan = planning.evaluate(model, chosen, fleet, run=run)
    return model, fleet, run, plan


def offloaded(targets, host_gib=2048, **layout):
    model, fleet, run, plan = seven_b(**layout)
    link = planning.host_link(fleet)
    setup = planning.training_precision("bf16")
    return plan, planning.apply_offload(plan, targets, fleet, setup, "adamw", run, link, host_gib)


def test_optimizer_offload_on_a_7b_model_by_hand():
    before, after = offloaded(("optimizer",), zero=1)
    # bf16 mixed precision with AdamW: 4 (fp32 master) + 2 x 4 (moments) = 12 bytes per parameter, ZeRO-1 over 8
    optimizer = PARAMS * 12 / 8
    assert before.memory.optimizer == optimizer
    assert after.memory.optimizer == 0 and after.memory.weights == before.memory.weights
    assert after.memory.total == before.memory.total - optimizer
    offload = after.offload
    assert offload.host_bytes_per_gpu == optimizer and offload.host_bytes_per_node == 8 * optimizer
    # each step: the shard's bf16 gradients to the host, its updated bf16 weights back
    shard = PARAMS / 8
    assert offload.to_host_bytes == shard * 2 == offload.to_gpu_bytes
    assert offload.link.bandwidth == H100_PCIE5_PER_DIRECTION
    assert offload.transfer_s == shard * 2 / H100_PCIE5_PER_DIRECTION
    assert after.step.step_s == pytest.approx(before.step.step_s + shard * 2 / H100_PCIE5_PER_DIRECTION, rel=1e-15)
    assert after.training.wall_clock_s > before.training.wall_clock_s
    # the CPU step: reads the gradient (2), reads and writes the master weights (2 x 4) and both moments (2 x 8)
    assert offload.cpu_step_params == shard and offload.cpu_step_bytes == shard * (2 + 8 + 16)
    data = after.to_dict()["offload"]
    assert data["gpu_bytes_relieved"] == optimizer and data["host_fits"] is True
    assert "offload" not in before.to_dict()


def test_params_offload_moves_every_model_state_and_prices_the_weights_each_micro_batch():
    before, after = offloaded(("params",), zero=3)
    memory = before.memory
    assert after.memory.model_states == 0
    assert after.offload.host_bytes_per_gpu == memory.weights + memory.gradients + memory.optimizer
    m = before.layout.grad_accum
    assert after.offload.to_gpu_bytes == m * 2 * memory.weights
    assert after.offload.to_host_bytes == m * memory.gradients


def test_activation_offload_sends_each_stash_out_and_back():
    before, after = offloaded(("activations",))
    m = before.layout.grad_accum
    assert after.memory.activations == 0
    assert after.offload.to_host_bytes == after.offload.to_gpu_bytes == m * before.memory.activations


def test_a_host_too_small_does_not_fit():
    _, after = offloaded(("params",), host_gib=1)
    assert after.offload.host_fits is False and after.fits is False


def test_offload_needs_a_host_memory_figure():
    with pytest.raises(UsageError, match="--offload needs the host memory of a node"):
        offloaded(("optimizer",), host_gib=None)


def test_a_gpu_without_a_host_link_figure_needs_one_given():
    fleet = planning.resolve_fleet(gpu="L4")
    with pytest.raises(UsageError, match="no host link figure for L4"):
        planning.host_link(fleet)
    assert planning.host_link(fleet, gbps=32).bandwidth == 32e9


@pytest.mark.parametrize(
    "text, expected",
    [
        ("optimizer", ("optimizer",)),
        ("activations,params", ("params", "activations")),
        (None, ()),
    ],
)
def test_offload_targets(text, expected):
    assert planning.offload_targets(text) == expected


def test_an_unknown_offload_target_is_refused():
    with pytest.raises(UsageError, match="not one of optimizer, params, activations"):
        planning.offload_targets("gradients")
