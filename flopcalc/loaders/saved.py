"""Saved models: TorchScript (`torch.jit.save`) and torch.export (`torch.export.save`, `.pt2`) files."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ModelLoadError, short_error
from .base import LoadedModel


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(f"model file {path} not found", "check the path; it is relative to the current folder")


def _moved(module, device: str, path: Path):

    if device == "cpu":
        return module
    try:
        return _to_keeping_ties(module, device)
    except Exception as error:
        raise ModelLoadError(f"cannot move {path} to {device}: {short_error(error)}", "try --device cpu") from error


def _to_keeping_ties(module, device: str):
    """`module.to(device)` with shared parameters still shared. Moving across device types (cpu -> meta)
    gives every module a new Parameter of its own, so a tied embedding and head would become two
    parameters: counted twice, and their gradients no longer summed."""
    owners: dict[int, list] = {}
    for submodule in module.modules():
        for name, param in submodule._parameters.items():
            if param is not None:
                owners.setdefault(id(param), []).append((submodule, name))
    moved = module.to(device)
    for (first, first_name), *others in owners.values():
        for submodule, name in others:
            submodule._parameters[name] = first._parameters[first_name]
    return moved


def load_torchscript(path: Path, *, device: str):
    import torch

    _check_file(path)
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelLoadError(
            f"{path} is not a loadable TorchScript file: {short_error(error)}",
            "save it with torch.jit.save (a state_dict or pickled model is not a TorchScript file)",
        ) from error
    notes = ["TorchScript runs its forward as one graph: FLOPs are attributed to the root module only"]
    if device == "meta":  # scripted parameters cannot be re-created as meta tensors
        notes.append("TorchScript modules cannot move to the meta device: counted on cpu")
        device = "cpu"
    return LoadedModel(_moved(module, device, path), None, str(path), "torchscript", tuple(notes))


def load_exported(path: Path, *, device: str):
    import torch

    _check_file(path)
    # torch.export logs a failed load as a multi-line traceback before raising: keep stderr to our one line
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.CRITICAL)
    try:
        program = torch.export.load(str(path))
    except Exception as error:
        raise ModelLoadError(
            f"{path} is not a loadable torch.export file: {short_error(error)}", "save it with torch.export.save"
        ) from error
    finally:
        export_log.setLevel(level)
    notes: list[str] = []
    try:
        module = torch.export.unflatten(program)  # restores the module tree, so layers have names
    except Exception as error:
        module = program.module()
        notes.append(f"could not rebuild the module tree ({short_error(error)}): FLOPs are attributed to the root")
    example = None
    if program.example_inputs is not None:
        args, kwargs = program.example_inputs
        example = kwargs if kwargs and not args else args
    return LoadedModel(_moved(module, device, path), example, str(path), "export", tuple(notes))
