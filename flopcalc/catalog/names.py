"""Name resolution: an id, an alias, `torch.cuda.get_device_name()` or a CPU model string -> one catalogue entry.

Forgiving on purpose (case, spaces, hyphens and vendor words do not matter), strict about ambiguity.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator

from ..errors import CatalogError, UsageError
from .records import KINDS, Accelerator

# Words in CPU model names that say nothing about which chip it is ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz").
_CPU_NOISE_WORDS = frozenset(
    {
        "intel",
        "amd",
        "apple",
        "aws",
        "amazon",
        "xeon",
        "epyc",
        "platinum",
        "gold",
        "silver",
        "bronze",
        "cpu",
        "processor",
        "r",
        "tm",
    }
)

# Words that name a vendor or product line rather than the chip: dropped when matching names.
_VENDOR_WORDS = (
    "nvidia",
    "tesla",
    "geforce",
    "quadro",
    "amd",
    "instinct",
    "radeon",
    "google",
    "cloud",
    "intel",
    "habana",
    "apple",
)


# A bare family name means its most common variant (the one clusters and papers mostly mean), with a note
# naming the others; every id here is checked against the catalogue by the tests.
COMMON_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v100": ("V100-SXM2", ("V100-PCIe", "V100S-PCIe")),
    "a100": ("A100-SXM4-80GB", ("A100-SXM4-40GB", "A100-PCIe-80GB", "A100-PCIe-40GB")),
    "h100": ("H100-SXM", ("H100-PCIe", "H100-NVL")),
}


def most_common_variant(name: str) -> tuple[str, tuple[str, ...]] | None:
    """`V100`, `nvidia a100`, `H100` -> (the family's most common variant's id, the other variants' ids); None for
    any other name (the catalogue resolves it, or says which ids it could mean)."""
    key = name.strip().lower().removeprefix("nvidia ").removeprefix("tesla ").strip()
    return COMMON_VARIANTS.get(key)


def normalize_kind(text: str) -> str:
    """`GPU`, ` cpu ` -> `gpu`, `cpu`; UsageError naming the kinds otherwise."""
    key = str(text).strip().lower()
    if key not in KINDS:
        raise UsageError(f"unknown kind {text!r}", f"use one of: {', '.join(KINDS)}")
    return key


def normalize_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _cpu_model_key(text: str) -> str:
    """What names one CPU in a model-name string: "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz" -> `8380`,
    "AMD EPYC 7763 64-Core Processor" -> `7763`, "Intel(R) Xeon(R) CPU E5-2699 v3 @ 2.30GHz" -> `e52699v3`."""
    text = re.sub(r"@\s*[\d.]+\s*[gm]hz", " ", text.lower())
    text = re.sub(r"\b\d+-cores?\b", " ", text)
    return "".join(word for word in re.split(r"[^a-z0-9]+", text) if word and word not in _CPU_NOISE_WORDS)


def _strip_vendor_words(text: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]
    kept = [w for w in words if w not in _VENDOR_WORDS]
    return "".join(kept or words)


class Catalog:
    """All known accelerators by id, with forgiving name resolution."""

    def __init__(self, specs: Iterable[Accelerator]):
        self._by_id: dict[str, Accelerator] = {}
        self._names: dict[str, str] = {}  # normalized id/alias -> id
        self._cpu_keys: dict[str, set[str]] = {}  # CPU model key of an id/alias -> ids of kind cpu
        for spec in specs:
            self._by_id[spec.id] = spec
            for label in (spec.id, *spec.aliases):
                self._names[normalize_name(label)] = spec.id
                if spec.kind == "cpu" and _cpu_model_key(label):
                    self._cpu_keys.setdefault(_cpu_model_key(label), set()).add(spec.id)

    def __iter__(self) -> Iterator[Accelerator]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, gpu_id: object) -> bool:
        return gpu_id in self._by_id

    def ids(self) -> list[str]:
        return list(self._by_id)

    def vendors(self) -> list[str]:
        return sorted({spec.vendor for spec in self})

    def by_vendor(self, vendor: str | None) -> list[Accelerator]:
        """Entries of one vendor (case-insensitive, prefix allowed: `nv`), or all; CatalogError if none."""
        if not vendor:
            return list(self)
        wanted = vendor.strip().lower()
        chosen = [spec for spec in self if spec.vendor.lower().startswith(wanted)]
        if not chosen:
            raise CatalogError(f"no GPUs from vendor {vendor!r}", f"vendors: {', '.join(self.vendors())}")
        return chosen

    def select(self, vendor: str | None = None, kind: str | None = None) -> list[Accelerator]:
        """Entries of one vendor (as `by_vendor`) and of one kind (gpu, tpu, cpu), or all; an error if none."""
        chosen = self.by_vendor(vendor)
        if not kind:
            return chosen
        wanted = normalize_kind(kind)
        chosen = [spec for spec in chosen if spec.kind == wanted]
        if not chosen:
            raise CatalogError(
                f"no entries of kind {wanted}" + (f" from vendor {vendor!r}" if vendor else ""),
                f"kinds here: {', '.join(sorted({spec.kind for spec in self.by_vendor(vendor)}))}",
            )
        return chosen

    def match_cpu(self, model_name: str) -> Accelerator | None:
        """The kind-cpu entry a CPU model name (/proc/cpuinfo, lscpu) names, or None.

        Brand words, (R)/(TM), "@ 2.30GHz" and "64-Core" are dropped; what is left must equal what is left of one
        entry's id or alias (so "Platinum 8380HL" is not the 8380, nor "Apple M2 Pro" the M2).
        """
        ids = self._cpu_keys.get(_cpu_model_key(str(model_name)), set())
        return self._by_id[next(iter(ids))] if len(ids) == 1 else None

    def resolve(self, name: str) -> Accelerator:
        """An id, alias or `torch.cuda.get_device_name()` string -> its entry.

        Case, spaces, hyphens and vendor words (NVIDIA, Tesla, AMD Instinct, ...) do not matter. A name that
        matches no entry exactly but is contained in exactly one entry's names resolves to it; in several,
        CatalogError lists them; in none, CatalogError suggests the closest ids.
        """
        text = str(name).strip()
        if not text:
            raise CatalogError("empty GPU name", "run `flopcalc gpus list` to see the ids")
        for key in (normalize_name(text), _strip_vendor_words(text)):
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
