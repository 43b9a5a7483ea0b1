"""`flopcalc gpus list|show` through CliRunner: formats, the JSON contract, filters, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from flopcalc.cli import app

runner = CliRunner()
SHOW_KEYS = ("id", "name", "vendor", "aliases", "year", "peak_flops", "sparse_peak_flops", "memory_gb",
             "memory_bandwidth_gbps", "tdp_w", "sources")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_list_table_has_every_entry_and_the_dense_note():
    result = invoke("gpus", "list")
    assert result.exit_code == 0, result.output
    for gpu_id in ("V100-SXM2", "H100-SXM", "MI300X", "TPU-v4", "M2", "Gaudi3"):
        assert gpu_id in result.output
    assert "dense peaks" in result.output


def test_list_json_is_an_array_of_show_objects():
    data = json.loads(invoke("gpus", "list", "--format", "json").output)
    assert len(data) >= 40
    assert all(all(key in entry for key in SHOW_KEYS) for entry in data)


def test_list_vendor_filter():
    data = json.loads(invoke("gpus", "list", "--vendor", "amd", "-f", "json").output)
    assert data and {entry["vendor"] for entry in data} == {"AMD"}
    result = invoke("gpus", "list", "--vendor", "acme")
    assert result.exit_code == 2 and "no GPUs from vendor 'acme'" in result.output


@pytest.mark.parametrize("fmt, marker", [("csv", "id,name,vendor,year"), ("markdown", "| id | name |")])
def test_list_csv_and_markdown(fmt, marker):
    result = invoke("gpus", "list", "-f", fmt)
    assert result.exit_code == 0 and marker in result.output


def test_show_json_contract_in_flops():
    data = json.loads(invoke("gpus", "show", "NVIDIA H100 80GB HBM3", "-f", "json").output)
    assert all(key in data for key in SHOW_KEYS)
    assert data["id"] == "H100-SXM"
    assert data["peak_flops"]["bf16"] == 989.5e12
    assert data["sparse_peak_flops"]["bf16"] == 1979e12
    assert data["sources"] and data["tdp_w"] == 700


def test_show_table_lists_sources_and_sparse_apart():
    result = invoke("gpus", "show", "a100 sxm4 80gb")
    assert result.exit_code == 0, result.output
    assert "312 TFLOPS dense (624 with 2:4 sparsity)" in result.output
    assert "https://" in result.output


@pytest.mark.parametrize("name, message", [("Z9000", "unknown GPU"), ("h100", "ambiguous")])
def test_show_bad_name_is_one_line_exit_2(name, message):
    result = invoke("gpus", "show", name)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
