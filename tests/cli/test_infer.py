"""`flopcalc infer` through CliRunner: the JSON contract (golden file), the table, formats, one-line errors."""

import json
from pathlib import Path

import pytest

from tests._cli import invoke
from tests._hf_configs import tiny_bert, write_config

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# 8 tokens of prompt, 4 generated, at batch sizes 1 and 4 on an A100: then int4 weights, or (the golden file) an fp8 cache
SERVING = ("--gpu", "A100-SXM4-80GB", "--prompt", "8", "--generate", "4", "--batch-size", "1,4")
GENERATION = (*SERVING, "--weight-dtype", "int4")
DECODER_GOLDEN = (*SERVING, "--kv-dtype", "fp8")


def test_json_matches_the_golden_contract(examples):
    """docs/infer.md documents this shape; regenerate the golden file only for a deliberate change."""
    result = invoke("infer", examples / "decoder.py", *DECODER_GOLDEN, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data["model"] = "examples/decoder.py"
    assert data == json.loads((GOLDEN / "infer_decoder.json").read_text())
    assert data["schema_version"] == 1
    assert set(data["gpu"]) >= {"id", "peak_tflops", "bandwidth_gbps"}
    assert set(data["layers"][0]) >= {"name", "flops", "bytes", "intensity", "bound", "time_s"}
    assert set(data["batches"][0]) >= {"batch_size", "latency_s", "throughput_per_s", "bound"}
    assert set(data["prefill"]) >= {"tokens", "flops", "time_s"}
    assert set(data["decode"]) >= {"flops_per_token_at_context", "flops_total", "time_per_token_s", "tokens_per_s"}
    for key in (
        "precision",
        "weights_bytes",
        "kv_cache_bytes_per_token",
        "kv_cache_bytes",
        "max_batch_that_fits",
        "notes",
    ):
        assert key in data
    assert data["kv_cache_bytes_per_token"] == 2 * 2 * 64 * 1  # K and V, 2 layers of width 64, fp8
    assert data["time_model"] == "roofline"  # no device profile: the times are roofline bounds


def test_table_states_the_bounds_are_lower_bounds_and_shows_every_part(tiny_llama):
    result = invoke("infer", tiny_llama, *GENERATION)
    assert result.exit_code == 0, result.output
    for text in (
        "lower bounds",
        "1 multiply-add = 2 FLOPs",
        "model.layers.*.mlp.up_proj",
        "Time/token",
        "TTFT",
        "KV cache",
        "prefill (batch 1, 8 tokens)",
        "decode (batch 1, 4 tokens)",
        "int4 weights: 4 bits",
        "largest batch that fits",
    ):
        assert text in result.output, text
    assert "flopcalc: note" not in result.output  # the table shows its notes itself


def test_plain_model_markdown_csv_and_an_output_file(examples, tmp_path):
    mlp = f"{examples / 'mlp.py'}:build"
    markdown = invoke("infer", mlp, "--gpu", "H100-SXM", "-b", "1,8", "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    assert "| Layer | Type |" in markdown.output and "| Batch | Latency |" in markdown.output
    csv = invoke("infer", mlp, "--gpu", "H100-SXM", "--format", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0].startswith("name,type,flops,bytes,")
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    target = tmp_path / "infer.json"
    written = invoke("infer", mlp, "--gpu", "H100-SXM", "--format", "json", "--output", target)
    assert written.exit_code == 0 and written.stdout == ""
    assert "lower bounds" in written.stderr  # notes the file does not show the terminal does
    data = json.loads(target.read_text())
    assert data["prefill"] is None and data["decode"] is None and data["batches"][0]["ttft_s"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (("--batch-size", "0"), "a batch size must be at least 1"),
        (("--batch-size", "1,x"), "is not a list of whole numbers"),
        (("--prompt", "8", "--generate", "2"), "does not take input_ids, past_key_values and use_cache"),
        (("--generate", "2"), "--prompt and --generate go together"),
        (("--batch-size", "99999999999999999999"), "a batch size must be at most 16,777,216"),
        (("--prompt", "8", "--generate", "99999999999999"), "at most 16,777,216 tokens in all"),
        (("--weight-dtype", "int2"), "--weight-dtype 'int2' is not a storage format"),
        (("--compute-precision", "fp8"), "A100-SXM4-80GB has no fp8 peak"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(examples, args, message):
    result = invoke("infer", f"{examples / 'mlp.py'}:build", "--gpu", "A100-SXM4-80GB", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_gpu_without_a_bandwidth_figure_and_no_gpu_at_all(examples, tmp_path):
    catalogue = tmp_path / "gpus.yaml"
    catalogue.write_text("gpus:\n  - {id: NoBandwidth-1, name: No Bandwidth, vendor: Acme, peak_tflops: {bf16: 100}}\n")
    mlp = f"{examples / 'mlp.py'}:build"
    result = invoke("infer", mlp, "--gpu", "NoBandwidth-1", "--catalog", catalogue)
    assert result.exit_code == 2 and "NoBandwidth-1 has no memory bandwidth in the catalogue" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = invoke("infer", mlp)
    assert result.exit_code == 2 and "no GPU given" in result.stderr


def test_the_documented_json_example_uses_the_contract_keys():
    """docs/infer.md's JSON example has the golden file's keys at every level, and its table lists each of them."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "infer.md").read_text()
    example = json.loads(docs.split("```json\n")[1].split("```")[0])
    golden = json.loads((GOLDEN / "infer_decoder.json").read_text())
    assert set(example) == set(golden)
    for key in ("gpu", "prefill", "decode"):
        assert set(example[key]) == set(golden[key]), key
    assert set(example["layers"][0]) == set(golden["layers"][0])
    assert set(example["batches"][0]) == set(golden["batches"][0])
    for key in golden:
        assert f"`{key}`" in docs, key


@pytest.mark.parametrize(
    "architecture, message",
    [
        ("BertModel", "is not a causal language model"),  # an encoder
        ("BertLMHeadModel", "is not a causal language model: its attention sees every position both ways"),
    ],
    ids=["encoder", "lm-head-without-causal-mask"],
)
def test_generate_on_a_model_whose_attention_is_not_causal_exits_2(tmp_path, architecture, message):
    pytest.importorskip("transformers")
    path = write_config(tmp_path, tiny_bert(architecture))
    result = invoke("infer", path, "--gpu", "A100-SXM4-80GB", "--prompt", "8", "--generate", "2")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_names_only_options_the_command_has():
    result = invoke("infer", "--help")
    assert result.exit_code == 0
    for option in ("--utilization", "--epochs", "--examples"):
        assert option not in result.output, option
    assert "--prompt" in result.output and "--kv-dtype" in result.output


def a100_profile_file(folder):
    """The shipped profiles file with the A100's profile alone."""
    from flopcalc.predict import default_profiles_text

    text = default_profiles_text()
    path = folder / "a100.yaml"
    path.write_text(text[: text.index("  - device: H100-SXM")])
    return path


def test_a_device_profile_makes_the_times_predictions_and_says_so(examples, tmp_path):
    profile = a100_profile_file(tmp_path)
    bounds = invoke("infer", examples / "decoder.py", *DECODER_GOLDEN)
    assert bounds.exit_code == 0, bounds.output
    assert "serving bounds" in bounds.stdout and "times: roofline bounds" in bounds.stdout
    predicted = invoke(
        "infer", examples / "decoder.py", "--calibration", profile, *DECODER_GOLDEN[2:], "--format", "json"
    )  # the GPU is the one the file profiles
    assert predicted.exit_code == 0, predicted.output
    data = json.loads(predicted.stdout)
    assert data["time_model"] == "predicted" and data["gpu"]["id"] == "A100-SXM4-80GB"
    assert data["notes"][0].startswith(f"times are predictions on the A100-SXM4-80GB device profile from {profile}")
    roofline = json.loads(invoke("infer", examples / "decoder.py", *DECODER_GOLDEN, "--format", "json").stdout)
    # the same FLOPs and bytes; every layer slower than its bound (efficiencies below 1, the times added)
    assert [(a["flops"], a["bytes"]) for a in data["layers"]] == [(a["flops"], a["bytes"]) for a in roofline["layers"]]
    assert all(a["time_s"] > b["time_s"] for a, b in zip(data["layers"], roofline["layers"]))
    table = invoke("infer", examples / "decoder.py", "--calibration", profile, *DECODER_GOLDEN)
    assert "serving predictions" in table.stdout and "times: predictions on the A100-SXM4-80GB" in table.stdout
    assert "time to first token ~" in table.stdout and ">=" not in table.stdout


def test_a_profile_of_another_device_is_one_line_exit_2(examples, tmp_path):
    target = tmp_path / "infer.json"
    result = invoke(
        "infer",
        examples / "decoder.py",
        "--gpu",
        "H100-SXM",
        "--calibration",
        a100_profile_file(tmp_path),
        "--format",
        "json",
        "--output",
        target,
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "profiles A100-SXM4-80GB, not H100-SXM: a profile measured on one device does not apply" in result.stderr
    assert not target.exists()


def test_infer_on_a_terminal_draws_the_bound_strip_and_piped_none(examples, tmp_path):
    """stdout a pseudo-terminal: the strip of each layer's bound; a pipe or --output: the tables alone."""
    from tests._terminal_helpers import stdout_on_terminal

    arguments = ["infer", f"{examples / 'cnn.py'}:build", "--input", "1x3x32x32", "--gpu", "A100-SXM4-80GB"]
    code, seen = stdout_on_terminal(arguments, tmp_path)
    assert code == 0 and "layer after layer" in seen and "░" in seen
    piped = invoke(*arguments)  # the runner's stdout is no terminal
    assert piped.exit_code == 0 and "Batch sizes" in piped.stdout
    assert "layer after layer" not in piped.stdout and "░" not in piped.stdout
    code, _ = stdout_on_terminal([*arguments, "--output", "served.txt"], tmp_path)
    written = (tmp_path / "served.txt").read_text()
    assert code == 0 and "Batch sizes" in written and "░" not in written
