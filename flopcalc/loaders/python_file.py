"""Models defined in Python files: `file.py:callable`, or `file.py` with a `build` or `model` callable."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ModelBuildError, ModelLoadError, short_error
from .base import LoadedModel

DEFAULT_CALLABLES = ("build", "model")


def _import_file(path: Path):
    module_name = f"_flopcalc_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path}", "is it a Python source file?")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file can import its siblings
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ModelLoadError(f"{path} does not parse: {error.msg} (line {error.lineno})") from error
    except (Exception, SystemExit) as error:  # a script that exits at import (argparse) too
        raise ModelLoadError(
            f"importing {path} failed: {short_error(error)}", "run the file with python to see why"
        ) from error
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _call_accepting(fn, kwargs: Mapping[str, Any]):
    """Call fn with those kwargs its signature takes (all of them if it takes **kwargs)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in parameters})


def _check_kwargs(factory: Any, attribute: str, kwargs: Mapping[str, Any], source: str) -> None:
    """Refuse keyword arguments the factory's signature does not take: a `kwargs` problem. A TypeError raised
    inside the factory is the model's own and is not reported as one."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable without a signature: its call will tell
        return
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        taken = [
            name
            for name, p in signature.parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        raise ModelLoadError(
            f"{source}: kwargs do not fit {attribute}(): {error}",
            f"{attribute}() takes {', '.join(taken)}" if taken else f"{attribute}() takes no keyword arguments",
            field="kwargs",
        ) from None


def load_python_model(file: str, attribute: str | None, *, kwargs: Mapping[str, Any], device: str, source: str):
    import torch

    path = Path(file)
    if not path.is_file():
        raise ModelLoadError(f"model file {file} not found", "check the path; it is relative to the current folder")
    module = _import_file(path)
    if attribute is None:
        attribute = next((name for name in DEFAULT_CALLABLES if callable(getattr(module, name, None))), None)
        if attribute is None:
            raise ModelLoadError(
                f"{file} has no callable named build or model",
                f"name one: {file}:CALLABLE ({_candidates(module)})",
            )
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise ModelLoadError(f"{file} has no callable {attribute!r}", f"callables there: {_candidates(module)}")
    _check_kwargs(factory, attribute, kwargs, source)
    try:
        with torch.device(device):
            built = factory(**kwargs)
    except (Exception, SystemExit) as error:  # the user's factory: whatever it raises, a TypeError too, is its own
        raise ModelBuildError(f"{source}: {attribute}() raised {short_error(error)}") from error
    if not isinstance(built, torch.nn.Module):
        raise ModelLoadError(
            f"{source}: {attribute}() returned {type(built).__name__}, not a torch.nn.Module",
            "the callable must return (or be) an nn.Module",
        )
    example = None
    make_example = getattr(module, "example_inputs", None)
    if callable(make_example):
        try:
            with torch.device(device):
                example = _call_accepting(make_example, kwargs)
        except (Exception, SystemExit) as error:
            raise ModelBuildError(f"{file}: example_inputs() raised {short_error(error)}") from error
    return LoadedModel(built, example, source, "python")


def _candidates(module) -> str:
    names = [
        name
        for name, value in vars(module).items()
        if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]
    return ", ".join(sorted(names)) or "none defined"
