"""ONNX files (`model.onnx`): read the graph (no external weight data: shapes are enough to count it).

The graph is counted by `flopcalc.counting.onnx_graph`, from its shapes; nothing runs.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError, ModelLoadError, short_error
from ..files import check_size

INSTALL_HINT = "pip install 'flopcalc[onnx]'"
# One protobuf message holds at most 2 GiB: a bigger .onnx file is not one model (big weights go to external data,
# which is never read), so it is refused before the parser tries.
MAX_ONNX_BYTES = 2 * 2**30


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("counting ONNX graphs needs the onnx package", INSTALL_HINT) from None
    return onnx


def load_onnx(path: Path):
    """The ModelProto in `path` (external weight data is not read: shapes are enough)."""

    if not path.is_file():
        raise ModelLoadError(f"model file {path} not found", "check the path; it is relative to the current folder")
    check_size(path, ModelLoadError, "ONNX file", MAX_ONNX_BYTES)
    onnx = _onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise ModelLoadError(f"{path} is not a loadable ONNX file: {short_error(error)}", "export it again") from error
    if not model.ir_version or not model.graph.node:
        raise ModelLoadError(f"{path} is not an ONNX model (no IR version or no graph nodes)", "export it again")
    return model
