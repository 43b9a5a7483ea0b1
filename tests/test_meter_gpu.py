"""GPU path of the meter: the CUDA device's name finds its datasheet peak, sync=True times real kernels."""

import time

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]


def test_cuda_model_gets_its_datasheet_peak_and_synchronised_timing():
    from flopcalc.catalog import load_catalog
    from flopcalc.meter import ThroughputMeter

    model = torch.nn.Sequential(torch.nn.Linear(2048, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 2048)).cuda()
    x = torch.randn(256, 2048, device="cuda")
    meter = ThroughputMeter(model, (x,), precision="fp32", sync=True)
    spec = load_catalog().resolve(torch.cuda.get_device_name())
    assert meter.peaks[0].kind == "datasheet" and meter.peaks[0].flops == spec.peak_flops("fp32")
    assert meter.report.device == "meta"
    meter.start()
    begin = time.perf_counter()
    for _ in range(10):
        model(x).sum().backward()
        meter.step()
    torch.cuda.synchronize()
    wall = time.perf_counter() - begin
    reading = meter.total()
    assert reading.achieved_flops == pytest.approx(meter.flops_per_step * 10 / wall, rel=0.05)
    assert 0 < reading.mfu("datasheet") < 1.5  # fp32 may run on TF32 tensor cores: above the fp32 peak is possible
