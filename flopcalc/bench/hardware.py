"""What machine we are on: device choice, CPU facts, the precisions the hardware runs fast, peaks.

Peaks come from `flopcalc.device` through a resolver callable (`catalog_peak_resolver`), so the timing code
can be handed any figures: GPUs by device name, CPUs by model name when the catalogue has the CPU
(`resolver.cpu`). Other CPUs get an estimate (cores x clock x FLOP per cycle from the
SIMD/FMA flags: `flopcalc.device.cpu`, which the meter reads too).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..catalog import Catalog, load_catalog
from ..device import CpuInfo, available_cpus, cpu_peak_estimate, read_cpu_info
from ..device import resolve_device as device_figures
from ..errors import FlopcalcError, UsageError
from ..units import MATMUL_PRECISIONS

DEVICES = ("auto", "cuda", "mps", "cpu")

CPU_FAST_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_precision_skip_reason(cpu: CpuInfo, precision: str) -> str | None:
    """Why `precision` is not benchmarked on this CPU, or None when it runs in hardware."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        if cpu.flags & CPU_FAST_BF16_FLAGS:
            return None
        return "bf16 skipped: this CPU has neither AVX512_BF16 nor AMX, and the fallback is 50-100x slower"
    return f"{precision} skipped: no fast {precision} matmul in torch on CPU"


BUSY = "the machine looks busy"  # how a load warning starts: a run with one is not saved unless forced


def load_warning(load_average: float | None = None, cpus: int | None = None) -> str | None:
    """A warning when the 1-minute load average exceeds the CPU count (other work halves results)."""
    if load_average is None:
        try:
            load_average = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    cpus = cpus or available_cpus()
    if load_average > cpus:
        return (
            f"{BUSY} (load average {load_average:.1f} > {cpus} CPUs): "
            "results may be far below what it can do; rerun when it is idle"
        )
    return None


PeakResolver = Callable[[str], Mapping[str, float]]
"""Maps a device name (as torch reports it) to dense peak FLOP/s per precision; raises CatalogError.
It may also offer `.cpu(model_name) -> CpuDatasheet | None` for CPUs (`catalog_peak_resolver` does)."""


@dataclass(frozen=True)
class CpuDatasheet:
    """A CPU's catalogue entry as the benchmark needs it: the whole chip's dense peaks and how each follows."""

    entry_id: str
    cores: int
    peak_flops: Mapping[str, float]  # precision -> FLOP/s (ops/s for int8), all cores
    formulas: Mapping[str, str]  # precision -> "40 cores x 2.3 GHz (base) x 64 FLOP/cycle"


def cpu_peak(cpu: CpuInfo, precision: str, resolver: PeakResolver | None = None) -> tuple[float, str] | None:
    """The CPU peak to compare with, and where it came from: the catalogue's datasheet peak when the model name
    resolves to a CPU entry with that precision, scaled to the physical cores this process may use (a VM's share
    of a socket, or two sockets); else `cpu_peak_estimate`. None when neither is known."""
    lookup = getattr(resolver, "cpu", None)
    try:
        sheet = lookup(cpu.model_name) if lookup else None
    except FlopcalcError:  # a broken user catalogue: the estimate still serves
        sheet = None
    if sheet is None or precision not in sheet.peak_flops:
        estimate = cpu_peak_estimate(cpu, precision)
        if estimate and sheet is not None:
            return estimate[0], f"{estimate[1]}; catalogue entry {sheet.entry_id} has no {precision} peak"
        return estimate
    how = f"datasheet {sheet.entry_id}: {sheet.formulas[precision]}"
    if cpu.physical_cores == sheet.cores:
        return sheet.peak_flops[precision], how
    peak = sheet.peak_flops[precision] * cpu.physical_cores / sheet.cores
    return peak, f"{how}, x {cpu.physical_cores}/{sheet.cores} cores this process may use"


def datasheet_peak(device_name: str, precision: str, resolver: PeakResolver | None) -> tuple[float | None, str]:
    """The datasheet peak FLOP/s of `precision` for a GPU name, and a note saying where it came from.

    tf32 falls back to nothing (it is its own datasheet column); a name the catalogue does not know
    gives None and the note says so, since a benchmark is still useful without the ratio.
    """
    if resolver is None:
        return None, "no GPU catalogue available for the datasheet peak"
    try:
        peaks = resolver(device_name)
    except FlopcalcError as error:  # an unknown or ambiguous name, a broken user catalogue
        return None, f"no datasheet peak: {error.message}"
    value = peaks.get(precision)
    if not value:
        return None, f"the catalogue has no {precision} peak for {device_name}"
    return float(value), "datasheet (dense)"


def resolve_device(requested: str) -> str:
    """`auto|cuda|mps|cpu` -> the torch device type to use; errors for unknown or absent devices.

    auto picks CUDA (which is also ROCm: torch.version.hip set), then MPS, then CPU.
    """
    choice = (requested or "auto").strip().lower()
    if choice not in DEVICES:
        raise UsageError(f"unknown device {requested!r}", f"use one of {', '.join(DEVICES)}")
    import torch

    has_cuda = torch.cuda.is_available()
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if choice == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if choice == "cuda" and not has_cuda:
        raise UsageError("--device cuda: no CUDA/ROCm device is visible to torch", "use --device cpu or auto")
    if choice == "mps" and not has_mps:
        raise UsageError("--device mps: Apple MPS is not available here", "use --device cpu or auto")
    return choice


@dataclass(frozen=True)
class DeviceInfo:
    """The device a benchmark ran on, as it goes into results and calibration files."""

    device: str  # cpu | cuda | mps
    device_name: str
    torch_version: str
    cuda_version: str | None = None
    hip_version: str | None = None
    compute_capability: tuple[int, int] | None = None
    gcn_arch: str | None = None
    threads: int | None = None
    cpu: CpuInfo | None = None

    @property
    def is_rocm(self) -> bool:
        return self.hip_version is not None


def describe_device(device: str) -> DeviceInfo:
    """Collect name, versions and (for CPU) thread count and flags of a resolved device."""
    import torch

    if device == "cuda":
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return DeviceInfo(
            device="cuda",
            device_name=torch.cuda.get_device_name(index),
            torch_version=str(torch.__version__),
            cuda_version=torch.version.cuda,
            hip_version=getattr(torch.version, "hip", None),
            compute_capability=(props.major, props.minor),
            gcn_arch=getattr(props, "gcnArchName", None),
        )
    if device == "mps":
        return DeviceInfo(device="mps", device_name=apple_chip_name(), torch_version=str(torch.__version__))
    cpu = read_cpu_info()
    return DeviceInfo(
        device="cpu",
        device_name=cpu.model_name,
        torch_version=str(torch.__version__),
        threads=cpu.logical_cpus,
        cpu=cpu,
    )


def apple_chip_name() -> str:
    """The Apple chip ("Apple M2 Pro"), as macOS's sysctl names it; the MPS GPU is part of it."""
    try:
        name = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or "Apple GPU (MPS)"


def precision_skip_reason(info: DeviceInfo, precision: str) -> str | None:
    """Why `precision` cannot run fast on this device (None: it can). Hardware rules only; the
    benchmark also probes each precision once and skips it if torch refuses."""
    if info.device == "cpu":
        return cpu_precision_skip_reason(info.cpu, precision) if info.cpu else None
    if info.device == "mps":
        if precision in ("fp32", "fp16", "bf16"):
            return None
        return f"{precision} skipped: not available on Apple MPS"
    major, minor = info.compute_capability or (0, 0)
    if info.is_rocm:
        arch = info.gcn_arch or ""
        if precision == "tf32":
            return "tf32 skipped: ROCm has no TF32 mode in torch"
        if precision == "fp8" and not arch.startswith(("gfx94", "gfx95", "gfx12")):
            return f"fp8 skipped: {arch or 'this GPU'} has no fp8 matrix units (MI300 / gfx94x or newer)"
        return None
    if precision in ("tf32", "bf16") and major < 8:
        return f"{precision} skipped: needs compute capability 8.0 (Ampere) or newer, this GPU is {major}.{minor}"
    if precision == "fp8" and (major, minor) < (8, 9):
        return f"fp8 skipped: needs compute capability 8.9 (Ada/Hopper) or newer, this GPU is {major}.{minor}"
    if precision == "int8" and major < 8:
        return f"int8 skipped: torch._int_mm needs compute capability 8.0 or newer, this GPU is {major}.{minor}"
    return None


def parse_precisions(text: str | None) -> tuple[str, ...] | None:
    """`"bf16,fp16"` -> ("bf16", "fp16"); None/"" -> None (= all the device supports)."""
    if text is None or not text.strip() or text.strip().lower() in ("all", "auto"):
        return None
    chosen: list[str] = []
    for item in text.split(","):
        name = item.strip().lower()
        if name not in MATMUL_PRECISIONS:
            raise UsageError(
                f"unknown precision {item.strip()!r}", f"use a comma list of {', '.join(MATMUL_PRECISIONS)}"
            )
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def catalog_peak_resolver(extra_catalogs: Sequence[str | os.PathLike] = ()) -> PeakResolver:
    """Device name -> dense datasheet peaks (FLOP/s) as `flopcalc.device` resolves them from the GPU catalogue,
    shipped entries overlaid by $FLOPCALC_GPU_SPECS and `extra_catalogs`."""
    return _CatalogPeaks(lambda: load_catalog(tuple(extra_catalogs)))


class _CatalogPeaks:
    """The device room as a PeakResolver (GPU device name -> peaks), with `.cpu(model_name)` for CPU entries.
    Loads the catalogue on first use."""

    def __init__(self, load: Callable[[], Catalog]):
        self._load = load
        self._catalog: Catalog | None = None

    def _get(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self._load()
        return self._catalog

    def __call__(self, device_name: str) -> Mapping[str, float]:
        device = device_figures(device_name, catalog=self._get())
        return {precision: peak.value for precision, peak in device.peaks.items()}

    def cpu(self, model_name: str) -> CpuDatasheet | None:
        entry = self._get().match_cpu(model_name)
        if entry is None or entry.cores is None:
            return None
        device = device_figures(entry.id, catalog=self._get())
        return CpuDatasheet(
            entry_id=device.id,
            cores=entry.cores,
            peak_flops={precision: peak.value for precision, peak in device.peaks.items()},
            formulas={precision: entry.peak_formula(precision) or "" for precision in device.peaks},
        )
