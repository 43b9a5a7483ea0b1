"""The front door: named and positional inputs mixed, and no build on the CPU that the CPU cannot hold."""

import pytest
import torch
from typer.testing import CliRunner

from flopcalc import api
from flopcalc.api import count, model_bytes
from flopcalc.cli import app
from flopcalc.errors import InputSpecError, InsufficientMemoryError
from flopcalc.spec import CallArgs, ModelSpec
from tests._hf_configs import decoder, write_config
from tests._models import source_file

MASKED = """
import torch

class Masked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 4, bias=False)

    def forward(self, x, scale=None):
        y = self.proj(x)
        return y if scale is None else y * scale

def build():
    return Masked()

def example_inputs():
    return (torch.zeros(2, 8),)
"""

READS_VALUES = """
import torch

class ReadsValues(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 64)

    def forward(self, x):
        return self.lin(x) * float(x.abs().sum().item() > 0)

def reads():
    return ReadsValues()
"""


@pytest.fixture
def masked(tmp_path):
    return str(source_file(tmp_path, "masked.py", MASKED))


def test_named_inputs_join_the_examples_positional_ones(masked):
    report = count(masked, inputs=["scale=2x4"])
    assert [(i.name, i.shape) for i in report.inputs] == [(None, (2, 8)), ("scale", (2, 4))]
    assert report.forward_by_category["matmul"] == 2 * 2 * 8 * 4
    assert report.forward_by_category["elementwise"] == 2 * 4  # the multiply by scale ran


def test_positional_inputs_replace_the_example_and_mix_with_named_ones(masked):
    report = count(masked, inputs=["3x8", "scale=1x4"], batch_size=5)
    assert [(i.name, i.shape) for i in report.inputs] == [(None, (5, 8)), ("scale", (5, 4))]
    assert report.forward_by_category["matmul"] == 2 * 5 * 8 * 4


def test_an_unknown_keyword_is_refused_naming_the_forwards_arguments(masked):
    """It was the model's own error when the forward ran; now it is refused before, naming what is taken."""
    with pytest.raises(InputSpecError, match=r"inputs scael= is not an argument of .*\(it takes x, scale\)"):
        count(masked, inputs=["scael=2x4"], device="meta")


def test_a_name_given_twice_is_an_input_error(masked):
    with pytest.raises(InputSpecError, match="given twice"):
        count(masked, inputs=["scale=2x4", "scale=2x4"])


def test_an_nn_module_takes_call_args():
    model = torch.nn.Linear(8, 4)
    report = count(model, CallArgs((), {"input": torch.randn(3, 8)}))
    assert report.inputs[0].name == "input" and report.forward_by_category["matmul"] == 2 * 3 * 8 * 4


def test_model_bytes_are_parameters_buffers_and_gradients_at_their_dtypes():
    model = torch.nn.Sequential(torch.nn.Linear(8, 4).to(torch.bfloat16), torch.nn.BatchNorm1d(4))
    weights, gradients = model_bytes(model, backward=True)
    bn = 4 * (4 + 4 + 4 + 4) + 8  # weight, bias, running mean and var in fp32; num_batches_tracked int64
    assert weights == (8 * 4 + 4) * 2 + bn
    assert gradients == (8 * 4 + 4) * 2 + 2 * 4 * 4
    assert model_bytes(model, backward=False)[1] == 0


def test_no_cpu_fallback_past_the_available_memory(tmp_path, monkeypatch):
    """A model that fails on meta is not built on the CPU when its parameters would not fit: one line instead
    of the OS killing the process minutes later."""
    source = f"{source_file(tmp_path, 'reads.py', READS_VALUES)}:reads"
    assert count(source, inputs=["2x64"]).device == "cpu"  # fits: the fallback runs as before
    monkeypatch.setattr(api, "available_memory", lambda: 10_000)
    with pytest.raises(InsufficientMemoryError) as error:
        count(source, inputs=["2x64"])
    message = str(error.value)
    # 2 x (64*64 + 64) x 4 bytes: the fp32 parameters and their gradients
    assert "needs at least 33.3 kB (parameters and buffers 16.6 kB, gradients 16.6 kB)" in message
    assert "could not run on the meta device" in message and "10 kB is available" in message
    result = CliRunner().invoke(app, ["count", source, "--input", "2x64"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_an_hf_config_asked_on_the_cpu_is_measured_on_meta_first(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    config = write_config(tmp_path, decoder(64, 128, 1, 4, 1000))
    monkeypatch.setattr(api, "available_memory", lambda: 1_000_000)
    with pytest.raises(InsufficientMemoryError, match="on the cpu needs at least"):
        count(str(config), seq_len=8, device="cpu")
    assert count(str(config), seq_len=8).device == "meta"  # on meta nothing is allocated: no check


@pytest.mark.parametrize(
    "examples, epochs, kind, text",
    [
        (-1, 1, ValueError, "examples must be above 0, got -1"),
        (1e6, float("nan"), ValueError, "epochs must be finite"),
        ("1M", 1, TypeError, "examples must be a number"),
    ],
)
def test_training_refuses_bad_numbers_naming_them(examples, epochs, kind, text):
    import flopcalc

    report = count(torch.nn.Linear(8, 4), torch.randn(2, 8))
    with pytest.raises(kind, match=text):
        flopcalc.training(report, examples, epochs)


def test_a_spec_with_a_wrongly_typed_size_is_a_type_error():
    with pytest.raises(TypeError, match="batch_size must be a whole number, got float 2.5"):
        ModelSpec("net.py", batch_size=2.5)
    with pytest.raises(TypeError, match="seq_len must be a whole number, got str '128'"):
        ModelSpec("net.py", seq_len="128")


def test_count_of_something_that_is_not_a_model_is_a_type_error():
    with pytest.raises(TypeError, match="count\\(\\) needs a torch.nn.Module, got int"):
        count(42, torch.randn(2, 8))
