"""`ModelSpec`: what "this model, counted this way" means, parsed once from the CLI or a budget entry.

Every command that takes a model travels the same road: options -> ModelSpec -> load -> count -> compute ->
render. The spec is plain data (no torch), validated when it is made, and `key()` is the one definition of
"the same model counted the same way" that calibration files and budget caches are keyed by.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArgumentTypeError, InputSpecError, UsageError

# `--input` dtype spellings -> torch dtype names
DTYPES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "f32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "f16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
    "fp64": "float64",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}
DEVICES_HINT = "use meta, cpu, cuda or cuda:N"

_DIMS = re.compile(r"^\d+([x,]\d+)*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InputSpec:
    """One example input: its shape and dtype (`1x3x224x224`, `8,1024:int64`), and the name of the keyword
    argument it is passed as (`pixel_values=1x3x224x224`); `name=None` passes it positionally."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None

    def __str__(self) -> str:
        prefix = "" if self.name is None else f"{self.name}="
        return prefix + "x".join(map(str, self.shape)) + ("" if self.dtype == "float32" else f":{self.dtype}")


def parse_input_spec(text: str) -> InputSpec:
    """Dims separated by `x` or `,`, an optional `:dtype`, an optional `NAME=` in front: `1x3x224x224`,
    `8,1024`, `1x2048:int64`, `decoder_input_ids=1x128:int64`."""
    head, sep, rest = text.strip().partition("=")
    name: str | None = head.strip()
    if not sep:
        name, rest = None, text
    elif not _NAME.match(head.strip()):
        raise InputSpecError(
            f"--input {text!r}: {name!r} is not an argument name",
            "write NAME=SHAPE with the forward's parameter name, e.g. pixel_values=1x3x224x224",
        )
    raw = rest.strip().lower().replace(" ", "")
    dims, _, dtype = raw.partition(":")
    if not _DIMS.match(dims):
        raise InputSpecError(
            f"--input {text!r} is not a shape",
            "write dims separated by x or commas, optionally with a dtype and a name: 1x3x224x224, 8,1024:int64, "
            "input_ids=1x512:int64",
        )
    shape = tuple(int(d) for d in re.split(r"[x,]", dims))
    if any(d <= 0 for d in shape):
        raise InputSpecError(f"--input {text!r} has a zero dimension", "every dimension must be at least 1")
    if dtype and dtype not in DTYPES:
        raise InputSpecError(
            f"--input {text!r}: unknown dtype {dtype!r}", f"use one of {', '.join(sorted(set(DTYPES.values())))}"
        )
    return InputSpec(shape, DTYPES[dtype] if dtype else "float32", name)


def check_input_names(specs: Iterable[InputSpec]) -> None:
    """A keyword argument can be given once."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name is not None and spec.name in seen:
            raise InputSpecError(f"--input {spec.name}= is given twice", "give each named input once")
        if spec.name is not None:
            seen.add(spec.name)


@dataclass(frozen=True)
class CallArgs:
    """The arguments a model is called with: positional ones in order, keyword ones by name.

    What `--input` specs become when positional and named ones are mixed; `CallArgs.of` reads the other forms
    a model's inputs come in (one tensor, a tuple or list of positional ones, a dict of keyword ones), so
    every caller calls a model one way: `CallArgs.of(inputs).call(model)`.
    """

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    @classmethod
    def of(cls, inputs: Any) -> CallArgs:
        if isinstance(inputs, CallArgs):
            return inputs
        if isinstance(inputs, Mapping):
            return cls((), inputs)
        if isinstance(inputs, (list, tuple)):
            return cls(tuple(inputs))
        return cls((inputs,))

    def call(self, fn: Any) -> Any:
        return fn(*self.args, **self.kwargs)

    def named(self) -> list[tuple[str | None, Any]]:
        """(None, value) for each positional argument, then (name, value) for each keyword one."""
        return [(None, value) for value in self.args] + list(self.kwargs.items())


def tensors_in(tree: Any) -> list[Any]:
    """The tensors inside a model's nested inputs or outputs, in order: whatever `torch.utils._pytree` walks
    (tuples, lists, dicts, namedtuples, registered dataclasses, Hugging Face ModelOutput), CallArgs, and the
    containers it leaves whole (a tokenizer's BatchEncoding and other Mappings, plain dataclasses)."""
    import torch
    from torch.utils._pytree import tree_leaves

    found: list[Any] = []
    for leaf in tree_leaves((tree.args, tree.kwargs) if isinstance(tree, CallArgs) else tree):
        if isinstance(leaf, torch.Tensor):
            found.append(leaf)
        elif isinstance(leaf, (Mapping, CallArgs)):
            found.extend(tensors_in(leaf if isinstance(leaf, CallArgs) else dict(leaf)))
        elif dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
            found.extend(tensors_in([getattr(leaf, f.name, None) for f in dataclasses.fields(leaf)]))
    return found


def map_tensors(function: Any, tree: Any) -> Any:
    """The same nesting with `function` applied to every tensor (see `tensors_in` for what is walked); a Mapping
    pytree does not know (BatchEncoding) comes back a dict."""
    import torch
    from torch.utils._pytree import tree_map

    def leaf(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return function(value)
        if isinstance(value, (Mapping, CallArgs)):
            return map_tensors(function, value if isinstance(value, CallArgs) else dict(value))
        return value

    if isinstance(tree, CallArgs):
        return CallArgs(map_tensors(function, tree.args), map_tensors(function, tree.kwargs))
    return tree_map(leaf, tree)


def check_device(device: str | None) -> str | None:
    """None (meta, falling back to cpu), meta, cpu, cuda or cuda:N; anything else is a UsageError."""
    if device is None or device in ("meta", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return device
    raise UsageError(f"--device {device!r} is not meta, cpu or cuda", DEVICES_HINT)


# The most layers a config may declare before counting refuses to build it: about 0.05 s of CPU per layer on
# the meta device (loaders/hf_config.SECONDS_PER_LAYER), so 10,000 layers is about 8 minutes.
DEFAULT_MAX_LAYERS = 10_000


def check_attention_window(attention_window: Any) -> None:
    """A sliding window is a whole number of keys >= 1 (None: no window)."""
    if attention_window is not None and (
        isinstance(attention_window, bool) or not isinstance(attention_window, numbers.Integral) or attention_window < 1
    ):
        raise UsageError(
            f"attention window {attention_window!r} must be a whole number of keys >= 1",
            "give e.g. --attention-window 4096",
            field="attention_window",
        )


@dataclass(frozen=True)
class ModelSpec:
    """A model source and everything that decides how it is counted.

    - `source`: `file.py:callable`, `file.py`, TorchScript `.pt`, torch.export `.pt2`, `.onnx`, or an HF config.
    - `inputs`: `--input` specs as given (validated here): `SHAPE[:dtype]` passed positionally, in order, or
      `NAME=SHAPE[:dtype]` passed as a keyword; empty = the source's own example inputs.
    - `batch_size` overrides every input's leading dimension; `seq_len` sizes an HF config's token input (or
      raw audio samples), `decoder_seq_len` an encoder-decoder's decoder tokens; `dims` sizes an ONNX graph's
      symbolic dimensions; `kwargs` go to a Python factory.
    - `device`: None counts on meta and falls back to cpu; otherwise the device as given.
    - `frozen`: parameter/module patterns that get no gradient; `causal_half` counts causal attention's lower
      triangle only; `backward=False` counts the forward pass alone.
    - `weights`: a state dict or safetensors file whose values replace the source's; `sparsity` reads the
      weights' zeros (on the CPU, never meta): their N:M pattern and effective FLOPs without zero products.
    - `attention_window`: count each causal attention query against at most this many keys (a sliding window,
      as flash attention's windowed kernels compute it); None takes a Hugging Face config's `sliding_window`.
      `attention_as_math` counts the full square whatever the config says.
    - `revision`: the branch, tag or commit of a Hugging Face Hub id (`org/name`) to read; None is its default
      branch.
    - `max_layers`: a Hugging Face config declaring more layers is refused before it is built (counting runs
      every layer's ops one by one: DEFAULT_MAX_LAYERS takes minutes); it never changes a count.
    """

    source: str
    inputs: tuple[str, ...] = ()
    batch_size: int | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    seq_len: int | None = None
    decoder_seq_len: int | None = None
    dims: Mapping[str, int] = field(default_factory=dict, hash=False)
    device: str | None = None
    frozen: tuple[str, ...] = ()
    causal_half: bool = False
    backward: bool = True
    max_layers: int = field(default=DEFAULT_MAX_LAYERS, compare=False)
    weights: str | None = None
    sparsity: bool = False
    revision: str | None = None
    attention_window: int | None = None
    attention_as_math: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise UsageError(
                "a model source is needed", "give file.py:callable, a .pt/.pt2/.onnx file or a config.json"
            )
        object.__setattr__(self, "inputs", tuple(self.inputs or ()))
        object.__setattr__(self, "frozen", tuple(self.frozen or ()))
        object.__setattr__(self, "kwargs", dict(self.kwargs or {}))
        object.__setattr__(self, "dims", dict(self.dims or {}))
        check_input_names(parse_input_spec(text) for text in self.inputs)
        for name in ("batch_size", "seq_len", "decoder_seq_len", "max_layers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise ArgumentTypeError(
                    f"{name} must be a whole number, got {type(value).__name__} {value!r}", field=name
                )
        if self.batch_size is not None and self.batch_size < 1:
            raise InputSpecError(f"batch_size {self.batch_size} must be at least 1", field="batch_size")
        if self.seq_len is not None and self.seq_len < 1:
            raise InputSpecError(f"seq_len {self.seq_len} must be at least 1", field="seq_len")
        if self.decoder_seq_len is not None and self.decoder_seq_len < 1:
            raise InputSpecError(f"decoder_seq_len {self.decoder_seq_len} must be at least 1", field="decoder_seq_len")
        for name, size in self.dims.items():
            if not isinstance(size, int) or size < 1:
                raise UsageError(f"--dim {name}={size} must be a whole number >= 1", "write e.g. --dim batch=8")
        check_device(self.device)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights.strip()):
            raise UsageError("weights must name a state dict or safetensors file", field="weights")
        if self.sparsity and self.device == "meta":
            raise UsageError(
                "--sparsity reads the weights' values, which the meta device does not hold",
                "count on the cpu: --device cpu (or leave --device out)",
            )
        check_attention_window(self.attention_window)
        if self.attention_window is not None and self.attention_as_math:
            raise UsageError(
                "--attention-window and --attention-as-math contradict each other",
                "give one: the window's keys, or the full square",
                field="attention_window",
            )
        if isinstance(self.max_layers, bool) or not isinstance(self.max_layers, int) or self.max_layers < 1:
            raise UsageError(f"max_layers {self.max_layers!r} must be a whole number >= 1", field="max_layers")
        if self.revision is not None and (
            not isinstance(self.revision, str) or not self.revision.strip() or any(c.isspace() for c in self.revision)
        ):
            raise UsageError(
                f"revision {self.revision!r} is not a branch, tag or commit",
                "give e.g. --revision main or a commit hash",
                field="revision",
            )

    @property
    def input_specs(self) -> tuple[InputSpec, ...]:
        return tuple(parse_input_spec(text) for text in self.inputs)

    def key(self) -> str:
        """The one name of "this model counted this way": the source (a file made absolute), then the options
        that change the count, each only when it differs from the default. Calibration files store a model's
        measurements under it; `flopcalc check` counts entries with equal keys once."""
        parts = [_absolute_source(self.source)] + [f"--input {text}" for text in self.inputs]
        if self.revision is not None:
            parts.append(f"--revision {self.revision}")
        if self.batch_size is not None:
            parts.append(f"--batch-size {self.batch_size}")
        if self.kwargs:
            parts.append(
                "--kwargs " + json.dumps(dict(self.kwargs), sort_keys=True, separators=(",", ":"), default=repr)
            )
        if self.seq_len is not None:
            parts.append(f"--seq-len {self.seq_len}")
        if self.decoder_seq_len is not None:
            parts.append(f"--decoder-seq-len {self.decoder_seq_len}")
        parts.extend(f"--dim {name}={size}" for name, size in sorted(self.dims.items()))
        parts.extend(f"--frozen {pattern}" for pattern in self.frozen)
        if self.causal_half:
            parts.append("--causal-half")
        if self.attention_window is not None:
            parts.append(f"--attention-window {self.attention_window}")
        if self.attention_as_math:
            parts.append("--attention-as-math")
        if not self.backward:
            parts.append("--no-backward")
        if self.weights is not None:
            parts.append(f"--weights {_absolute_source(self.weights)}")
        if self.sparsity:
            parts.append("--sparsity")
        return " ".join(parts)


def split_python_source(source: str) -> tuple[str, str | None] | None:
    """`models/net.py:build` -> ("models/net.py", "build"); `net.py` -> ("net.py", None); else None."""
    path, sep, attribute = source.rpartition(":")
    if sep and path.endswith(".py"):
        return path, attribute or None
    if source.endswith(".py"):
        return source, None
    return None


def _absolute_source(source: str) -> str:
    path_part, sep, attribute = source.rpartition(":")
    if sep and path_part and Path(path_part).exists():
        return f"{Path(path_part).resolve()}:{attribute}"
    if Path(source).exists():
        return str(Path(source).resolve())
    return source


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """`'{"depth": 50}'` -> a dict (what `--kwargs` takes)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--kwargs is not valid JSON: {error.msg}", "write e.g. --kwargs '{\"depth\": 50}'") from None
    if not isinstance(value, dict):
        raise UsageError("--kwargs must be a JSON object", "write e.g. --kwargs '{\"depth\": 50}'")
    return value


def parse_dims(values: Iterable[str]) -> dict[str, int]:
    """`["batch=8", "seq=128"]` -> {"batch": 8, "seq": 128} (what repeated `--dim` takes)."""
    dims = {}
    for text in values:
        name, sep, size = text.partition("=")
        if not sep or not name.strip() or not size.strip().isdigit():
            raise UsageError(f"--dim {text!r} is not NAME=SIZE", "write e.g. --dim batch=8")
        dims[name.strip()] = int(size)
    return dims
