"""Where catalogue files come from and how they merge: shipped, then $FLOPCALC_GPU_SPECS, then each --catalog.

A user entry whose id already exists replaces that entry whole; any other clash of names is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from ..errors import CatalogError
from ..files import read_yaml
from .names import Catalog, normalize_name
from .records import Accelerator
from .schema import parse_catalog

GPU_SPECS_ENV_VAR = "FLOPCALC_GPU_SPECS"


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


def load_catalog_file(path: str | os.PathLike) -> list[Accelerator]:
    """Every entry of one YAML file, validated; CatalogError naming the file and entry otherwise."""
    path = Path(path)
    specs = parse_catalog(read_yaml(path, CatalogError, "GPU catalogue"), path)
    _check_unique(specs)
    return specs


def _check_unique(specs: Sequence[Accelerator]) -> None:
    """No two entries of one layer share an id, and no name (id or alias) points at two entries."""
    owner: dict[str, Accelerator] = {}
    for spec in specs:
        for label in (spec.id, *spec.aliases):
            key = normalize_name(label)
            other = owner.get(key)
            if other is not None and other is not spec:
                what = "id" if label == spec.id else "alias"
                raise CatalogError(
                    f"{spec.origin}: entry {spec.id!r}: duplicate {what} {label!r}, already used by "
                    f"{other.id!r} in {other.origin}",
                    "ids and aliases must be unique across the catalogue",
                )
            owner[key] = spec


def _load_layer(paths: Iterable[Path]) -> list[Accelerator]:
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
    merged: dict[str, Accelerator] = {}
    layers: list[list[Path]] = []
    if include_shipped:
        layers.append(_yaml_files(shipped_catalog_dir()))
    if env.get(GPU_SPECS_ENV_VAR):
        layers.append(_yaml_files(Path(env[GPU_SPECS_ENV_VAR]).expanduser(), f"${GPU_SPECS_ENV_VAR}"))
    for path in extra:
        layers.append(_yaml_files(Path(path).expanduser(), "--catalog"))
    for paths in layers:
        for spec in _load_layer(paths):
            merged[normalize_name(spec.id)] = spec
    _check_unique(list(merged.values()))
    return Catalog(merged.values())
