"""`--weights FILE`: a state dict (torch.save) or a safetensors file put into a loaded model, so any source can
be counted with its trained (pruned) values. A file that does not match the model is refused, never half-put."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError, short_error

SAFETENSORS_SUFFIXES = (".safetensors",)
_HINT = "give the state dict saved from this model (torch.save(model.state_dict(), FILE) or safetensors' save_file)"
_NESTED_KEYS = ("state_dict", "model")  # checkpoints that wrap the state dict


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a state-dict file: safetensors by its suffix, else torch.save's format (tensors only)."""
    import torch

    if not path.is_file():
        raise ModelLoadError(f"--weights {path} not found", "check the path; it is relative to the current folder")
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise MissingDependencyError(
                "reading a .safetensors file needs the safetensors package", "pip install 'flopcalc[safetensors]'"
            ) from None
    try:
        if path.suffix.lower() in SAFETENSORS_SUFFIXES:
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        why = "not a tensors-only torch.save file" if "weights_only" in str(error) else short_error(error)
        raise ModelLoadError(f"--weights {path} is not a readable state dict: {why}", _HINT) from error
    if isinstance(state, Mapping):
        for key in _NESTED_KEYS:
            if set(state) == {key} and isinstance(state[key], Mapping):
                state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"--weights {path} holds a {type(state).__name__}, not a name -> tensor state dict", _HINT)
    return dict(state)


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _listed(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_matches(module: Any, state: Mapping[str, Any], path: Path) -> None:
    """Refuse, in one line, a state dict whose names or shapes differ from the model's."""
    expected = module.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    reshaped = [
        f"{name} is {_shape(state[name].shape)} in the file and {_shape(tensor.shape)} in the model"
        for name, tensor in expected.items()
        if name in state and tuple(state[name].shape) != tuple(tensor.shape)
    ]
    problems = (
        ([f"missing {len(missing)} ({_listed(missing)})"] if missing else [])
        + ([f"unexpected {len(unexpected)} ({_listed(unexpected)})"] if unexpected else [])
        + reshaped[:1]
    )
    if problems:
        raise ModelLoadError(f"--weights {path} does not match the model: {'; '.join(problems)}", _HINT)


def apply_weights(module: Any, path: str | Path) -> None:
    """Put the file's tensors into `module` (in place), after checking every name and shape matches."""
    import torch

    target = Path(path)
    state = read_state_dict(target)
    check_matches(module, state, target)
    try:
        with torch.no_grad():
            module.load_state_dict(state, strict=True)
    except Exception as error:
        raise ModelLoadError(
            f"--weights {target} could not be loaded into the model: {short_error(error)}", _HINT
        ) from error
