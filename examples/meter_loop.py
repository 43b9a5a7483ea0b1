"""A plain PyTorch training loop with the MFU meter (docs/mfu.md).

    python examples/meter_loop.py                                   # CPU: throughput, no datasheet peak
    python examples/meter_loop.py --device-name H100-SXM            # MFU against the H100's dense bf16 peak
    python examples/meter_loop.py --calibration auto                # and against `flopcalc bench --save`'s peak

The step is counted once, on meta, before the loop; the loop only reads the clock.
"""

import argparse

import torch
from torch import nn

from flopcalc import ThroughputMeter


class TinyLM(nn.Module):
    """Token embedding, two pre-norm transformer blocks with causal attention, tied output head."""

    def __init__(self, vocab: int = 512, width: int = 128, heads: int = 4, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(ids.shape[1], device=ids.device)
        return self.head(self.blocks(self.embed(ids), mask=mask, is_causal=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--device-name", help="GPU for the datasheet peak, e.g. H100-SXM (default: the CUDA device)")
    parser.add_argument("--calibration", help="a `flopcalc bench --save` file, or 'auto'")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = TinyLM().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    example = torch.randint(0, 512, (args.batch_size, args.seq_len), device=device)

    def loss_of(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
        logits = model(ids[:, :-1])
        return nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())

    meter = ThroughputMeter(
        model, example, step=loss_of, device_name=args.device_name, calibration=args.calibration, window=10
    )
    print(f"counted {meter.flops_per_step:,} FLOP per step (forward + backward, 1 multiply-add = 2 FLOPs)")
    for note in meter.notes:
        print(f"note: {note}")
    meter.start()
    for step in range(1, args.steps + 1):
        ids = torch.randint(0, 512, (args.batch_size, args.seq_len), device=device)
        loss_of(model, ids).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        meter.step()
        if step % 10 == 0:
            print(f"step {step}: {meter.reading()}")
    print(f"whole run: {meter.total()}")


if __name__ == "__main__":
    main()
