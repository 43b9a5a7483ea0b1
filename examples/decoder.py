"""A tiny causal language model called the Hugging Face way, for `flopcalc infer --prompt P --generate G`.

`model(input_ids, past_key_values=..., use_cache=True)` returns `(logits, past_key_values)`, the cache a tuple
of (keys, values) per layer that each step concatenates its new entries onto. Per generated token at context c,
with L layers of width d and a vocabulary V, the matmuls are 2 x (L x 12 d^2 + d V) FLOPs and attention
4 x L x d x (c + 1); the KV cache holds 2 x L x d values per token.

    flopcalc infer examples/decoder.py --gpu A100-SXM4-80GB --prompt 128 --generate 32 --batch-size 1,16
"""

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x, past=None):
        batch, tokens, dim = x.shape
        q, k, v = (
            part.reshape(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)
            for part in self.qkv(x).chunk(3, dim=-1)
        )
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=past is None)  # one new token sees every key
        return self.out(y.transpose(1, 2).reshape(batch, tokens, dim)), (k, v)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim, bias=False), nn.GELU(), nn.Linear(4 * dim, dim, bias=False))

    def forward(self, x, past=None):
        y, cache = self.attn(self.attn_norm(x), past)
        x = x + y
        return x + self.mlp(self.mlp_norm(x)), cache


class Decoder(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, positions: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(positions, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids, past_key_values=None, use_cache=False):
        seen = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        where = torch.arange(seen, seen + input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.positions(where)
        caches = []
        for index, block in enumerate(self.blocks):
            x, cache = block(x, None if past_key_values is None else past_key_values[index])
            caches.append(cache)
        logits = self.head(self.norm(x))
        return (logits, tuple(caches)) if use_cache else logits


def build(vocab: int = 1000, dim: int = 64, layers: int = 2, heads: int = 4, positions: int = 1024) -> nn.Module:
    return Decoder(vocab, dim, layers, heads, positions)


def example_inputs(tokens: int = 16):
    return (torch.zeros(1, tokens, dtype=torch.int64),)
