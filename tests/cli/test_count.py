"""`flopcalc count` through typer's CliRunner: formats, the JSON contract, and one-line errors."""

import json
from pathlib import Path

import pytest

from flopcalc.cli import app
from tests._cli import invoke, invoke_json, runner
from tests._hf_configs import TINY_GPT2, decoder, write_config
from tests._models import source_file

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_table_states_the_convention_and_shows_layers_and_categories(examples):
    result = invoke("count", f"{examples / 'cnn.py'}:build", "--input", "8x3x32x32")
    assert result.exit_code == 0, result.output
    assert "1 multiply-add = 2 FLOPs" in result.output
    for text in ("features", "Conv2d", "conv", "norm", "total", "Backward FLOP"):
        assert text in result.output


def test_json_matches_the_golden_contract(examples):
    """The documented contract (docs/json.md). Regenerate the golden file only for a deliberate change."""
    result = invoke("count", examples / "mlp.py", "--input", "4x784", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data["model"] = "examples/mlp.py"
    assert data == json.loads((GOLDEN / "count_mlp.json").read_text())
    assert data["totals"]["forward_by_category"]["matmul"] == 2 * 4 * (784 * 256 + 256 * 10)
    assert [layer["name"] for layer in data["layers"]] == ["", "0", "1", "2"]


def test_json_keys_of_the_contract(examples):
    result = invoke("count", examples / "cnn.py", "--format", "json", "--depth", "0")
    data = json.loads(result.stdout)
    assert {"schema_version", "model", "inputs", "unit", "device", "totals", "layers", "unsupported_ops"} <= set(data)
    assert {"forward", "backward", "params", "param_bytes", "forward_by_category", "backward_by_category"} <= set(
        data["totals"]
    )
    layer_keys = {
        "name",
        "type",
        "depth",
        "params",
        "forward",
        "backward",
        "forward_by_category",
        "backward_by_category",
    }
    assert all(layer_keys <= set(layer) for layer in data["layers"])
    assert len(data["layers"]) > 1  # every module, whatever --depth says


def test_unit_mac_and_no_backward(examples):
    result = invoke("count", examples / "mlp.py", "--input", "4x784", "--unit", "mac", "--no-backward", "-f", "json")
    data = json.loads(result.stdout)
    assert data["unit"] == "mac"
    assert data["totals"]["forward_by_category"]["matmul"] == 4 * (784 * 256 + 256 * 10)
    assert data["totals"]["backward"] == 0


def test_csv_and_markdown(examples):
    csv_out = invoke("count", examples / "mlp.py", "-f", "csv").output.splitlines()
    assert csv_out[0].startswith("name,type,depth,params,forward,backward")
    assert len(csv_out) == 1 + 4
    markdown = invoke("count", examples / "mlp.py", "-f", "markdown").output
    assert "| Module | Type |" in markdown and "1 multiply-add = 2 FLOPs" in markdown


def test_output_file_is_written_whole(tmp_path, examples):
    target = tmp_path / "report.json"
    result = invoke("count", examples / "mlp.py", "-f", "json", "-o", target)
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(target.read_text())["totals"]["params"] == 784 * 256 + 256 + 256 * 10 + 10
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_kwargs_depth_all_and_frozen(examples):
    data = invoke_json(
        "count", examples / "llama.py", "--kwargs", '{"n_layers": 1}', "--depth", "all", "--frozen", "embed"
    )
    assert any(layer["name"] == "layers.0.attn.q_proj" for layer in data["layers"])


def test_strict_fails_on_unsupported_ops(tmp_path):
    source = tmp_path / "inv.py"
    source.write_text(
        "import torch\nclass Inv(torch.nn.Module):\n    def forward(self, x):\n        return torch.linalg.inv(x)\n"
        "def build():\n    return Inv()\n"
    )
    ok = invoke("count", source, "--input", "3x3", "--no-backward")
    assert ok.exit_code == 0 and "aten.linalg_inv_ex" in ok.output
    strict = invoke("count", source, "--input", "3x3", "--no-backward", "--strict")
    assert strict.exit_code == 2
    assert "linalg_inv_ex" in strict.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["count", "nope.py"], "not found"),
        (["count", "{examples}/mlp.py", "--input", "2x5"], "check --input"),
        (["count", "{examples}/mlp.py", "--input", "2xq"], "not a shape"),
        (["count", "{examples}/mlp.py", "--kwargs", "{oops"], "not valid JSON"),
        (["count", "{examples}/mlp.py", "--unit", "ops"], "--unit"),
        (["count", "{examples}/mlp.py", "--depth", "deep"], "--depth"),
        (["count", "{examples}/mlp.py", "--device", "tpu"], "--device"),
        (["count", "{examples}/mlp.py:missing"], "no callable 'missing'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(examples, args, message):
    result = invoke(*[a.replace("{examples}", str(examples)) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_debug_shows_the_traceback(examples):
    result = invoke("--debug", "count", "nope.py")
    assert result.exit_code == 2
    assert "Traceback" in result.output


@pytest.mark.parametrize("args", [["count", "x.py", "--batch-size", "two"], ["count"], ["nonsense"]])
def test_parser_errors_are_one_line_and_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("flopcalc: error:")


def test_version():
    import flopcalc

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"flopcalc {flopcalc.__version__}"


@pytest.mark.parametrize(
    "body, args, message",
    [
        ("import sys\nsys.exit(3)\n", [], "SystemExit: 3"),  # a training script's argparse at import time
        (
            "import sys, torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        sys.exit(4)\n"
            "def build():\n    return M()\n",
            ["--input", "2x4"],
            "SystemExit: 4",
        ),
    ],
    ids=["at-import", "in-forward"],
)
def test_a_model_file_that_exits_is_one_line_and_exit_2(tmp_path, body, args, message):
    source = tmp_path / "exits.py"
    source.write_text(body)
    result = invoke("count", source, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_a_corrupt_pt2_prints_one_line_on_the_real_stderr(tmp_path):
    """torch.export logs a traceback through `logging` before raising; CliRunner does not see that stream."""
    import subprocess
    import sys

    corrupt = tmp_path / "corrupt.pt2"
    corrupt.write_text("not a zip")
    done = subprocess.run(
        [sys.executable, "-m", "flopcalc", "count", str(corrupt)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "not a loadable torch.export file" in done.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_says_so(examples):
    result = invoke("count", examples / "mlp.py", "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device is visible" in result.output


def test_compare_prints_each_counter_and_its_reasons_and_json_has_a_compare_block(examples):
    args = ("count", examples / "mlp.py", "--input", "4x784", "--compare", "fvcore,torch")
    table = invoke(*args)
    assert table.exit_code == 0, table.output
    assert "second opinion" in table.output and "fvcore (multiply_add_once)" in table.output
    result = invoke(*args, "--format", "json")
    data = json.loads(result.output)
    compare = data["compare"]
    assert [c["name"] for c in compare["counters"]] == ["fvcore", "torch"]
    fvcore = compare["counters"][0]
    # fvcore's linear handle: the products only, one per multiply-add
    assert fvcore["as_reported"] * 2 == data["totals"]["forward_by_category"]["matmul"]
    assert {d["reason"] for d in compare["differences"] if d["counter"] == "torch"} == {"products_only"}


def test_compare_rejects_an_unknown_counter(examples):
    result = invoke("count", examples / "mlp.py", "--input", "4x784", "--compare", "deepspeed")
    assert result.exit_code == 2 and "unknown counter deepspeed" in result.output


def test_json_of_a_transformer_config_has_a_conventions_block(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(tmp_path, TINY_GPT2)
    data = json.loads(invoke("count", config, "--seq-len", "32", "--format", "json").output)
    block = data["conventions"]
    assert block["shape"]["layers"] == 1 and block["shape"]["seq_len"] == 32
    assert [c["key"] for c in block["conventions"]] == ["kaplan_6n", "palm", "palm_causal", "torchtitan"]
    assert block["counted"]["flops_per_token"] == data["totals"]["total"] / 32


def test_compare_with_csv_is_refused_before_any_counting(examples, tmp_path):
    """CSV holds module rows only: the other counters' figures would be computed and dropped without a word."""
    target = tmp_path / "out.csv"
    result = invoke("count", examples / "mlp.py", "--compare", "fvcore", "--format", "csv", "--output", target)
    assert result.exit_code == 2 and "--compare" in result.output and "csv" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not target.exists()


def test_an_output_path_that_cannot_be_written_is_refused_before_counting(tmp_path):
    built = tmp_path / "built.txt"
    source = tmp_path / "net.py"
    source.write_text(
        f"import torch\ndef build():\n    open({str(built)!r}, 'a').write('b')\n    return torch.nn.Linear(4, 4)\n"
    )
    for target, reason in ((tmp_path / "missing" / "r.json", "does not exist"), (tmp_path, "it is a folder")):
        result = runner.invoke(app, ["count", str(source), "--input", "2x4", "-o", str(target)])
        assert result.exit_code == 2 and reason in result.output and result.output.count("\n") == 1
    assert not built.exists()


def test_max_layers_refuses_a_deep_config_naming_the_flag(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(tmp_path, decoder(8, 16, 1_000_000, 2, 10))
    result = invoke("count", config)
    assert result.exit_code == 2
    assert "declares 1,000,000 layers, more than --max-layers 10,000" in result.output
    assert "raise --max-layers" in result.output and len(result.output.strip().splitlines()) == 1
    result = invoke("count", config, "--max-layers", "0")
    assert result.exit_code == 2 and "--max-layers 0 must be a whole number >= 1" in result.output


def test_a_flopcalc_bug_exits_3_asking_for_a_report(examples, monkeypatch):
    import flopcalc.api

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(flopcalc.api, "count_spec", broken)
    result = invoke("count", examples / "mlp.py", "--input", "4x784")
    assert result.exit_code == 3
    assert result.output.startswith("flopcalc: error: internal error: ZeroDivisionError: division by zero")
    assert "please report it" in result.output and "--debug" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_input_names_the_flag_not_the_library_field(examples):
    result = invoke("count", examples / "mlp.py", "--input", "4x784", "--batch-size", "0")
    assert result.exit_code == 2 and "--batch-size 0 must be at least 1" in result.output


def test_a_misspelled_named_input_is_refused_on_the_command_line_and_in_a_budget(examples, tmp_path):
    result = invoke("count", examples / "mlp.py", "--input", "bogus_arg=1x8:int64")
    assert result.exit_code == 2
    assert "--input bogus_arg= is not an argument of Sequential.forward (it takes input)" in result.output
    budget = tmp_path / "flopcalc.yaml"
    budget.write_text(
        f"budgets:\n  - model: {examples / 'mlp.py'}\n    inputs: ['inptu=4x784']\n    max_forward_flops: 1G\n"
    )
    result = invoke("check", "--budget", budget)
    assert result.exit_code == 2 and "inptu= is not an argument of Sequential.forward (it takes input)" in result.output


def test_a_named_input_replaces_the_example_input_it_names(examples):
    """cnn.py's example_inputs() fills forward's `x` by position: `--input x=...` takes its place (it used to be
    passed as well, and the forward got x twice)."""

    def forward_of(*args):
        result = invoke("count", f"{examples / 'cnn.py'}:build", *args, "--format", "json", "--depth", "0")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["totals"]["forward"]

    named, positional = forward_of("--input", "x=2x3x32x32"), forward_of("--input", "2x3x32x32")
    assert named == positional
    assert named != forward_of()  # the example's batch of 8 is not counted


def test_progress_shows_on_a_terminal_after_its_delay_and_is_cleared():
    import io
    import time

    from rich.console import Console

    from flopcalc.cli._options import progress

    terminal = io.StringIO()
    with progress("counting net.py", delay=0.05, console=Console(file=terminal, force_terminal=True)):
        time.sleep(0.6)
    assert "counting net.py" in terminal.getvalue()
    quick = io.StringIO()
    with progress("counting net.py", delay=5, console=Console(file=quick, force_terminal=True)):
        pass
    assert "counting" not in quick.getvalue()  # work done before the delay shows nothing
    piped = io.StringIO()
    with progress("counting net.py", delay=0, console=Console(file=piped, force_terminal=False)):
        time.sleep(0.3)
    assert piped.getvalue() == ""


def test_count_on_a_terminal_shows_progress_on_stderr_and_nothing_in_a_pipe(examples, tmp_path):
    """A pseudo-terminal on stderr only: stdout (the table) is unchanged, stderr gets the spinner's label."""
    import os
    import pty
    import subprocess
    import sys

    slow = tmp_path / "slow.py"
    slow.write_text("import time, torch\n\ndef build():\n    time.sleep(2.5)\n    return torch.nn.Linear(4, 4)\n")
    command = [sys.executable, "-m", "flopcalc", "count", "slow.py:build", "--input", "2x4"]
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=secondary, timeout=300, cwd=tmp_path)
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0
    assert b"counting slow.py:build" in seen
    piped = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert piped.returncode == 0 and piped.stdout == done.stdout.decode()
    assert "counting" not in piped.stderr


def test_sparsity_shows_effective_figures_and_each_weights_zeros(examples):
    result = invoke("count", f"{examples / 'pruned.py'}:build", "--sparsity")
    assert result.exit_code == 0, result.output
    for text in (
        "Eff. fwd FLOP",
        "effective forward 19,072 FLOP",
        "backward 43,648 FLOP",
        "0.weight 32x64: 50.0% zeros, 2:4 along the reduction dimension",
        "2.weight 16x32: 75.0% zeros",
    ):
        assert text in result.output
    data = json.loads(invoke("count", f"{examples / 'pruned.py'}:build", "--sparsity", "--format", "json").stdout)
    assert (data["totals"]["effective_forward"], data["totals"]["effective_backward"]) == (19_072, 43_648)
    assert data["device"] == "cpu"  # values are read: never the meta device
    csv = invoke("count", f"{examples / 'pruned.py'}:build", "--sparsity", "--format", "csv").stdout.splitlines()
    assert csv[0].endswith("effective_forward,effective_backward") and csv[1].endswith("19072,43648")


def test_weights_file_makes_the_dense_model_the_pruned_one(examples, tmp_path):
    import torch

    from flopcalc.loaders import load_model
    from flopcalc.spec import ModelSpec

    path = tmp_path / "pruned.pt"
    torch.save(load_model(ModelSpec(f"{examples / 'pruned.py'}:build"), device="cpu").module.state_dict(), path)
    result = invoke("count", f"{examples / 'pruned.py'}:dense", "--weights", path, "--sparsity", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["effective_forward"] == 19_072


def test_weights_that_do_not_match_and_sparsity_on_meta_are_one_line_errors(examples, tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    result = invoke("count", f"{examples / 'pruned.py'}:dense", "--weights", path)
    assert result.exit_code == 2
    assert "does not match the model" in result.output and len(result.output.strip().splitlines()) == 1
    result = invoke("count", f"{examples / 'pruned.py'}:build", "--sparsity", "--device", "meta")
    assert result.exit_code == 2 and "meta device" in result.output


def test_attention_window_and_as_math_contradict(examples):
    config = examples / "hf" / "mistral-7b" / "config.json"
    result = invoke("count", config, "--seq-len", 64, "--attention-window", 16, "--attention-as-math")
    assert result.exit_code == 2
    assert "contradict each other" in result.output
    assert "Traceback" not in result.output
    result = invoke("count", config, "--seq-len", 64, "--attention-window", 0)
    assert result.exit_code == 2
    assert "must be a whole number of keys >= 1" in result.output


EVERYTHING = """\
# every op of issue 23's item 5 in one model: a count --strict must find a formula for each

import torch
import torch.nn.functional as F
from torch import nn


class Everything(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.rnn = nn.RNN(width, width, batch_first=True)
        self.proj = nn.Linear(width, width)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, image, sequence):
        down = F.interpolate(image, size=(4, 4), mode="bilinear", antialias=True)
        smooth = F.interpolate(image, size=(4, 4), mode="bicubic", antialias=True)
        grid = torch.zeros(image.shape[0], 4, 4, 2, device=image.device)
        sampled = F.grid_sample(image, grid, align_corners=False)
        pooled, indices = self.pool(image)
        unpooled = self.unpool(pooled, indices)
        spectrum = torch.fft.irfft(torch.fft.rfft(sequence, dim=1), n=sequence.shape[1], dim=1)
        complex_spectrum = torch.fft.ifft(torch.fft.fft(sequence.to(torch.complex64), dim=1), dim=1).real
        distances = torch.cdist(sequence, sequence)
        recurrent, _ = self.lstm(spectrum + complex_spectrum)
        recurrent, _ = self.gru(recurrent)
        recurrent, _ = self.rnn(recurrent)
        rows = recurrent.flatten(0, 1)  # two sequences of 3 and 5 tokens, packed
        offsets = torch.tensor([0, 3, rows.shape[0]], device=rows.device)
        jagged = torch.nested.nested_tensor_from_jagged(rows, offsets)
        heads = self.proj(jagged).unflatten(-1, (2, -1)).transpose(1, 2)
        attended = F.scaled_dot_product_attention(heads, heads, heads).transpose(1, 2).flatten(-2)
        return (
            down.sum() + smooth.sum() + sampled.sum() + unpooled.sum() + distances.sum() + attended.values().sum()
        )


def build() -> nn.Module:
    return Everything()


def example_inputs():
    return torch.randn(2, 3, 8, 8), torch.randn(2, 4, 8)
"""


def strict_count_on_cpu(source: Path) -> dict:
    """The JSON of `count SOURCE --strict --device cpu`, which must exit 0 with no op left unsupported."""
    report = invoke_json("count", source, "--strict", "--device", "cpu")
    assert report["unsupported_ops"] == {}
    return report


def test_strict_count_of_a_model_using_every_op_of_issue_23_item_5(tmp_path):
    """Antialiased interpolate, grid_sample, max_unpool, the FFT family, cdist, LSTM/GRU/RNN and a jagged
    tensor through linear and attention: --strict finds a formula for every op, forward and backward."""
    report = strict_count_on_cpu(source_file(tmp_path, "everything.py", EVERYTHING))
    layers = {layer["name"]: layer for layer in report["layers"]}
    steps = 2 * 4  # batch 2, 4 time steps; width 8
    # per step: the products 2*G*H*(I + H), the biases 2*G*H and the gates' pointwise work (docs/formulas.md)
    assert layers["lstm"]["forward"] == steps * (2 * 32 * 16 + 2 * 32 + 8 * 8 + 5 * 8)
    assert layers["gru"]["forward"] == steps * (2 * 24 * 16 + 2 * 24 + 7 * 8 + 3 * 8)
    assert layers["rnn"]["forward"] == steps * (2 * 8 * 16 + 2 * 8 + 8 + 8)
    # the jagged sequences of 3 and 5 tokens: 2 heads of 4, 3*3 + 5*5 query-key pairs
    assert report["totals"]["forward_by_category"]["attention"] == 2 * 2 * (3 * 3 + 5 * 5) * (4 + 4)


def test_count_on_a_terminal_draws_a_bar_per_category_and_piped_none(examples, tmp_path):
    """stdout a pseudo-terminal: the category bars, coloured; a pipe: the same tables without them."""
    from tests._terminal_helpers import stdout_on_terminal

    arguments = ["count", f"{examples / 'cnn.py'}:build", "--input", "1x3x32x32"]
    code, seen = stdout_on_terminal(arguments, tmp_path)
    assert code == 0 and "FLOPs by category (share of the total):" in seen and "█" in seen and "\x1b[" in seen
    piped = invoke(*arguments)  # the runner's stdout is no terminal
    assert piped.exit_code == 0 and "Category" in piped.stdout
    assert "by category" not in piped.stdout and "█" not in piped.stdout and "\x1b[" not in piped.stdout


EVERYTHING_AND_FLEX = (
    EVERYTHING
    + """

from torch.nn.attention.flex_attention import create_block_mask, flex_attention


class Flex(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width, bias=False)

    def forward(self, sequence):
        q, k, v = self.qkv(sequence).unflatten(-1, (3, 2, -1)).permute(2, 0, 3, 1, 4)
        causal = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, 4, 4, device=sequence.device)
        return flex_attention(q, k, v, block_mask=causal)


class EverythingAndFlex(Everything):
    def __init__(self):
        super().__init__()
        self.flex = Flex()

    def forward(self, image, sequence):
        return super().forward(image, sequence) + self.flex(sequence).sum()


def build() -> nn.Module:
    return EverythingAndFlex()
"""
)


def test_strict_count_of_a_model_using_every_op_of_issue_23_and_flex_attention(tmp_path):
    """The model above plus flex_attention with a causal block mask: --strict on the CPU, forward and backward."""
    report = strict_count_on_cpu(source_file(tmp_path, "everything_and_flex.py", EVERYTHING_AND_FLEX))
    flex = next(layer for layer in report["layers"] if layer["name"] == "flex")
    # batch 2, 2 heads of 4, 4 tokens: one block of 128 clipped to 4 x 4 pairs; the qkv projection 2*8*8*24
    attention = 2 * (2 * 2 * 4 * 4) * (4 + 4)
    assert flex["forward_by_category"]["attention"] == attention
    assert flex["backward_by_category"]["attention"] == 2 * attention
    assert flex["forward_by_category"]["matmul"] == flex["backward_by_category"]["matmul"] == 2 * 8 * 8 * 24
    assert any("flex_attention counted over the blocks" in note for note in report["notes"])
