"""The meter on a CPU: the catalogue's datasheet peak when it can name the CPU (issue 19 item 8)."""

import flopcalc.meter.peaks as peaks


def test_the_meter_names_a_catalogued_cpu(monkeypatch):
    from flopcalc.catalog import load_catalog

    catalog = load_catalog(())
    entry = next(spec for spec in catalog.select(kind="cpu")
                 if "fp32" in spec.peak_tflops and catalog.match_cpu(spec.id) is spec)
    monkeypatch.setattr(peaks, "cpu_model_name", lambda: entry.id)
    found, notes = peaks.resolve_peaks(device_name=None, gpu_given=False)
    (datasheet,) = [peak for peak in found if peak.kind == "datasheet"]
    assert datasheet.flops == entry.peak_flops("fp32") and entry.id in datasheet.label and not notes


def test_an_unknown_cpu_is_a_note(monkeypatch):
    monkeypatch.setattr(peaks, "cpu_model_name", lambda: "Imaginary CPU 9000")
    found, notes = peaks.resolve_peaks(device_name=None, gpu_given=False)
    assert not found and "Imaginary CPU 9000, is not in the catalogue" in notes[0]
