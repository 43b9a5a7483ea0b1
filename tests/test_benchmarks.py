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
