"""Counting ONNX graphs: fix the input shapes, let onnx infer the rest, count every node statically.

Nothing runs: each node's cost comes from its shapes through formulas_onnx (which delegates to the aten
formulas). Layers are the `/`-separated scopes the PyTorch exporters write: the TorchScript exporter names
nodes `/features/features.0/Conv`; the torch.export-based exporter keeps the module path in the node's
`pkg.torch.onnx.name_scopes` metadata (and the module classes in `pkg.torch.onnx.class_hierarchy`).
"""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputSpecError, ModelLoadError, UsageError, short_error
from ..spec import InputSpec, ModelSpec, parse_input_spec
from .formulas_onnx import ZERO_COST_OPS, OnnxNode, flops_of_node, op_key
from .report import (
    CountReport,
    InputInfo,
    build_layers,
    formula_flops,
    listed_ops,
    tree_ancestors,
    unsupported_ops_error,
)

NO_BACKWARD_NOTE = "ONNX graphs have no backward pass: forward FLOPs only"
DEVICE = "onnx"  # nothing runs: shapes only
SEPARATOR = "/"
# Integer initializers hold shapes, axes and indices, not weights (8-bit and smaller ones are quantized weights).
_INDEX_TYPES = ("int64", "int32", "int16", "uint64", "uint32", "uint16")


# --------------------------------------------------------------------------------------------- shapes


def _dtype_name(elem_type: int) -> str:
    from onnx import helper

    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name
    except Exception:
        return "unknown"


def _graph_inputs(model) -> list:
    """Inputs the caller feeds: older exporters also list every initializer as a graph input."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def resolve_input_shapes(
    model,
    specs: Sequence[str] | None,
    batch_size: int | None,
    dims: Mapping[str, int],
) -> tuple[list[tuple[str, tuple[int, ...], str]], list[str]]:
    """(name, shape, dtype) of each graph input with every dimension fixed, and notes on defaults taken."""
    inputs = _graph_inputs(model)
    names = ", ".join(i.name for i in inputs)
    notes: list[str] = []
    given = _given_shapes(inputs, [parse_input_spec(text) for text in specs or ()], names)
    resolved = []
    for graph_input in inputs:
        if graph_input.name in given:
            text, spec = given[graph_input.name]
            shape = ((batch_size,) + spec.shape[1:]) if batch_size is not None else spec.shape
            declared = graph_input.type.tensor_type
            if declared.HasField("shape") and len(declared.shape.dim) != len(shape):
                raise InputSpecError(
                    f"--input {text!r} has {len(shape)} dimension(s); graph input {graph_input.name!r} has "
                    f"{len(declared.shape.dim)}",
                    "give one size per dimension of the graph input",
                )
            resolved.append((graph_input.name, shape, _dtype_name(declared.elem_type)))
            continue
        tensor_type = graph_input.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise InputSpecError(f"graph input {graph_input.name!r} has no shape", "give --input for every graph input")
        shape = []
        for index, dim in enumerate(tensor_type.shape.dim):
            param = dim.dim_param if dim.WhichOneof("value") == "dim_param" else None
            if param is not None and param in dims:
                shape.append(dims[param])
            elif index == 0 and batch_size is not None:
                shape.append(batch_size)
            elif dim.WhichOneof("value") == "dim_value":
                shape.append(int(dim.dim_value))
            elif index == 0:
                notes.append(
                    f"input {graph_input.name!r}: symbolic batch dimension {param or '?'} taken as 1 (set --batch-size)"
                )
                shape.append(1)
            else:
                label = f"symbolic ({param!r})" if param else "unknown"
                raise InputSpecError(
                    f"graph input {graph_input.name!r} dimension {index} is {label}",
                    f"give --dim {param}=SIZE" if param else "give --input with every dimension",
                )
        resolved.append((graph_input.name, tuple(shape), _dtype_name(tensor_type.elem_type)))
    known = sorted({d.dim_param for i in inputs for d in i.type.tensor_type.shape.dim if d.dim_param})
    unused = sorted(set(dims) - set(known))
    if unused:
        raise UsageError(
            f"--dim {unused[0]}: no graph input has a dimension named {unused[0]!r}",
            f"symbolic dimensions here: {', '.join(known)}" if known else "this graph has no symbolic dimensions",
        )
    return resolved, notes


def _given_shapes(inputs, specs: Sequence[InputSpec], names: str) -> dict[str, tuple[str, InputSpec]]:
    """Graph input name -> (the --input as typed, its spec): positional specs in graph order (all inputs, when
    only positional ones are given), named ones by name."""
    positional = [spec for spec in specs if spec.name is None]
    named = {spec.name: spec for spec in specs if spec.name is not None}
    if positional and (len(positional) > len(inputs) or (not named and len(positional) != len(inputs))):
        raise InputSpecError(
            f"the graph has {len(inputs)} input(s) ({names}), got {len(positional)} --input",
            "give one --input per graph input, in order, or name them: --input NAME=SHAPE",
        )
    given = {graph_input.name: (str(spec), spec) for graph_input, spec in zip(inputs, positional)}
    for name, spec in named.items():
        if name not in {i.name for i in inputs}:
            raise InputSpecError(f"--input {name}=: the graph has no input {name!r}", f"its inputs: {names}")
        if name in given:
            raise InputSpecError(f"--input {name}= names an input already given by position", "give it once")
        given[name] = (str(spec), spec)
    return given


def infer_shapes(model, resolved: Sequence[tuple[str, tuple[int, ...], str]]):
    """A copy of `model` with the inputs fixed to `resolved` and every shape onnx can infer filled in."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    by_name = {name: shape for name, shape, _ in resolved}
    for graph_input in fixed.graph.input:
        if graph_input.name not in by_name:
            continue
        shape = graph_input.type.tensor_type.shape
        shape.ClearField("dim")
        for size in by_name[graph_input.name]:
            shape.dim.add().dim_value = size
    # shapes recorded at export time hold the old symbolic sizes: let inference recompute them
    del fixed.graph.value_info[:]
    for graph_output in fixed.graph.output:
        graph_output.type.tensor_type.ClearField("shape")
    for _ in range(_MAX_INFERENCE_ROUNDS):
        try:
            fixed = onnx.shape_inference.infer_shapes(fixed, check_type=False, strict_mode=False, data_prop=True)
        except Exception as error:
            raise ModelLoadError(
                f"ONNX shape inference failed: {short_error(error)}", "check --input / --dim against the graph's inputs"
            ) from error
        if not _add_contrib_output_shapes(fixed):
            return fixed
    return fixed


# onnx does not infer the com.microsoft contrib ops (ONNX Runtime's fused kernels); these rules give their
# output shapes, and inference runs again from there so the nodes after them get shapes too.
_MAX_INFERENCE_ROUNDS = 8
_SAME_SHAPE_CONTRIB_OPS = frozenset(
    {
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "FastGelu",
        "BiasGelu",
        "Gelu",
        "QuickGelu",
        "RotaryEmbedding",
    }
)


def _contrib_output_shape(node, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...] | None:
    inputs = [shapes.get(name) if name else None for name in node.input]
    query = inputs[0] if inputs else None
    if query is None:
        return None
    if node.op_type in _SAME_SHAPE_CONTRIB_OPS:
        return query
    heads = next((a.i for a in node.attribute if a.name == "num_heads"), 0)
    if node.op_type == "MultiHeadAttention" and heads:
        value = inputs[2] if len(inputs) > 2 else None
        if len(query) == 5:  # packed QKV [B, L, H, 3, E]
            return (query[0], query[1], query[2] * query[4])
        if value is not None:
            return (query[0], query[1], value[2] if len(value) == 3 else heads * value[3])
    if node.op_type == "Attention" and len(inputs) > 1 and inputs[1] is not None:
        sizes = next((list(a.ints) for a in node.attribute if a.name == "qkv_hidden_sizes"), None)
        return (query[0], query[1], sizes[2] if sizes else inputs[1][1] // 3)
    return None


def _add_contrib_output_shapes(model) -> bool:
    """Record the output shapes of contrib nodes that inference left unknown; True if any was added."""
    from onnx import helper

    shapes = _known_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.value_info)}
    added = False
    for node in model.graph.node:
        if node.domain != "com.microsoft" or not node.output or node.output[0] in shapes:
            continue
        shape = _contrib_output_shape(node, shapes)
        if shape is not None:
            elem_type = types.get(node.input[0], 1)
            model.graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem_type, shape))
            added = True
    return added


def _known_shapes(model) -> dict[str, tuple[int, ...]]:
    """Value name -> shape, for every value whose dimensions are all known numbers."""
    shapes: dict[str, tuple[int, ...]] = {}
    graph = model.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor_type = value.type.tensor_type if value.type.HasField("tensor_type") else None
        if tensor_type is None or not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if all(d.WhichOneof("value") == "dim_value" for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
    return shapes


# --------------------------------------------------------------------------------------------- layers


def _metadata(node) -> dict[str, str]:
    return {prop.key: prop.value for prop in node.metadata_props}


def _literal_list(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def node_scopes(node) -> tuple[list[tuple[str, str]], str]:
    """(scope segments as (name, type), leaf name) of a node: its place in the layer tree."""
    metadata = _metadata(node)
    scopes = _literal_list(metadata.get("pkg.torch.onnx.name_scopes"))
    if scopes:  # torch.export-based exporter: ['', 'features', 'features.1', 'op']
        classes = _literal_list(metadata.get("pkg.torch.onnx.class_hierarchy"))
        segments = [
            (scope, classes[i].rsplit(".", 1)[-1] if i < len(classes) else "Scope")
            for i, scope in enumerate(scopes[:-1])
            if i > 0 and scope
        ]
        return segments, node.name or node.op_type
    parts = [part for part in node.name.split(SEPARATOR) if part]  # TorchScript exporter: /features/features.0/Conv
    return [(part, "Scope") for part in parts[:-1]], (parts[-1] if parts else node.op_type)


class _Tree:
    """Layer names in first-seen order, nested by scope, with their types and parameter sets."""

    def __init__(self):
        self.children: dict[str, list[str]] = defaultdict(list)
        self.types: dict[str, str] = {"": "Graph"}
        self.params: dict[str, set[str]] = defaultdict(set)

    def add(self, name: str, type_name: str, parent: str) -> None:
        if name not in self.types:
            self.types[name] = type_name
            self.children[parent].append(name)

    def unique(self, name: str) -> str:
        candidate, suffix = name, 1
        while candidate in self.types:
            suffix += 1
            candidate = f"{name}#{suffix}"
        return candidate

    def in_order(self, param_sizes: Mapping[str, int]) -> list[tuple[str, str, int]]:
        ordered, stack = [], [""]
        while stack:
            name = stack.pop()
            ordered.append((name, self.types[name], sum(param_sizes[p] for p in self.params[name])))
            stack.extend(reversed(self.children.get(name, [])))
        return ordered


# --------------------------------------------------------------------------------------------- count


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def count_onnx(model, spec: ModelSpec, *, strict: bool = False) -> CountReport:
    """Count an ONNX ModelProto's forward FLOPs per node, grouped into layers by the nodes' scopes.

    The spec's inputs, batch size and dims fix the graph's input shapes; nothing else of it applies to a graph
    (`--frozen` and a device other than meta are usage errors: a graph has no backward pass and runs nowhere).
    """
    import torch

    if spec.frozen:
        raise UsageError("--frozen applies to PyTorch models: an ONNX graph has no backward pass")
    if spec.device not in (None, "meta"):
        raise UsageError(f"--device {spec.device}: ONNX graphs are counted from their shapes and run nowhere")
    dims, causal_half = dict(spec.dims), spec.causal_half
    resolved, notes = resolve_input_shapes(model, spec.inputs, spec.batch_size, dims)
    inferred = infer_shapes(model, resolved)
    shapes = _known_shapes(inferred)
    graph = inferred.graph

    param_sizes = {
        t.name: int(torch.Size(t.dims).numel())
        for t in graph.initializer
        if _dtype_name(t.data_type) not in _INDEX_TYPES
    }
    param_bytes = sum(param_sizes[t.name] * _itemsize(t.data_type) for t in graph.initializer if t.name in param_sizes)
    tree, counted = _Tree(), _NodeCounts()
    for node in graph.node:
        _count_node(node, _place_node(tree, node, param_sizes), shapes, causal_half, counted)
    forward, unsupported, unknown_shapes, formula_errors = (
        counted.forward,
        counted.unsupported,
        counted.unknown_shapes,
        counted.formula_errors,
    )

    if strict and unsupported:
        raise unsupported_ops_error(unsupported)
    if unknown_shapes:
        notes.append(
            f"shape inference left these nodes' shapes unknown, listed as unsupported: {listed_ops(unknown_shapes)}"
        )
    for op, message in sorted(formula_errors.items()):
        notes.append(f"{op}: formula could not read the node ({message}); listed as unsupported")
    notes.append(NO_BACKWARD_NOTE)
    return CountReport(
        model=spec.source,
        inputs=tuple(InputInfo(shape, dtype, name) for name, shape, dtype in resolved),
        device=DEVICE,
        layers=build_layers(tree.in_order(param_sizes), forward, {}, separator=SEPARATOR),
        params=sum(param_sizes.values()),
        param_bytes=param_bytes,
        unsupported_ops=dict(sorted(unsupported.items())),
        backward_counted=False,
        notes=tuple(notes),
        options={"backward": spec.backward, "frozen": [], "causal_half": causal_half, "dims": dims},
    )


@dataclass
class _NodeCounts:
    """What the walk over a graph's nodes gathers: FLOPs per layer and the nodes it could not price."""

    forward: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unsupported: Counter = field(default_factory=Counter)
    unknown_shapes: Counter = field(default_factory=Counter)
    formula_errors: dict[str, str] = field(default_factory=dict)


def _place_node(tree: _Tree, node, param_sizes: dict[str, int]) -> str:
    """Add the node and its scopes to the module tree; its weights count towards every ancestor. Returns its name."""
    segments, leaf = node_scopes(node)
    parent = ""
    for scope, scope_type in segments:
        path = f"{parent}{SEPARATOR}{scope}" if parent else scope
        tree.add(path, scope_type, parent)
        parent = path
    name = tree.unique(f"{parent}{SEPARATOR}{leaf}" if parent else leaf)
    tree.add(name, node.op_type, parent)
    weights = {i for i in node.input if i in param_sizes}
    for ancestor in tree_ancestors(name, SEPARATOR):
        tree.params[ancestor] |= weights
    return name


def _count_node(node, name: str, shapes: dict, causal_half: bool, counted: _NodeCounts) -> None:
    """Price one node from its shapes; control flow, unknown shapes and unreadable nodes are listed, never zero."""
    import torch

    key = op_key(node.op_type, node.domain)
    label = key if node.domain not in ("", "ai.onnx") else f"onnx.{key}"
    if any(attribute.g.node or attribute.graphs for attribute in node.attribute):
        counted.unsupported[label] += 1  # control flow (If, Loop, Scan): the body's cost depends on the data
        return
    present = [i for i in node.input if i] + [o for o in node.output if o]
    missing = [value for value in present if value not in shapes]
    view = OnnxNode(
        node.op_type,
        tuple(torch.Size(shapes[i]) if i and i in shapes else None for i in node.input),
        tuple(torch.Size(shapes[o]) if o in shapes else None for o in node.output),
        _attributes(node),
        causal_half,
    )

    def priced() -> dict | None:
        return {} if missing and key in ZERO_COST_OPS else (None if missing else flops_of_node(key, view))

    flops = formula_flops(priced, label, counted.unsupported, counted.formula_errors)
    if flops is None:
        if missing:  # no formula ran: the shapes were unknown
            counted.unknown_shapes[label] += 1
        return
    counted.forward[name].update(flops)


def _itemsize(elem_type: int) -> int:
    from onnx import helper

    try:
        return int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except Exception:
        return 0
