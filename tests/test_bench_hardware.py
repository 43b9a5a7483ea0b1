"""Device facts and the CPU peak estimate: parsed from fixture text, checked against exact arithmetic."""

import pytest

from flopcalc.bench.hardware import (
    CpuDatasheet,
    DeviceInfo,
    catalog_peak_resolver,
    cpu_peak,
    datasheet_peak,
    load_warning,
    parse_precisions,
    precision_skip_reason,
    resolve_device,
)
from flopcalc.device import CpuInfo, cpu_peak_estimate, flop_per_cycle, parse_cpuinfo
from flopcalc.errors import CatalogError, UsageError

CPUINFO_2_CORES_SMT = """\
processor	: 0
model name	: Test Xeon 8480
cpu MHz		: 2000.000
siblings	: 4
cpu cores	: 2
flags		: fpu sse2 avx avx2 fma avx512f amx_bf16 avx512_bf16

processor	: 1
model name	: Test Xeon 8480
cpu MHz		: 2100.000
siblings	: 4
cpu cores	: 2
flags		: fpu sse2 avx avx2 fma avx512f amx_bf16 avx512_bf16
"""


def _cpu(flags, cores=2, mhz=2600.0):
    return CpuInfo("test", cores, 1, mhz, "test", frozenset(flags))


def test_parse_cpuinfo_reads_model_flags_clock_and_smt():
    cpu = parse_cpuinfo(CPUINFO_2_CORES_SMT, logical_cpus=4)
    assert cpu.model_name == "Test Xeon 8480"
    assert cpu.threads_per_core == 2
    assert cpu.physical_cores == 2  # 4 logical CPUs, 2 threads per core
    assert cpu.mhz == 2100.0 and cpu.mhz_source == "/proc/cpuinfo cpu MHz"
    assert {"avx512f", "amx_bf16"} <= cpu.flags


def test_lscpu_max_mhz_wins_over_cpuinfo_clock():
    cpu = parse_cpuinfo(CPUINFO_2_CORES_SMT, "CPU max MHz:  3800.0000\nThread(s) per core:  1\n", logical_cpus=2)
    assert cpu.mhz == 3800.0 and cpu.threads_per_core == 1


@pytest.mark.parametrize(
    "flags, precision, expected",
    [
        ({"avx512f", "fma", "avx2"}, "fp32", 64),
        ({"avx2", "fma", "avx"}, "fp32", 32),
        ({"avx"}, "fp32", 16),
        ({"sse2"}, "fp32", 8),
        ({"asimd"}, "fp32", 16),
        ({"amx_bf16", "avx512_bf16"}, "bf16", 1024),
        ({"avx512_bf16"}, "bf16", 128),
        ({"avx2"}, "bf16", None),
    ],
)
def test_flop_per_cycle_table(flags, precision, expected):
    found = flop_per_cycle(frozenset(flags), precision)
    assert (found[0] if found else None) == expected


def test_cpu_peak_is_cores_times_clock_times_flop_per_cycle():
    peak, how = cpu_peak_estimate(_cpu({"avx512f"}, cores=2, mhz=2600.0), "fp32")
    assert peak == 2 * 2600e6 * 64
    assert how.startswith("estimate:")
    assert cpu_peak_estimate(_cpu({"avx512f"}, mhz=None), "fp32") is None


def test_cpu_bf16_runs_only_with_bf16_hardware():
    info = DeviceInfo("cpu", "test", "2", cpu=_cpu({"avx2", "fma"}))
    assert precision_skip_reason(info, "fp32") is None
    assert "AVX512_BF16" in precision_skip_reason(info, "bf16")
    amx = DeviceInfo("cpu", "test", "2", cpu=_cpu({"amx_bf16"}))
    assert precision_skip_reason(amx, "bf16") is None
    assert precision_skip_reason(amx, "fp16") is not None


@pytest.mark.parametrize(
    "capability, precision, runs",
    [
        ((7, 0), "fp16", True),
        ((7, 0), "bf16", False),
        ((7, 0), "tf32", False),
        ((8, 0), "fp8", False),
        ((8, 0), "int8", True),
        ((8, 9), "fp8", True),
        ((9, 0), "tf32", True),
    ],
)
def test_cuda_precision_rules_follow_compute_capability(capability, precision, runs):
    info = DeviceInfo("cuda", "gpu", "2", cuda_version="12.8", compute_capability=capability)
    assert (precision_skip_reason(info, precision) is None) is runs


def test_rocm_has_no_tf32_and_fp8_only_on_mi300():
    mi250 = DeviceInfo("cuda", "MI250X", "2", hip_version="6.2", compute_capability=(9, 0), gcn_arch="gfx90a")
    mi300 = DeviceInfo("cuda", "MI300X", "2", hip_version="6.2", compute_capability=(9, 4), gcn_arch="gfx942:sramecc+")
    assert precision_skip_reason(mi250, "tf32") is not None
    assert precision_skip_reason(mi250, "fp8") is not None
    assert precision_skip_reason(mi300, "fp8") is None


def test_load_warning_only_above_cpu_count():
    assert load_warning(3.5, cpus=2) is not None
    assert load_warning(1.5, cpus=2) is None


def test_parse_precisions():
    assert parse_precisions("BF16, fp16,bf16") == ("bf16", "fp16")
    assert parse_precisions(None) is None and parse_precisions("all") is None
    with pytest.raises(UsageError, match="unknown precision 'fp64'"):
        parse_precisions("fp64")


def test_unknown_or_absent_device_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    assert resolve_device("cpu") == "cpu"
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")


def test_datasheet_peak_uses_the_resolver_and_says_when_it_cannot():
    def resolver(name):
        if name != "NVIDIA H100 80GB HBM3":
            raise CatalogError(f"unknown GPU {name!r}")
        return {"bf16": 989e12, "fp32": 67e12}

    assert datasheet_peak("NVIDIA H100 80GB HBM3", "bf16", resolver) == (989e12, "datasheet (dense)")
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "fp8", resolver)[0] is None
    value, note = datasheet_peak("Mystery GPU", "bf16", resolver)
    assert value is None and "unknown GPU" in note
    assert datasheet_peak("x", "bf16", None)[0] is None


def test_catalog_resolver_gives_dense_datasheet_peaks():
    from flopcalc.bench.hardware import catalog_peak_resolver
    from flopcalc.catalog import load_catalog

    resolver = catalog_peak_resolver()
    expected = load_catalog().resolve("H100-SXM").peak_flops("bf16")
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "bf16", resolver) == (expected, "datasheet (dense)")
    assert datasheet_peak("Intel(R) Xeon(R) Processor", "fp32", resolver)[0] is None


def _cpuinfo(model: str, flags: str = "fpu sse2 avx avx2 fma avx512f", mhz: str = "3400.000") -> str:
    """Two processors of a 2-way SMT CPU, as /proc/cpuinfo prints them."""
    block = (
        f"processor\t: {{}}\nmodel name\t: {model}\ncpu MHz\t\t: {mhz}\nsiblings\t: 2\ncpu cores\t: 1\n"
        f"flags\t\t: {flags}\n"
    )
    return "\n".join(block.format(index) for index in range(2))


@pytest.mark.parametrize(
    "model, logical, precision, peak, label",
    [  # the whole socket (40 cores x 2 threads): the catalogue peak exactly
        (
            "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
            80,
            "fp32",
            5.888e12,
            "datasheet Xeon-8380: 40 cores x 2.3 GHz (base) x 64 FLOP/cycle",
        ),
        # a VM's 8 cores of it: 8/40 of the socket
        (
            "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
            16,
            "fp32",
            5.888e12 * 8 / 40,
            "datasheet Xeon-8380: 40 cores x 2.3 GHz (base) x 64 FLOP/cycle, x 8/40 cores this process may use",
        ),
        # two sockets of 64 cores
        (
            "AMD EPYC 7763 64-Core Processor",
            256,
            "fp32",
            5.0176e12 * 2,
            "datasheet EPYC-7763: 64 cores x 2.45 GHz (base) x 32 FLOP/cycle, x 128/64 cores this process may use",
        ),
        (
            "Intel(R) Xeon(R) Platinum 8480+",
            112,
            "bf16",
            114.688e12,
            "datasheet Xeon-8480plus: 56 cores x 2 GHz (base) x 1024 FLOP/cycle",
        ),
    ],
)
def test_cpu_peak_comes_from_the_catalogue_entry_the_model_name_names(model, logical, precision, peak, label):
    cpu = parse_cpuinfo(_cpuinfo(model, "fpu avx2 fma avx512f amx_bf16"), logical_cpus=logical)
    assert cpu_peak(cpu, precision, catalog_peak_resolver()) == (peak, label)


def test_cpu_model_from_lscpu_resolves_too():
    cpu = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd sve\n", "Model name:  Neoverse-V1\n", logical_cpus=64)
    peak, label = cpu_peak(cpu, "fp32", catalog_peak_resolver())
    assert (peak, label) == (5.3248e12, "datasheet Graviton3: 64 cores x 2.6 GHz (fixed) x 32 FLOP/cycle")


def test_cpu_peak_falls_back_to_the_estimate():
    resolver = catalog_peak_resolver()
    unknown = parse_cpuinfo(_cpuinfo("Intel(R) Xeon(R) Platinum 8380HL CPU @ 2.90GHz"), logical_cpus=4)
    assert cpu_peak(unknown, "fp32", resolver) == cpu_peak_estimate(unknown, "fp32")
    assert cpu_peak(unknown, "fp32", resolver)[1].startswith("estimate:")
    # a catalogued CPU without that precision (Milan has no bf16): the estimate, and why
    milan = parse_cpuinfo(_cpuinfo("AMD EPYC 7763 64-Core Processor", "avx2 fma avx512_bf16"), logical_cpus=4)
    peak, label = cpu_peak(milan, "bf16", resolver)
    assert peak == 2 * 3400e6 * 128 and label.endswith("; catalogue entry EPYC-7763 has no bf16 peak")
    # no resolver, a plain GPU resolver without .cpu, or one whose catalogue is broken
    known = parse_cpuinfo(_cpuinfo("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz"), logical_cpus=4)
    estimate = cpu_peak_estimate(known, "fp32")
    assert cpu_peak(known, "fp32") == cpu_peak(known, "fp32", lambda name: {}) == estimate

    class Broken:
        def __call__(self, name):
            return {}

        def cpu(self, model_name):
            raise CatalogError("bad.yaml: malformed YAML")

    assert cpu_peak(known, "fp32", Broken()) == estimate


def test_cpu_peak_uses_whatever_resolver_offers_cpu():
    class Fake:
        def __call__(self, name):
            return {}

        def cpu(self, model_name):
            return CpuDatasheet("T1", 4, {"fp32": 1e12}, {"fp32": "4 cores x 1 GHz (base) x 250 FLOP/cycle"})

    cpu = parse_cpuinfo(_cpuinfo("anything"), logical_cpus=4)  # 2 physical cores
    assert cpu_peak(cpu, "fp32", Fake()) == (
        0.5e12,
        "datasheet T1: 4 cores x 1 GHz (base) x 250 FLOP/cycle, x 2/4 cores this process may use",
    )
