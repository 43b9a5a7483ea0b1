"""A GPT-2-shaped decoder (LayerNorm, eager causal attention with dropout, GELU MLP), written here so no download
is needed. It is the transformer layer Korthikanti et al. 2022 count activations for, so
`flopcalc plan examples/gpt.py` can be checked against their sbh(34 + 5as/h) bytes per layer.

The default is tiny; `--kwargs '{"preset": "gpt2"}'` builds GPT-2 small's shapes (124M parameters):
    flopcalc plan examples/gpt.py --kwargs '{"preset": "gpt2"}' --input 8x1024:int64 --gpu A100-SXM4-80GB
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

PRESETS = {
    "tiny": dict(dim=64, n_layers=2, n_heads=4, seq_len=32, vocab=256, dropout=0.1),
    "gpt2": dict(dim=768, n_layers=12, n_heads=12, seq_len=1024, vocab=50257, dropout=0.1),
}


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int, seq_len: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.register_buffer("future", torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        batch, seq, dim = x.shape
        head = dim // self.n_heads
        q, k, v = (t.view(batch, seq, self.n_heads, head).transpose(1, 2) for t in self.qkv(x).split(dim, dim=2))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(head))
        scores = scores.masked_fill(self.future[:seq, :seq], float("-inf"))
        probs = self.attn_dropout(F.softmax(scores, dim=-1))
        out = (probs @ v).transpose(1, 2).reshape(batch, seq, dim)
        return self.resid_dropout(self.proj(out))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, seq_len: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads, seq_len, dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.fc_proj = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.dropout(self.fc_proj(F.gelu(self.fc(self.ln_2(x)))))


class GPT(nn.Module):
    def __init__(self, dim, n_layers, n_heads, seq_len, vocab, dropout):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(seq_len, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, n_heads, seq_len, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.tokens.weight  # tied, as in GPT-2

    def forward(self, tokens):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.dropout(self.tokens(tokens) + self.positions(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def build(preset: str = "tiny", **overrides) -> nn.Module:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return GPT(**{**PRESETS[preset], **overrides})


def example_inputs(batch: int = 1, seq_len: int = 32):
    return (torch.zeros(batch, seq_len, dtype=torch.long),)
