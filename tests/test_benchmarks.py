"""The hand-run benchmark scripts still call the library as it is (`make bench` runs count_llama7b.py): their
helpers, on the tiny preset, so a changed signature fails here and not on the day someone measures."""

import importlib.util
from pathlib import Path

import torch

from tests._hf_configs import TINY_UNET, write_config

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_llama7b_helpers_load_with_kwargs_and_count():
    script = load_script("count_llama7b")
    tokens = (torch.zeros(1, 8, dtype=torch.long, device="meta"),)
    _, report = script.time_flopcalc(str(ROOT / "examples" / "llama.py"), {"preset": "tiny"}, tokens)
    _, total = script.time_flop_counter_mode(str(ROOT / "examples" / "llama.py"), {"preset": "tiny"}, tokens)
    assert report.forward > 0 and report.backward > 0 and total > 0


def test_count_sd15_unet_helpers_count_a_diffusers_config(tmp_path):
    import pytest

    from flopcalc.loaders.zoo import define_torchvision_ops

    define_torchvision_ops()
    pytest.importorskip("diffusers", reason="the diffusion extra is not installed")
    script = load_script("count_sd15_unet")
    loaded, inputs, report = script.load_and_count(Path(write_config(tmp_path, TINY_UNET)))
    assert report.forward > 0 and report.backward > 0
    assert script.flop_counter_mode_forward(loaded, inputs) > 0


def test_predict_ops_cpu_compares_each_op_of_a_step_with_its_predicted_kernel():
    from flopcalc.calibration import KernelRates

    script = load_script("predict_ops_cpu")
    rates = KernelRates(
        matmul=((64, 64, 64, 0.01),),
        memory=((1 << 20, 10.0),),
        elementwise=((1 << 16, 0.5),),
        view_us=2.0,
        step_op_us={"forward": 0.0, "backward": 0.0, "optimizer": 0.0},
    )
    lines = script.compare(f"{ROOT / 'examples' / 'mlp.py'}:build", ["4x784"], rates, top=50)
    assert lines[0].startswith("  step ") and "(71 ops)" in lines[0]
    # one matmul point at 10 GFLOP/s: the forward's two addmm, 2 x 4 x (784 x 256 + 256 x 10) FLOPs (their bytes
    # take less; the second is at least one 2 us dispatch, which its 2.05 us of FLOPs pass)
    forward = next(line for line in lines if "forward" in line and "addmm" in line)
    assert f"x2    predicted {2 * 4 * (784 * 256 + 256 * 10) / 1e10 * 1e6:9.0f} us" in forward


def test_plan_search_times_a_command_plan_accepts():
    """Its whole `flopcalc plan --search` run once exited 2 (--params 70e9 too far from a shape without its SwiGLU
    and vocabulary) and the script died at the last step: the command must run clean and find a layout."""
    from tests._cli import invoke_json

    script = load_script("plan_search")
    data = invoke_json(*script.WHOLE_COMMAND)
    assert data["parallelism"]["num_gpus"] == 1024 and data["candidates"]
