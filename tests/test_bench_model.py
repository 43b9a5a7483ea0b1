"""Training-step timing of a real model: FLOPs from the counting engine, achieved TFLOPS and MFU."""

import time

import pytest

from flopcalc.api import count
from flopcalc.bench.model import MIN_TIMED_STEPS, run_model_bench, time_steps
from flopcalc.calibration import MatmulCalibration, load_calibration, model_utilization, save_device_entry
from flopcalc.errors import ModelRunError, UsageError


def test_time_steps_warms_up_then_times_until_the_budget():
    now = [0.0]
    calls = []

    def step():
        calls.append(now[0])
        now[0] += 0.125

    times, warmup = time_steps(step, seconds=1.0, sync=lambda: None, clock=lambda: now[0], warmup_fraction=0.25)
    assert warmup == 2  # 0.25 s of 0.125 s steps
    assert times == [0.125] * 6  # the rest of the second
    assert len(calls) == warmup + len(times)


def test_time_steps_takes_a_minimum_of_steps_when_one_is_slow():
    now = [0.0]

    def step():
        now[0] += 5.0

    times, warmup = time_steps(step, seconds=1.0, sync=lambda: None, clock=lambda: now[0])
    assert warmup == 1 and len(times) == MIN_TIMED_STEPS


def test_mlp_training_steps_on_cpu(examples, tmp_path):
    model = f"{examples / 'mlp.py'}:build"
    result = run_model_bench(model, inputs=["16x784"], device="cpu", seconds=1, optimizer="sgd")
    counted = count(model, inputs=["16x784"])
    assert result.flops_per_step == counted.total  # forward + backward as the engine counts them
    assert result.achieved_flops == pytest.approx(result.flops_per_step / result.median_step_seconds)
    assert len(result.step_seconds) >= MIN_TIMED_STEPS and result.warmup_steps >= 1
    assert result.precision == "fp32" and result.batch_size == 16
    if result.peak_flops:
        assert 0 < result.mfu < 1.5
    data = result.to_dict()
    for key in (
        "device",
        "device_name",
        "model",
        "flops_per_step",
        "step_seconds",
        "achieved_tflops",
        "mfu",
        "peak_tflops",
        "fraction_of_measured",
        "calibration_file",
    ):
        assert key in data


def test_measured_matmul_from_a_calibration_gives_fraction_of_measured(examples, tmp_path):
    model = f"{examples / 'mlp.py'}:build"
    first = run_model_bench(model, inputs=["16x784"], device="cpu", seconds=0.5)
    path = tmp_path / "cal.yaml"
    save_device_entry(
        path,
        first.info.device_name,
        "cpu",
        matmul=MatmulCalibration(
            tflops={"fp32": 0.25}, measured_at="2026-11-28T12:00:00+00:00", torch_version="x", seconds=10.0
        ),
    )
    save_device_entry(path, first.info.device_name, "cpu", models={first.key: first.to_calibration()})
    calibration = load_calibration(path)
    utilization, _ = model_utilization(calibration, None, first.key, "fp32")
    assert utilization == pytest.approx(first.achieved_flops / 0.25e12)
    second = run_model_bench(model, inputs=["16x784"], device="cpu", seconds=0.5, calibration=calibration)
    assert second.measured_matmul_flops == 0.25e12
    assert second.fraction_of_measured == pytest.approx(second.achieved_flops / 0.25e12)


def test_bad_inputs_and_options_are_one_line_errors(examples):
    model = f"{examples / 'mlp.py'}:build"
    with pytest.raises(ModelRunError):
        run_model_bench(model, inputs=["16x5"], device="cpu", seconds=0.5)
    with pytest.raises(UsageError, match="optimizer"):
        run_model_bench(model, inputs=["16x784"], device="cpu", optimizer="lion")
    with pytest.raises(UsageError, match="tf32 applies to CUDA"):
        run_model_bench(model, inputs=["16x784"], device="cpu", precision="tf32")
    with pytest.raises(UsageError, match="cannot be used to train"):
        run_model_bench(model, inputs=["16x784"], device="cpu", precision="int8")


def test_the_model_file_runs_once(tmp_path):
    """Regression: `bench MODEL` imported and built the user's model twice (once to count, once to time)."""
    builds = tmp_path / "builds.txt"
    source = tmp_path / "net.py"
    source.write_text(
        "import torch\n"
        f"open({str(builds)!r}, 'a').write('import\\n')\n"
        "def build():\n"
        f"    open({str(builds)!r}, 'a').write('build\\n')\n"
        "    return torch.nn.Linear(8, 4)\n"
    )
    result = run_model_bench(f"{source}:build", inputs=["2x8"], device="cpu", seconds=0.2, optimizer="sgd")
    assert builds.read_text().split() == ["import", "build"]
    assert result.forward_flops == 2 * 2 * 8 * 4 + 2 * 4  # counted on the same, single load: matmul + bias


def test_the_timed_step_starts_its_backward_where_the_count_does():
    """A tensor returned twice is one root, as in the count: seeding it twice would run (and time) a gradient
    add the model never does and the count leaves out."""
    import torch

    from flopcalc.bench.model import make_training_step
    from tests._models import ReturnsTwice

    class Recorder:
        def step(self):
            self.grad = model.linear.weight.grad.clone()

        def zero_grad(self, set_to_none=True):
            model.linear.weight.grad = None

    model, x, recorder = ReturnsTwice(lambda y: (y, {"again": y})), torch.randn(2, 4), Recorder()
    make_training_step(model, (x,), recorder, "fp32", "cpu")()
    model.linear(x).sum().backward()  # the backward the count runs: each output once, seeded with ones
    assert torch.equal(recorder.grad, model.linear.weight.grad)


def test_only_what_the_device_cannot_run_becomes_a_model_error_and_bugs_surface():
    """A training step torch refuses (a RuntimeError: kernel, dtype, device, memory) is one line naming the
    model; any other exception is a bug and is not dressed up as the model's problem."""
    import pytest

    from flopcalc.bench.model import _timed
    from flopcalc.errors import ModelRunError
    from flopcalc.spec import ModelSpec

    spec = ModelSpec("net.py:build")

    def refused():
        raise RuntimeError("expected scalar type BFloat16 but found Float")

    with pytest.raises(ModelRunError, match="a training step of net.py:build failed on cpu: RuntimeError: expected"):
        _timed(refused, spec, "cpu", 1.0, time.perf_counter)

    def buggy():
        raise KeyError("a flopcalc bug")

    with pytest.raises(KeyError):
        _timed(buggy, spec, "cpu", 1.0, time.perf_counter)
