"""Calibration files: save -> load round trips, merging, validation errors, and the figures
`convert`/`train --calibration` take from them."""

import pytest
import yaml

from flopcalc.bench.hardware import DeviceInfo
from flopcalc.bench.matmul import MatmulBenchResult, PrecisionResult, ShapeTiming, save_matmul_result
from flopcalc.calibration import (
    CALIBRATION_ENV_VAR,
    MatmulCalibration,
    ModelCalibration,
    calibrated_peak,
    default_calibration_path,
    load_calibration,
    model_utilization,
    parse_calibration,
    resolve_calibration_path,
    save_device_entry,
)
from flopcalc.errors import CalibrationError, UsageError

H100 = "NVIDIA H100 80GB HBM3"


def _matmul(tflops):
    return MatmulCalibration(
        tflops=tflops, measured_at="2026-11-28T12:00:00+00:00", torch_version="2.13.0", seconds=25.0
    )


def _model(achieved_tflops, precision="bf16"):
    return ModelCalibration(
        model="net.py:build",
        inputs=("8x1024:int64",),
        batch_size=None,
        kwargs={},
        precision=precision,
        optimizer="adamw",
        flops_per_step=achieved_tflops * 1e12 * 0.5,
        step_seconds=0.5,
        achieved_tflops=achieved_tflops,
        measured_at="2026-11-28T12:00:00+00:00",
        torch_version="2.13.0",
        steps=20,
        peak_tflops=989.0,
        mfu=achieved_tflops / 989.0,
    )


def _bench_result(device_name="Test CPU"):
    timing = ShapeTiming((1024, 1024, 1024), "square", 3, (0.30, 0.32, 0.31))
    return MatmulBenchResult(
        info=DeviceInfo("cpu", device_name, "2.13.0", threads=2),
        results=(PrecisionResult("fp32", (timing,), 0.3328e12, "estimate"),),
        seconds_budget=10.0,
        seconds_used=9.8,
        full=False,
    )


def test_matmul_result_round_trips(tmp_path):
    path = save_matmul_result(_bench_result(), tmp_path / "cal.yaml")
    loaded = load_calibration(path)
    name, entry = loaded.device(None)
    assert name == "Test CPU" and entry.device == "cpu"
    assert entry.matmul.tflops == {"fp32": 0.31}  # the headline median, not the best sample
    assert entry.matmul.best_tflops == {"fp32": 0.32}
    assert entry.matmul.shapes == {"fp32": (1024, 1024, 1024)}
    assert entry.matmul.seconds == 10.0 and entry.matmul.threads == 2
    assert calibrated_peak(loaded, None, "fp32")[0] == pytest.approx(0.31e12)


def test_saving_merges_devices_and_keeps_model_entries(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 700.0}))
    save_device_entry(path, H100, "cuda", models={"k": _model(350.0)})
    save_matmul_result(_bench_result(), path)
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 710.0, "fp32": 50.0}))
    loaded = load_calibration(path)
    assert set(loaded.devices) == {H100, "Test CPU"}
    assert loaded.devices[H100].matmul.tflops == {"bf16": 710.0, "fp32": 50.0}
    assert set(loaded.devices[H100].models) == {"k"}
    assert list(tmp_path.iterdir()) == [path]  # atomic write leaves no temporary files


def test_calibrated_peak_label_and_device_matching(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 700.0}))
    loaded = load_calibration(path)
    flops, label = calibrated_peak(loaded, "nvidia h100 80gb hbm3", "bf16")
    assert flops == 700e12
    assert "measured 700 TFLOPS bf16 on NVIDIA H100 80GB HBM3" in label
    with pytest.raises(CalibrationError, match=r"no fp8 measurement .* \(measured: bf16\)"):
        calibrated_peak(loaded, None, "fp8")
    with pytest.raises(CalibrationError, match="no device 'A100'"):
        calibrated_peak(loaded, "A100", "bf16")
    save_matmul_result(_bench_result(), path)
    with pytest.raises(CalibrationError, match="holds 2 devices"):
        calibrated_peak(load_calibration(path), None, "bf16")


def test_model_utilization_is_achieved_over_measured(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 700.0}), models={"k": _model(350.0)})
    loaded = load_calibration(path)
    utilization, label = model_utilization(loaded, H100, "k")
    assert utilization == 0.5  # 350 achieved / 700 measured: measured x utilisation = achieved
    assert "50.0% of measured" in label
    assert model_utilization(loaded, H100, "other") is None
    with pytest.raises(CalibrationError, match="in bf16, not fp32"):
        model_utilization(loaded, H100, "k", "fp32")


@pytest.mark.parametrize(
    "text, message",
    [
        ("devices: [", "not valid YAML"),
        ("- 1\n", "expected a mapping"),
        ("version: 2\ndevices: {}\n", "version must be 1"),
        ("version: 1\ndevices: {}\nextra: 1\n", "unknown key"),
        ("version: 1\ndevices:\n  X: {device: tpu, matmul: {}}\n", "'device' must be one of"),
        ("version: 1\ndevices:\n  X: {device: cpu}\n", "holds none of 'matmul', 'models' or 'fleet'"),
        (
            "version: 1\ndevices:\n  X:\n    device: cpu\n    matmul: {tflops: {fp32: -1}, measured_at: t, torch_version: v, seconds: 1}\n",
            "fp32: must be a positive number",
        ),
        (
            "version: 1\ndevices:\n  X:\n    device: cpu\n    matmul: {tflops: {fp64: 1}, measured_at: t, torch_version: v, seconds: 1}\n",
            "unknown precision 'fp64'",
        ),
    ],
)
def test_invalid_files_are_one_line_errors(text, message):
    with pytest.raises(CalibrationError, match=message) as caught:
        parse_calibration(text)
    assert "\n" not in str(caught.value)


FLEET = {
    "backend": "nccl",
    "world_size": 16,
    "nodes": 2,
    "ranks_per_node": 8,
    "busbw_gbps": {"intra": {"all_reduce": 335.0}, "inter": {"all_reduce": 44.8}},
    "message_bytes": {"intra": {"all_reduce": 2**30}, "inter": {"all_reduce": 2**30}},
    "p2p_gbps": 39.0,
    "p2p_bytes": 2**30,
    "measured_at": "2026-11-30T16:00:00+00:00",
    "torch_version": "2.13.0",
}


def _fleet_file(key="nccl 2x8", **changes):
    import yaml

    return yaml.safe_dump({"version": 1, "devices": {H100: {"device": "cuda", "fleet": {key: {**FLEET, **changes}}}}})


@pytest.mark.parametrize(
    "text, message",
    [
        (_fleet_file(backend="mpi"), "'backend' must be one of nccl, gloo"),
        (_fleet_file(world_size=12), "world_size 12 must be nodes x ranks_per_node"),
        (_fleet_file(nodes=0), "nodes: must be a positive integer"),
        (_fleet_file(busbw_gbps={"rack": {"all_reduce": 1.0}}), "unknown scope 'rack'"),
        (
            _fleet_file(busbw_gbps={"intra": {"all_to_all": 1.0}, "inter": {"all_reduce": 1.0}}),
            "unknown collective 'all_to_all'",
        ),
        (
            _fleet_file(busbw_gbps={"intra": {"all_reduce": -3}, "inter": {"all_reduce": 1.0}}),
            "must be a positive number",
        ),
        (_fleet_file(message_bytes={"intra": {"all_reduce": 1024}}), "must name the same scopes and collectives"),
        (_fleet_file(p2p_bytes=None), "'p2p_gbps' and 'p2p_bytes' go together"),
        (_fleet_file(key="nccl 1x16"), "fleet entry 'nccl 1x16' holds a 'nccl 2x8' fleet"),
        (_fleet_file(speed=1), "unknown key"),
    ],
)
def test_invalid_fleet_entries_are_one_line_errors(text, message):
    with pytest.raises(CalibrationError, match=message) as caught:
        parse_calibration(text)
    assert "\n" not in str(caught.value)


def test_fleet_entries_merge_with_the_matmul_one_and_feed_the_planner(tmp_path):
    from flopcalc.calibration import FleetCalibration, measured_bandwidths

    path = tmp_path / "cal.yaml"
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 700.0}))
    one_node = FleetCalibration(
        backend="nccl",
        world_size=8,
        nodes=1,
        ranks_per_node=8,
        busbw_gbps={"world": {"all_reduce": 360.0}},
        message_bytes={"world": {"all_reduce": 2**30}},
        measured_at="2026-11-29T10:00:00+00:00",
        torch_version="2.13.0",
    )
    save_device_entry(path, H100, "cuda", fleet={one_node.key: one_node})
    loaded = load_calibration(path)
    assert loaded.devices[H100].matmul.tflops == {"bf16": 700.0}  # kept
    single = measured_bandwidths(loaded, H100)
    assert (single.intra_node_busbw_gbps, single.inter_node_busbw_gbps, single.p2p_gbps) == (360.0, None, None)
    two_nodes = parse_calibration(_fleet_file()).devices[H100].fleet["nccl 2x8"]
    save_device_entry(path, H100, "cuda", fleet={two_nodes.key: two_nodes})
    loaded = load_calibration(path)
    assert list(loaded.devices[H100].fleet) == ["nccl 1x8", "nccl 2x8"]
    chosen = measured_bandwidths(loaded, H100)  # the most nodes by default
    assert (chosen.intra_node_busbw_gbps, chosen.inter_node_busbw_gbps, chosen.p2p_gbps) == (335.0, 44.8, 39.0)
    assert measured_bandwidths(loaded, H100, shape="nccl 1x8").world_size == 8
    with pytest.raises(CalibrationError, match="no 'gloo 1x2' fleet for"):
        measured_bandwidths(loaded, H100, shape="gloo 1x2")
    assert calibrated_peak(loaded, H100, "bf16")[0] == 700e12  # convert/train keep the matmul figure


def test_measured_bandwidths_without_fleet_figures(tmp_path):
    from flopcalc.calibration import measured_bandwidths

    path = tmp_path / "cal.yaml"
    save_device_entry(path, H100, "cuda", matmul=_matmul({"bf16": 700.0}))
    with pytest.raises(CalibrationError, match="holds no fleet figures .*bench --distributed --save"):
        measured_bandwidths(load_calibration(path))
    with pytest.raises(CalibrationError, match="no fleet measurement for NVIDIA H100"):
        measured_bandwidths(load_calibration(path), H100)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CalibrationError, match="no calibration file .* `flopcalc bench --save`"):
        load_calibration(tmp_path / "none.yaml")


def test_a_malformed_existing_file_is_not_overwritten(tmp_path):
    path = tmp_path / "cal.yaml"
    path.write_text("version: 1\ndevices: [\n")
    with pytest.raises(CalibrationError, match="will not overwrite"):
        save_matmul_result(_bench_result(), path)
    assert path.read_text() == "version: 1\ndevices: [\n"


def test_default_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CALIBRATION_ENV_VAR, str(tmp_path / "sub" / "c.yaml"))
    assert default_calibration_path() == tmp_path / "sub" / "c.yaml"
    assert resolve_calibration_path("auto") == tmp_path / "sub" / "c.yaml"
    assert resolve_calibration_path(str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"
    saved = save_matmul_result(_bench_result())  # the default path's folder is created
    assert saved == tmp_path / "sub" / "c.yaml"
    assert yaml.safe_load(saved.read_text())["version"] == 1


def test_default_path_is_in_the_user_config_folder(monkeypatch):
    import platformdirs

    monkeypatch.delenv(CALIBRATION_ENV_VAR, raising=False)
    assert default_calibration_path() == platformdirs.user_config_path("flopcalc") / "calibration.yaml"


def test_calibrated_throughput_measured_peak_times_utilization_of_measured(tmp_path):
    from flopcalc.calibration import calibrated_throughput
    from flopcalc.catalog import load_catalog

    path = tmp_path / "cal.yaml"
    save_device_entry(
        path, H100, "cuda", matmul=_matmul({"bf16": 700.0, "fp16": 690.0, "fp32": 50.0}), models={"k": _model(350.0)}
    )
    loaded = load_calibration(path)
    throughput, notes = calibrated_throughput(loaded, utilization=0.5)
    assert (throughput.peak_flops, throughput.precision, throughput.gpu) == (700e12, "bf16", H100)
    assert throughput.sustained_flops == 350e12 and notes == ()
    assert "utilization is of measured" in throughput.origin
    # a catalogue id finds the torch name the file is keyed by
    by_id, _ = calibrated_throughput(loaded, device_name="H100-SXM", precision="fp32", catalog=load_catalog())
    assert by_id.peak_flops == 50e12 and by_id.utilization == 0.3
    # a benchmarked model brings its own utilisation: measured x utilisation = its achieved throughput
    model, notes = calibrated_throughput(loaded, model="k")
    assert model.utilization == 0.5 and model.sustained_flops == 350e12 and "of measured" in notes[0]
    with pytest.raises(UsageError, match="conflicts with the measured utilisation"):
        calibrated_throughput(loaded, model="k", utilization=0.4)


def test_calibrated_precision_default_prefers_16_bit():
    from flopcalc.calibration import DeviceCalibration, default_calibrated_precision

    assert default_calibrated_precision(DeviceCalibration("cpu", _matmul({"fp32": 0.3, "bf16": 2.0}))) == "bf16"
    assert default_calibrated_precision(DeviceCalibration("cpu", _matmul({"fp32": 0.3}))) == "fp32"
    assert default_calibrated_precision(DeviceCalibration("cuda", _matmul({"fp16": 300.0, "bf16": 290.0}))) == "fp16"
