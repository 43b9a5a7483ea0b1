"""bench MODEL's prediction on a GPU: the models of benchmarks/predict_cpu.py, predicted from a profile measured
on the GPU, each error printed; run only where CUDA is present."""

import importlib.util
import math
import statistics
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]
ROOT = Path(__file__).resolve().parents[1]


def test_predicted_step_times_on_the_gpu(capsys):
    from flopcalc.bench.hardware import describe_device
    from flopcalc.bench.model import run_model_bench
    from flopcalc.bench.profile import measure_profile
    from flopcalc.calibration import Calibration, DeviceCalibration

    spec = importlib.util.spec_from_file_location("predict_cpu", ROOT / "benchmarks" / "predict_cpu.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    info = describe_device("cuda")
    profile = measure_profile(info, ("fp32",), seconds=60)
    calibration = Calibration({info.device_name: DeviceCalibration("cuda", profile=profile)})
    errors = []
    for name, source, inputs in script.CASES:
        result = run_model_bench(source, inputs, device="cuda", precision="fp32", seconds=2, calibration=calibration)
        assert result.prediction_source.startswith("saved profile")
        errors.append(result.prediction_error)
        with capsys.disabled():
            print(
                f"{name}: measured {result.median_step_seconds * 1e3:.3f} ms, predicted "
                f"{result.predicted_step_seconds * 1e3:.3f} ms, error {result.prediction_error:+.1%}"
            )
    with capsys.disabled():
        print(f"median |error| {statistics.median(abs(e) for e in errors):.1%} on {info.device_name}")
    assert all(math.isfinite(error) and abs(math.log1p(error)) < math.log(3) for error in errors)  # within 3x
