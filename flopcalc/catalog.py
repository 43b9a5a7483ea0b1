"""The GPU catalogue: load `gpu_specs/*.yaml`, validate it, merge user catalogues, resolve names.

Shipped files come with the package (`flopcalc/gpu_specs`). User catalogues merge over them, in this
order: the `FLOPCALC_GPU_SPECS` environment variable (a YAML file or a folder of them), then each
`--catalog FILE`. A user entry whose id already exists replaces that entry whole.

Peaks are stored in TFLOPS (int8 in TOPS) and DENSE; the 2:4-sparsity figures live apart in
`sparse_peak_tflops` and are never used for conversions. Entries are of a `kind` (gpu, tpu, cpu); a CPU's
peaks must equal cores x clock x FLOP per cycle per core, and its bandwidth channels x MT/s x 8 bytes, which
the loader checks in exact decimal arithmetic. The schema is in docs/catalogue.md.
No torch here: `flopcalc gpus` and `flopcalc convert` must start fast.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .compute import DEFAULT_UTILIZATION, Throughput
from .errors import CatalogError, UsageError
from .files import read_yaml
from .units import PRECISIONS, normalize_precision

GPU_SPECS_ENV_VAR = "FLOPCALC_GPU_SPECS"

# What an entry is; a file may set the default for its entries (`kind: tpu` in google.yaml), else gpu.
KINDS: tuple[str, ...] = ("gpu", "tpu", "cpu")
DEFAULT_KIND = "gpu"

# Which clock a CPU peak uses (docs/catalogue.md, "CPU conventions").
CPU_CLOCKS: tuple[str, ...] = ("base", "all_core_turbo", "max", "fixed", "avx_base", "avx512_base", "avx512_all_core")

# Keys that describe a CPU's cores, alone (one kind of core) or per group in `core_groups` (hybrid chips).
_CORE_KEYS = ("cores", "clock_ghz", "clock", "flop_per_cycle")
_CPU_ONLY_KEYS = (*_CORE_KEYS, "core_groups", "memory_channels", "memory_mt_s")
_ENTRY_KEYS = {
    "id", "name", "vendor", "kind", "aliases", "year", "form_factor", "peak_tflops", "sparse_peak_tflops",
    "memory_gb", "memory_bandwidth_gbps", "tdp_w", "sources", "notes", "intra_node_link", *_CPU_ONLY_KEYS,
}
_LINK_KEYS = {"name", "gbps", "bidirectional", "source"}
_REQUIRED_KEYS = ("id", "name", "vendor", "peak_tflops")
_FILE_KEYS = {"vendor", "kind", "gpus"}
_BYTES_PER_CHANNEL_TRANSFER = 8  # one 64-bit memory channel moves 8 bytes per transfer

# Words in CPU model names that say nothing about which chip it is ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz").
_CPU_NOISE_WORDS = frozenset({"intel", "amd", "apple", "aws", "amazon", "xeon", "epyc", "platinum", "gold", "silver",
                              "bronze", "cpu", "processor", "r", "tm"})

# Words that name a vendor or product line rather than the chip: dropped when matching names.
_VENDOR_WORDS = ("nvidia", "tesla", "geforce", "quadro", "amd", "instinct", "radeon", "google", "cloud",
                 "intel", "habana", "apple")

# Sparse peaks should be about 2x dense; allow rounding in datasheets.
_SPARSE_RATIO_TOLERANCE = 0.02


@dataclass(frozen=True)
class CoreGroup:
    """Alike cores of a CPU and what each does per cycle: their peak is cores x clock_ghz x flop_per_cycle."""

    cores: int
    clock_ghz: float
    clock: str  # which clock: one of CPU_CLOCKS
    flop_per_cycle: Mapping[str, float]  # per core and cycle, by precision (int8: ops)
    how: Mapping[str, str]  # by precision: how the figure follows from the vector/matrix units
    name: str | None = None  # "performance", "efficiency" on hybrid chips

    def peak_tflops(self, precision: str) -> Decimal:
        """cores x clock (GHz) x FLOP/cycle / 1000, exact in decimal; 0 without that precision."""
        if precision not in self.flop_per_cycle:
            return Decimal(0)
        return _decimal(self.cores) * _decimal(self.clock_ghz) * _decimal(self.flop_per_cycle[precision]) / 1000

    def formula(self, precision: str) -> str:
        """`40 cores x 2.3 GHz (base) x 64 FLOP/cycle`."""
        unit = "ops" if precision == "int8" else "FLOP"
        who = f"{self.name} cores" if self.name else "cores"
        return (f"{self.cores} {who} x {_plain(self.clock_ghz)} GHz ({self.clock}) x "
                f"{_plain(self.flop_per_cycle[precision])} {unit}/cycle")


@dataclass(frozen=True)
class Link:
    """How one device reaches the others in its node (NVLink, ICI): GB/s as its datasheet states it, which is
    both directions added (`bidirectional`) or one direction, and where the figure comes from."""

    name: str
    gbps: float
    bidirectional: bool
    source: str | None = None

    @property
    def per_direction_gbps(self) -> float:
        """What one direction carries: what a ring collective's bus bandwidth is bounded by."""
        return self.gbps / 2 if self.bidirectional else self.gbps

    def describe(self) -> str:
        both = "both directions together" if self.bidirectional else "per direction"
        return f"{self.name}: {_plain(self.gbps)} GB/s {both} = {_plain(self.per_direction_gbps)} GB/s per direction"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "gbps": self.gbps, "bidirectional": self.bidirectional,
                "per_direction_gbps": self.per_direction_gbps, "source": self.source}


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator or CPU: dense peaks per precision (TFLOPS; int8 in TOPS) and what else the datasheet says."""

    id: str
    name: str
    vendor: str
    peak_tflops: Mapping[str, float]
    aliases: tuple[str, ...] = ()
    year: int | None = None
    form_factor: str | None = None
    sparse_peak_tflops: Mapping[str, float] = field(default_factory=dict)
    memory_gb: float | None = None
    memory_bandwidth_gbps: float | None = None
    tdp_w: float | None = None
    sources: tuple[str, ...] = ()
    notes: str | None = None
    origin: str = ""  # the file it came from
    kind: str = DEFAULT_KIND  # gpu, tpu or cpu
    core_groups: tuple[CoreGroup, ...] = ()  # kind cpu only
    memory_channels: int | None = None  # kind cpu only: 64-bit channels
    memory_mt_s: float | None = None  # kind cpu only: transfers per second per channel, in millions
    intra_node_link: Link | None = None  # NVLink / ICI to the other devices of a node

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(p for p in PRECISIONS if p in self.peak_tflops)

    @property
    def cores(self) -> int | None:
        """All cores of a CPU entry (None for other kinds)."""
        return sum(group.cores for group in self.core_groups) if self.core_groups else None

    def peak_formula(self, precision: str) -> str | None:
        """How a CPU peak follows: `40 cores x 2.3 GHz (base) x 64 FLOP/cycle` (groups joined by +); None otherwise."""
        parts = [group.formula(precision) for group in self.core_groups if precision in group.flop_per_cycle]
        return " + ".join(parts) or None

    def bandwidth_formula(self) -> str | None:
        """`8 channels x 3200 MT/s x 8 B` for a CPU entry that gives its channels; None otherwise."""
        if self.memory_channels is None or self.memory_mt_s is None:
            return None
        return f"{self.memory_channels} channels x {_plain(self.memory_mt_s)} MT/s x {_BYTES_PER_CHANNEL_TRANSFER} B"

    def peak_flops(self, precision: str) -> float:
        """Dense peak in FLOP/s (ops/s for int8) for `precision`; UsageError naming the ones it has."""
        canonical = normalize_precision(precision)
        if canonical not in self.peak_tflops:
            raise UsageError(
                f"{self.id} has no {canonical} peak in the catalogue",
                f"it has: {', '.join(self.precisions)}",
            )
        return float(self.peak_tflops[canonical]) * 1e12

    def default_precision(self) -> str:
        """The fastest dense 16-bit tensor precision (bf16 on a tie), else fp32, else the fastest it has."""
        sixteen = [p for p in ("bf16", "fp16") if p in self.peak_tflops]
        if sixteen:
            return max(sixteen, key=lambda p: (self.peak_tflops[p], p == "bf16"))
        if "fp32" in self.peak_tflops:
            return "fp32"
        return max(self.precisions, key=lambda p: self.peak_tflops[p])

    def datasheet_throughput(self, precision: str | None = None, utilization: float = DEFAULT_UTILIZATION) -> Throughput:
        """Per-GPU throughput from the datasheet: dense peak of `precision` (default: `default_precision()`) x utilisation."""
        chosen = normalize_precision(precision) if precision else self.default_precision()
        return Throughput(peak_flops=self.peak_flops(chosen), utilization=utilization, gpu=self.id, precision=chosen,
                          origin=f"datasheet dense {chosen}")

    def to_dict(self) -> dict[str, Any]:
        """The `gpus show --format json` contract (peaks in FLOP/s, dense and sparse apart)."""
        return {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "year": self.year,
            "form_factor": self.form_factor,
            "peak_flops": {p: float(self.peak_tflops[p]) * 1e12 for p in self.precisions},
            "sparse_peak_flops": {
                p: float(self.sparse_peak_tflops[p]) * 1e12 for p in PRECISIONS if p in self.sparse_peak_tflops
            },
            "default_precision": self.default_precision(),
            "memory_gb": self.memory_gb,
            "memory_bandwidth_gbps": self.memory_bandwidth_gbps,
            "tdp_w": self.tdp_w,
            "sources": list(self.sources),
            "notes": self.notes,
            "catalog_file": self.origin,
            "cores": self.cores,
            "core_groups": [
                {"name": group.name, "cores": group.cores, "clock_ghz": group.clock_ghz, "clock": group.clock,
                 "flop_per_cycle": {p: group.flop_per_cycle[p] for p in PRECISIONS if p in group.flop_per_cycle},
                 "flop_per_cycle_how": {p: group.how[p] for p in PRECISIONS if p in group.how}}
                for group in self.core_groups
            ],
            "memory_channels": self.memory_channels,
            "memory_mt_s": self.memory_mt_s,
            "intra_node_link": None if self.intra_node_link is None else self.intra_node_link.to_dict(),
        }


def normalize_kind(text: str) -> str:
    """`GPU`, ` cpu ` -> `gpu`, `cpu`; UsageError naming the kinds otherwise."""
    key = str(text).strip().lower()
    if key not in KINDS:
        raise UsageError(f"unknown kind {text!r}", f"use one of: {', '.join(KINDS)}")
    return key


def _normalize_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _cpu_model_key(text: str) -> str:
    """What names one CPU in a model-name string: "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz" -> `8380`,
    "AMD EPYC 7763 64-Core Processor" -> `7763`, "Intel(R) Xeon(R) CPU E5-2699 v3 @ 2.30GHz" -> `e52699v3`."""
    text = re.sub(r"@\s*[\d.]+\s*[gm]hz", " ", text.lower())
    text = re.sub(r"\b\d+-cores?\b", " ", text)
    return "".join(word for word in re.split(r"[^a-z0-9]+", text) if word and word not in _CPU_NOISE_WORDS)


def _decimal(value: float | int) -> Decimal:
    """The decimal a YAML number was written as (2.3 -> Decimal('2.3'), not the binary float's expansion)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))


def _plain(value: float | int) -> str:
    """2.3 -> `2.3`, 64.0 -> `64`: a figure as the YAML gave it."""
    return format(_decimal(value).normalize(), "f")


def _strip_vendor_words(text: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
    kept = [w for w in words if w not in _VENDOR_WORDS]
    return "".join(kept or words)


class Catalog:
    """All known accelerators by id, with forgiving name resolution."""

    def __init__(self, specs: Iterable[GpuSpec]):
        self._by_id: dict[str, GpuSpec] = {}
        self._names: dict[str, str] = {}  # normalized id/alias -> id
        self._cpu_keys: dict[str, set[str]] = {}  # CPU model key of an id/alias -> ids of kind cpu
        for spec in specs:
            self._by_id[spec.id] = spec
            for label in (spec.id, *spec.aliases):
                self._names[_normalize_name(label)] = spec.id
                if spec.kind == "cpu" and _cpu_model_key(label):
                    self._cpu_keys.setdefault(_cpu_model_key(label), set()).add(spec.id)

    def __iter__(self) -> Iterator[GpuSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, gpu_id: object) -> bool:
        return gpu_id in self._by_id

    def ids(self) -> list[str]:
        return list(self._by_id)

    def vendors(self) -> list[str]:
        return sorted({spec.vendor for spec in self})

    def by_vendor(self, vendor: str | None) -> list[GpuSpec]:
        """Entries of one vendor (case-insensitive, prefix allowed: `nv`), or all; CatalogError if none."""
        if not vendor:
            return list(self)
        wanted = vendor.strip().lower()
        chosen = [spec for spec in self if spec.vendor.lower().startswith(wanted)]
        if not chosen:
            raise CatalogError(f"no GPUs from vendor {vendor!r}", f"vendors: {', '.join(self.vendors())}")
        return chosen

    def select(self, vendor: str | None = None, kind: str | None = None) -> list[GpuSpec]:
        """Entries of one vendor (as `by_vendor`) and of one kind (gpu, tpu, cpu), or all; an error if none."""
        chosen = self.by_vendor(vendor)
        if not kind:
            return chosen
        wanted = normalize_kind(kind)
        chosen = [spec for spec in chosen if spec.kind == wanted]
        if not chosen:
            raise CatalogError(f"no entries of kind {wanted}" + (f" from vendor {vendor!r}" if vendor else ""),
                               f"kinds here: {', '.join(sorted({spec.kind for spec in self.by_vendor(vendor)}))}")
        return chosen

    def match_cpu(self, model_name: str) -> GpuSpec | None:
        """The kind-cpu entry a CPU model name (/proc/cpuinfo, lscpu) names, or None.

        Brand words, (R)/(TM), "@ 2.30GHz" and "64-Core" are dropped; what is left must equal what is left of one
        entry's id or alias (so "Platinum 8380HL" is not the 8380, nor "Apple M2 Pro" the M2).
        """
        ids = self._cpu_keys.get(_cpu_model_key(str(model_name)), set())
        return self._by_id[next(iter(ids))] if len(ids) == 1 else None

    def resolve(self, name: str) -> GpuSpec:
        """An id, alias or `torch.cuda.get_device_name()` string -> its entry.

        Case, spaces, hyphens and vendor words (NVIDIA, Tesla, AMD Instinct, ...) do not matter. A name that
        matches no entry exactly but is contained in exactly one entry's names resolves to it; in several,
        CatalogError lists them; in none, CatalogError suggests the closest ids.
        """
        text = str(name).strip()
        if not text:
            raise CatalogError("empty GPU name", "run `flopcalc gpus list` to see the ids")
        for key in (_normalize_name(text), _strip_vendor_words(text)):
            if key in self._names:
                return self._by_id[self._names[key]]
        cpu = self.match_cpu(text)
        if cpu is not None:
            return cpu
        key = _strip_vendor_words(text)
        hits = sorted({gpu_id for label, gpu_id in self._names.items() if key and key in label})
        if len(hits) == 1:
            return self._by_id[hits[0]]
        if hits:
            raise CatalogError(
                f"GPU name {name!r} is ambiguous: it matches {', '.join(hits)}", "pass one of these ids to --gpu"
            )
        close = difflib.get_close_matches(key, list(self._names), n=8, cutoff=0.5)
        suggestions = list(dict.fromkeys(self._names[label] for label in close))[:4]
        hint = (
            f"did you mean {', '.join(suggestions)}? (`flopcalc gpus list` shows all)"
            if suggestions
            else "run `flopcalc gpus list` to see the ids, or add the GPU with --catalog FILE"
        )
        raise CatalogError(f"unknown GPU {name!r}", hint)


# ---------------------------------------------------------------- loading and validation


def shipped_catalog_dir() -> Path:
    """The folder of YAML files that ships inside the package."""
    return Path(str(resources.files("flopcalc") / "gpu_specs"))


def _yaml_files(path: Path, given_by: str = "") -> list[Path]:
    by = f" (from {given_by})" if given_by else ""
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise CatalogError(f"GPU catalogue folder {path}{by} holds no .yaml files")
        return files
    if path.is_file():
        return [path]
    raise CatalogError(f"GPU catalogue {path}{by} does not exist", "pass an existing YAML file or folder")


def _read_yaml(path: Path) -> Any:
    return read_yaml(path, CatalogError, "GPU catalogue")


def _number(value: Any, where: str, what: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CatalogError(f"{where}: {what} must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise CatalogError(f"{where}: {what} must be finite, got {value!r}")
    if positive and value <= 0:
        raise CatalogError(f"{where}: {what} must be > 0, got {value!r}")
    return float(value)


def _peaks(raw: Any, where: str, what: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: {what} must be a mapping of precision to TFLOPS, got {raw!r}")
    peaks: dict[str, float] = {}
    for key, value in raw.items():
        if key not in PRECISIONS:
            raise CatalogError(f"{where}: unknown precision {key!r} in {what}", f"use: {', '.join(PRECISIONS)}")
        if value is None:
            raise CatalogError(f"{where}: {what}.{key} is missing a value", "give a number or drop the key")
        peaks[key] = _number(value, where, f"{what}.{key}")
    return peaks


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        raise CatalogError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return str(value).strip()


def _text_list(value: Any, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise CatalogError(f"{where}: {what} must be a list of strings, got {value!r}")
    return tuple(_text(item, where, what) for item in value)


def _kind(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in KINDS:
        raise CatalogError(f"{where}: kind must be one of {', '.join(KINDS)}, got {value!r}")
    return value.strip().lower()


def _whole(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{where}: {what} must be a whole number > 0, got {value!r}")
    return value


def _core_group(raw: Mapping, where: str, what: str, name: str | None = None) -> CoreGroup:
    """`cores`, `clock_ghz`, `clock` and `flop_per_cycle: {precision: {value, how}}` of one kind of core."""
    missing = [key for key in _CORE_KEYS if raw.get(key) in (None, "", {})]
    if missing:
        raise CatalogError(f"{where}: {what} is missing {', '.join(missing)}",
                           "a CPU's peaks follow from cores x clock_ghz x flop_per_cycle; give all four")
    clock = raw["clock"]
    if clock not in CPU_CLOCKS:
        raise CatalogError(f"{where}: {what} clock must be one of {', '.join(CPU_CLOCKS)}, got {clock!r}",
                           "say which clock clock_ghz is")
    per_cycle = raw["flop_per_cycle"]
    if not isinstance(per_cycle, Mapping):
        raise CatalogError(f"{where}: {what} flop_per_cycle must map precision to {{value, how}}, got {per_cycle!r}")
    values: dict[str, float] = {}
    how: dict[str, str] = {}
    for precision, item in per_cycle.items():
        label = f"{what} flop_per_cycle.{precision}"
        if precision not in PRECISIONS:
            raise CatalogError(f"{where}: unknown precision {precision!r} in {what} flop_per_cycle",
                               f"use: {', '.join(PRECISIONS)}")
        if not isinstance(item, Mapping) or set(map(str, item)) != {"value", "how"}:
            raise CatalogError(f"{where}: {label} must be {{value: N, how: TEXT}}, got {item!r}",
                               "how = how N follows from the vector or matrix units")
        values[precision] = _number(item["value"], where, f"{label}.value")
        how[precision] = " ".join(_text(item["how"], where, f"{label}.how").split())
    return CoreGroup(cores=_whole(raw["cores"], where, f"{what} cores"),
                     clock_ghz=_number(raw["clock_ghz"], where, f"{what} clock_ghz"), clock=clock,
                     flop_per_cycle=values, how=how, name=name)


def _core_groups(values: Mapping, where: str) -> tuple[CoreGroup, ...]:
    """A kind-cpu entry's cores: the four core keys on the entry, or a `core_groups` list of them (hybrid chips)."""
    flat = [key for key in _CORE_KEYS if key in values]
    groups = values.get("core_groups")
    if groups is not None and flat:
        raise CatalogError(f"{where}: give either {', '.join(flat)} or core_groups, not both")
    if groups is None:
        if not flat:
            raise CatalogError(f"{where}: a kind: cpu entry needs cores, clock_ghz, clock and flop_per_cycle "
                               "(or core_groups)", "its peaks are checked against cores x clock x FLOP per cycle")
        return (_core_group(values, where, "the entry"),)
    if not isinstance(groups, list) or not groups:
        raise CatalogError(f"{where}: core_groups must be a non-empty list of {{name, cores, clock_ghz, clock, "
                           f"flop_per_cycle}}, got {groups!r}")
    parsed = []
    for number, group in enumerate(groups, 1):
        what = f"core_groups #{number}"
        if not isinstance(group, Mapping):
            raise CatalogError(f"{where}: {what} must be a mapping, got {group!r}")
        unknown = sorted(set(map(str, group)) - {"name", *_CORE_KEYS})
        if unknown:
            raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)} in {what}",
                               f"allowed: name, {', '.join(_CORE_KEYS)}")
        name = _text(group["name"], where, f"{what} name") if group.get("name") else None
        parsed.append(_core_group(group, where, what, name))
    return tuple(parsed)


def _check_cpu_peaks(dense: Mapping[str, float], groups: Sequence[CoreGroup], where: str) -> None:
    """Every peak of a CPU equals the sum over its core groups of cores x clock_ghz x flop_per_cycle / 1000."""
    derived = {p for group in groups for p in group.flop_per_cycle}
    for precision in PRECISIONS:
        if precision not in derived and precision not in dense:
            continue
        expected = sum((group.peak_tflops(precision) for group in groups), Decimal(0))
        formula = " + ".join(f"{group.cores} x {_plain(group.clock_ghz)} x {_plain(group.flop_per_cycle[precision])}"
                             for group in groups if precision in group.flop_per_cycle)
        if precision not in derived:
            raise CatalogError(f"{where}: peak_tflops.{precision} has no flop_per_cycle.{precision}",
                               "a CPU peak must follow from cores x clock x FLOP per cycle; give how")
        if precision not in dense:
            raise CatalogError(f"{where}: flop_per_cycle.{precision} has no peak_tflops.{precision}",
                               f"add peak_tflops.{precision}: {expected.normalize():f} (= ({formula}) / 1000)")
        if _decimal(dense[precision]) != expected:
            raise CatalogError(
                f"{where}: peak_tflops.{precision} {_plain(dense[precision])} is not cores x clock_ghz x "
                f"flop_per_cycle / 1000 = ({formula}) / 1000 = {expected.normalize():f}",
                "fix the peak or the per-core figures",
            )


def _cpu_memory(values: Mapping, bandwidth: float | None, where: str) -> tuple[int | None, float | None, float | None]:
    """memory_channels and memory_mt_s, and the bandwidth they give (channels x MT/s x 8 B), checked or filled in."""
    given = [key for key in ("memory_channels", "memory_mt_s") if values.get(key) is not None]
    if not given:
        return None, None, bandwidth
    if len(given) == 1:
        raise CatalogError(f"{where}: {given[0]} needs memory_channels and memory_mt_s together")
    channels = _whole(values["memory_channels"], where, "memory_channels")
    mt_s = _number(values["memory_mt_s"], where, "memory_mt_s")
    expected = _decimal(channels) * _decimal(mt_s) * _BYTES_PER_CHANNEL_TRANSFER / 1000
    if bandwidth is not None and _decimal(bandwidth) != expected:
        raise CatalogError(
            f"{where}: memory_bandwidth_gbps {_plain(bandwidth)} is not memory_channels x memory_mt_s x "
            f"{_BYTES_PER_CHANNEL_TRANSFER} B = {channels} x {_plain(mt_s)} x {_BYTES_PER_CHANNEL_TRANSFER} / 1000 = "
            f"{expected.normalize():f} GB/s",
            "fix the bandwidth or the channels / transfer rate",
        )
    return channels, mt_s, float(expected)


def _cpu_fields(values: Mapping, kind: str, dense: Mapping[str, float], bandwidth: float | None,
                where: str) -> dict[str, Any]:
    """The kind-cpu keys of an entry, checked against its peaks and bandwidth; none on other kinds."""
    if kind != "cpu":
        cpu_keys = [key for key in _CPU_ONLY_KEYS if key in values]
        if cpu_keys:
            raise CatalogError(f"{where}: {', '.join(cpu_keys)} apply only to kind: cpu entries, this one is {kind}",
                               "add kind: cpu or drop them")
        return {"memory_bandwidth_gbps": bandwidth}
    groups = _core_groups(values, where)
    _check_cpu_peaks(dense, groups, where)
    channels, mt_s, bandwidth = _cpu_memory(values, bandwidth, where)
    return {"core_groups": groups, "memory_channels": channels, "memory_mt_s": mt_s, "memory_bandwidth_gbps": bandwidth}


def _link(raw: Any, where: str) -> Link | None:
    """`intra_node_link: {name: NVLink 4, gbps: 900, bidirectional: true, source: URL}`, or None without one."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: intra_node_link must be a mapping of name, gbps, bidirectional, source")
    unknown = sorted(set(map(str, raw)) - _LINK_KEYS)
    missing = [key for key in ("name", "gbps", "bidirectional") if raw.get(key) is None]
    if unknown or missing:
        problem = f"unknown key(s) {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        raise CatalogError(f"{where}: intra_node_link: {problem}", f"keys: {', '.join(sorted(_LINK_KEYS))}")
    if not isinstance(raw["bidirectional"], bool):
        raise CatalogError(f"{where}: intra_node_link.bidirectional must be true (the datasheet adds both "
                           f"directions) or false (per direction), got {raw['bidirectional']!r}")
    return Link(_text(raw["name"], where, "intra_node_link.name"), _number(raw["gbps"], where, "intra_node_link.gbps"),
                raw["bidirectional"], _text(raw["source"], where, "intra_node_link.source") if raw.get("source") else None)


def _parse_entry(raw: Any, index: int, path: Path, default_vendor: str | None,
                 default_kind: str = DEFAULT_KIND) -> GpuSpec:
    label = raw.get("id") if isinstance(raw, Mapping) else None
    where = f"{path}: entry #{index + 1}" + (f" ({label!r})" if label else "")
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: must be a mapping with id, name, peak_tflops, ..., got {raw!r}")
    unknown = sorted(set(map(str, raw)) - _ENTRY_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(sorted(_ENTRY_KEYS))}")
    values = dict(raw)
    if default_vendor and "vendor" not in values:
        values["vendor"] = default_vendor
    missing = [key for key in _REQUIRED_KEYS if values.get(key) in (None, "", {})]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}", "every entry needs id, name, vendor and peak_tflops")
    gpu_id = _text(values["id"], where, "id")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", gpu_id):
        raise CatalogError(f"{where}: id {gpu_id!r} may hold only letters, digits, '-', '_' and '.'")
    dense = _peaks(values["peak_tflops"], where, "peak_tflops")
    sparse = _peaks(values.get("sparse_peak_tflops") or {}, where, "sparse_peak_tflops")
    for precision, sparse_value in sparse.items():
        dense_value = dense.get(precision)
        if dense_value is None:
            raise CatalogError(f"{where}: sparse_peak_tflops.{precision} has no dense peak_tflops.{precision}",
                               "store the dense figure (half the 2:4-sparse one) in peak_tflops")
        if abs(sparse_value / dense_value - 2.0) > 2.0 * _SPARSE_RATIO_TOLERANCE:
            raise CatalogError(
                f"{where}: sparse {precision} peak {sparse_value:g} is not 2x the dense {dense_value:g}",
                "2:4 sparsity doubles the dense peak; check which figure the datasheet printed",
            )
    year = values.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int) or not 1990 <= year <= 2100):
        raise CatalogError(f"{where}: year must be a whole year like 2022, got {year!r}")
    optional = {
        key: (_number(values[key], where, key) if values.get(key) is not None else None)
        for key in ("memory_gb", "memory_bandwidth_gbps", "tdp_w")
    }
    aliases = tuple(
        alias for alias in dict.fromkeys(_text_list(values.get("aliases"), where, "aliases"))
        if _normalize_name(alias) != _normalize_name(gpu_id)
    )
    kind = _kind(values.get("kind", default_kind), where)
    cpu = _cpu_fields(values, kind, dense, optional.pop("memory_bandwidth_gbps"), where)
    notes = values.get("notes")
    return GpuSpec(
        id=gpu_id,
        name=_text(values["name"], where, "name"),
        vendor=_text(values["vendor"], where, "vendor"),
        kind=kind,
        peak_tflops=dense,
        aliases=aliases,
        year=year,
        form_factor=_text(values["form_factor"], where, "form_factor") if values.get("form_factor") else None,
        sparse_peak_tflops=sparse,
        sources=_text_list(values.get("sources"), where, "sources"),
        notes=" ".join(_text(notes, where, "notes").split()) if notes else None,
        origin=str(path),
        intra_node_link=_link(values.get("intra_node_link"), where),
        **optional,
        **cpu,
    )


def load_catalog_file(path: str | os.PathLike) -> list[GpuSpec]:
    """Every entry of one YAML file, validated; CatalogError naming the file and entry otherwise."""
    path = Path(path)
    data = _read_yaml(path)
    if isinstance(data, list):
        data = {"gpus": data}
    if not isinstance(data, Mapping) or "gpus" not in data:
        raise CatalogError(f"{path}: a GPU catalogue is a mapping with a 'gpus:' list", "see docs/catalogue.md")
    unknown = sorted(set(map(str, data)) - _FILE_KEYS)
    if unknown:
        raise CatalogError(f"{path}: unknown top-level key(s) {', '.join(unknown)}", "allowed: vendor, kind, gpus")
    entries = data["gpus"]
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: 'gpus:' must be a non-empty list of entries")
    default_vendor = data.get("vendor")
    default_kind = _kind(data["kind"], f"{path}: file-level") if "kind" in data else DEFAULT_KIND
    specs = [_parse_entry(raw, index, path, default_vendor, default_kind) for index, raw in enumerate(entries)]
    _check_unique(specs)
    return specs


def _check_unique(specs: Sequence[GpuSpec]) -> None:
    """No two entries of one layer share an id, and no name (id or alias) points at two entries."""
    owner: dict[str, GpuSpec] = {}
    for spec in specs:
        for label in (spec.id, *spec.aliases):
            key = _normalize_name(label)
            other = owner.get(key)
            if other is not None and other is not spec:
                what = "id" if label == spec.id else "alias"
                raise CatalogError(
                    f"{spec.origin}: entry {spec.id!r}: duplicate {what} {label!r}, already used by "
                    f"{other.id!r} in {other.origin}",
                    "ids and aliases must be unique across the catalogue",
                )
            owner[key] = spec


def _load_layer(paths: Iterable[Path]) -> list[GpuSpec]:
    specs = [spec for path in paths for spec in load_catalog_file(path)]
    _check_unique(specs)
    return specs


def load_catalog(
    extra: Sequence[str | os.PathLike] = (),
    *,
    environ: Mapping[str, str] | None = None,
    include_shipped: bool = True,
) -> Catalog:
    """The shipped catalogue, overlaid by $FLOPCALC_GPU_SPECS (file or folder), then by each of `extra`.

    A later entry with an existing id replaces it; a new id is added. Any clash of names between
    different entries, and any invalid entry, raises CatalogError naming file and entry.
    """
    env = os.environ if environ is None else environ
    merged: dict[str, GpuSpec] = {}
    layers: list[list[Path]] = []
    if include_shipped:
        layers.append(_yaml_files(shipped_catalog_dir()))
    if env.get(GPU_SPECS_ENV_VAR):
        layers.append(_yaml_files(Path(env[GPU_SPECS_ENV_VAR]).expanduser(), f"${GPU_SPECS_ENV_VAR}"))
    for path in extra:
        layers.append(_yaml_files(Path(path).expanduser(), "--catalog"))
    for paths in layers:
        for spec in _load_layer(paths):
            merged[_normalize_name(spec.id)] = spec
    _check_unique(list(merged.values()))
    return Catalog(merged.values())
