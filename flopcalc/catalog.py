"""The GPU catalogue: load `gpu_specs/*.yaml`, validate it, merge user catalogues, resolve names.

Shipped files come with the package (`flopcalc/gpu_specs`). User catalogues merge over them, in this
order: the `FLOPCALC_GPU_SPECS` environment variable (a YAML file or a folder of them), then each
`--catalog FILE`. A user entry whose id already exists replaces that entry whole.

Peaks are stored in TFLOPS (int8 in TOPS) and DENSE; the 2:4-sparsity figures live apart in
`sparse_peak_tflops` and are never used for conversions. The schema is in docs/catalogue.md.
No torch here: `flopcalc gpus` and `flopcalc convert` must start fast.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .compute import DEFAULT_UTILIZATION, Throughput
from .errors import CatalogError, UsageError
from .files import read_yaml
from .units import PRECISIONS, normalize_precision

GPU_SPECS_ENV_VAR = "FLOPCALC_GPU_SPECS"

_ENTRY_KEYS = {
    "id", "name", "vendor", "aliases", "year", "form_factor", "peak_tflops", "sparse_peak_tflops",
    "memory_gb", "memory_bandwidth_gbps", "tdp_w", "sources", "notes",
}
_REQUIRED_KEYS = ("id", "name", "vendor", "peak_tflops")
_FILE_KEYS = {"vendor", "gpus"}

# Words that name a vendor or product line rather than the chip: dropped when matching names.
_VENDOR_WORDS = ("nvidia", "tesla", "geforce", "quadro", "amd", "instinct", "radeon", "google", "cloud",
                 "intel", "habana", "apple")

# Sparse peaks should be about 2x dense; allow rounding in datasheets.
_SPARSE_RATIO_TOLERANCE = 0.02


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator: dense peaks per precision (TFLOPS; int8 in TOPS) and what else the datasheet says."""

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

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(p for p in PRECISIONS if p in self.peak_tflops)

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
        }


def _normalize_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _strip_vendor_words(text: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
    kept = [w for w in words if w not in _VENDOR_WORDS]
    return "".join(kept or words)


class Catalog:
    """All known accelerators by id, with forgiving name resolution."""

    def __init__(self, specs: Iterable[GpuSpec]):
        self._by_id: dict[str, GpuSpec] = {}
        self._names: dict[str, str] = {}  # normalized id/alias -> id
        for spec in specs:
            self._by_id[spec.id] = spec
            for label in (spec.id, *spec.aliases):
                self._names[_normalize_name(label)] = spec.id

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


def _parse_entry(raw: Any, index: int, path: Path, default_vendor: str | None) -> GpuSpec:
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
    notes = values.get("notes")
    return GpuSpec(
        id=gpu_id,
        name=_text(values["name"], where, "name"),
        vendor=_text(values["vendor"], where, "vendor"),
        peak_tflops=dense,
        aliases=aliases,
        year=year,
        form_factor=_text(values["form_factor"], where, "form_factor") if values.get("form_factor") else None,
        sparse_peak_tflops=sparse,
        sources=_text_list(values.get("sources"), where, "sources"),
        notes=" ".join(_text(notes, where, "notes").split()) if notes else None,
        origin=str(path),
        **optional,
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
        raise CatalogError(f"{path}: unknown top-level key(s) {', '.join(unknown)}", "allowed: vendor, gpus")
    entries = data["gpus"]
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: 'gpus:' must be a non-empty list of entries")
    default_vendor = data.get("vendor")
    specs = [_parse_entry(raw, index, path, default_vendor) for index, raw in enumerate(entries)]
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
