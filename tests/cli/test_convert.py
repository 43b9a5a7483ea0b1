"""`flopcalc convert` through CliRunner: the lecture case (golden JSON), formats, defaults, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flopcalc.cli import app
from tests._cli import invoke, runner

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
LECTURE = ["convert", "2500 gpu-days", "--gpu", "V100-SXM2", "--precision", "fp16", "--utilization", "0.3"]


def test_lecture_case_matches_the_golden_json():
    """30% x 125e12 x 2,500 x 86,400 = 8.1e21 FLOP = 93.75 PF-days; regenerate only for a deliberate change."""
    result = invoke(*LECTURE, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == json.loads((GOLDEN / "convert_lecture_v100.json").read_text())
    assert (data["flop"], data["petaflop_days"], data["gpu_hours"]) == (8.1e21, 93.75, 60000)


def test_json_has_the_documented_keys():
    data = json.loads(invoke("convert", "3.14e23 flop", "--gpu", "A100-SXM4-80GB", "-f", "json").output)
    for key in (
        "flop",
        "petaflop",
        "petaflop_days",
        "gpu_days",
        "gpu_hours",
        "wall_clock_hours",
        "gpu",
        "precision",
        "peak_flops",
        "utilization",
        "num_gpus",
    ):
        assert key in data
    assert (data["precision"], data["utilization"], data["peak_flops"]) == ("bf16", 0.3, 312e12)


def test_table_prints_every_form_and_the_defaults():
    result = invoke("convert", "93.75 pf-days", "--gpu", "Tesla V100-SXM2-16GB", "--num-gpus", "100")
    assert result.exit_code == 0, result.output
    for text in (
        "8.1e21",
        "93.75",
        "2,500",
        "60,000",
        "600",
        "fp16",
        "utilization 0.3",
        "datasheet dense fp16",
        "100 GPUs",
    ):
        assert text in result.output


@pytest.mark.parametrize("fmt, marker", [("csv", "flop,petaflop,petaflop_days"), ("markdown", "| PetaFLOP-days |")])
def test_csv_and_markdown(fmt, marker):
    result = invoke(*LECTURE, "--format", fmt)
    assert result.exit_code == 0 and marker in result.output


def test_output_file_is_written(tmp_path):
    target = tmp_path / "out.json"
    result = invoke(*LECTURE, "-f", "json", "--output", target)
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(target.read_text())["petaflop_days"] == 93.75


@pytest.mark.parametrize(
    "args, message",
    [
        (["5 gpu-days", "--gpu", "Z9000"], "unknown GPU 'Z9000'"),
        (["5 gpu-days", "--gpu", "A100 40GB"], "ambiguous"),
        (["5 gpu-days", "--gpu", "T4", "--utilization", "1.5"], "utilization must be in (0, 1]"),
        (["5 gpu-days", "--gpu", "T4", "--utilization", "0"], "utilization must be in (0, 1]"),
        (["5 gpu-days", "--gpu", "T4", "--utilization", "lots"], "is not a number"),
        (["--gpu", "T4", "--", "-5 gpu-days"], "negative"),  # a leading '-' needs '--' (or it reads as an option)
        (["five gpu-days", "--gpu", "T4"], "not a number"),
        (["5 furlongs", "--gpu", "T4"], "unknown unit 'furlongs'"),
        (["5 gpu-days", "--gpu", "T4", "--precision", "bf16"], "it has: fp32, fp16, int8"),
        (["5 gpu-days", "--gpu", "T4", "--num-gpus", "0"], "--num-gpus"),
        (["5 gpu-days", "--gpu", "T4", "--catalog", "/nonexistent.yaml"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    target = tmp_path / "out.json"
    result = invoke("convert", "--output", target, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not target.exists()


def test_output_naming_a_folder_is_one_line_not_an_internal_error(tmp_path):
    result = invoke(*LECTURE, "--output", tmp_path)
    assert result.exit_code == 2
    assert "it is a folder" in result.output and "internal error" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_invalid_user_catalogue_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: -3}\n")
    result = invoke("convert", "1 gpu-days", "--gpu", "T4", "--catalog", bad)
    assert result.exit_code == 2 and str(bad) in result.output and "'X1'" in result.output
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("gpus: [\n")
    result = invoke("convert", "1 gpu-days", "--gpu", "T4", "--catalog", malformed)
    assert result.exit_code == 2 and "not valid YAML" in result.output


def test_user_catalogue_gpu_converts(tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text("gpus:\n  - id: X1\n    name: Mine\n    vendor: Acme\n    peak_tflops: {bf16: 100}\n")
    data = json.loads(invoke("convert", "1 gpu-days", "--gpu", "x1", "--catalog", mine, "-f", "json").output)
    assert data["flop"] == 100e12 * 0.3 * 86400
    monkeypatch.setenv("FLOPCALC_GPU_SPECS", str(mine))
    assert invoke("convert", "1 gpu-days", "--gpu", "x1").exit_code == 0


def test_convert_and_gpus_do_not_import_torch():
    """The light commands must start fast: run them in a fresh interpreter and look at sys.modules."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from flopcalc.cli import app\n"
        "r = CliRunner()\n"
        "for args in (['convert', '2500 gpu-days', '--gpu', 'V100-SXM2'], ['gpus', 'list'], ['gpus', 'show', 'T4']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        "print('torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("gpu, precision, peak", [("TPU-v1", "int8", 92e12), ("E5-2699v3", "fp32", 1.3248e12)])
def test_convert_on_the_tpu_papers_tpu_and_cpu(gpu, precision, peak):
    result = invoke("convert", "1 gpu-hours", "--gpu", gpu, "--precision", precision, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["precision"], data["peak_flops"]) == (precision, peak)
    assert data["flop"] == pytest.approx(peak * 0.3 * 3600, rel=1e-12)


def test_tpu_v1_has_no_training_precision_one_line_exit_2():
    result = invoke("convert", "1 gpu-hours", "--gpu", "TPU-v1", "--precision", "bf16")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "TPU-v1 has no bf16 peak in the catalogue (it has: int8)" in result.output


def test_convert_notes_thresholds_and_lists_them_in_json():
    result = runner.invoke(app, ["convert", "2e26 flop", "--gpu", "H100-SXM", "--format", "json"])
    data = json.loads(result.output)
    assert data["thresholds_crossed"] == ["eu-ai-act", "california-sb-53", "us-eo-14110"]
    table = runner.invoke(app, ["convert", "2e25 flop", "--gpu", "H100-SXM"]).output.replace("\n", " ")
    assert "EU AI Act" in table and "SB 53" not in table


# ---------------------------------------------------------------------------------------------------------------
# a GPU in the unit, FLOP <-> PF-days without a GPU, bare family names, human durations


def test_the_lecture_check_with_the_gpu_in_the_unit():
    """2,500 V100-days at 30% of 125 TFLOP/s (dense fp16) = 8.1e21 FLOP = 93.75 PF-days, as with --gpu."""
    result = invoke("convert", "2500 V100-days", "--utilization", "0.3", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["flop"], data["petaflop_days"], data["gpu_days"], data["gpu"]) == (8.1e21, 93.75, 2500, "V100-SXM2")
    assert data["precision"] == "fp16" and data["peak_flops"] == 125e12
    assert "V100 taken as V100-SXM2" in result.stderr and "V100-PCIe, V100S-PCIe" in result.stderr


def test_gpu_hours_named_in_the_unit():
    result = invoke("convert", "3 H100-hours", "--utilization", "0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["gpu"] == "H100-SXM" and data["gpu_hours"] == 3
    assert data["flop"] == 3 * 3600 * 989.5e12 * 0.5


def test_a_unit_gpu_and_a_different_gpu_option_is_exit_2():
    result = invoke("convert", "3 H100-hours", "--gpu", "A100-SXM4-80GB")
    assert result.exit_code == 2
    assert "names the GPU H100" in result.output


def test_pf_days_to_flop_needs_no_gpu():
    result = invoke("convert", "93.75 pf-days", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "input": {"text": "93.75 pf-days", "value": 93.75, "unit": "pf_days"},
        "flop": 8.1e21,
        "petaflop": 8.1e6,
        "petaflop_days": 93.75,
    }
    table = invoke("convert", "8.1e21 flop")
    assert table.exit_code == 0
    assert "93.75" in table.stdout and "need --gpu" in table.stdout


def test_gpu_days_without_a_gpu_is_one_line_exit_2():
    result = invoke("convert", "2500 gpu-days")
    assert result.exit_code == 2
    assert "needs --gpu" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "bare, chosen",
    [("V100", "V100-SXM2"), ("A100", "A100-SXM4-80GB"), ("H100", "H100-SXM"), ("NVIDIA A100", "A100-SXM4-80GB")],
)
def test_a_bare_family_name_is_its_most_common_variant_with_a_note(bare, chosen):
    result = invoke("convert", "1 gpu-days", "--gpu", bare, "--utilization", "0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gpu"] == chosen
    assert f"taken as {chosen}" in result.stderr


def test_every_common_variant_named_is_in_the_catalogue():
    from flopcalc.catalog import COMMON_VARIANTS, load_catalog

    catalog = load_catalog()
    for family, (chosen, others) in COMMON_VARIANTS.items():
        ids = [catalog.resolve(name).id for name in (chosen, *others)]
        assert ids == [chosen, *others]
        assert all(family in gpu_id.lower() for gpu_id in ids)


@pytest.mark.parametrize(
    "quantity, human",
    [
        ("0.75 gpu-hours", "45 min"),
        ("3.2 gpu-hours", "3.2 h"),
        ("12.4 gpu-days", "12.4 days"),
        ("2500 gpu-days", "6.84 years"),
    ],
)
def test_wall_clock_also_reads_as_people_say_it(quantity, human):
    result = invoke("convert", quantity, "--gpu", "T4", "--utilization", "0.5")
    assert result.exit_code == 0, result.output
    (wall,) = [line for line in result.stdout.splitlines() if line.startswith("wall clock")]
    assert wall.endswith(f"on 1 GPU: {human}")


EXTREME_ENTRY = """vendor: X
gpus:
  - id: ZZ-{tag}
    name: a device at the edge of the catalogue's range
    peak_tflops: {{fp32: {peak}, bf16: {peak}}}
    memory_gb: {memory}
    memory_bandwidth_gbps: {peak}
    tdp_w: {memory}
    sources: [https://example.com]
"""


def _strict(text):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


@pytest.mark.parametrize("peak, memory", [("1.0e+40", "1.0e-9"), ("1.0e-9", "1.0e+40")])
def test_json_stays_strict_at_the_edges_of_the_catalogues_range(peak, memory, tmp_path, examples):
    """The largest and smallest figures a catalogue may hold, with the largest compute: every command's JSON is
    finite (strict parsers refuse Infinity and NaN)."""
    catalog = tmp_path / "edge.yaml"
    catalog.write_text(EXTREME_ENTRY.format(tag="E", peak=peak, memory=memory))
    base = ("--catalog", catalog, "--gpu", "ZZ-E", "--format", "json")
    for command in (
        ("convert", "1e40 flop", "-u", "0.0001", "-n", "1"),
        ("convert", "1e40 gpu-hours"),
        ("train", "--params", "1e40", "--tokens", "1e40"),
        ("optimal", "-C", "1e40 flop"),
        ("gpus", "show", "ZZ-E"),
        ("infer", examples / "mlp.py", "--input", "1x784"),
    ):
        arguments = [*command, *base] if command[0] != "gpus" else [*command, *base[:2], *base[-2:]]
        result = invoke(*arguments)
        assert result.exit_code == 0, (command, result.output)
        _strict(result.stdout)


@pytest.mark.parametrize("figure", ["1.0e+300", "1.0e-300"])
def test_a_catalogue_figure_out_of_range_is_one_line_naming_the_key(figure, tmp_path):
    catalog = tmp_path / "edge.yaml"
    catalog.write_text(EXTREME_ENTRY.format(tag="F", peak=figure, memory="80"))
    result = invoke("convert", "1e24 flop", "--catalog", catalog, "--gpu", "ZZ-F")
    assert result.exit_code == 2
    assert "peak_tflops.fp32 must be between 1e-09 and 1e+40" in result.stderr
