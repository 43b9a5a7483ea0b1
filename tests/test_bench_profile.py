"""The device profile: measured by `bench --save`, stored in the calibration file, refused when it belongs to
another device or is incomplete; `bench MODEL` predicts its step from it; disturbed runs are not saved."""

import json
from dataclasses import replace

import pytest
import yaml

from flopcalc.bench.hardware import describe_device
from flopcalc.bench.matmul import MatmulBenchResult, PrecisionResult, save_matmul_result
from flopcalc.bench.profile import Ladder, measure_rates
from flopcalc.bench.sweep import ShapeTiming
from flopcalc.calibration import (
    KernelRates,
    ProfileCalibration,
    load_calibration,
    measured_profile,
    parse_calibration,
    save_device_entry,
)
from flopcalc.errors import CalibrationError
from tests._cli import assert_one_line_error, invoke

RATES = KernelRates(
    matmul=((8, 32, 32, 0.01), (64, 256, 256, 0.05)),
    memory=((4096, 2.0), (1 << 20, 20.0)),
    elementwise=((1024, 0.2),),
    view_us=2.5,
    step_op_us={"forward": 6.0, "backward": 4.0, "optimizer": 2.0},
)
TINY = Ladder((8, 64), (32,), 1e9, (4096, 65536), (1024,), 0.001, ((1, 2),), (2,), (), 1e6)


def bench_mlp(examples, *options):
    """`flopcalc bench` of examples/mlp.py on an 8 x 784 input, 0.3 s on the CPU: OPTIONS say where its profile is."""
    return invoke(
        "bench", f"{examples / 'mlp.py'}:build", "--input", "8x784", "--device", "cpu", "--seconds", 0.3, *options
    )


def _profile(device_name):
    return ProfileCalibration(device_name, "2026-12-03T10:00:00+00:00", "2.13", {"fp32": RATES}, 2)


def test_a_saved_profile_reads_back_equal_and_merges_by_precision(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, "Some CPU", "cpu", profile=_profile("Some CPU"))
    assert load_calibration(path).devices["Some CPU"].profile == _profile("Some CPU")
    bf16 = ProfileCalibration("Some CPU", "2026-12-03T11:00:00+00:00", "2.13", {"bf16": RATES}, 2)
    save_device_entry(path, "Some CPU", "cpu", profile=bf16)
    assert set(load_calibration(path).devices["Some CPU"].profile.precisions) == {"fp32", "bf16"}


def test_measured_rates_cover_the_ladder():
    rates = measure_rates(describe_device("cpu"), "fp32", ladder=TINY)
    assert [point[:3] for point in rates.matmul] == [(8, 32, 32), (64, 32, 32)]
    assert [size for size, _ in rates.memory] == [4096, 65536] and [size for size, _ in rates.elementwise] == [1024]
    assert all(point[-1] > 0 for point in rates.matmul + rates.memory + rates.elementwise) and rates.view_us > 0
    assert set(rates.step_op_us) == {"forward", "backward", "optimizer"} and all(
        us >= 0 for us in rates.step_op_us.values()
    )
    # 1x1 and 3x3 of 2 -> 2 channels and a 3-channel stem on 1 x 2 x 2 inputs, least work first: (m, n, k, groups)
    assert [point[:4] for point in rates.convolution] == [(4, 2, 2, 1), (4, 2, 18, 1), (4, 2, 27, 1)]
    assert all(rate > 0 for point in rates.convolution for rate in point[4:])
    assert measure_rates(describe_device("cpu"), "fp32", ladder=TINY, convolutions=False).convolution == ()
    budgeted = measure_rates(describe_device("cpu"), "fp32", ladder=TINY, seconds=600)  # time for every shape
    assert len(budgeted.matmul) == 2 and len(budgeted.convolution) == 3


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["precisions"]["fp32"].pop("memory"), "missing memory"),
        (lambda p: p["precisions"]["fp32"].pop("step_op_us"), "missing step_op_us"),
        (lambda p: p["precisions"]["fp32"].__setitem__("step_op_us", {"forward": 1.0}), "step_op_us: expected"),
        (
            lambda p: p["precisions"]["fp32"].__setitem__("convolution", [[8, 8, 8, 1, 1.0, 1.0]]),
            "every point must be 7",
        ),
        (
            lambda p: p["precisions"]["fp32"].__setitem__("matmul", [[8, 32, "x", 1.0]]),
            "every point must be 4 positive",
        ),
        (lambda p: p["precisions"]["fp32"].__setitem__("view_us", -1), "view_us"),
        (lambda p: p.pop("device_name"), "'device_name' must be a non-empty string"),
        (lambda p: p.__setitem__("precisions", {}), "'precisions' is missing or empty"),
    ],
)
def test_a_profile_missing_a_field_or_corrupt_is_one_line(tmp_path, edit, message):
    data = {"version": 1, "devices": {"Some CPU": {"device": "cpu", "profile": _profile("Some CPU").to_dict()}}}
    edit(data["devices"]["Some CPU"]["profile"])
    with pytest.raises(CalibrationError, match=message) as caught:
        parse_calibration(yaml.safe_dump(data))
    assert "\n" not in caught.value.message


def test_a_profile_of_another_device_is_refused(tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, "Other CPU", "cpu", profile=_profile("Other CPU"))
    with pytest.raises(CalibrationError, match="measured on Other CPU, not on This CPU"):
        measured_profile(load_calibration(path), "This CPU")
    save_device_entry(path, "This CPU", "cpu", profile=_profile("Other CPU"))  # filed under the wrong name
    with pytest.raises(CalibrationError, match="was measured on 'Other CPU'"):
        measured_profile(load_calibration(path), "This CPU")


def test_bench_model_refuses_another_devices_profile(examples, tmp_path):
    path = tmp_path / "cal.yaml"
    save_device_entry(path, "Other CPU", "cpu", profile=_profile("Other CPU"))
    result = bench_mlp(examples, "--calibration", path)
    assert_one_line_error(result, "measured on Other CPU")


def test_bench_model_predicts_from_the_saved_profile(examples, tmp_path):
    path = tmp_path / "cal.yaml"
    name = describe_device("cpu").device_name
    save_device_entry(path, name, "cpu", profile=_profile(name))
    result = bench_mlp(examples, "--calibration", path, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["prediction_source"].startswith("saved profile")
    assert data["prediction_error"] == pytest.approx(data["step_seconds"] / data["predicted_step_seconds"] - 1)
    # RATES has no op_rates, as a profile saved before they were measured: it still predicts, and says so
    assert any("no op_rates" in note and "bench --save" in note for note in data["notes"]), data["notes"]


def test_bench_model_without_a_profile_measures_a_quick_one(examples, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOPCALC_CALIBRATION", str(tmp_path / "none.yaml"))  # not a profile saved on this machine
    result = bench_mlp(examples, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["prediction_source"].startswith("quick profile") and data["predicted_step_seconds"] > 0


def _matmul_result(samples):
    info = describe_device("cpu")
    timing = ShapeTiming((256, 256, 256), "square", 1, samples)
    return MatmulBenchResult(
        info, (PrecisionResult("fp32", (timing,), None, "-"),), 1.0, 1.0, False, profile=_profile(info.device_name)
    )


def test_a_wide_spread_is_not_saved_unless_forced(tmp_path):
    path = tmp_path / "cal.yaml"
    with pytest.raises(CalibrationError, match="spread 50% .*pass --force"):
        save_matmul_result(_matmul_result((1.0, 1.5, 1.0)), path)
    assert not path.exists()
    save_matmul_result(_matmul_result((1.0, 1.5, 1.0)), path, force=True)
    saved = load_calibration(path).devices[describe_device("cpu").device_name]
    assert saved.matmul.tflops == {"fp32": 1.0} and saved.profile.precisions["fp32"] == RATES
    save_matmul_result(_matmul_result((1.0, 1.1, 1.05)), path)  # 10%: saved


def test_bench_save_on_a_busy_machine_is_refused_before_measuring(monkeypatch, tmp_path):
    import flopcalc.bench.hardware as hardware

    monkeypatch.setattr(hardware, "load_warning", lambda **_: f"{hardware.BUSY} (load average 9.0 > 2 CPUs): rerun")
    assert_one_line_error(
        invoke("bench", "--device", "cpu", "--save", "--calibration", tmp_path / "c.yaml"),
        "will not measure for --save: the machine looks busy (load average 9.0 > 2 CPUs)",
    )
    assert_one_line_error(invoke("bench", "--device", "cpu", "--force"), "--force applies to --save")
    assert not (tmp_path / "c.yaml").exists()


def test_the_fleet_stores_bus_bandwidth_by_message_size_in_the_profile(tmp_path):
    from flopcalc.bench.fleet import save_fleet_result
    from tests._fleet_helpers import two_node_result

    path = tmp_path / "cal.yaml"
    save_device_entry(path, "NVIDIA H100 80GB HBM3", "cuda", profile=_profile("NVIDIA H100 80GB HBM3"))
    save_fleet_result(two_node_result(), path)
    profile = load_calibration(path).devices["NVIDIA H100 80GB HBM3"].profile
    assert profile.precisions == {"fp32": RATES}  # the kernel rates are kept
    assert set(profile.busbw) == {"world", "intra", "inter"}
    # 256 MiB in 5 ms and 1 GiB in 20 ms on 8 ranks: busbw = bytes / time x 2 x 7 / 8
    (small, small_gbps), (large, large_gbps) = profile.busbw["intra"]["all_reduce"]
    assert (small, large) == (2**28, 2**30)
    assert (small_gbps, large_gbps) == pytest.approx((2**28 / 0.005 / 1e9 * 1.75, 2**30 / 0.02 / 1e9 * 1.75))
    ((size, gbps),) = profile.busbw["world"]["p2p"]
    assert size == 2**30 and gbps == pytest.approx(2**30 / 0.05 / 1e9)


def test_bench_model_warns_when_it_runs_above_the_measured_matmul_peak(examples):
    """A model cannot outrun its own matmuls: a calibration whose peak it beats is wrong, and bench says so."""
    from flopcalc.bench.model import run_model_bench
    from flopcalc.calibration import Calibration, DeviceCalibration, MatmulCalibration

    name = describe_device("cpu").device_name
    tiny_peak = MatmulCalibration({"fp32": 1e-9}, "2026-12-03T10:00:00+00:00", "2.13", 1.0)  # 1 kFLOP/s
    calibration = Calibration({name: DeviceCalibration("cpu", matmul=tiny_peak)})
    result = run_model_bench(
        f"{examples / 'mlp.py'}:build", ["8x784"], device="cpu", seconds=0.3, calibration=calibration, predict=False
    )
    (warning,) = [w for w in result.warnings if "measured matmul peak" in w]
    assert f"{result.fraction_of_measured:.0%} of the measured matmul peak" in warning
    assert "the calibration is wrong" in warning and result.fraction_of_measured > 1


def test_one_slow_step_does_not_make_a_model_run_disturbed_but_steady_noise_does():
    from flopcalc.bench.model import ModelBenchResult
    from flopcalc.spec import ModelSpec

    def run(steps):
        return ModelBenchResult(
            describe_device("cpu"), ModelSpec("net.py"), 8, "fp32", "adamw", 10, 20, steps, 1, None, "-"
        )

    one_outlier = run((1.0, 1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.9))  # a context switch in one step
    assert one_outlier.spread_pct == pytest.approx(92, abs=0.5) and one_outlier.disturbances() == ()
    # quartiles (inclusive of the sample's spread, statistics.quantiles' default) of a steadily noisy run
    noisy = run((1.0, 1.4, 0.8, 1.5, 0.7, 1.3, 0.9, 1.6))
    assert noisy.middle_spread_pct > 25
    assert noisy.disturbances() == (
        f"the middle half of the step times spread {noisy.middle_spread_pct:.0f}% (more than 25%)",
    )


def test_op_rates_time_the_ops_no_copy_or_gemm_stands_for():
    import time

    import torch

    from flopcalc.bench.profile import measure_op_rates

    rates = measure_op_rates((1 << 10, 1 << 12), "cpu", torch.float32, time.perf_counter, lambda: None)
    for name in ("native_batch_norm", "native_batch_norm_backward", "max_pool2d_with_indices", "sqrt", "div"):
        sizes = [size for size, _ in rates[name]]
        assert sizes == sorted(sizes) and len(sizes) == 2 and all(rate > 0 for _, rate in rates[name]), name
    assert "mm" not in rates and "view" not in rates and "addcdiv_" in rates  # in-place ops under their own name
    assert rates["native_batch_norm"][0][0] == 4 * 16 * 4 * 4  # keyed by the activation's elements
    ladder = replace(TINY, op_rate_elements=(1 << 10,))
    measured = measure_rates(describe_device("cpu"), "fp32", ladder=ladder, convolutions=False)
    assert [size for size, _ in measured.op_rates["sqrt"]] == [1 << 10]


def test_op_rates_stop_at_the_budget_and_leave_out_ops_that_do_not_grow_with_the_probe():
    import time

    import torch

    from flopcalc.bench.profile import measure_op_rates

    one = measure_op_rates((1 << 10, 1 << 12), "cpu", torch.float32, time.perf_counter, lambda: None, lambda: True)
    assert [size for size, _ in one["native_batch_norm"]] == [1 << 10]  # out of time: the smallest size only
    assert "ones_like" not in one and "stack" not in one  # 1 and 8 elements whatever the probe's size
