"""The meter on a CPU: the catalogue's datasheet peak when it can name the CPU, else the estimate its cores, clock
and SIMD flags give, as bench makes it (issue 19 item 8)."""

import pytest

import flopcalc.meter.peaks as peaks
from flopcalc.device import CpuInfo, cpu_peak_estimate


def _cpu(model_name, flags=frozenset({"avx2", "fma"}), mhz=3000.0):
    return CpuInfo(model_name, logical_cpus=8, threads_per_core=2, mhz=mhz, mhz_source="test", flags=flags)


def test_the_meter_names_a_catalogued_cpu(monkeypatch):
    from flopcalc.catalog import load_catalog

    catalog = load_catalog(())
    entry = next(
        spec for spec in catalog.select(kind="cpu") if "fp32" in spec.peak_tflops and catalog.match_cpu(spec.id) is spec
    )
    monkeypatch.setattr(peaks, "read_cpu_info", lambda: _cpu(entry.id))
    found, notes = peaks.resolve_peaks(device_name=None, gpu_given=False)
    (datasheet,) = [peak for peak in found if peak.kind == "datasheet"]
    assert datasheet.flops == entry.peak_flops("fp32") and entry.id in datasheet.label and not notes
    assert "estimate" not in datasheet.label  # the catalogue's figure, not the estimate


def test_an_uncatalogued_cpu_gets_the_estimate_bench_makes(monkeypatch):
    cpu = _cpu("Imaginary CPU 9000")
    monkeypatch.setattr(peaks, "read_cpu_info", lambda: cpu)
    found, notes = peaks.resolve_peaks(device_name=None, gpu_given=False)
    (estimate,) = found
    assert estimate.kind == "datasheet" and "not in the catalogue, by estimate: 4 cores" in estimate.label and not notes
    assert estimate.flops == pytest.approx(4 * 3000e6 * 32)  # 4 physical cores x 3 GHz x 32 FLOP/cycle (AVX2 FMA)
    assert estimate.flops == cpu_peak_estimate(cpu, "fp32")[0] and "Imaginary CPU 9000" in estimate.label


def test_a_cpu_neither_catalogued_nor_estimable_is_a_note(monkeypatch):
    monkeypatch.setattr(peaks, "read_cpu_info", lambda: _cpu("Imaginary CPU 9000", flags=frozenset(), mhz=None))
    found, notes = peaks.resolve_peaks(device_name=None, gpu_given=False)
    assert not found and "Imaginary CPU 9000, is not in the catalogue" in notes[0]
