"""Device profiles: the shipped ones read, and a bad profile file is one line naming the field."""

import pytest
import yaml

from flopcalc.device import default_profiles_text, device_profile, load_profiles, with_bus_bandwidth
from flopcalc.errors import CalibrationError
from flopcalc.predict import collective_s


def test_the_shipped_profiles_carry_a_source_for_every_figure():
    profiles = load_profiles()
    assert {"A100-SXM4-80GB", "H100-SXM"} <= set(profiles)
    a100 = profiles["A100-SXM4-80GB"]
    assert a100.matmul.peak == 312e12 and a100.matmul.achieved(200) == pytest.approx(312e12 * 0.95)
    assert a100.memory.achieved(500) == pytest.approx(2048e9 * 0.9)
    assert a100.network("intra_node").bus_bandwidth("all_reduce", 1e8) == pytest.approx(180e9)
    assert all("(" in line and ")" in line for line in a100.sources())


def test_the_profiles_are_catalogue_gpus():
    from flopcalc.catalog import load_catalog

    catalog = load_catalog(())
    for device in load_profiles():
        assert catalog.resolve(device).id == device


def _write(tmp_path, data):
    path = tmp_path / "profiles.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _shipped():
    return yaml.safe_load(default_profiles_text())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["profiles"][0]["matmul"].pop("efficiency"), r"profiles\[0\].matmul.efficiency: missing"),
        (lambda d: d["profiles"][0]["memory"].update(bandwidth_gbps=-1), "bandwidth_gbps: must be a number > 0"),
        (lambda d: d["profiles"][0]["network"]["intra_node"]["bus_efficiency"].pop("p2p"), "p2p: missing"),
        (lambda d: d["profiles"][0]["vector"]["efficiency"].update(source=""), "source"),
        (lambda d: d["profiles"][0]["matmul"]["efficiency"].update(points=[[2, 0.5], [1, 0.6]]), "ascending"),
        (lambda d: d.update(schema_version=9), "schema_version"),
        (lambda d: d["profiles"][0]["memory"]["efficiency"].update(points=[[0, 1.2]]), "at most 1"),
        (lambda d: d["profiles"].append(d["profiles"][0]), "appears twice"),
    ],
)
def test_a_bad_profile_is_one_line(tmp_path, change, message):
    data = _shipped()
    change(data)
    with pytest.raises(CalibrationError, match=message) as caught:
        load_profiles(_write(tmp_path, data))
    assert "\n" not in str(caught.value)


def test_a_corrupt_file_and_another_device_are_one_line(tmp_path):
    with pytest.raises(CalibrationError, match="not valid YAML"):
        load_profiles(_write(tmp_path, "profiles: [\n"))
    with pytest.raises(CalibrationError, match="no device profile for V100-SXM2-32GB"):
        device_profile("V100-SXM2-32GB")


def test_a_given_bus_bandwidth_replaces_the_networks_curves():
    profile = load_profiles(precision="bf16")["A100-SXM4-80GB"]
    given = with_bus_bandwidth(profile, "inter_node", 40, "--inter-node-gbps")
    network = given.network("inter_node")
    assert network.bandwidth == 40e9 and network.latency_s == profile.network("inter_node").latency_s
    # an all-reduce of 1 GB over 16 GPUs: 2 x 15/16 x 1e9 / 40e9 s plus 30 ring steps of latency
    assert collective_s(network, "all_reduce", 1e9, 16) == pytest.approx(2 * 15 / 16 * 1e9 / 40e9 + 30 * 2e-6)
    assert given.network("intra_node") == profile.network("intra_node")


@pytest.mark.parametrize("peak", ["1.0e-300", "1.0e+300"])
def test_a_profile_figure_out_of_range_is_refused_naming_it(peak, tmp_path):
    text = default_profiles_text()
    assert "peak_tflops: {fp16: 312, bf16: 312}" in text
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        text.replace("peak_tflops: {fp16: 312, bf16: 312}", f"peak_tflops: {{fp16: {peak}, bf16: {peak}}}")
    )
    with pytest.raises(
        CalibrationError, match=r"profiles\[0\]\.matmul\.peak_tflops\.fp16: must be between 1e-09 and 1e\+40"
    ):
        load_profiles(profiles)
