"""ONNX graphs: exported example models must count as their PyTorch originals; shapes, scopes and errors."""

import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from flopcalc.api import count  # noqa: E402
from flopcalc.counting.onnx_graph import NO_BACKWARD_NOTE, node_scopes  # noqa: E402
from flopcalc.errors import (  # noqa: E402
    InputSpecError,
    MissingDependencyError,
    ModelLoadError,
    UnsupportedOpsError,
    UsageError,
)
from flopcalc.loaders import load_model  # noqa: E402


def export(module: nn.Module, args: tuple, path, **options) -> str:
    """The TorchScript-based exporter: it runs offline (the torch.export-based one needs onnxscript)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, **options)
    return str(path)


def load_example(examples, name):
    return load_model(str(examples / f"{name}.py"), device="cpu").module


@pytest.fixture(scope="module")
def exported(tmp_path_factory, request):
    from tests.conftest import EXAMPLES

    folder = tmp_path_factory.mktemp("onnx")
    batch = {"input_names": ["x"], "dynamic_axes": {"x": {0: "batch"}}}
    mlp = load_model(str(EXAMPLES / "mlp.py"), device="cpu").module
    cnn = load_model(str(EXAMPLES / "cnn.py"), device="cpu").module
    return {
        "mlp": export(mlp, (torch.randn(2, 784),), folder / "mlp.onnx", **batch),
        "cnn": export(cnn, (torch.randn(2, 3, 32, 32),), folder / "cnn.onnx", **batch),
    }


@pytest.mark.parametrize("name, shape", [("mlp", "32x784"), ("cnn", "8x3x32x32")])
def test_exported_examples_count_as_their_pytorch_forward(examples, exported, name, shape):
    """matmul and conv FLOPs are exact (BatchNorm is folded into the conv at export, so norm differs)."""
    pytorch = count(str(examples / f"{name}.py"), inputs=[shape], backward=False)
    graph = count(exported[name], batch_size=int(shape.split("x")[0]))
    for category in ("matmul", "conv"):
        assert graph.forward_by_category[category] == pytorch.forward_by_category[category]
    assert graph.inputs[0].shape == pytorch.inputs[0].shape
    assert graph.backward == 0 and not graph.backward_counted
    assert NO_BACKWARD_NOTE in graph.notes


def test_mlp_parameters_and_layers_follow_the_export_scopes(exported):
    report = count(exported["mlp"], dims={"batch": 4})
    assert report.params == 784 * 256 + 256 + 256 * 10 + 10
    assert report.param_bytes == 4 * report.params
    first = report.layer("0/Gemm")  # the TorchScript exporter names the node /0/Gemm
    assert first.type == "Gemm" and first.depth == 2
    assert first.forward_by_category["matmul"] == 2 * 4 * 784 * 256
    assert first.forward_by_category["elementwise"] == 4 * 256  # the bias, as addmm counts it
    assert report.layer("0").forward == first.forward and report.layer("0").params == 784 * 256 + 256


def test_cnn_scope_tree_is_inclusive(exported):
    report = count(exported["cnn"], batch_size=8)
    names = [layer.name for layer in report.layers]
    assert names[0] == "" and names.index("features") < names.index("features/features.0")
    conv = report.layer("features/features.0/Conv")
    assert conv.forward_by_category["conv"] == 2 * 8 * 32 * 32 * 32 * 3 * 3 * 3
    features = report.layer("features")
    children = [layer for layer in report.layers if layer.depth == 2 and layer.name.startswith("features/")]
    assert features.forward == sum(layer.forward for layer in children)
    assert report.forward == sum(layer.forward for layer in report.layers if layer.depth == 1)


class Zoo(nn.Module):
    """Ops whose ONNX translations must agree with the PyTorch count of the same module."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.proj = nn.Linear(16, 16, bias=False)
        self.weight = nn.Parameter(torch.randn(16, 12))
        self.up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
        self.group_norm = nn.GroupNorm(2, 4)

    def forward(self, x, image):
        h = F.gelu(self.proj(self.norm(x)))
        scores = torch.einsum("bld,bsd->bls", h, h).softmax(-1)
        heads = h.view(2, 5, 4, 4).transpose(1, 2)
        attended = F.scaled_dot_product_attention(heads, heads, heads)
        y = (scores @ h) @ self.weight  # a broadcast matmul against a 2-D weight
        return y.sum() + self.up(self.group_norm(image)).mean() + attended.sum()


def test_op_translations_agree_with_the_pytorch_formulas(tmp_path):
    """The exporter decomposes SDPA into MatMul/Softmax: its products land in matmul, not attention."""
    zoo, args = Zoo(), (torch.randn(2, 5, 16), torch.randn(2, 4, 6, 6))
    pytorch = count(zoo, args, backward=False).forward_by_category
    graph = count(export(zoo, args, tmp_path / "zoo.onnx", opset_version=18)).forward_by_category
    assert graph["matmul"] == pytorch["matmul"] + pytorch["attention"]
    for category in ("conv", "norm", "reduction"):
        assert graph[category] == pytorch[category], category


# ----------------------------------------------------------------------------- hand-built graphs


def make_graph(nodes, inputs, outputs, initializers=(), path=None, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    domains = [
        helper.make_opsetid("", opset),
        helper.make_opsetid("com.microsoft", 1),
        helper.make_opsetid("com.example", 1),
    ]
    model = helper.make_model(graph, opset_imports=domains)
    onnx.save(model, str(path))
    return str(path)


def tensor(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def weight(name, dims):
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.0] * int(torch.Size(dims).numel()))


@pytest.fixture
def sequence_graph(tmp_path):
    """x[batch, seq, 16] @ W[16, 8], softmax, then a contrib MultiHeadAttention of the result with itself."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="/proj/MatMul"),
        helper.make_node("Softmax", ["h"], ["p"], name="/Softmax", axis=-1),
        helper.make_node(
            "MultiHeadAttention", ["p", "p", "p"], ["a"], name="/attn/MHA", domain="com.microsoft", num_heads=2
        ),
        helper.make_node("Relu", ["a"], ["y"], name="/Relu"),  # shaped only by the contrib output rule
    ]
    return make_graph(
        nodes, [tensor("x", ["batch", "seq", 16])], [tensor("y", None)], [weight("W", [16, 8])], tmp_path / "seq.onnx"
    )


def test_symbolic_dims_take_dim_and_batch_size(sequence_graph):
    report = count(sequence_graph, dims={"seq": 10}, batch_size=3)
    assert report.inputs[0].shape == (3, 10, 16)
    assert report.forward_by_category["matmul"] == 2 * 3 * 10 * 16 * 8
    assert report.forward_by_category["attention"] == 2 * 3 * 2 * 10 * 10 * (4 + 4)
    assert report.forward_by_category["activation"] == 5 * 3 * 10 * 8 + 3 * 10 * 8  # softmax, then relu
    assert report.layer("attn/MHA").forward == report.forward_by_category["attention"]
    assert not report.unsupported_ops
    assert report.params == 16 * 8
    assert count(sequence_graph, dims={"seq": 10, "batch": 5}).inputs[0].shape == (5, 10, 16)
    assert count(sequence_graph, inputs=["2x7x16"]).inputs[0].shape == (2, 7, 16)


def test_a_named_input_sets_that_graph_input_and_names_are_reported(tmp_path):
    """Two graph inputs: one given by name, the other from its declared shape and --dim."""
    nodes = [
        helper.make_node("MatMul", ["a", "W"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["y"], name="add"),
    ]
    graph = make_graph(
        nodes,
        [tensor("a", ["batch", 16]), tensor("b", ["batch", 8])],
        [tensor("y", None)],
        [weight("W", [16, 8])],
        tmp_path / "two.onnx",
    )
    report = count(graph, inputs=["b=4x8"], dims={"batch": 4})
    assert [(i.name, i.shape) for i in report.inputs] == [("a", (4, 16)), ("b", (4, 8))]
    assert report.forward_by_category["matmul"] == 2 * 4 * 16 * 8
    with pytest.raises(InputSpecError, match="the graph has no input 'c'"):
        count(graph, inputs=["c=4x8"], dims={"batch": 4})
    with pytest.raises(InputSpecError, match="already given by position"):
        count(graph, inputs=["4x16", "a=4x16"])


def test_unresolved_and_unknown_dims_are_one_line_errors(sequence_graph):
    with pytest.raises(InputSpecError, match="--dim seq=SIZE"):
        count(sequence_graph)
    with pytest.raises(UsageError, match="no graph input has a dimension named 'tokens'"):
        count(sequence_graph, dims={"seq": 4, "tokens": 4})
    with pytest.raises(InputSpecError, match="1 input"):
        count(sequence_graph, inputs=["2x7x16", "2x7x16"])
    with pytest.raises(InputSpecError, match="has 2 dimension"):
        count(sequence_graph, inputs=["7x16"])


def test_ops_without_formula_or_shapes_are_unsupported_never_zero(tmp_path):
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Frobnicate", ["h"], ["f"], name="custom", domain="com.example"),
        helper.make_node("Relu", ["f"], ["y"], name="relu"),  # its input shape is unknown after the custom op
    ]
    path = make_graph(nodes, [tensor("x", [2, 4])], [tensor("y", None)], [weight("W", [4, 3])], tmp_path / "u.onnx")
    report = count(path)
    assert report.unsupported_ops == {"com.example.Frobnicate": 1, "onnx.Relu": 1}
    assert report.forward == 2 * 2 * 4 * 3
    assert any("shapes unknown" in note and "onnx.Relu" in note for note in report.notes)
    with pytest.raises(UnsupportedOpsError, match="Frobnicate"):
        count(path, strict=True)


def test_node_scopes_from_both_exporters():
    legacy = helper.make_node("Conv", ["x", "w"], ["y"], name="/features/features.0/Conv")
    assert node_scopes(legacy) == ([("features", "Scope"), ("features.0", "Scope")], "Conv")
    dynamo = helper.make_node("Conv", ["x", "w"], ["y"], name="node_Conv_48")
    for key, value in {
        "pkg.torch.onnx.name_scopes": "['', 'features', 'features.1', 'conv2d']",
        "pkg.torch.onnx.class_hierarchy": "['cnn.SmallCNN', 'torch.nn.Sequential', 'torch.nn.Conv2d', 'aten.conv2d']",
    }.items():
        prop = dynamo.metadata_props.add()
        prop.key, prop.value = key, value
    assert node_scopes(dynamo) == ([("features", "Sequential"), ("features.1", "Conv2d")], "node_Conv_48")
    assert node_scopes(helper.make_node("Relu", ["x"], ["y"])) == ([], "Relu")


def test_corrupt_or_missing_files_are_model_load_errors(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf graph\xff\xff")
    with pytest.raises(ModelLoadError, match="corrupt.onnx"):
        count(str(corrupt))
    with pytest.raises(ModelLoadError, match="not found"):
        count(str(tmp_path / "missing.onnx"))


def test_pytorch_only_options_are_rejected(exported):
    with pytest.raises(UsageError, match="--frozen"):
        count(exported["mlp"], frozen=["0"])
    with pytest.raises(UsageError, match="--device"):
        count(exported["mlp"], device="cpu")


def test_missing_onnx_names_the_extra(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError) as error:
        count(exported["mlp"])
    assert "pip install 'flopcalc[onnx]'" in str(error.value)
