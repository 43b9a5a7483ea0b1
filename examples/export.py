"""Writes the exported models the docs count (ONNX graphs and a torch.export .pt2) into examples/build/,
so the repository ships no binaries: `make examples`, or `python examples/export.py`.

    examples/build/cnn.onnx   the example CNN, input `images` with a symbolic `batch` dimension
    examples/build/cnn.pt2    the example CNN through torch.export, for 8x3x32x32 images
"""

import sys
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cnn  # noqa: E402  (the examples folder is put on the path just above)


def export_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    image_model = cnn.build().eval()
    images = torch.randn(8, 3, 32, 32)
    written = []
    with warnings.catch_warnings():
        # the TorchScript-based exporter needs no onnxscript; torch warns that it is the legacy one
        warnings.simplefilter("ignore")
        target = out_dir / "cnn.onnx"
        torch.onnx.export(
            image_model,
            (images,),
            str(target),
            dynamo=False,
            input_names=["images"],
            dynamic_axes={"images": {0: "batch"}},
        )
        written.append(target)
    target = out_dir / "cnn.pt2"
    torch.export.save(torch.export.export(image_model, (images,)), str(target))
    written.append(target)
    return written


if __name__ == "__main__":
    for path in export_all(HERE / "build"):
        print(path.relative_to(HERE.parent))
