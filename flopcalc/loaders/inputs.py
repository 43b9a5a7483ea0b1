"""A ModelSpec's `--input` specs (`1x3x224x224`, `8,1024:int64`, `pixel_values=1x3x224x224`), or a source's
own examples -> tensors on a device."""

from __future__ import annotations

from typing import Any

from ..errors import InputSpecError
from ..spec import CallArgs, InputSpec, ModelSpec, map_tensors


def make_inputs(spec: ModelSpec, example_inputs: Any, *, device: str, module: Any = None) -> Any:
    """Tensors for the spec's `--input`s and the source's own example inputs; `batch_size` overrides dim 0.

    Positional `--input`s replace the example inputs altogether (as they always have); named ones replace the
    example's input of that name (a positional one too, found by `module`'s forward signature), or add one. The result has the form of what it holds: the example
    as the source gave it when no `--input` is given, a tuple of positional tensors, a dict of keyword
    tensors, or `CallArgs` when both kinds are mixed.

    Integer inputs are zeros (valid token ids for any embedding); float inputs are random, except on meta.
    """
    import torch

    parsed = spec.input_specs
    if spec.batch_size is not None:
        parsed = tuple(InputSpec((spec.batch_size,) + p.shape[1:], p.dtype, p.name) for p in parsed)
    positional = tuple(_tensor(p, device) for p in parsed if p.name is None)
    named = {p.name: _tensor(p, device) for p in parsed if p.name is not None}
    if positional:
        base = CallArgs(positional)
    elif example_inputs is not None:
        moved = _to_device(example_inputs, torch.device(device))
        moved = _rebatch(moved, spec.batch_size) if spec.batch_size is not None else moved
        if not named:
            return moved
        base = _name_positional(CallArgs.of(moved), positional_parameters(module), set(named))
    elif named:
        base = CallArgs()
    else:
        raise InputSpecError(
            f"no inputs for {spec.source}",
            "give --input SHAPE or NAME=SHAPE (e.g. --input 1x3x224x224), or define example_inputs() in the model file",
        )
    call = CallArgs(base.args, {**base.kwargs, **named})
    if not call.kwargs:
        return call.args
    return call.kwargs if not call.args else call


def check_input_names(spec: ModelSpec, module: Any, kind: str) -> None:
    """Refuse a named input the model's forward does not take (it would be passed and ignored, or fail deep
    inside), naming the arguments it does take. A forward taking `**kwargs` takes any name, except a Hugging
    Face model's: those are for attention internals, never an input."""
    import inspect

    names = [p.name for p in spec.input_specs if p.name is not None]
    forward = getattr(module, "forward", None)
    if not names or forward is None:
        return
    try:
        parameters = inspect.signature(forward).parameters
    except (TypeError, ValueError):  # a compiled or C forward without a Python signature: it will tell
        return
    if kind != "huggingface" and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    taken = [
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = [name for name in names if name not in taken]
    if unknown:
        raise InputSpecError(
            f"inputs {unknown[0]}= is not an argument of {type(module).__name__}.forward",
            f"it takes {', '.join(taken)}" if taken else "its forward takes no named arguments: give the shape alone",
            field="inputs",
        )


def example_inputs_kept(spec: ModelSpec, example_inputs: Any, module: Any = None) -> set[str | None]:
    """Which of the source's example inputs a count with these `--input`s still uses: their keyword names, and
    None for the positional ones (so notes about a default input are shown only while it is in use)."""
    if example_inputs is None:
        return set()
    given = spec.input_specs
    if any(p.name is None for p in given):
        return set()
    overridden = {p.name for p in given}
    call = _name_positional(CallArgs.of(example_inputs), positional_parameters(module), overridden)
    return ({None} if call.args else set()) | {name for name in call.kwargs if name not in overridden}


def _tensor(spec: InputSpec, device: str):
    import torch

    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point and device != "meta":
        return torch.randn(spec.shape, dtype=dtype, device=device)
    return torch.zeros(spec.shape, dtype=dtype, device=device)


def _to_device(obj: Any, device):
    return map_tensors(lambda tensor: tensor if tensor.device == device else tensor.to(device), obj)


def _rebatch(obj: Any, batch_size: int):
    return map_tensors(
        lambda tensor: tensor if tensor.dim() == 0 else tensor[:1].expand(batch_size, *tensor.shape[1:]).clone(), obj
    )


def positional_parameters(module: Any) -> tuple[str, ...]:
    """The names of a module's forward parameters that can be given by position, in order (none when unknown)."""
    import inspect

    forward = getattr(module, "forward", None)
    if forward is None:
        return ()
    try:
        parameters = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def _name_positional(call: CallArgs, names: tuple[str, ...], overridden: set[Any]) -> CallArgs:
    """The example's positional inputs passed by name when a named `--input` replaces one of them, so the given
    input takes its place instead of being passed twice."""
    if not call.args or len(call.args) > len(names) or not overridden & set(names[: len(call.args)]):
        return call
    return CallArgs((), {**dict(zip(names, call.args, strict=False)), **call.kwargs})
