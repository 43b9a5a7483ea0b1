"""What a training step keeps for its backward, as plain data (no torch): `counting/saved_tensors.py` measures it.

Activations are the tensors autograd saves during the forward for use in the backward. They are kept by
storage (each once), without parameters and buffers (model state, not activations). Floating-point storages are
kept as element counts, so a caller prices them at the training precision's width (2 bytes in bf16), while
masks, indices and float32 statistics keep their own size.

Where each saved tensor lives, for planning a split over GPUs (see saved_tensors.py for how it is told):
- `block_*`: inside the repeated blocks (a transformer's layers); pipeline stages take whole blocks.
  `block_replicated` is the hidden stream (each tensor-parallel rank holds all of it, unless sequence
  parallelism splits it), `block_split` lies between a column- and a row-parallel linear (split over tensor-
  parallel ranks), `block_scores` are the attention scores and probabilities (split, and dropped by selective
  recomputation). `block_input` is the blocks' inputs: what full recomputation keeps.
- `before_blocks` (embeddings: the first pipeline stage) and `after_blocks` (final norm, head: the last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SavedBytes:
    """Saved storages of one kind: elements of floating-point ones (priced at the training precision's width)
    and bytes of the rest (boolean masks, integer indices, float32 statistics kept as they are)."""

    floating_elements: float = 0
    fixed_bytes: float = 0

    def bytes_at(self, width: float) -> float:
        """Bytes when a floating-point activation takes `width` bytes per element."""
        return self.floating_elements * width + self.fixed_bytes

    def __add__(self, other: SavedBytes) -> SavedBytes:
        return SavedBytes(self.floating_elements + other.floating_elements, self.fixed_bytes + other.fixed_bytes)

    def scaled(self, factor: float) -> SavedBytes:
        return SavedBytes(self.floating_elements * factor, self.fixed_bytes * factor)

    def to_dict(self) -> dict[str, float]:
        return {"floating_elements": self.floating_elements, "fixed_bytes": self.fixed_bytes}


@dataclass(frozen=True)
class ActivationProfile:
    """What one forward of `batch_size` examples leaves saved for the backward, by where it lives.

    The `block_*` figures are totals over all `layers` blocks (one block's share is a `layers`-th). Parameters
    are counted where they are used: `params_before` before the first block, `params_after` after the last (a
    tied embedding counts in both: each end of a pipeline holds a copy). `hidden`, `seq_len`, `heads`,
    `kv_heads`, `vocab` are read off the graph (the blocks' input, the attention calls) or the model's
    `config`; None when neither shows them.
    """

    batch_size: int
    total: SavedBytes
    blocks: str | None = None  # qualified name of the blocks' container ("layers", "model.layers")
    block_names: tuple[str, ...] = ()  # qualified names of the blocks, in order
    layers: int = 0
    block_replicated: SavedBytes = SavedBytes()
    block_split: SavedBytes = SavedBytes()
    block_scores: SavedBytes = SavedBytes()
    block_input: SavedBytes = SavedBytes()
    before_blocks: SavedBytes = SavedBytes()
    after_blocks: SavedBytes = SavedBytes()
    params: int = 0
    block_params: int = 0
    params_before: int = 0
    params_after: int = 0
    hidden: int | None = None
    seq_len: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    vocab: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def blocks_total(self) -> SavedBytes:
        return self.block_replicated + self.block_split + self.block_scores

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            data[name] = (
                value.to_dict()
                if isinstance(value, SavedBytes)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return data
