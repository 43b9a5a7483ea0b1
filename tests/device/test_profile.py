"""Device profiles: the shipped ones read, and a bad profile file is one line naming the field."""

import pytest
import yaml

from flopcalc.errors import CalibrationError
from flopcalc.device import default_profiles_text, device_profile, load_profiles


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


@pytest.mark.parametrize("change, message", [
    (lambda d: d["profiles"][0]["matmul"].pop("efficiency"), r"profiles\[0\].matmul.efficiency: missing"),
    (lambda d: d["profiles"][0]["memory"].update(bandwidth_gbps=-1), "bandwidth_gbps: must be a number > 0"),
    (lambda d: d["profiles"][0]["network"]["intra_node"]["bus_efficiency"].pop("p2p"), "p2p: missing"),
    (lambda d: d["profiles"][0]["vector"]["efficiency"].update(source=""), "source"),
    (lambda d: d["profiles"][0]["matmul"]["efficiency"].update(points=[[2, 0.5], [1, 0.6]]), "ascending"),
    (lambda d: d.update(schema_version=9), "schema_version"),
    (lambda d: d["profiles"][0]["memory"]["efficiency"].update(points=[[0, 1.2]]), "at most 1"),
    (lambda d: d["profiles"].append(d["profiles"][0]), "appears twice"),
])
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
