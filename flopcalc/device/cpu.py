"""What the CPU this process runs on is: its model name, cores, clock and SIMD flags (/proc/cpuinfo, lscpu), and
the peak those facts give (cores x clock x FLOP per cycle) when no catalogue entry names the CPU. bench and the
meter both price a CPU from here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

# FLOP per cycle per physical core for fp32, by the widest SIMD + FMA the flags show
# (1 FMA = 2 FLOP). Assumes two vector FMA pipes, true for server Xeons since Skylake-SP
# Gold/Platinum and for recent desktop chips; one-pipe parts reach half of it.
#   AVX-512 + FMA: 2 pipes x 16 fp32 lanes x 2 = 64
#   AVX2 + FMA:    2 pipes x  8 fp32 lanes x 2 = 32
#   AVX (no FMA):  1 add + 1 mul pipe x 8 lanes = 16
#   SSE2:          1 add + 1 mul pipe x 4 lanes =  8
#   NEON/ASIMD:    2 pipes x  4 fp32 lanes x 2 = 16
FP32_FLOP_PER_CYCLE: tuple[tuple[frozenset[str], int, str], ...] = (
    (frozenset({"avx512f"}), 64, "AVX-512 FMA: 2 x 16 lanes x 2"),
    (frozenset({"avx2", "fma"}), 32, "AVX2 FMA: 2 x 8 lanes x 2"),
    (frozenset({"avx"}), 16, "AVX: 8-lane add + 8-lane mul"),
    (frozenset({"sse2"}), 8, "SSE2: 4-lane add + 4-lane mul"),
    (frozenset({"asimd"}), 16, "NEON: 2 x 4 lanes x 2"),
)

# bf16 matmul FLOP per cycle per core on CPUs that have a bf16 dot-product unit.
#   AMX-BF16 tile unit: 512 bf16 multiply-adds per cycle = 1024 FLOP (Intel's "1024 BF16 ops/cycle")
#   AVX512_BF16 (VDPBF16PS): 2 pipes x 16 lanes x 2 products x 2 = 128
BF16_FLOP_PER_CYCLE: tuple[tuple[frozenset[str], int, str], ...] = (
    (frozenset({"amx_bf16"}), 1024, "AMX-BF16 tiles: 512 multiply-adds"),
    (frozenset({"avx512_bf16"}), 128, "AVX512_BF16: 2 x 16 lanes x 2 pairs x 2"),
)


@dataclass(frozen=True)
class CpuInfo:
    """Facts about the CPU that the peak estimate needs."""

    model_name: str
    logical_cpus: int  # CPUs this process may run on
    threads_per_core: int
    mhz: float | None  # the clock the estimate uses
    mhz_source: str
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def physical_cores(self) -> int:
        return max(1, self.logical_cpus // max(1, self.threads_per_core))


def parse_cpuinfo(cpuinfo_text: str, lscpu_text: str = "", logical_cpus: int | None = None) -> CpuInfo:
    """Read model name, flags, clock and SMT width from /proc/cpuinfo (and `lscpu` output if given).

    The clock is lscpu's "CPU max MHz" when present (the boost clock, an upper bound), else the
    highest "cpu MHz" in /proc/cpuinfo.
    """
    model = ""
    flags: frozenset[str] = frozenset()
    mhz_values: list[float] = []
    siblings = cores = None
    processors = 0
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            processors += 1
        elif key in ("model name", "hardware") and not model:
            model = value
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.lower().split())
        elif key == "cpu mhz":
            try:
                mhz_values.append(float(value))
            except ValueError:
                pass
        elif key == "siblings" and siblings is None:
            siblings = _int_or_none(value)
        elif key == "cpu cores" and cores is None:
            cores = _int_or_none(value)
    threads_per_core = max(1, siblings // cores) if siblings and cores else 1
    lscpu = _lscpu_fields(lscpu_text)
    if not model:
        model = lscpu.get("model name", "")
    if "thread(s) per core" in lscpu:
        threads_per_core = _int_or_none(lscpu["thread(s) per core"]) or threads_per_core
    if not flags and "flags" in lscpu:
        flags = frozenset(lscpu["flags"].lower().split())
    max_mhz = _float_or_none(lscpu.get("cpu max mhz", ""))
    if max_mhz:
        mhz, source = max_mhz, "lscpu CPU max MHz"
    elif mhz_values:
        mhz, source = max(mhz_values), "/proc/cpuinfo cpu MHz"
    else:
        mhz, source = None, "unknown"
    count = logical_cpus or processors or os.cpu_count() or 1
    return CpuInfo(model or "unknown CPU", count, threads_per_core, mhz, source, flags)


def read_cpu_info() -> CpuInfo:
    """CpuInfo of this machine (Linux: /proc/cpuinfo and lscpu; elsewhere what Python knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            cpuinfo = handle.read()
    except OSError:
        cpuinfo = ""
    lscpu = ""
    if shutil.which("lscpu"):
        try:
            lscpu = subprocess.run(
                ["lscpu"], capture_output=True, text=True, timeout=5, env={**os.environ, "LC_ALL": "C"}
            ).stdout
        except (OSError, subprocess.SubprocessError):
            lscpu = ""
    return parse_cpuinfo(cpuinfo, lscpu, logical_cpus=available_cpus())


def available_cpus() -> int:
    """CPUs this process may use (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def flop_per_cycle(flags: frozenset[str], precision: str) -> tuple[int, str] | None:
    """FLOP per cycle per core for `precision` from the CPU flags, with the table row used."""
    table = {"fp32": FP32_FLOP_PER_CYCLE, "bf16": BF16_FLOP_PER_CYCLE}.get(precision, ())
    for needed, value, why in table:
        if needed <= flags:
            return value, why
    return None


def cpu_peak_estimate(cpu: CpuInfo, precision: str) -> tuple[float, str] | None:
    """Estimated peak FLOP/s = physical cores x clock x FLOP/cycle, and how it was made; None if unknown."""
    per_cycle = flop_per_cycle(cpu.flags, precision)
    if per_cycle is None or not cpu.mhz:
        return None
    value, why = per_cycle
    peak = cpu.physical_cores * cpu.mhz * 1e6 * value
    how = f"estimate: {cpu.physical_cores} cores x {cpu.mhz:.0f} MHz ({cpu.mhz_source}) x {value} FLOP/cycle ({why})"
    return peak, how


def _lscpu_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _int_or_none(text: str) -> int | None:
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None
