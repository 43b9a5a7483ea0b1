"""`infer --steps N [--guidance]` for diffusion models: one sample is N denoising steps, each a forward over two
latents per sample with classifier-free guidance; bounds per sample."""

from pathlib import Path

import pytest

from flopcalc.errors import UsageError
from flopcalc.infer import infer
from flopcalc.loaders.zoo import define_torchvision_ops
from flopcalc.spec import ModelSpec
from tests._hf_configs import TINY_UNET, write_config

define_torchvision_ops()  # before diffusers imports torchvision, as the loader does
pytest.importorskip("diffusers", reason="the diffusion extra is not installed: pip install 'flopcalc[diffusion]'")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unet(tmp_path):
    return write_config(tmp_path, TINY_UNET)


def bounds(unet, batch_sizes, **options):
    return infer(ModelSpec(unet), gpu="H100-SXM", batch_sizes=batch_sizes, **options).batches


def test_a_sample_is_steps_forwards(unet):
    (one_step,) = bounds(unet, [1])
    (sample,) = bounds(unet, [1], steps=10)
    assert sample.batch_size == 1
    assert sample.latency_s == pytest.approx(10 * one_step.latency_s, rel=1e-12)
    assert sample.throughput_per_s == pytest.approx(1 / sample.latency_s, rel=1e-12)


def test_guidance_runs_two_latents_per_sample_each_step(unet):
    (two_latents,) = bounds(unet, [2])
    (guided,) = bounds(unet, [1], steps=10, guidance=True)
    assert guided.batch_size == 1
    assert guided.latency_s == pytest.approx(10 * two_latents.latency_s, rel=1e-12)
    assert guided.memory_bytes == two_latents.memory_bytes
    result = infer(ModelSpec(unet), gpu="H100-SXM", batch_sizes=[1], steps=10, guidance=True)
    assert any("10 denoising steps with classifier-free guidance" in note for note in result.notes)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"guidance": True}, "give --steps N"),
        ({"steps": 0}, "at least 1"),
        ({"steps": 4, "prompt": 8, "generate": 2}, "--prompt/--generate"),
    ],
)
def test_bad_denoising_options_are_one_line(unet, options, message):
    with pytest.raises(UsageError, match=message):
        infer(ModelSpec(unet), gpu="H100-SXM", **options)


def test_steps_refused_for_a_model_that_is_not_diffusion():
    with pytest.raises(UsageError, match="--steps applies to diffusion models"):
        infer(ModelSpec(f"{ROOT / 'examples' / 'cnn.py'}:build"), gpu="H100-SXM", steps=4)
