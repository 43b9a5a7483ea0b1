"""The GPU catalogue: `gpu_specs/*.yaml` described by a schema, merged with user catalogues, names resolved.

Shipped files come with the package (`flopcalc/gpu_specs`). User catalogues merge over them, in this order: the
`FLOPCALC_GPU_SPECS` environment variable (a YAML file or a folder of them), then each `--catalog FILE`.
Peaks are stored in TFLOPS (int8 in TOPS) and DENSE; the 2:4-sparsity figures live apart in `sparse_peak_tflops`
and are never used for conversions. Memory sizes are GiB (`Accelerator.memory_bytes`). The format is in
docs/catalogue.md. No torch here: `flopcalc gpus` and `flopcalc convert` must start fast.
"""

from ..units import GIB  # re-exported: memory_gb is GiB
from .loading import GPU_SPECS_ENV_VAR, load_catalog, load_catalog_file, shipped_catalog_dir
from .names import COMMON_VARIANTS, Catalog, most_common_variant, normalize_kind
from .records import CPU_CLOCKS, DEFAULT_KIND, KINDS, Accelerator, CoreGroup, DeviceKind, Link

__all__ = [
    "COMMON_VARIANTS",
    "CPU_CLOCKS",
    "DEFAULT_KIND",
    "GIB",
    "GPU_SPECS_ENV_VAR",
    "KINDS",
    "Accelerator",
    "Catalog",
    "CoreGroup",
    "DeviceKind",
    "Link",
    "load_catalog",
    "load_catalog_file",
    "most_common_variant",
    "normalize_kind",
    "shipped_catalog_dir",
]
