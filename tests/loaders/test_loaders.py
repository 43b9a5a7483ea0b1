"""Every model source on small shipped models, and every way a source can be wrong."""

import pytest
import torch

from flopcalc.api import count
from flopcalc.errors import InputSpecError, ModelLoadError, ModelRunError
from flopcalc.loaders import load_model, make_inputs
from flopcalc.spec import ModelSpec

B, D, H, C = 32, 784, 256, 10
MLP_FORWARD_MATMUL = 2 * B * (D * H + H * C)


def test_python_factory_with_default_callable_and_example_inputs(examples):
    report = count(str(examples / "mlp.py"))
    assert report.forward_by_category["matmul"] == MLP_FORWARD_MATMUL
    assert report.device == "meta"
    assert report.inputs[0].shape == (B, D)


def test_python_factory_with_kwargs_input_and_batch_size(examples):
    report = count(f"{examples / 'mlp.py'}:build", inputs=["4x100"], kwargs={"in_features": 100}, batch_size=2)
    assert report.forward_by_category["matmul"] == 2 * 2 * (100 * H + H * C)


def test_token_inputs_and_the_llama_example(examples):
    report = count(str(examples / "llama.py"), inputs=["2x16:int64"])
    assert report.inputs[0].dtype == "int64"
    dim, layers, ffn, vocab, kv = 64, 2, 172, 512, 2 * 16
    tokens = 2 * 16
    per_layer = dim * dim + 2 * dim * kv + dim * dim + 3 * dim * ffn
    assert report.forward_by_category["matmul"] == 2 * tokens * (layers * per_layer + dim * vocab)


def test_torchscript_and_export_files_count_like_the_python_model(tmp_path, examples):
    model = load_model(str(examples / "mlp.py"), device="cpu").module
    x = torch.randn(B, D)
    scripted = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.trace(model, x), str(scripted))
    exported = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(exported))

    from_script = count(str(scripted), inputs=[f"{B}x{D}"])
    from_export = count(str(exported))  # its example inputs are saved with it
    for report in (from_script, from_export):
        assert report.forward_by_category["matmul"] == MLP_FORWARD_MATMUL
        assert report.backward_by_category["matmul"] == 2 * B * D * H + 4 * B * H * C
    assert any("root module only" in note for note in from_script.notes)
    assert {layer.name for layer in from_export.layers} >= {"", "0", "2"}
    assert from_export.layer("2").forward_by_category["matmul"] == 2 * B * H * C


def test_a_model_that_cannot_run_on_meta_falls_back_to_cpu(tmp_path):
    source = tmp_path / "datadep.py"
    source.write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = torch.nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.lin(x) * float(x.abs().sum().item() > 0)\n"
        "def build():\n"
        "    return M()\n"
    )
    report = count(str(source), inputs=["2x4"])
    assert report.device == "cpu"
    assert any("could not run on the meta device" in note for note in report.notes)
    with pytest.raises(ModelRunError):
        count(str(source), inputs=["2x4"], device="meta")


def test_a_factory_that_reads_values_while_building_falls_back_to_cpu(tmp_path):
    source = tmp_path / "droppath.py"
    source.write_text(
        "import torch\n"
        "def build(depth=3):\n"
        "    rates = [x.item() for x in torch.linspace(0, 0.1, depth)]  # as ViT-style models do\n"
        "    return torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in rates])\n"
    )
    report = count(str(source), inputs=["2x4"])
    assert report.device == "cpu" and report.forward_by_category["matmul"] == 3 * 2 * 2 * 4 * 4
    assert any("could not run on the meta device" in note for note in report.notes)


def test_integer_inputs_are_valid_token_ids():
    (tokens,) = make_inputs(ModelSpec("net.py", inputs=("2x3:int64",)), None, device="cpu")
    assert tokens.dtype == torch.int64 and int(tokens.abs().sum()) == 0


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "source, message",
    [
        (lambda t: str(t / "missing.py"), "not found"),
        (lambda t: write(t, "broken.py", "def build(:\n"), "does not parse"),
        (lambda t: write(t, "raises_on_import.py", "raise RuntimeError('boom')\n"), "importing"),
        (lambda t: write(t, "nothing.py", "def helper():\n    pass\n") + ":nope", "no callable 'nope'"),
        (lambda t: write(t, "nodefault.py", "x = 1\n"), "no callable named build or model"),
        (lambda t: write(t, "factory_raises.py", "def build():\n    raise ValueError('bad depth')\n"), "bad depth"),
        (lambda t: write(t, "not_a_module.py", "def build():\n    return 42\n"), "not a torch.nn.Module"),
        (lambda t: write(t, "corrupt.pt", "not a zip"), "not a loadable TorchScript"),
        (lambda t: write(t, "corrupt.pt2", "not a zip"), "not a loadable torch.export"),
        (lambda t: write(t, "weights.bin", "x"), "cannot tell what kind of model"),
    ],
)
def test_bad_sources_raise_one_line_errors(tmp_path, source, message):
    with pytest.raises(ModelLoadError, match=message) as info:
        count(source(tmp_path), inputs=["1x4"])
    assert "\n" not in str(info.value)


def test_inputs_that_do_not_fit_the_model(examples):
    with pytest.raises(ModelRunError, match="check inputs shapes") as info:  # the CLI writes "check --input"
        count(str(examples / "mlp.py"), inputs=["2x5"])
    assert "\n" not in str(info.value) and info.value.field == "inputs"


def test_missing_inputs_say_how_to_give_them(tmp_path):
    source = write(tmp_path, "noinputs.py", "import torch\ndef build():\n    return torch.nn.Linear(2, 2)\n")
    with pytest.raises(InputSpecError, match="--input"):
        count(source)


def test_an_exported_model_with_tied_weights_keeps_them_tied_on_meta(tmp_path):
    """Moving a module to meta re-creates each module's parameters; a tied embedding/head must stay one
    parameter (counted once, its two gradients summed) as on the cpu."""

    class TiedLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(50, 8)
            self.head = torch.nn.Linear(8, 50, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, tokens):
            return self.head(self.embed(tokens))

    path = tmp_path / "tied.pt2"
    torch.export.save(torch.export.export(TiedLM(), (torch.zeros(2, 3, dtype=torch.long),)), str(path))
    on_meta, on_cpu = count(str(path)), count(str(path), device="cpu")
    assert on_meta.device == "meta"
    assert on_meta.params == on_cpu.params == 50 * 8
    assert on_meta.to_dict()["totals"] == on_cpu.to_dict()["totals"]


def test_an_onnx_file_over_2_gib_is_refused_before_it_is_parsed(tmp_path):
    from flopcalc.loaders.onnx_file import MAX_ONNX_BYTES, load_onnx

    path = tmp_path / "huge.onnx"
    with open(path, "wb") as handle:  # sparse: nothing written
        handle.truncate(MAX_ONNX_BYTES + 1)
    with pytest.raises(ModelLoadError, match=r"ONNX file .*huge.onnx is 2,147,483,649 bytes, more than the 2048 MiB"):
        load_onnx(path)


NAMEDTUPLE_MODEL = """
from collections import namedtuple
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import register_dataclass

Batch = namedtuple("Batch", "x mask")


@dataclass
class Pair:
    x: torch.Tensor
    mask: torch.Tensor


register_dataclass(Pair)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, batch):
        return self.fc(batch.x) * batch.mask


def build():
    return Net()


def example_inputs():
    return (Batch(torch.randn(2, 8), torch.ones(2, 4)),)


def example_pair():
    return (Pair(torch.randn(2, 8), torch.ones(2, 4)),)
"""


@pytest.mark.parametrize("batch_size", [None, 3])
def test_a_namedtuple_from_example_inputs_is_moved_and_rebatched_as_a_namedtuple(tmp_path, batch_size):
    """Nested inputs go through torch's pytree: a namedtuple gave "internal error" (it was rebuilt from a
    generator, which a namedtuple does not take)."""
    source = tmp_path / "named.py"
    source.write_text(NAMEDTUPLE_MODEL)
    report = count(f"{source}:build", batch_size=batch_size)
    batch = batch_size or 2
    assert report.forward_by_category["matmul"] == 2 * batch * 8 * 4
    assert report.forward_by_category["elementwise"] == 2 * batch * 4  # the bias add and the mask
    assert [info.shape for info in report.inputs] == [(batch, 8), (batch, 4)]


def test_a_registered_dataclass_input_is_walked_by_make_inputs(tmp_path):
    source = tmp_path / "named.py"
    source.write_text(NAMEDTUPLE_MODEL)
    loaded = load_model(ModelSpec(f"{source}:build"), device="meta")
    namespace: dict = {}
    exec(compile(NAMEDTUPLE_MODEL, str(source), "exec"), namespace)
    pair = namespace["example_pair"]()
    moved = make_inputs(ModelSpec(f"{source}:build", batch_size=5), pair, device="meta")
    assert type(moved[0]).__name__ == "Pair"
    assert moved[0].x.shape == (5, 8) and moved[0].x.device.type == "meta" and moved[0].mask.shape == (5, 4)
    assert loaded.module.fc.weight.device.type == "meta"


FACTORIES = """
from torch import nn


def build(width=4):
    return nn.Linear(width, 2)


def broken(width=4):
    return nn.Linear(width, "two")  # a TypeError inside the factory: the model's bug, not a kwargs one
"""


def test_only_a_signature_mismatch_is_a_kwargs_problem(tmp_path):
    from flopcalc.errors import ModelBuildError

    source = tmp_path / "factories.py"
    source.write_text(FACTORIES)
    with pytest.raises(ModelLoadError, match=r"kwargs do not fit build\(\).*build\(\) takes width") as caught:
        load_model(ModelSpec(f"{source}:build", kwargs={"depth": 3}), device="meta")
    assert caught.value.field == "kwargs"
    with pytest.raises(ModelBuildError, match=r"broken\(\) raised TypeError") as caught:
        load_model(ModelSpec(f"{source}:broken", kwargs={"width": 3}), device="meta")
    assert "kwargs" not in str(caught.value)
    assert load_model(ModelSpec(f"{source}:build", kwargs={"width": 3}), device="meta").module.in_features == 3


def test_a_named_input_the_forward_does_not_take_is_refused_naming_what_it_takes(examples, tmp_path):
    with pytest.raises(
        InputSpecError,
        match=r"inputs bogus_arg= is not an argument of Sequential.forward "
        r"\(it takes input\)",
    ) as caught:
        count(str(examples / "mlp.py"), ["bogus_arg=1x8:int64"])
    assert caught.value.field == "inputs"
    accepting = tmp_path / "accepting.py"
    accepting.write_text(
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def forward(self, x, **extra):\n        return x * 2\n\n\ndef build():\n"
        "    return Net()\n"
    )
    report = count(f"{accepting}:build", ["x=2x3", "anything=1"], backward=False)  # **extra takes any name
    assert report.forward_by_category["elementwise"] == 6
