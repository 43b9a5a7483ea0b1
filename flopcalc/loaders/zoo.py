"""Models named in a library's zoo: `timm:NAME` and `torchvision:NAME`, built without weights.

Vision users name models rather than write factories; both libraries build any of theirs from its name. The
model is built under the requested device (meta: no memory), never with pretrained weights, and called with
one image at the size its pretrained weights were made for (what the published FLOPs are quoted at). It is
counted as built, in training mode, as every source is: auxiliary classifiers built for training (GoogLeNet's,
Inception v3's) run, unless the builder is told `aux_logits=False`.
"""

from __future__ import annotations

import contextlib
import difflib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import MissingDependencyError, ModelBuildError, ModelLoadError, short_error
from .base import LoadedModel

LIBRARIES = {"timm": "pip install 'flopcalc[timm]'", "torchvision": "pip install 'flopcalc[torchvision]'"}
DEFAULT_IMAGE_SIZE = 224
# torchvision's model families whose forward takes one batch of images (the others take lists, clips or pairs)
_IMAGE_FAMILIES = ("torchvision.models.segmentation.", "torchvision.models.quantization.")
_OTHER_FAMILIES = {
    "torchvision.models.detection.": "a list of images (e.g. --input 3x800x800)",
    "torchvision.models.video.": "a clip, batch x channels x frames x H x W (e.g. --input 1x3x16x112x112)",
    "torchvision.models.optical_flow.": "two images (e.g. --input 1x3x520x960 --input 1x3x520x960)",
}
# torchvision's own C++ ops, defined here only where its library could not load (kept alive: see below)
_TORCHVISION_OPS = (
    ("nms", "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
    ("qnms", "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
)
_defined_ops: list[Any] = []


def zoo_name(source: str) -> tuple[str, str] | None:
    """`timm:resnet50` -> ("timm", "resnet50"); anything else None."""
    library, sep, name = source.partition(":") if isinstance(source, str) else ("", "", "")
    if sep and library in LIBRARIES:
        return library, name
    return None


def load_zoo(
    library: str, name: str, *, kwargs: Mapping[str, Any], device: str, source: str, inputs_given: bool = False
) -> LoadedModel:
    """The named model on `device` (weights None / pretrained False) and one image at its default size; a
    model whose input is no single image needs `--input` (`inputs_given`), and the error says what it takes."""
    if not name.strip():
        raise ModelLoadError(f"{source!r} names no model", f"write {library}:NAME, e.g. {library}:resnet50")
    if library == "timm":
        module, shape, why = _timm_model(name, kwargs, device, source)
    else:
        module, shape, why = _torchvision_model(name, kwargs, device, source)
    example = None
    notes: tuple[str, ...] = ()
    if shape is None and not inputs_given:
        raise ModelLoadError(
            f"{source} takes {why or 'an input whose size its library does not say'}", "give it with --input SHAPE"
        )
    if shape is not None:
        import torch

        example = (
            torch.zeros((1, *shape), device=device) if device == "meta" else torch.randn((1, *shape), device=device),
        )
        notes = (f"input 1x{'x'.join(map(str, shape))}: {why}",)
    return LoadedModel(module, example, source, library, example_notes=notes)


def _timm_model(name: str, kwargs: Mapping[str, Any], device: str, source: str):
    define_torchvision_ops()
    try:
        import timm
    except ImportError:
        raise MissingDependencyError(f"{source} needs timm", LIBRARIES["timm"]) from None
    if not timm.is_model(name):
        raise ModelLoadError(
            f"timm has no model {name!r}", _did_you_mean(name, timm.list_models(), "timm.list_models()")
        )
    import torch

    try:
        with torch.device(device), _quiet():
            module = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as error:
        raise ModelBuildError(f"timm.create_model({name!r}) failed on {device}: {short_error(error)}") from error
    size = (getattr(module, "pretrained_cfg", None) or {}).get("input_size")
    if not size:
        return module, None, ""
    return module, tuple(size), f"the size of timm's pretrained config for {name}"


def _torchvision_model(name: str, kwargs: Mapping[str, Any], device: str, source: str):
    define_torchvision_ops()
    try:
        from torchvision import models
    except ImportError:
        raise MissingDependencyError(f"{source} needs torchvision", LIBRARIES["torchvision"]) from None
    try:
        builder = models.get_model_builder(name)
    except ValueError:
        raise ModelLoadError(
            f"torchvision has no model {name!r}",
            _did_you_mean(name, models.list_models(), "torchvision.models.list_models()"),
        ) from None
    import torch

    try:
        with torch.device(device), _quiet():
            module = builder(weights=None, **kwargs)
    except Exception as error:
        raise ModelBuildError(
            f"torchvision.models.get_model({name!r}) failed on {device}: {short_error(error)}"
        ) from error
    family = builder.__module__ + "."
    for prefix, wanted in _OTHER_FAMILIES.items():
        if family.startswith(prefix):
            return module, None, wanted
    own = getattr(module, "image_size", None)  # a ViT is built for one size (its weights' only when loaded)
    if isinstance(own, int) and not isinstance(own, bool):
        return module, (3, own, own), f"the image_size {name} is built with"
    crop = _crop_size(models, name)
    if crop is None:
        return module, (3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE), f"{name} has no pretrained weights to size it by"
    return module, (3, crop, crop), f"the crop size of torchvision's default weights for {name}"


def _did_you_mean(name: str, known: list[str], lister: str) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=5)
    return f"did you mean {', '.join(close)}?" if close else f"list them with {lister}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The builders' warnings about how fresh weights are initialised (slow under scipy, to change in a later
    release) are about weights a count never reads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _crop_size(models, name: str) -> int | None:
    """The crop size of the model's default weights' preprocessing (what its published FLOPs assume)."""
    try:
        weights = models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None
    crop = getattr(weights.transforms, "keywords", {}).get("crop_size")
    if isinstance(crop, (list, tuple)):
        crop = crop[0] if crop else None
    return crop if isinstance(crop, int) else None


def define_torchvision_ops() -> None:
    """Define torchvision's `nms`/`qnms` op schemas where its C++ library did not load.

    torchvision's wheel is built for one torch build (CUDA); under another (the CPU wheel) its C++ library
    fails to load, and its Python side then stops at import, registering fake kernels for ops that were never
    defined. transformers, Lightning and timm import torchvision whenever it is installed, so they stop too:
    call this before importing any of them. The models counted never call these ops, so their schemas alone
    (no kernels) let the import go on. A torchvision whose library loads defines them itself: nothing is done."""
    import importlib.util
    import sys

    if _defined_ops or "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return
    import torch

    try:  # where it was built for this torch the library loads (torchvision's import then finds it loaded)
        torch.ops.load_library(_torchvision_library())
        return
    except (OSError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op, schema in _TORCHVISION_OPS:
        if not _op_defined(op):
            library.define(schema)
    _defined_ops.append(library)  # a Library deletes its definitions when it is collected


def _op_defined(op: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, op)
    except (AttributeError, RuntimeError):
        return False
    return True


def _torchvision_library() -> str:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("torchvision")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else Path(".")
    found = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not found:
        raise OSError("torchvision has no compiled library")
    return str(found[0])
