"""The MFU meter (flopcalc/meter/core.py, peaks.py): counted once on meta, timed in the loop, every figure
labelled with its peak."""

import time

import pytest
import torch
import torch.nn as nn

import flopcalc
from flopcalc.calibration import MatmulCalibration, save_device_entry
from flopcalc.errors import CatalogError, UsageError
from flopcalc.meter import ThroughputMeter, meta_copy

H100 = "NVIDIA H100 80GB HBM3"


def _mlp(width=256):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_achieved_flops_are_counted_flops_times_steps_over_the_wall_time_the_test_measures():
    model, x = _mlp(256), torch.randn(32, 256)
    meter = ThroughputMeter(model, (x,), peak_flops=2e12)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    steps = 12
    # the meter's clock readings are bracketed by the test's: taken at the same moments, whatever the load
    outer_begin = time.perf_counter()
    meter.start()
    inner_begin = time.perf_counter()
    for step in range(steps):
        model(x).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == steps - 1:
            inner_end = time.perf_counter()
        meter.step()
    outer_end = time.perf_counter()
    shortest, longest = inner_end - inner_begin, outer_end - outer_begin
    reading = meter.total()
    assert reading.steps == steps
    flops = meter.flops_per_step * steps
    assert flops / longest * (1 - 1e-9) <= reading.achieved_flops <= flops / shortest * (1 + 1e-9)
    assert reading.mfu() == pytest.approx(reading.achieved_flops / 2e12, rel=1e-12)
    assert reading.mfu("given") == reading.achieved_flops / 2e12
    assert 32 * steps / longest * (1 - 1e-9) <= reading.samples_per_second <= 32 * steps / shortest * (1 + 1e-9)


def test_the_step_is_counted_on_a_meta_copy_and_the_users_module_is_untouched():
    model, x = _mlp(), torch.randn(8, 256)
    model[0].weight.requires_grad_(False)  # frozen: no weight gradient for it
    meter = ThroughputMeter(model, (x,))
    # Linear 256->512 and 512->256 on 8 rows: 2*8*256*512 each way; frozen first weight, no input gradient
    matmul = 2 * 8 * 256 * 512
    assert meter.report.forward_by_category["matmul"] == 2 * matmul
    assert meter.report.backward_by_category["matmul"] == 2 * matmul  # second layer: input + weight grads
    assert meter.report.device == "meta"
    assert meter.flops_per_step == flopcalc.count(model, (x,)).total
    assert all(p.device.type == "cpu" and p.grad is None for p in model.parameters())
    assert model[0].weight.requires_grad is False and model[2].weight.requires_grad


def test_meta_copy_keeps_tied_weights_tied_and_allocates_nothing():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    copied = meta_copy(model)
    assert copied[0].weight is copied[1].weight
    assert copied[0].weight.device.type == "meta" and model[0].weight.device.type == "cpu"


def test_activation_checkpointing_is_hardware_flops_and_gives_an_hfu():
    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(32, 32), nn.Linear(32, 32)

        def forward(self, x):
            hidden = torch.utils.checkpoint.checkpoint(lambda t: torch.relu(self.a(t)), x, use_reentrant=False)
            return self.b(hidden)

    clock = _Clock()
    meter = ThroughputMeter(Checkpointed(), torch.randn(4, 32), peak_flops=1e9, clock=clock)
    recomputed = meter.report.recomputed
    # the re-run forward of `a` and its relu: 2*4*32*32 matmul + 4*32 bias adds + 4*32 relu
    assert recomputed == 2 * 4 * 32 * 32 + 4 * 32 + 4 * 32
    meter.start()
    clock.now += 0.5
    meter.step()
    reading = meter.reading()
    assert reading.hardware_flops == meter.flops_per_step + recomputed
    assert reading.hfu() == pytest.approx((meter.flops_per_step + recomputed) / 0.5 / 1e9)
    assert reading.mfu() < reading.hfu()
    assert "hfu_given" in reading.metrics()


def test_the_first_step_starts_the_clock_and_the_window_rolls():
    clock = _Clock()
    meter = ThroughputMeter(report=flopcalc.count(_mlp(8), torch.randn(2, 8)), window=2, clock=clock)
    meter.step()  # starts the clock, not timed
    assert meter.reading().steps == 0
    for seconds in (1.0, 2.0, 4.0):
        clock.now += seconds
        meter.step()
    window = meter.reading()
    assert (window.steps, window.seconds) == (2, 6.0)
    assert window.model_flops == 2 * meter.flops_per_step
    assert (meter.total().steps, meter.total().seconds) == (3, 7.0)


def test_batch_size_and_tokens_scale_the_counted_flops_and_a_new_shape_is_counted():
    clock = _Clock()
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 50))  # token ids in, logits out
    meter = ThroughputMeter(model, torch.zeros(2, 8, dtype=torch.long), clock=clock)
    meter.start()
    clock.now += 1
    meter.step(batch_size=4)  # twice the samples: twice the FLOPs, and tokens follow
    assert meter.reading().model_flops == 2 * meter.flops_per_step
    assert meter.reading().tokens == 32
    clock.now += 1
    meter.step(batch_size=2, tokens=32)  # longer sequences: scaled per token, said once
    assert any("scaled per token" in note for note in meter.notes)
    longer = torch.zeros(2, 16, dtype=torch.long)
    clock.now += 1
    meter.step(batch=longer)
    last = meter.reading()
    assert last.model_flops == 2 * meter.flops_per_step + 2 * meter.flops_per_step + flopcalc.count(model, longer).total
    assert any("new batch shape was counted" in note for note in meter.notes)


def test_peaks_from_the_datasheet_and_a_calibration_each_say_what_they_are(tmp_path):
    path = save_device_entry(
        tmp_path / "cal.yaml",
        H100,
        "cuda",
        matmul=MatmulCalibration(
            tflops={"bf16": 700.0}, measured_at="2026-11-28T12:00:00+00:00", torch_version="2.13.0", seconds=25.0
        ),
    )
    clock = _Clock()
    meter = ThroughputMeter(
        report=flopcalc.count(_mlp(8), torch.randn(2, 8)),
        device_name="H100-SXM",
        precision="bf16",
        calibration=str(path),
        clock=clock,
    )
    datasheet, measured = meter.peaks
    assert (datasheet.kind, datasheet.flops) == ("datasheet", 989.5e12)
    assert "datasheet dense bf16 peak of H100-SXM" in datasheet.label
    assert (measured.kind, measured.flops) == ("measured", 700e12)
    assert "measured bf16 matmul peak" in measured.label and "2026-11-28" in measured.label
    meter.start()
    clock.now += 0.001
    meter.step()
    reading = meter.reading()
    assert reading.mfu("measured") / reading.mfu("datasheet") == pytest.approx(989.5 / 700)
    assert reading.mfu() == reading.mfu("datasheet")
    assert "of datasheet dense bf16" in str(reading) and "of measured bf16" in str(reading)
    assert [m["label"] for m in reading.to_dict()["mfu"]] == [datasheet.label, measured.label]


def test_a_device_name_the_catalogue_lacks_is_an_error_when_given():
    with pytest.raises(CatalogError):
        ThroughputMeter(report=flopcalc.count(_mlp(8), torch.randn(2, 8)), device_name="no-such-gpu")


def test_bad_construction_is_a_usage_error():
    with pytest.raises(UsageError, match="example batch"):
        ThroughputMeter(_mlp(8))
    with pytest.raises(UsageError, match="one of model"):
        ThroughputMeter()
    with pytest.raises(UsageError, match="window"):
        ThroughputMeter(report=flopcalc.count(_mlp(8), torch.randn(2, 8)), window=0)


def test_a_model_that_reads_values_is_counted_once_on_its_device_with_a_note():
    class ReadsValues(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)

        def forward(self, x):
            return self.linear(x) * float(x.abs().max().item() > 0)

    model = ReadsValues()
    meter = ThroughputMeter(model, torch.randn(3, 4))
    assert meter.report.device == "cpu"
    assert any("could not be counted on the meta device" in note for note in meter.report.notes)
    assert meter.report.forward_by_category["matmul"] == 2 * 3 * 4 * 4
    assert all(p.grad is None for p in model.parameters())


def _one_step_of_two_seconds():
    """A meter on the 8-wide MLP at a given 1e9 peak, started and stepped once 2 s later by a hand-moved clock."""
    clock = _Clock()
    meter = ThroughputMeter(report=flopcalc.count(_mlp(8), torch.randn(2, 8)), peak_flops=1e9, clock=clock)
    meter.start()
    clock.now += 2
    meter.step()
    return meter


def test_fleet_reading_without_a_process_group_is_this_ranks():
    meter = _one_step_of_two_seconds()
    fleet = meter.fleet_reading()
    assert (fleet.scope, fleet.world_size, fleet.model_flops) == ("fleet", 1, meter.flops_per_step)


def test_the_fleet_all_reduces_through_a_real_process_group():
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        meter = _one_step_of_two_seconds()
        fleet = meter.fleet_reading()
    finally:
        dist.destroy_process_group()
    assert (fleet.scope, fleet.world_size, fleet.seconds) == ("fleet", 1, 2.0)
    assert (fleet.model_flops, fleet.samples, fleet.peak("given").flops) == (meter.flops_per_step, 2, 1e9)


def test_the_fleet_sums_the_counters_of_every_rank_and_takes_the_slowest_time(monkeypatch):
    """Two ranks, the other one simulated: it ran 3 samples in 3 s at a 2e9 peak and knows no measured peak."""
    import torch.distributed as dist

    clock = _Clock()
    report = flopcalc.count(_mlp(8), torch.randn(2, 8))
    meter = ThroughputMeter(report=report, peak_flops=1e9, clock=clock)
    meter.peaks = meter.peaks + (flopcalc.meter.Peak("measured", 5e8, "measured"),)
    meter.start()
    clock.now += 1
    meter.step()
    other = {"steps": 1, "samples": 3, "model_flops": 3 * report.total / 2, "seconds": 3.0}

    def all_reduce(tensor, op):
        if op == dist.ReduceOp.MAX:
            tensor.copy_(torch.maximum(tensor, torch.tensor([other["seconds"]], dtype=tensor.dtype)))
            return
        # steps, samples, tokens, tokenless, model, hardware, then (flops, ranks) for given, datasheet, measured
        theirs = [1, 3, 0, 1, other["model_flops"], other["model_flops"], 2e9, 1, 0, 0, 0, 0]
        tensor.add_(torch.tensor(theirs, dtype=tensor.dtype))

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    fleet = meter.fleet_reading()
    assert fleet.model_flops == report.total + 3 * report.total / 2
    assert (fleet.seconds, fleet.samples, fleet.steps, fleet.world_size) == (3.0, 5, 1, 2)
    assert [p.kind for p in fleet.peaks] == ["given"] and fleet.peak().flops == 3e9
    assert fleet.mfu() == fleet.model_flops / 3.0 / 3e9
    assert any("measured left out" in note for note in fleet.notes)


@pytest.mark.parametrize(
    "options, kind, text",
    [
        ({"window": 0}, ValueError, "window must be at least 1, got 0"),
        ({"peak_flops": -1e12}, ValueError, "peak_flops must be above 0"),
        ({"peak_flops": float("nan")}, ValueError, "peak_flops must be finite"),
        ({"tokens_per_sample": "512"}, TypeError, "tokens_per_sample must be a whole number"),
    ],
)
def test_the_meter_refuses_bad_arguments_naming_them(options, kind, text):
    from flopcalc.meter import ThroughputMeter

    with pytest.raises(kind, match=text):
        ThroughputMeter(torch.nn.Linear(4, 2), (torch.randn(3, 4),), **options)


@pytest.mark.parametrize(
    "step, kind, text",
    [
        ({"batch_size": -8}, ValueError, "batch_size must be above 0, got -8"),
        ({"batch_size": float("nan")}, ValueError, "batch_size must be finite"),
        ({"tokens": float("inf")}, ValueError, "tokens must be finite"),
        ({"batch_size": "8"}, TypeError, "batch_size must be a number"),
    ],
)
def test_a_step_with_a_negative_or_nan_batch_is_refused(step, kind, text):
    """A negative batch size gave negative FLOP/s; a NaN a raw exception from deep inside."""
    from flopcalc.meter import ThroughputMeter

    meter = ThroughputMeter(
        torch.nn.Linear(4, 2), (torch.randn(3, 4),), peak_flops=1e12, clock=iter(range(100)).__next__
    )
    meter.step()
    with pytest.raises(kind, match=text):
        meter.step(**step)
    assert meter.total().steps == 0


def test_the_three_ways_in_are_classmethods_giving_the_same_count(examples):
    from flopcalc.meter import ThroughputMeter
    from flopcalc.spec import ModelSpec

    model, example = torch.nn.Linear(4, 2), (torch.randn(3, 4),)
    by_model = ThroughputMeter.from_model(model, example, peak_flops=1e12)
    by_report = ThroughputMeter.from_report(by_model.report, peak_flops=1e12)
    assert by_model.flops_per_step == by_report.flops_per_step == 2 * (2 * 3 * 4 * 2) + 3 * 2 + 3 * 2
    with pytest.raises(TypeError, match="spec must be a ModelSpec, got str"):
        ThroughputMeter.from_spec("examples/mlp.py", peak_flops=1e12)
    with pytest.raises(TypeError, match="report must be a CountReport"):
        ThroughputMeter.from_report({"forward": 1})
    with pytest.raises(UsageError, match="from_model needs a model and an example batch"):
        ThroughputMeter.from_model(model, None)
    by_spec = ThroughputMeter.from_spec(ModelSpec(str(examples / "mlp.py"), inputs=("3x784",)), peak_flops=1e12)
    assert by_spec.flops_per_step == flopcalc.count(str(examples / "mlp.py"), ["3x784"]).total
