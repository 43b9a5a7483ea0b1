"""flopcalc.device.resolve_device: a device name and precision to one record of figures, each labelled with its
source; measurements replace datasheet figures; an unknown device and a profile of another device are refused."""

import pytest
from typer.testing import CliRunner

from flopcalc.calibration import MatmulCalibration, choose_throughput, save_device_entry
from flopcalc.cli import app
from flopcalc.device import (
    ASSUMED_INTER_NODE_SOURCE,
    LinkMeasurement,
    MatmulMeasurement,
    device_profile,
    resolve_device,
    with_network,
)
from flopcalc.errors import CalibrationError, CatalogError, UsageError

H100 = "NVIDIA H100 80GB HBM3"
MEASURED = MatmulMeasurement(H100, {"bf16": 700e12, "fp32": 50e12}, "2026-11-28T12:00:00+00:00", "cal.yaml")


def test_a_catalogue_gpu_at_a_precision_has_every_figure_with_its_source():
    device = resolve_device("H100-SXM", "fp8")
    assert (device.id, device.precision, device.kind) == ("H100-SXM", "fp8", "gpu")
    assert (device.peak.value, device.peak.source, device.peak.origin) == (1979e12, "datasheet dense fp8", "datasheet")
    assert device.peaks["bf16"].value == 989.5e12 and device.peaks["bf16"].source == "datasheet dense bf16"
    assert (device.memory_bytes.value, device.memory_bytes.source) == (
        80 * 2**30,
        "catalogue, H100-SXM",
    )  # "80GB" of HBM is 80 GiB
    assert device.memory_bandwidth.value == 3350e9
    assert device.intra_node.value == 450.0 and device.intra_node.source.startswith(
        "catalogue, H100-SXM: NVLink 4 (18 links): 900 GB/s both directions together = 450 GB/s per direction"
    )
    assert (device.inter_node.value, device.inter_node.source, device.inter_node.origin) == (
        25.0,
        ASSUMED_INTER_NODE_SOURCE,
        "assumed",
    )
    assert device.tdp_w == 700.0 and device.profile is None


def test_the_default_precision_is_the_fastest_sixteen_bit_one_and_aliases_resolve():
    assert resolve_device("NVIDIA H100 80GB HBM3").precision == "bf16"
    t4 = resolve_device("T4")
    assert (t4.precision, t4.peak.value, t4.intra_node) == ("fp16", 65e12, None)


def test_a_measurement_overrides_the_datasheet_peak_with_its_label():
    device = resolve_device("H100-SXM", "bf16", measured=MEASURED)
    assert device.id == "H100-SXM"  # the catalogue still names it and gives memory, links and power
    assert (device.peak.value, device.peak.origin) == (700e12, "measured")
    assert device.peak.source == "measured by flopcalc bench 2026-11-28 in cal.yaml"
    assert device.peaks["fp32"].value == 50e12 and device.peaks["fp8"].source == "datasheet dense fp8"
    assert device.memory_bytes.value == 80 * 2**30 and device.tdp_w == 700.0
    assert resolve_device(None, measured=MEASURED).precision == "bf16"  # the faster measured 16-bit one
    with pytest.raises(
        CalibrationError,
        match=r"^no fp8 measurement for NVIDIA H100 80GB HBM3 in cal.yaml "
        r"\(measured: bf16, fp32\) \(use --precision",
    ):
        resolve_device("H100-SXM", "fp8", measured=MEASURED)


def test_a_calibration_file_reaches_the_device_through_the_throughput_policy(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(
        path,
        H100,
        "cuda",
        matmul=MatmulCalibration(
            tflops={"bf16": 700.0}, measured_at="2026-11-28T12:00:00+00:00", torch_version="2.13.0", seconds=25.0
        ),
    )
    choice = choose_throughput(gpu="H100-SXM", calibration=path)
    assert choice.device.peak.value == 700e12 and choice.device.peak.origin == "measured"
    assert choice.throughput.origin == f"measured by flopcalc bench 2026-11-28 in {path}; utilization is of measured"
    assert choice.device.memory_bandwidth.value == 3350e9 and choice.tdp_w == 700.0


def test_a_measured_device_the_catalogue_lacks_keeps_its_name_and_says_why():
    measured = MatmulMeasurement("Test CPU", {"fp32": 0.3e12}, "2026-11-28T12:00:00+00:00")
    device = resolve_device(None, measured=measured)
    assert (device.id, device.accelerator, device.memory_bytes, device.memory_bandwidth) == (
        "Test CPU",
        None,
        None,
        None,
    )
    assert device.peak.source == "measured by flopcalc bench 2026-11-28"
    assert "unknown GPU 'Test CPU'" in device.catalog_miss


def test_measured_bus_bandwidths_replace_the_link_peak_and_the_assumption():
    network = LinkMeasurement(370.0, 45.0, "measured by flopcalc bench --distributed on 2 nodes x 8 H100")
    device = with_network(resolve_device("H100-SXM"), network)
    assert (device.intra_node.value, device.intra_node.origin) == (370.0, "measured")
    assert device.intra_node.source == "measured by flopcalc bench --distributed on 2 nodes x 8 H100, all-reduce busbw"
    assert (device.inter_node.value, device.inter_node.origin) == (45.0, "measured")
    one_node = with_network(resolve_device("H100-SXM"), LinkMeasurement(370.0, None, "one node"))
    assert one_node.inter_node.source == ASSUMED_INTER_NODE_SOURCE


def test_an_unknown_device_is_one_line():
    with pytest.raises(CatalogError) as error:
        resolve_device("Mystery GPU 9000")
    assert "unknown GPU 'Mystery GPU 9000'" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UsageError, match="no GPU given"):
        resolve_device(None)
    with pytest.raises(UsageError, match="H100-SXM has no fp4 peak|unknown precision"):
        resolve_device("H100-SXM", "fp4")


@pytest.mark.parametrize(
    "command",
    [
        ["convert", "1e23 flop"],
        ["train", "--params", "7e9", "--tokens", "1e12"],
        ["plan", "--params", "7B", "--seq-len", "2048", "--num-gpus", "8"],
    ],
)
def test_an_unknown_device_through_the_cli_is_one_line_and_exit_2(command):
    result = CliRunner().invoke(app, [*command, "--gpu", "Mystery GPU 9000"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("flopcalc: error: unknown GPU 'Mystery GPU 9000'"), result.output


def test_a_profile_of_its_own_device_is_attached():
    device = resolve_device("A100-SXM4-80GB", "fp16", profile_file="shipped")
    assert device.profile is not None and device.profile.device == "A100-SXM4-80GB"
    assert device.profile.matmul.peak == 312e12


def test_a_profile_measured_on_one_device_applied_to_another_is_refused_with_one_line():
    a100 = device_profile("A100-SXM4-80GB")
    with pytest.raises(CalibrationError) as error:
        resolve_device("H100-SXM", "fp16", profile=a100)
    message = str(error.value)
    assert message.startswith("the device profile is for A100-SXM4-80GB, not H100-SXM") and "\n" not in message
    with pytest.raises(CalibrationError, match="no device profile for T4"):
        resolve_device("T4", "fp16", profile_file="shipped")
