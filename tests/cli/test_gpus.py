"""`flopcalc gpus list|show` through CliRunner: formats, the JSON contract, filters, one-line errors."""

import json

import pytest

from tests._cli import invoke

SHOW_KEYS = (
    "id",
    "name",
    "vendor",
    "aliases",
    "year",
    "peak_flops",
    "sparse_peak_flops",
    "memory_gb",
    "memory_bandwidth_gbps",
    "tdp_w",
    "sources",
)


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


@pytest.mark.parametrize("kind", ["gpu", "tpu", "cpu"])
def test_list_kind_filter(kind):
    data = json.loads(invoke("gpus", "list", "--kind", kind, "-f", "json").output)
    assert data and {entry["kind"] for entry in data} == {kind}
    everything = json.loads(invoke("gpus", "list", "-f", "json").output)
    assert len(data) == sum(entry["kind"] == kind for entry in everything)


def test_list_bad_kind_is_one_line_exit_2():
    result = invoke("gpus", "list", "--kind", "fpga")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "unknown kind 'fpga' (use one of: gpu, tpu, cpu)" in result.output


def test_list_shows_int8_and_memory_bandwidth_in_every_format():
    rows = invoke("gpus", "list", "--kind", "cpu", "-f", "csv").output.splitlines()
    assert rows[0].endswith(",int8 TOPS,memory GB/s")
    assert 'Xeon-8380,Intel Xeon Platinum 8380 (Ice Lake-SP),Intel,2021,5.888,,,"6,144",270,23.552,204.8' in rows
    table = invoke("gpus", "list", "--vendor", "google").output
    assert "memory GB/s" in table and "34" in table.split("TPU-v1", 1)[1].splitlines()[0]
    assert "| memory GB/s |" in invoke("gpus", "list", "-f", "markdown").output


def test_show_json_of_a_cpu_carries_cores_clock_and_channels():
    data = json.loads(invoke("gpus", "show", "AMD EPYC 9654 96-Core Processor", "-f", "json").output)
    assert (data["id"], data["kind"], data["cores"], data["memory_channels"], data["memory_mt_s"]) == (
        "EPYC-9654",
        "cpu",
        96,
        12,
        4800,
    )
    group = data["core_groups"][0]
    assert (group["clock_ghz"], group["clock"], group["flop_per_cycle"]["fp32"]) == (2.4, "base", 32)
    assert data["peak_flops"]["fp32"] == 7.3728e12 and data["memory_bandwidth_gbps"] == 460.8
    gpu = json.loads(invoke("gpus", "show", "H100-SXM", "-f", "json").output)
    assert (gpu["kind"], gpu["cores"], gpu["core_groups"], gpu["memory_channels"]) == ("gpu", None, [], None)


def test_show_table_of_a_cpu_says_how_each_figure_follows():
    result = invoke("gpus", "show", "Xeon-8480plus")
    assert result.exit_code == 0, result.output
    for text in (
        "114.688 TFLOPS dense = 56 cores x 2 GHz (base) x 1024 FLOP/cycle",
        "229.376 TOPS dense = 56 cores x 2 GHz (base) x 2048 ops/cycle",
        "AMX-BF16 tile unit: 512 bf16 multiply-adds",
        "307.2 GB/s = 8 channels x 4800 MT/s x 8 B",
    ):
        assert text in " ".join(result.output.split())


def _show(name):
    return json.loads(invoke("gpus", "show", name, "-f", "json").output)


def test_the_lectures_tpu_table_reproduces_from_gpus_show():
    """Jouppi et al. 2017, Table 2: TPU 92 TOPS int8, 34 GB/s, 75 W; Haswell 1.3 TFLOPS fp32 / 2.6 TOPS int8,
    51 GB/s, 145 W; K80 die 2.8 TFLOPS fp32 (560 MHz), 160 GB/s, 150 W."""
    tpu, haswell, k80 = _show("TPU-v1"), _show("E5-2699v3"), _show("Tesla K80")
    assert (tpu["peak_flops"], tpu["memory_bandwidth_gbps"], tpu["tdp_w"]) == ({"int8": 92e12}, 34, 75)
    tera = {precision: round(flops / 1e12, 1) for precision, flops in haswell["peak_flops"].items()}
    assert (tera["fp32"], tera["int8"]) == (1.3, 2.6)
    assert haswell["tdp_w"] == 145 and "51 GB/s" in haswell["notes"] and "2.3 GHz" in haswell["notes"]
    assert k80["tdp_w"] == 150 and "2.80 TFLOPS fp32" in k80["notes"] and "160 GB/s" in k80["notes"]
    shown = " ".join(invoke("gpus", "show", "K80").output.split())
    assert "0.56 GHz = 2.80 TFLOPS fp32 per die" in shown


def test_show_ambiguous_hint_names_the_argument_not_an_option():
    result = invoke("gpus", "show", "h100")
    assert result.exit_code == 2
    assert "--gpu" not in result.output
    assert "flopcalc gpus show H100-SXM" in result.output
